//! The app's core, without Tauri: each Tauri command unpacks its state and calls one
//! method here. Inputs arrive as the UI sent them (strings), are validated by the
//! domain, and answers leave as DTOs shaped for the UI, never as store rows.

mod diagnostics;
mod dto;
mod error;
pub mod bindings;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, NaiveDate, Utc};
use clinic_domain::{ClinicZone, DoctorId, PainScale, PainScore, PatientId, demo, patient::parse_date};
use clinic_store::{Database, SCHEMA_VERSION, outbox, patients, schedule, settings};
use clinic_sync::SyncHandle;

pub use diagnostics::*;
pub use dto::*;
pub use error::{ApiError, ErrorCode};

/// Most results a search returns; past that the UI asks the user to refine.
pub const SEARCH_LIMIT: usize = 50;
/// The demo clinic `--demo` loads; tests generate the same one to know what to expect.
pub const DEMO_SEED: u64 = 1;
/// Minutes without a successful sync after which the schedule says it may be out of date.
pub const DEFAULT_STALE_AFTER_MINUTES: u32 = 15;
/// Most reports listed for one patient.
pub const PATIENT_REPORTS_LIMIT: usize = 200;
/// A device clock a little ahead of the nurse's watch must not refuse a score.
const FUTURE_TOLERANCE_SECS: i64 = 120;
/// Settings key of this device's ID (made on first use, sent with every report).
const DEVICE_ID_KEY: &str = "device_id";

#[derive(Clone)]
pub struct Desk {
    db: Arc<Database>,
    sync: Arc<OnceLock<SyncHandle>>,
}

impl Desk {
    pub fn open(path: &Path) -> Result<Self, ApiError> {
        Ok(Self { db: Arc::new(Database::open(path)?), sync: Arc::new(OnceLock::new()) })
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

    /// Saves a pain score at once (with its outbox entry, in one transaction) and
    /// asks the sync engine to deliver it. `assessed_at` is RFC 3339; `None` is now.
    pub fn record_pain_report(
        &self,
        patient_id: &str,
        scale: &str,
        score: i64,
        assessed_at: Option<&str>,
        recorded_by: &str,
    ) -> Result<PainReportDto, ApiError> {
        let now = Utc::now();
        let (patient, score, assessed_at, recorded_by) =
            validate_report(patient_id, scale, score, assessed_at, recorded_by, now)?;
        let id = self.db.write(|c| {
            if patients::get(c, &patient)?.is_none() {
                return Ok(None);
            }
            let report = outbox::NewReport { patient_id: patient.clone(), score, assessed_at, recorded_by, device_id: device_id(c)? };
            outbox::record_report(c, &report, now).map(Some)
        })?;
        let Some(id) = id else {
            return Err(ApiError::new(ErrorCode::PatientNotFound, format!("no patient with ID {patient}")));
        };
        if let Some(sync) = self.sync.get() {
            sync.report_queued();
        }
        self.report(&id)
    }

    /// Replaces a report the server refused with a corrected one (new ID, same
    /// patient), which names the refused one and `reason`; the refused report is
    /// kept unchanged, marked superseded. Returns the new report.
    pub fn correct_rejected_report(
        &self,
        report_id: &str,
        scale: &str,
        score: i64,
        assessed_at: Option<&str>,
        recorded_by: &str,
        reason: &str,
    ) -> Result<PainReportDto, ApiError> {
        let old = self.report(report_id)?;
        if old.state != ReportStateDto::Rejected {
            return Err(ApiError::new(ErrorCode::ReportNotRejected, "only a report the server refused can be corrected"));
        }
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(ApiError::new(ErrorCode::InvalidCorrectionReason, "a correction needs a reason of 1–200 characters"));
        }
        let now = Utc::now();
        let (patient, score, assessed_at, recorded_by) =
            validate_report(&old.patient_id, scale, score, assessed_at, recorded_by, now)?;
        let id = self.db.write(|c| {
            let report = outbox::NewReport { patient_id: patient, score, assessed_at, recorded_by, device_id: device_id(c)? };
            outbox::correct_rejected(c, report_id, &report, reason, now)
        })?;
        let Some(id) = id else {
            return Err(ApiError::new(ErrorCode::ReportNotRejected, "the report was no longer refused"));
        };
        if let Some(sync) = self.sync.get() {
            sync.report_queued();
        }
        self.report(&id)
    }

