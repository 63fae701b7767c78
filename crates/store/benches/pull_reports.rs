//! Applying the clinic's reports feed to a device's store: 100,000 reports recorded
//! on other devices (1,000 patients, one in ten a correction, one in ten with an
//! intervention) in pages of 1,000, as `clinic_sync::pull` hands them over, into a
//! durable store file (`synchronous=FULL`, one transaction per page). In the same
//! run, on the same machine:
//! - the floor: the same rows written by plain INSERTs, a transaction per page, no
//!   checks, no savepoints (the trail triggers still fire: they are the schema's);
//! - `apply_reports` into an empty store (every report judged and stored);
//! - `apply_reports` of the same pages again (every report recognised as already
//!   here: what a device pays for its own reports coming back, or a re-fetch).
//!
//! Peak RSS is this process's VmHWM (the store only; no server, no HTTP).
//!
//!   cargo bench -p clinic-store --bench pull_reports      # 100,000 reports
//!   BENCH_REPORTS=20000 cargo bench -p clinic-store --bench pull_reports
//!
//! Under `cargo test --benches` it runs on 5,000 reports so it stays a smoke test.

use std::time::Instant;

use chrono::{DateTime, Utc};
use clinic_domain::{AssessmentDetails, PainScale, PainScore, Patient, PatientId, Sex};
use clinic_store::pull::{Applied, PulledItem, PulledReport, apply_reports};
use clinic_store::{Database, StoreError, patients};
use rusqlite::params;

const PATIENTS: usize = 1_000;
const PAGE: usize = 1_000;

/// Reports come in runs of ten per patient.
fn patient_id(i: usize) -> PatientId {
    PatientId::parse(&format!("P{:07}", (i / 10) % PATIENTS)).unwrap()
}

fn report_id(i: usize) -> String {
    uuid::Uuid::from_u128(0x0190_f7a4_0000_7000_8000_0000_0000_0000 + i as u128).to_string()
}

/// The `i`th report of the feed: the last of each patient's run of ten corrects
/// the first, the fourth records an intervention.
fn report(i: usize, base: i64) -> PulledReport {
    let at = base + i as i64;
    let corrects = (i % 10 == 9).then(|| report_id(i - 9));
    PulledReport {
        id: report_id(i),
        patient_id: patient_id(i),
        score: PainScore::new(PainScale::Nrs, (i % 11) as i64).unwrap(),
        assessed_at: DateTime::from_timestamp(at, 0).unwrap(),
        recorded_at: at,
        recorded_by: format!("N{:03}", i % 40),
        device_id: format!("device-{}", i % 7),
        reason: corrects
            .as_ref()
            .map(|_| "entered the wrong score".to_owned()),
        supersedes: corrects,
        details: AssessmentDetails {
            intervention: (i % 10 == 3).then(|| "布洛芬 400mg".to_owned()),
            ..Default::default()
        },
        follows_up: None,
        resolves: Vec::new(),
        received_at: at + 2,
    }
}

fn store(dir: &std::path::Path, name: &str) -> Database {
    let db = Database::open(&dir.join(name)).unwrap();
    db.write(|c| {
        let tx = c.transaction()?;
        for i in 0..PATIENTS {
            patients::upsert(
                &tx,
                &Patient {
                    id: PatientId::parse(&format!("P{i:07}")).unwrap(),
                    name: format!("患者{i}"),
                    sex: Sex::Female,
                    birth_date: chrono::NaiveDate::from_ymd_opt(1960, 1, 1).unwrap(),
                    is_insured: true,
                    phone: None,
                },
            )?;
        }
        tx.commit()?;
        Ok::<_, StoreError>(())
    })
    .unwrap();
    db
}

/// The floor: the rows alone, a transaction per page.
fn plain(db: &Database, pages: &[Vec<PulledItem<PulledReport>>]) {
    for page in pages {
        db.write(|c| {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at,
                        recorded_by, device_id, supersedes, correction_reason, intervention, received_at, pulled_at)
                     VALUES (?1, ?2, 'nrs', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, unixepoch())",
                )?;
                for item in page {
                    let Ok(clinic_store::pull::Change::Upsert(r)) = &item.change else {
                        unreachable!()
                    };
                    stmt.execute(params![
                        r.id,
                        r.patient_id.as_str(),
                        r.score.value(),
                        r.assessed_at.timestamp(),
                        r.recorded_at,
                        r.recorded_by,
                        r.device_id,
                        r.supersedes,
                        r.reason,
                        r.details.intervention,
                        r.received_at,
                    ])?;
                }
            }
            tx.commit()?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    }
}

fn apply(db: &Database, pages: &[Vec<PulledItem<PulledReport>>]) -> (usize, usize) {
    let (mut stored, mut set_aside) = (0, 0);
    for (n, page) in pages.iter().enumerate() {
        let next = ((n + 1) * PAGE) as i64;
        let done = db
            .write(|c| apply_reports(c, page, next, Utc::now(), true))
            .unwrap();
        assert_eq!(done.applied, Applied::All);
        stored += done.stored;
        set_aside += done.set_aside;
    }
    (stored, set_aside)
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("BENCH_REPORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench_mode { 100_000 } else { 5_000 });
    let base = Utc::now().timestamp() - n as i64 - 3_600;
    let pages: Vec<Vec<PulledItem<PulledReport>>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(PAGE)
        .map(|chunk| {
            chunk
                .iter()
                .map(|&i| {
                    let r = report(i, base);
                    PulledItem::upsert(i as i64 + 1, r.id.clone(), r)
                })
                .collect()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    println!("pulling {n} reports ({PATIENTS} patients, pages of {PAGE}), durable store file");

    let floor = store(dir.path(), "floor.sqlite3");
    let started = Instant::now();
    plain(&floor, &pages);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  plain INSERTs (floor, no checks)   {:>9.0} reports/s  ({secs:.2} s)",
        n as f64 / secs
    );
    drop(floor);

    let db = store(dir.path(), "device.sqlite3");
    let started = Instant::now();
    let (stored, set_aside) = apply(&db, &pages);
    let secs = started.elapsed().as_secs_f64();
    assert_eq!((stored, set_aside), (n, 0));
    println!(
        "  apply_reports, all new             {:>9.0} reports/s  ({secs:.2} s)",
        n as f64 / secs
    );

    let started = Instant::now();
    let (stored, set_aside) = apply(&db, &pages);
    let secs = started.elapsed().as_secs_f64();
    assert_eq!((stored, set_aside), (0, 0), "every one recognised");
    println!(
        "  apply_reports, all already here    {:>9.0} reports/s  ({secs:.2} s)",
        n as f64 / secs
    );
    println!(
        "  peak RSS of this process           {:>9.1} MiB",
        peak_rss_mib()
    );
}
