//! Ingest throughput of the real server, in-process, over loopback HTTP.
//!
//! Runs the same load against a durable SQLite store (`synchronous=FULL`, every
//! 200 means fsynced), a SQLite baseline that never fsyncs (`synchronous=OFF`),
//! PostgreSQL with one replica and PostgreSQL with two replicas (two servers, each
//! with its own store and writer, on one database; `synchronous_commit=on`), and
//! prints reports/second and p99 latency for each. PostgreSQL runs in a throwaway
//! cluster (`PgCluster`, fsync on) on the same machine. Then one connection pages
//! the whole reports feed (`GET /v1/feeds/reports`, pages of 1,000) and the bench
//! checks it holds every acknowledged report once, in increasing numbers.
//!
//! The client is a minimal HTTP/1.1 keep-alive client over raw sockets, so the
//! machine's cores go to the server rather than to client-side HTTP machinery;
//! it still shares the same cores, so figures are a lower bound for the server.
//!
//! Last, single POSTs side by side with the hospital's original server (the
//! article's Gin code) under one external load generator, wrk (`wrk/side_by_side.rs`):
//! Gin, clinic-central in compat mode (the same four-field contract, durable SQLite)
//! and clinic-central's own authenticated route (durable SQLite, then PostgreSQL),
//! alternating, twice; it prints each rate and clinic-central's ratio to Gin.
//!
//! `cargo bench -p clinic-central --bench ingest`; knobs (env): BENCH_REQUESTS
//! (single POSTs, default 60000), BENCH_CONNECTIONS (64), BENCH_BATCH (500),
//! BENCH_BATCH_REPORTS (300000), BENCH_SECONDS (cap per phase, 60), BENCH_WRK_SECONDS
//! (each side-by-side run, 15), BENCH_WRK_ROUNDS (2).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clinic_central::store::postgres::cluster::PgCluster;
use clinic_central::store::{CentralStore, Durability, PgOptions, PostgresStore, SqliteStore};
use clinic_central::{Mode, auth, start};
use clinic_domain::ClinicZone;
use clinic_protocol::{FeedPage, MAX_FEED_LIMIT, StoredReport, paths};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

#[path = "wrk/side_by_side.rs"]
mod side_by_side;

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Load {
    requests: u64,
    connections: u64,
    batch: u64,
    batch_reports: u64,
    limit: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Phase {
    reports: u64,
    requests: u64,
    elapsed: Duration,
    /// 99th percentile of request latency.
    p99: Duration,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.reports as f64 / self.elapsed.as_secs_f64()
    }
}

fn report_json(i: u64) -> String {
    format!(
        r#"{{"reportId":"{}","patientId":"P{:07}","painScore":{},"submitTime":1764300000,"deviceId":"bench"}}"#,
        Uuid::now_v7(),
        i % 2000 + 1,
        i % 11
    )
}

fn request(path: &str, token: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads one response; returns its status. Enough HTTP for our own server's answers.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).map_err(std::io::Error::other)?;
            let status: u16 = head
                .get(9..12)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| std::io::Error::other("no status"))?;
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(status);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `connections` keep-alive connections each sending requests until `total`
/// requests are sent or `limit` passes. `per_request` reports go in each.
async fn drive(
    addrs: &[SocketAddr],
    token: &str,
    connections: u64,
    total: u64,
    per_request: u64,
    limit: Duration,
) -> Phase {
    let issued = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + limit;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (issued, ok, token) = (issued.clone(), ok.clone(), token.to_owned());
        // Connections spread evenly over the replicas, as a load balancer would.
        let addr = addrs[c as usize % addrs.len()];
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let mut buf = Vec::with_capacity(64 * 1024);
            loop {
                let i = issued.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() >= deadline {
                    break;
                }
                let req = if per_request == 1 {
                    request(paths::REPORTS, &token, &report_json(i))
                } else {
                    let items: Vec<String> = (0..per_request)
                        .map(|k| report_json(i * per_request + k))
                        .collect();
                    request(
                        paths::REPORTS_BATCH,
                        &token,
                        &format!(r#"{{"reports":[{}]}}"#, items.join(",")),
                    )
                };
                let sent = Instant::now();
                stream.write_all(&req).await.expect("send");
                let status = read_response(&mut stream, &mut buf)
                    .await
                    .expect("response");
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&buf));
                latencies.push(sent.elapsed());
                ok.fetch_add(1, Ordering::Relaxed);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("client task"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let p99 = latencies
        .get((latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default();
    let requests = ok.load(Ordering::Relaxed);
    Phase {
        reports: requests * per_request,
        requests,
        elapsed,
        p99,
    }
}

/// Pages the clinic's whole reports feed on one keep-alive connection (pages of
/// [`MAX_FEED_LIMIT`]), checking numbers increase and no report comes twice.
async fn read_feed(addr: SocketAddr, token: &str, expected: u64) -> Phase {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut buf = Vec::with_capacity(1024 * 1024);
    let mut latencies = Vec::new();
    let mut seen = std::collections::HashSet::with_capacity(expected as usize);
    let mut after = 0i64;
    loop {
        let req = format!(
            "GET {}?after={after}&limit={MAX_FEED_LIMIT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n",
            paths::FEED_REPORTS
        );
        let sent = Instant::now();
        stream.write_all(req.as_bytes()).await.expect("send");
        let status = read_response(&mut stream, &mut buf)
            .await
            .expect("response");
        latencies.push(sent.elapsed());
        let body = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|end| &buf[end + 4..])
            .expect("a body");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
        let page: FeedPage<StoredReport> = serde_json::from_slice(body).expect("a feed page");
        for item in &page.items {
            assert!(item.seq > after, "numbers increase");
            after = item.seq;
            assert!(seen.insert(item.id.clone()), "a report came twice");
        }
        if !page.has_more {
            break;
        }
    }
    assert_eq!(
        seen.len() as u64,
        expected,
        "the feed holds every stored report"
    );
    latencies.sort();
    Phase {
        reports: expected,
        requests: latencies.len() as u64,
        elapsed: started.elapsed(),
        p99: latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)],
    }
}

