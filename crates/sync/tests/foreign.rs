//! The real engine over a real store against servers that are *not* clinic-central:
//! a stand-in HTTP server per case. A stand-in is the point here: these are the
//! foreign answers hospital networks produce (captive portals, proxies, login
//! pages, maintenance pages, the original API's echo) and the records an older or
//! laxer server may send that this device refuses; clinic-central itself (which
//! validates with the device's rules) cannot be made to produce them.
//!
//! Pushes: nothing counts as delivered unless the stand-in stored it, and the
//! status says why. Pulls: poison items are set aside with their reasons, the good
//! items around them arrive, and the cursor moves on.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clinic_domain::PatientId;
use clinic_protocol::{
    BatchItemResult, BatchItemStatus, BatchRequest, BatchResponse, FeedQuery, ReportSubmission,
    SnapshotCounts, SnapshotKind, SnapshotLine,
};
use clinic_store::outbox::{self, OutboxState};
use clinic_store::{Database, patients, pull};
use clinic_sync::{SyncConfig, SyncEngine, SyncError, SyncProblemKind};
use rstest::rstest;
use support::*;

/// What the stand-in's single-report route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Single {
    /// Stores the report and echoes it like the hospital's original Gin server
    /// (its own `reportId` and `submitTime`).
    Echo,
    Html,
    Empty,
    OtherJson,
    Redirect(u16),
    /// Stores nothing, echoes another patient (a cache or another clinic's answer).
    EchoOtherPatient,
    EchoOtherScore,
    /// A 400 with an HTML body, as a proxy's error page: not a refusal of the report.
    HtmlBadRequest,
}

/// What the stand-in's batch route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Batch {
    /// 404 with a JSON error, like a server without the route.
    Missing,
    /// 404 on the first call, then a working batch route (a deploy glitch).
    MissingOnce,
    Works,
    Html,
    Redirect(u16),
    /// A well-formed batch answer about reports nobody sent.
    OtherIds,
    EmptyResults,
    /// 503 with this `Retry-After` (seconds, as text) on the first call, then works.
    BusyOnce(&'static str),
}

/// What the stand-in's snapshot route answers; without one (`None`) it has no
/// such route (404), as the hospital's original server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SnapshotAnswer {
    /// A captive portal's login page, with 200.
    Html,
    /// One JSON line of another shape (a feed page).
    OtherJson,
    /// 200 with no body at all.
    Empty,
    /// A snapshot of three patients that breaks off after the first.
    BrokenOff,
}

#[derive(Clone)]
struct Fake {
    single: Arc<Mutex<Single>>,
    batch: Arc<Mutex<Batch>>,
    /// Report IDs (ours) the stand-in really stored.
    stored: Arc<Mutex<Vec<String>>>,
    batch_calls: Arc<AtomicU64>,
    single_calls: Arc<AtomicU64>,
    /// Requests that reached the redirect's target: a client following it.
    portal_hits: Arc<AtomicU64>,
    /// Raw JSON items per feed, in seq order; empty map: no feeds (404).
    feeds: Arc<HashMap<String, Vec<(i64, String)>>>,
    snapshot: Option<SnapshotAnswer>,
}

impl Fake {
    fn new(single: Single, batch: Batch) -> Self {
        Self {
            single: Arc::new(Mutex::new(single)),
            batch: Arc::new(Mutex::new(batch)),
            stored: Arc::default(),
            batch_calls: Arc::default(),
            single_calls: Arc::default(),
            portal_hits: Arc::default(),
            feeds: Arc::default(),
            snapshot: None,
        }
    }
    fn stored(&self) -> Vec<String> {
        self.stored.lock().unwrap().clone()
    }
}

fn html(status: StatusCode) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!DOCTYPE html><html><body><h1>Network login</h1><form>Password</form></body></html>",
    )
        .into_response()
}

fn redirect(status: u16, addr: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::LOCATION,
        format!("http://{addr}/portal/login").parse().unwrap(),
    );
    (StatusCode::from_u16(status).unwrap(), headers).into_response()
}

fn missing() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": "not found"})),
    )
        .into_response()
}

