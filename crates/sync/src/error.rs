use std::time::Duration;

use clinic_store::StoreError;
use thiserror::Error;

/// How the engine reacts to a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Try again later (backoff); nothing is lost or set aside.
    Transient,
    /// Resending the same thing will not help: set that report aside with the reason.
    Permanent,
    /// The clinic's credentials were refused: stop syncing until someone acts.
    Auth,
}

#[derive(Debug, Error)]
pub enum SyncError {
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    /// The request may or may not have been applied: retry with the same report ID.
    #[error("the server did not answer in time (outcome unknown)")]
    Timeout,
    #[error("the connection broke before the server's answer was complete (outcome unknown): {0}")]
    Interrupted(String),
    #[error("the server is having trouble (HTTP {status})")]
    Server {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("the server refused the clinic's credentials (HTTP {status})")]
    CredentialsRefused { status: u16 },
    #[error("the server refused the request (HTTP {status}): {reason}")]
    Refused { status: u16, reason: String },
    #[error("the server does not offer this route (HTTP {status})")]
    NotOffered { status: u16 },
    /// The feeds are missing and no report has been proven stored there yet: this
    /// may be the hospital's original API (upload-only) or no clinic server at all.
    #[error(
        "the server does not offer the clinic's patients and schedules (HTTP {status}) and has not yet confirmed storing a report"
    )]
    FeedsMissing { status: u16 },
    #[error("the server's answer was not understood: {0}")]
    Protocol(String),
    /// Something answered, but not as a clinic server does: HTML, an empty body,
    /// JSON of another shape, a redirect, an echo of another report. Often a
    /// proxy, captive portal or maintenance page. Nothing is taken as delivered.
    #[error(
        "the server answered with something that is not a clinic server's answer ({0}); a proxy or login page?"
    )]
    UnexpectedAnswer(String),
    #[error("the local database failed: {0}")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
    /// The server address or the profile's CA file cannot be used (the engine does not start).
    #[error(transparent)]
    Transport(#[from] clinic_protocol::transport::TransportError),
}

impl SyncError {
    pub fn class(&self) -> ErrorClass {
        match self {
            SyncError::CredentialsRefused { .. } => ErrorClass::Auth,
            SyncError::Refused { .. } => ErrorClass::Permanent,
            // A wrong route is a configuration problem, never the report's fault.
            SyncError::NotOffered { .. }
            | SyncError::Unreachable(_)
            | SyncError::Timeout
            | SyncError::Interrupted(_)
            | SyncError::Server { .. }
            | SyncError::Protocol(_)
            | SyncError::UnexpectedAnswer(_)
            | SyncError::FeedsMissing { .. }
            | SyncError::Store(_)
            | SyncError::Internal(_)
            | SyncError::Transport(_) => ErrorClass::Transient,
        }
    }

    /// The server's `Retry-After`, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SyncError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// No answer came from the server at all: the device counts as offline.
    pub fn is_offline(&self) -> bool {
        matches!(self, SyncError::Unreachable(_) | SyncError::Timeout)
    }

    pub(crate) fn from_reqwest(e: reqwest::Error) -> Self {
        // Never format the URL's query or anything of the body: `without_url` keeps
        // the message free of addresses that could carry identifiers.
        let e = e.without_url();
        if e.is_timeout() {
            SyncError::Timeout
        } else if e.is_connect() {
            SyncError::Unreachable(e.to_string())
        } else if e.is_decode() {
            SyncError::Interrupted(format!("unreadable answer: {e}"))
        } else {
            SyncError::Interrupted(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(SyncError::Timeout, ErrorClass::Transient)]
    #[case(SyncError::Server { status: 503, retry_after: None }, ErrorClass::Transient)]
    #[case(SyncError::Server { status: 429, retry_after: Some(Duration::from_secs(3)) }, ErrorClass::Transient)]
    #[case(SyncError::CredentialsRefused { status: 401 }, ErrorClass::Auth)]
    #[case(SyncError::CredentialsRefused { status: 403 }, ErrorClass::Auth)]
    #[case(SyncError::Refused { status: 409, reason: "conflict".into() }, ErrorClass::Permanent)]
    #[case(SyncError::Refused { status: 400, reason: "bad".into() }, ErrorClass::Permanent)]
    #[case(SyncError::NotOffered { status: 404 }, ErrorClass::Transient)]
    #[case(SyncError::UnexpectedAnswer("HTML".into()), ErrorClass::Transient)]
    fn every_failure_has_a_class(#[case] e: SyncError, #[case] class: ErrorClass) {
        assert_eq!(e.class(), class);
    }
}
