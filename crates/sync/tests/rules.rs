//! The failure rules against the real server: 401 stops sync and says so, a refused
//! report is set aside with the server's reason while the rest deliver, and the
//! hospital's compatibility server (single POSTs, its own IDs) gets every report once.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clinic_domain::PainScale;
use clinic_protocol::ReportSubmission;
use clinic_store::outbox::{self, OutboxState};
use clinic_sync::{SyncConfig, SyncEngine, SyncError, SyncProblemKind};
use rstest::rstest;
use support::*;

fn quick(url: String, token: Option<String>) -> SyncConfig {
    let mut c = SyncConfig::new(url, token);
    c.pull = false;
    c.backoff_base = Duration::from_millis(5);
    c.backoff_cap = Duration::from_millis(20);
    c.interval = Duration::from_millis(30);
    c.probe_interval = Duration::from_millis(30);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_stop_sync_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = central(dir.path(), false);
    let _real = server.issue_token("C001").unwrap();
    let proxy = start_proxy(server.addr, Arc::new(Always(Fault::Pass))).await;
    let db = local_store(dir.path());
    record(&db, 3);
    let mut config = quick(proxy.url(), Some("cct_not_a_real_token".into()));
    config.reuse_connections = false;
    let engine = SyncEngine::new(db.clone(), config).unwrap();
    let err = engine.sync_once().await.unwrap_err();
    assert!(
        matches!(err, SyncError::CredentialsRefused { status: 401 }),
        "{err}"
    );
    let status = engine.status();
    assert!(status.credentials_refused);
    assert_eq!(
        status.last_error.as_ref().map(|p| p.kind),
        Some(SyncProblemKind::CredentialsRefused)
    );
    assert_eq!(
        (status.waiting, status.rejected),
        (3, 0),
        "nothing set aside: the reports are fine"
    );
    assert_eq!(status.online, Some(true), "the server answered");

    // In the background loop it stops: no retries while the ticker keeps ticking.
    let handle = engine.spawn(&tokio::runtime::Handle::current());
    tokio::time::sleep(Duration::from_millis(150)).await;
    let before = proxy.connections.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        proxy.connections.load(Ordering::SeqCst),
        before,
        "no retries after 401"
    );
    assert!(handle.status().credentials_refused);
    handle.report_queued();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        proxy.connections.load(Ordering::SeqCst),
        before,
        "not even for a new report"
    );
    handle.sync_now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        proxy.connections.load(Ordering::SeqCst) > before,
        "a person asking tries again"
    );
    assert_eq!(server.report_count(Some("C001")).unwrap(), 0);
    handle.shutdown();
}