async fn single_route(State((fake, addr)): State<(Fake, String)>, body: String) -> Response {
    fake.single_calls.fetch_add(1, Ordering::SeqCst);
    let Ok(r) = serde_json::from_str::<ReportSubmission>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": "bad json"})),
        )
            .into_response();
    };
    let mode = *fake.single.lock().unwrap();
    let echo = |patient: &str, score: i64| {
        axum::Json(serde_json::json!({
            "reportId": uuid::Uuid::now_v7().to_string(),
            "patientId": patient,
            "painScore": score,
            "submitTime": chrono::Utc::now().timestamp(),
        }))
        .into_response()
    };
    match mode {
        Single::Echo => {
            fake.stored.lock().unwrap().push(r.report_id.to_string());
            echo(&r.patient_id, r.pain_score)
        }
        Single::Html => html(StatusCode::OK),
        Single::Empty => StatusCode::OK.into_response(),
        Single::OtherJson => {
            axum::Json(serde_json::json!({"ok": true, "message": "saved"})).into_response()
        }
        Single::Redirect(s) => redirect(s, &addr),
        Single::EchoOtherPatient => echo("P0000999", r.pain_score),
        Single::EchoOtherScore => echo(&r.patient_id, (r.pain_score + 1) % 11),
        Single::HtmlBadRequest => html(StatusCode::BAD_REQUEST),
    }
}

async fn batch_route(State((fake, addr)): State<(Fake, String)>, body: String) -> Response {
    let n = fake.batch_calls.fetch_add(1, Ordering::SeqCst);
    let mode = *fake.batch.lock().unwrap();
    let works = |body: &str| {
        let req: BatchRequest = serde_json::from_str(body).unwrap();
        let mut stored = fake.stored.lock().unwrap();
        let results = req
            .reports
            .iter()
            .map(|r| {
                stored.push(r.report_id.to_string());
                BatchItemResult {
                    report_id: Some(r.report_id.to_string()),
                    status: BatchItemStatus::Accepted,
                    reason: None,
                }
            })
            .collect();
        axum::Json(BatchResponse { results }).into_response()
    };
    match mode {
        Batch::Missing => missing(),
        Batch::BusyOnce(retry_after) if n == 0 => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, retry_after)],
            axum::Json(serde_json::json!({"error": "maintenance"})),
        )
            .into_response(),
        Batch::BusyOnce(_) => works(&body),
        Batch::MissingOnce if n == 0 => missing(),
        Batch::MissingOnce | Batch::Works => works(&body),
        Batch::Html => html(StatusCode::OK),
        Batch::Redirect(s) => redirect(s, &addr),
        Batch::OtherIds => axum::Json(BatchResponse {
            results: vec![BatchItemResult {
                report_id: Some(uuid::Uuid::now_v7().to_string()),
                status: BatchItemStatus::Accepted,
                reason: None,
            }],
        })
        .into_response(),
        Batch::EmptyResults => axum::Json(BatchResponse { results: vec![] }).into_response(),
    }
}

async fn portal(State((fake, _)): State<(Fake, String)>) -> Response {
    fake.portal_hits.fetch_add(1, Ordering::SeqCst);
    html(StatusCode::OK)
}

