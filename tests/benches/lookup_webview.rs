//! Keystroke to painted results, through the real app on a million-patient directory.
//!
//!   cargo bench --bench lookup_webview          # 1,000,000 patients (builds the app in release)
//!   BENCH_PATIENTS=100000 cargo bench --bench lookup_webview
//!
//! The time runs in the page, from the input event to the animation frame after the
//! expected first result is in the DOM: the search box's 150 ms debounce, the IPC
//! round trip, the Rust search, and Svelte's render. The debounce is reported apart.

#[path = "../support/mod.rs"]
mod support;

use std::time::Instant;

use anyhow::Result;
use chrono::NaiveDate;
use clinic_desk_core::{DEMO_SEED, Desk};
use clinic_domain::lookup::{KeyKind, patient_keys};
use clinic_domain::{ClinicZone, demo};
use serde_json::json;

const DEBOUNCE_MS: f64 = 150.0;

fn main() -> Result<()> {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let count: u64 = std::env::var("BENCH_PATIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench_mode { 1_000_000 } else { 5_000 });
    let rounds = if bench_mode { 60 } else { 6 };

    let dir = tempfile::tempdir()?;
    let start = Instant::now();
    {
        let desk = Desk::open(&dir.path().join(clinic_desk::DATABASE_FILE))?;
        let today = ClinicZone::default().today();
        desk.load_demo(DEMO_SEED, Some(today))?;
        desk.database().write(|c| {
            let tx = c.transaction()?;
            for n in (demo::DEMO_PATIENTS + 1)..=count {
                clinic_store::patients::upsert(&tx, &demo::patient(DEMO_SEED, n, today))?;
            }
            tx.commit()?;
            Ok(())
        })?;
    }
    println!(
        "directory of {count} patients built in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    // What each query must show first, asked of the same file the app opens.
    let desk = Desk::open(&dir.path().join(clinic_desk::DATABASE_FILE))?;
    let today = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    let mut rng = demo::DemoRng::new(11);
    let mut queries = Vec::new();
    for i in 0..rounds {
        let p = demo::patient(DEMO_SEED, 1 + rng.below(count), today);
        let q = match i % 3 {
            0 => p.id.to_string(),
            1 => p.name.clone(),
            _ => {
                patient_keys(&p)
                    .into_iter()
                    .find(|(k, _)| *k == KeyKind::Pinyin)
                    .unwrap()
                    .1
            }
        };
        let first = desk
            .search_patients(&q)?
            .patients
            .first()
            .map(|s| s.id.clone())
            .unwrap();
        queries.push((q, first));
    }
    drop(desk);

    let driver = support::Driver::start()?;
    let session = driver.launch(&["--data-dir", dir.path().to_str().unwrap()])?;
    session.find("[data-testid=patient-search]")?;
    let mut times = Vec::new();
    for (q, first) in &queries {
        let v = session.script_async(
            r#"const [q, first, done] = arguments;
               const input = document.querySelector('[data-testid=patient-search]');
               const set = (v) => { input.value = v; input.dispatchEvent(new Event('input', { bubbles: true })); };
               set('');
               const firstRow = () => document.querySelector('[data-testid=patient-result]');
               const waitEmpty = () => firstRow() ? requestAnimationFrame(waitEmpty) : go();
               const go = () => {
                 const t0 = performance.now();
                 set(q);
                 const check = () => {
                   const row = firstRow();
                   if (row && row.dataset.patientId === first) requestAnimationFrame(() => done(performance.now() - t0));
                   else requestAnimationFrame(check);
                 };
                 check();
               };
               waitEmpty();"#,
            json!([q, first]),
        )?;
        times.push(v.as_f64().unwrap_or(f64::NAN));
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "keystroke to painted results over {} queries (ID, name, pinyin): median {:.1} ms, p95 {:.1} ms \
         (of which {DEBOUNCE_MS} ms is the typing debounce: median {:.1} ms, p95 {:.1} ms after it)",
        times.len(),
        pct(0.5),
        pct(0.95),
        pct(0.5) - DEBOUNCE_MS,
        pct(0.95) - DEBOUNCE_MS
    );
    Ok(())
}
