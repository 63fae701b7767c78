//! Prometheus text exposition from plain atomics: per-route request counts by
//! status, a per-route latency histogram, and the ingest counters.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Upper bounds in seconds; the last bucket is +Inf.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
struct RouteStats {
    by_status: RwLock<BTreeMap<u16, Arc<AtomicU64>>>,
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

#[derive(Default)]
pub struct Metrics {
    routes: RwLock<BTreeMap<String, Arc<RouteStats>>>,
    pub errors: AtomicU64,
    pub reports_ingested: AtomicU64,
    pub reports_duplicate: AtomicU64,
    pub reports_rejected: AtomicU64,
    pub group_commits: AtomicU64,
    pub group_committed_reports: AtomicU64,
    pub reports_not_stored: AtomicU64,
    pub connections_refused: AtomicU64,
    pub connections_timed_out: AtomicU64,
    pub auth_failures_limited: AtomicU64,
    pub writer_restarts: AtomicU64,
}

impl Metrics {
    pub fn observe(&self, route: &str, status: u16, latency: Duration) {
        let stats = self.route(route);
        let counter = {
            let read = stats.by_status.read().unwrap_or_else(|e| e.into_inner());
            read.get(&status).cloned()
        };
        let counter = counter.unwrap_or_else(|| {
            let mut write = stats.by_status.write().unwrap_or_else(|e| e.into_inner());
            write.entry(status).or_default().clone()
        });
        counter.fetch_add(1, Relaxed);
        let secs = latency.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        stats.buckets[bucket].fetch_add(1, Relaxed);
        stats
            .sum_micros
            .fetch_add(latency.as_micros() as u64, Relaxed);
        stats.count.fetch_add(1, Relaxed);
        if status >= 500 {
            self.errors.fetch_add(1, Relaxed);
        }
    }

    fn route(&self, route: &str) -> Arc<RouteStats> {
        if let Some(s) = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(route)
        {
            return s.clone();
        }
        let mut write = self.routes.write().unwrap_or_else(|e| e.into_inner());
        write.entry(route.to_owned()).or_default().clone()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        out.push_str("# HELP clinic_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE clinic_http_requests_total counter\n");
        for (route, stats) in routes.iter() {
            for (status, n) in stats
                .by_status
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
            {
                let _ = writeln!(
                    out,
                    "clinic_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {}",
                    n.load(Relaxed)
                );
            }
        }
        out.push_str("# HELP clinic_http_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE clinic_http_request_duration_seconds histogram\n");
        for (route, stats) in routes.iter() {
            let mut cumulative = 0;
            for (i, bucket) in stats.buckets.iter().enumerate() {
                cumulative += bucket.load(Relaxed);
                let le = BUCKETS.get(i).map_or("+Inf".to_owned(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "clinic_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "clinic_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                stats.sum_micros.load(Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "clinic_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                stats.count.load(Relaxed)
            );
        }
        let counters = [
            (
                "clinic_http_errors_total",
                "Responses with a 5xx status.",
                &self.errors,
            ),
            (
                "clinic_reports_ingested_total",
                "Reports newly stored.",
                &self.reports_ingested,
            ),
            (
                "clinic_reports_duplicate_total",
                "Reports received again with the same content.",
                &self.reports_duplicate,
            ),
            (
                "clinic_reports_rejected_total",
                "Reports refused: invalid or conflicting.",
                &self.reports_rejected,
            ),
            (
                "clinic_group_commits_total",
                "Ingest transactions committed.",
                &self.group_commits,
            ),
            (
                "clinic_group_committed_reports_total",
                "Reports written by those transactions.",
                &self.group_committed_reports,
            ),
            (
                "clinic_reports_not_stored_total",
                "Reports that failed alone after their group commit failed.",
                &self.reports_not_stored,
            ),
            (
                "clinic_connections_refused_total",
                "Connections closed at once because the connection cap was reached.",
                &self.connections_refused,
            ),
            (
                "clinic_connections_timed_out_total",
                "Connections closed for being idle, or for headers or a body that did not arrive in time.",
                &self.connections_timed_out,
            ),
            (
                "clinic_auth_failures_limited_total",
                "Requests answered 429 because their address failed authentication too often.",
                &self.auth_failures_limited,
            ),
            (
                "clinic_writer_restarts_total",
                "Times the report writer thread died and was restarted.",
                &self.writer_restarts,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Relaxed)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_counts_match() {
        let m = Metrics::default();
        m.observe("/a", 200, Duration::from_micros(300));
        m.observe("/a", 200, Duration::from_millis(30));
        m.observe("/a", 500, Duration::from_secs(10));
        let text = m.render();
        assert!(text.contains("clinic_http_requests_total{route=\"/a\",status=\"200\"} 2"));
        assert!(
            text.contains(
                "clinic_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.0005\"} 1"
            )
        );
        assert!(
            text.contains(
                "clinic_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.05\"} 2"
            )
        );
        assert!(
            text.contains(
                "clinic_http_request_duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3"
            )
        );
        assert!(text.contains("clinic_http_errors_total 1"));
    }
}
