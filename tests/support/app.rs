//! Steps in the app that several system tests take the same way a person would.

use std::time::Duration;

use anyhow::{Result, bail};
use clinic_desk_core::DEMO_SEED;
use clinic_domain::{ClinicZone, demo};
use serde_json::json;

use super::{Driver, Session, wait_until};

const WAIT: Duration = Duration::from_secs(15);

/// The demo clinic the app's `--demo` fills its store with, today.
pub fn demo_clinic() -> demo::DemoClinic {
    let zone = ClinicZone::default();
    demo::clinic("DEMO", DEMO_SEED, zone, zone.today())
}

/// Fills the store at `database` with the demo clinic (today) and demo patients up to
/// `count` in all, as the benches' directory of a large clinic. The store is encrypted
/// with the key the app started by `driver` finds in its config directory, so the app
/// opens it as its own (a plaintext store would be converted at its first start, and a
/// bench would time that).
pub fn patient_directory(driver: &Driver, database: &std::path::Path, count: u64) -> Result<()> {
    let desk = app_store(driver, database)?;
    let today = ClinicZone::default().today();
    desk.load_demo(DEMO_SEED, Some(today))?;
    desk.database().write(|c| {
        let tx = c.transaction()?;
        for n in (demo::DEMO_PATIENTS + 1)..=count {
            clinic_store::patients::upsert(&tx, &demo::patient(DEMO_SEED, n, today))?;
        }
        tx.commit()?;
        Ok::<_, clinic_store::StoreError>(())
    })?;
    Ok(())
}

/// The store at `database` as the app started by `driver` opens it: encrypted with the
/// key in that app's config directory.
pub fn app_store(driver: &Driver, database: &std::path::Path) -> Result<clinic_desk_core::Desk> {
    Ok(clinic_desk_core::Desk::open_encrypted(
        Some(driver.config_dir()),
        database,
    )?)
}

/// Signs a member in through the header's dialog and waits for the active session.
pub fn sign_in(s: &Session<'_>, staff_id: &str, pin: &str) -> Result<()> {
    s.click(&s.find("[data-testid=session-signin]")?)?;
    s.find(&format!(
        "[data-testid=signin-staff] option[value=\"{staff_id}\"]"
    ))?;
    s.select_value("[data-testid=signin-staff]", staff_id)?;
    s.type_text(&s.find("[data-testid=signin-pin]")?, pin)?;
    s.click(&s.find("[data-testid=signin-submit]")?)?;
    let name = s.find("[data-testid=session-name]")?;
    wait_until(WAIT, || {
        Ok(s.attr(&name, "data-state")?.as_deref() == Some("active"))
    })
}

/// How many elements match `css` now.
pub fn count(s: &Session<'_>, css: &str) -> Result<usize> {
    Ok(s.find_all(css)?.len())
}

/// Launches the app on its own data directory against a real server (`url`, with
/// the device's `token`) and waits until its sync bar says it is online.
pub fn launch_synced<'d>(
    driver: &'d Driver,
    dir: &std::path::Path,
    url: &str,
    token: &str,
) -> Result<Session<'d>> {
    let s = driver.launch(&[
        "--data-dir",
        dir.to_str().unwrap(),
        "--server",
        url,
        "--token",
        token,
    ])?;
    let bar = s.find("[data-testid=sync-status]")?;
    wait_until(Duration::from_secs(30), || {
        Ok(s.attr(&bar, "data-state")?.as_deref() == Some("online"))
    })?;
    Ok(s)
}

/// Opens a patient as a wristband scan does (the ID, then Enter) on the Patients tab.
pub fn open_patient(s: &Session<'_>, id: &str) -> Result<()> {
    s.click(&s.find("[data-testid=nav-patients]")?)?;
    let search = s.find("[data-testid=patient-search]")?;
    s.clear(&search)?;
    s.type_text(&search, &format!("{id}\u{E007}"))?;
    let detail = s.find("[data-testid=patient-detail]")?;
    wait_until(WAIT, || {
        Ok(s.attr(&detail, "data-patient-id")?.as_deref() == Some(id))
    })
}

/// Fills the open patient's form with an NRS `score`, `minutes_ago` earlier (0:
/// now), with an intervention when given; the save is left to the caller.
pub fn fill_assessment(
    s: &Session<'_>,
    zone: ClinicZone,
    score: u8,
    minutes_ago: i64,
    intervention: Option<&str>,
) -> Result<()> {
    s.click(&s.find(&format!(
        "[data-testid=pain-form] [data-testid=score-{score}]"
    ))?)?;
    if minutes_ago > 0 {
        s.click(&s.find("[data-testid=pain-form] [data-testid=when-earlier]")?)?;
        let at = (chrono::Utc::now() - chrono::Duration::minutes(minutes_ago))
            .with_timezone(&zone.tz())
            .format("%Y-%m-%dT%H:%M")
            .to_string();
        let css = "[data-testid=pain-form] [data-testid=assessed-at]";
        s.find(css)?;
        s.script_async(
            "const [css, value, done] = arguments; const el = document.querySelector(css);
             el.value = value; el.dispatchEvent(new Event('input', { bubbles: true })); done(el.value);",
            json!([css, at]),
        )?;
    }
    if let Some(text) = intervention {
        s.click(&s.find("[data-testid=pain-form] [data-testid=details-toggle]")?)?;
        s.type_text(
            &s.find("[data-testid=pain-form] [data-testid=intervention]")?,
            text,
        )?;
    }
    Ok(())
}

