//! Request observation: one span per request carrying the W3C trace ID, one
//! access-log line, and the metrics. Logged fields are route templates, methods,
//! statuses and timings only: never bodies, patient data or tokens.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::AppState;

/// The trace ID of a valid `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), else a fresh one.
pub fn trace_id(headers: &HeaderMap) -> String {
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent)
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string())
}

fn parse_traceparent(v: &str) -> Option<String> {
    let mut parts = v.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && hex(parent, 16)
        && hex(flags, 2);
    valid.then(|| trace.to_owned())
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
    span.in_scope(|| tracing::info!(status, latency_us = elapsed.as_micros() as u64, "request"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_parsed_or_replaced() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(good).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }
}