#[rstest]
#[case::batched(false)]
#[case::single_posts(true)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_report_is_set_aside_with_the_reason_and_the_rest_deliver(#[case] single: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (server, central_db) = central(dir.path(), false);
    let token = server.issue_token("C001").unwrap();
    let db = local_store(dir.path());
    let ids = record(&db, 6);
    // Single POSTs: the same server behind a proxy that hides its batch route.
    let proxy = start_proxy(
        server.addr,
        Arc::new(Always(if single {
            Fault::HideBatchRoute
        } else {
            Fault::Pass
        })),
    )
    .await;
    // Another device already stored a different report under one of our IDs: a 409.
    let clash = ReportSubmission {
        report_id: ids[2].parse().unwrap(),
        patient_id: PATIENT.into(),
        pain_score: 9,
        submit_time: chrono::Utc::now().timestamp() - 60,
        scale: PainScale::Nrs,
        recorded_by: None,
        device_id: Some("other".into()),
        supersedes: None,
        reason: None,
        assessed_at: None,
        details: Default::default(),
        follows_up: None,
        resolves: Vec::new(),
    };
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/reports", server.base_url()))
        .bearer_auth(&token)
        .json(&clash)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());

    let mut config = quick(proxy.url(), Some(token));
    config.reuse_connections = false;
    let engine = SyncEngine::new(db.clone(), config).unwrap();
    let run = engine.sync_once().await.unwrap();
    assert_eq!((run.delivered, run.rejected), (5, 1));
    assert_eq!(
        engine.status().single_post_mode,
        single,
        "learned from the 404 and the single route's proof"
    );
    let rejected = db.read(|c| outbox::get(c, &ids[2])).unwrap().unwrap();
    assert_eq!(rejected.state, OutboxState::Rejected);
    let reason = rejected.last_error.unwrap();
    assert!(!reason.is_empty(), "the server's reason is kept");
    let status = engine.status();
    assert_eq!((status.waiting, status.rejected), (0, 1));
    assert!(
        status.last_error.is_none(),
        "a refused report is not a sync failure"
    );
    let mut others = ids.clone();
    others.remove(2);
    assert!(
        server_copies(&central_db, "C001", &others)
            .iter()
            .all(|&n| n == 1)
    );

    // Retrying unchanged meets the same refusal; it is never lost or deleted.
    assert!(db.write(|c| outbox::requeue_rejected(c, &ids[2])).unwrap());
    let run = engine.sync_once().await.unwrap();
    assert_eq!(run.rejected, 1);
    assert_eq!(
        db.read(|c| outbox::get(c, &ids[2])).unwrap().unwrap().state,
        OutboxState::Rejected
    );

    // Corrected instead: a new report naming the refused one goes through; the refused one stays, superseded.
    let corrected = outbox::NewReport::score(
        clinic_domain::PatientId::parse(PATIENT).unwrap(),
        clinic_domain::PainScore::new(clinic_domain::PainScale::Nrs, 5).unwrap(),
        chrono::Utc::now(),
        "N001",
        "test-device",
    );
    let new_id = db
        .write(|c| {
            outbox::correct(
                c,
                &ids[2],
                &corrected,
                "clashed with another device's ID",
                chrono::Utc::now(),
            )
        })
        .unwrap()
        .unwrap();
    assert_eq!(engine.sync_once().await.unwrap().delivered, 1);
    assert_eq!(
        db.read(|c| outbox::get(c, &ids[2])).unwrap().unwrap().state,
        OutboxState::Superseded
    );
    assert_eq!(
        server_copies(&central_db, "C001", std::slice::from_ref(&new_id)),
        vec![1]
    );
    let supersedes: String = rusqlite::Connection::open(&central_db)
        .unwrap()
        .query_row(
            "SELECT supersedes FROM reports WHERE report_id = ?1",
            [&new_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        supersedes, ids[2],
        "the server learns which report it corrects"
    );
    assert_eq!(engine.status().rejected, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hospitals_server_gets_every_report_once_by_single_posts() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = central(dir.path(), true);
    let db = local_store(dir.path());
    let ids = record(&db, 150);
    let engine = SyncEngine::new(db.clone(), quick(server.base_url(), None)).unwrap();
    let run = engine.sync_once().await.unwrap();
    assert_eq!(run.delivered, 150);
    assert!(
        engine.status().single_post_mode,
        "learned from the batch route's 404"
    );
    assert_eq!(server.report_count(Some("C001")).unwrap(), 150);
    // It assigned its own IDs; we keep ours as the key and theirs beside it.
    for id in &ids {
        let e = db.read(|c| outbox::get(c, id)).unwrap().unwrap();
        assert_eq!(e.state, OutboxState::Delivered);
        let theirs = e.server_report_id.expect("server's ID kept");
        assert_ne!(&theirs, id);
    }
    // More reports, a fresh engine (a restart): the batch route is tried again, is
    // still missing, and single POSTs prove themselves again; none sent twice.
    record(&db, 20);
    let engine = SyncEngine::new(db.clone(), quick(server.base_url(), None)).unwrap();
    assert!(
        !engine.status().single_post_mode,
        "not pinned to the slow path across a restart"
    );
    assert_eq!(engine.sync_once().await.unwrap().delivered, 20);
    assert!(engine.status().single_post_mode);
    assert_eq!(engine.sync_once().await.unwrap().delivered, 0);
    assert_eq!(server.report_count(Some("C001")).unwrap(), 170);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_then_back_delivers_without_being_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = central(dir.path(), false);
    let token = server.issue_token("C001").unwrap();
    // Nothing listens here at first.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let db = local_store(dir.path());
    record(&db, 4);
    let mut config = quick(format!("http://{addr}"), Some(token));
    config.interval = Duration::from_secs(3600);
    config.backoff_base = Duration::from_secs(3600);
    config.backoff_cap = Duration::from_secs(3600);
    let handle = SyncEngine::new(db.clone(), config)
        .unwrap()
        .spawn(&tokio::runtime::Handle::current());
    let mut status = handle.subscribe();
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| s.online == Some(false)),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        handle.status().last_error.unwrap().kind,
        SyncProblemKind::Offline
    );
    // The server comes back on that address; the probe notices long before the hour of backoff.
    let _proxy = start_proxy_on(addr, server.addr).await;
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.waiting == 0 && s.last_success_at.is_some()),
    )
    .await
    .expect("delivered once reachable")
    .unwrap();
    assert_eq!(server.report_count(Some("C001")).unwrap(), 4);
    assert_eq!(handle.status().online, Some(true));
    handle.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_carries_a_w3c_traceparent_and_the_token_as_bearer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let n = s.read(&mut buf).await.unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        let body = r#"{"error":"busy"}"#;
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\nretry-after: 7\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(answer.as_bytes()).await.unwrap();
        head
    });
    let dir = tempfile::tempdir().unwrap();
    let db = local_store(dir.path());
    record(&db, 1);
    let engine = SyncEngine::new(db.clone(), quick(url, Some("cct_secret".into()))).unwrap();
    let err = engine.sync_once().await.unwrap_err();
    assert_eq!(
        err.retry_after(),
        Some(Duration::from_secs(7)),
        "Retry-After is read: {err}"
    );
    assert!(!err.to_string().contains("cct_secret"));
    let head = server.await.unwrap().to_ascii_lowercase();
    let tp = head
        .lines()
        .find_map(|l| l.strip_prefix("traceparent: "))
        .expect("traceparent sent")
        .trim()
        .to_owned();
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    assert_eq!(
        (parts[0], parts[1].len(), parts[2].len(), parts[3]),
        ("00", 32, 16, "01")
    );
    assert!(
        parts[1]
            .chars()
            .chain(parts[2].chars())
            .all(|c| c.is_ascii_hexdigit())
    );
    assert!(head.contains("authorization: bearer cct_secret"));
    assert_eq!(
        db.read(outbox::counts).unwrap().queued,
        1,
        "back in the queue, same ID"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_during_a_run_are_coalesced_into_one_more_run_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = central(dir.path(), false);
    let token = server.issue_token("C001").unwrap();
    // Every answer is held 300 ms, so the first run is surely still going.
    let proxy = start_proxy(
        server.addr,
        Arc::new(Always(Fault::HoldResponse(Duration::from_millis(300)))),
    )
    .await;
    let db = local_store(dir.path());
    record(&db, 1);
    let mut config = quick(proxy.url(), Some(token));
    config.interval = Duration::from_secs(3600);
    config.reuse_connections = false;
    let handle = SyncEngine::new(db.clone(), config)
        .unwrap()
        .spawn(&tokio::runtime::Handle::current());
    let mut status = handle.subscribe();
    // Wait until the first report is in flight: what follows cannot join its batch.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while db.read(outbox::counts).unwrap().sending == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first batch never left"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for _ in 0..5 {
        record(&db, 1);
        handle.report_queued();
        handle.sync_now();
    }
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| !s.running && s.waiting == 0),
    )
    .await
    .expect("the reports saved during the run were sent by the next one")
    .unwrap();
    assert_eq!(server.report_count(Some("C001")).unwrap(), 6);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        proxy.connections.load(Ordering::SeqCst),
        2,
        "ten requests during the run became one more run"
    );
    handle.shutdown();
}

