//! HTTP to the central server: one function per route, every failure classified.

use std::time::{Duration, SystemTime};

use clinic_protocol::{BatchRequest, BatchResponse, ErrorBody, FeedPage, ReportSubmission, StoredReport, paths};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use crate::SyncError;
use crate::backoff::parse_retry_after;

/// A W3C trace context for one sync run: the trace ID is shared by every request
/// of the run (and recorded on the run's tracing span), each request gets its own span ID.
#[derive(Debug, Clone)]
pub struct Trace {
    pub trace_id: String,
}

impl Trace {
    pub fn new() -> Self {
        Self { trace_id: random_hex(16) }
    }

    /// `00-<32 hex trace id>-<16 hex span id>-01`
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, random_hex(8))
    }
}

impl Default for Trace {
    fn default() -> Self {
        Self::new()
    }
}

/// Random lowercase hex of `bytes` bytes, never all zeros (W3C calls that invalid).
fn random_hex(bytes: usize) -> String {
    loop {
        let s: String = (0..bytes).map(|_| format!("{:02x}", fastrand::u8(..))).collect();
        if s.bytes().any(|b| b != b'0') {
            return s;
        }
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
        f.debug_struct("Client").field("base", &self.base).field("token", &self.token.as_ref().map(|_| "<redacted>")).finish()
    }
}

impl Client {
    pub fn new(
        base_url: &str,
        token: Option<String>,
        connect_timeout: Duration,
        request_timeout: Duration,
        reuse_connections: bool,
    ) -> Result<Self, SyncError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(request_timeout)
            .user_agent(concat!("clinic-desk-sync/", env!("CARGO_PKG_VERSION")));
        if !reuse_connections {
            builder = builder.pool_max_idle_per_host(0);
        }
        let http = builder.build().map_err(|e| SyncError::Internal(format!("HTTP client: {e}")))?;
        Ok(Self { http, base: base_url.trim_end_matches('/').to_owned(), token })
    }

    fn request(&self, method: reqwest::Method, path: &str, trace: &Trace) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{}", self.base, path)).header("traceparent", trace.traceparent());
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        req
    }

    pub async fn post_batch(&self, reports: &[ReportSubmission], trace: &Trace) -> Result<BatchResponse, SyncError> {
        let body = BatchRequest { reports: reports.to_vec() };
        let resp = self.request(reqwest::Method::POST, paths::REPORTS_BATCH, trace).json(&body).send().await;
        json(check(resp).await?).await
    }

    pub async fn post_single(&self, report: &ReportSubmission, trace: &Trace) -> Result<StoredReport, SyncError> {
        let resp = self.request(reqwest::Method::POST, paths::REPORTS, trace).json(report).send().await;
        let resp = check(resp).await?;
        // The hospital's original server may answer a 2xx with a body we cannot read;
        // the contract says a 2xx is delivered, so treat it as such with our own ID.
        match resp.bytes().await {
            Ok(bytes) => Ok(serde_json::from_slice::<StoredReport>(&bytes).unwrap_or_else(|_| StoredReport {
                report_id: report.report_id,
                patient_id: report.patient_id.clone(),
                pain_score: report.pain_score,
                submit_time: report.submit_time,
                scale: report.scale,
                recorded_by: None,
                device_id: None,
                supersedes: None,
                reason: None,
                assessed_at: None,
                details: Default::default(),
                received_at: 0,
                duplicate: false,
            })),
            // The status line arrived but the body broke off: the server answered 2xx,
            // i.e. committed. Still, be strict: outcome unknown, resend the same ID.
            Err(e) => Err(SyncError::from_reqwest(e)),
        }
    }

    pub async fn feed<T: DeserializeOwned>(&self, path: &str, after: i64, limit: u32, trace: &Trace) -> Result<FeedPage<T>, SyncError> {
        let resp = self
            .request(reqwest::Method::GET, path, trace)
            .query(&[("after", after.to_string()), ("limit", limit.to_string())])
            .send()
            .await;
        json(check(resp).await?).await
    }

    /// `GET /healthz`: is the server reachable and its database answering?
    pub async fn health(&self, trace: &Trace) -> Result<(), SyncError> {
        let resp = self.request(reqwest::Method::GET, paths::HEALTH, trace).send().await;
        check(resp).await.map(|_| ())
    }
}

async fn json<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, SyncError> {
    let bytes = resp.bytes().await.map_err(SyncError::from_reqwest)?;
    serde_json::from_slice(&bytes).map_err(|e| SyncError::Protocol(format!("unexpected answer: {e}")))
}

/// Sorts an answer into success or one of the error kinds the engine acts on.
async fn check(resp: Result<reqwest::Response, reqwest::Error>) -> Result<reqwest::Response, SyncError> {
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
    Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => SyncError::CredentialsRefused { status: code },
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => SyncError::NotOffered { status: code },
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_EARLY | StatusCode::TOO_MANY_REQUESTS => {
            SyncError::Server { status: code, retry_after }
        }
        s if s.is_server_error() => SyncError::Server { status: code, retry_after },
        s if s.is_client_error() => {
            // The server's reason is shown to staff next to the set-aside report.
            let reason = match resp.bytes().await {
                Ok(b) => serde_json::from_slice::<ErrorBody>(&b)
                    .map(|e| e.error)
                    .unwrap_or_else(|_| s.canonical_reason().unwrap_or("refused").to_owned()),
                Err(e) => return Err(SyncError::from_reqwest(e)),
            };
            SyncError::Refused { status: code, reason }
        }
        _ => SyncError::Protocol(format!("unexpected HTTP {code}")),
    })
}
