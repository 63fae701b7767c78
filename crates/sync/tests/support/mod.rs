//! Shared by the system tests: a fault-injecting TCP proxy between the sync client
//! and the real clinic-central, local stores with a patient, and checks of the
//! server's database.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use clinic_domain::{PainScale, PainScore, Patient, PatientId, Sex};
use clinic_store::{Database, outbox, patients};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with one connection (the client opens one per request
/// when connection reuse is off, so this is per request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Pass,
    /// Read the request, close without forwarding.
    DropBeforeForward,
    /// Wait, then pass (a long one trips the client's timeout: outcome unknown).
    Delay(Duration),
    /// Answer this status itself, never forwarding (503/429 with `Retry-After: 0`).
    Respond(u16),
    /// Forward, pass the first half of the answer, then reset the connection.
    ResetMidResponse,
    /// Forward; the server commits and answers; drop the answer.
    LoseResponse,
    /// Forward; hold the server's (committed) answer this long, then pass it on.
    HoldResponse(Duration),
    /// Never forward; answer `200 text/html` like a captive portal's login page.
    Html200,
    /// Never forward; answer this 3xx to a login page elsewhere.
    Redirect(u16),
    /// Forward; the server commits; pass on its status and headers with the JSON
    /// body cut in half (Content-Length adjusted, so the answer looks complete).
    TruncatedJson,
    /// Forward; pass the server's answer on a few bytes at a time, slowly (it may
    /// or may not beat the client's timeout).
    SlowDrip,
    /// Like `Pass`, but a `POST /v1/reports/batch` gets a 404 without reaching the
    /// server: a clinic server without the batch route.
    HideBatchRoute,
}

/// Decides each connection's fault from a seeded generator.
pub trait Schedule: Send + Sync + 'static {
    fn next(&self, conn: u64) -> Fault;
}

/// Faults drawn at random with probability `fault_rate`, reproducible from `seed`.
pub struct Random {
    rng: Mutex<fastrand::Rng>,
    pub fault_rate: f64,
    pub max_delay_ms: u64,
}

impl Random {
    pub fn new(seed: u64, fault_rate: f64, max_delay_ms: u64) -> Self {
        Self {
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            fault_rate,
            max_delay_ms,
        }
    }
}

impl Schedule for Random {
    fn next(&self, _conn: u64) -> Fault {
        let mut rng = self.rng.lock().unwrap();
        if rng.f64() >= self.fault_rate {
            return Fault::Pass;
        }
        match rng.u8(0..10) {
            0 => Fault::DropBeforeForward,
            1 => Fault::Delay(Duration::from_millis(rng.u64(0..=self.max_delay_ms))),
            2 => Fault::Respond(500),
            3 => Fault::Respond(if rng.bool() { 503 } else { 429 }),
            4 => Fault::ResetMidResponse,
            5 => Fault::LoseResponse,
            6 => Fault::Html200,
            7 => Fault::Redirect([301, 302, 307][rng.usize(0..3)]),
            8 => Fault::TruncatedJson,
            _ => Fault::SlowDrip,
        }
    }
}

/// Every connection gets the same fault.
pub struct Always(pub Fault);
impl Schedule for Always {
    fn next(&self, _conn: u64) -> Fault {
        self.0
    }
}

/// Fails exactly the listed connection numbers (0-based) with `fault`.
pub struct FailNth(pub Vec<u64>, pub Fault);
impl Schedule for FailNth {
    fn next(&self, conn: u64) -> Fault {
        if self.0.contains(&conn) {
            self.1
        } else {
            Fault::Pass
        }
    }
}

/// Faults injected by every proxy in this test binary, by kind, to show the
/// schedules really exercised each one.
pub static INJECTED: [AtomicU64; 12] = [const { AtomicU64::new(0) }; 12];
pub const FAULT_NAMES: [&str; 12] = [
    "pass",
    "drop",
    "delay",
    "respond",
    "reset",
    "lose",
    "hold",
    "html",
    "redirect",
    "truncated",
    "drip",
    "hide-batch",
];

fn kind(f: Fault) -> usize {
    match f {
        Fault::Pass => 0,
        Fault::DropBeforeForward => 1,
        Fault::Delay(_) => 2,
        Fault::Respond(_) => 3,
        Fault::ResetMidResponse => 4,
        Fault::LoseResponse => 5,
        Fault::HoldResponse(_) => 6,
        Fault::Html200 => 7,
        Fault::Redirect(_) => 8,
        Fault::TruncatedJson => 9,
        Fault::SlowDrip => 10,
        Fault::HideBatchRoute => 11,
    }
}

pub struct Proxy {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start_proxy(upstream: SocketAddr, schedule: Arc<dyn Schedule>) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_proxy(listener, vec![upstream], schedule)
}

/// Like [`start_proxy`], but connection n goes to `upstreams[n % len]`: requests
/// spread over several server replicas, so a retry often lands on another one.
pub async fn start_proxy_spread(upstreams: Vec<SocketAddr>, schedule: Arc<dyn Schedule>) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_proxy(listener, upstreams, schedule)
}

