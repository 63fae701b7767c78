//! End to end through the real app: the release of `clinic-desk` cargo built, in a real
//! WebKitGTK webview under Xvfb, driven by tauri-driver. The demo clinic is generated
//! here with the same seed so the test knows which patients and visits to expect.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Context, Result};
use clinic_desk_core::{DEMO_PIN, DEMO_SEED};
use clinic_domain::demo;
use support::app::{count, demo_clinic, launch_synced, sign_in};
use support::{Driver, wait_until};

fn launch_demo<'d>(driver: &'d Driver, dir: &tempfile::TempDir) -> Result<support::Session<'d>> {
    driver.launch(&["--data-dir", dir.path().to_str().unwrap(), "--demo"])
}

/// Signs the demo nurse N001 in (nobody signed in sees no patient) and opens a
/// patient as a wristband scan does (the ID, then Enter).
fn open_patient_signed_in(s: &support::Session<'_>, patient_id: &str) -> Result<()> {
    sign_in(s, "N001", DEMO_PIN)?;
    s.type_text(
        &s.find("[data-testid=patient-search]")?,
        &format!("{patient_id}\u{E007}"),
    )
}

/// Records an NRS `score` for the open patient.
fn record_score(s: &support::Session<'_>, score: u8) -> Result<()> {
    s.click(&s.find(&format!(
        "[data-testid=pain-form] [data-testid=score-{score}]"
    ))?)?;
    s.click(&s.find("[data-testid=report-record]")?)
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

#[test]
fn a_nurse_signs_in_records_reviews_and_corrects_a_pain_score() -> Result<()> {
    let clinic = demo_clinic();
    let patient = &clinic.patients[11];
    let driver = Driver::start()?;
    let dir = tempfile::tempdir()?;
    let s = launch_demo(&driver, &dir)?;
    let wait = std::time::Duration::from_secs(10);

    s.find("[data-testid=lock-cover]")?;
    assert_eq!(
        count(&s, "[data-testid=patient-search]")?,
        0,
        "no search before someone signs in"
    );

    // A wrong PIN is refused in the dialog; the right one signs the nurse in.
    s.click(&s.find("[data-testid=session-signin]")?)?;
    s.find("[data-testid=signin-staff] option[value=\"N001\"]")?;
    s.select_value("[data-testid=signin-staff]", "N001")?;
    s.type_text(&s.find("[data-testid=signin-pin]")?, "999999")?;
    s.click(&s.find("[data-testid=signin-submit]")?)?;
    let refused = s.find("[data-testid=signin-error] [data-error-code]")?;
    assert_eq!(
        s.attr(&refused, "data-error-code")?.as_deref(),
        Some("wrong_pin")
    );
    s.type_text(&s.find("[data-testid=signin-pin]")?, DEMO_PIN)?;
    s.click(&s.find("[data-testid=signin-submit]")?)?;
    let name = s.find("[data-testid=session-name]")?;
    wait_until(wait, || {
        Ok(s.attr(&name, "data-state")?.as_deref() == Some("active"))
    })?;
    s.type_text(
        &s.find("[data-testid=patient-search]")?,
        &format!("{}\u{E007}", patient.id),
    )?;

    // Record 7 with a body site and an intervention: saved at once, queued (no server), charted, reassessment due.
    s.click(&s.find("[data-testid=pain-form] [data-testid=score-7]")?)?;
    s.click(&s.find("[data-testid=pain-form] [data-testid=details-toggle]")?)?;
    s.type_text(
        &s.find("[data-testid=pain-form] [data-testid=body-site]")?,
        "右膝",
    )?;
    s.type_text(
        &s.find("[data-testid=pain-form] [data-testid=intervention]")?,
        "布洛芬 400mg",
    )?;
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
    set_field(
        &s,
        "[data-testid=pain-form] [data-testid=assessed-at]",
        &future.format("%Y-%m-%dT%H:%M").to_string(),
    )?;
    s.click(&s.find("[data-testid=report-record]")?)?;
    let error = s.find("[data-testid=pain-form-error] [data-error-code]")?;
    assert_eq!(
        s.attr(&error, "data-error-code")?.as_deref(),
        Some("assessment_in_future")
    );
    assert_eq!(count(&s, "[data-testid=report]")?, 1, "nothing saved");

    // Correct the 7 to a 4 with a reason: both records listed, the first marked superseded, the chart shows the 4.
    s.click(&s.find("[data-testid=report] [data-testid=report-correct]")?)?;
    s.click(&s.find("[data-testid=correction-form] [data-testid=score-4]")?)?;
    s.type_text(
        &s.find("[data-testid=correction-reason]")?,
        "患者重新表述为 4 分",
    )?;
    s.click(&s.find("[data-testid=correction-save]")?)?;
    wait_until(wait, || Ok(count(&s, "[data-testid=report]")? == 2))?;
    let old = s.find("[data-testid=report][data-superseded=true]")?;
    assert!(s.text(&old)?.contains('7'));
    let new = s.find("[data-testid=report][data-superseded=false]")?;
    assert!(
        s.text(
            &s.find("[data-testid=report][data-superseded=false] [data-testid=report-corrects]")?
        )?
        .contains("患者重新表述为 4 分")
    );
    assert_eq!(
        s.attr(&new, "data-state")?.as_deref(),
        Some("queued"),
        "the correction is synced too"
    );
    wait_until(wait, || {
        let points = s.find_all("[data-testid=chart-point]")?;
        Ok(points.len() == 1 && s.attr(&points[0], "data-score")?.as_deref() == Some("4"))
    })?;
    // The superseded record's trail says so.
    s.click(
        &s.find("[data-testid=report][data-superseded=true] [data-testid=report-history-toggle]")?,
    )?;
    s.find("[data-testid=report][data-superseded=true] [data-testid=report-history] [data-action=superseded]")?;

    // The correction kept the intervention, so its reassessment is owed on this device's list.
    s.click(&s.find("[data-testid=nav-reassess]")?)?;
    let item = s.find("[data-testid=reassess-item]")?;
    assert_eq!(
        s.attr(&item, "data-patient-id")?.as_deref(),
        Some(patient.id.as_str())
    );

    // A FHIR export of the patient: both records, keyed by their IDs.
    s.click(&s.find("[data-testid=nav-patients]")?)?;
    s.click(&s.find("[data-testid=export-fhir]")?)?;
    let result = s.text(&s.find("[data-testid=export-result]")?)?;
    let path = result
        .split_whitespace()
        .find(|w| w.contains("fhir-"))
        .unwrap_or_default()
        .to_owned();
    let bundle: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    assert_eq!(bundle["entry"].as_array().map(Vec::len), Some(2), "{path}");
    assert!(bundle.to_string().contains("72514-3"));
    Ok(())
}

/// Where each element the layout check names lies on screen, and whether a tap at its
/// centre lands on it. Targets are scrolled into view vertically first (a nurse may
/// scroll down); sideways scrolling is never allowed, so that is measured separately.
const LAYOUT_PROBE: &str = r#"
    const [targetCss, boxCss, done] = arguments;
    const box = document.querySelector(boxCss).getBoundingClientRect();
    const targets = [...document.querySelectorAll(targetCss)].map((el) => {
      el.scrollIntoView({ block: 'center', inline: 'nearest' });
      const r = el.getBoundingClientRect();
      const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
      return { id: el.dataset.testid, left: r.left, right: r.right, width: r.width, height: r.height,
               tappable: hit !== null && (hit === el || el.contains(hit)) };
    });
    const header = [...document.querySelectorAll('header button')]
      .filter((b) => b.offsetParent !== null)
      .map((b) => { const r = b.getBoundingClientRect(); return { id: b.dataset.testid ?? b.textContent, top: r.top, bottom: r.bottom }; });
    done({ viewport: window.innerWidth, scrollWidth: document.scrollingElement.scrollWidth, scrollX: window.scrollX,
           box: { left: box.left, right: box.right }, targets, header });
"#;

/// The screens clinic PCs have. At 1280 px the 10 of the NRS row used to be cut off at
/// the form's right edge.
const CLINIC_SCREENS: [(u32, u32); 2] = [(1280, 800), (1366, 768)];

#[test]
fn the_bedside_form_fits_the_screens_clinics_have() -> Result<()> {
    let patient = &demo_clinic().patients[3];
    let driver = Driver::start()?;
    let dir = tempfile::tempdir()?;
    let s = launch_demo(&driver, &dir)?;
    open_patient_signed_in(&s, patient.id.as_str())?;
    s.find("[data-testid=pain-form] [data-testid=score-10]")?;

    for lang in ["zh-CN", "en"] {
        let toggle = s.find("[data-testid=lang-toggle]")?;
        if s.attr(&toggle, "data-lang")?.as_deref() != Some(lang) {
            s.click(&toggle)?;
            wait_until(std::time::Duration::from_secs(5), || {
                Ok(s.attr(&toggle, "data-lang")?.as_deref() == Some(lang))
            })?;
        }
        for (width, height) in CLINIC_SCREENS {
            s.set_window_size(width, height)?;
            // The window may be a few pixels wider than its viewport (a border), never narrower.
            wait_until(std::time::Duration::from_secs(5), || {
                let v = s.script_async("arguments[0](window.innerWidth)", serde_json::json!([]))?;
                Ok(v.as_u64()
                    .is_some_and(|w| w <= u64::from(width) && w + 16 >= u64::from(width)))
            })?;
            for (scale, count) in [("nrs", 11), ("wong_baker_faces", 6)] {
                s.click(&s.find(&format!(
                    "[data-testid=pain-form] [data-testid=scale-{scale}]"
                ))?)?;
                let at = format!("{lang} {width}×{height} {scale}");
                let probe = s.script_async(
                    LAYOUT_PROBE,
                    serde_json::json!([
                        "[data-testid=pain-form] button[data-testid^=score-]",
                        "[data-testid=pain-form]"
                    ]),
                )?;
                let viewport = probe["viewport"].as_f64().unwrap_or_default();
                assert!(
                    probe["scrollWidth"].as_f64().unwrap_or(f64::MAX) <= viewport
                        && probe["scrollX"].as_f64() == Some(0.0),
                    "{at}: the page scrolls sideways: {probe}"
                );
                let targets = probe["targets"].as_array().context("targets")?;
                assert_eq!(targets.len(), count, "{at}: {probe}");
                let (form_left, form_right) = (
                    probe["box"]["left"].as_f64().unwrap_or_default(),
                    probe["box"]["right"].as_f64().unwrap_or_default(),
                );
                for t in targets {
                    let (left, right) = (
                        t["left"].as_f64().unwrap_or(-1.0),
                        t["right"].as_f64().unwrap_or(f64::MAX),
                    );
                    assert!(
                        left >= form_left && right <= form_right && right <= viewport,
                        "{at}: {} is cut off: {t} in {probe}",
                        t["id"]
                    );
                    // WCAG 2.2's minimum target is 24 CSS px; ours stay well above it.
                    assert!(
                        t["width"].as_f64().unwrap_or_default() >= 32.0
                            && t["height"].as_f64().unwrap_or_default() >= 44.0,
                        "{at}: {} is too small: {t}",
                        t["id"]
                    );
                    assert_eq!(
                        t["tappable"].as_bool(),
                        Some(true),
                        "{at}: a tap on {} lands elsewhere: {t}",
                        t["id"]
                    );
                }
                // One line of header buttons: they all share one row.
                let header = probe["header"].as_array().context("header")?;
                let top = header
                    .iter()
                    .filter_map(|b| b["top"].as_f64())
                    .fold(f64::MAX, f64::min);
                let bottom = header
                    .iter()
                    .filter_map(|b| b["bottom"].as_f64())
                    .fold(f64::MIN, f64::max);
                let tallest = header
                    .iter()
                    .filter_map(|b| Some(b["bottom"].as_f64()? - b["top"].as_f64()?))
                    .fold(0.0, f64::max);
                assert!(
                    bottom - top <= tallest + 1.0,
                    "{at}: the header wraps its buttons: {header:?}"
                );
                let shortest = header
                    .iter()
                    .filter_map(|b| Some(b["bottom"].as_f64()? - b["top"].as_f64()?))
                    .fold(f64::MAX, f64::min);
                assert!(
                    tallest - shortest <= 1.0,
                    "{at}: a header button breaks its label over two lines: {header:?}"
                );
            }
        }
    }
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
    let patient = clinic
        .patients
        .iter()
        .rev()
        .find(|p| names[p.name.as_str()] == 1 && p.name.chars().count() == 3)
        .unwrap();

    let driver = Driver::start()?;
    let dir = tempfile::tempdir()?;
    let s = launch_demo(&driver, &dir)?;
    // The front desk finds patients too.
    sign_in(&s, "C001", DEMO_PIN)?;

    let search = s.find("[data-testid=patient-search]")?;
    s.type_text(&search, &patient.name)?;
    let selector = format!(
        "[data-testid=patient-result][data-patient-id=\"{}\"]",
        patient.id
    );
    let row = s.find(&selector)?;
    assert!(s.text(&row)?.contains(&patient.name));
    s.click(&row)?;
    let name = s.find("[data-testid=patient-name]")?;
    wait_until(std::time::Duration::from_secs(10), || {
        Ok(s.text(&name)? == patient.name)
    })?;

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
        Ok(s.find_all("[data-testid=patient-result] mark")?
            .iter()
            .any(|m| s.text(m).map(|t| t == two).unwrap_or(false)))
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

/// A doctor's column on the schedule board, as the screen shows it: the count in its
/// header, whether it is in view, and the rows it has drawn (the board draws the rows
/// in view, not all of them).
#[derive(Debug, serde::Deserialize)]
struct BoardColumn {
    doctor: String,
    count: usize,
    in_view: bool,
    rows: Vec<BoardRow>,
}

#[derive(Debug, serde::Deserialize)]
struct BoardRow {
    id: String,
    doctor: String,
    status: String,
}

fn board(s: &support::Session<'_>) -> Result<Vec<BoardColumn>> {
    let v = s.script_async(
        r#"const done = arguments[arguments.length - 1];
        const board = document.querySelector('[data-testid=schedule-board]')?.getBoundingClientRect();
        done([...document.querySelectorAll('[data-testid=doctor-column]')].map((c) => ({
          doctor: c.dataset.doctorId,
          count: Number(c.dataset.count),
          in_view: c.getBoundingClientRect().left < board.right && c.getBoundingClientRect().right > board.left,
          rows: [...c.querySelectorAll('[data-testid=appointment-row]')].map((r) => ({
            id: r.dataset.appointmentId, doctor: r.dataset.doctorId, status: r.dataset.status,
          })),
        })));"#,
        serde_json::json!([]),
    )?;
    Ok(serde_json::from_value(v)?)
}

/// The visits of `appointments` on `day` that pass `keep`, by doctor: what the board's columns must hold.
fn by_doctor(
    clinic: &demo::DemoClinic,
    day: chrono::NaiveDate,
    keep: impl Fn(&clinic_domain::Appointment) -> bool,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for a in clinic
        .appointments
        .iter()
        .filter(|a| clinic.zone.date_of(a.starts_at) == day && keep(a))
    {
        m.entry(a.doctor_id.as_str().to_owned())
            .or_default()
            .insert(a.id.clone());
    }
    m
}

/// Waits until the board has one column per doctor of `expected`, each counting that
/// doctor's visits and drawing that doctor's visits only (at least one of them when the
/// column is in view).
fn wait_for_columns(
    s: &support::Session<'_>,
    expected: &BTreeMap<String, BTreeSet<String>>,
) -> Result<Vec<BoardColumn>> {
    let mut seen = Vec::new();
    let matches = |cols: &[BoardColumn]| {
        cols.len() == expected.len()
            && cols.iter().all(|c| {
                expected.get(&c.doctor).is_some_and(|ids| {
                    c.count == ids.len()
                        && (!c.in_view || !c.rows.is_empty())
                        && c.rows
                            .iter()
                            .all(|r| r.doctor == c.doctor && ids.contains(&r.id))
                })
            })
    };
    let waited = wait_until(std::time::Duration::from_secs(10), || {
        seen = board(s)?;
        Ok(matches(&seen))
    });
    let summary: Vec<_> = seen
        .iter()
        .map(|c| (c.doctor.as_str(), c.count, c.rows.len()))
        .collect();
    waited.with_context(|| {
        format!("board (doctor, count, rows drawn) {summary:?}, expected {expected:?}")
    })?;
    assert!(seen.iter().any(|c| c.in_view), "a column is in view");
    Ok(seen)
}

#[test]
fn the_front_desk_sees_todays_appointments_and_filters_by_doctor() -> Result<()> {
    let clinic = demo_clinic();
    let today = clinic.zone.today();
    let todays: Vec<_> = clinic
        .appointments
        .iter()
        .filter(|a| clinic.zone.date_of(a.starts_at) == today)
        .collect();
    let doctor = &clinic.doctors[3];
    let doctors_today = todays.iter().filter(|a| a.doctor_id == doctor.id).count();
    assert!(doctors_today > 0);

    let driver = Driver::start()?;
    let dir = tempfile::tempdir()?;
    let s = launch_demo(&driver, &dir)?;
    sign_in(&s, "C001", DEMO_PIN)?;

    s.click(&s.find("[data-testid=nav-schedule]")?)?;
    let date = s.find("[data-testid=schedule-date]")?;
    wait_until(std::time::Duration::from_secs(10), || {
        Ok(s.attr(&date, "data-date")?.as_deref() == Some(&today.to_string()))
    })?;
    let total = s.find("[data-testid=status-count-total]")?;
    wait_until(std::time::Duration::from_secs(10), || {
        Ok(s.attr(&total, "data-count")?.as_deref() == Some(&todays.len().to_string()))
    })?;

    // All doctors side by side: one column per doctor with visits today, holding that
    // doctor's visits only.
    let all = by_doctor(&clinic, today, |_| true);
    assert!(all.len() > 1);
    let columns = wait_for_columns(&s, &all)?;
    assert_eq!(columns.iter().map(|c| c.count).sum::<usize>(), todays.len());

    // The day's first visit is at the top of its doctor's column.
    let first = todays.iter().min_by_key(|a| a.starts_at).unwrap();
    s.find(&format!("[data-testid=doctor-column][data-doctor-id=\"{}\"] [data-testid=appointment-row][data-appointment-id=\"{}\"]", first.doctor_id.as_str(), first.id))?;

    // Hiding cancelled visits leaves the others; showing them again brings them back.
    let cancelled = todays
        .iter()
        .filter(|a| a.status == clinic_domain::AppointmentStatus::Cancelled)
        .count();
    assert!(cancelled > 0);
    let chip = s.find("[data-testid=status-filter][data-status=cancelled]")?;
    s.click(&chip)?;
    wait_until(std::time::Duration::from_secs(10), || {
        Ok(s.attr(&total, "data-count")?.as_deref()
            == Some(&(todays.len() - cancelled).to_string()))
    })?;
    let shown = wait_for_columns(
        &s,
        &by_doctor(&clinic, today, |a| {
            a.status != clinic_domain::AppointmentStatus::Cancelled
        }),
    )?;
    assert!(
        shown
            .iter()
            .flat_map(|c| &c.rows)
            .all(|r| r.status != "cancelled")
    );
    s.click(&chip)?;
    wait_for_columns(&s, &all)?;

    // Printing: each doctor's whole day on a page of its own, titled with the doctor.
    let printed = s.script_async(
        r#"const done = arguments[arguments.length - 1];
        window.dispatchEvent(new Event('beforeprint'));
        const pages = [...document.querySelectorAll('[data-testid=print-doctor]')].map((p) => [
          p.dataset.doctorId, p.querySelectorAll('tbody tr').length, p.querySelector('h1').textContent]);
        window.dispatchEvent(new Event('afterprint'));
        done(pages);"#,
        serde_json::json!([]),
    )?;
    let printed: Vec<(String, usize, String)> = serde_json::from_value(printed)?;
    assert_eq!(
        printed.iter().map(|p| p.0.clone()).collect::<BTreeSet<_>>(),
        all.keys().cloned().collect()
    );
    for (id, rows, title) in &printed {
        let d = clinic.doctors.iter().find(|d| d.id.as_str() == id).unwrap();
        assert_eq!(*rows, all[id].len(), "printed rows of {id}");
        assert!(title.contains(&d.name), "{title:?} names {}", d.name);
    }
    assert!(
        s.find_all("[data-testid=print-doctor]")?.is_empty(),
        "the print copy is dropped after printing"
    );

    // Keyboard: arrows move down a column and across to the next doctor, Enter opens the patient.
    s.type_text(
        &s.find("[data-testid=appointment-row][data-col=\"0\"][data-index=\"0\"]")?,
        "\u{E015}",
    )?;
    let focused =
        s.find("[data-testid=appointment-row][data-col=\"0\"][data-index=\"1\"]:focus")?;
    s.type_text(&focused, "\u{E014}")?;
    let focused =
        s.find("[data-testid=appointment-row][data-col=\"1\"][data-index=\"1\"]:focus")?;
    assert_eq!(
        s.attr(&focused, "data-doctor-id")?.as_deref(),
        Some(columns[1].doctor.as_str())
    );
    let patient = s.attr(&focused, "data-patient-id")?.unwrap();
    s.type_text(&focused, "\u{E007}")?;
    let detail = s.find("[data-testid=patient-detail]")?;
    wait_until(std::time::Duration::from_secs(10), || {
        Ok(s.attr(&detail, "data-patient-id")?.as_deref() == Some(patient.as_str()))
    })?;
    s.click(&s.find("[data-testid=nav-schedule]")?)?;

    // One department: only its doctors' columns.
    let in_department: BTreeMap<_, _> = all
        .iter()
        .filter(|(id, _)| {
            clinic
                .doctors
                .iter()
                .any(|d| d.id.as_str() == *id && d.department == doctor.department)
        })
        .map(|(id, ids)| (id.clone(), ids.clone()))
        .collect();
    s.select_value("[data-testid=department-filter]", &doctor.department)?;
    wait_for_columns(&s, &in_department)?;

    // One doctor: that doctor's single column.
    s.select_value("[data-testid=doctor-filter]", doctor.id.as_str())?;
    let one = by_doctor(&clinic, today, |a| a.doctor_id == doctor.id);
    let columns = wait_for_columns(&s, &one)?;
    assert_eq!(columns[0].count, doctors_today);

    // Tomorrow for the same doctor.
    s.click(&s.find("[data-testid=day-next]")?)?;
    let tomorrow = today.succ_opt().unwrap();
    wait_until(std::time::Duration::from_secs(10), || {
        Ok(s.attr(&date, "data-date")?.as_deref() == Some(&tomorrow.to_string()))
    })?;
    let expected = by_doctor(&clinic, tomorrow, |a| a.doctor_id == doctor.id);
    if expected.is_empty() {
        s.find("[data-testid=schedule-empty]")?;
    } else {
        wait_for_columns(&s, &expected)?;
    }
    Ok(())
}

#[test]
fn a_score_recorded_at_the_bedside_reaches_the_server_and_the_status_bar_says_so() -> Result<()> {
    let central_dir = tempfile::tempdir()?;
    let server =
        clinic_central::spawn_for_tests(&central_dir.path().join("central.sqlite3"), false)?;
    let token = server.issue_token("C001")?;
    let url = server.base_url();
    let patient = &demo_clinic().patients[7];

    let driver = Driver::start()?;
    let dir = tempfile::tempdir()?;
    let s = driver.launch(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--demo",
        "--server",
        &url,
        "--token",
        &token,
    ])?;

    // The bar is there on every screen and turns online after the first sync.
    let bar = s.find("[data-testid=sync-status]")?;
    wait_until(std::time::Duration::from_secs(20), || {
        Ok(s.attr(&bar, "data-state")?.as_deref() == Some("online"))
    })?;
    assert!(
        !s.text(&s.find("[data-testid=sync-last-success]")?)?
            .is_empty()
    );

    open_patient_signed_in(&s, patient.id.as_str())?;
    record_score(&s, 7)?;
    wait_until(std::time::Duration::from_secs(20), || {
        Ok(server.report_count(Some("C001"))? == 1)
    })?;
    let report = s.find("[data-testid=report]")?;
    wait_until(std::time::Duration::from_secs(10), || {
        Ok(s.attr(&report, "data-state")?.as_deref() == Some("delivered"))
    })?;
    // The bar is pushed the new count without anyone asking.
    let pending = s.find("[data-testid=sync-pending]")?;
    wait_until(std::time::Duration::from_secs(10), || {
        Ok(s.attr(&pending, "data-count")?.as_deref() == Some("0"))
    })?;
    // Sync now works from any screen.
    s.click(&s.find("[data-testid=nav-schedule]")?)?;
    s.click(&s.find("[data-testid=sync-now]")?)?;
    assert_eq!(server.report_count(Some("C001"))?, 1, "never twice");
    Ok(())
}

/// The hospital's original server has only `POST /v1/reports` and the patient route:
/// no feeds, no batch, no auth. clinic-central's compat mode is that contract, so it
/// stands in for it. A score must get there once, and the bar must not cry wolf.
#[test]
fn against_the_hospitals_upload_only_server_a_score_is_delivered_once_and_the_bar_stays_calm()
-> Result<()> {
    let central_dir = tempfile::tempdir()?;
    let server =
        clinic_central::spawn_for_tests(&central_dir.path().join("central.sqlite3"), true)?;
    let url = server.base_url();
    let patient = &demo_clinic().patients[5];

    let driver = Driver::start()?;
    let dir = tempfile::tempdir()?;
    let s = driver.launch(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--demo",
        "--server",
        &url,
    ])?;
    let wait = std::time::Duration::from_secs(20);

    open_patient_signed_in(&s, patient.id.as_str())?;
    record_score(&s, 6)?;
    wait_until(wait, || Ok(server.report_count(None)? == 1))?;
    let report = s.find("[data-testid=report]")?;
    wait_until(wait, || {
        Ok(s.attr(&report, "data-state")?.as_deref() == Some("delivered"))
    })?;

    // Several more runs: still one report, no error line, and the bar says what this server is.
    let bar = s.find("[data-testid=sync-status]")?;
    for _ in 0..3 {
        wait_until(wait, || {
            Ok(s.attr(&s.find("[data-testid=sync-now]")?, "disabled")?
                .is_none())
        })?;
        s.click(&s.find("[data-testid=sync-now]")?)?;
        wait_until(wait, || {
            Ok(s.attr(&bar, "data-state")?.as_deref() == Some("online"))
        })?;
    }
    wait_until(wait, || {
        Ok(s.attr(&s.find("[data-testid=sync-now]")?, "disabled")?
            .is_none())
    })?;
    assert_eq!(server.report_count(None)?, 1, "delivered exactly once");
    assert_eq!(
        count(&s, "[data-testid=sync-error]")?,
        0,
        "no error line: {}",
        s.text(&bar)?
    );
    s.find("[data-testid=sync-upload-only]")?;
    // The last sync shown is the last upload, not "never".
    let last = s.find("[data-testid=sync-last-success]")?;
    assert_eq!(
        s.attr(&last, "data-synced")?.as_deref(),
        Some("true"),
        "{}",
        s.text(&last)?
    );
    Ok(())
}

