//! The ward pain board end to end, in the real app under Xvfb through tauri-driver
//! (see `webview.rs` and `support/`): assessments recorded at the bedside appear in
//! urgency order, the keyboard moves between rows and Enter (or a click) opens the
//! patient; and a report stored by a pull appears on the open board without a click.

mod support;

use std::time::Duration;

use anyhow::Result;
use clinic_desk_core::{DEMO_PIN, DEMO_SEED};
use clinic_domain::demo;
use support::app::{demo_clinic, launch_synced, open_patient, record, sign_in};
use support::{Driver, wait_until};

const WAIT: Duration = Duration::from_secs(15);

/// The board's rows as (patient, score, band, trend, reassessment), top to bottom.
fn rows(s: &support::Session<'_>) -> Result<Vec<[String; 5]>> {
    let v = s.script_async(
        "const done = arguments[arguments.length - 1];
         done([...document.querySelectorAll('[data-testid=ward-row]')].map((r) =>
           [r.dataset.patientId, r.dataset.score, r.dataset.band, r.dataset.trend, r.dataset.reassessment]));",
        serde_json::json!([]),
    )?;
    Ok(serde_json::from_value(v)?)
}

fn row(patient: &str, score: u8, band: &str, trend: &str, reassessment: &str) -> [String; 5] {
    [patient, &score.to_string(), band, trend, reassessment].map(str::to_owned)
}

fn opened(s: &support::Session<'_>, id: &str) -> Result<()> {
    let detail = s.find("[data-testid=patient-detail]")?;
    wait_until(WAIT, || {
        Ok(s.attr(&s.find("[data-testid=screen-patients]")?, "hidden")?
            .is_none()
            && s.attr(&detail, "data-patient-id")?.as_deref() == Some(id))
    })
}

#[test]
fn the_ward_board_lists_the_most_urgent_first_and_opens_a_patient_by_keyboard_or_click()
-> Result<()> {
    let clinic = demo_clinic();
    let zone = clinic.zone;
    let [a, b, c, d] = [1, 2, 3, 4].map(|i| clinic.patients[i].id.as_str().to_owned());
    let driver = Driver::start()?;
    let dir = tempfile::tempdir()?;
    let s = driver.launch(&["--data-dir", dir.path().to_str().unwrap(), "--demo"])?;

    // The board is pain data: a nurse signs in first. Nobody assessed yet: the board says so.
    sign_in(&s, "N001", DEMO_PIN)?;
    s.click(&s.find("[data-testid=nav-ward]")?)?;
    s.find("[data-testid=ward-none]")?;

    open_patient(&s, &a)?;
    // a: mild, three hours ago.
    record(&s, zone, 3, 180, None)?;
    // b: severe, an hour ago.
    open_patient(&s, &b)?;
    record(&s, zone, 8, 60, None)?;
    // c: an intervention two hours ago and no reassessment since: overdue.
    open_patient(&s, &c)?;
    record(&s, zone, 4, 120, Some("布洛芬 400mg"))?;
    // d: 2 four hours ago, 5 now: up since the previous score.
    open_patient(&s, &d)?;
    record(&s, zone, 2, 240, None)?;
    record(&s, zone, 5, 0, None)?;

    s.click(&s.find("[data-testid=nav-ward]")?)?;
    let expected = vec![
        row(&c, 4, "moderate", "first", "overdue"),
        row(&b, 8, "severe", "first", "not_needed"),
        row(&a, 3, "mild", "first", "not_needed"),
        row(&d, 5, "moderate", "up", "not_needed"),
    ];
    wait_until(WAIT, || Ok(rows(&s)? == expected))
        .map_err(|e| anyhow::anyhow!("{e}: the board shows {:?}", rows(&s).unwrap_or_default()))?;
    // The trend cell names the previous score (its text, whether or not scrolled into view).
    let trend = s.script_async(
        "const [id, done] = arguments;
         done(document.querySelector(`[data-testid=ward-row][data-patient-id=\"${id}\"] [data-testid=ward-trend]`).textContent);",
        serde_json::json!([d]),
    )?;
    assert!(
        trend.as_str().is_some_and(|t| t.contains('2')),
        "the previous score is shown: {trend}"
    );

    // Keyboard: ↓ moves down, End to the last row, ↑ back one, Enter opens that patient.
    let first = s.find("[data-testid=ward-open][data-index=\"0\"]")?;
    s.type_text(&first, "\u{E015}")?;
    let focused = s.find("[data-testid=ward-open][data-index=\"1\"]:focus")?;
    s.type_text(&focused, "\u{E010}")?;
    let focused = s.find("[data-testid=ward-open][data-index=\"3\"]:focus")?;
    s.type_text(&focused, "\u{E013}")?;
    let focused = s.find("[data-testid=ward-open][data-index=\"2\"]:focus")?;
    assert_eq!(
        s.attr(&focused, "data-patient-id")?.as_deref(),
        Some(a.as_str())
    );
    assert_eq!(
        s.attr(&focused, "tabindex")?.as_deref(),
        Some("0"),
        "one Tab stop, on the row in focus"
    );
    s.type_text(&focused, "\u{E007}")?;
    opened(&s, &a)?;

    // A click anywhere on a row opens its patient too.
    s.click(&s.find("[data-testid=nav-ward]")?)?;
    s.click(&s.find(&format!(
        "[data-testid=ward-row][data-patient-id=\"{c}\"] [data-testid=ward-reassessment]"
    ))?)?;
    opened(&s, &c)?;

    // In English as well.
    s.click(&s.find("[data-testid=nav-ward]")?)?;
    let heading = s.find("[data-testid=ward-board] h2")?;
    let before = s.text(&heading)?;
    s.click(&s.find("[data-testid=lang-toggle]")?)?;
    wait_until(WAIT, || Ok(s.text(&heading)? != before))?;
    let both = [before, s.text(&heading)?];
    assert!(
        both.contains(&"病区疼痛一览".to_owned()) && both.contains(&"Ward pain board".to_owned()),
        "{both:?}"
    );
    Ok(())
}