/// A plain forwarding proxy on a given address (a server "coming back" there).
pub async fn start_proxy_on(listen: SocketAddr, upstream: SocketAddr) -> Proxy {
    let listener = TcpListener::bind(listen).await.unwrap();
    serve_proxy(listener, vec![upstream], Arc::new(Always(Fault::Pass)))
}

fn serve_proxy(
    listener: TcpListener,
    upstreams: Vec<SocketAddr>,
    schedule: Arc<dyn Schedule>,
) -> Proxy {
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicU64::new(0));
    let counter = connections.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let fault = schedule.next(n);
            let upstream = upstreams[n as usize % upstreams.len()];
            INJECTED[kind(fault)].fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let _ = handle(client, upstream, fault).await;
            });
        }
    });
    Proxy {
        addr,
        connections,
        task,
    }
}

/// Reads one HTTP/1.1 request (head and a Content-Length body) from `s`.
async fn read_request(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(buf);
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads the server's whole answer (head plus Content-Length body).
async fn read_response(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    read_request(s).await
}

async fn handle(mut client: TcpStream, upstream: SocketAddr, fault: Fault) -> std::io::Result<()> {
    match fault {
        Fault::Pass => pass(client, upstream).await,
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            pass(client, upstream).await
        }
        Fault::DropBeforeForward => {
            let _ = read_request(&mut client).await?;
            Ok(())
        }
        Fault::Respond(status) => {
            let _ = read_request(&mut client).await?;
            let body = r#"{"error":"injected by the test proxy"}"#;
            let reason = match status {
                429 => "Too Many Requests",
                503 => "Service Unavailable",
                _ => "Internal Server Error",
            };
            let answer = format!(
                "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nretry-after: 0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(answer.as_bytes()).await?;
            client.shutdown().await
        }
        Fault::HoldResponse(d) => {
            let request = read_request(&mut client).await?;
            let mut server = TcpStream::connect(upstream).await?;
            server.write_all(&request).await?;
            let answer = read_response(&mut server).await?;
            tokio::time::sleep(d).await;
            client.write_all(&answer).await?;
            client.shutdown().await
        }
        Fault::Html200 => {
            let _ = read_request(&mut client).await?;
            let body = "<!DOCTYPE html><html><head><title>Wi-Fi sign in</title></head><body><form>Sign in</form></body></html>";
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(answer.as_bytes()).await?;
            client.shutdown().await
        }
        Fault::Redirect(status) => {
            let _ = read_request(&mut client).await?;
            let answer = format!(
                "HTTP/1.1 {status} Redirect\r\nlocation: http://127.0.0.1:9/portal/login\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            client.write_all(answer.as_bytes()).await?;
            client.shutdown().await
        }
        Fault::TruncatedJson | Fault::SlowDrip => {
            let request = read_request(&mut client).await?;
            let mut server = TcpStream::connect(upstream).await?;
            server.write_all(&request).await?;
            let answer = read_response(&mut server).await?;
            if fault == Fault::SlowDrip {
                for chunk in answer.chunks(24) {
                    client.write_all(chunk).await?;
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
                return client.shutdown().await;
            }
            let end = find(&answer, b"\r\n\r\n").map_or(answer.len(), |e| e + 4);
            let body = &answer[end..];
            let cut = &body[..body.len() / 2];
            let head: String = String::from_utf8_lossy(&answer[..end])
                .split("\r\n")
                .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:") && !l.is_empty())
                .map(|l| format!("{l}\r\n"))
                .collect();
            client
                .write_all(format!("{head}content-length: {}\r\n\r\n", cut.len()).as_bytes())
                .await?;
            client.write_all(cut).await?;
            client.shutdown().await
        }
        Fault::HideBatchRoute => {
            let request = read_request(&mut client).await?;
            if request.starts_with(b"POST /v1/reports/batch ") {
                let body = r#"{"error":"not found"}"#;
                let answer = format!(
                    "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                client.write_all(answer.as_bytes()).await?;
                return client.shutdown().await;
            }
            let mut server = TcpStream::connect(upstream).await?;
            server.write_all(&request).await?;
            let answer = read_response(&mut server).await?;
            client.write_all(&answer).await?;
            client.shutdown().await
        }
        Fault::ResetMidResponse | Fault::LoseResponse => {
            let request = read_request(&mut client).await?;
            let mut server = TcpStream::connect(upstream).await?;
            server.write_all(&request).await?;
            let answer = read_response(&mut server).await?;
            if fault == Fault::ResetMidResponse {
                client.write_all(&answer[..answer.len() / 2]).await?;
            }
            // RST rather than FIN: the client sees the connection break.
            // A zero linger does not block on drop (the deprecation is about non-zero ones).
            #[allow(deprecated)]
            let _ = client.set_linger(Some(Duration::ZERO));
            drop(client);
            Ok(())
        }
    }
}

async fn pass(mut client: TcpStream, upstream: SocketAddr) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server)
        .await
        .map(|_| ())
}

pub const PATIENT: &str = "P0000001";

/// A fresh local store with one patient to record reports for.
pub fn local_store(dir: &Path) -> Arc<Database> {
    let db = Database::open(&dir.join("desk.sqlite3")).unwrap();
    db.write(|c| {
        patients::upsert(
            c,
            &Patient {
                id: PatientId::parse(PATIENT).unwrap(),
                name: "测试".into(),
                sex: Sex::Female,
                birth_date: chrono::NaiveDate::from_ymd_opt(1980, 1, 1).unwrap(),
                is_insured: true,
                phone: None,
            },
        )
    })
    .unwrap();
    Arc::new(db)
}

static SCORE: AtomicU64 = AtomicU64::new(0);

pub fn record(db: &Database, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let score = (SCORE.fetch_add(1, Ordering::Relaxed) % 11) as i64;
            let r = outbox::NewReport::score(
                PatientId::parse(PATIENT).unwrap(),
                PainScore::new(PainScale::Nrs, score).unwrap(),
                Utc::now() - chrono::Duration::minutes(5),
                "N001",
                "test-device",
            );
            db.write(|c| outbox::record_report(c, &r, Utc::now()))
                .unwrap()
        })
        .collect()
}

