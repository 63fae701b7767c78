//! A busy day in the real app: 500 visits for one doctor on top of the demo clinic's
//! day, from the click that asks for the day to the frame after its list is painted,
//! and from a status filter click to the repainted list.
//!
//!   cargo bench --bench schedule_webview

#[path = "../support/mod.rs"]
mod support;

use anyhow::Result;
use chrono::{Duration, NaiveTime};
use clinic_desk_core::{DEMO_SEED, Desk};
use clinic_domain::{Appointment, AppointmentStatus, ClinicZone, DoctorId, demo};
use serde_json::json;

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
            let start = zone.at(today, NaiveTime::from_hms_opt(7, 0, 0).unwrap()) + Duration::seconds(i64::from(i) * 72);
            clinic_store::schedule::upsert_appointment(
                &tx,
                &Appointment {
                    id: format!("BUSY-{i:03}"),
                    doctor_id: doctor.clone(),
                    patient_id: demo::patient_id(1 + u64::from(i)),
                    starts_at: start,
                    ends_at: start + Duration::minutes(10),
                    status: if i % 7 == 0 { AppointmentStatus::Cancelled } else { AppointmentStatus::Booked },
                },
            )?;
        }
        tx.commit()?;
        Ok(())
    })?;
    let day = desk.day_schedule(None, None)?;
    let tomorrow = desk.day_schedule(Some(&(today + Duration::days(1)).to_string()), None)?;
    let cancelled = day.appointments.iter().filter(|a| a.status == clinic_desk_core::AppointmentStatusDto::Cancelled).count();
    let (n_today, n_tomorrow) = (day.appointments.len(), tomorrow.appointments.len());
    drop(desk);
    println!("today: {n_today} visits ({cancelled} cancelled); tomorrow: {n_tomorrow}");

    let driver = support::Driver::start()?;
    let s = driver.launch(&["--data-dir", dir.path().to_str().unwrap()])?;
    s.click(&s.find("[data-testid=nav-schedule]")?)?;
    s.find("[data-testid=appointment-row]")?;

    // Clicks a button and waits for the frame after the list has `rows` rows.
    const MEASURE: &str = r#"const [selector, rows, done] = arguments;
        const count = () => document.querySelectorAll('[data-testid=appointment-row]').length;
        const t0 = performance.now();
        document.querySelector(selector).click();
        const check = () => count() === rows ? requestAnimationFrame(() => done(performance.now() - t0)) : requestAnimationFrame(check);
        requestAnimationFrame(check);"#;
    let mut load = Vec::new();
    let mut filter = Vec::new();
    for _ in 0..rounds {
        s.script_async(MEASURE, json!(["[data-testid=day-next]", n_tomorrow]))?;
        load.push(s.script_async(MEASURE, json!(["[data-testid=day-prev]", n_today]))?.as_f64().unwrap_or(f64::NAN));
        let chip = "[data-testid=status-filter][data-status=cancelled]";
        filter.push(s.script_async(MEASURE, json!([chip, n_today - cancelled]))?.as_f64().unwrap_or(f64::NAN));
        s.script_async(MEASURE, json!([chip, n_today]))?;
    }
    for (label, times) in [("day command to painted list", &mut load), ("status filter to repainted list", &mut filter)] {
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
        println!("{label} ({n_today} rows, {} runs): median {:.1} ms, p95 {:.1} ms", times.len(), pct(0.5), pct(0.95));
    }
    Ok(())
}
