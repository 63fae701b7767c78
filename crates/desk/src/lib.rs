//! The app's core, without Tauri: `DeskApp` starts it (store, profile, sync) and
//! each command of the list in `ipc` is one method call on it. Inputs arrive as the
//! UI sent them (strings), are validated by the domain, and answers leave as DTOs
//! shaped for the UI, never as store rows.

mod bedside;
pub mod bindings;
mod diagnostics;
mod dto;
mod error;
pub mod fhir;
pub mod ipc;
pub mod session;
mod start;
mod ward;

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::NaiveDate;
use clinic_domain::{ClinicZone, DoctorId, PatientId, demo, patient::parse_date};
use clinic_store::{Database, SCHEMA_VERSION, outbox, patients, schedule, settings};
use clinic_sync::SyncHandle;

pub use clinic_domain::roles::Access;
pub use diagnostics::*;
pub use dto::*;
pub use error::{ApiError, ErrorCode};
pub use start::{DeskApp, StartOptions, sync_config};
pub use ward::{WardBoardDto, WardPatientDto};

/// Most results a search returns; past that the UI asks the user to refine.
pub const SEARCH_LIMIT: usize = 50;
/// The demo clinic `--demo` loads; tests generate the same one to know what to expect.
pub const DEMO_SEED: u64 = 1;
/// Minutes without a successful sync after which the schedule says it may be out of date.
pub const DEFAULT_STALE_AFTER_MINUTES: u32 = 15;
/// Most reports listed for one patient.
pub const PATIENT_REPORTS_LIMIT: usize = 200;
/// The demo clinic's staff all sign in with this PIN (as on the demo central server).
pub use clinic_domain::pin::DEMO_PIN;

#[derive(Clone)]
pub struct Desk {
    db: Arc<Database>,
    /// Where the store's key is kept; `None`: a plain store (tests, tools).
    store_key: Option<clinic_install::store_key::KeySource>,
    sync: Arc<OnceLock<SyncHandle>>,
    sessions: Arc<Mutex<session::Sessions>>,
}

impl Desk {
    /// A plain (unencrypted) store at `path`: tests and tools. The app opens
    /// with [`Desk::open_encrypted`].
    pub fn open(path: &Path) -> Result<Self, ApiError> {
        Ok(Self::with(Database::open(path)?, None))
    }

    /// The app's store: encrypted with the key of `config_dir` (made for a new or a
    /// plaintext store, which is converted), see `clinic_install::store_key`.
    pub fn open_encrypted(config_dir: Option<&Path>, path: &Path) -> Result<Self, ApiError> {
        let (db, source) = clinic_install::store_key::open_store(config_dir, path)
            .map_err(clinic_install::InstallError::from)?;
        tracing::info!(key = %source, "local store encrypted");
        Ok(Self::with(db, Some(source)))
    }

