//! End to end through the real app: the release of `clinic-desk` cargo built, in a real
//! WebKitGTK webview under Xvfb, driven by tauri-driver. The demo clinic is generated
//! here with the same seed so the test knows which patients and visits to expect.

mod support;

use std::collections::HashMap;

use anyhow::Result;
use clinic_desk_core::DEMO_SEED;
use clinic_domain::{ClinicZone, demo};
use support::{Driver, wait_until};

fn demo_clinic() -> demo::DemoClinic {
    let zone = ClinicZone::default();
    demo::clinic("DEMO", DEMO_SEED, zone, zone.today())
}

fn launch_demo<'d>(driver: &'d Driver, dir: &tempfile::TempDir) -> Result<support::Session<'d>> {
    driver.launch(&["--data-dir", dir.path().to_str().unwrap(), "--demo"])
}

/// Signs a demo nurse in through the header's dialog, as a person would.
fn sign_in(s: &support::Session<'_>, staff_id: &str, pin: &str) -> Result<()> {
    s.click(&s.find("[data-testid=session-signin]")?)?;
    s.find(&format!("[data-testid=signin-staff] option[value=\"{staff_id}\"]"))?;
    s.select_value("[data-testid=signin-staff]", staff_id)?;
    s.type_text(&s.find("[data-testid=signin-pin]")?, pin)?;
    s.click(&s.find("[data-testid=signin-submit]")?)?;
    let name = s.find("[data-testid=session-name]")?;
    wait_until(std::time::Duration::from_secs(10), || Ok(s.attr(&name, "data-state")?.as_deref() == Some("active")))
}

/// Sets a form field the way typing would (WebKit's date-time field takes no typed text over WebDriver).
fn set_field(s: &support::Session<'_>, css: &str, value: &str) -> Result<()> {
    s.find(css)?;
    s.script_async(
        "const [css, value, done] = arguments; const el = document.querySelector(css);
         el.value = value; el.dispatchEvent(new Event('input', { bubbles: true })); done(el.value);",
        serde_json::json!([css, value]),
    )?;
    Ok(())
}

fn count(s: &support::Session<'_>, css: &str) -> Result<usize> {
    Ok(s.find_all(css)?.len())
}

