//! The app's core, without Tauri: each Tauri command unpacks its state and calls one
//! method here. Inputs arrive as the UI sent them (strings), are validated by the
//! domain, and answers leave as DTOs shaped for the UI, never as store rows.

mod dto;
mod error;
pub mod bindings;

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use clinic_domain::{ClinicZone, DoctorId, PatientId, demo, patient::parse_date};
use clinic_store::{Database, SCHEMA_VERSION, patients, schedule, settings};

pub use dto::*;
pub use error::{ApiError, ErrorCode};

/// Most results a search returns; past that the UI asks the user to refine.
pub const SEARCH_LIMIT: usize = 50;
/// The demo clinic `--demo` loads; tests generate the same one to know what to expect.
pub const DEMO_SEED: u64 = 1;

#[derive(Clone)]
pub struct Desk {
    db: Arc<Database>,
}

impl Desk {
    pub fn open(path: &Path) -> Result<Self, ApiError> {
        Ok(Self { db: Arc::new(Database::open(path)?) })
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    fn zone(&self) -> Result<ClinicZone, ApiError> {
        Ok(self.db.read(settings::clinic_zone)?)
    }

    /// Fills an empty store with the demo clinic for `today` in its zone; `false`
    /// when the store already had data (it is left as it was).
    pub fn load_demo(&self, seed: u64, today: Option<NaiveDate>) -> Result<bool, ApiError> {
        let zone = ClinicZone::default();
        let clinic = demo::clinic("DEMO", seed, zone, today.unwrap_or_else(|| zone.today()));
        Ok(self.db.write(|c| clinic_store::demo::load_if_empty(c, &clinic))?)
    }

    pub fn app_info(&self) -> Result<AppInfo, ApiError> {
        let zone = self.zone()?;
        let (clinic_id, clinic_name) = self.db.read(|c| {
            Ok((settings::get(c, settings::CLINIC_ID)?, settings::get(c, settings::CLINIC_NAME)?))
        })?;
        Ok(AppInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            clinic_id,
            clinic_name,
            time_zone: zone.name().to_owned(),
            today: zone.today().to_string(),
            database_path: self.db.path().display().to_string(),
            schema_version: *SCHEMA_VERSION,
        })
    }

    /// Patients matching `query` by any handle a nurse has (ID, name, pinyin,
    /// phone tail), best first. A blank query finds nobody rather than everybody.
    pub fn search_patients(&self, query: &str) -> Result<PatientSearch, ApiError> {
        let today = self.zone()?.today();
        let mut found = self.db.read(|c| patients::search(c, query, SEARCH_LIMIT + 1))?;
        let truncated = found.len() > SEARCH_LIMIT;
        found.truncate(SEARCH_LIMIT);
        Ok(PatientSearch {
            patients: found.iter().map(|f| PatientSummary::new(&f.patient, f.matched, today)).collect(),
            truncated,
        })
    }

    pub fn patient(&self, id: &str) -> Result<PatientDetail, ApiError> {
        let id = PatientId::parse(id).map_err(|e| ApiError::new(ErrorCode::InvalidPatientId, e.to_string()))?;
        let today = self.zone()?.today();
        match self.db.read(|c| patients::get(c, &id))? {
            Some(p) => Ok(PatientDetail::new(&p, today)),
            None => Err(ApiError::new(ErrorCode::PatientNotFound, format!("no patient with ID {id}"))),
        }
    }

    pub fn doctors(&self) -> Result<Vec<DoctorDto>, ApiError> {
        Ok(self.db.read(schedule::doctors)?.iter().map(DoctorDto::from).collect())
    }

    /// The clinic's day (today when `date` is `None`) in its own zone, for one doctor or all.
    pub fn day_schedule(&self, date: Option<&str>, doctor_id: Option<&str>) -> Result<DaySchedule, ApiError> {
        let zone = self.zone()?;
        let date = match date {
            Some(raw) => parse_date(raw).map_err(|e| ApiError::new(ErrorCode::InvalidDate, e.to_string()))?,
            None => zone.today(),
        };
        let doctor = doctor_id
            .map(|d| DoctorId::parse(d).map_err(|e| ApiError::new(ErrorCode::InvalidDoctorId, e.to_string())))
            .transpose()?;
        let (from, to) = zone.day_bounds(date);
        let visits = self.db.read(|c| schedule::visits_between(c, from, to, doctor.as_ref()))?;
        Ok(DaySchedule {
            date: date.to_string(),
            time_zone: zone.name().to_owned(),
            is_today: date == zone.today(),
            doctors: self.doctors()?,
            appointments: visits.iter().map(|v| AppointmentDto::new(v, zone, date)).collect(),
        })
    }
}
