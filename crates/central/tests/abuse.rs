//! The server under abuse, each case bounded in count and time, loopback only:
//! silent and slow connections, a body that stops, the connection cap, failed
//! authentication from one address, a dead report writer, a poisoned group commit.

use std::time::{Duration, Instant};

use clinic_central::{Limits, TestServer, spawn_for_tests_with};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

struct Env {
    server: TestServer,
    client: reqwest::Client,
    dir: TempDir,
}

fn env(limits: Limits) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_for_tests_with(&dir.path().join("central.db"), false, limits).unwrap();
    Env {
        server,
        client: reqwest::Client::new(),
        dir,
    }
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    async fn healthz(&self) -> (u16, Duration) {
        let started = Instant::now();
        let resp = self
            .client
            .get(self.url("/healthz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), started.elapsed())
    }

    async fn post_report(&self, token: &str, patient: &str) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url("/v1/reports"))
            .bearer_auth(token)
            .json(&report(patient))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

fn report(patient: &str) -> Value {
    json!({"reportId": Uuid::now_v7(), "patientId": patient, "painScore": 4, "submitTime": 1_764_300_000})
}

/// Resolves when the server has closed `conn` (EOF or reset); `None` if it did not within `limit`.
/// Sends `next(i)` every 200 ms, 25 times at most, so bytes keep moving (the idle
/// timer never fires); whether the server closed the connection meanwhile.
async fn closed_while_trickling(
    conn: &mut TcpStream,
    mut next: impl FnMut(usize) -> Vec<u8>,
) -> bool {
    for i in 0..25 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if conn.write_all(&next(i)).await.is_err() {
            return true;
        }
        let mut buf = [0u8; 256];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), conn.read(&mut buf)).await
        {
            return true;
        }
    }
    false
}