#[test]
fn a_cancellation_pulled_from_the_server_appears_on_the_open_schedule() -> Result<()> {
    let clinic = demo_clinic();
    let today = clinic.zone.today();
    let todays: Vec<_> = clinic
        .appointments
        .iter()
        .filter(|a| clinic.zone.date_of(a.starts_at) == today)
        .collect();
    let target = todays
        .iter()
        .find(|a| a.status == clinic_domain::AppointmentStatus::Booked)
        .expect("a booked visit today");

    let central_dir = tempfile::tempdir()?;
    let server =
        clinic_central::spawn_for_tests(&central_dir.path().join("central.sqlite3"), false)?;
    server.load_demo("C001", DEMO_SEED)?;
    let token = server.issue_token("C001")?;
    let url = server.base_url();

    // An empty device: everything on screen comes from the server. The front desk
    // signs in once the staff list has come from it (the bar says online).
    let driver = Driver::start()?;
    let dir = tempfile::tempdir()?;
    let s = launch_synced(&driver, dir.path(), &url, &token)?;
    sign_in(&s, "C001", DEMO_PIN)?;
    s.click(&s.find("[data-testid=nav-schedule]")?)?;
    let total = s.find("[data-testid=status-count-total]")?;
    wait_until(std::time::Duration::from_secs(30), || {
        Ok(s.attr(&total, "data-count")?.as_deref() == Some(&todays.len().to_string()))
    })?;
    let freshness = s.find("[data-testid=schedule-freshness]")?;
    wait_until(std::time::Duration::from_secs(10), || {
        Ok(s.attr(&freshness, "data-state")?.as_deref() == Some("fresh"))
    })?;

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

    // The next sync pulls it; the open schedule updates itself and marks the row, and the
    // doctor's column header says a row changed (the row may be scrolled out of view).
    s.click(&s.find("[data-testid=sync-now]")?)?;
    let column = format!(
        "[data-testid=doctor-column][data-doctor-id=\"{}\"]",
        target.doctor_id.as_str()
    );
    let mark = s.find(&format!("{column} [data-testid=doctor-column-changed]"))?;
    assert_eq!(s.attr(&mark, "data-count")?.as_deref(), Some("1"));
    // Scrolled to, the row itself is cancelled and marked.
    const REVEAL: &str = r#"const [id, doctor, done] = arguments;
        const board = document.querySelector('[data-testid=schedule-board]');
        board.scrollLeft = board.querySelector(`[data-testid=doctor-column][data-doctor-id="${doctor}"]`).offsetLeft;
        const find = () => board.querySelector(`[data-testid=appointment-row][data-appointment-id="${id}"]`);
        let top = 0;
        board.scrollTop = 0;
        const step = () => {
          const row = find();
          if (row || top >= board.scrollHeight) return done(row && [row.dataset.doctorId, row.dataset.status, row.dataset.changed]);
          top += Math.max(100, board.clientHeight / 2);
          board.scrollTop = top;
          requestAnimationFrame(() => requestAnimationFrame(step));
        };
        requestAnimationFrame(step);"#;
    let row = s.script_async(
        REVEAL,
        serde_json::json!([target.id, target.doctor_id.as_str()]),
    )?;
    assert_eq!(
        row,
        serde_json::json!([target.doctor_id.as_str(), "cancelled", "true"])
    );
    Ok(())
}