/// A feed page built as text, so an item can carry what a JSON serializer never
/// writes (a lone surrogate escape).
async fn feed_route(
    State((fake, _)): State<(Fake, String)>,
    Path(kind): Path<String>,
    Query(q): Query<FeedQuery>,
) -> Response {
    let Some(items) = fake.feeds.get(&kind) else {
        return missing();
    };
    let page: Vec<&(i64, String)> = items
        .iter()
        .filter(|(seq, _)| *seq > q.after)
        .take(q.limit as usize)
        .collect();
    let next = page.last().map_or(q.after, |(seq, _)| *seq);
    let has_more = items.iter().any(|(seq, _)| *seq > next);
    let body = format!(
        r#"{{"items":[{}],"nextCursor":{next},"hasMore":{has_more}}}"#,
        page.iter()
            .map(|(_, raw)| raw.as_str())
            .collect::<Vec<_>>()
            .join(",")
    );
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn snapshot_route(State((fake, _)): State<(Fake, String)>) -> Response {
    let ndjson = |body: String| {
        (
            [(header::CONTENT_TYPE, clinic_protocol::SNAPSHOT_CONTENT_TYPE)],
            body,
        )
    };
    match fake.snapshot {
        None => missing(),
        Some(SnapshotAnswer::Html) => html(StatusCode::OK),
        Some(SnapshotAnswer::OtherJson) => {
            ndjson(r#"{"items":[],"nextCursor":0,"hasMore":false}"#.to_owned() + "\n")
                .into_response()
        }
        Some(SnapshotAnswer::Empty) => ndjson(String::new()).into_response(),
        Some(SnapshotAnswer::BrokenOff) => {
            let counts = SnapshotCounts {
                staff: 0,
                patients: 3,
                appointments: 0,
                reports: 0,
            };
            let begin = SnapshotLine::<serde_json::Value>::begin(7, counts);
            let (_, item) = patient_item(1, "P0000101", "张三", "male", "1970-01-01");
            let first = SnapshotLine::item(
                SnapshotKind::Patients,
                serde_json::from_str::<serde_json::Value>(&item).unwrap(),
            );
            ndjson(format!(
                "{}\n{}\n",
                serde_json::to_string(&begin).unwrap(),
                serde_json::to_string(&first).unwrap()
            ))
            .into_response()
        }
    }
}

async fn start(fake: Fake) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = Router::new()
        .route("/v1/reports", post(single_route))
        .route("/v1/reports/batch", post(batch_route))
        .route("/v1/feeds/{kind}", get(feed_route))
        .route(clinic_protocol::paths::SNAPSHOT, get(snapshot_route))
        .route("/portal/login", get(portal).post(portal))
        .with_state((fake, addr.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn config(url: String) -> SyncConfig {
    let mut c = SyncConfig::new(url, Some("cct_test".into()));
    c.pull = false;
    c.backoff_base = Duration::from_millis(5);
    c.backoff_cap = Duration::from_millis(20);
    c.interval = Duration::from_millis(50);
    c.probe_interval = Duration::from_millis(50);
    c.request_timeout = Duration::from_secs(5);
    c
}

fn delivered(db: &Database) -> Vec<String> {
    db.read(|c| outbox::in_state(c, OutboxState::Delivered))
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

#[rstest]
#[case::html_200(Batch::Missing, Single::Html)]
#[case::empty_200(Batch::Missing, Single::Empty)]
#[case::json_of_another_shape(Batch::Missing, Single::OtherJson)]
#[case::single_redirect_301(Batch::Missing, Single::Redirect(301))]
#[case::single_redirect_302(Batch::Missing, Single::Redirect(302))]
#[case::single_redirect_307(Batch::Missing, Single::Redirect(307))]
#[case::echo_of_another_patient(Batch::Missing, Single::EchoOtherPatient)]
#[case::echo_of_another_score(Batch::Missing, Single::EchoOtherScore)]
#[case::html_400_is_not_a_refusal(Batch::Missing, Single::HtmlBadRequest)]
#[case::batch_html_200(Batch::Html, Single::Echo)]
#[case::batch_redirect_301(Batch::Redirect(301), Single::Echo)]
#[case::batch_redirect_302(Batch::Redirect(302), Single::Echo)]
#[case::batch_redirect_307(Batch::Redirect(307), Single::Echo)]
#[case::batch_answer_about_other_reports(Batch::OtherIds, Single::Echo)]
#[case::batch_answer_without_results(Batch::EmptyResults, Single::Echo)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_answer_delivers_nothing_and_the_status_says_why(
    #[case] batch: Batch,
    #[case] single: Single,
) {
    let fake = Fake::new(single, batch);
    let url = start(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = local_store(dir.path());
    let ids = record(&db, 3);
    let engine = SyncEngine::new(db.clone(), config(url)).unwrap();

    let err = engine.sync_once().await.unwrap_err();
    assert!(matches!(err, SyncError::UnexpectedAnswer(_)), "{err}");
    assert!(delivered(&db).is_empty(), "nothing delivered");
    let counts = db.read(outbox::counts).unwrap();
    assert_eq!(
        (counts.queued, counts.rejected),
        (3, 0),
        "kept queued, none set aside as refused"
    );
    for id in &ids {
        let e = db.read(|c| outbox::get(c, id)).unwrap().unwrap();
        assert!(
            e.last_error
                .as_deref()
                .unwrap_or("")
                .contains("proxy or login page"),
            "{:?}",
            e.last_error
        );
    }
    let status = engine.status();
    let problem = status.last_error.expect("the status says why");
    assert_eq!(problem.kind, SyncProblemKind::UnexpectedAnswer);
    assert!(
        problem.detail.contains("not a clinic server"),
        "{}",
        problem.detail
    );
    assert!(
        !status.single_post_mode,
        "no switch to single POSTs without proof"
    );
    assert_eq!(status.waiting, 3);
    assert_eq!(
        fake.portal_hits.load(Ordering::SeqCst),
        0,
        "no redirect is followed"
    );

    // The answers stay foreign: the next run delivers nothing either.
    assert!(engine.sync_once().await.is_err());
    assert!(delivered(&db).is_empty());
    assert!(fake.stored().is_empty(), "the stand-in stored nothing");
}

/// A new device's first sync meets a snapshot route that answers with something
/// else, or breaks off: the sync fails with the reason in the status, nothing
/// counts as loaded (the store still needs its bootstrap, every cursor at 0),
/// and the next sync tries the snapshot again rather than paging the feeds.
#[rstest]
#[case::html_200(SnapshotAnswer::Html)]
#[case::json_of_another_shape(SnapshotAnswer::OtherJson)]
#[case::empty_200(SnapshotAnswer::Empty)]
#[case::broken_off(SnapshotAnswer::BrokenOff)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_or_broken_snapshot_loads_nothing_that_looks_complete(
    #[case] answer: SnapshotAnswer,
) {
    let mut fake = Fake::new(Single::Echo, Batch::Works);
    fake.snapshot = Some(answer);
    let url = start(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::open(&dir.path().join("desk.sqlite3")).unwrap());
    let mut config = config(url);
    config.pull = true;
    let engine = SyncEngine::new(db.clone(), config).unwrap();

    for run in 1..=2 {
        let err = engine.sync_once().await.unwrap_err();
        let foreign = answer != SnapshotAnswer::BrokenOff;
        assert!(
            matches!(
                (&err, foreign),
                (SyncError::UnexpectedAnswer(_), true) | (SyncError::Protocol(_), false)
            ),
            "run {run}: {err}"
        );
        let (needed, cursor) = db
            .read(|c| {
                Ok::<_, clinic_store::StoreError>((
                    clinic_store::bootstrap::needed(c)?,
                    pull::cursor(c, pull::STREAM_PATIENTS)?,
                ))
            })
            .unwrap();
        assert!(needed, "run {run}: the store never looks loaded");
        assert_eq!(cursor, 0, "run {run}: no cursor moved");
        let problem = engine.status().last_error.expect("the status says why");
        let expected = if foreign {
            SyncProblemKind::UnexpectedAnswer
        } else {
            SyncProblemKind::Protocol
        };
        assert_eq!(problem.kind, expected, "run {run}: {}", problem.detail);
    }
    assert_eq!(
        fake.batch_calls.load(Ordering::SeqCst) + fake.single_calls.load(Ordering::SeqCst),
        0,
        "nothing to push"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_apis_echo_proves_delivery_and_the_error_line_goes_once_resolved() {
    // First a captive portal in front of the server, then the real thing.
    let fake = Fake::new(Single::Html, Batch::Missing);
    let url = start(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = local_store(dir.path());
    let ids = record(&db, 4);
    let handle = SyncEngine::new(db.clone(), config(url))
        .unwrap()
        .spawn(&tokio::runtime::Handle::current());
    let mut status = handle.subscribe();
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| s.last_error.is_some()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        handle.status().last_error.unwrap().kind,
        SyncProblemKind::UnexpectedAnswer
    );
    assert!(delivered(&db).is_empty());

    *fake.single.lock().unwrap() = Single::Echo;
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| s.waiting == 0 && s.last_error.is_none()),
    )
    .await
    .expect("delivered once the server answers, and the error line is gone")
    .unwrap();
    handle.shutdown();
    let mut got = delivered(&db);
    got.sort();
    let mut stored = fake.stored();
    stored.sort();
    assert_eq!(got, stored, "delivered exactly what the server stored");
    assert_eq!(stored.len(), ids.len());
    let e = db.read(|c| outbox::get(c, &ids[0])).unwrap().unwrap();
    assert!(
        e.server_report_id.is_some_and(|theirs| theirs != ids[0]),
        "the original API's own ID is kept beside ours"
    );
    assert!(handle.status().single_post_mode);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_route_missing_once_is_tried_again_after_the_recheck_interval() {
    let fake = Fake::new(Single::Echo, Batch::MissingOnce);
    let url = start(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = local_store(dir.path());
    record(&db, 3);
    let mut c = config(url.clone());
    c.batch_recheck = Duration::from_millis(300);
    let engine = SyncEngine::new(db.clone(), c).unwrap();
    assert_eq!(engine.sync_once().await.unwrap().delivered, 3);
    assert!(
        engine.status().single_post_mode,
        "404 and the single route's proof: single POSTs"
    );
    assert_eq!(
        (
            fake.batch_calls.load(Ordering::SeqCst),
            fake.single_calls.load(Ordering::SeqCst)
        ),
        (1, 3)
    );

    record(&db, 2);
    assert_eq!(engine.sync_once().await.unwrap().delivered, 2);
    assert_eq!(
        (
            fake.batch_calls.load(Ordering::SeqCst),
            fake.single_calls.load(Ordering::SeqCst)
        ),
        (1, 5),
        "still single"
    );

    tokio::time::sleep(Duration::from_millis(350)).await;
    record(&db, 2);
    assert_eq!(engine.sync_once().await.unwrap().delivered, 2);
    assert_eq!(
        (
            fake.batch_calls.load(Ordering::SeqCst),
            fake.single_calls.load(Ordering::SeqCst)
        ),
        (2, 5),
        "batch again"
    );
    assert!(!engine.status().single_post_mode);

    // A restart also starts with the batch route.
    record(&db, 2);
    let engine = SyncEngine::new(db.clone(), config(url)).unwrap();
    assert_eq!(engine.sync_once().await.unwrap().delivered, 2);
    assert_eq!(fake.batch_calls.load(Ordering::SeqCst), 3);
    let mut got = delivered(&db);
    got.sort();
    let mut stored = fake.stored();
    stored.sort();
    assert_eq!(got, stored);
    assert_eq!(got.len(), 9);
}

/// A server's `Retry-After` of a day, or of 2^63 s (which used to overflow the
/// deadline and panic the task), delays the next try by at most the backoff cap.
#[rstest]
#[case::a_day("86400")]
#[case::two_to_the_63_seconds("9223372036854775808")]
#[case::u64_max("18446744073709551615")]
#[case::a_date_far_ahead("Fri, 31 Dec 9999 23:59:59 GMT")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_retry_after_waits_at_most_the_backoff_cap(#[case] retry_after: &'static str) {
    let fake = Fake::new(Single::Echo, Batch::BusyOnce(retry_after));
    let url = start(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = local_store(dir.path());
    record(&db, 2);
    let mut c = config(url);
    c.backoff_cap = Duration::from_millis(300);
    c.interval = Duration::from_secs(3600);
    let handle = SyncEngine::new(db.clone(), c)
        .unwrap()
        .spawn(&tokio::runtime::Handle::current());
    let mut status = handle.subscribe();
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| s.waiting == 0 && s.last_error.is_none()),
    )
    .await
    .expect("retried within the cap, not after the server's delay")
    .unwrap();
    handle.shutdown();
    assert_eq!(fake.batch_calls.load(Ordering::SeqCst), 2);
    assert_eq!(fake.stored().len(), 2);
}

// ---- pulls ----

fn patient_item(seq: i64, id: &str, name: &str, sex: &str, birth: &str) -> (i64, String) {
    (
        seq,
        format!(
            r#"{{"seq":{seq},"id":"{id}","data":{{"name":"{name}","sex":"{sex}","birthDate":"{birth}","isInsured":true}}}}"#
        ),
    )
}

fn staff_item(seq: i64, id: &str, role: &str) -> (i64, String) {
    (
        seq,
        format!(
            r#"{{"seq":{seq},"id":"{id}","data":{{"name":"员工{id}","role":"{role}","department":"内科","active":true,"pinVerifier":"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"}}}}"#
        ),
    )
}

fn appointment_item(
    seq: i64,
    id: &str,
    doctor: &str,
    patient: &str,
    start_hour: u32,
    end_hour: u32,
    status: &str,
) -> (i64, String) {
    (
        seq,
        format!(
            r#"{{"seq":{seq},"id":"{id}","data":{{"doctorId":"{doctor}","patientId":"{patient}","startsAt":"2026-11-30T{start_hour:02}:00:00Z","endsAt":"2026-11-30T{end_hour:02}:00:00Z","status":"{status}"}}}}"#
        ),
    )
}

/// Every kind of record the device refuses, between good ones, over pages of 3.
fn poisoned_feeds() -> HashMap<String, Vec<(i64, String)>> {
    let megabyte = "x".repeat(1 << 20);
    let patients = vec![
        patient_item(1, "P0000101", "张三", "male", "1970-01-01"),
        patient_item(2, "P0000102", &"长".repeat(100), "female", "1980-02-02"),
        patient_item(3, "P0000103", "李四", "female", "-0001-01-01"),
        patient_item(4, "P0000104", "王五", "robot", "1990-03-03"),
        // A lone surrogate: valid JSON text, but no string can hold it.
        patient_item(5, "P0000105", r"\udc00", "male", "1990-04-04"),
        patient_item(6, "P0000106", &megabyte, "male", "1990-05-05"),
        (
            7,
            r#"{"seq":7,"id":"P0000107","data":{"name":5}}"#.to_owned(),
        ),
        patient_item(8, "P0000108", "赵六", "unknown", "2001-06-06"),
    ];
    let staff = vec![
        staff_item(1, "D001", "doctor"),
        staff_item(2, "X001", "janitor"),
        staff_item(3, "N001", "nurse"),
    ];
    let appointments = vec![
        appointment_item(1, "A1", "D001", "P0000101", 9, 10, "booked"),
        appointment_item(2, "A2", "D999", "P0000101", 9, 10, "booked"),
        appointment_item(3, "A3", "D001", "P0000101", 11, 10, "booked"),
        appointment_item(4, "A4", "D001", "P0000102", 9, 10, "booked"),
        appointment_item(5, "A5", "D001", "P0000108", 9, 10, "teleported"),
        appointment_item(6, "A6", "D001", "P0000108", 14, 15, "checked_in"),
    ];
    HashMap::from([
        ("patients".into(), patients),
        ("staff".into(), staff),
        ("appointments".into(), appointments),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_feed_items_are_set_aside_and_never_stall_the_stream() {
    let mut fake = Fake::new(Single::Echo, Batch::Works);
    fake.feeds = Arc::new(poisoned_feeds());
    let url = start(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::open(&dir.path().join("desk.sqlite3")).unwrap());
    let mut c = config(url);
    c.pull = true;
    c.feed_page_limit = 3;
    let engine = SyncEngine::new(db.clone(), c.clone()).unwrap();

    let run = engine.sync_once().await.expect("the pull goes through");
    assert_eq!(run.set_aside, 6 + 1 + 4);
    let have = |id: &str| {
        db.read(|c| patients::get(c, &PatientId::parse(id).unwrap()))
            .unwrap()
            .is_some()
    };
    assert!(
        have("P0000101") && have("P0000108"),
        "the good items before and after arrive"
    );
    for bad in [
        "P0000102", "P0000103", "P0000104", "P0000105", "P0000106", "P0000107",
    ] {
        assert!(!have(bad), "{bad} refused");
    }
    let count = |sql: &str| {
        db.read(|c| c.query_row(sql, [], |r| r.get::<_, i64>(0)))
            .unwrap()
    };
    assert_eq!(count("SELECT count(*) FROM patients"), 2);
    assert_eq!(
        count(
            "SELECT count(*) FROM patient_search_keys WHERE patient_id NOT IN ('P0000101', 'P0000108')"
        ),
        0,
        "nothing of a refused patient half-applied"
    );
    assert_eq!(count("SELECT count(*) FROM staff"), 2);
    let appointments: Vec<String> = db
        .read(|c| {
            let mut stmt = c.prepare("SELECT id FROM appointments ORDER BY id")?;
            stmt.query_map([], |r| r.get(0))?.collect()
        })
        .unwrap();
    assert_eq!(appointments, ["A1", "A6"]);
    for (stream, end) in [
        (pull::STREAM_PATIENTS, 8),
        (pull::STREAM_STAFF, 3),
        (pull::STREAM_APPOINTMENTS, 6),
    ] {
        assert_eq!(
            db.read(|c| pull::cursor(c, stream)).unwrap(),
            end,
            "{stream}: the cursor moved on"
        );
    }

    let listed = db.read(|c| pull::set_aside_items(c, 100)).unwrap();
    let reason = |stream: &str, id: &str| {
        listed
            .iter()
            .find(|s| s.stream == stream && s.item_id == id)
            .map(|s| s.reason.clone())
            .unwrap_or_else(|| panic!("{stream}/{id} not listed"))
    };
    assert!(
        reason("patients", "P0000102").contains("name"),
        "{}",
        reason("patients", "P0000102")
    );
    assert!(!reason("patients", "P0000103").is_empty());
    assert!(!reason("patients", "P0000104").is_empty());
    assert!(
        reason("patients", "P0000105").contains("unreadable"),
        "{}",
        reason("patients", "P0000105")
    );
    assert!(
        reason("patients", "P0000106").chars().count() < 400,
        "a 1 MB value is not copied into the reason"
    );
    assert!(reason("patients", "P0000107").contains("unreadable"));
    assert!(reason("staff", "X001").contains("janitor"));
    assert!(
        reason("appointments", "A2").contains("not on this device"),
        "{}",
        reason("appointments", "A2")
    );
    assert!(reason("appointments", "A3").contains("end after it starts"));
    assert!(reason("appointments", "A4").contains("not on this device"));
    assert!(!reason("appointments", "A5").is_empty());
    let status = engine.status();
    assert_eq!(status.set_aside, 11, "counted in the status");
    assert!(
        status.last_error.is_none(),
        "a refused record is not a sync failure"
    );

    // Runs again: nothing new, nothing lost, no error.
    let run = engine.sync_once().await.unwrap();
    assert_eq!(run.set_aside, 0);
    assert_eq!(db.read(pull::set_aside_count).unwrap(), 11);

    // New rules (another app version): the streams are fetched again from just
    // before their oldest set-aside record, and judged afresh.
    let mut newer = c.clone();
    newer.app_version = "9.9.9".into();
    let engine = SyncEngine::new(db.clone(), newer).unwrap();
    assert_eq!(
        db.read(|c| pull::cursor(c, pull::STREAM_PATIENTS)).unwrap(),
        1
    );
    assert_eq!(db.read(|c| pull::cursor(c, pull::STREAM_STAFF)).unwrap(), 1);
    assert_eq!(
        db.read(|c| pull::cursor(c, pull::STREAM_APPOINTMENTS))
            .unwrap(),
        1
    );
    let run = engine.sync_once().await.unwrap();
    assert_eq!(
        run.set_aside, 11,
        "still refused by these rules, listed again"
    );
    assert_eq!(db.read(pull::set_aside_count).unwrap(), 11);
    assert_eq!(count("SELECT count(*) FROM patients"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_feeds_is_a_failure_until_an_upload_is_proven() {
    // No feeds at all and no report sent yet: this may be anything.
    let fake = Fake::new(Single::Echo, Batch::Missing);
    let url = start(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = local_store(dir.path());
    let mut c = config(url);
    c.pull = true;
    let engine = SyncEngine::new(db.clone(), c).unwrap();
    let err = engine.sync_once().await.unwrap_err();
    assert!(
        matches!(err, SyncError::FeedsMissing { status: 404 }),
        "{err}"
    );
    assert_eq!(
        engine.status().last_error.unwrap().kind,
        SyncProblemKind::FeedsMissing
    );
    assert!(!engine.status().upload_only);

    record(&db, 2);
    engine
        .sync_once()
        .await
        .expect("an upload proven: upload-only is not a failure");
    let status = engine.status();
    assert!(status.upload_only && status.last_error.is_none());
    assert_eq!(fake.stored().len(), 2);
}