#[test]
fn a_nurse_signs_in_records_reviews_and_corrects_a_pain_score() -> Result<()> {
    let clinic = demo_clinic();
    let patient = &clinic.patients[11];
    let driver = Driver::start()?;
    let dir = tempfile::tempdir()?;
    let s = launch_demo(&driver, &dir)?;
    let wait = std::time::Duration::from_secs(10);

    s.type_text(&s.find("[data-testid=patient-search]")?, &format!("{}\u{E007}", patient.id))?;
    s.find("[data-testid=sign-in-first]")?;
    assert_eq!(count(&s, "[data-testid=pain-form]")?, 0, "no form before someone signs in");

    // A wrong PIN is refused in the dialog; the right one signs the nurse in.
    s.click(&s.find("[data-testid=session-signin]")?)?;
    s.find("[data-testid=signin-staff] option[value=\"N001\"]")?;
    s.select_value("[data-testid=signin-staff]", "N001")?;
    s.type_text(&s.find("[data-testid=signin-pin]")?, "9999")?;
    s.click(&s.find("[data-testid=signin-submit]")?)?;
    let refused = s.find("[data-testid=signin-error] [data-error-code]")?;
    assert_eq!(s.attr(&refused, "data-error-code")?.as_deref(), Some("wrong_pin"));
    s.type_text(&s.find("[data-testid=signin-pin]")?, "1234")?;
    s.click(&s.find("[data-testid=signin-submit]")?)?;
    let name = s.find("[data-testid=session-name]")?;
    wait_until(wait, || Ok(s.attr(&name, "data-state")?.as_deref() == Some("active")))?;

    // Record 7 with a body site and an intervention: saved at once, queued (no server), charted, reassessment due.
    s.click(&s.find("[data-testid=pain-form] [data-testid=score-7]")?)?;
    s.click(&s.find("[data-testid=pain-form] [data-testid=details-toggle]")?)?;
    s.type_text(&s.find("[data-testid=pain-form] [data-testid=body-site]")?, "右膝")?;
    s.type_text(&s.find("[data-testid=pain-form] [data-testid=intervention]")?, "布洛芬 400mg")?;
    s.click(&s.find("[data-testid=report-record]")?)?;
    let first = s.find("[data-testid=report]")?;
    assert_eq!(s.attr(&first, "data-state")?.as_deref(), Some("queued"));
    assert_eq!(s.attr(&first, "data-reassessment")?.as_deref(), Some("due"));
    assert!(s.text(&first)?.contains("右膝"));
    let point = s.find("[data-testid=chart-point]")?;
    assert_eq!(s.attr(&point, "data-score")?.as_deref(), Some("7"));

    // A time in the future is refused with its own message, and nothing is saved.
    s.click(&s.find("[data-testid=pain-form] [data-testid=score-5]")?)?;
    s.click(&s.find("[data-testid=pain-form] [data-testid=when-earlier]")?)?;
    let future = (chrono::Utc::now() + chrono::Duration::hours(2)).with_timezone(&clinic.zone.tz());
    set_field(&s, "[data-testid=pain-form] [data-testid=assessed-at]", &future.format("%Y-%m-%dT%H:%M").to_string())?;
    s.click(&s.find("[data-testid=report-record]")?)?;
    let error = s.find("[data-testid=pain-form-error] [data-error-code]")?;
    assert_eq!(s.attr(&error, "data-error-code")?.as_deref(), Some("assessment_in_future"));
    assert_eq!(count(&s, "[data-testid=report]")?, 1, "nothing saved");

    // Correct the 7 to a 4 with a reason: both records listed, the first marked superseded, the chart shows the 4.
    s.click(&s.find("[data-testid=report] [data-testid=report-correct]")?)?;
    s.click(&s.find("[data-testid=correction-form] [data-testid=score-4]")?)?;
    s.type_text(&s.find("[data-testid=correction-reason]")?, "患者重新表述为 4 分")?;
    s.click(&s.find("[data-testid=correction-save]")?)?;
    wait_until(wait, || Ok(count(&s, "[data-testid=report]")? == 2))?;
    let old = s.find("[data-testid=report][data-superseded=true]")?;
    assert!(s.text(&old)?.contains('7'));
    let new = s.find("[data-testid=report][data-superseded=false]")?;
    assert!(s.text(&s.find("[data-testid=report][data-superseded=false] [data-testid=report-corrects]")?)?.contains("患者重新表述为 4 分"));
    assert_eq!(s.attr(&new, "data-state")?.as_deref(), Some("queued"), "the correction is synced too");
    wait_until(wait, || {
        let points = s.find_all("[data-testid=chart-point]")?;
        Ok(points.len() == 1 && s.attr(&points[0], "data-score")?.as_deref() == Some("4"))
    })?;
    // The superseded record's trail says so.
    s.click(&s.find("[data-testid=report][data-superseded=true] [data-testid=report-history-toggle]")?)?;
    s.find("[data-testid=report][data-superseded=true] [data-testid=report-history] [data-action=superseded]")?;

    // The correction kept the intervention, so its reassessment is owed on this device's list.
    s.click(&s.find("[data-testid=nav-reassess]")?)?;
    let item = s.find("[data-testid=reassess-item]")?;
    assert_eq!(s.attr(&item, "data-patient-id")?.as_deref(), Some(patient.id.as_str()));

    // A FHIR export of the patient: both records, keyed by their IDs.
    s.click(&s.find("[data-testid=nav-patients]")?)?;
    s.click(&s.find("[data-testid=export-fhir]")?)?;
    let result = s.text(&s.find("[data-testid=export-result]")?)?;
    let path = result.split_whitespace().find(|w| w.contains("fhir-")).unwrap_or_default().to_owned();
    let bundle: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    assert_eq!(bundle["entry"].as_array().map(Vec::len), Some(2), "{path}");
    assert!(bundle.to_string().contains("72514-3"));
    Ok(())
}