/// What a nurse adds to a score (site, rest/movement, note, intervention), a
/// reassessment's link and a correction of a delivered report all reach the server
/// as recorded: re-sending the identical content is a duplicate, not a conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn details_follow_ups_and_corrections_reach_the_server_as_recorded() {
    use clinic_domain::{Activity, AssessmentDetails, PainScore, PatientId};
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = central(dir.path(), false);
    let token = server.issue_token("C001").unwrap();
    let db = local_store(dir.path());
    let now = chrono::Utc::now();
    let base = || {
        outbox::NewReport::score(
            PatientId::parse(PATIENT).unwrap(),
            PainScore::new(PainScale::Nrs, 8).unwrap(),
            now,
            "N001",
            "dev-1",
        )
    };
    let given = outbox::NewReport {
        details: AssessmentDetails {
            body_site: Some("右膝".into()),
            activity: Some(Activity::Movement),
            note: Some("翻身时加重\n夜间痛醒".into()),
            intervention: Some("布洛芬 400mg".into()),
        },
        reassess_due_at: Some(now + chrono::Duration::minutes(60)),
        ..base()
    };
    let first = db.write(|c| outbox::record_report(c, &given, now)).unwrap();
    let engine =
        SyncEngine::new(db.clone(), quick(server.base_url(), Some(token.clone()))).unwrap();
    assert_eq!(engine.sync_once().await.unwrap().delivered, 1);
    let follow = outbox::NewReport {
        follows_up: Some(first.clone()),
        ..base()
    };
    let second = db
        .write(|c| outbox::record_report(c, &follow, now))
        .unwrap();
    let fixed = db
        .write(|c| outbox::correct(c, &first, &given, "wrong bed", now))
        .unwrap()
        .unwrap();
    assert_eq!(engine.sync_once().await.unwrap().delivered, 2);

    for id in [&first, &second, &fixed] {
        let e = db.read(|c| outbox::get(c, id)).unwrap().unwrap();
        assert_eq!(e.state, OutboxState::Delivered);
        let again = ReportSubmission {
            report_id: e.id.parse().unwrap(),
            patient_id: e.patient_id.clone(),
            pain_score: e.score,
            submit_time: e.recorded_at,
            scale: e.scale,
            recorded_by: Some(e.recorded_by.clone()),
            device_id: Some(e.device_id.clone()),
            supersedes: e.supersedes.as_deref().map(|s| s.parse().unwrap()),
            reason: e.correction_reason.clone(),
            assessed_at: Some(e.assessed_at),
            details: e.details.clone(),
            follows_up: e.follows_up.as_deref().map(|s| s.parse().unwrap()),
            resolves: Vec::new(),
        };
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/reports", server.base_url()))
            .bearer_auth(&token)
            .json(&again)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{id}");
        assert_eq!(
            resp.headers()
                .get("idempotent-replayed")
                .and_then(|v| v.to_str().ok()),
            Some("true"),
            "{id}: stored exactly as recorded"
        );
        let stored: clinic_protocol::StoredReport = resp.json().await.unwrap();
        assert_eq!(stored.submission, again);
    }
    assert_eq!(server.report_count(Some("C001")).unwrap(), 3);
}