/// How many times each of `ids` is stored on the server (straight from its database).
pub fn server_copies(central_db: &Path, clinic: &str, ids: &[String]) -> Vec<i64> {
    let conn = rusqlite::Connection::open(central_db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    ids.iter()
        .map(|id| {
            conn.query_row(
                "SELECT count(*) FROM reports WHERE clinic_id = ?1 AND report_id = ?2",
                [clinic, id],
                |r| r.get(0),
            )
            .unwrap()
        })
        .collect()
}

pub fn central(dir: &Path, compat: bool) -> (clinic_central::TestServer, PathBuf) {
    let path = dir.join("central.sqlite3");
    (
        clinic_central::spawn_for_tests(&path, compat).unwrap(),
        path,
    )
}

/// The engine settings of the fault-schedule tests: batches of one to four, a fast
/// capped backoff, client timeouts shorter than the proxy's delays, no pull.
pub fn fault_config(url: String, token: String, seed: u64) -> clinic_sync::SyncConfig {
    let mut c = clinic_sync::SyncConfig::new(url, Some(token));
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

/// Runs one fault schedule's engine over `db` through `proxy_url`: `ids` were
/// recorded before it starts, `rng` decides a few more recorded while it runs.
/// Returns every ID recorded once the outbox is drained (all delivered, nothing
/// queued, sending or rejected), failing the test after 60 s.
pub async fn drain_while_recording(
    seed: u64,
    db: &Arc<Database>,
    config: clinic_sync::SyncConfig,
    rng: &mut fastrand::Rng,
    mut ids: Vec<String>,
) -> Vec<String> {
    let engine = clinic_sync::SyncEngine::new(db.clone(), config).unwrap();
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
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut status = handle.subscribe();
    loop {
        let counts = db.read(outbox::counts).unwrap();
        if counts.delivered as usize == ids.len() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
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

/// A big clinic on `server`: the demo clinic (its staff and doctors) grown to
/// `patients` patients (the demo directory's first ones, `P0000001`..) and
/// `appointments` more appointments (`A0000001`.., each doctor's day in quarter
/// hours from a fixed date, patients in turn), stored as an import would, in
/// chunks of one transaction each.
pub fn big_clinic(
    server: &clinic_central::TestServer,
    clinic: &str,
    patients: u64,
    appointments: u64,
) {
    use clinic_central::store::ImportRows;
    server.load_demo(clinic, 1).unwrap();
    let today = Utc::now().date_naive();
    const CHUNK: u64 = 20_000;
    for from in (1..=patients).step_by(CHUNK as usize) {
        let rows = (from..=(from + CHUNK - 1).min(patients))
            .map(|n| clinic_domain::demo::patient(1, n, today))
            .collect();
        server
            .store
            .import(clinic, ImportRows::Patients(rows))
            .unwrap();
    }
    let base = chrono::DateTime::from_timestamp(1_900_000_000, 0).unwrap();
    for from in (1..=appointments).step_by(CHUNK as usize) {
        let rows = (from..=(from + CHUNK - 1).min(appointments))
            .map(|n| big_appointment(n, patients, base))
            .collect();
        server
            .store
            .import(clinic, ImportRows::Appointments(rows))
            .unwrap();
    }
}

/// The `n`th appointment of [`big_clinic`] (status `status` if given).
pub fn big_appointment(
    n: u64,
    patients: u64,
    base: chrono::DateTime<Utc>,
) -> clinic_domain::Appointment {
    let doctor = (n % clinic_domain::demo::DEMO_DOCTORS as u64) + 1;
    let start = base + chrono::Duration::minutes(15 * (n as i64 / 10));
    clinic_domain::Appointment::new(
        &format!("A{n:07}"),
        &format!("D{doctor:03}"),
        clinic_domain::demo::patient_id(n % patients + 1).as_str(),
        start,
        start + chrono::Duration::minutes(15),
        "booked",
    )
    .unwrap()
}