struct Run {
    single: Phase,
    batch: Phase,
    feed: Phase,
}

/// Runs both phases against one server per store (replicas when they share a database).
fn run(label: &str, stores: Vec<Arc<dyn CentralStore>>, load: &Load) -> Run {
    let store = stores[0].clone();
    store
        .ensure_clinic("C001", ClinicZone::default())
        .expect("clinic");
    let token = auth::issue_token(store.as_ref(), "C001", auth::Scope::Device, Some("bench"))
        .expect("token")
        .secret;

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let servers: Vec<_> = stores
        .iter()
        .map(|s| {
            server_rt
                .block_on(start(
                    s.clone(),
                    Mode::Full,
                    SocketAddr::from(([127, 0, 0, 1], 0)),
                ))
                .expect("server")
        })
        .collect();
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    // The client gets its own single thread, competing for the same two cores.
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let single = client_rt.block_on(drive(
        &addrs,
        &token,
        load.connections,
        load.requests,
        1,
        load.limit,
    ));
    let batch_requests = load.batch_reports / load.batch;
    let batch = client_rt.block_on(drive(
        &addrs,
        &token,
        4,
        batch_requests,
        load.batch,
        load.limit,
    ));

    let stored = store.report_count(Some("C001")).expect("count");
    assert_eq!(
        stored,
        single.reports + batch.reports,
        "every acknowledged report is stored, once"
    );
    let feed = client_rt.block_on(read_feed(addrs[addrs.len() - 1], &token, stored));
    let (mut commits, mut committed) = (0, 0);
    for server in servers {
        commits += server.state.metrics.group_commits.get();
        committed += server.state.metrics.group_committed_reports.get();
        server_rt.block_on(server.shutdown()).expect("shutdown");
    }
    println!(
        "  {label}: {} transactions, {:.1} reports per transaction on average",
        commits,
        committed as f64 / commits.max(1) as f64
    );
    Run {
        single,
        batch,
        feed,
    }
}

fn sqlite(dir: &tempfile::TempDir, durability: Durability) -> Vec<Arc<dyn CentralStore>> {
    let path = dir.path().join(format!("bench-{durability:?}.db"));
    vec![Arc::new(
        SqliteStore::open(&path, durability).expect("open"),
    )]
}

fn postgres(cluster: &PgCluster, replicas: usize) -> Vec<Arc<dyn CentralStore>> {
    let url = cluster.create_database().expect("database");
    (0..replicas)
        .map(|_| {
            Arc::new(PostgresStore::connect(&url, PgOptions::default()).expect("connect"))
                as Arc<dyn CentralStore>
        })
        .collect()
}

/// clinic-central on a fresh `store` in `mode`, loaded by wrk like the Gin server;
/// checks every answer was a 200 and every acknowledged report is stored.
fn central_under_wrk(
    store: Arc<dyn CentralStore>,
    mode: Mode,
    connections: u64,
    duration: Duration,
) -> side_by_side::WrkRun {
    store
        .ensure_clinic("C001", ClinicZone::default())
        .expect("clinic");
    let token = match mode {
        Mode::Full => Some(
            auth::issue_token(store.as_ref(), "C001", auth::Scope::Device, Some("bench"))
                .expect("token")
                .secret,
        ),
        Mode::Compat { .. } => None,
    };
    // The same two workers as the phases above; wrk is its own process.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = server_rt
        .block_on(start(
            store.clone(),
            mode,
            SocketAddr::from(([127, 0, 0, 1], 0)),
        ))
        .expect("server");
    let url = format!("http://{}{}", server.addr, paths::REPORTS);
    let run = side_by_side::wrk(&url, token.as_deref(), connections, duration);
    server_rt.block_on(server.shutdown()).expect("shutdown");
    assert_eq!(
        (run.non_2xx, run.socket_errors),
        (0, 0),
        "every request is answered 200: {run:?}"
    );
    let stored = store.report_count(Some("C001")).expect("count");
    // wrk counts the answers it read before its deadline; the requests in flight
    // then (at most one per connection) may be stored too.
    assert!(
        (run.requests..=run.requests + connections).contains(&stored),
        "{stored} stored for {} acknowledged",
        run.requests
    );
    run
}

