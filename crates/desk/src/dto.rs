//! What the UI receives. Field names are camelCase on the wire; the TypeScript
//! declarations in `ui/src/lib/bindings.ts` are generated from these and from the
//! domain types used here as they are (scale, band, activity, sex, statuses, the form).

use chrono::{DateTime, NaiveDate, Utc};
use clinic_domain::assessment::reassessment_state;
use clinic_domain::lookup::MatchKind;
use clinic_domain::pain::PainBand;
use clinic_domain::{
    Activity, AppointmentStatus, AssessmentForm, ClinicZone, Doctor, PainScale, PainScore, Patient,
    Reassessment, Sex, patient::age_on,
};
use clinic_store::StoreError;
use clinic_store::outbox::{OutboxState, ReportEntry};
use clinic_store::schedule::ScheduledVisit;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ApiError;

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    pub version: String,
    pub clinic_id: Option<String>,
    pub clinic_name: Option<String>,
    /// The clinic profile's UI language (`zh-CN` or `en`), the default until a user picks one.
    pub language: Option<String>,
    pub time_zone: String,
    /// The clinic's date now, `YYYY-MM-DD`.
    pub today: String,
    pub database_path: String,
    pub schema_version: u32,
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PatientSummary {
    pub id: String,
    pub name: String,
    pub sex: Sex,
    pub age: u32,
    pub is_insured: bool,
    /// Last four digits only: enough to confirm identity over the counter.
    pub phone_tail: Option<String>,
    pub matched: MatchKind,
}

impl PatientSummary {
    pub fn new(p: &Patient, matched: MatchKind, today: NaiveDate) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name.clone(),
            sex: p.sex,
            age: p.age_on(today),
            is_insured: p.is_insured,
            phone_tail: p.phone.as_deref().map(phone_tail),
            matched,
        }
    }
}