/// The hospital's original API (clinic-central's compat mode stands in for it
/// faithfully: no feeds, no batch route, no auth, its own report IDs): several
/// runs end without an error, the status says upload-only, the last sync is the
/// last upload, and every report is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_only_server_is_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = central(dir.path(), true);
    let db = local_store(dir.path());
    let ids = record(&db, 5);
    let mut config = quick(server.base_url(), None);
    config.pull = true;
    let handle = SyncEngine::new(db.clone(), config)
        .unwrap()
        .spawn(&tokio::runtime::Handle::current());
    let mut status = handle.subscribe();
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.waiting == 0 && s.upload_only && !s.running),
    )
    .await
    .expect("delivered, and recognised as upload-only")
    .unwrap();
    let first = handle
        .status()
        .last_success_at
        .expect("the upload is the last sync");
    // Several more runs (the ticker runs every 30 ms, and "sync now"), more reports.
    for _ in 0..3 {
        handle.sync_now();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let more = record(&db, 2);
    handle.report_queued();
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.waiting == 0 && !s.running),
    )
    .await
    .unwrap()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = handle.status();
    handle.shutdown();
    assert!(s.upload_only, "{s:?}");
    assert!(s.last_error.is_none(), "no false alarm: {:?}", s.last_error);
    assert!(s.last_success_at.is_some_and(|t| t >= first));
    assert_eq!(s.online, Some(true));
    assert_eq!(
        server.report_count(Some("C001")).unwrap(),
        7,
        "each report stored exactly once"
    );
    for id in ids.iter().chain(&more) {
        assert_eq!(
            db.read(|c| outbox::get(c, id)).unwrap().unwrap().state,
            OutboxState::Delivered
        );
    }
}
