//! Loads the same deterministic demo clinic the app uses, so a demo server and
//! a demo app agree on every patient, doctor and appointment.

use clinic_domain::ClinicZone;
use clinic_domain::pin::{self, DEMO_PIN};

use crate::store::{CentralStore, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoSummary {
    pub patients: usize,
    pub staff: usize,
    pub appointments: usize,
}

/// Loads (or reloads) `clinic_id` with the demo clinic for `seed`, dated from
/// today in `zone`. Every staff member's PIN is [`DEMO_PIN`].
pub fn load_demo(
    store: &dyn CentralStore,
    clinic_id: &str,
    seed: u64,
    zone: ClinicZone,
) -> Result<DemoSummary, StoreError> {
    let clinic = clinic_domain::demo::clinic(clinic_id, seed, zone, zone.today());
    let verifiers = clinic
        .staff
        .iter()
        .map(|_| pin::verifier(DEMO_PIN))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    store.load_clinic(&clinic, &verifiers)?;
    Ok(DemoSummary {
        patients: clinic.patients.len(),
        staff: clinic.staff.len(),
        appointments: clinic.appointments.len(),
    })
}
