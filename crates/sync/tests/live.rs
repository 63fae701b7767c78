//! Live, not on the next tick: while online the engine keeps a `GET /v1/changes`
//! long poll in flight against the real clinic-central, so a change made elsewhere
//! starts this device's run at once; a server without the route leaves the ticker
//! working; shutdown with a wait in flight is prompt.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use clinic_sync::{SyncConfig, SyncEngine, SyncHandle, SyncStatus};
use serde_json::json;
use support::*;
use tokio::sync::watch;

const HOUR: Duration = Duration::from_secs(3600);

/// A device that pulls, with no ticker run due for an hour.
fn live_config(url: String, token: Option<String>) -> SyncConfig {
    let mut c = SyncConfig::new(url, token);
    c.interval = HOUR;
    c.backoff_base = Duration::from_millis(20);
    c.backoff_cap = Duration::from_millis(200);
    c
}

/// Waits (on the status channel) until `done` holds, failing after `limit`.
async fn until(
    status: &mut watch::Receiver<SyncStatus>,
    limit: Duration,
    what: &str,
    done: impl FnMut(&SyncStatus) -> bool,
) -> SyncStatus {
    tokio::time::timeout(limit, status.wait_for(done))
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {limit:?}"))
        .expect("the engine runs")
        .clone()
}

