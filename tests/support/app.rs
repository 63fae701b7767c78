//! Steps in the app that several system tests take the same way a person would.

use std::time::Duration;

use anyhow::Result;
use clinic_desk_core::DEMO_SEED;
use clinic_domain::{ClinicZone, demo};

use super::{Session, wait_until};

/// The demo clinic the app's `--demo` fills its store with, today.
pub fn demo_clinic() -> demo::DemoClinic {
    let zone = ClinicZone::default();
    demo::clinic("DEMO", DEMO_SEED, zone, zone.today())
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
    wait_until(Duration::from_secs(15), || {
        Ok(s.attr(&name, "data-state")?.as_deref() == Some("active"))
    })
}

/// How many elements match `css` now.
pub fn count(s: &Session<'_>, css: &str) -> Result<usize> {
    Ok(s.find_all(css)?.len())
}
