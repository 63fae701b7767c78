//! The ward pain board in the real app with 300 patients assessed today: from the
//! click on the Ward tab to the frame after every row in view is painted ("open"; the
//! board draws only those, as the schedule board does), and from
//! the moment a sync's pulled-changes signal reaches the open board to the frame after
//! its reloaded rows are painted ("repaint after a pull"), and the `ward_board` command
//! alone, called from the page (IPC and Rust, no rendering). The baseline, in the same
//! run on the same machine, is the same two measurements on a ward nobody was assessed
//! in: the fixed cost of the command, the IPC and a frame.
//!
//!   WEBKIT_DISABLE_COMPOSITING_MODE=1 WEBKIT_DISABLE_DMABUF_RENDERER=1 cargo bench --bench ward_webview
//!   BENCH_ROUNDS=30 cargo test --bench ward_webview     # debug build of the app
//!
//! The pull is real: each device is the demo clinic on a real `clinic-central` (clinic
//! `DEMO`), a visit's status is changed there and *Sync now* pulls it. The network and
//! the sync run are not the board's cost and are not in the time; the board's reload,
//! IPC and repaint are.

#[path = "../support/mod.rs"]
mod support;

use anyhow::Result;
use chrono::Utc;
use clinic_desk_core::{DEMO_PIN, DEMO_SEED, Desk};
use clinic_domain::{ClinicZone, demo};
use serde_json::json;

const OPEN: &str = r#"const [n, done] = arguments;
    const board = () => document.querySelector('[data-testid=ward-board]');
    const loads = Number(board().dataset.loads);
    document.querySelector('[data-testid=nav-patients]').click();
    requestAnimationFrame(() => requestAnimationFrame(() => {
      const t0 = performance.now();
      document.querySelector('[data-testid=nav-ward]').click();
      // Painted: the new board is in, and every row slot in the table's visible area holds its row.
      const painted = () => {
        if (Number(board().dataset.loads) <= loads || document.querySelector('[data-testid=screen-ward]').hidden) return false;
        if (n === 0) return document.querySelector('[data-testid=ward-none]') !== null;
        const table = document.querySelector('[data-testid=ward-table]');
        if (!table || Number(table.getAttribute('aria-rowcount')) !== n + 1) return false;
        const rowPx = Number(table.dataset.rowPx);
        const inView = Math.min(n, Math.ceil(table.clientHeight / rowPx));
        for (let i = 0; i < inView; i++) {
          if (!table.querySelector(`[data-testid=ward-row][data-index="${i}"]`)) return false;
        }
        return true;
      };
      const check = () => painted() ? requestAnimationFrame(() => done(performance.now() - t0)) : requestAnimationFrame(check);
      check();
    }));"#;

/// Installs the watcher of the next pull: the time from the board seeing a new
/// `pulledChanges` to the frame after its next load is painted.
const ARM_PULL: &str = r#"const done = arguments[arguments.length - 1];
    const b = document.querySelector('[data-testid=ward-board]');
    const pulled0 = b.dataset.pulled, loads0 = Number(b.dataset.loads);
    window.__wardPull = new Promise((resolve) => {
      let t0 = null;
      const seen = () => {
        if (t0 === null && b.dataset.pulled !== pulled0) t0 = performance.now();
        if (t0 !== null && Number(b.dataset.loads) > loads0) {
          obs.disconnect();
          requestAnimationFrame(() => resolve(performance.now() - t0));
        }
      };
      const obs = new MutationObserver(seen);
      obs.observe(b, { attributes: true });
    });
    done(pulled0);"#;

/// The command alone, called from the page: the IPC round trip and the Rust side.
const COMMAND: &str = r#"const done = arguments[arguments.length - 1];
    const t0 = performance.now();
    window.__TAURI_INTERNALS__.invoke('ward_board').then((b) => done([performance.now() - t0, b.patients.length]));"#;

const AWAIT_PULL: &str =
    "const done = arguments[arguments.length - 1]; window.__wardPull.then(done);";

