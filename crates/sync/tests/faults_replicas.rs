//! The fault schedules of `faults.rs`, with the proxy spreading connections over two
//! clinic-central replicas on one PostgreSQL (a retry often lands on the other
//! replica): each schedule must still end with every report stored exactly once.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clinic_central::spawn_store_for_tests;
use clinic_central::store::postgres::cluster::PgCluster;
use clinic_central::store::{CentralStore, PgOptions, PostgresStore};
use clinic_store::outbox;
use clinic_sync::{SyncConfig, SyncEngine};
use futures_util::StreamExt;
use support::*;

const SCHEDULES: u64 = 100;
const IN_PARALLEL: usize = 8;

fn config(url: String, token: String, seed: u64) -> SyncConfig {
    let mut c = SyncConfig::new(url, Some(token));
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
    c.batch_size = rng.usize(1..=4);
    c.single_chunk = 3;
    c.pull = false;
    c.reuse_connections = false;
    c.backoff_base = Duration::from_millis(1);
    c.backoff_cap = Duration::from_millis(25);
    c.probe_interval = Duration::from_millis(20);
    c.interval = Duration::from_millis(200);
    c.connect_timeout = Duration::from_millis(500);
    c.request_timeout = Duration::from_millis(250);
    c
}

async fn run_schedule(
    seed: u64,
    replicas: Vec<std::net::SocketAddr>,
    token: String,
) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let db = local_store(dir.path());
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut ids = record(&db, rng.usize(1..=6));
    let schedule = Arc::new(Random::new(seed, 0.1 + rng.f64() * 0.5, 400));
    let proxy = start_proxy_spread(replicas, schedule).await;
    let engine = SyncEngine::new(db.clone(), config(proxy.url(), token, seed)).unwrap();
    let handle = engine.spawn(&tokio::runtime::Handle::current());
    for _ in 0..rng.usize(0..3) {
        tokio::time::sleep(Duration::from_millis(rng.u64(0..60))).await;
        let more = rng.usize(1..=3);
        let db2 = db.clone();
        ids.extend(
            tokio::task::spawn_blocking(move || record(&db2, more))
                .await
                .unwrap(),
        );
        handle.report_queued();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut status = handle.subscribe();
    loop {
        let counts = db.read(outbox::counts).unwrap();
        if counts.delivered as usize == ids.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "schedule {seed}: not drained: {counts:?} {:?}",
            handle.status()
        );
        let _ = tokio::time::timeout(Duration::from_millis(100), status.changed()).await;
    }
    handle.shutdown();
    let counts = db.read(outbox::counts).unwrap();
    assert_eq!(
        (counts.queued, counts.sending, counts.rejected),
        (0, 0, 0),
        "schedule {seed}"
    );
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_report_arrives_exactly_once_across_two_replicas() {
    let url = PgCluster::shared()
        .expect("PostgreSQL starts")
        .create_database()
        .unwrap();
    let servers: Vec<_> = (0..2)
        .map(|_| {
            let store = Arc::new(PostgresStore::connect(&url, PgOptions::default()).unwrap());
            spawn_store_for_tests(store, false).unwrap()
        })
        .collect();
    let token = servers[0].issue_token("C001").unwrap();
    let replicas: Vec<_> = servers.iter().map(|s| s.addr).collect();
    let started = Instant::now();
    let results: Vec<Vec<String>> = futures_util::stream::iter(0..SCHEDULES)
        .map(|seed| tokio::spawn(run_schedule(seed, replicas.clone(), token.clone())))
        .buffer_unordered(IN_PARALLEL)
        .map(|r| r.unwrap())
        .collect()
        .await;
    let all: Vec<String> = results.into_iter().flatten().collect();
    // Every ID is a fresh UUID and (clinic, reportId) is the primary key, so the
    // count equal to the number sent, with every one acknowledged, is "each once".
    let store = PostgresStore::connect(&url, PgOptions::default()).unwrap();
    assert_eq!(store.report_count(Some("C001")).unwrap(), all.len() as u64);
    assert_eq!(store.report_count(None).unwrap(), all.len() as u64);
    eprintln!(
        "{SCHEDULES} schedules over 2 replicas, {} reports, {:.1} s",
        all.len(),
        started.elapsed().as_secs_f64()
    );
}
