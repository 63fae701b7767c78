//! Request observation: one span per request carrying the W3C trace ID, one
//! access-log line, and the metrics. Logged fields are route templates, methods,
//! statuses and timings only: never bodies, patient data or tokens.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use clinic_protocol::paths;
use clinic_protocol::trace::{TRACEPARENT, TraceId, TraceParent};
use tracing::Instrument;

use crate::AppState;

/// The trace ID of a valid `traceparent`, else a fresh one.
pub fn trace_id(headers: &HeaderMap) -> TraceId {
    headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse)
        .map_or_else(TraceId::random, |t| t.trace_id)
}

pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let span = tracing::info_span!(
        "request",
        trace_id = %trace_id(req.headers()),
        method = %req.method(),
        route = %route,
    );
    let start = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    state.metrics.observe(&route, status, elapsed);
    let latency_us = elapsed.as_micros() as u64;
    // An answered long poll is every waiting device's heartbeat (10,000 devices
    // would write about 400 lines a second), so only its failures are info.
    if route == paths::CHANGES && response.status().is_success() {
        span.in_scope(|| tracing::debug!(status, latency_us, "request"));
    } else {
        span.in_scope(|| tracing::info!(status, latency_us, "request"));
    }
    response
}

/// JSON logs on stdout, filtered by `RUST_LOG` (default `info`). Spans' fields,
/// `trace_id` among them, go on every line logged inside a request.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .try_init();
}