/// A report another device recorded reaches this one by a pull, which stores it in
/// `pain_reports` and bumps the sync status's `pulledChanges`; the open board must
/// show it then, with nobody touching this device. The test stores the report itself
/// (as the reports feed's pull does, which `crates/desk/tests/clinic_record.rs` runs
/// end to end) and lets a pulled appointment change raise the signal, so what it
/// holds is the board's reaction to the signal.
#[test]
fn the_open_board_shows_a_report_stored_by_a_pull_without_a_click() -> Result<()> {
    let clinic = demo_clinic();
    let patient = clinic.patients[5].id.as_str().to_owned();
    let target = clinic
        .appointments
        .iter()
        .find(|a| {
            clinic.zone.date_of(a.starts_at) == clinic.zone.today()
                && a.status == clinic_domain::AppointmentStatus::Booked
        })
        .expect("a booked visit today");
    let central_dir = tempfile::tempdir()?;
    let server =
        clinic_central::spawn_for_tests(&central_dir.path().join("central.sqlite3"), false)?;
    server.load_demo("C001", DEMO_SEED)?;
    let token = server.issue_token("C001")?;
    let url = server.base_url();

    let driver = Driver::start()?;
    let dir = tempfile::tempdir()?;
    let s = launch_synced(&driver, dir.path(), &url, &token)?;
    // The staff came with the first pull; the board is pain data, so a nurse signs in.
    sign_in(&s, "N001", DEMO_PIN)?;
    s.click(&s.find("[data-testid=nav-ward]")?)?;
    s.find("[data-testid=ward-none]")?;

    // Another device's 9, stored here as the pull stores it: a row of its own, no outbox entry.
    // The app's store is encrypted with the key in the driver's config directory.
    let (db, _) = clinic_install::store_key::open_store(
        Some(driver.config_dir()),
        &dir.path().join(clinic_desk::DATABASE_FILE),
    )?;
    let assessed = (chrono::Utc::now() - chrono::Duration::minutes(5)).timestamp();
    db.write(|c| {
        c.execute(
            "INSERT INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at,
                                       recorded_by, device_id)
             VALUES ('0190a0a0-0000-7000-8000-00000000c0de', ?1, 'nrs', 9, ?2, ?2, 'N002', 'cart-2')",
            (patient.as_str(), assessed),
        )
    })?;
    drop(db);

    // The pull that brings a change (here a cancellation) is what makes the board reload.
    let resp = reqwest::blocking::Client::new()
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
    s.click(&s.find("[data-testid=sync-now]")?)?;
    let received = s.find(&format!(
        "[data-testid=ward-row][data-patient-id=\"{patient}\"]"
    ))?;
    assert_eq!(s.attr(&received, "data-score")?.as_deref(), Some("9"));
    assert_eq!(s.attr(&received, "data-band")?.as_deref(), Some("severe"));
    assert_eq!(
        s.attr(&received, "data-recorded-here")?.as_deref(),
        Some("false")
    );
    Ok(())
}