/// A store of the demo clinic whose first `on_board` patients were assessed in the
/// last 20 hours, each with ten assessments over the days before and every tenth
/// with an intervention left overdue.
fn store(dir: &std::path::Path, on_board: u64) -> Result<()> {
    let desk = Desk::open(&dir.join(clinic_desk::DATABASE_FILE))?;
    desk.load_demo(DEMO_SEED, None)?;
    let now = Utc::now().timestamp();
    let mut rng = demo::DemoRng::new(7);
    desk.database().write(|c| {
        let tx = c.transaction()?;
        for i in 1..=on_board {
            let patient = demo::patient_id(i);
            let last = now - rng.below(20 * 3600) as i64;
            for k in 0..10i64 {
                let at = last - (9 - k) * 12 * 3600;
                let due = (k == 9 && i % 10 == 0).then_some(at + 3600);
                tx.execute(
                    "INSERT INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at,
                         recorded_by, device_id, intervention, reassess_due_at)
                     VALUES (?1, ?2, 'nrs', ?3, ?4, ?4, 'N001', 'cart-2', ?5, ?6)",
                    (
                        format!("{}-{k}", patient.as_str()),
                        patient.as_str(),
                        rng.below(11) as i64,
                        at,
                        due.map(|_| "布洛芬"),
                        due,
                    ),
                )?;
            }
        }
        tx.commit()?;
        Ok::<_, clinic_store::StoreError>(())
    })?;
    let shown = desk.ward_board(Utc::now())?.patients.len() as u64;
    assert_eq!(shown, on_board);
    Ok(())
}

fn summary(label: &str, times: &mut [f64]) {
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{label:<56} median {:>6.1} ms, p95 {:>6.1} ms ({} runs)",
        pct(0.5),
        pct(0.95),
        times.len()
    );
}

fn main() -> Result<()> {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let on_board: u64 = std::env::var("BENCH_WARD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    support::bench::print_compositing();

    let central_dir = tempfile::tempdir()?;
    let server =
        clinic_central::spawn_for_tests(&central_dir.path().join("central.sqlite3"), false)?;
    server.load_demo("DEMO", DEMO_SEED)?;
    let token = server.issue_token("DEMO")?;
    let url = server.base_url();
    let zone = ClinicZone::default();
    let clinic = demo::clinic("DEMO", DEMO_SEED, zone, zone.today());
    let visit = clinic
        .appointments
        .iter()
        .find(|a| zone.date_of(a.starts_at) == zone.today())
        .expect("a visit today");
    let http = reqwest::blocking::Client::new();

    let driver = support::Driver::start()?;
    for n in [on_board, 0] {
        let dir = tempfile::tempdir()?;
        store(dir.path(), n)?;
        let s = support::app::launch_synced(&driver, dir.path(), &url, &token)?;
        // The board is pain data: a nurse signs in first.
        support::app::sign_in(&s, "N001", DEMO_PIN)?;
        s.click(&s.find("[data-testid=nav-ward]")?)?;
        s.find("[data-testid=ward-board][data-loads=\"1\"]")?;

        let mut open = Vec::new();
        let mut pull = Vec::new();
        let mut command = Vec::new();
        for round in 0..rounds {
            let answer = s.script_async(COMMAND, json!([]))?;
            anyhow::ensure!(answer[1] == json!(n), "the command answered {answer}");
            command.push(answer[0].as_f64().unwrap_or(f64::NAN));
            open.push(
                s.script_async(OPEN, json!([n]))?
                    .as_f64()
                    .unwrap_or(f64::NAN),
            );
            s.script_async(ARM_PULL, json!([]))?;
            let status = if round % 2 == 0 {
                "cancelled"
            } else {
                "booked"
            };
            let resp = http
                .put(format!("{url}/v1/appointments/{}", visit.id))
                .bearer_auth(&token)
                .json(&json!({
                    "doctorId": visit.doctor_id.as_str(),
                    "patientId": visit.patient_id.as_str(),
                    "startsAt": visit.starts_at.to_rfc3339(),
                    "endsAt": visit.ends_at.to_rfc3339(),
                    "status": status,
                }))
                .send()?;
            anyhow::ensure!(resp.status().is_success(), "{}", resp.text()?);
            s.click(&s.find("[data-testid=sync-now]")?)?;
            pull.push(
                s.script_async(AWAIT_PULL, json!([]))?
                    .as_f64()
                    .unwrap_or(f64::NAN),
            );
        }
        let who = if n == 0 {
            "an empty ward (baseline)".to_owned()
        } else {
            format!("{n} patients")
        };
        summary(
            &format!("command alone (IPC and Rust), {who}"),
            &mut command,
        );
        summary(&format!("open, {who}"), &mut open);
        summary(&format!("repaint after a pull, {who}"), &mut pull);
    }
    Ok(())
}
