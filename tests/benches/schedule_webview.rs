//! A busy day in the real app: 500 visits for one doctor on top of the demo clinic's
//! day, from the click that asks for the day to the frame after its board is painted,
//! from a status filter click to the repainted board, and from a jump to the end of
//! the busy doctor's column to the frame after its rows there are painted.
//!
//! The board draws only the rows inside (or just outside) its visible area, so
//! "painted" means: every doctor's column shows that doctor's expected count, and every
//! row slot inside the board's visible area (of the columns in view) holds its row,
//! laid out in its place; then one more frame. Rows further down, and the columns
//! scrolled out of view to the right, are drawn when scrolled to; the third
//! measurement times that for the far end of the busy column.
//!
//!   WEBKIT_DISABLE_COMPOSITING_MODE=1 WEBKIT_DISABLE_DMABUF_RENDERER=1 cargo bench --bench schedule_webview
//!
//! With those variables WebKitGTK paints in software, as `scripts/test` runs the webview
//! tests; without them it composites with GL, which under Xvfb is Mesa's llvmpipe on
//! the CPU and much slower. The bench says which it measured.

#[path = "../support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::{Duration, NaiveTime};
use clinic_desk_core::{DEMO_PIN, DEMO_SEED, DaySchedule, Desk};
use clinic_domain::{Appointment, AppointmentStatus, ClinicZone, DoctorId, demo};
use serde_json::json;

/// Visits per doctor, as the board's columns must count them.
fn per_doctor(day: &DaySchedule, hide_cancelled: bool) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for a in &day.appointments {
        if !(hide_cancelled && a.status == AppointmentStatus::Cancelled) {
            *m.entry(a.doctor_id.clone()).or_default() += 1;
        }
    }
    m
}

