//! A new device in a big clinic: 1,000,000 patients (and 100,000 appointments,
//! the demo clinic's staff) in a real clinic-central (in-process, durable SQLite,
//! loopback), pulled into an empty, durable store file by `sync-agent
//! --until-pulled` as its own process (so its peak RSS, VmHWM, is its own):
//!
//! - **bootstrap**: the snapshot (`GET /v1/snapshot`), bulk load, search keys after;
//! - **page by page**: the same agent with `--no-bootstrap`, today's pull through
//!   the feeds (pages of the app's size), in the same run. It is capped at
//!   `BENCH_PAGE_CAP_SECS` (default 180 s) and, if cut, extrapolated linearly
//!   from the patients it had stored by then (said so in its line).
//!
//! The store is encrypted as the app keeps it (SQLCipher, a raw key handed to the
//! agent in a key file); the bootstrap also runs into a plaintext store, to show
//! what encryption costs it.
//!
//! For each: time to the first lookup by ID (a patient of the first batch found
//! by `patients::search` on a read-only connection to the agent's file, polled
//! every 20 ms), time to every kind of lookup (the bootstrap row gone and the
//! cursors stored: the agent's first complete pull), and the agent's peak RSS.
//! Targets (issue 17): every lookup within 2 minutes, peak RSS under 300 MB.
//!
//!   cargo bench -p clinic-sync --bench bootstrap
//!   BENCH_PATIENTS=200000 cargo bench -p clinic-sync --bench bootstrap
//!
//! Under `cargo test --benches` it runs on 5,000 patients so it stays a smoke test.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clinic_central::auth::Scope;
use clinic_store::{Database, StoreKey, bootstrap, patients};
use rusqlite::{Connection, OpenFlags};

const CLINIC: &str = "C001";
/// The first patient of the snapshot's first patient batch.
const FIRST: &str = "P0000001";

struct Arm {
    first_lookup: Option<f64>,
    all_lookups: f64,
    /// Patients stored when the cap cut the run (then `all_lookups` is extrapolated).
    cut_at: Option<(u64, f64)>,
    peak_rss_kib: u64,
}

fn vmhwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn reader(db: &Path, key: Option<&StoreKey>) -> Connection {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    if let Some(key) = key {
        key.apply(&c).unwrap();
    }
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

fn found_by_id(c: &Connection) -> bool {
    patients::search(c, FIRST, 1)
        .is_ok_and(|f| f.first().is_some_and(|f| f.patient.id.as_str() == FIRST))
}

/// Every lookup works: no bootstrap under way and the patients' cursor stored.
fn all_ready(c: &Connection) -> bool {
    !bootstrap::under_way(c).unwrap_or(true)
        && clinic_store::pull::cursor(c, clinic_store::pull::STREAM_PATIENTS).unwrap_or(0) > 0
}

/// How one arm runs: its store, how it pulls, how long it may take.
struct Setup<'a> {
    db: &'a Path,
    encrypted: bool,
    page_by_page: bool,
    cap: Duration,
}

fn run(setup: Setup<'_>, url: &str, token: &str, total: u64) -> Arm {
    let Setup {
        db,
        encrypted,
        page_by_page,
        cap,
    } = setup;
    let key = encrypted.then(StoreKey::generate);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sync-agent"));
    match &key {
        Some(key) => {
            drop(Database::open_encrypted(db, key).unwrap());
            let file = db.with_extension("key");
            std::fs::write(&file, key.to_hex()).unwrap();
            cmd.arg("--key-file").arg(file);
        }
        None => drop(Database::open(db).unwrap()),
    }
    cmd.args([
        "--db",
        db.to_str().unwrap(),
        "--server",
        url,
        "--token",
        token,
        "--until-pulled",
    ]);
    if page_by_page {
        cmd.arg("--no-bootstrap");
    }
    let started = Instant::now();
    let mut child: Child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let c = reader(db, key.as_ref());
    let mut first_lookup = None;
    let mut peak = 0;
    loop {
        peak = peak.max(vmhwm_kib(pid));
        if first_lookup.is_none() && found_by_id(&c) {
            first_lookup = Some(started.elapsed().as_secs_f64());
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "sync-agent failed");
            assert!(all_ready(&c), "the agent's pull ended complete");
            let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
            let agent_peak: u64 = out
                .split_whitespace()
                .nth(3)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            return Arm {
                first_lookup,
                all_lookups: started.elapsed().as_secs_f64(),
                cut_at: None,
                peak_rss_kib: peak.max(agent_peak),
            };
        }
        if started.elapsed() > cap {
            peak = peak.max(vmhwm_kib(pid));
            child.kill().unwrap();
            child.wait().unwrap();
            let secs = started.elapsed().as_secs_f64();
            let stored: u64 = c
                .query_row("SELECT count(*) FROM patients", [], |r| r.get::<_, i64>(0))
                .unwrap() as u64;
            return Arm {
                first_lookup,
                all_lookups: secs * total as f64 / stored.max(1) as f64,
                cut_at: Some((stored, secs)),
                peak_rss_kib: peak,
            };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn line(what: &str, arm: &Arm) {
    let first = arm
        .first_lookup
        .map_or("-".to_owned(), |s| format!("{s:.2} s"));
    let cut = arm.cut_at.map_or(String::new(), |(n, s)| {
        format!(" (cut after {s:.0} s at {n} patients; extrapolated)")
    });
    println!(
        "  {what:<28} first ID lookup {first:>8}   every lookup {:>7.1} s{cut}   device peak RSS {:.0} MiB",
        arm.all_lookups,
        arm.peak_rss_kib as f64 / 1024.0
    );
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let env = |k: &str, bench: u64, smoke: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if bench_mode { bench } else { smoke })
    };
    let patients = env("BENCH_PATIENTS", 1_000_000, 5_000);
    let appointments = env("BENCH_APPOINTMENTS", 100_000, 2_000);
    let cap = Duration::from_secs(env("BENCH_PAGE_CAP_SECS", 180, 120));
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = support::central(dir.path(), false);
    let filled = Instant::now();
    support::big_clinic(&server, CLINIC, patients, appointments);
    let token = server.issue_scoped_token(CLINIC, Scope::Device).unwrap();
    let url = server.base_url();
    println!(
        "a new device: {patients} patients, {appointments} appointments from clinic-central on loopback into an empty durable store (server filled in {:.0} s)",
        filled.elapsed().as_secs_f64()
    );
    for (what, encrypted, page_by_page) in [
        ("bootstrap (snapshot)", true, false),
        ("bootstrap, plaintext store", false, false),
        ("page by page (feeds)", true, true),
    ] {
        let setup = Setup {
            db: &dir
                .path()
                .join(format!("{encrypted}-{page_by_page}.sqlite3")),
            encrypted,
            page_by_page,
            cap: if page_by_page {
                cap
            } else {
                Duration::from_secs(3_600)
            },
        };
        line(what, &run(setup, &url, &token, patients));
    }
}