fn phone_tail(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len().saturating_sub(4)..].iter().collect()
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PatientSearch {
    pub patients: Vec<PatientSummary>,
    /// More patients matched than were returned: the user should refine the query.
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PatientDetail {
    pub id: String,
    pub name: String,
    pub sex: Sex,
    pub birth_date: String,
    pub age: u32,
    pub is_insured: bool,
    pub phone: Option<String>,
}

impl PatientDetail {
    pub fn new(p: &Patient, today: NaiveDate) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name.clone(),
            sex: p.sex,
            birth_date: p.birth_date.to_string(),
            age: p.age_on(today),
            is_insured: p.is_insured,
            phone: p.phone.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DoctorDto {
    pub id: String,
    pub name: String,
    pub department: String,
}

impl From<&Doctor> for DoctorDto {
    fn from(d: &Doctor) -> Self {
        Self {
            id: d.id.to_string(),
            name: d.name.clone(),
            department: d.department.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AppointmentDto {
    pub id: String,
    pub doctor_id: String,
    pub patient_id: String,
    pub patient_name: String,
    pub patient_age: u32,
    pub patient_insured: bool,
    /// Wall-clock times in the clinic's zone, `HH:MM`, whatever the machine's zone.
    pub start_local: String,
    pub end_local: String,
    pub status: AppointmentStatus,
}

impl AppointmentDto {
    pub fn new(v: &ScheduledVisit, zone: ClinicZone, day: NaiveDate) -> Self {
        let a = &v.appointment;
        let local = |t: chrono::DateTime<chrono::Utc>| {
            t.with_timezone(&zone.tz()).format("%H:%M").to_string()
        };
        Self {
            id: a.id.clone(),
            doctor_id: a.doctor_id.to_string(),
            patient_id: a.patient_id.to_string(),
            patient_name: v.patient_name.clone(),
            patient_age: age_on(v.patient_birth_date, day),
            patient_insured: v.patient_insured,
            start_local: local(a.starts_at),
            end_local: local(a.ends_at),
            status: a.status,
        }
    }
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DaySchedule {
    /// The clinic day shown, `YYYY-MM-DD`.
    pub date: String,
    pub time_zone: String,
    pub is_today: bool,
    /// After how many minutes without a successful sync the schedule says it may be out of date.
    pub stale_after_minutes: u32,
    pub doctors: Vec<DoctorDto>,
    pub appointments: Vec<AppointmentDto>,
}

/// Where a report stands on its way to the central server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ReportStateDto {
    /// Saved here, waiting to be sent.
    Queued,
    /// A request carrying it is in flight (or was, when the app stopped).
    Sending,
    /// The server acknowledged it.
    Delivered,
    /// The server refused it; `lastError` says why. Kept, never deleted.
    Rejected,
    /// A refused report replaced by a correction (which names it). Kept for the record.
    Superseded,
    /// Recorded on another device and received from the server; never sent from here.
    Received,
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PainReportDto {
    pub id: String,
    pub patient_id: String,
    pub scale: PainScale,
    pub score: u8,
    pub band: PainBand,
    /// RFC 3339, UTC.
    pub assessed_at: String,
    pub recorded_at: String,
    /// Staff ID; `recordedByName` when this device knows the member (from the
    /// clinic's pulled staff list). Empty when the server did not say.
    pub recorded_by: String,
    pub recorded_by_name: Option<String>,
    /// The device it was recorded on (empty when the server did not say).
    pub device_id: String,
    /// Recorded on another device and received from the server (else this device's own).
    pub received: bool,
    /// For a received report: when the server first stored it, and when this device pulled it.
    pub received_at: Option<String>,
    pub pulled_at: Option<String>,
    /// The record (the first report of its chain tree) this report belongs to.
    pub record_id: String,
    /// Neither superseded nor settled by a resolution.
    pub live: bool,
    /// The record's shown current value (ARCHITECTURE.md, "Concurrent corrections").
    pub current: bool,
    /// The record has more than one live report: concurrent corrections to settle.
    pub conflicting: bool,
    /// The other corrections this one settled (a resolution).
    pub resolves: Vec<String>,
    pub state: ReportStateDto,
    /// The server's reason for a rejected report; the last delivery error for a queued one.
    pub last_error: Option<String>,
    pub attempts: u32,
    pub delivered_at: Option<String>,
    /// The report this one corrects, and why.
    pub supersedes: Option<String>,
    pub correction_reason: Option<String>,
    /// The correction that replaced this report (or the resolution that settled
    /// it): it stays visible, marked superseded.
    pub superseded_by: Option<String>,
    pub body_site: Option<String>,
    pub activity: Option<Activity>,
    pub note: Option<String>,
    pub intervention: Option<String>,
    /// The assessment this one reassesses.
    pub follows_up: Option<String>,
    pub followed_up_by: Option<String>,
    pub reassess_due_at: Option<String>,
    pub reassessment: Reassessment,
}

/// A stored instant, or the error that says it is not one: never 1970, never blank.
pub(crate) fn instant(secs: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| StoreError::CorruptRow(format!("time {secs} out of range")))
}

/// RFC 3339, UTC, of a stored instant.
pub(crate) fn rfc3339(secs: i64) -> Result<String, StoreError> {
    instant(secs).map(|t| t.to_rfc3339())
}

impl PainReportDto {
    /// Fails on a row no rule would have written (a score off its scale, a time out
    /// of range): shown as an error, never as a guess.
    pub fn new(
        e: &ReportEntry,
        recorded_by_name: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        let score = PainScore::new(e.scale, e.score)
            .map_err(|err| StoreError::CorruptRow(format!("report {}: {err}", e.id)))?;
        let live = e.superseded_by.is_none();
        // Reads fill the standing; a row read without it stands alone.
        let (record_id, current, conflicting) = match &e.standing {
            Some(s) => (s.record.clone(), s.current, s.conflicting),
            None => (e.id.clone(), live, false),
        };
        // A superseded record is not waiting for anything: its correction is. A
        // record owes one reassessment, on its shown current report (as the
        // clinic's list has it), even while concurrent corrections are unsettled.
        let due = e
            .reassess_due_at
            .filter(|_| current)
            .map(instant)
            .transpose()?;
        Ok(Self {
            id: e.id.clone(),
            patient_id: e.patient_id.clone(),
            scale: score.scale(),
            score: score.value(),
            band: score.band(),
            assessed_at: rfc3339(e.assessed_at)?,
            recorded_at: rfc3339(e.recorded_at)?,
            recorded_by: e.recorded_by.clone(),
            recorded_by_name,
            device_id: e.device_id.clone(),
            received: e.is_received(),
            received_at: e.received_at.map(rfc3339).transpose()?,
            pulled_at: e.pulled_at.map(rfc3339).transpose()?,
            record_id,
            live,
            current,
            conflicting,
            resolves: e.resolves.clone(),
            state: match e.state {
                OutboxState::Queued => ReportStateDto::Queued,
                OutboxState::Sending => ReportStateDto::Sending,
                OutboxState::Delivered => ReportStateDto::Delivered,
                OutboxState::Rejected => ReportStateDto::Rejected,
                OutboxState::Superseded => ReportStateDto::Superseded,
                OutboxState::Received => ReportStateDto::Received,
            },
            last_error: e.last_error.clone(),
            attempts: e.attempts.clamp(0, u32::MAX as i64) as u32,
            delivered_at: e.delivered_at.map(rfc3339).transpose()?,
            supersedes: e.supersedes.clone(),
            correction_reason: e.correction_reason.clone(),
            superseded_by: e.superseded_by.clone(),
            body_site: e.details.body_site.clone(),
            activity: e.details.activity,
            note: e.details.note.clone(),
            intervention: e.details.intervention.clone(),
            follows_up: e.follows_up.clone(),
            followed_up_by: e.followed_up_by.clone(),
            reassess_due_at: e.reassess_due_at.map(rfc3339).transpose()?,
            reassessment: reassessment_state(due, e.followed_up_by.is_some(), now),
        })
    }
}

/// A new assessment as the form sent it; the domain checks every value. The
/// recorder is whoever is signed in, never a form field.
#[derive(Debug, Clone, Default, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AssessmentInput {
    pub patient_id: String,
    #[serde(flatten)]
    pub values: AssessmentForm,
    /// The assessment with an intervention that this one reassesses.
    pub follows_up: Option<String>,
}

/// A correction: the corrected values and why. Patient and follow-up link stay the original's.
#[derive(Debug, Clone, Default, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CorrectionInput {
    #[serde(flatten)]
    pub values: AssessmentForm,
    pub reason: String,
}

/// A reassessment the clinic owes: the assessment with the intervention (who
/// recorded it, on which device, and so who owes it), for whom, and when.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PendingReassessmentDto {
    pub report: PainReportDto,
    pub patient_name: String,
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct StaffDto {
    pub id: String,
    pub name: String,
    /// `doctor` or `nurse`.
    pub role: String,
    pub department: String,
    /// False when the clinic sent no PIN verifier for this member: they cannot sign in here.
    pub can_sign_in: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum SessionStateDto {
    SignedOut,
    Active,
    /// Idle too long: the same member's PIN unlocks it.
    Locked,
}

/// Who is signed in on this device and the clinic's bedside rules the form needs.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SessionDto {
    pub state: SessionStateDto,
    pub staff_id: Option<String>,
    pub staff_name: Option<String>,
    pub role: Option<String>,
    /// What whoever is at the device may do now, by the role table: the UI shows
    /// only these (Rust refuses the rest whatever the UI shows).
    pub allowed: Vec<clinic_domain::roles::Access>,
    pub lock_after_minutes: u32,
    /// An active session: in how many milliseconds it locks unless the member is
    /// active again first, so the UI covers the screen at that moment rather than
    /// at its next check.
    pub locks_in_ms: Option<u32>,
    pub backdate_window_minutes: u32,
    pub reassess_interval_minutes: u32,
    /// The clinic's zone: times are shown and entered in it.
    pub time_zone: String,
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryDto {
    pub at: String,
    pub actor: String,
    pub actor_name: Option<String>,
    pub device_id: String,
    /// created, corrected, superseded, sync_state, retried, signed_in, signed_out,
    /// sign_in_failed, exported, received (pulled from the server), conflicting
    /// (the record was left with concurrent corrections).
    pub action: String,
    /// JSON with the action's particulars (e.g. `{"from":"sending","to":"delivered"}`).
    pub detail: Option<String>,
}

/// Where an export was written and how many records it holds.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ExportDto {
    pub path: String,
    pub observations: u32,
}

/// Why the last sync failed; the UI shows a translation of `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum SyncProblemKindDto {
    Offline,
    Timeout,
    ServerError,
    CredentialsRefused,
    Protocol,
    LocalStorage,
    /// Something answered that is not a clinic server (proxy, login page, wrong address).
    UnexpectedAnswer,
    /// No patients or schedules offered, and no report confirmed stored there yet.
    FeedsMissing,
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SyncProblemDto {
    pub kind: SyncProblemKindDto,
    /// English detail for support; no patient data, no tokens.
    pub detail: String,
    pub at: String,
}

/// What a bootstrap is doing: loading the clinic's records, then building the
/// search keys (lookup by ID works from the start).
#[derive(Debug, Clone, Copy, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum BootstrapPhaseDto {
    Loading,
    Indexing,
}

/// A bootstrap's progress: the search screen shows it instead of an empty search.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct BootstrapProgressDto {
    pub phase: BootstrapPhaseDto,
    /// Records loaded (loading) or patients indexed (indexing) so far.
    pub done: u32,
    pub total: u32,
    /// 0 to 100, of the phase.
    pub percent: u8,
    /// Estimated from the rate so far; null until there is one.
    pub seconds_left: Option<u32>,
}

impl From<&clinic_sync::BootstrapProgress> for BootstrapProgressDto {
    fn from(p: &clinic_sync::BootstrapProgress) -> Self {
        let clamp = |n: u64| n.min(u32::MAX as u64) as u32;
        Self {
            phase: match p.phase {
                clinic_sync::BootstrapPhase::Loading => BootstrapPhaseDto::Loading,
                clinic_sync::BootstrapPhase::Indexing => BootstrapPhaseDto::Indexing,
            },
            done: clamp(p.done),
            total: clamp(p.total),
            percent: p.percent(),
            seconds_left: p.seconds_left.map(clamp),
        }
    }
}

/// Where sync stands, pushed to the UI whenever it changes.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatusDto {
    /// A central server is configured for this device.
    pub configured: bool,
    /// `true` after the server last answered, `false` when it could not be reached, null before the first try.
    pub online: Option<bool>,
    pub running: bool,
    /// Reports saved here and not yet acknowledged by the server.
    pub waiting: u32,
    /// Reports the server refused, kept with its reason.
    pub rejected: u32,
    /// RFC 3339 of the last completed sync; kept across restarts.
    pub last_success_at: Option<String>,
    pub last_error: Option<SyncProblemDto>,
    pub credentials_refused: bool,
    /// The server takes reports but sends no patients or schedules (the hospital's
    /// original API); `lastSuccessAt` is then the last confirmed upload.
    pub upload_only: bool,
    /// Pulled records this device refused and set aside (listed on the diagnostics screen).
    pub set_aside: u32,
    /// Grows whenever a sync applied pulled changes; screens reload when it does.
    pub pulled_changes: u32,
    /// The clinic is being loaded from the server's snapshot (a new device).
    pub bootstrap: Option<BootstrapProgressDto>,
}

