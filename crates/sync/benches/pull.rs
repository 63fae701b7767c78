//! Pulling the clinic's reports into a device through HTTP: 100,000 reports recorded
//! on other devices (1,000 patients, one in ten a correction, one in ten with an
//! intervention), stored in a real clinic-central (in-process, durable SQLite, on
//! loopback), pulled by `sync-agent --until-pulled` as its own process into a
//! durable store file, so the device's peak RSS (VmHWM) is its own. The device
//! already holds the clinic's patients, staff and appointments (an untimed pull
//! before the reports are stored), so the timed run is the reports feed.
//!
//! In the same run, on the same machine, the floors it is measured against:
//! - **store only**: `clinic_store::pull::apply_reports` of the same reports (same
//!   IDs and content) in pages of the app's size into a copy of the same store
//!   file, in this process: no server, no HTTP, no JSON;
//! - **feed read only**: the same pages fetched over HTTP and parsed as the engine
//!   parses a page (its items left raw), written nowhere: the server and the wire.
//!
//! The pull itself runs with the app's page size and with the server's largest.
//!
//!   cargo bench -p clinic-sync --bench pull        # 100,000 reports
//!   BENCH_REPORTS=20000 cargo bench -p clinic-sync --bench pull
//!   BENCH_AGENT=/path/to/another/sync-agent cargo bench -p clinic-sync --bench pull
//!
//! (`BENCH_AGENT` pulls with another build of `sync-agent`, e.g. the commit before
//! a change, against the same server and floors in the same run.)
//!
//! Under `cargo test --benches` it runs on 5,000 reports so it stays a smoke test.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use chrono::{DateTime, Utc};
use clinic_central::store::NewReport;
use clinic_domain::{AssessmentDetails, PainScale, PainScore, PatientId};
use clinic_protocol::{DEFAULT_FEED_LIMIT, MAX_FEED_LIMIT, paths};
use clinic_store::Database;
use clinic_store::pull::{Applied, PulledItem, PulledReport, apply_reports};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

const CLINIC: &str = "C001";
const PATIENTS: usize = 1_000;
/// The server's ingest transaction, for storing the reports.
const INGEST_CHUNK: usize = 1_000;

/// Reports come in runs of ten per patient (the demo clinic's first 1,000).
fn patient_id(i: usize) -> PatientId {
    clinic_domain::demo::patient_id(((i / 10) % PATIENTS + 1) as u64)
}

fn report_id(i: usize) -> Uuid {
    Uuid::from_u128(0x0190_f7a4_0000_7000_8000_0000_0000_0000 + i as u128)
}

/// The `i`th report: the last of each patient's run of ten corrects the first, the
/// fourth records an intervention; each as the server stores it and as the device
/// applies it.
fn report(i: usize, base: i64) -> (NewReport, PulledReport) {
    let at = base + i as i64;
    let corrects = (i % 10 == 9).then(|| report_id(i - 9));
    let reason = corrects.map(|_| "entered the wrong score".to_owned());
    let details = AssessmentDetails {
        intervention: (i % 10 == 3).then(|| "布洛芬 400mg".to_owned()),
        ..Default::default()
    };
    let score = PainScore::new(PainScale::Nrs, (i % 11) as i64).unwrap();
    let (recorded_by, device_id) = (format!("N{:03}", i % 40 + 1), format!("device-{}", i % 7));
    let new = NewReport {
        clinic_id: CLINIC.into(),
        report_id: report_id(i),
        patient_id: patient_id(i),
        score,
        submit_time: at,
        assessed_at: Some(at),
        recorded_by: Some(recorded_by.clone()),
        device_id: Some(device_id.clone()),
        supersedes: corrects,
        reason: reason.clone(),
        details: details.clone(),
        follows_up: None,
        resolves: Vec::new(),
    };
    let pulled = PulledReport {
        id: report_id(i).to_string(),
        patient_id: patient_id(i),
        score,
        assessed_at: DateTime::from_timestamp(at, 0).unwrap(),
        recorded_at: at,
        recorded_by,
        device_id,
        reason,
        supersedes: corrects.map(|u| u.to_string()),
        details,
        follows_up: None,
        resolves: Vec::new(),
        received_at: at + 2,
    };
    (new, pulled)
}

