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
use clinic_sync::SyncEngine;
use futures_util::StreamExt;
use support::*;

const SCHEDULES: u64 = 100;
const IN_PARALLEL: usize = 8;

async fn run_schedule(
    seed: u64,
    replicas: Vec<std::net::SocketAddr>,
    token: String,
) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let db = local_store(dir.path());
    let mut rng = fastrand::Rng::with_seed(seed);
    let ids = record(&db, rng.usize(1..=6));
    let schedule = Arc::new(Random::new(seed, 0.1 + rng.f64() * 0.5, 400));
    let proxy = start_proxy_spread(replicas, schedule).await;
    drain_while_recording(
        seed,
        &db,
        fault_config(proxy.url(), token, seed),
        &mut rng,
        ids,
    )
    .await
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

/// The database stops while the app is sending: the replicas answer 503, the outbox
/// keeps every report, and once the database is back each is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_mid_load_loses_and_doubles_nothing() {
    // Its own cluster: this test stops and starts it.
    let cluster = PgCluster::start().expect("PostgreSQL starts");
    let url = cluster.create_database().unwrap();
    let options = PgOptions {
        pool_size: 4,
        timeout: Duration::from_secs(1),
    };
    let servers: Vec<_> = (0..2)
        .map(|_| {
            spawn_store_for_tests(
                Arc::new(PostgresStore::connect(&url, options).unwrap()),
                false,
            )
            .unwrap()
        })
        .collect();
    let token = servers[0].issue_token("C001").unwrap();
    let replicas: Vec<_> = servers.iter().map(|s| s.addr).collect();

    let dir = tempfile::tempdir().unwrap();
    let db = local_store(dir.path());
    let mut ids = record(&db, 5);
    let proxy = start_proxy_spread(replicas, Arc::new(Always(Fault::Pass))).await;
    let mut cfg = fault_config(proxy.url(), token, 1);
    cfg.request_timeout = Duration::from_secs(5);
    let engine = SyncEngine::new(db.clone(), cfg).unwrap();
    let handle = engine.spawn(&tokio::runtime::Handle::current());
    let wait_delivered = |n: usize, secs: u64| {
        let db = db.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(secs);
            loop {
                let counts = db.read(outbox::counts).unwrap();
                if counts.delivered as usize >= n {
                    return counts;
                }
                assert!(
                    Instant::now() < deadline,
                    "not delivered in time: {counts:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    wait_delivered(ids.len(), 30).await;

    cluster.stop().unwrap();
    let db2 = db.clone();
    ids.extend(
        tokio::task::spawn_blocking(move || record(&db2, 12))
            .await
            .unwrap(),
    );
    handle.report_queued();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let during = db.read(outbox::counts).unwrap();
    assert_eq!(during.rejected, 0, "a 503 is not a rejection");
    assert!(
        (during.delivered as usize) < ids.len(),
        "nothing can be stored while the database is down: {during:?}"
    );
    let health = healthz_status(servers[1].addr).await;
    assert_eq!(health, 503);

    cluster.start_again().unwrap();
    handle.report_queued();
    let counts = wait_delivered(ids.len(), 60).await;
    handle.shutdown();
    assert_eq!((counts.queued, counts.sending, counts.rejected), (0, 0, 0));
    let store = PostgresStore::connect(&url, PgOptions::default()).unwrap();
    assert_eq!(
        store.report_count(Some("C001")).unwrap(),
        ids.len() as u64,
        "each report exactly once"
    );
}

/// `GET /healthz` over a raw socket: the status code.
async fn healthz_status(addr: std::net::SocketAddr) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[9..12]).parse().unwrap()
}