/// A ward longer than the window: the board draws the rows in view (and a few more),
/// tells assistive technology the whole count, and the keys reach every row in Rust's order.
#[test]
fn a_long_ward_is_drawn_as_scrolled_and_the_keys_reach_every_row() -> Result<()> {
    const PATIENTS: u64 = 120;
    let dir = tempfile::tempdir()?;
    let order: Vec<String> = {
        let desk = clinic_desk_core::Desk::open(&dir.path().join(clinic_desk::DATABASE_FILE))?;
        desk.load_demo(DEMO_SEED, None)?;
        let now = chrono::Utc::now().timestamp();
        desk.database().write(|c| {
            for i in 1..=PATIENTS {
                let patient = demo::patient_id(i);
                c.execute(
                    "INSERT INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at,
                                               recorded_by, device_id)
                     VALUES (?1, ?2, 'nrs', ?3, ?4, ?4, 'N002', 'cart-2')",
                    (
                        format!("long-{i}"),
                        patient.as_str(),
                        (i % 11) as i64,
                        now - (i as i64) * 300,
                    ),
                )?;
            }
            Ok::<_, clinic_store::StoreError>(())
        })?;
        let board = desk.ward_board(chrono::Utc::now())?;
        board.patients.into_iter().map(|p| p.patient_id).collect()
    };
    assert_eq!(order.len() as u64, PATIENTS);

    let driver = Driver::start()?;
    let s = driver.launch(&["--data-dir", dir.path().to_str().unwrap()])?;
    sign_in(&s, "N001", DEMO_PIN)?;
    s.click(&s.find("[data-testid=nav-ward]")?)?;
    let table = s.find("[data-testid=ward-table]")?;
    assert_eq!(
        s.attr(&table, "aria-rowcount")?.as_deref(),
        Some(&*(PATIENTS + 1).to_string())
    );
    let drawn = s.find_all("[data-testid=ward-row]")?.len();
    assert!(
        drawn > 0 && (drawn as u64) < PATIENTS,
        "only the rows in view are drawn: {drawn}"
    );

    let key = |index: usize, key: &str| -> Result<support::Element> {
        let focused = s.find(&format!(
            "[data-testid=ward-open][data-index=\"{index}\"]:focus"
        ))?;
        s.type_text(&focused, key)?;
        Ok(focused)
    };
    s.type_text(
        &s.find("[data-testid=ward-open][data-index=\"0\"]")?,
        "\u{E015}",
    )?;
    key(1, "\u{E010}")?; // End
    let last = PATIENTS as usize - 1;
    let focused = key(last, "\u{E00E}")?; // PageUp from the last row
    assert_eq!(
        s.attr(&focused, "data-patient-id")?.as_deref(),
        Some(order[last].as_str()),
        "the last row is Rust's last"
    );
    let up = s.find("[data-testid=ward-open]:focus")?;
    let index: usize = s.attr(&up, "data-index")?.unwrap_or_default().parse()?;
    assert!(index < last, "PageUp moved up a page, to {index}");
    s.type_text(&up, "\u{E011}")?; // Home
    let home = s.find("[data-testid=ward-open][data-index=\"0\"]:focus")?;
    assert_eq!(
        s.attr(&home, "data-patient-id")?.as_deref(),
        Some(order[0].as_str())
    );
    Ok(())
}
