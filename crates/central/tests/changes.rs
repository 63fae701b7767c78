//! `GET /v1/changes`, the long poll: woken by a write of its clinic and by no other
//! clinic's, by a write another replica (or the command line) committed, capped
//! with a 503, released at shutdown, and never a way around the bounds on silent
//! and slow connections: those still close while authenticated waiters are held.

mod common;

use std::time::{Duration, Instant};

use clinic_central::changes::POLL_INTERVAL;
use clinic_central::{Limits, TestServer, spawn_for_tests_with, spawn_store_for_tests};
use clinic_domain::{Patient, PatientId, Sex};
use common::{Backend, env, postgres_database, postgres_store, status_json};
use reqwest::Client;
use rstest::rstest;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn patient_body(name: &str) -> Value {
    json!({"name": name, "sex": "female", "birthDate": "1990-05-01", "isInsured": true})
}

/// One long poll; its status, the answered counter and how long it took.
async fn poll(
    client: &Client,
    base: &str,
    token: &str,
    after: i64,
    wait_seconds: u32,
) -> (u16, Value, Duration) {
    let started = Instant::now();
    let resp = client
        .get(format!("{base}/v1/changes"))
        .query(&[("after", after), ("waitSeconds", i64::from(wait_seconds))])
        .bearer_auth(token)
        .timeout(Duration::from_secs(70))
        .send()
        .await
        .expect("the long poll is answered");
    let (status, body) = status_json(resp).await;
    (status, body, started.elapsed())
}

/// The clinic's counter now (a poll that cannot wait).
async fn counter(client: &Client, base: &str, token: &str) -> i64 {
    let (status, body, _) = poll(client, base, token, i64::MAX, 0).await;
    assert_eq!(status, 200, "{body}");
    body["changeSeq"].as_i64().expect("changeSeq")
}

