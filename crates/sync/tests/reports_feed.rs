//! The reports feed against the real server: what other devices recorded comes
//! down into the local store; reports this device cannot hold are refused one by
//! one with a reason and never stop the rest; a correction that arrives before
//! what it corrects waits and is fetched again in the same run; and a store from
//! before the feed pulls it from the start without changing or re-sending anything.

mod support;

use std::time::Duration;

use clinic_domain::PainScale;
use clinic_protocol::ReportSubmission;
use clinic_store::{audit, outbox, pull, settings};
use clinic_sync::{Client, SyncConfig, SyncEngine, Trace};
use support::*;
use uuid::Uuid;

const CLINIC: &str = "C001";
const OWN_DEVICE: &str = "own-device";

fn config(url: String, token: String) -> SyncConfig {
    let mut c = SyncConfig::new(url, Some(token));
    c.reuse_connections = false;
    c
}

/// A report another device recorded a minute ago.
fn theirs(score: i64) -> ReportSubmission {
    let now = chrono::Utc::now().timestamp();
    ReportSubmission {
        report_id: Uuid::now_v7(),
        patient_id: PATIENT.into(),
        pain_score: score,
        submit_time: now - 60,
        scale: PainScale::Nrs,
        recorded_by: Some("N002".into()),
        device_id: Some("other-device".into()),
        supersedes: None,
        reason: None,
        assessed_at: Some(now - 60),
        details: Default::default(),
        follows_up: None,
        resolves: Vec::new(),
    }
}

fn correcting(of: Uuid, score: i64) -> ReportSubmission {
    ReportSubmission {
        supersedes: Some(of),
        reason: Some("wrong score".into()),
        ..theirs(score)
    }
}

/// Posts reports as another device would, one batch, in this order.
async fn post(server: &clinic_central::TestServer, token: &str, reports: &[ReportSubmission]) {
    let client = Client::new(
        &server.base_url(),
        Some(token.into()),
        &Default::default(),
        Duration::from_secs(5),
        Duration::from_secs(30),
        false,
    )
    .unwrap();
    let answer = client.post_batch(reports, &Trace::new()).await.unwrap();
    assert!(
        answer
            .results
            .iter()
            .all(|r| r.status == clinic_protocol::BatchItemStatus::Accepted),
        "{answer:?}"
    );
}

fn set_aside(db: &clinic_store::Database) -> Vec<(String, String)> {
    let mut v: Vec<_> = db
        .read(|c| pull::set_aside_items(c, 100))
        .unwrap()
        .into_iter()
        .map(|s| (s.item_id, s.reason))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reports_are_refused_one_by_one_and_a_late_target_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = central(dir.path(), false);
    server.load_demo(CLINIC, 1).unwrap();
    let token = server.issue_token(CLINIC).unwrap();
    let db = local_store(dir.path());
    db.write(|c| settings::set(c, "device_id", OWN_DEVICE))
        .unwrap();

    let good = theirs(7);
    let original = theirs(8);
    let late_fix = correcting(original.report_id, 6);
    let (x, y) = (Uuid::now_v7(), Uuid::now_v7());
    let loop_x = ReportSubmission {
        report_id: x,
        ..correcting(y, 3)
    };
    let loop_y = ReportSubmission {
        report_id: y,
        ..correcting(x, 4)
    };
    let impostor = ReportSubmission {
        device_id: Some(OWN_DEVICE.into()),
        ..theirs(2)
    };
    let bad_follow_up = ReportSubmission {
        follows_up: Some(good.report_id),
        ..theirs(5)
    };
    // The correction reaches the server before what it corrects.
    post(
        &server,
        &token,
        &[
            good.clone(),
            late_fix.clone(),
            loop_x,
            loop_y,
            impostor.clone(),
            bad_follow_up.clone(),
            original.clone(),
        ],
    )
    .await;

    let engine = SyncEngine::new(db.clone(), config(server.base_url(), token)).unwrap();
    let run = engine.sync_once().await.unwrap();
    let stored = |id: Uuid| {
        db.read(|c| outbox::get(c, &id.to_string()))
            .unwrap()
            .is_some()
    };
    for r in [&good, &original, &late_fix] {
        assert!(stored(r.report_id), "{} stored", r.report_id);
    }
    let fixed = db
        .read(|c| outbox::get(c, &original.report_id.to_string()))
        .unwrap()
        .unwrap();
    assert_eq!(
        fixed.superseded_by,
        Some(late_fix.report_id.to_string()),
        "the late target was waited for and the correction applied in the same run"
    );
    let aside = set_aside(&db);
    let ids: Vec<&str> = aside.iter().map(|(id, _)| id.as_str()).collect();
    let mut expected = vec![
        x.to_string(),
        y.to_string(),
        impostor.report_id.to_string(),
        bad_follow_up.report_id.to_string(),
    ];
    expected.sort();
    assert_eq!(ids, expected, "{aside:?}");
    for (id, reason) in &aside {
        assert!(!reason.is_empty(), "{id}");
        assert!(!stored(id.parse().unwrap()), "nothing of {id} stored");
    }
    assert!(
        aside
            .iter()
            .any(|(id, r)| *id == impostor.report_id.to_string() && r.contains("this device"))
    );
    // The run counts each setting-aside, those judged again after the rewind too;
    // the status counts the records set aside.
    assert!(run.set_aside >= 4, "{run:?}");
    assert_eq!(engine.status().set_aside, 4);
    assert_eq!(
        db.read(outbox::counts).unwrap().waiting(),
        0,
        "nothing received is queued"
    );
}