/// A long stay's history: the list draws the latest page of records and a page more
/// each time the nurse asks, until none is left; the chart has every record read.
#[test]
fn a_long_history_lists_the_latest_records_and_more_on_request() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let patient = demo::patient_id(3);
    let total = 60;
    let points = {
        let desk = clinic_desk_core::Desk::open(&dir.path().join(clinic_desk::DATABASE_FILE))?;
        desk.load_demo(DEMO_SEED, None)?;
        support::app::assessed_history(&desk, patient.as_str(), total)?;
        let read = desk.patient_reports(patient.as_str())?;
        assert_eq!(read.len(), total as usize);
        read.iter().filter(|r| r.current).count()
    };
    let driver = Driver::start()?;
    let s = driver.launch(&["--data-dir", dir.path().to_str().unwrap()])?;
    // A patient's records are pain data: a nurse signs in first.
    support::app::sign_in(&s, "N001", DEMO_PIN)?;
    support::app::open_patient(&s, patient.as_str())?;
    let list = s.find("[data-testid=report-list]")?;
    assert_eq!(s.attr(&list, "data-total")?.as_deref(), Some("60"));
    assert_eq!(count(&s, "[data-testid=chart-point]")?, points);
    let first_page = count(&s, "[data-testid=report]")?;
    assert!(
        first_page > 0 && first_page < total as usize,
        "a first page: {first_page}"
    );
    let newest = s.attr(&s.find("[data-testid=report]")?, "data-id")?;
    assert_eq!(newest, Some(format!("{patient}-0059")), "the latest first");
    let mut shown = first_page;
    while shown < total as usize {
        s.click(&s.find("[data-testid=reports-earlier]")?)?;
        let before = shown;
        wait_until(std::time::Duration::from_secs(10), || {
            shown = count(&s, "[data-testid=report]")?;
            Ok(shown > before)
        })?;
        assert!(
            shown == total as usize || shown == before + first_page,
            "a page more: {before} -> {shown}"
        );
    }
    assert_eq!(count(&s, "[data-testid=reports-earlier]")?, 0, "none left");
    Ok(())
}

