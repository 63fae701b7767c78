//! Extractors whose rejections are `ApiError`s, so a bad request gets the same
//! `{"error": ...}` JSON as every other failure instead of axum's plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::auth::{bearer, token_hash};
use crate::error::ApiError;
use crate::{AppState, Mode};

/// A JSON body: requires a JSON content type (415), a body within the route's
/// limit (413), and JSON that fits `T` (400, with serde's reason).
pub struct JsonBody<T>(pub T);

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("request body too large".into())
            } else {
                ApiError::BadRequest("could not read the request body".into())
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::BadRequest("empty request body".into()));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// The one `{param}` of a route, percent-decoded.
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| PathParam(p))
            .map_err(|_| ApiError::BadRequest("malformed path parameter".into()))
    }
}

/// Query string parsed into `T`.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| QueryParams(q))
            .map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))
    }
}

/// The clinic the request acts for. Full mode: from the bearer token (401 when
/// missing, unknown or revoked). Compat mode: the configured default clinic,
/// because the hospital's original API had no authentication.
pub struct Clinic(pub String);

impl FromRequestParts<AppState> for Clinic {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Mode::Compat { clinic_id } = &state.mode {
            return Ok(Clinic(clinic_id.clone()));
        }
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
            .ok_or(ApiError::Unauthorized)?;
        // Looked up on every request, so revocation takes effect on the next one.
        let hash = token_hash(token);
        let clinic = if state.store.is_embedded() {
            // An indexed point read on a pooled WAL reader: microseconds, cheaper
            // than a hop to the blocking pool.
            state.store.clinic_for_token(&hash)?
        } else {
            // A network round trip that may wait for a database timeout: never on
            // an async worker, or an outage would stall every request.
            let store = state.store.clone();
            tokio::task::spawn_blocking(move || store.clinic_for_token(&hash))
                .await
                .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))??
        };
        clinic.map(Clinic).ok_or(ApiError::Unauthorized)
    }
}
