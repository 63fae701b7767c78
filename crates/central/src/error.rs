//! The one error type every handler returns. It logs what went wrong inside and
//! answers with a short, stable `{"error": "..."}` that leaks no internals.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use clinic_domain::DomainError;
use clinic_protocol::{ErrorBody, error_code};

use crate::auth::Scope;
use crate::store::StoreError;

/// What a 503 asks clients to wait before retrying.
pub const RETRY_AFTER_SECS: &str = "2";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or a value is out of range; the text is for the client.
    #[error("{0}")]
    BadRequest(String),
    #[error("missing, unknown or revoked bearer token")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// The body did not arrive within the body-read timeout; the connection is closed.
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// This address failed authentication too often; it may try again after the delay.
    #[error("too many failed authentications from this address; retry later")]
    TooManyFailedAuth { retry_after_secs: u64 },
    /// The token is valid, but its scope does not allow this route.
    #[error(
        "this route needs an {needed} token; a {have} token may push reports and read the clinic's feeds only"
    )]
    ScopeForbidden { have: Scope, needed: Scope },
    /// `POST /v1/enrol` with a code that cannot enrol this device; the text says why.
    #[error("{0}")]
    EnrolmentRefused(String),
    /// A bounded resource is full (the long poll's waiters): try again after the delay.
    #[error("{message}")]
    Full {
        message: &'static str,
        retry_after_secs: u64,
    },
    /// The writer is gone (shutting down) or storage failed: try again later.
    #[error("storage unavailable")]
    Unavailable,
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyFailedAuth { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ScopeForbidden { .. } | ApiError::EnrolmentRefused(_) => {
                StatusCode::FORBIDDEN
            }
            ApiError::Unavailable | ApiError::Full { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(StoreError::PinRequired) => StatusCode::BAD_REQUEST,
            ApiError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code a client acts on, for the refusals that have one.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            ApiError::ScopeForbidden { .. } => Some(error_code::ADMIN_SCOPE_REQUIRED),
            ApiError::EnrolmentRefused(_) => Some(error_code::ENROLMENT_CODE_REFUSED),
            _ => None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(format!("{what} not found"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Store(StoreError::PinRequired) => self.to_string(),
            ApiError::Store(e @ StoreError::Unavailable(_)) => {
                tracing::warn!(error = %e, "database unavailable");
                "storage unavailable".to_owned()
            }
            ApiError::Store(e) => {
                tracing::error!(error = %e, "storage error");
                "internal error".to_owned()
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: message,
            code: self.code().map(str::to_owned),
        };
        let mut response = (status, Json(body)).into_response();
        match self {
            // The rest of a late body may still be on its way: do not read it, close.
            ApiError::BodyTimeout => {
                response.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
            }
            ApiError::TooManyFailedAuth { retry_after_secs }
            | ApiError::Full {
                retry_after_secs, ..
            } => {
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(retry_after_secs),
                );
            }
            // Outages of the database or writer are short; clients retry, not give up.
            _ if status == StatusCode::SERVICE_UNAVAILABLE => {
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static(RETRY_AFTER_SECS),
                );
            }
            _ => {}
        }
        response
    }
}
