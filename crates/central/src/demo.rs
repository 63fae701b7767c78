//! Loads the same deterministic demo clinic the app uses, so a demo server and
//! a demo app agree on every patient, doctor and appointment.

use clinic_domain::ClinicZone;
use clinic_domain::pin::DEMO_VERIFIER;

use crate::store::{CentralStore, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoSummary {
    pub patients: usize,
    pub staff: usize,
    pub appointments: usize,
}

/// Loads (or reloads) `clinic_id` with the demo clinic for `seed`, dated from
/// today in `zone`. Every staff member's PIN is
/// [`DEMO_PIN`](clinic_domain::pin::DEMO_PIN) (the demo-only policy's); they share
/// its one verifier, [`DEMO_VERIFIER`], so loading hashes nothing.
pub fn load_demo(
    store: &dyn CentralStore,
    clinic_id: &str,
    seed: u64,
    zone: ClinicZone,
) -> Result<DemoSummary, StoreError> {
    let clinic = clinic_domain::demo::clinic(clinic_id, seed, zone, zone.today());
    let verifiers = vec![DEMO_VERIFIER.to_owned(); clinic.staff.len()];
    store.load_clinic(&clinic, &verifiers)?;
    Ok(DemoSummary {
        patients: clinic.patients.len(),
        staff: clinic.staff.len(),
        appointments: clinic.appointments.len(),
    })
}
