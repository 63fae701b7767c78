//! The ward pain board's query on a ward's worth of patients assessed today over a
//! long history: `ward::board` against the obvious query (number every patient's
//! current reports with a window function and keep the first two), on the same file
//! in the same run.
//!
//!   cargo bench -p clinic-store --bench ward                    # 300 on the board, 100,000 reports
//!   BENCH_WARD=600 BENCH_REPORTS=300000 cargo bench -p clinic-store --bench ward
//!
//! Under `cargo test --benches` it runs on 20,000 reports so it stays a smoke test.

use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use clinic_domain::demo;
use clinic_store::{Database, StoreError, patients, ward};
use rusqlite::params;

const SEED: u64 = 2026;
/// Patients with history who were not assessed today, per patient on the board.
const OTHERS_PER_WARD_PATIENT: u64 = 5;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The obvious way: every current report of every patient numbered newest first.
/// Same answer as `ward::board` (before the domain's sort), read through the history.
const NAIVE: &str = "
    WITH cur AS (
        SELECT r.*, row_number() OVER (PARTITION BY r.patient_id ORDER BY r.assessed_at DESC, r.id DESC) AS rn
        FROM pain_reports r
        WHERE NOT EXISTS (SELECT 1 FROM pain_reports n WHERE n.supersedes = r.id)
    )
    SELECT l.patient_id, l.score, v.score,
        (SELECT min(o.reassess_due_at) FROM cur o
         WHERE o.patient_id = l.patient_id AND o.reassess_due_at IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM pain_reports f WHERE f.follows_up IN (o.id, o.supersedes)
                           AND NOT EXISTS (SELECT 1 FROM pain_reports g WHERE g.supersedes = f.id)))
    FROM cur l LEFT JOIN cur v ON v.patient_id = l.patient_id AND v.rn = 2
    WHERE l.rn = 1 AND l.assessed_at >= ?1";

fn timed(samples: usize, mut f: impl FnMut() -> usize) -> (Vec<Duration>, usize) {
    let mut times = Vec::with_capacity(samples);
    let mut rows = 0;
    for _ in 0..samples {
        let start = Instant::now();
        rows = f();
        times.push(start.elapsed());
    }
    times.sort();
    (times, rows)
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let env = |name: &str, default: u64| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let on_board = env("BENCH_WARD", 300);
    let total = env("BENCH_REPORTS", if bench_mode { 100_000 } else { 20_000 });
    let samples = if bench_mode { 200 } else { 10 };
    let naive_samples = if bench_mode { 20 } else { 2 };
    let patients_total = on_board * (1 + OTHERS_PER_WARD_PATIENT);
    let per_patient = (total / patients_total).max(2);

    let now = Utc::now();
    let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward.sqlite3");
    let db = Database::open(&path).unwrap();

    let start = Instant::now();
    let written = db
        .write(|c| {
            let tx = c.transaction()?;
            let all: Vec<_> = demo::patients(SEED, patients_total, today).collect();
            for p in &all {
                patients::upsert(&tx, p)?;
            }
            let mut rng = demo::DemoRng::new(SEED);
            let mut insert = tx.prepare(
                "INSERT INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at,
                     recorded_by, device_id, supersedes, correction_reason, follows_up, intervention,
                     reassess_due_at)
                 VALUES (?1, ?2, 'nrs', ?3, ?4, ?4, 'N001', 'dev-a', ?5, ?6, ?7, ?8, ?9)",
            )?;
            let mut written = 0u64;
            for (i, p) in all.iter().enumerate() {
                let ward_patient = (i as u64) < on_board;
                // The last assessment of a patient on the board is within the last
                // 20 hours; everyone else's ended two days ago. A few hours apart before.
                let last = if ward_patient {
                    now.timestamp() - rng.below(20 * 3600) as i64
                } else {
                    now.timestamp() - 2 * 86_400 - rng.below(30 * 86_400) as i64
                };
                let mut previous_intervention: Option<String> = None;
                for k in 0..per_patient {
                    let at = last - ((per_patient - 1 - k) * 4 * 3600) as i64;
                    let id = format!("{}-{k:05}", p.id.as_str());
                    let intervention = k % 10 == 3;
                    // The last intervention of a few ward patients is not followed up: overdue.
                    let follows = previous_intervention.take();
                    insert.execute(params![
                        id,
                        p.id.as_str(),
                        rng.below(11) as i64,
                        at,
                        None::<String>,
                        None::<String>,
                        follows,
                        intervention.then_some("布洛芬"),
                        intervention.then_some(at + 3600),
                    ])?;
                    written += 1;
                    if intervention && rng.below(4) > 0 {
                        previous_intervention = Some(id.clone());
                    }
                    if k % 25 == 7 {
                        insert.execute(params![
                            format!("{id}-c"),
                            p.id.as_str(),
                            rng.below(11) as i64,
                            at,
                            id,
                            "录入错误",
                            None::<String>,
                            None::<String>,
                            None::<i64>,
                        ])?;
                        written += 1;
                    }
                }
            }
            drop(insert);
            tx.commit()?;
            Ok::<_, StoreError>(written)
        })
        .unwrap();
    db.write(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;"))
        .unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "ward board benchmark: {written} reports of {patients_total} patients ({per_patient} each, \
         every 25th corrected, every 10th with an intervention), {on_board} assessed in the last 24 hours; \
         loaded in {:.1} s, database {:.0} MiB",
        start.elapsed().as_secs_f64(),
        size as f64 / (1 << 20) as f64
    );

    let (fast, rows) = db
        .read(|c| Ok::<_, StoreError>(timed(samples, || ward::board(c, now, 24).unwrap().len())))
        .unwrap();
    let since = now.timestamp() - 24 * 3600;
    let (slow, naive_rows) = db
        .read(|c| {
            let mut stmt = c.prepare(NAIVE)?;
            Ok::<_, StoreError>(timed(naive_samples, || {
                stmt.query_map([since], |_| Ok(())).unwrap().count()
            }))
        })
        .unwrap();
    assert_eq!(
        rows as u64, on_board,
        "every patient assessed today is on the board"
    );
    assert_eq!(naive_rows, rows, "the baseline answers the same patients");

    println!(
        "\n{:<28} {:>10} {:>10} {:>8}",
        "query", "median ms", "p95 ms", "samples"
    );
    for (name, times) in [("ward::board", &fast), ("naive (window function)", &slow)] {
        println!(
            "{:<28} {:>10.2} {:>10.2} {:>8}",
            name,
            ms(percentile(times, 0.5)),
            ms(percentile(times, 0.95)),
            times.len()
        );
    }
    println!(
        "speed-up at the median: {:.0}x",
        ms(percentile(&slow, 0.5)) / ms(percentile(&fast, 0.5))
    );
}
