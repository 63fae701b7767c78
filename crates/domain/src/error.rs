use thiserror::Error;

/// Why a value from outside (a form, a scanner, a server) was refused.
///
/// Each variant maps to one stable error code the UI translates; the `Display`
/// text is the English fallback for logs and API clients.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error("an ID must not be empty")]
    EmptyId,
    #[error("an ID may be at most {max} characters")]
    IdTooLong { max: usize },
    #[error("an ID may contain only letters, digits, '-' and '_'")]
    IdInvalidCharacter,
    #[error("pain score {score} is outside the {scale} scale")]
    ScoreOutOfRange { score: i64, scale: &'static str },
    #[error("unknown pain scale '{0}'")]
    UnknownScale(String),
    #[error("unknown appointment status '{0}'")]
    UnknownAppointmentStatus(String),
    #[error("unknown sex '{0}'")]
    UnknownSex(String),
    #[error("'{0}' is not a date (expected YYYY-MM-DD)")]
    InvalidDate(String),
    #[error("'{0}' is not a time (expected RFC 3339, or YYYY-MM-DDTHH:MM on the clinic's clock)")]
    InvalidTime(String),
    #[error("unknown time zone '{0}'")]
    UnknownTimeZone(String),
    #[error("a search may be at most {max} characters")]
    QueryTooLong { max: usize },
    #[error("birth date {0} is in the future")]
    BirthDateInFuture(chrono::NaiveDate),
    #[error("the assessment time is in the future")]
    AssessmentInFuture,
    #[error("an assessment may be dated at most {window_minutes} minutes back")]
    AssessmentTooOld { window_minutes: i64 },
    #[error("unknown activity '{0}' (rest or movement)")]
    UnknownActivity(String),
    #[error("the {field} may be at most {max} characters")]
    TextTooLong { field: &'static str, max: usize },
    /// Control characters, and invisible ones that could make text show as other text
    /// (bidirectional overrides, zero-width characters; see `text::is_invisible`).
    #[error("the {field} contains control or invisible formatting characters")]
    InvisibleCharacter { field: &'static str },
    #[error("the {field} must not be empty")]
    TextRequired { field: &'static str },
    #[error("the {field} may contain only letters, digits, spaces and · - ' . , ( )")]
    NameCharacter { field: &'static str },
    #[error(
        "a phone number has at least one digit, at most {max} characters, and only digits, spaces and + - ( )"
    )]
    InvalidPhone { max: usize },
    #[error("birth date {0} is before {min}", min = crate::patient::MIN_BIRTH_DATE)]
    BirthDateTooEarly(chrono::NaiveDate),
    #[error("an appointment must end after it starts")]
    AppointmentEndsBeforeStart,
    #[error("unknown staff role '{0}' (doctor or nurse)")]
    UnknownRole(String),
    #[error("a correction needs a reason")]
    ReasonRequired,
    #[error("this record has already been corrected; correct the latest version")]
    AlreadySuperseded,
    #[error("a correction must be for the same patient")]
    CorrectionForOtherPatient,
    #[error(
        "a reassessment must follow a current assessment of the same patient with an intervention, and come after it"
    )]
    InvalidFollowUp,
    #[error(
        "a resolving correction must correct a record and name each other correction it settles once (at most {}), not itself",
        crate::assessment::MAX_RESOLVES
    )]
    InvalidResolution,
}

impl DomainError {
    /// The field a text rule refused, as the rule named it.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            DomainError::TextTooLong { field, .. }
            | DomainError::InvisibleCharacter { field }
            | DomainError::TextRequired { field }
            | DomainError::NameCharacter { field } => Some(field),
            _ => None,
        }
    }
}
