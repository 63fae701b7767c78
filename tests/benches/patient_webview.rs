//! Opening a patient with 1,000 assessments in the real app: from the click on the
//! patient in the search results to the frame after the patient's page shows its
//! chart and its list: every point of the chart (the latest 200 assessments, as many
//! as the app reads for a patient) and the list's first page of the latest records
//! with its button for the rest, in the DOM and laid out. The baseline, in the same run, alternating with it: a patient with
//! 10 assessments. The `patient_reports` command alone (IPC and Rust, no rendering),
//! called from the page, for both.
//!
//!   WEBKIT_DISABLE_COMPOSITING_MODE=1 WEBKIT_DISABLE_DMABUF_RENDERER=1 cargo bench --bench patient_webview
//!
//! 40 openings of each (under `cargo test --benches` 4; `BENCH_ROUNDS` sets it), signed
//! in, so the bedside form is drawn too. The history is one assessment every two
//! hours (83 days), every third with a body site, every 40th corrected by the next
//! (`support::app::assessed_history`).

#[path = "../support/mod.rs"]
mod support;

use anyhow::{Result, ensure};
use clinic_desk_core::{DEMO_PIN, DEMO_SEED, Desk};
use clinic_domain::demo;
use serde_json::json;
use support::app::{assessed_history, sign_in};
use support::bench::{print_compositing, rounds, summary};

const OPEN: &str = r#"const [id, listed, points, done] = arguments;
    const result = document.querySelector(`[data-testid=patient-result][data-patient-id="${id}"]`);
    const t0 = performance.now();
    result.click();
    const painted = () => {
      if (!document.querySelector(`[data-testid=patient-detail][data-patient-id="${id}"]`)) return false;
      const rows = document.querySelectorAll('[data-testid=screen-patients] [data-testid=report]');
      // The list: its first page of the latest records drawn, and the button for the rest.
      const list = document.querySelector('[data-testid=screen-patients] [data-testid=report-list]');
      return list !== null && Number(list.dataset.total) === listed && rows.length > 0
        && rows[0].dataset.id.startsWith(id)
        && (rows.length === listed || document.querySelector('[data-testid=reports-earlier]') !== null)
        && document.querySelectorAll('[data-testid=screen-patients] [data-testid=chart-point]').length === points;
    };
    const check = () => painted() ? requestAnimationFrame(() => done(performance.now() - t0)) : requestAnimationFrame(check);
    check();"#;

const COMMAND: &str = r#"const [id, done] = arguments;
    const t0 = performance.now();
    window.__TAURI_INTERNALS__.invoke('patient_reports', { patientId: id })
      .then((r) => done([performance.now() - t0, r.length]));"#;

fn main() -> Result<()> {
    let rounds = rounds(40, 4);
    print_compositing();
    let dir = tempfile::tempdir()?;
    let (big, small) = (demo::patient_id(1), demo::patient_id(2));
    // (patient, assessments, rows listed, points charted)
    let mut cases = Vec::new();
    {
        let desk = Desk::open(&dir.path().join(clinic_desk::DATABASE_FILE))?;
        desk.load_demo(DEMO_SEED, None)?;
        for (patient, n) in [(big.as_str(), 1000), (small.as_str(), 10)] {
            assessed_history(&desk, patient, n)?;
            let shown = desk.patient_reports(patient)?;
            let points = shown.iter().filter(|r| r.current).count();
            cases.push((patient.to_owned(), n, shown.len(), points));
        }
    }
    println!(
        "listed and charted: {}",
        cases
            .iter()
            .map(|(p, n, l, c)| format!("{p} ({n} assessments): {l} rows, {c} points"))
            .collect::<Vec<_>>()
            .join("; ")
    );

    let driver = support::Driver::start()?;
    let s = driver.launch(&["--data-dir", dir.path().to_str().unwrap()])?;
    sign_in(&s, "N001", DEMO_PIN)?;
    support::app::open_patient(&s, &cases[1].0)?;

    let mut open = vec![Vec::new(); cases.len()];
    let mut command = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (i, (patient, _, listed, points)) in cases.iter().enumerate() {
            let answer = s.script_async(COMMAND, json!([patient]))?;
            ensure!(answer[1] == json!(listed), "the command answered {answer}");
            command[i].push(answer[0].as_f64().unwrap_or(f64::NAN));
            let search = s.find("[data-testid=patient-search]")?;
            s.clear(&search)?;
            s.type_text(&search, patient)?;
            s.find(&format!(
                "[data-testid=patient-result][data-patient-id=\"{patient}\"]"
            ))?;
            open[i].push(
                s.script_async(OPEN, json!([patient, listed, points]))?
                    .as_f64()
                    .unwrap_or(f64::NAN),
            );
        }
    }
    for (i, (_, n, _, _)) in cases.iter().enumerate() {
        let who = if *n == 10 {
            "10 assessments (baseline)".to_owned()
        } else {
            format!("{n} assessments")
        };
        summary(
            &format!("command alone (IPC and Rust), {who}"),
            &mut command[i],
        );
        summary(
            &format!("open patient, chart and list painted, {who}"),
            &mut open[i],
        );
    }
    Ok(())
}
