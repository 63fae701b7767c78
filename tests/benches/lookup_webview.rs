//! Keystroke to painted results, through the real app on a million-patient directory.
//!
//!   cargo bench --bench lookup_webview          # 1,000,000 patients (builds the app in release)
//!   BENCH_PATIENTS=100000 cargo bench --bench lookup_webview
//!   BENCH_PATIENTS=100000 BENCH_ROUNDS=30 cargo test --bench lookup_webview   # debug build
//!
//! The time runs in the page, from the input event to the animation frame after the
//! expected first result is in the DOM: the IPC round trip, the Rust search, and
//! Svelte's render (the search box searches on every keystroke, without a debounce).
//!
//! Then bursts of 10 fast keystrokes (a pinyin query typed a letter at a time):
//! every keystroke's search is sent (the results list counts them in
//! `data-searches-sent`: Tauri's IPC entry point cannot be wrapped), the results list never shows the answer to a query that
//! is no longer the one in the box, and it ends on the last query's results. Half
//! the bursts deliver the 10 input events before any answer can come back (one
//! task): only the last query's results may be painted. The other half give each
//! letter its own task, 0 ms apart, as a keyboard does: an answer that comes back
//! between two letters is the current one and may be painted; a stale one never.
//! The bench fails if any of this does not hold.

#[path = "../support/mod.rs"]
mod support;

use std::time::Instant;

use anyhow::Result;
use chrono::NaiveDate;
use clinic_desk_core::{DEMO_PIN, DEMO_SEED};
use clinic_domain::demo;
use clinic_domain::lookup::{KeyKind, patient_keys};
use serde_json::json;

/// Keystrokes in a burst.
const BURST: usize = 10;

fn main() -> Result<()> {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let count: u64 = std::env::var("BENCH_PATIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench_mode { 1_000_000 } else { 5_000 });
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench_mode { 60 } else { 6 });

    let dir = tempfile::tempdir()?;
    let driver = support::Driver::start()?;
    let start = Instant::now();
    support::app::patient_directory(&driver, &dir.path().join(clinic_desk::DATABASE_FILE), count)?;
    println!(
        "directory of {count} patients built in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    // What each query must show first, asked of the same file the app opens.
    let desk = support::app::app_store(&driver, &dir.path().join(clinic_desk::DATABASE_FILE))?;
    let today = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    let mut rng = demo::DemoRng::new(11);
    let mut queries = Vec::new();
    let mut bursts = Vec::new();
    while bursts.len() < rounds / 3 {
        let p = demo::patient(DEMO_SEED, 1 + rng.below(count), today);
        let pinyin = patient_keys(&p)
            .into_iter()
            .find(|(k, _)| *k == KeyKind::Pinyin)
            .unwrap()
            .1;
        if pinyin.len() >= BURST {
            let typed: Vec<String> = (1..=BURST).map(|n| pinyin[..n].to_owned()).collect();
            let first = desk
                .search_patients(&typed[BURST - 1])?
                .patients
                .first()
                .map(|s| s.id.clone())
                .unwrap();
            bursts.push((typed, first));
        }
    }
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

    let session = driver.launch(&["--data-dir", dir.path().to_str().unwrap()])?;
    // Nobody signed in sees no patient: the front desk signs in first.
    support::app::sign_in(&session, "C001", DEMO_PIN)?;
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
        "keystroke to painted results over {} queries (ID, name, pinyin), no debounce: median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        times.len(),
        pct(0.5),
        pct(0.95),
        pct(1.0)
    );

    let mut burst_times = Vec::new();
    let mut intermediate_paints = 0;
    let mut same_task_paints = 0;
    for (i, (typed, first)) in bursts.iter().enumerate() {
        let own_tasks = i % 2 == 1;
        let v = session.script_async(
            r#"const [typed, first, ownTasks, done] = arguments;
               const input = document.querySelector('[data-testid=patient-search]');
               const list = document.querySelector('#patient-results');
               const set = (v) => { input.value = v; input.dispatchEvent(new Event('input', { bubbles: true })); };
               set('');
               const searches = () => Number(list.dataset.searchesSent);
               const before = searches();
               // Every query whose answer the list showed, and whether the box still
               // held that query when it did.
               const painted = [];
               const observer = new MutationObserver(() => {
                 const q = list.dataset.resultsFor;
                 if (q) painted.push({ q, current: q === input.value.trim() });
               });
               const finish = (ms) => {
                 observer.disconnect();
                 done({ ms, sent: searches() - before, painted });
               };
               const firstRow = () => document.querySelector('[data-testid=patient-result]');
               const waitEmpty = () => firstRow() ? requestAnimationFrame(waitEmpty) : go();
               const go = () => {
                 observer.observe(list, { attributes: true, attributeFilter: ['data-results-for'] });
                 const t0 = performance.now();
                 const last = typed[typed.length - 1];
                 let n = 0;
                 const key = () => {
                   set(typed[n]);
                   n += 1;
                   if (n === typed.length) return;
                   if (ownTasks) setTimeout(key, 0);
                   else key();
                 };
                 key();
                 const check = () => {
                   const row = firstRow();
                   if (n === typed.length && list.dataset.resultsFor === last && row && row.dataset.patientId === first)
                     requestAnimationFrame(() => setTimeout(() => finish(performance.now() - t0), 300));
                   else requestAnimationFrame(check);
                 };
                 check();
               };
               waitEmpty();"#,
            json!([typed, first, own_tasks]),
        )?;
        let sent = v["sent"].as_u64().unwrap_or(0);
        let painted = v["painted"].as_array().cloned().unwrap_or_default();
        let last = &typed[BURST - 1];
        assert_eq!(sent, BURST as u64, "every keystroke searches: {v}");
        assert!(
            painted.iter().all(|p| p["current"] == true),
            "a stale answer was painted over a newer query: {v}"
        );
        assert_eq!(
            painted.last().and_then(|p| p["q"].as_str()),
            Some(last.as_str()),
            "{v}"
        );
        let earlier = painted
            .iter()
            .filter(|p| p["q"].as_str() != Some(last))
            .count();
        if own_tasks {
            intermediate_paints += earlier;
        } else {
            assert_eq!(
                earlier, 0,
                "keystrokes faster than the answers paint only the last query's: {v}"
            );
            same_task_paints += painted.len();
        }
        // The burst's own duration is in here: first keystroke to the last query's results.
        burst_times.push(v["ms"].as_f64().unwrap_or(f64::NAN) - 300.0);
    }
    burst_times.sort_by(f64::total_cmp);
    let same_task = bursts.len().div_ceil(2);
    println!(
        "{} bursts of {BURST} keystrokes, {} searches sent, 0 stale answers painted. {same_task} bursts in one task: \
         {same_task_paints} paints, all of the last query's results. {} bursts a task per letter: {intermediate_paints} \
         answers to an earlier letter painted while it was still the query in the box. First keystroke to the last \
         query's results: median {:.1} ms",
        bursts.len(),
        bursts.len() * BURST,
        bursts.len() - same_task,
        burst_times[burst_times.len() / 2]
    );
    Ok(())
}
