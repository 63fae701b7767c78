use clinic_store::StoreError;
use serde::Serialize;
use ts_rs::TS;

/// The closed set of failures the UI switches on; each has a translation in
/// every UI language, so adding one here fails the UI's type check until it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    QueryTooLong,
    InvalidPatientId,
    InvalidDoctorId,
    InvalidDate,
    PatientNotFound,
    /// The score is not on its scale (NRS 0–10, FACES 0–10 even).
    InvalidScore,
    InvalidScale,
    /// An assessment time that is not a time at all.
    InvalidAssessmentTime,
    /// An assessment time later than now.
    AssessmentInFuture,
    /// An assessment dated further back than the clinic allows.
    AssessmentTooOld,
    /// Body site, note or intervention too long or with control characters, or an unknown activity.
    InvalidAssessmentDetails,
    /// A reassessment must follow a current assessment of the same patient that had an intervention.
    InvalidFollowUp,
    /// The record was already corrected; correct its latest version.
    ReportAlreadyCorrected,
    /// A resolution must correct the record's shown current report and settle each
    /// of its other live corrections, as they are now.
    InvalidResolution,
    /// Nobody is signed in on this device.
    NotSignedIn,
    /// The signed-in member was idle too long; their PIN unlocks.
    SessionLocked,
    UnknownStaff,
    /// The clinic sent no PIN verifier for this member.
    PinNotSet,
    WrongPin,
    /// Too many wrong PINs: wait (the message says how long).
    PinAttemptsExceeded,
    /// Writing an export file failed.
    ExportFailed,
    ReportNotFound,
    /// Only a report the server refused can be queued again.
    ReportNotRejected,
    /// A correction needs a reason (it stays on the record with both reports).
    InvalidCorrectionReason,
    /// No central server is configured for this device.
    SyncNotConfigured,
    DatabaseTooNew,
    StorageFailed,
    /// The local database is encrypted and this device has no key for it (a data
    /// directory copied without its key, or a lost key); nothing was opened or made.
    StoreKeyMissing,
    /// This device's key does not open the local database (a data directory from
    /// another device or account, or a damaged key); nothing was opened or made.
    StoreKeyWrong,
    /// A bug on our side; the message says what, for support.
    Internal,
    /// A clinic profile or enrolment code that cannot be used (the message says which field).
    InvalidProfile,
    /// This device holds another clinic's data and cannot be provisioned for this one.
    OtherClinicData,
    SupportBundleFailed,
    /// The signed-in member's role may not do this (the role table, `clinic_domain::roles`).
    NotPermitted,
    /// Another member's session is locked on this device: her PIN unlocks it before
    /// anyone else signs in, and before it is signed out.
    SessionHeld,
}

/// What crosses the IPC boundary when a command fails: a code to switch on and an
/// English sentence for logs and support. Never contains patient data from storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::TooNew { .. } => ApiError::new(ErrorCode::DatabaseTooNew, e.to_string()),
            StoreError::Encrypted { .. } => {
                tracing::error!(error = %e, "local store locked");
                ApiError::new(ErrorCode::StoreKeyMissing, e.to_string())
            }
            StoreError::WrongKey { .. } => {
                tracing::error!(error = %e, "local store locked");
                ApiError::new(ErrorCode::StoreKeyWrong, e.to_string())
            }
            StoreError::InvalidQuery(_) => ApiError::new(ErrorCode::QueryTooLong, e.to_string()),
            other => {
                tracing::error!(error = %other, "local store failed");
                ApiError::new(
                    ErrorCode::StorageFailed,
                    "the local database could not complete the request",
                )
            }
        }
    }
}