/// Waits until `server` holds `n` long polls (its gauge has no event to await).
async fn until_waiting(server: &clinic_central::TestServer, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.state.metrics.change_waiters.get() != n {
        assert!(
            Instant::now() < deadline,
            "{} long polls held, expected {n}",
            server.state.metrics.change_waiters.get()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn patient_count(db: &clinic_store::Database) -> i64 {
    db.read(|c| c.query_row("SELECT count(*) FROM patients", [], |r| r.get(0)))
        .unwrap()
}

/// Starts a live engine and waits until its start-up runs are over and its long
/// poll is held by the server.
async fn settled(
    server: &clinic_central::TestServer,
    db: &Arc<clinic_store::Database>,
    config: SyncConfig,
) -> (SyncHandle, watch::Receiver<SyncStatus>) {
    let handle = SyncEngine::new(db.clone(), config)
        .unwrap()
        .spawn(&tokio::runtime::Handle::current());
    let mut status = handle.subscribe();
    until(&mut status, Duration::from_secs(10), "first sync", |s| {
        s.last_success_at.is_some() && !s.running
    })
    .await;
    until_waiting(server, 1).await;
    // The ticker's first tick is due at start: let that run end too.
    until(&mut status, Duration::from_secs(10), "start-up runs", |s| {
        !s.running
    })
    .await;
    (handle, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_elsewhere_is_pulled_at_once_with_no_tick_due() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = central(dir.path(), false);
    let token = server.issue_token("C001").unwrap();
    let db = local_store(dir.path());
    let (handle, mut status) = settled(
        &server,
        &db,
        live_config(server.base_url(), Some(token.clone())),
    )
    .await;
    let client = reqwest::Client::new();
    for i in 0..5 {
        let before = handle.status().pulled_changes;
        let patients = patient_count(&db);
        // Another device of the clinic (here: the front desk's record PUT, with its
        // own token) changes the clinic.
        let other = server.issue_token("C001").unwrap();
        let written = Instant::now();
        let resp = client
            .put(format!("{}/v1/patients/P{i}", server.base_url()))
            .bearer_auth(&other)
            .json(&json!({"name": "李静", "sex": "female", "birthDate": "1990-05-01", "isInsured": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        until(&mut status, Duration::from_secs(5), "pulled", |s| {
            s.pulled_changes > before
        })
        .await;
        let took = written.elapsed();
        println!("change {i}: pulled {took:?} after the write");
        assert!(
            took < Duration::from_secs(1),
            "pulled {took:?} after the write"
        );
        assert_eq!(patient_count(&db), patients + 1, "the device holds it");
        // And it waits again.
        until_waiting(&server, 1).await;
    }
    handle.shutdown();
}

/// Shutting down with a long poll in flight returns at once (the loop ends and
/// drops the engine, closing its status channel), and the server frees the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_a_long_poll_in_flight_is_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = central(dir.path(), false);
    let token = server.issue_token("C001").unwrap();
    let db = local_store(dir.path());
    let (handle, mut status) =
        settled(&server, &db, live_config(server.base_url(), Some(token))).await;
    let asked = Instant::now();
    handle.shutdown();
    tokio::time::timeout(Duration::from_millis(500), async {
        while status.changed().await.is_ok() {}
    })
    .await
    .expect("the loop ended at once");
    println!("stopped {:?} after shutdown", asked.elapsed());
    until_waiting(&server, 0).await;
}

/// The hospital's original API has no long poll, and neither has this stand-in: a
/// minimal server with the three feeds (empty) and nothing else, counting what it
/// is asked. (clinic-central always offers the route in full mode, and its compat
/// mode has no feeds, so it would make the device upload-only rather than show
/// that a missing long poll leaves a pulling device on its ticker.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_long_poll_leaves_the_ticker_working() {
    let polls = Arc::new(AtomicU64::new(0));
    let feeds = Arc::new(AtomicU64::new(0));
    let app = {
        let (polls, feeds) = (polls.clone(), feeds.clone());
        Router::new()
            .route(
                "/v1/feeds/{kind}",
                get(move |Path(kind): Path<String>| {
                    if kind == "patients" {
                        feeds.fetch_add(1, Ordering::SeqCst); // once per run
                    }
                    async { axum::Json(json!({"items": [], "nextCursor": 0, "hasMore": false})) }
                }),
            )
            .fallback(move || {
                polls.fetch_add(1, Ordering::SeqCst);
                async {
                    (
                        StatusCode::NOT_FOUND,
                        axum::Json(json!({"error": "not found"})),
                    )
                }
            })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let db = local_store(dir.path());
    let mut config = live_config(format!("http://{addr}"), Some("cct_x".into()));
    config.interval = Duration::from_millis(100);
    let handle = SyncEngine::new(db.clone(), config)
        .unwrap()
        .spawn(&tokio::runtime::Handle::current());
    let mut status = handle.subscribe();
    until(&mut status, Duration::from_secs(5), "first sync", |s| {
        s.last_success_at.is_some()
    })
    .await;
    let runs_before = feeds.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let s = handle.status();
    handle.shutdown();
    let runs = feeds.load(Ordering::SeqCst) - runs_before;
    assert!(
        runs >= 5,
        "the ticker keeps running: {runs} runs in a second"
    );
    // Only `/v1/changes` reaches the fallback (nothing is pushed): the long poll
    // once, and the far-behind probe of the first pull once (it asks again only
    // after `far_behind_probe_every`), then never again.
    assert_eq!(
        polls.load(Ordering::SeqCst),
        2,
        "asked once each, then never again"
    );
    assert!(
        s.last_error.is_none(),
        "no error shown for it: {:?}",
        s.last_error
    );
}

/// A long poll answered "nothing changed" at once (a caching proxy, or a server
/// that ignores `waitSeconds`) backs off like a failure instead of asking again at
/// once: a stand-in answers every `/v1/changes` immediately, and the device asks a
/// few times a second at most (asking again at once, it asked thousands of times).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_answered_without_waiting_is_not_asked_again_at_once() {
    let polls = Arc::new(AtomicU64::new(0));
    let app = {
        let polls = polls.clone();
        Router::new()
            .route(
                "/v1/feeds/{kind}",
                get(|| async {
                    axum::Json(json!({"items": [], "nextCursor": 0, "hasMore": false}))
                }),
            )
            .route(
                clinic_protocol::paths::CHANGES,
                get(move || {
                    polls.fetch_add(1, Ordering::SeqCst);
                    async { axum::Json(json!({"changeSeq": 0})) }
                }),
            )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let db = local_store(dir.path());
    let handle = SyncEngine::new(
        db.clone(),
        live_config(format!("http://{addr}"), Some("cct_x".into())),
    )
    .unwrap()
    .spawn(&tokio::runtime::Handle::current());
    let mut status = handle.subscribe();
    until(&mut status, Duration::from_secs(5), "first sync", |s| {
        s.last_success_at.is_some()
    })
    .await;
    // Counted from the first sync on: how long that took (the machine's load) is
    // not what this measures.
    let before = polls.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let s = handle.status();
    handle.shutdown();
    let polls = polls.load(Ordering::SeqCst) - before;
    // The backoff here starts at 20 ms and is capped at 200 ms, and each quiet
    // answer's pull starts it again: some 10 to 20 in 1.5 s. Asked again at once,
    // it would be one poll per loopback round trip: hundreds.
    assert!((1..=30).contains(&polls), "asked {polls} times in 1.5 s");
    assert!(
        s.last_error.is_none(),
        "no error shown for it: {:?}",
        s.last_error
    );
}

/// Another device of the clinic (its own store, token and engine) records a report:
/// its push wakes this device's long poll, and this device's run starts and ends
/// within a second, with no ticker run due. (Needs the server to number reports from
/// the clinic's counter: feed-central's branch.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_another_device_pushes_starts_this_devices_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = central(dir.path(), false);
    let b_dir = tempfile::tempdir().unwrap();
    let b_db = local_store(b_dir.path());
    let b_token = server.issue_token("C001").unwrap();
    let (b, mut b_status) = settled(
        &server,
        &b_db,
        live_config(server.base_url(), Some(b_token)),
    )
    .await;
    let a_db = local_store(dir.path());
    let a_token = server.issue_token("C001").unwrap();
    let a = SyncEngine::new(a_db.clone(), live_config(server.base_url(), Some(a_token)))
        .unwrap()
        .spawn(&tokio::runtime::Handle::current());
    let mut a_status = a.subscribe();
    until(
        &mut a_status,
        Duration::from_secs(10),
        "A's first sync",
        |s| s.last_success_at.is_some() && !s.running,
    )
    .await;
    until_waiting(&server, 2).await;
    for _ in 0..5 {
        b_status.borrow_and_update();
        let recorded = Instant::now();
        let db = a_db.clone();
        tokio::task::spawn_blocking(move || record(&db, 1))
            .await
            .unwrap();
        a.report_queued();
        until(
            &mut b_status,
            Duration::from_secs(5),
            "B's run starts",
            |s| s.running,
        )
        .await;
        until(&mut b_status, Duration::from_secs(5), "B's run ends", |s| {
            !s.running
        })
        .await;
        let took = recorded.elapsed();
        println!("B ran {took:?} after A recorded");
        assert!(
            took < Duration::from_secs(1),
            "B ran {took:?} after A recorded"
        );
        until_waiting(&server, 2).await;
    }
    a.shutdown();
    b.shutdown();
}
