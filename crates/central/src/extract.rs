//! Extractors whose rejections are `ApiError`s, so a bad request gets the same
//! `{"error": ...}` JSON as every other failure instead of axum's plain text.
//! Bodies are read within the body-read timeout; a batch is counted while it is
//! parsed; failed authentications are limited per client address.

use std::cell::Cell;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{
    ConnectInfo, FromRequest, FromRequestParts, MatchedPath, Path, Query, Request,
};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use clinic_protocol::MAX_BATCH_REPORTS;
use serde::Deserializer as _;
use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::auth::{TokenAuth, bearer, required_scope, token_hash};
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

/// The body of a JSON request: content type checked, size within the route's
/// limit, all of it within the body-read timeout, not blank.
async fn json_bytes(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    if !is_json(req.headers()) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let read = Bytes::from_request(req, state);
    let bytes = tokio::time::timeout(state.limits.body_read_timeout, read)
        .await
        .map_err(|_| {
            state.metrics.connections_timed_out.inc();
            ApiError::BodyTimeout
        })?
        .map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("request body too large".into())
            } else {
                ApiError::BadRequest("could not read the request body".into())
            }
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("empty request body".into()));
    }
    Ok(bytes)
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = json_bytes(req, state).await?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            // The field first, as in every other refusal: "birthDate: … input is out of range".
            let field = e.path().to_string();
            if field == "." {
                ApiError::BadRequest(format!("invalid JSON body: {}", e.inner()))
            } else {
                ApiError::BadRequest(format!("{field}: invalid JSON body: {}", e.inner()))
            }
        })?;
        de.end()
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
        Ok(JsonBody(value))
    }
}

/// A batch body `{"reports": [...]}`, items kept as raw JSON so each is parsed,
/// and can fail, on its own. The items are counted while the array is parsed:
/// item [`MAX_BATCH_REPORTS`] + 1 stops the parse with a 413, so a million tiny
/// items (which fit in the byte limit) never become a million values in memory.
pub struct BatchBody(pub Vec<Value>);

impl FromRequest<AppState> for BatchBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = json_bytes(req, state).await?;
        let too_many = Cell::new(false);
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let parsed = de
            .deserialize_map(BatchVisitor {
                too_many: &too_many,
            })
            .and_then(|items| de.end().map(|()| items));
        match parsed {
            _ if too_many.get() => Err(ApiError::PayloadTooLarge(format!(
                "a batch may carry at most {MAX_BATCH_REPORTS} reports"
            ))),
            Ok(Some(items)) => Ok(BatchBody(items)),
            Ok(None) => Err(ApiError::BadRequest(
                "invalid JSON body: missing field `reports`".into(),
            )),
            Err(e) => Err(ApiError::BadRequest(format!("invalid JSON body: {e}"))),
        }
    }
}

struct BatchVisitor<'a> {
    too_many: &'a Cell<bool>,
}

impl<'de> Visitor<'de> for BatchVisitor<'_> {
    type Value = Option<Vec<Value>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with a `reports` array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut reports = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "reports" && reports.is_none() {
                reports = Some(map.next_value_seed(BoundedItems {
                    too_many: self.too_many,
                })?);
            } else {
                // Unknown fields are ignored, as in every other body.
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(reports)
    }
}

struct BoundedItems<'a> {
    too_many: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for BoundedItems<'_> {
    type Value = Vec<Value>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Vec<Value>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for BoundedItems<'_> {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of reports")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_BATCH_REPORTS));
        while let Some(item) = seq.next_element::<Value>()? {
            if items.len() == MAX_BATCH_REPORTS {
                self.too_many.set(true);
                return Err(serde::de::Error::custom("too many reports"));
            }
            items.push(item);
        }
        Ok(items)
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
/// missing, unknown or revoked), whose scope must allow the route
/// ([`crate::auth::ROUTES`]; 403 when it does not). Compat mode: the configured
/// default clinic, because the hospital's original API had no authentication.
pub struct Clinic(pub String);

impl FromRequestParts<AppState> for Clinic {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Mode::Compat { clinic_id } = &state.mode {
            return Ok(Clinic(clinic_id.clone()));
        }
        Ok(Clinic(authenticate(parts, state).await?.clinic_id))
    }
}

/// The token the request carries, checked as for [`Clinic`]: for the one route that
/// acts on the token itself (`DELETE /v1/tokens/self`). Compat mode has no tokens.
pub struct Caller(pub TokenAuth);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Mode::Compat { .. } = &state.mode {
            return Err(ApiError::Unauthorized);
        }
        Ok(Caller(authenticate(parts, state).await?))
    }
}

/// The bearer token's record: 401 when missing, unknown or revoked; 403 when its
/// scope does not allow the route ([`crate::auth::ROUTES`]).
async fn authenticate(parts: &Parts, state: &AppState) -> Result<TokenAuth, ApiError> {
    let token = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    // Looked up on every request, so revocation takes effect on the next one.
    let found = match token {
        Some(token) => {
            let hash = token_hash(token);
            if state.store.is_embedded() {
                // An indexed point read on a pooled WAL reader: microseconds, cheaper
                // than a hop to the blocking pool.
                state.store.token_for_hash(&hash)?
            } else {
                // A network round trip that may wait for a database timeout: never on
                // an async worker, or an outage would stall every request.
                let store = state.store.clone();
                tokio::task::spawn_blocking(move || store.token_for_hash(&hash))
                    .await
                    .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))??
            }
        }
        None => None,
    };
    let Some(token) = found else {
        return Err(failed_auth(parts, state));
    };
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    touch(state, &token.token_id, peer);
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map_or("", MatchedPath::as_str);
    let needed = required_scope(&parts.method, route);
    if !token.scope.allows(needed) {
        return Err(ApiError::ScopeForbidden {
            have: token.scope,
            needed,
        });
    }
    Ok(token)
}

/// Records a token's last use, at most once per [`crate::limits::TOKEN_TOUCH_INTERVAL`]
/// per token and never on the request's path: the write runs on its own and a
/// failure is only logged.
fn touch(state: &AppState, token_id: &str, peer: Option<IpAddr>) {
    if !state.token_touches.due(token_id) {
        return;
    }
    let (store, token_id) = (state.store.clone(), token_id.to_owned());
    let address = peer.map(|ip| ip.to_string());
    let at = chrono::Utc::now().timestamp();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = store.touch_token(&token_id, at, address.as_deref()) {
            tracing::warn!(error = %e, token_id, "could not record the token's last use");
        }
    });
}

/// A failed authentication: 401, or 429 once the client's address has failed too
/// often ([`crate::limits::FailedAuthLimiter`]).
fn failed_auth(parts: &Parts, state: &AppState) -> ApiError {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    failed_from(peer, state).unwrap_or(ApiError::Unauthorized)
}

/// Counts a failed authentication (a bad token, a refused enrolment code) from
/// `peer`: `Some(429)` once the address has failed too often. A router driven
/// without a socket (in-process) has no address and is never limited.
pub fn failed_from(peer: Option<IpAddr>, state: &AppState) -> Option<ApiError> {
    let wait = state.failed_auth.failed(peer?).err()?;
    state.metrics.auth_failures_limited.inc();
    Some(ApiError::TooManyFailedAuth {
        retry_after_secs: wait.as_secs().max(1),
    })
}

/// The client's address, when the request came over a socket.
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip()),
        ))
    }
}
