//! Push through a fault-injecting proxy to the real clinic-central: 200+ seeded,
//! randomized schedules of dropped connections, delays past the client's timeout,
//! injected 500/503/429, resets mid-answer, answers lost after the server
//! committed, a captive portal's HTML 200, redirects to a login page, committed
//! answers cut to half their JSON and answers dripped out slowly. Nothing that
//! is not the server's proof may count as delivered. Each must end with every report stored exactly once and the outbox
//! drained (all delivered, nothing sending, queued or rejected).

mod support;

use std::sync::Arc;
use std::time::Instant;

use clinic_store::outbox::{self, OutboxState};
use futures_util::StreamExt;
use support::*;

const SCHEDULES: u64 = 208;
const IN_PARALLEL: usize = 8;

/// One schedule: some reports before the engine starts, more while it runs.
async fn run_schedule(
    seed: u64,
    upstream: std::net::SocketAddr,
    token: String,
) -> (Vec<String>, u64) {
    let dir = tempfile::tempdir().unwrap();
    let db = local_store(dir.path());
    let mut rng = fastrand::Rng::with_seed(seed);
    let ids = record(&db, rng.usize(1..=6));
    // Ten fault kinds share the faulty connections: enough of each to mean something.
    let schedule = Arc::new(Random::new(seed, 0.15 + rng.f64() * 0.55, 400));
    let proxy = start_proxy(upstream, schedule).await;
    let ids = drain_while_recording(
        seed,
        &db,
        fault_config(proxy.url(), token, seed),
        &mut rng,
        ids,
    )
    .await;
    assert!(
        db.read(|c| outbox::in_state(c, OutboxState::Delivered))
            .unwrap()
            .iter()
            .all(|e| e.attempts >= 1)
    );
    let connections = proxy.connections.load(std::sync::atomic::Ordering::SeqCst);
    (ids, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_report_arrives_exactly_once_whatever_the_network_does() {
    let dir = tempfile::tempdir().unwrap();
    let (server, central_db) = central(dir.path(), false);
    let token = server.issue_token("C001").unwrap();
    let upstream = server.addr;
    let started = Instant::now();
    let results: Vec<(Vec<String>, u64)> = futures_util::stream::iter(0..SCHEDULES)
        .map(|seed| {
            let token = token.clone();
            tokio::spawn(run_schedule(seed, upstream, token))
        })
        .buffer_unordered(IN_PARALLEL)
        .map(|r| r.unwrap())
        .collect()
        .await;
    let all: Vec<String> = results.iter().flat_map(|(ids, _)| ids.clone()).collect();
    let copies = server_copies(&central_db, "C001", &all);
    assert!(
        copies.iter().all(|&n| n == 1),
        "some report is missing or stored twice"
    );
    assert_eq!(server.report_count(Some("C001")).unwrap(), all.len() as u64);
    let requests: u64 = results.iter().map(|(_, c)| c).sum();
    let injected: Vec<(&str, u64)> = FAULT_NAMES
        .iter()
        .zip(INJECTED.iter())
        .map(|(n, c)| (*n, c.load(std::sync::atomic::Ordering::Relaxed)))
        .collect();
    eprintln!("faults injected: {injected:?}");
    // Every kind the random schedule draws (not "pass", "hold" or "hide-batch", which other tests use).
    for (name, count) in injected[1..6].iter().chain(&injected[7..11]) {
        assert!(
            *count >= 20,
            "too few '{name}' faults to mean anything: {count}"
        );
    }
    eprintln!(
        "{SCHEDULES} schedules, {} reports, {requests} proxied connections, {:.1} s",
        all.len(),
        started.elapsed().as_secs_f64()
    );
}

/// A sync dropped inside a running app between its claim and its verdicts (an
/// engine replaced mid-run, a task cancelled while its claim committed on the
/// blocking pool) leaves reports `sending` with nobody to finish them. The engine
/// that goes on sends them once their lease has passed, without waiting for a
/// restart, and leaves alone those whose lease still runs (they may be on the wire).
#[rstest::rstest]
#[case::lease_passed(0, true)]
#[case::lease_running(3600, false)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_claim_is_sent_once_its_lease_has_passed(
    #[case] lease_left_secs: i64,
    #[case] sent_now: bool,
) {
    let dir = tempfile::tempdir().unwrap();
    let (server, central_db) = central(dir.path(), false);
    let db = local_store(dir.path());
    let ids = record(&db, 3);
    let mut config = clinic_sync::SyncConfig::new(
        format!("http://{}", server.addr),
        Some(server.issue_token("C001").unwrap()),
    );
    config.pull = false;
    let engine = clinic_sync::SyncEngine::new(db.clone(), config).unwrap();
    // The dropped sync's claim, made after this engine started (so its start-up
    // requeue cannot be what rescues them).
    let now = chrono::Utc::now().timestamp();
    let orphaned = db
        .write(|c| outbox::claim_batch(c, now, 10, now + lease_left_secs))
        .unwrap();
    assert_eq!(orphaned.len(), 3);

    let run = engine.sync_once().await.unwrap();
    let copies = server_copies(&central_db, "C001", &ids);
    let sending = db.read(outbox::counts).unwrap().sending;
    if sent_now {
        assert_eq!((run.delivered, copies, sending), (3, vec![1, 1, 1], 0));
    } else {
        assert_eq!((run.delivered, copies, sending), (0, vec![0, 0, 0], 3));
    }
}