fn peak_rss_kib(line: &str) -> u64 {
    line.split_whitespace()
        .nth(3)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `sync-agent --until-pulled` on `db`; the seconds it took and its output line.
fn agent(db: &Path, url: &str, token: &str, page: Option<u32>) -> (f64, String) {
    let agent = std::env::var("BENCH_AGENT");
    let mut cmd = Command::new(agent.as_deref().unwrap_or(env!("CARGO_BIN_EXE_sync-agent")));
    cmd.args([
        "--db",
        db.to_str().unwrap(),
        "--server",
        url,
        "--token",
        token,
        "--until-pulled",
    ]);
    if let Some(n) = page {
        cmd.args(["--feed-page-limit", &n.to_string()]);
    }
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (secs, String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn reports_held(db: &Path) -> i64 {
    let db = Database::open(db).unwrap();
    db.read(|c| c.query_row("SELECT count(*) FROM pain_reports", [], |r| r.get(0)))
        .unwrap()
}

/// A copy of the device's store file (closed; its WAL too, should one be left).
fn copy_store(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
    let wal = |p: &Path| p.with_extension("sqlite3-wal");
    if wal(from).exists() {
        std::fs::copy(wal(from), wal(to)).unwrap();
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPage<'a> {
    #[serde(borrow)]
    items: Vec<&'a RawValue>,
    has_more: bool,
    next_cursor: i64,
}

/// Pages the reports feed over HTTP as the engine does (one keep-alive client,
/// items left raw), storing nothing; how many items came.
async fn read_feed(url: &str, token: &str, page: u32) -> usize {
    let client = reqwest::Client::new();
    let (mut after, mut n) = (0i64, 0usize);
    loop {
        let bytes = client
            .get(format!("{url}{}", paths::FEED_REPORTS))
            .bearer_auth(token)
            .query(&[("after", after), ("limit", i64::from(page))])
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let page: RawPage = serde_json::from_slice(&bytes).unwrap();
        n += page.items.len();
        if !page.has_more || page.next_cursor <= after {
            return n;
        }
        after = page.next_cursor;
    }
}

fn line(what: &str, n: usize, secs: f64, rss_kib: Option<u64>) {
    let rss = rss_kib.map_or(String::new(), |k| {
        format!("; device peak RSS {:.1} MiB", k as f64 / 1024.0)
    });
    println!(
        "  {what:<44} {:>9.0} reports/s  ({secs:.2} s){rss}",
        n as f64 / secs
    );
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("BENCH_REPORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench_mode { 100_000 } else { 5_000 });
    let dir = tempfile::tempdir().unwrap();
    let server =
        clinic_central::spawn_for_tests(&dir.path().join("central.sqlite3"), false).unwrap();
    server.load_demo(CLINIC, 1).unwrap();
    let token = server.issue_token(CLINIC).unwrap();
    let url = server.base_url();

    // The device holds the clinic's patients, staff and appointments first.
    let warm = dir.path().join("warm.sqlite3");
    let (_, out) = agent(&warm, &url, &token, None);
    assert!(out.starts_with("pulled 0 "), "{out}");

    let base = Utc::now().timestamp() - n as i64 - 3_600;
    let (stored, pulled): (Vec<NewReport>, Vec<PulledReport>) =
        (0..n).map(|i| report(i, base)).unzip();
    for chunk in stored.chunks(INGEST_CHUNK) {
        server.store.ingest(chunk).unwrap();
    }
    drop(stored);
    assert_eq!(server.report_count(Some(CLINIC)).unwrap(), n as u64);
    println!(
        "pulling {n} reports ({PATIENTS} patients) from clinic-central on loopback into a durable store file"
    );

    // Store only: the same reports, pages of the app's size, the cursor as the feed's.
    let page = DEFAULT_FEED_LIMIT as usize;
    let pages: Vec<Vec<PulledItem<PulledReport>>> = pulled
        .into_iter()
        .enumerate()
        .map(|(i, r)| PulledItem::upsert(i as i64 + 1, r.id.clone(), r))
        .collect::<Vec<_>>()
        .chunks(page)
        .map(<[_]>::to_vec)
        .collect();
    let floor = dir.path().join("floor.sqlite3");
    copy_store(&warm, &floor);
    let db = Database::open(&floor).unwrap();
    let started = Instant::now();
    let mut applied = 0;
    for (k, p) in pages.iter().enumerate() {
        let next = (k * page + p.len()) as i64;
        let done = db
            .write(|c| apply_reports(c, p, next, Utc::now(), true))
            .unwrap();
        assert_eq!(done.applied, Applied::All);
        applied += done.stored;
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(applied, n);
    drop((db, pages));
    line(
        &format!("store only: apply_reports, pages of {page}"),
        n,
        secs,
        None,
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for limit in [DEFAULT_FEED_LIMIT, MAX_FEED_LIMIT] {
        let started = Instant::now();
        let read = runtime.block_on(read_feed(&url, &token, limit));
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(read, n);
        line(
            &format!("feed read only over HTTP, pages of {limit}"),
            n,
            secs,
            None,
        );
    }

    for limit in [DEFAULT_FEED_LIMIT, MAX_FEED_LIMIT] {
        let device = dir.path().join(format!("device-{limit}.sqlite3"));
        copy_store(&warm, &device);
        let (secs, out) = agent(&device, &url, &token, Some(limit));
        assert_eq!(
            out.split_whitespace().nth(1),
            Some(n.to_string().as_str()),
            "{out}"
        );
        assert_eq!(reports_held(&device), n as i64, "every report stored once");
        line(
            &format!("sync-agent pull over HTTP, pages of {limit}"),
            n,
            secs,
            Some(peak_rss_kib(&out)),
        );
    }
}
