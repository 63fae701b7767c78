//! How many `GET /v1/changes` long polls one replica holds, what they cost, and
//! that the bounds on unauthenticated connections still bite under that load.
//!
//! The server is the real `clinic-central serve` binary in its own process (so its
//! resident memory is its own), on a durable SQLite file, with
//! `--max-connections` and `--max-change-waiters` raised for the run (`serve`
//! raises its soft open-file limit to the hard one itself; this process raises its
//! own for the client side). The bench then:
//!
//! 1. baseline: the idle server's RSS, and how long silent unauthenticated sockets
//!    stay open (the idle timeout, 5 s, should close them);
//! 2. opens N authenticated long polls (raw HTTP/1.1, one connection each) and
//!    waits until the server's gauge shows N; reports RSS and RSS per waiter;
//! 3. with the N held: the same silent sockets are closed within the same seconds,
//!    and `/healthz` still answers quickly;
//! 4. one record PUT: time until all N waiters have their answer.
//!
//! `cargo bench -p clinic-central --bench waiters`; knobs: BENCH_WAITERS (10000),
//! BENCH_SILENT (200).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::io::BufRead;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const BIN: &str = env!("CARGO_BIN_EXE_clinic-central");

fn kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A minimal HTTP/1.1 exchange on a fresh connection: status and body.
async fn http(addr: &str, request: String) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn waiters_now(addr: &str) -> u64 {
    let (_, body) = http(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    body.lines()
        .find_map(|l| l.strip_prefix("clinic_change_waiters "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn get_changes(token: &str, after: i64, wait: u32) -> String {
    format!(
        "GET /v1/changes?after={after}&waitSeconds={wait} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
}

/// Opens `n` silent sockets and returns the time by which the server had closed
/// each one, sorted.
async fn silent_sockets(addr: &str, n: usize) -> Vec<Duration> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let addr = addr.to_owned();
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                let mut buf = [0u8; 256];
                let _ = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await;
                started.elapsed()
            })
        })
        .collect();
    let mut closed = Vec::with_capacity(n);
    for t in tasks {
        closed.push(t.await.unwrap());
    }
    closed.sort();
    closed
}

async fn healthz_worst(addr: &str, times: usize) -> Duration {
    let mut worst = Duration::ZERO;
    for _ in 0..times {
        let started = Instant::now();
        let (status, _) = http(
            addr,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
        )
        .await;
        assert_eq!(status, 200);
        worst = worst.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worst
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = knob("BENCH_WAITERS", 10_000) as usize;
    let silent = knob("BENCH_SILENT", 200) as usize;
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    println!("open-file limit of this process: {soft} (hard {hard})");

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("central.db");
    let db = db.to_str().unwrap();
    let out = Command::new(BIN)
        .args(["token", "issue", "--db", db, "--clinic", "C001"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("token:").map(|t| t.trim().to_owned()))
        .expect("a token");
    // Room for the waiters (at most three quarters of the connection cap) and the rest.
    let max_connections = (n * 4 / 3 + 1_000).to_string();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            db,
            "--max-connections",
            &max_connections,
            "--max-change-waiters",
            &n.to_string(),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(a) = line.strip_prefix("listening on ") {
                let _ = addr_tx.send(a.trim().to_owned());
            }
        }
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server prints its address");

    // 1. Baseline: idle server, silent sockets.
    let (_, body) = http(&addr, format!("GET /v1/changes?after=9223372036854775807&waitSeconds=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")).await;
    let after: i64 = body
        .split("\"changeSeq\":")
        .nth(1)
        .and_then(|v| v.trim_end_matches('}').trim().parse().ok())
        .expect("the counter");
    let idle_rss = kib(pid, "VmRSS:");
    let closed = silent_sockets(&addr, silent).await;
    println!(
        "baseline, no waiters: server RSS {:.1} MiB; {silent} silent sockets closed after {:.2}–{:.2} s; /healthz worst {:?}",
        idle_rss as f64 / 1024.0,
        closed[0].as_secs_f64(),
        closed[closed.len() - 1].as_secs_f64(),
        healthz_worst(&addr, 20).await,
    );

    // 2. N authenticated waiters.
    let opened = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(n);
    for _ in 0..n {
        let (addr, request, ready) = (
            addr.clone(),
            get_changes(&token, after, 50),
            ready_tx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.write_all(request.as_bytes()).await.unwrap();
            let _ = ready.send(()).await;
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            (
                Instant::now(),
                text.starts_with("HTTP/1.1 200"),
                text.contains(&format!("\"changeSeq\":{}", after + 1)),
            )
        }));
    }
    for _ in 0..n {
        ready_rx.recv().await.unwrap();
    }
    let sent_in = opened.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held = waiters_now(&addr).await;
        if held as usize == n {
            break;
        }
        assert!(Instant::now() < deadline, "only {held} of {n} waiting");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let held_in = opened.elapsed();
    let rss = kib(pid, "VmRSS:");
    println!(
        "{n} waiters: sent in {:.2} s, all held after {:.2} s; server RSS {:.1} MiB ({:.1} KiB per waiter above idle), peak {:.1} MiB",
        sent_in.as_secs_f64(),
        held_in.as_secs_f64(),
        rss as f64 / 1024.0,
        (rss.saturating_sub(idle_rss)) as f64 / n as f64,
        kib(pid, "VmHWM:") as f64 / 1024.0,
    );

    // 3. The bounds still bite while they are held.
    let closed = silent_sockets(&addr, silent).await;
    println!(
        "with {n} waiters: {silent} silent sockets closed after {:.2}–{:.2} s; /healthz worst {:?}; waiters still held: {}",
        closed[0].as_secs_f64(),
        closed[closed.len() - 1].as_secs_f64(),
        healthz_worst(&addr, 20).await,
        waiters_now(&addr).await,
    );
    assert!(
        closed[closed.len() - 1] < Duration::from_secs(12),
        "silent sockets outlived the bounds"
    );

    // 4. One write wakes them all.
    let written = Instant::now();
    let (status, _) = http(
        &addr,
        format!(
            "PUT /v1/patients/P1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{body}",
            body = r#"{"name":"李静","sex":"female","birthDate":"1990-05-01","isInsured":true}"#,
            len = r#"{"name":"李静","sex":"female","birthDate":"1990-05-01","isInsured":true}"#.len(),
        ),
    )
    .await;
    assert_eq!(status, 200);
    let mut last = written;
    let mut first = None;
    let mut good = 0;
    for t in tasks {
        let (at, ok, seq) = t.await.unwrap();
        last = last.max(at);
        first = Some(first.map_or(at, |f: Instant| f.min(at)));
        good += usize::from(ok && seq);
    }
    println!(
        "one write woke {good} of {n}: first answer {:.1} ms, last {:.1} ms after the write's answer was sent for",
        first.unwrap().duration_since(written).as_secs_f64() * 1000.0,
        last.duration_since(written).as_secs_f64() * 1000.0,
    );
    assert_eq!(good, n, "every waiter got the new counter");
    drop(server);
}