/// Records an NRS `score` for the open patient (see [`fill_assessment`]) and waits
/// until the record is listed.
pub fn record(
    s: &Session<'_>,
    zone: ClinicZone,
    score: u8,
    minutes_ago: i64,
    intervention: Option<&str>,
) -> Result<()> {
    let before = count(s, "[data-testid=report]")?;
    fill_assessment(s, zone, score, minutes_ago, intervention)?;
    s.click(&s.find("[data-testid=report-record]")?)?;
    wait_until(WAIT, || Ok(count(s, "[data-testid=report]")? == before + 1))
}

/// Clicks the filled form's Record button from inside the page and returns the
/// page's clock (`Date.now()`, ms since the epoch) just before the click: the start
/// of a save-to-paint time another window on this machine may end.
pub fn save_at(s: &Session<'_>) -> Result<f64> {
    s.find("[data-testid=report-record]")?;
    let v = s.script_async(
        "const done = arguments[arguments.length - 1];
         const button = document.querySelector('[data-testid=report-record]');
         const t0 = Date.now(); button.click(); done(t0);",
        json!([]),
    )?;
    v.as_f64()
        .ok_or_else(|| anyhow::anyhow!("no click time: {v}"))
}

/// What a [`Watch`] waits for: every CSS selector matches exactly its count of elements.
pub type Sight<'a> = &'a [(&'a str, usize)];

/// A watcher armed in a page: it notes the page's clock (`Date.now()`) at the frame
/// after the page first shows a [`Sight`] (checked on every DOM change, as it is
/// painted, no polling), so a time measured across two app windows on one machine
/// has one clock at each end.
pub struct Watch<'s, 'd> {
    s: &'s Session<'d>,
    name: String,
}

const ARM: &str = r#"const [name, sight, done] = arguments;
    const seen = () => sight.every(([css, n]) => document.querySelectorAll(css).length === n);
    window.__watches = window.__watches ?? {};
    window.__watches[name] = new Promise((resolve) => {
      if (seen()) { resolve({ already: true }); return; }
      const obs = new MutationObserver(() => {
        if (!seen()) return;
        obs.disconnect();
        requestAnimationFrame(() => resolve({ at: Date.now() }));
      });
      obs.observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    });
    done(true);"#;

const AWAIT: &str = r#"const [name, ms, done] = arguments;
    Promise.race([window.__watches[name], new Promise((r) => setTimeout(() => r({ timeout: true }), ms))])
      .then(done);"#;

impl<'s, 'd> Watch<'s, 'd> {
    /// Arms a watcher for `sight`; it must not be showing yet.
    pub fn arm(s: &'s Session<'d>, name: &str, sight: Sight<'_>) -> Result<Self> {
        s.script_async(ARM, json!([name, sight]))?;
        Ok(Watch {
            s,
            name: name.to_owned(),
        })
    }

    /// The page's clock when the sight was painted; an error if it was already
    /// showing when armed, or is not within `limit` of now.
    pub fn painted_at(&self, limit: Duration) -> Result<f64> {
        let v = self
            .s
            .script_async(AWAIT, json!([self.name, limit.as_millis() as u64]))?;
        if let Some(at) = v["at"].as_f64() {
            return Ok(at);
        }
        bail!("watch {}: {v}", self.name)
    }
}

/// Stores `count` NRS assessments of `patient` as the reports feed stores another
/// device's (no outbox entry): the last an hour ago, one every two hours before it,
/// every third with a body site, every 40th a correction of the one before.
pub fn assessed_history(desk: &clinic_desk_core::Desk, patient: &str, count: i64) -> Result<()> {
    let last = chrono::Utc::now().timestamp() - 3600;
    let mut rng = demo::DemoRng::new(11);
    desk.database().write(|c| {
        let tx = c.transaction()?;
        for k in 0..count {
            let at = last - (count - 1 - k) * 2 * 3600;
            let corrects = (k % 40 == 39).then(|| format!("{patient}-{:04}", k - 1));
            tx.execute(
                "INSERT INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at,
                     recorded_by, device_id, body_site, supersedes, correction_reason)
                 VALUES (?1, ?2, 'nrs', ?3, ?4, ?4, 'N001', 'cart-2', ?5, ?6, ?7)",
                (
                    format!("{patient}-{k:04}"),
                    patient,
                    rng.below(11) as i64,
                    at,
                    (k % 3 == 0).then_some("右膝"),
                    corrects.as_deref(),
                    corrects.as_ref().map(|_| "重新评估"),
                ),
            )?;
        }
        tx.commit()?;
        Ok::<_, clinic_store::StoreError>(())
    })?;
    Ok(())
}