#[test]
fn a_nurse_finds_a_demo_patient_by_name_and_by_scanned_id() -> Result<()> {
    let clinic = demo_clinic();
    // A patient whose name no one else in the clinic shares, so one result is expected.
    let mut names: HashMap<&str, usize> = HashMap::new();
    for p in &clinic.patients {
        *names.entry(p.name.as_str()).or_default() += 1;
    }
    let patient = clinic.patients.iter().rev().find(|p| names[p.name.as_str()] == 1 && p.name.chars().count() == 3).unwrap();

    let driver = Driver::start()?;
    let dir = tempfile::tempdir()?;
    let s = launch_demo(&driver, &dir)?;

    let search = s.find("[data-testid=patient-search]")?;
    s.type_text(&search, &patient.name)?;
    let selector = format!("[data-testid=patient-result][data-patient-id=\"{}\"]", patient.id);
    let row = s.find(&selector)?;
    assert!(s.text(&row)?.contains(&patient.name));
    s.click(&row)?;
    let name = s.find("[data-testid=patient-name]")?;
    wait_until(std::time::Duration::from_secs(10), || Ok(s.text(&name)? == patient.name))?;

    // Full pinyin finds the same patient, and the result says it matched by pinyin.
    let pinyin = clinic_domain::lookup::patient_keys(patient)
        .into_iter()
        .find(|(k, _)| *k == clinic_domain::lookup::KeyKind::Pinyin)
        .unwrap()
        .1;
    s.clear(&search)?;
    s.type_text(&search, &pinyin)?;
    // The name search's results stay on screen until the pinyin answer replaces them.
    wait_until(std::time::Duration::from_secs(10), || {
        let cells = s.find_all(&format!("{selector} [data-match]"))?;
        Ok(match cells.first() {
            Some(cell) => s.attr(cell, "data-match")?.as_deref() == Some("pinyin"),
            None => false,
        })
    })?;
    assert!(s.text(&s.find(&selector)?)?.contains(&patient.name));

    // Two characters of the name, highlighted where they matched.
    let two: String = patient.name.chars().skip(1).collect();
    s.clear(&search)?;
    s.type_text(&search, &two)?;
    wait_until(std::time::Duration::from_secs(10), || {
        Ok(s.find_all("[data-testid=patient-result] mark")?.iter().any(|m| s.text(m).map(|t| t == two).unwrap_or(false)))
    })?;

    // A wristband scanner types the ID and Enter: the patient opens directly.
    let other = &clinic.patients[41];
    s.clear(&search)?;
    s.type_text(&search, &format!("{}\u{E007}", other.id))?;
    wait_until(std::time::Duration::from_secs(10), || {
        let detail = s.find("[data-testid=patient-detail]")?;
        Ok(s.attr(&detail, "data-patient-id")?.as_deref() == Some(other.id.as_str()))
    })?;
    assert_eq!(s.text(&s.find("[data-testid=patient-name]")?)?, other.name);
    Ok(())
}

#[test]
fn the_front_desk_sees_todays_appointments_and_filters_by_doctor() -> Result<()> {
    let clinic = demo_clinic();
    let today = clinic.zone.today();
    let todays: Vec<_> = clinic.appointments.iter().filter(|a| clinic.zone.date_of(a.starts_at) == today).collect();
    let doctor = &clinic.doctors[3];
    let doctors_today = todays.iter().filter(|a| a.doctor_id == doctor.id).count();
    assert!(doctors_today > 0);

    let driver = Driver::start()?;
    let dir = tempfile::tempdir()?;
    let s = launch_demo(&driver, &dir)?;

    s.click(&s.find("[data-testid=nav-schedule]")?)?;
    let date = s.find("[data-testid=schedule-date]")?;
    wait_until(std::time::Duration::from_secs(10), || Ok(s.attr(&date, "data-date")?.as_deref() == Some(&today.to_string())))?;
    wait_until(std::time::Duration::from_secs(10), || Ok(s.find_all("[data-testid=appointment-row]")?.len() == todays.len()))?;

    // Every appointment of today is there, by its ID.
    let first = todays.first().unwrap();
    s.find(&format!("[data-testid=appointment-row][data-appointment-id=\"{}\"]", first.id))?;

    // Hiding cancelled visits leaves the others; showing them again brings them back.
    let cancelled = todays.iter().filter(|a| a.status == clinic_domain::AppointmentStatus::Cancelled).count();
    let chip = s.find("[data-testid=status-filter][data-status=cancelled]")?;
    s.click(&chip)?;
    wait_until(std::time::Duration::from_secs(10), || Ok(s.find_all("[data-testid=appointment-row]")?.len() == todays.len() - cancelled))?;
    s.click(&chip)?;

    // One department: only its doctors' visits.
    let in_department = todays
        .iter()
        .filter(|a| clinic.doctors.iter().any(|d| d.id == a.doctor_id && d.department == doctor.department))
        .count();
    s.select_value("[data-testid=department-filter]", &doctor.department)?;
    wait_until(std::time::Duration::from_secs(10), || Ok(s.find_all("[data-testid=appointment-row]")?.len() == in_department))?;

    s.select_value("[data-testid=doctor-filter]", doctor.id.as_str())?;
    wait_until(std::time::Duration::from_secs(10), || Ok(s.find_all("[data-testid=appointment-row]")?.len() == doctors_today))?;

    // Tomorrow for the same doctor.
    s.click(&s.find("[data-testid=day-next]")?)?;
    let tomorrow = today.succ_opt().unwrap();
    let expected = clinic
        .appointments
        .iter()
        .filter(|a| a.doctor_id == doctor.id && clinic.zone.date_of(a.starts_at) == tomorrow)
        .count();
    wait_until(std::time::Duration::from_secs(10), || {
        Ok(s.attr(&date, "data-date")?.as_deref() == Some(&tomorrow.to_string())
            && s.find_all("[data-testid=appointment-row]")?.len() == expected)
    })?;
    Ok(())
}

