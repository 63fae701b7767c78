//! HTTP to the central server: one function per route, every failure classified.

use std::time::{Duration, SystemTime};

use clinic_protocol::trace::{TRACEPARENT, TraceId, TraceParent};
use clinic_protocol::transport::{self, Transport};
use clinic_protocol::{BatchRequest, BatchResponse, Changes, ErrorBody, ReportSubmission, paths};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::backoff::parse_retry_after;
use crate::{SyncError, proof};

/// A feed page whose items are still raw JSON: each is parsed on its own, so a
/// malformed one is set aside instead of failing the page.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawFeedPage {
    pub items: Vec<Box<RawValue>>,
    pub next_cursor: i64,
    pub has_more: bool,
}

/// A W3C trace context for one sync run: the trace ID is shared by every request
/// of the run (and recorded on the run's tracing span), each request gets its own parent ID.
#[derive(Debug, Clone)]
pub struct Trace {
    pub trace_id: TraceId,
}

impl Trace {
    pub fn new() -> Self {
        Self {
            trace_id: TraceId::random(),
        }
    }

    /// The `traceparent` header of one request of this run.
    pub fn traceparent(&self) -> String {
        TraceParent::child_of(self.trace_id).to_string()
    }
}

impl Default for Trace {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl std::fmt::Debug for Client {
    // The token must never reach a log line, not even through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    /// A client for `base_url` through the one builder the app reaches its server
    /// with ([`clinic_protocol::transport::client_builder`]): plain `http://` only to
    /// this machine unless `transport` allows it, no redirects, the clinic's CA file.
    pub fn new(
        base_url: &str,
        token: Option<String>,
        transport: &Transport,
        connect_timeout: Duration,
        request_timeout: Duration,
        reuse_connections: bool,
    ) -> Result<Self, SyncError> {
        let mut builder = transport::client_builder(base_url, transport)?
            .connect_timeout(connect_timeout)
            .timeout(request_timeout)
            .user_agent(concat!("clinic-desk-sync/", env!("CARGO_PKG_VERSION")));
        if !reuse_connections {
            builder = builder.pool_max_idle_per_host(0);
        }
        let http = builder
            .build()
            .map_err(|e| SyncError::Internal(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        trace: &Trace,
    ) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header(TRACEPARENT, trace.traceparent());
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        req
    }

    /// `POST /v1/reports/batch`. The answer counts only if it is a batch answer
    /// naming at least one of the reports sent (see [`crate::proof`]).
    pub async fn post_batch(
        &self,
        reports: &[ReportSubmission],
        trace: &Trace,
    ) -> Result<BatchResponse, SyncError> {
        let body = BatchRequest {
            reports: reports.to_vec(),
        };
        let resp = self
            .request(reqwest::Method::POST, paths::REPORTS_BATCH, trace)
            .json(&body)
            .send()
            .await;
        let resp = check(resp).await?;
        let bytes = resp.bytes().await.map_err(SyncError::from_reqwest)?;
        proof::batch_answer(reports, &bytes)
    }

    /// `POST /v1/reports`: delivered only when the answer proves the server stored
    /// this report (see [`crate::proof`]); returns the server's ID for it.
    pub async fn post_single(
        &self,
        report: &ReportSubmission,
        trace: &Trace,
    ) -> Result<proof::Stored, SyncError> {
        let resp = self
            .request(reqwest::Method::POST, paths::REPORTS, trace)
            .json(report)
            .send()
            .await;
        let resp = check(resp).await?;
        // A body that broke off after a 2xx status line: outcome unknown, resend the same ID.
        let bytes = resp.bytes().await.map_err(SyncError::from_reqwest)?;
        proof::single_answer(report, &bytes)
    }

    pub async fn feed(
        &self,
        path: &str,
        after: i64,
        limit: u32,
        trace: &Trace,
    ) -> Result<RawFeedPage, SyncError> {
        let resp = self
            .request(reqwest::Method::GET, path, trace)
            .query(&[("after", after.to_string()), ("limit", limit.to_string())])
            .send()
            .await;
        // Items stay raw so one the device cannot read fails alone, not the page.
        answer(resp, "a feed page").await
    }

    /// `GET /v1/snapshot`: the answer, its body still to be read chunk by chunk
    /// (see `crate::bootstrap`); the whole of it within `within`.
    pub async fn snapshot(
        &self,
        within: Duration,
        trace: &Trace,
    ) -> Result<reqwest::Response, SyncError> {
        let resp = self
            .request(reqwest::Method::GET, paths::SNAPSHOT, trace)
            .timeout(within)
            .send()
            .await;
        check(resp).await
    }

    /// `GET /v1/changes`: the clinic's change counter once it is past `after`, or
    /// when `wait` has passed. This request alone may take `wait` plus
    /// `answer_within` (the client's usual request timeout would cut a long wait).
    pub async fn changes(
        &self,
        after: i64,
        wait: Duration,
        answer_within: Duration,
        trace: &Trace,
    ) -> Result<Changes, SyncError> {
        let resp = self
            .request(reqwest::Method::GET, paths::CHANGES, trace)
            .query(&[
                ("after", after.to_string()),
                ("waitSeconds", wait.as_secs().to_string()),
            ])
            .timeout(wait.saturating_add(answer_within))
            .send()
            .await;
        answer(resp, "a changes answer").await
    }

    /// Is anything answering at the server's address? Any HTTP answer counts (the
    /// hospital's original server has no `/healthz`): this only ends an offline
    /// backoff early; the sync run that follows judges the answers.
    pub async fn reachable(&self, trace: &Trace) -> bool {
        self.request(reqwest::Method::GET, paths::HEALTH, trace)
            .send()
            .await
            .is_ok()
    }
}

/// Sorts an answer into success or one of the error kinds the engine acts on.
/// A successful answer's JSON body read as `T` (`what` it should be, for the
/// error): anything else, a portal's page or JSON of another shape, is an
/// unexpected answer.
async fn answer<T: serde::de::DeserializeOwned>(
    resp: Result<reqwest::Response, reqwest::Error>,
    what: &str,
) -> Result<T, SyncError> {
    let resp = check(resp).await?;
    let bytes = resp.bytes().await.map_err(SyncError::from_reqwest)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| SyncError::UnexpectedAnswer(format!("not {what}: {e}")))
}

async fn check(
    resp: Result<reqwest::Response, reqwest::Error>,
) -> Result<reqwest::Response, SyncError> {
    let resp = resp.map_err(SyncError::from_reqwest)?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let code = status.as_u16();
    if status.is_redirection() {
        return Err(SyncError::UnexpectedAnswer(format!(
            "a redirect (HTTP {code})"
        )));
    }
    Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            SyncError::CredentialsRefused { status: code }
        }
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => {
            SyncError::NotOffered { status: code }
        }
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_EARLY | StatusCode::TOO_MANY_REQUESTS => {
            SyncError::Server {
                status: code,
                retry_after,
            }
        }
        s if s.is_server_error() => SyncError::Server {
            status: code,
            retry_after,
        },
        s if s.is_client_error() => {
            // The server's reason is shown to staff next to the set-aside report.
            // Only a clinic server's error body (`{"error": "..."}`, which the
            // hospital's original server sends too) refuses a report for good; a
            // proxy's HTML 4xx must not set a nurse's report aside.
            let bytes = resp.bytes().await.map_err(SyncError::from_reqwest)?;
            match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(e) => SyncError::Refused {
                    status: code,
                    reason: e.error,
                },
                Err(_) => SyncError::UnexpectedAnswer(format!(
                    "HTTP {code} without a clinic server's error body"
                )),
            }
        }
        _ => SyncError::Protocol(format!("unexpected HTTP {code}")),
    })
}