    fn report(&self, id: &str) -> Result<PainReportDto, ApiError> {
        match self.db.read(|c| outbox::get(c, id))? {
            Some(e) => Ok(PainReportDto::from(&e)),
            None => Err(ApiError::new(ErrorCode::ReportNotFound, format!("no report with ID {id}"))),
        }
    }

    /// A patient's reports, newest first, each with where it stands.
    pub fn patient_reports(&self, patient_id: &str) -> Result<Vec<PainReportDto>, ApiError> {
        let patient = PatientId::parse(patient_id).map_err(|e| ApiError::new(ErrorCode::InvalidPatientId, e.to_string()))?;
        let entries = self.db.read(|c| outbox::for_patient(c, &patient, PATIENT_REPORTS_LIMIT))?;
        Ok(entries.iter().map(PainReportDto::from).collect())
    }

    /// Queues a rejected report again (same ID, same content) once whatever the
    /// server objected to has been put right, and asks for a sync.
    pub fn retry_rejected_report(&self, report_id: &str) -> Result<PainReportDto, ApiError> {
        let current = self.report(report_id)?;
        if current.state != ReportStateDto::Rejected {
            return Err(ApiError::new(ErrorCode::ReportNotRejected, "only a report the server refused can be retried"));
        }
        self.db.write(|c| outbox::requeue_rejected(c, report_id))?;
        if let Some(sync) = self.sync.get() {
            sync.report_queued();
        }
        self.report(report_id)
    }

    pub fn sync_status(&self) -> Result<SyncStatusDto, ApiError> {
        match self.sync.get() {
            Some(h) => Ok(SyncStatusDto::from(&h.status())),
            None => Ok(SyncStatusDto::unconfigured(self.db.read(outbox::counts)?)),
        }
    }

    /// Asks for a sync now (ignores backoff; retries refused credentials once).
    pub fn sync_now(&self) -> Result<(), ApiError> {
        match self.sync.get() {
            Some(h) => {
                h.sync_now();
                Ok(())
            }
            None => Err(ApiError::new(ErrorCode::SyncNotConfigured, "no central server is configured for this device")),
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

    /// The clinic's setting for when the schedule counts as out of date (15 minutes unless set).
    fn stale_after_minutes(&self) -> Result<u32, ApiError> {
        let raw = self.db.read(|c| settings::get(c, settings::SCHEDULE_STALE_AFTER_MINUTES))?;
        Ok(raw.and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_STALE_AFTER_MINUTES))
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
            stale_after_minutes: self.stale_after_minutes()?,
            doctors: self.doctors()?,
            appointments: visits.iter().map(|v| AppointmentDto::new(v, zone, date)).collect(),
        })
    }
}

/// What every recorded or corrected report must satisfy before it is saved.
fn validate_report(
    patient_id: &str,
    scale: &str,
    score: i64,
    assessed_at: Option<&str>,
    recorded_by: &str,
    now: DateTime<Utc>,
) -> Result<(PatientId, PainScore, DateTime<Utc>, String), ApiError> {
    let patient = PatientId::parse(patient_id).map_err(|e| ApiError::new(ErrorCode::InvalidPatientId, e.to_string()))?;
    let scale = PainScale::parse(scale).map_err(|e| ApiError::new(ErrorCode::InvalidScale, e.to_string()))?;
    let score = PainScore::new(scale, score).map_err(|e| ApiError::new(ErrorCode::InvalidScore, e.to_string()))?;
    let recorded_by = recorded_by.trim();
    if recorded_by.is_empty() || recorded_by.chars().count() > 32 {
        return Err(ApiError::new(ErrorCode::InvalidRecorder, "who recorded the score must be 1–32 characters"));
    }
    let assessed_at = match assessed_at {
        None => now,
        Some(raw) => DateTime::parse_from_rfc3339(raw)
            .map_err(|e| ApiError::new(ErrorCode::InvalidAssessmentTime, format!("not an RFC 3339 time: {e}")))?
            .with_timezone(&Utc),
    };
    if assessed_at.timestamp() > now.timestamp() + FUTURE_TOLERANCE_SECS {
        return Err(ApiError::new(ErrorCode::InvalidAssessmentTime, "the assessment time is in the future"));
    }
    Ok((patient, score, assessed_at, recorded_by.to_owned()))
}

