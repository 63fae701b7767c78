//! Drain benchmark: 100,000 queued reports delivered to clinic-central on loopback
//! (durable, `synchronous=FULL` on both sides), batched and by single POSTs (the
//! hospital's compat server). The app side runs as its own process (`sync-agent`),
//! so its peak RSS (VmHWM) is measured without the server's.
//!
//! Each run goes twice, on a plaintext store and on an encrypted one (SQLCipher,
//! as the app opens it), side by side.
//!
//! `cargo bench -p clinic-sync --bench drain` (knobs: `BENCH_REPORTS=100000`,
//! `BENCH_STORE=plain,encrypted`).

use std::process::Command;
use std::time::Instant;

use chrono::Utc;
use clinic_domain::{Patient, PatientId, Sex};
use clinic_store::{Database, StoreKey, patients};

fn fill(db_path: &std::path::Path, key: Option<&StoreKey>, n: usize) {
    let db = match key {
        Some(key) => Database::open_encrypted(db_path, key).unwrap(),
        None => Database::open(db_path).unwrap(),
    };
    db.write(|c| {
        patients::upsert(
            c,
            &Patient {
                id: PatientId::parse("P0000001").unwrap(),
                name: "基准".into(),
                sex: Sex::Male,
                birth_date: chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
                is_insured: true,
                phone: None,
            },
        )?;
        // One transaction for the fill; the app writes one per report (see outbox::record_report).
        let tx = c.transaction()?;
        let now = Utc::now().timestamp();
        {
            let mut r = tx.prepare(
                "INSERT INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at, recorded_by, device_id)
                 VALUES (?1, 'P0000001', 'nrs', ?2, ?3, ?3, 'N001', 'bench')",
            )?;
            let mut o = tx.prepare("INSERT INTO outbox (report_id, state, queued_at) VALUES (?1, 'queued', ?2)")?;
            for i in 0..n {
                let id = uuid::Uuid::now_v7().to_string();
                r.execute(rusqlite::params![id, (i % 11) as i64, now - 60])?;
                o.execute(rusqlite::params![id, now])?;
            }
        }
        tx.commit()?;
        Ok::<_, clinic_store::StoreError>(())
    })
    .unwrap();
}

fn run(label: &str, compat: bool, in_flight: Option<u16>, encrypted: bool, n: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let server =
        clinic_central::spawn_for_tests(&dir.path().join("central.sqlite3"), compat).unwrap();
    let token = if compat {
        None
    } else {
        Some(server.issue_token("C001").unwrap())
    };
    let db_path = dir.path().join("desk.sqlite3");
    let key = encrypted.then(StoreKey::generate);
    fill(&db_path, key.as_ref(), n);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sync-agent"));
    if let Some(key) = &key {
        let file = dir.path().join("store.key");
        std::fs::write(&file, key.to_hex()).unwrap();
        cmd.arg("--key-file").arg(file);
    }
    cmd.args([
        "--db",
        db_path.to_str().unwrap(),
        "--server",
        &server.base_url(),
        "--until-drained",
    ]);
    if let Some(t) = &token {
        cmd.args(["--token", t]);
    }
    if let Some(k) = in_flight {
        cmd.args(["--batches-in-flight", &k.to_string()]);
    }
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    let kib: u64 = line
        .split_whitespace()
        .nth(3)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert_eq!(
        server.report_count(Some("C001")).unwrap(),
        n as u64,
        "every report stored once"
    );
    let store = if encrypted { "encrypted" } else { "plaintext" };
    println!(
        "{label:>20}, {store:>9}: {n} reports in {secs:.2} s = {:.0} reports/s; app peak RSS {:.1} MiB",
        n as f64 / secs,
        kib as f64 / 1024.0
    );
    n as f64 / secs
}

fn main() {
    let n: usize = std::env::var("BENCH_REPORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let stores = std::env::var("BENCH_STORE").unwrap_or_else(|_| "plain,encrypted".into());
    let arms: Vec<bool> = stores
        .split(',')
        .map(|s| match s.trim() {
            "plain" => false,
            "encrypted" => true,
            other => panic!("BENCH_STORE: unknown store {other:?} (plain, encrypted)"),
        })
        .collect();
    // The baseline first: one batch at a time, as before batches were pipelined.
    let mut ratios = Vec::new();
    for (label, compat, in_flight) in [
        ("batched, 1 in flight", false, Some(1)),
        ("batched", false, None),
        ("single", true, None),
    ] {
        let rates: Vec<f64> = arms
            .iter()
            .map(|&e| run(label, compat, in_flight, e, n))
            .collect();
        if let [plain, encrypted] = rates[..] {
            ratios.push((label, encrypted / plain));
        }
    }
    for (label, r) in ratios {
        println!("{label:>20}: encrypted at {:.2}x the plaintext rate", r);
    }
}