fn main() -> Result<()> {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let rounds = if bench_mode { 40 } else { 4 };
    let zone = ClinicZone::default();
    let today = zone.today();
    let dir = tempfile::tempdir()?;
    let desk = Desk::open(&dir.path().join(clinic_desk::DATABASE_FILE))?;
    desk.load_demo(DEMO_SEED, Some(today))?;
    let doctor = DoctorId::parse("D001")?;
    desk.database().write(|c| {
        let tx = c.transaction()?;
        for i in 0..500u32 {
            let start = zone.at(today, NaiveTime::from_hms_opt(7, 0, 0).unwrap())
                + Duration::seconds(i64::from(i) * 72);
            clinic_store::schedule::upsert_appointment(
                &tx,
                &Appointment {
                    id: format!("BUSY-{i:03}"),
                    doctor_id: doctor.clone(),
                    patient_id: demo::patient_id(1 + u64::from(i)),
                    starts_at: start,
                    ends_at: start + Duration::minutes(10),
                    status: if i % 7 == 0 {
                        AppointmentStatus::Cancelled
                    } else {
                        AppointmentStatus::Booked
                    },
                },
            )?;
        }
        tx.commit()?;
        Ok::<_, clinic_store::StoreError>(())
    })?;
    let day = desk.day_schedule(None, None)?;
    let tomorrow = desk.day_schedule(Some(&(today + Duration::days(1)).to_string()), None)?;
    let cancelled = day
        .appointments
        .iter()
        .filter(|a| a.status == AppointmentStatus::Cancelled)
        .count();
    let n_today = day.appointments.len();
    let (today_cols, tomorrow_cols, filtered_cols) = (
        per_doctor(&day, false),
        per_doctor(&tomorrow, false),
        per_doctor(&day, true),
    );
    drop(desk);
    println!(
        "today: {n_today} visits ({cancelled} cancelled, {} for the busy doctor) in {} columns; tomorrow: {}",
        today_cols["D001"],
        today_cols.len(),
        tomorrow.appointments.len()
    );

    support::bench::print_compositing();
    let driver = support::Driver::start()?;
    let s = driver.launch(&["--data-dir", dir.path().to_str().unwrap()])?;
    // Nobody signed in sees no schedule (unless the clinic opens it): the front desk signs in.
    support::app::sign_in(&s, "C001", DEMO_PIN)?;
    s.click(&s.find("[data-testid=nav-schedule]")?)?;
    s.find("[data-testid=appointment-row]")?;

    // Runs `action` (a click on a selector, or `scroll:end` of the board) and waits for the
    // frame after the board is painted as `expected` ({doctor: visits}) says.
    const MEASURE: &str = r#"const [action, expected, done] = arguments;
        const want = Object.keys(expected).length;
        const painted = () => {
          const board = document.querySelector('[data-testid=schedule-board]');
          if (!board) return false;
          const cols = board.querySelectorAll('[data-testid=doctor-column]');
          if (cols.length !== want) return false;
          const rowPx = Number(board.dataset.rowPx);
          const view = board.getBoundingClientRect();
          for (const col of cols) {
            const n = expected[col.dataset.doctorId];
            if (n === undefined || Number(col.dataset.count) !== n) return false;
            const c = col.getBoundingClientRect();
            if (c.right <= view.left || c.left >= view.right) continue;
            const list = col.querySelector('[data-col-list]');
            if (!list) return n === 0;
            const top = list.getBoundingClientRect().top;
            const first = Math.max(0, Math.floor((view.top - top) / rowPx));
            const last = Math.min(n - 1, Math.floor((view.bottom - top - 1) / rowPx));
            for (let i = first; i <= last; i++) {
              const row = list.querySelector(`[data-index="${i}"]`);
              if (!row || row.dataset.doctorId !== col.dataset.doctorId) return false;
              if (Math.abs(row.parentElement.getBoundingClientRect().top - (top + i * rowPx)) > 1.5) return false;
            }
          }
          return true;
        };
        const t0 = performance.now();
        if (action === 'scroll:end') {
          const board = document.querySelector('[data-testid=schedule-board]');
          board.scrollTop = board.scrollHeight;
        } else if (action === 'scroll:top') {
          document.querySelector('[data-testid=schedule-board]').scrollTop = 0;
        } else {
          document.querySelector(action).click();
        }
        const check = () => painted() ? requestAnimationFrame(() => done(performance.now() - t0)) : requestAnimationFrame(check);
        requestAnimationFrame(check);"#;
    let mut load = Vec::new();
    let mut filter = Vec::new();
    let mut jump = Vec::new();
    let chip = "[data-testid=status-filter][data-status=cancelled]";
    for _ in 0..rounds {
        s.script_async(MEASURE, json!(["[data-testid=day-next]", tomorrow_cols]))?;
        load.push(
            s.script_async(MEASURE, json!(["[data-testid=day-prev]", today_cols]))?
                .as_f64()
                .unwrap_or(f64::NAN),
        );
        filter.push(
            s.script_async(MEASURE, json!([chip, filtered_cols]))?
                .as_f64()
                .unwrap_or(f64::NAN),
        );
        s.script_async(MEASURE, json!([chip, today_cols]))?;
        jump.push(
            s.script_async(MEASURE, json!(["scroll:end", today_cols]))?
                .as_f64()
                .unwrap_or(f64::NAN),
        );
        s.script_async(MEASURE, json!(["scroll:top", today_cols]))?;
    }
    let rendered = s.script_async(
        "arguments[0](document.querySelectorAll('[data-testid=appointment-row]').length)",
        json!([]),
    )?;
    println!("rows in the DOM at the top of the board: {rendered} of {n_today}");
    for (label, times) in [
        ("day command to painted board", &mut load),
        ("status filter to repainted board", &mut filter),
        (
            "jump to the end of the busy column to painted rows",
            &mut jump,
        ),
    ] {
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "{label} ({n_today} visits, {} runs): median {:.1} ms, p95 {:.1} ms",
            times.len(),
            pct(0.5),
            pct(0.95)
        );
    }
    Ok(())
}