/// This device's ID, made on first use.
fn device_id(c: &clinic_store::Connection) -> Result<String, clinic_store::StoreError> {
    match settings::get(c, DEVICE_ID_KEY)? {
        Some(d) => Ok(d),
        None => {
            let d = uuid::Uuid::now_v7().to_string();
            settings::set(c, DEVICE_ID_KEY, &d)?;
            Ok(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn desk() -> (tempfile::TempDir, Desk) {
        let dir = tempfile::tempdir().unwrap();
        let desk = Desk::open(&dir.path().join("d.sqlite3")).unwrap();
        desk.load_demo(DEMO_SEED, None).unwrap();
        (dir, desk)
    }

    #[rstest]
    #[case("P0000001", "nrs", 11, None, "N001", ErrorCode::InvalidScore)]
    #[case("P0000001", "wong_baker_faces", 3, None, "N001", ErrorCode::InvalidScore)]
    #[case("P0000001", "vas", 3, None, "N001", ErrorCode::InvalidScale)]
    #[case("P0000001", "nrs", 3, Some("2999-01-01T00:00:00Z"), "N001", ErrorCode::InvalidAssessmentTime)]
    #[case("P0000001", "nrs", 3, Some("yesterday"), "N001", ErrorCode::InvalidAssessmentTime)]
    #[case("P0000001", "nrs", 3, None, "  ", ErrorCode::InvalidRecorder)]
    #[case("Z9999999", "nrs", 3, None, "N001", ErrorCode::PatientNotFound)]
    #[case("bad id", "nrs", 3, None, "N001", ErrorCode::InvalidPatientId)]
    fn bad_reports_are_refused_with_a_code(
        #[case] patient: &str,
        #[case] scale: &str,
        #[case] score: i64,
        #[case] at: Option<&str>,
        #[case] by: &str,
        #[case] code: ErrorCode,
    ) {
        let (_d, desk) = desk();
        assert_eq!(desk.record_pain_report(patient, scale, score, at, by).unwrap_err().code, code);
        assert_eq!(desk.sync_status().unwrap().waiting, 0, "nothing saved");
    }

    #[test]
    fn a_report_is_saved_queued_and_listed_for_its_patient() {
        let (_d, desk) = desk();
        let r = desk.record_pain_report("P0000001", "nrs", 6, Some("2026-11-28T08:00:00+08:00"), "N001").unwrap();
        assert_eq!((r.state, r.score, r.attempts), (ReportStateDto::Queued, 6, 0));
        let listed = desk.patient_reports("P0000001").unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, r.id);
        let status = desk.sync_status().unwrap();
        assert!(!status.configured);
        assert_eq!(status.waiting, 1);
        assert_eq!(desk.sync_now().unwrap_err().code, ErrorCode::SyncNotConfigured);
        assert_eq!(desk.retry_rejected_report(&r.id).unwrap_err().code, ErrorCode::ReportNotRejected);
        let err = desk.correct_rejected_report(&r.id, "nrs", 5, None, "N001", "typo").unwrap_err();
        assert_eq!(err.code, ErrorCode::ReportNotRejected);
    }

    #[test]
    fn a_refused_report_is_corrected_by_a_new_one_and_kept() {
        let (_d, desk) = desk();
        let r = desk.record_pain_report("P0000001", "nrs", 6, None, "N001").unwrap();
        desk.database()
            .write(|c| {
                outbox::claim_batch(c, i64::MAX, 10)?;
                outbox::mark_rejected(c, &[(r.id.clone(), "conflict".into())])
            })
            .unwrap();
        assert_eq!(desk.sync_status().unwrap().rejected, 1);
        let err = desk.correct_rejected_report(&r.id, "nrs", 5, None, "N001", " ").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidCorrectionReason);
        let fixed = desk.correct_rejected_report(&r.id, "nrs", 5, None, "N001", "entered the wrong score").unwrap();
        assert_eq!((fixed.state, fixed.score, fixed.supersedes.as_deref()), (ReportStateDto::Queued, 5, Some(r.id.as_str())));
        let listed = desk.patient_reports("P0000001").unwrap();
        let old = listed.iter().find(|x| x.id == r.id).unwrap();
        assert_eq!((old.state, old.score), (ReportStateDto::Superseded, 6), "the original stays as it was");
        let status = desk.sync_status().unwrap();
        assert_eq!((status.waiting, status.rejected), (1, 0));
    }
}