#[test]
fn a_score_recorded_at_the_bedside_reaches_the_server_and_the_status_bar_says_so() -> Result<()> {
    let central_dir = tempfile::tempdir()?;
    let server = clinic_central::spawn_for_tests(&central_dir.path().join("central.sqlite3"), false)?;
    let token = server.issue_token("C001")?;
    let url = server.base_url();
    let patient = &demo_clinic().patients[7];

    let driver = Driver::start()?;
    let dir = tempfile::tempdir()?;
    let s = driver.launch(&["--data-dir", dir.path().to_str().unwrap(), "--demo", "--server", &url, "--token", &token])?;

    // The bar is there on every screen and turns online after the first sync.
    let bar = s.find("[data-testid=sync-status]")?;
    wait_until(std::time::Duration::from_secs(20), || Ok(s.attr(&bar, "data-state")?.as_deref() == Some("online")))?;
    assert!(!s.text(&s.find("[data-testid=sync-last-success]")?)?.is_empty());

    let search = s.find("[data-testid=patient-search]")?;
    s.type_text(&search, &format!("{}\u{E007}", patient.id))?;
    sign_in(&s, "N001", "1234")?;
    s.click(&s.find("[data-testid=score-7]")?)?;
    s.click(&s.find("[data-testid=report-record]")?)?;
    wait_until(std::time::Duration::from_secs(20), || Ok(server.report_count(Some("C001"))? == 1))?;
    let report = s.find("[data-testid=report]")?;
    wait_until(std::time::Duration::from_secs(10), || Ok(s.attr(&report, "data-state")?.as_deref() == Some("delivered")))?;
    // The bar is pushed the new count without anyone asking.
    let pending = s.find("[data-testid=sync-pending]")?;
    wait_until(std::time::Duration::from_secs(10), || Ok(s.attr(&pending, "data-count")?.as_deref() == Some("0")))?;
    // Sync now works from any screen.
    s.click(&s.find("[data-testid=nav-schedule]")?)?;
    s.click(&s.find("[data-testid=sync-now]")?)?;
    assert_eq!(server.report_count(Some("C001"))?, 1, "never twice");
    Ok(())
}

#[test]
fn a_cancellation_pulled_from_the_server_appears_on_the_open_schedule() -> Result<()> {
    let clinic = demo_clinic();
    let today = clinic.zone.today();
    let todays: Vec<_> = clinic.appointments.iter().filter(|a| clinic.zone.date_of(a.starts_at) == today).collect();
    let target = todays
        .iter()
        .find(|a| a.status == clinic_domain::AppointmentStatus::Booked)
        .expect("a booked visit today");

    let central_dir = tempfile::tempdir()?;
    let server = clinic_central::spawn_for_tests(&central_dir.path().join("central.sqlite3"), false)?;
    server.load_demo("C001", DEMO_SEED)?;
    let token = server.issue_token("C001")?;
    let url = server.base_url();

    // An empty device: everything on screen comes from the server.
    let driver = Driver::start()?;
    let dir = tempfile::tempdir()?;
    let s = driver.launch(&["--data-dir", dir.path().to_str().unwrap(), "--server", &url, "--token", &token])?;
    s.click(&s.find("[data-testid=nav-schedule]")?)?;
    wait_until(std::time::Duration::from_secs(30), || Ok(s.find_all("[data-testid=appointment-row]")?.len() == todays.len()))?;
    let freshness = s.find("[data-testid=schedule-freshness]")?;
    wait_until(std::time::Duration::from_secs(10), || Ok(s.attr(&freshness, "data-state")?.as_deref() == Some("fresh")))?;

    // The front desk of the server's clinic cancels a visit.
    let http = reqwest::blocking::Client::new();
    let resp = http
        .put(format!("{url}/v1/appointments/{}", target.id))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "doctorId": target.doctor_id.as_str(),
            "patientId": target.patient_id.as_str(),
            "startsAt": target.starts_at.to_rfc3339(),
            "endsAt": target.ends_at.to_rfc3339(),
            "status": "cancelled",
        }))
        .send()?;
    assert!(resp.status().is_success(), "{}", resp.text()?);

    // The next sync pulls it; the open schedule updates itself and marks the row.
    s.click(&s.find("[data-testid=sync-now]")?)?;
    let row = format!("[data-testid=appointment-row][data-appointment-id=\"{}\"]", target.id);
    wait_until(std::time::Duration::from_secs(20), || {
        let r = s.find(&row)?;
        Ok(s.attr(&r, "data-status")?.as_deref() == Some("cancelled") && s.attr(&r, "data-changed")?.as_deref() == Some("true"))
    })?;
    Ok(())
}