    fn with(db: Database, store_key: Option<clinic_install::store_key::KeySource>) -> Self {
        Self {
            db: Arc::new(db),
            store_key,
            sync: Arc::new(OnceLock::new()),
            sessions: Arc::new(Mutex::new(session::Sessions::default())),
        }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The store, shared with the sync engine.
    pub fn shared_database(&self) -> Arc<Database> {
        self.db.clone()
    }

    /// Connects the running sync engine (once); without one, reports stay queued here.
    pub fn attach_sync(&self, handle: SyncHandle) {
        let _ = self.sync.set(handle);
    }

    pub fn sync_handle(&self) -> Option<&SyncHandle> {
        self.sync.get()
    }

    pub fn sync_status(&self) -> Result<SyncStatusDto, ApiError> {
        match self.sync.get() {
            Some(h) => SyncStatusDto::try_from(&h.status()),
            None => {
                let (counts, set_aside) = self.db.read(|c| {
                    Ok::<_, ApiError>((outbox::counts(c)?, clinic_store::pull::set_aside_count(c)?))
                })?;
                Ok(SyncStatusDto::unconfigured(counts, set_aside))
            }
        }
    }

    /// Asks for a sync now (ignores backoff; retries refused credentials once).
    pub fn sync_now(&self) -> Result<(), ApiError> {
        match self.sync.get() {
            Some(h) => {
                h.sync_now();
                Ok(())
            }
            None => Err(ApiError::new(
                ErrorCode::SyncNotConfigured,
                "no central server is configured for this device",
            )),
        }
    }

    fn zone(&self) -> Result<ClinicZone, ApiError> {
        Ok(self.db.read(settings::clinic_zone)?)
    }

    /// Fills an empty store with the demo clinic for `today` in its zone; `false`
    /// when the store already had data (it is left as it was).
    pub fn load_demo(&self, seed: u64, today: Option<NaiveDate>) -> Result<bool, ApiError> {
        let zone = ClinicZone::default();
        let clinic = demo::clinic("DEMO", seed, zone, today.unwrap_or_else(|| zone.today()));
        // One verifier for everyone, made once (the demo PIN is public): argon2 is
        // slow on purpose.
        self.db.write(|c| {
            let loaded = clinic_store::demo::load_if_empty(c, &clinic)?;
            if loaded {
                clinic_store::staff::set_pin_verifier_where_missing(
                    c,
                    clinic_domain::pin::DEMO_VERIFIER,
                )?;
            }
            Ok(loaded)
        })
    }

    pub fn app_info(&self) -> Result<AppInfo, ApiError> {
        let zone = self.zone()?;
        let (clinic_id, clinic_name, language) = self.db.read(|c| {
            Ok::<_, ApiError>((
                settings::get(c, settings::CLINIC_ID)?,
                settings::get(c, settings::CLINIC_NAME)?,
                settings::get(c, settings::LANGUAGE)?,
            ))
        })?;
        Ok(AppInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            clinic_id,
            clinic_name,
            language,
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
        let mut found = self
            .db
            .read(|c| patients::search(c, query, SEARCH_LIMIT + 1))?;
        let truncated = found.len() > SEARCH_LIMIT;
        found.truncate(SEARCH_LIMIT);
        Ok(PatientSearch {
            patients: found
                .iter()
                .map(|f| PatientSummary::new(&f.patient, f.matched, today))
                .collect(),
            truncated,
        })
    }

    pub fn patient(&self, id: &str) -> Result<PatientDetail, ApiError> {
        let id = PatientId::parse(id)
            .map_err(|e| ApiError::new(ErrorCode::InvalidPatientId, e.to_string()))?;
        let today = self.zone()?.today();
        match self.db.read(|c| patients::get(c, &id))? {
            Some(p) => Ok(PatientDetail::new(&p, today)),
            None => Err(ApiError::new(
                ErrorCode::PatientNotFound,
                format!("no patient with ID {id}"),
            )),
        }
    }

    pub fn doctors(&self) -> Result<Vec<DoctorDto>, ApiError> {
        Ok(self
            .db
            .read(schedule::doctors)?
            .iter()
            .map(DoctorDto::from)
            .collect())
    }

    /// The clinic's setting for when the schedule counts as out of date (15 minutes unless set).
    fn stale_after_minutes(&self) -> Result<u32, ApiError> {
        let raw = self
            .db
            .read(|c| settings::get(c, settings::SCHEDULE_STALE_AFTER_MINUTES))?;
        Ok(raw
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_STALE_AFTER_MINUTES))
    }

    /// The clinic's day (today when `date` is `None`) in its own zone, for one doctor or all.
    pub fn day_schedule(
        &self,
        date: Option<&str>,
        doctor_id: Option<&str>,
    ) -> Result<DaySchedule, ApiError> {
        let zone = self.zone()?;
        let date = match date {
            Some(raw) => {
                parse_date(raw).map_err(|e| ApiError::new(ErrorCode::InvalidDate, e.to_string()))?
            }
            None => zone.today(),
        };
        let doctor = doctor_id
            .map(|d| {
                DoctorId::parse(d)
                    .map_err(|e| ApiError::new(ErrorCode::InvalidDoctorId, e.to_string()))
            })
            .transpose()?;
        let (from, to) = zone.day_bounds(date);
        let visits = self
            .db
            .read(|c| schedule::visits_between(c, from, to, doctor.as_ref()))?;
        Ok(DaySchedule {
            date: date.to_string(),
            time_zone: zone.name().to_owned(),
            is_today: date == zone.today(),
            stale_after_minutes: self.stale_after_minutes()?,
            doctors: self.doctors()?,
            appointments: visits
                .iter()
                .map(|v| AppointmentDto::new(v, zone, date))
                .collect(),
        })
    }
}

/// This device's ID, made on first use.
pub(crate) fn device_id(c: &clinic_store::Connection) -> Result<String, clinic_store::StoreError> {
    match settings::get(c, settings::DEVICE_ID)? {
        Some(d) => Ok(d),
        None => {
            let d = uuid::Uuid::now_v7().to_string();
            settings::set(c, settings::DEVICE_ID, &d)?;
            Ok(d)
        }
    }
}