async fn closed_within(conn: &mut TcpStream, limit: Duration) -> Option<Instant> {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(Instant::now()),
            Ok(Ok(_)) => continue, // an answer before the close (a 408, say); keep reading
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_silent_connections_are_closed_at_the_header_timeout_while_healthz_answers() {
    // Client and server share this process: 2,000 descriptors and some.
    rlimit::increase_nofile_limit(8_192).unwrap();
    // The idle timeout is longer here, so it is hyper's header timer that closes them.
    // 4 s leaves room to open 1,000 sockets and measure on a loaded 2-core machine
    // before the first of them is due to close.
    const HEADER_TIMEOUT: Duration = Duration::from_secs(4);
    let limits = Limits {
        header_read_timeout: HEADER_TIMEOUT,
        idle_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let env = env(limits);
    let opened = Instant::now();
    let mut silent = Vec::with_capacity(1_000);
    for _ in 0..1_000 {
        silent.push(TcpStream::connect(env.server.addr).await.unwrap());
    }
    let connected_in = opened.elapsed();

    // While they are all open, /healthz answers, each time within 100 ms.
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let (status, took) = env.healthz().await;
        assert_eq!(status, 200);
        worst = worst.max(took);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        worst < Duration::from_millis(100),
        "slowest /healthz: {worst:?}"
    );
    assert!(
        opened.elapsed() < HEADER_TIMEOUT,
        "still inside the timeout while measuring"
    );

    // Every one is closed by the server after the timeout, none long before it.
    let mut first_close = None;
    for conn in &mut silent {
        let closed = closed_within(conn, HEADER_TIMEOUT + Duration::from_secs(8))
            .await
            .expect("the server closes a silent connection");
        first_close = Some(first_close.map_or(closed, |f: Instant| f.min(closed)));
    }
    let first = first_close.unwrap().duration_since(opened);
    assert!(
        first >= (HEADER_TIMEOUT - Duration::from_millis(100)).saturating_sub(connected_in),
        "closed only after the header timeout, first at {first:?}"
    );
    assert!(opened.elapsed() < HEADER_TIMEOUT + Duration::from_secs(8));
    assert!(env.server.state.metrics.connections_timed_out.get() >= 1_000);
    assert_eq!(env.healthz().await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout() {
    let limits = Limits {
        idle_timeout: Duration::from_secs(1),
        header_read_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let env = env(limits);
    let mut conn = TcpStream::connect(env.server.addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "kept alive after an answer"
    );
    let answered = Instant::now();
    let closed = closed_within(&mut conn, Duration::from_secs(5))
        .await
        .expect("closed once idle");
    let idle = closed.duration_since(answered);
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_secs(3),
        "{idle:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_head_is_refused() {
    let env = env(Limits::default());
    let mut conn = TcpStream::connect(env.server.addr).await.unwrap();
    let padding = "a".repeat(clinic_central::limits::MAX_HEAD_BYTES + 1);
    // The server may answer and close before it has read everything: ignore write errors.
    let head = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: {padding}\r\n\r\n");
    let _ = conn.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let resp = env
        .client
        .get(env.url("/healthz"))
        .header("x-padding", "a".repeat(4 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "a large but reasonable head is fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_trickle_are_cut_at_the_header_timeout() {
    let limits = Limits {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(5),
        ..Limits::default()
    };
    let env = env(limits);
    let mut conn = TcpStream::connect(env.server.addr).await.unwrap();
    let started = Instant::now();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A header line every 200 ms: bytes keep moving, so only the header timer can stop it.
    let closed =
        closed_while_trickling(&mut conn, |i| format!("X-Slow-{i}: a\r\n").into_bytes()).await;
    let took = started.elapsed();
    assert!(closed, "a slow header is cut off");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "cut at the header timeout: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_declares_a_megabyte_and_sends_five_bytes_is_dropped() {
    let limits = Limits {
        body_read_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let env = env(limits);
    let token = env.server.issue_token("C001").unwrap();
    let mut conn = TcpStream::connect(env.server.addr).await.unwrap();
    let head = format!(
        "POST /v1/reports/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{{\"rep"
    );
    let started = Instant::now();
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut answer)).await;
    let took = started.elapsed();
    assert!(read.is_ok(), "the server closes the connection");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive in time"), "{answer}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(env.server.report_count(None).unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_connections_are_closed_at_once() {
    let limits = Limits {
        max_connections: 20,
        idle_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let env = env(limits);
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(env.server.addr).await.unwrap());
    }
    // Let the server accept them all before the one too many.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(env.server.addr).await.unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut extra, Duration::from_millis(1_000))
            .await
            .is_some(),
        "closed at once, not left to wait"
    );
    assert!(started.elapsed() < Duration::from_millis(1_000));
    assert!(env.server.state.metrics.connections_refused.get() >= 1);

    // Once the silent ones time out, there is room again.
    for conn in &mut held {
        assert!(
            closed_within(conn, Duration::from_secs(5)).await.is_some(),
            "idle timeout"
        );
    }
    assert_eq!(env.healthz().await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_from_one_address_are_slowed_and_a_good_token_from_another_is_not() {
    let env = env(Limits::default());
    let good = env.server.issue_token("C001").unwrap();
    let from = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(ip))
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    };
    let attacker = from([127, 0, 0, 1]);
    let clinic = from([127, 0, 0, 2]);
    let feed = env.url("/v1/feeds/patients?after=0");

    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut retry_after_seen = false;
    const TRIES: usize = 3_000;
    for chunk in 0..TRIES / 50 {
        let sends = (0..50).map(|i| {
            attacker
                .get(&feed)
                .bearer_auth(format!("cct_guess_{chunk}_{i}"))
                .send()
        });
        for resp in futures_join_all(sends).await {
            let resp = resp.unwrap();
            retry_after_seen |= resp.headers().contains_key("retry-after");
            *statuses.entry(resp.status().as_u16()).or_default() += 1;
        }
    }
    let took = started.elapsed();
    let unauthorized = statuses.get(&401).copied().unwrap_or(0);
    let limited = statuses.get(&429).copied().unwrap_or(0);
    assert_eq!(unauthorized + limited, TRIES, "{statuses:?}");
    // The burst, then one a second at most while the loop ran.
    let allowed = clinic_central::limits::FAILED_AUTH_BURST as usize + took.as_secs() as usize + 2;
    assert!(
        unauthorized <= allowed,
        "{unauthorized} of {TRIES} got through in {took:?}"
    );
    assert!(retry_after_seen, "429 says when to come back");
    assert_eq!(
        env.server.state.metrics.auth_failures_limited.get(),
        limited as u64
    );

    // Another address with a good token: served at once.
    let started = Instant::now();
    let resp = clinic.get(&feed).bearer_auth(&good).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() < Duration::from_millis(500));
    // Another address with a bad token: an ordinary 401, not the attacker's 429.
    let resp = clinic
        .get(&feed)
        .bearer_auth("cct_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Success is never limited, even from the attacker's address.
    let resp = attacker.get(&feed).bearer_auth(&good).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// `join_all` for a handful of futures, without a futures-crate dependency.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_report_writer_fails_healthz_and_is_restarted() {
    let limits = Limits {
        writer_restart_delay: Duration::from_millis(1_500),
        ..Limits::default()
    };
    let env = env(limits);
    let token = env.server.issue_token("C001").unwrap();
    assert_eq!(env.post_report(&token, "P1").await.0, 200);
    assert_eq!(env.healthz().await.0, 200);

    env.server.state.ingest.crash_writer_for_tests().await;
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut saw_failure = false;
    while Instant::now() < deadline {
        if env.healthz().await.0 == 503 {
            saw_failure = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_failure, "/healthz reports the dead writer");

    let deadline = Instant::now() + Duration::from_secs(5);
    let mut recovered = false;
    while Instant::now() < deadline {
        if env.healthz().await.0 == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "the writer is restarted");
    let (status, body) = env.post_report(&token, "P2").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(env.server.report_count(Some("C001")).unwrap(), 2);
    assert_eq!(env.server.state.metrics.writer_restarts.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_report_fails_alone_and_the_rest_of_its_group_is_stored() {
    let env = env(Limits::default());
    let c1 = env.server.issue_token("C001").unwrap();
    let c2 = env.server.issue_token("C002").unwrap();
    // A row the store refuses although it passes every rule: a real failure inside
    // the real transaction, which then fails for everyone in the group.
    let conn = rusqlite::Connection::open(env.dir.path().join("central.db")).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER poison BEFORE INSERT ON reports WHEN NEW.patient_id = 'POISON'
         BEGIN SELECT RAISE(ABORT, 'poisoned row'); END;",
    )
    .unwrap();

    let batch = json!({"reports": [report("P1"), report("POISON"), report("P2")]});
    let batch_send = env
        .client
        .post(env.url("/v1/reports/batch"))
        .bearer_auth(&c1)
        .json(&batch)
        .send();
    let others = (0..20).map(|i| {
        let client = env.client.clone();
        let (url, token) = (env.url("/v1/reports"), c2.clone());
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&report(&format!("Q{i}")))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let (batch_resp, other_statuses) = tokio::join!(batch_send, futures_join_all(others));
    let batch_resp: Value = batch_resp.unwrap().json().await.unwrap();
    let statuses: Vec<&str> = batch_resp["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["accepted", "rejected", "accepted"],
        "{batch_resp}"
    );
    assert!(
        batch_resp["results"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("could not store"),
        "{batch_resp}"
    );
    assert!(
        other_statuses.iter().all(|s| *s == 200),
        "{other_statuses:?}"
    );
    assert_eq!(env.server.report_count(Some("C001")).unwrap(), 2);
    assert_eq!(env.server.report_count(Some("C002")).unwrap(), 20);
    assert!(env.server.state.metrics.reports_not_stored.get() >= 1);

    // Alone, the poisoned report cannot be told from a failing store: 5xx, retried later.
    let (status, _) = env.post_report(&c1, "POISON").await;
    assert!(status >= 500, "{status}");
    assert_eq!(env.healthz().await.0, 200, "the writer lives on");
}

/// A request refused before its body was read leaves bytes on the connection that
/// hyper will not reuse; the answer says `Connection: close` so no client pools it
/// (a sync run's next POST went into the closing socket after the batch route's 404).
#[rstest::rstest]
#[case::no_such_route(reqwest::Method::POST, "/v1/no-such-route", None, 404)]
#[case::wrong_method(reqwest::Method::PATCH, "/v1/reports", Some("token"), 405)]
#[case::no_credential(reqwest::Method::POST, "/v1/reports/batch", None, 401)]
#[case::bad_credential(reqwest::Method::POST, "/v1/reports", Some("cct_not_a_token"), 401)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_leaves_the_body_unread_closes_the_connection(
    #[case] method: reqwest::Method,
    #[case] path: &str,
    #[case] token: Option<&str>,
    #[case] status: u16,
) {
    let env = env(Limits::default());
    let real = env.server.issue_token("C001").unwrap();
    // Small enough for the loopback socket's buffers, so the client has sent it all
    // when the answer comes: with 1 MiB the server's close could win the race and the
    // client saw a broken pipe before the answer (a fresh-clone CI run did, once).
    let mut req = env
        .client
        .request(method, env.url(path))
        .header("content-type", "application/json")
        .body(vec![b' '; 16 * 1024]);
    if let Some(token) = token {
        req = req.bearer_auth(if token == "token" { &real } else { token });
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(
        resp.headers()
            .get("connection")
            .and_then(|v| v.to_str().ok()),
        Some("close")
    );
    // The client opens a fresh connection and is served.
    assert_eq!(env.healthz().await.0, 200);
    let (status, body) = env.post_report(&real, "P1").await;
    assert_ne!(status, 500, "{body}");
}

/// A server speaking HTTPS (a certificate for 127.0.0.1 from a throwaway CA).
fn tls_server(limits: Limits) -> (TestServer, TempDir) {
    use clinic_central::test_pki::TestCa;
    let dir = tempfile::tempdir().unwrap();
    let files = TestCa::new("abuse CA")
        .server_cert(&["localhost", "127.0.0.1"])
        .write(dir.path(), "server");
    let tls = clinic_central::tls::Tls::load(&files.cert, &files.key).unwrap();
    let server =
        clinic_central::spawn_tls_for_tests(&dir.path().join("central.db"), limits, tls).unwrap();
    (server, dir)
}

/// A TCP socket that never starts (or never finishes) its TLS handshake is closed
/// by whichever of the header-read and idle timeouts comes first, as a silent
/// plain connection is: the handshake is part of "until a request is authenticated".
#[rstest::rstest]
#[case::header_timeout_first(
    Duration::from_secs(2),
    Duration::from_secs(30),
    Duration::from_secs(2)
)]
#[case::idle_timeout_first(
    Duration::from_secs(30),
    Duration::from_secs(1),
    Duration::from_secs(1)
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_socket_on_the_tls_port_is_closed_at_the_first_timeout(
    #[case] header_read_timeout: Duration,
    #[case] idle_timeout: Duration,
    #[case] closes_at: Duration,
) {
    let (server, _dir) = tls_server(Limits {
        header_read_timeout,
        idle_timeout,
        ..Limits::default()
    });
    let opened = Instant::now();
    let mut silent: Vec<TcpStream> = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(server.addr).await.unwrap());
    }
    for conn in &mut silent {
        closed_within(conn, closes_at + Duration::from_secs(3))
            .await
            .expect("the server closes a socket that never starts its handshake");
    }
    let took = opened.elapsed();
    assert!(
        took >= closes_at - Duration::from_millis(100) && took < closes_at + Duration::from_secs(3),
        "closed at the timeout: {took:?}"
    );
    assert!(server.state.metrics.connections_timed_out.get() >= 20);
}

/// A ClientHello that trickles in a byte every 200 ms keeps the idle timer quiet:
/// the header-read timeout cuts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_trickles_is_cut_at_the_header_timeout() {
    let (server, _dir) = tls_server(Limits {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(5),
        ..Limits::default()
    });
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    // A handshake record announcing 512 bytes, then a ClientHello's first bytes, slowly.
    conn.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .unwrap();
    let closed = closed_while_trickling(&mut conn, |_| vec![0x01]).await;
    let took = started.elapsed();
    assert!(closed, "a slow handshake is cut off");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "cut at the header timeout: {took:?}"
    );
}