/// A store that delivered its reports before the feed existed (its reports cursor
/// at 0) pulls the whole feed on its next sync: its own come back and are
/// recognised, so nothing is written, changed or sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_store_pulls_the_feed_from_the_start_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (server, central_db) = central(dir.path(), false);
    server.load_demo(CLINIC, 1).unwrap();
    let token = server.issue_token(CLINIC).unwrap();
    let db = local_store(dir.path());
    let ids = record(&db, 5);
    let mut first = config(server.base_url(), token.clone());
    first.pull = false;
    let run = SyncEngine::new(db.clone(), first)
        .unwrap()
        .sync_once()
        .await
        .unwrap();
    assert_eq!(run.delivered, 5);
    assert_eq!(
        db.read(|c| pull::cursor(c, pull::STREAM_REPORTS)).unwrap(),
        0
    );
    let trail = |db: &clinic_store::Database| -> usize {
        ids.iter()
            .map(|id| db.read(|c| audit::for_report(c, id)).unwrap().len())
            .sum()
    };
    let before = trail(&db);

    let engine = SyncEngine::new(db.clone(), config(server.base_url(), token)).unwrap();
    let run = engine.sync_once().await.unwrap();
    assert_eq!((run.delivered, run.set_aside), (0, 0), "{run:?}");
    assert!(db.read(|c| pull::cursor(c, pull::STREAM_REPORTS)).unwrap() > 0);
    assert_eq!(db.read(outbox::all).unwrap().len(), 5, "nothing duplicated");
    assert_eq!(trail(&db), before, "nothing written");
    assert_eq!(
        db.read(|c| outbox::in_state(c, outbox::OutboxState::Delivered))
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        server_copies(&central_db, CLINIC, &ids),
        [1; 5],
        "each stored once on the server"
    );
}

/// A clinic server from before the reports feed: it has the other three feeds and
/// answers 404 for the fourth. The device pulls what there is and stays
/// upload-only for reports; the run succeeds and nothing is set aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_reports_feed_is_upload_only_for_reports() {
    use axum::routing::get;
    let empty = || async {
        axum::Json(serde_json::json!({ "items": [], "nextCursor": 0, "hasMore": false }))
    };
    let app = axum::Router::new()
        .route(clinic_protocol::paths::FEED_PATIENTS, get(empty))
        .route(clinic_protocol::paths::FEED_STAFF, get(empty))
        .route(clinic_protocol::paths::FEED_APPOINTMENTS, get(empty));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let db = local_store(dir.path());
    let engine = SyncEngine::new(db.clone(), config(url, "token".into())).unwrap();
    let run = engine.sync_once().await.unwrap();
    assert_eq!((run.pulled, run.set_aside), (0, 0), "{run:?}");
    let status = engine.status();
    assert!(!status.upload_only, "it sends patients and schedules");
    assert!(status.last_error.is_none(), "{status:?}");
    assert_eq!(
        db.read(|c| pull::cursor(c, pull::STREAM_REPORTS)).unwrap(),
        0
    );
}