/// The Gin server, then clinic-central three ways, alternating for `rounds`.
fn side_by_side_with_gin(
    dir: &tempfile::TempDir,
    cluster: &PgCluster,
    connections: u64,
    duration: Duration,
    rounds: u64,
) {
    let gin_binary = side_by_side::build_gin(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")));
    println!(
        "side by side under wrk (2 threads, {connections} connections, {}s per run, {rounds} rounds), single POST /v1/reports:",
        duration.as_secs()
    );
    let fresh_sqlite = |name: String| -> Arc<dyn CentralStore> {
        Arc::new(SqliteStore::open(&dir.path().join(name), Durability::Full).expect("open"))
    };
    let line = |name: &str, run: &side_by_side::WrkRun, gin: f64| {
        println!(
            "  {name:<46} {:>8.0} reports/s, p99 {:>6.1} ms, {:.2}x Gin",
            run.rate(),
            run.p99.as_secs_f64() * 1e3,
            run.rate() / gin
        );
    };
    for round in 1..=rounds {
        let gin = {
            let server = side_by_side::Gin::start(&gin_binary);
            side_by_side::wrk(
                &format!("http://{}{}", server.addr, paths::REPORTS),
                None,
                connections,
                duration,
            )
        };
        assert_eq!(gin.non_2xx + gin.socket_errors, 0, "Gin answered: {gin:?}");
        let compat = central_under_wrk(
            fresh_sqlite(format!("compat-{round}.db")),
            Mode::Compat {
                clinic_id: "C001".into(),
            },
            connections,
            duration,
        );
        let own = central_under_wrk(
            fresh_sqlite(format!("own-{round}.db")),
            Mode::Full,
            connections,
            duration,
        );
        let pg = central_under_wrk(
            postgres(cluster, 1).remove(0),
            Mode::Full,
            connections,
            duration,
        );
        println!("  round {round}");
        line("Gin, the article's server (in memory)", &gin, gin.rate());
        line("clinic-central compat, SQLite durable", &compat, gin.rate());
        line(
            "clinic-central authenticated, SQLite durable",
            &own,
            gin.rate(),
        );
        line("clinic-central authenticated, PostgreSQL", &pg, gin.rate());
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary
    // without it, and then a small smoke load keeps test runs quick.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let scale = |full: u64| if smoke { full / 100 } else { full };
    let load = Load {
        requests: knob("BENCH_REQUESTS", scale(60_000)),
        connections: knob("BENCH_CONNECTIONS", 64),
        batch: knob("BENCH_BATCH", 500).clamp(1, 1000),
        batch_reports: knob("BENCH_BATCH_REPORTS", scale(300_000)),
        limit: Duration::from_secs(knob("BENCH_SECONDS", 60)),
    };
    println!(
        "ingest bench: {} single POSTs over {} connections, {} reports in batches of {} over 4 connections, {}s cap per phase",
        load.requests,
        load.connections,
        load.batch_reports,
        load.batch,
        load.limit.as_secs()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = PgCluster::start().expect("PostgreSQL starts (install the postgresql package)");
    let runs = [
        (
            "SQLite durable",
            run("SQLite durable", sqlite(&dir, Durability::Full), &load),
        ),
        (
            "SQLite no-fsync",
            run("SQLite no-fsync", sqlite(&dir, Durability::Off), &load),
        ),
        (
            "PostgreSQL, 1 replica",
            run("PostgreSQL, 1 replica", postgres(&cluster, 1), &load),
        ),
        (
            "PostgreSQL, 2 replicas",
            run("PostgreSQL, 2 replicas", postgres(&cluster, 2), &load),
        ),
    ];
    let line = |p: Phase| {
        format!(
            "{:>9.0} reports/s, p99 {:>6.1} ms ({} reports in {} requests, {:.2}s)",
            p.rate(),
            p.p99.as_secs_f64() * 1e3,
            p.reports,
            p.requests,
            p.elapsed.as_secs_f64()
        )
    };
    for (name, r) in &runs {
        println!(
            "{name:<24} single POST {} | batch of {} {}",
            line(r.single),
            load.batch,
            line(r.batch)
        );
    }
    for (name, r) in &runs {
        println!(
            "{name:<24} reading the reports feed {:>9.0} reports/s, p99 {:.1} ms per page ({} reports in {} pages, {:.2}s)",
            r.feed.rate(),
            r.feed.p99.as_secs_f64() * 1e3,
            r.feed.reports,
            r.feed.requests,
            r.feed.elapsed.as_secs_f64()
        );
    }
    side_by_side_with_gin(
        &dir,
        &cluster,
        load.connections,
        Duration::from_secs(knob("BENCH_WRK_SECONDS", if smoke { 2 } else { 15 })),
        knob("BENCH_WRK_ROUNDS", if smoke { 1 } else { 2 }),
    );
}