/// The page as it is now: every element, attribute and text (the dialog's too).
fn page_html(s: &support::Session<'_>) -> Result<String> {
    let html = s.script_async(
        "const done = arguments[arguments.length - 1]; done(document.documentElement.outerHTML);",
        serde_json::json!([]),
    )?;
    Ok(html.as_str().context("outerHTML is text")?.to_owned())
}

/// The demo patients' names found in `html`, once the staff's names are taken out
/// (the sign-in list shows them, and a patient may be called like a member, or
/// like the start of a member's name).
fn patient_names_in(html: &str, clinic: &demo::DemoClinic) -> Vec<String> {
    let mut html = html.to_owned();
    for member in &clinic.staff {
        html = html.replace(&member.name, "");
    }
    clinic
        .patients
        .iter()
        .filter(|p| html.contains(&p.name))
        .map(|p| {
            let mut from = html.find(&p.name).unwrap_or_default().saturating_sub(120);
            while !html.is_char_boundary(from) {
                from -= 1;
            }
            let context: String = html[from..].chars().take(160).collect();
            format!("{} {} in …{context}…", p.id, p.name)
        })
        .collect()
}

/// What a command answers when the page calls it directly, as a script in the
/// window could: `ok`, or the error's code.
fn invoke_code(s: &support::Session<'_>, command: &str, args: serde_json::Value) -> Result<String> {
    let answer = s.script_async(
        "const [command, args, done] = arguments;
         window.__TAURI_INTERNALS__.invoke(command, args)
           .then(() => done('ok'), (e) => done(e && e.code ? e.code : String(e)));",
        serde_json::json!([command, args]),
    )?;
    Ok(answer.as_str().unwrap_or_default().to_owned())
}