/// Waits until `server` holds `n` long polls (the gauge has no event to await).
async fn until_waiting(server: &TestServer, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.state.metrics.change_waiters.get() != n {
        assert!(
            Instant::now() < deadline,
            "{} waiters, expected {n}",
            server.state.metrics.change_waiters.get()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

type Poll = tokio::task::JoinHandle<(u16, Value, Duration)>;

fn spawn_poll(base: String, token: String, after: i64, wait_seconds: u32) -> Poll {
    tokio::spawn(async move { poll(&Client::new(), &base, &token, after, wait_seconds).await })
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_wakes_for_a_write_of_its_clinic_and_not_for_another_clinics(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let (ours, theirs) = (env.token("C001"), env.token("C002"));
    let base = env.server.base_url();
    let (c1, c2) = (
        counter(&env.client, &base, &ours).await,
        counter(&env.client, &base, &theirs).await,
    );
    let mine = spawn_poll(base.clone(), ours.clone(), c1, 20);
    let other = spawn_poll(base.clone(), theirs.clone(), c2, 3);
    until_waiting(&env.server, 2).await;

    let written = Instant::now();
    let (status, ack) = status_json(
        env.put("/v1/patients/P1", &ours, &patient_body("李静"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{ack}");
    let (status, body, _) = mine.await.unwrap();
    let woken_in = written.elapsed();
    assert_eq!(
        (status, body["changeSeq"].as_i64()),
        (200, ack["seq"].as_i64())
    );
    assert!(
        woken_in < Duration::from_secs(1),
        "woken {woken_in:?} after the write"
    );

    // The other clinic's waiter sleeps through it and ends with its counter unchanged.
    let (status, body, took) = other.await.unwrap();
    assert_eq!((status, body["changeSeq"].as_i64()), (200, Some(c2)));
    assert!(took >= Duration::from_millis(2_900), "ended after {took:?}");
    assert_eq!(env.server.state.metrics.change_waiters.get(), 0);
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_already_past_answers_at_once_and_bad_queries_are_400(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let base = env.server.base_url();
    env.put("/v1/patients/P1", &token, &patient_body("李静"))
        .send()
        .await
        .unwrap();
    let (status, body, took) = poll(&env.client, &base, &token, 0, 50).await;
    assert_eq!((status, body["changeSeq"].as_i64()), (200, Some(1)));
    assert!(took < Duration::from_secs(1), "{took:?}");
    for query in ["after=-1", "after=x", "waitSeconds=-5"] {
        let resp = env
            .client
            .get(format!("{base}/v1/changes?{query}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{query}");
    }
    // Unauthenticated: 401 at once, never a wait.
    let started = Instant::now();
    let resp = env
        .client
        .get(format!("{base}/v1/changes?after=1&waitSeconds=50"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// A write that did not go through this server's HTTP API (another replica, the
/// `import` command) is seen by the poll of the counters, within about its interval.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_committed_elsewhere_wakes_the_waiters_within_the_poll_interval(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let base = env.server.base_url();
    let after = counter(&env.client, &base, &token).await;
    let waiter = spawn_poll(base, token, after, 20);
    until_waiting(&env.server, 1).await;
    let store = env.server.store.clone();
    let written = Instant::now();
    let seq = tokio::task::spawn_blocking(move || store.upsert_patient("C001", &patient("P9")))
        .await
        .unwrap()
        .unwrap();
    let (status, body, _) = waiter.await.unwrap();
    let woken_in = written.elapsed();
    assert_eq!((status, body["changeSeq"].as_i64()), (200, Some(seq)));
    println!("{backend:?}: woken {woken_in:?} after a write outside the server");
    assert!(
        woken_in < POLL_INTERVAL + Duration::from_millis(500),
        "woken {woken_in:?} after the write"
    );
}

fn patient(id: &str) -> Patient {
    Patient {
        id: PatientId::parse(id).unwrap(),
        name: "王芳".into(),
        sex: Sex::Female,
        birth_date: chrono::NaiveDate::from_ymd_opt(1980, 1, 1).unwrap(),
        is_insured: false,
        phone: None,
    }
}

/// Two replicas on one PostgreSQL: a waiter on one is woken by a write through the
/// other; the latency is printed (the README's figure comes from the bench).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_another_replica_wakes_the_waiter() {
    let url = postgres_database();
    let a = spawn_store_for_tests(postgres_store(&url), false).unwrap();
    let b = spawn_store_for_tests(postgres_store(&url), false).unwrap();
    let token = a.issue_token("C001").unwrap();
    let client = Client::new();
    let mut worst = Duration::ZERO;
    for i in 0..5 {
        let after = counter(&client, &b.base_url(), &token).await;
        let waiter = spawn_poll(b.base_url(), token.clone(), after, 20);
        until_waiting(&b, 1).await;
        let written = Instant::now();
        let resp = client
            .put(format!("{}/v1/patients/P{i}", a.base_url()))
            .bearer_auth(&token)
            .json(&patient_body("李静"))
            .send()
            .await
            .unwrap();
        let (status, ack) = status_json(resp).await;
        assert_eq!(status, 200, "{ack}");
        let (status, body, _) = waiter.await.unwrap();
        assert_eq!(
            (status, body["changeSeq"].as_i64()),
            (200, ack["seq"].as_i64())
        );
        worst = worst.max(written.elapsed());
        until_waiting(&b, 0).await;
    }
    println!("woken through the other replica within {worst:?}");
    assert!(
        worst < POLL_INTERVAL + Duration::from_millis(500),
        "{worst:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_waiter_cap_a_long_poll_gets_503_with_retry_after_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_change_waiters: 3,
        ..Limits::default()
    };
    let server = spawn_for_tests_with(&dir.path().join("c.db"), false, limits).unwrap();
    let token = server.issue_token("C001").unwrap();
    let base = server.base_url();
    let held: Vec<Poll> = (0..3)
        .map(|_| spawn_poll(base.clone(), token.clone(), 0, 30))
        .collect();
    until_waiting(&server, 3).await;
    let started = Instant::now();
    let resp = Client::new()
        .get(format!("{base}/v1/changes?after=0&waitSeconds=30"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("30")
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(server.state.metrics.change_waiters_refused.get(), 1);
    assert!(
        server
            .state
            .metrics
            .render()
            .contains("\nclinic_change_waiters 3\n")
    );
    // A write ends the held ones; then there is room again.
    let resp = Client::new()
        .put(format!("{base}/v1/patients/P1"))
        .bearer_auth(&token)
        .json(&patient_body("李静"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    for waiter in held {
        assert_eq!(waiter.await.unwrap().0, 200);
    }
    until_waiting(&server, 0).await;
    let (status, _, _) = poll(&Client::new(), &base, &token, 0, 30).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_every_waiter_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_for_tests_with(&dir.path().join("c.db"), false, Limits::default()).unwrap();
    let token = server.issue_token("C001").unwrap();
    let base = server.base_url();
    let after = counter(&Client::new(), &base, &token).await;
    let held: Vec<Poll> = (0..20)
        .map(|_| spawn_poll(base.clone(), token.clone(), after, 50))
        .collect();
    until_waiting(&server, 20).await;
    let started = Instant::now();
    // Dropping the test server shuts it down and waits for it.
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .unwrap();
    let stopped_in = started.elapsed();
    for waiter in held {
        let (status, body, _) = waiter.await.unwrap();
        assert_eq!((status, body["changeSeq"].as_i64()), (200, Some(after)));
    }
    // Well inside the shutdown grace (10 s) and the waits (50 s).
    assert!(
        stopped_in < Duration::from_secs(2),
        "stopped in {stopped_in:?}"
    );
}

/// Resolves when the server has closed `conn`; `None` if it did not within `limit`.
async fn closed_within(conn: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

/// The bounds hold until a request is authenticated: with authenticated long polls
/// held, a silent socket, a request whose headers stop half-way, an unauthenticated
/// long poll whose body never comes and an idle keep-alive connection are all
/// closed within the usual seconds; the waiters are still there afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_half_sent_requests_are_closed_while_authenticated_waiters_are_held() {
    const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
    const IDLE: Duration = Duration::from_secs(1);
    let limits = Limits {
        header_read_timeout: HEADER_TIMEOUT,
        idle_timeout: IDLE,
        body_read_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_for_tests_with(&dir.path().join("c.db"), false, limits).unwrap();
    let token = server.issue_token("C001").unwrap();
    let base = server.base_url();
    let after = counter(&Client::new(), &base, &token).await;
    let held: Vec<Poll> = (0..50)
        .map(|_| spawn_poll(base.clone(), token.clone(), after, 20))
        .collect();
    until_waiting(&server, 50).await;

    let addr = server.addr;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /v1/changes?after=0&waitSeconds=50 HTTP/1.1\r\nHost: x\r\nAuthoriz")
        .await
        .unwrap();
    // Headers complete, no credential, and a body that never comes: refused at once.
    let mut unauthenticated = TcpStream::connect(addr).await.unwrap();
    unauthenticated
        .write_all(
            b"GET /v1/changes?after=0&waitSeconds=50 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n",
        )
        .await
        .unwrap();
    // A keep-alive connection after one answered request.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();

    let bound = HEADER_TIMEOUT + Duration::from_secs(2);
    let (s, h, u, k) = tokio::join!(
        closed_within(&mut silent, bound),
        closed_within(&mut half, bound),
        closed_within(&mut unauthenticated, bound),
        closed_within(&mut kept, bound),
    );
    for (what, closed) in [
        ("silent", s),
        ("half-sent", h),
        ("unauthenticated", u),
        ("idle keep-alive", k),
    ] {
        let closed = closed.unwrap_or_else(|| panic!("the {what} connection is still open"));
        println!("{what}: closed after {closed:?}");
    }
    assert_eq!(server.state.metrics.change_waiters.get(), 50, "still held");
    assert!(held.iter().all(|w| !w.is_finished()));

    // And they are still woken by a write.
    let resp = Client::new()
        .put(format!("{base}/v1/patients/P1"))
        .bearer_auth(&token)
        .json(&patient_body("李静"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    for waiter in held {
        let (status, body, _) = waiter.await.unwrap();
        assert_eq!((status, body["changeSeq"].as_i64()), (200, Some(after + 1)));
    }
}

/// A report is a change of its clinic like any record: its POST wakes the waiters.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_wakes_the_waiters_of_its_clinic(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let base = env.server.base_url();
    let after = counter(&env.client, &base, &token).await;
    let waiter = spawn_poll(base, token.clone(), after, 20);
    until_waiting(&env.server, 1).await;
    let written = Instant::now();
    let (status, body) = status_json(
        env.post("/v1/reports", &token, &common::report("P1", 4))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, answer, _) = waiter.await.unwrap();
    assert_eq!(
        (status, answer["changeSeq"].as_i64()),
        (200, Some(after + 1))
    );
    assert!(
        written.elapsed() < Duration::from_secs(1),
        "{:?}",
        written.elapsed()
    );
}