impl SyncStatusDto {
    /// The status of a device without a server: reports stay here, counted, and
    /// records set aside by an earlier server are still counted.
    pub fn unconfigured(counts: clinic_store::outbox::OutboxCounts, set_aside: u64) -> Self {
        Self {
            configured: false,
            online: None,
            running: false,
            waiting: counts.waiting().min(u32::MAX as u64) as u32,
            rejected: counts.rejected.min(u32::MAX as u64) as u32,
            last_success_at: None,
            last_error: None,
            credentials_refused: false,
            upload_only: false,
            set_aside: set_aside.min(u32::MAX as u64) as u32,
            pulled_changes: 0,
            bootstrap: None,
        }
    }
}

/// Fails when a time in the status is out of range (the last success is read back
/// from the store): an error, never a blank time.
impl TryFrom<&clinic_sync::SyncStatus> for SyncStatusDto {
    type Error = ApiError;

    fn try_from(s: &clinic_sync::SyncStatus) -> Result<Self, ApiError> {
        use clinic_sync::SyncProblemKind as K;
        Ok(Self {
            configured: s.configured,
            online: s.online,
            running: s.running,
            waiting: s.waiting.min(u32::MAX as u64) as u32,
            rejected: s.rejected.min(u32::MAX as u64) as u32,
            last_success_at: s.last_success_at.map(rfc3339).transpose()?,
            last_error: s
                .last_error
                .as_ref()
                .map(|p| -> Result<SyncProblemDto, StoreError> {
                    Ok(SyncProblemDto {
                        kind: match p.kind {
                            K::Offline => SyncProblemKindDto::Offline,
                            K::Timeout => SyncProblemKindDto::Timeout,
                            K::ServerError => SyncProblemKindDto::ServerError,
                            K::CredentialsRefused => SyncProblemKindDto::CredentialsRefused,
                            K::Protocol => SyncProblemKindDto::Protocol,
                            K::LocalStorage => SyncProblemKindDto::LocalStorage,
                            K::UnexpectedAnswer => SyncProblemKindDto::UnexpectedAnswer,
                            K::FeedsMissing => SyncProblemKindDto::FeedsMissing,
                        },
                        detail: p.detail.clone(),
                        at: rfc3339(p.at)?,
                    })
                })
                .transpose()?,
            credentials_refused: s.credentials_refused,
            upload_only: s.upload_only,
            set_aside: s.set_aside.min(u32::MAX as u64) as u32,
            pulled_changes: s.pulled_changes.min(u32::MAX as u64) as u32,
            bootstrap: s.bootstrap.as_ref().map(BootstrapProgressDto::from),
        })
    }
}