#[test]
fn locked_or_signed_out_the_window_shows_no_patient_and_no_command_answers() -> Result<()> {
    let clinic = demo_clinic();
    let patient = &clinic.patients[12];
    let driver = Driver::start()?;
    let dir = tempfile::tempdir()?;
    let s = launch_demo(&driver, &dir)?;
    let wait = std::time::Duration::from_secs(10);

    // Nobody signed in: the cover, no patient anywhere in the DOM, and the
    // commands that return patient data refuse.
    s.find("[data-testid=lock-cover]")?;
    assert_eq!(
        patient_names_in(&page_html(&s)?, &clinic),
        Vec::<String>::new()
    );
    let search = serde_json::json!({"query": patient.id.as_str()});
    assert_eq!(
        invoke_code(&s, "search_patients", search.clone())?,
        "not_signed_in"
    );
    assert_eq!(
        invoke_code(
            &s,
            "day_schedule",
            serde_json::json!({"date": null, "doctorId": null})
        )?,
        "not_signed_in"
    );

    // Signed in, the patient is on screen (so the checks below can fail).
    open_patient_signed_in(&s, patient.id.as_str())?;
    let name = s.find("[data-testid=patient-name]")?;
    wait_until(wait, || Ok(s.text(&name)? == patient.name))?;
    s.find("[data-testid=pain-form]")?;
    assert!(!patient_names_in(&page_html(&s)?, &clinic).is_empty());
    assert_eq!(invoke_code(&s, "search_patients", search.clone())?, "ok");
    // Half an assessment typed when the session locks.
    s.click(&s.find("[data-testid=pain-form] [data-testid=score-6]")?)?;
    s.click(&s.find("[data-testid=pain-form] [data-testid=details-toggle]")?)?;
    s.type_text(
        &s.find("[data-testid=pain-form] [data-testid=note]")?,
        "翻身后疼痛",
    )?;

    // Locked: the window is covered, the patient is gone from the DOM, the
    // commands refuse, and a colleague cannot sign in over the locked session.
    s.click(&s.find("[data-testid=session-lock]")?)?;
    let cover = s.find("[data-testid=lock-cover]")?;
    assert_eq!(s.attr(&cover, "data-state")?.as_deref(), Some("locked"));
    s.find("[data-testid=signin-held]")?;
    wait_until(wait, || Ok(count(&s, "[data-testid=patient-name]")? == 0))?;
    assert_eq!(
        patient_names_in(&page_html(&s)?, &clinic),
        Vec::<String>::new()
    );
    for (command, args) in [
        ("search_patients", search.clone()),
        (
            "get_patient",
            serde_json::json!({"id": patient.id.as_str()}),
        ),
        (
            "patient_reports",
            serde_json::json!({"patientId": patient.id.as_str()}),
        ),
        ("pending_reassessments", serde_json::json!({})),
        ("ward_board", serde_json::json!({})),
    ] {
        assert_eq!(
            invoke_code(&s, command, args)?,
            "session_locked",
            "{command}"
        );
    }
    assert_eq!(
        invoke_code(
            &s,
            "sign_in",
            serde_json::json!({"staffId": "N002", "pin": DEMO_PIN})
        )?,
        "session_held"
    );
    assert_eq!(
        invoke_code(&s, "sign_out", serde_json::json!({}))?,
        "session_held"
    );

    // Her PIN opens it again.
    s.type_text(&s.find("[data-testid=signin-pin]")?, DEMO_PIN)?;
    s.click(&s.find("[data-testid=signin-submit]")?)?;
    let who = s.find("[data-testid=session-name]")?;
    wait_until(wait, || {
        Ok(s.attr(&who, "data-state")?.as_deref() == Some("active"))
    })?;
    assert_eq!(invoke_code(&s, "search_patients", search)?, "ok");
    // ...and she finds the patient and her half-typed assessment as she left them.
    let name = s.find("[data-testid=patient-name]")?;
    wait_until(wait, || Ok(s.text(&name)? == patient.name))?;
    let score = s.find("[data-testid=pain-form] [data-testid=score-6]")?;
    assert_eq!(s.attr(&score, "aria-pressed")?.as_deref(), Some("true"));
    let note = s.script_async(
        "const done = arguments[arguments.length - 1];
         done(document.querySelector('[data-testid=pain-form] [data-testid=note]').value);",
        serde_json::json!([]),
    )?;
    assert_eq!(note, "翻身后疼痛");
    Ok(())
}
