//! The server's Prometheus metrics (the `prometheus` crate's registry and text
//! format): per-route request counts by status, a per-route latency histogram,
//! the ingest and connection counters, and whatever the store adds
//! ([`CentralStore::metric_collectors`](crate::store::CentralStore::metric_collectors)).

use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Upper bounds in seconds of the request latency histogram; the last bucket is +Inf.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    pub errors: IntCounter,
    pub reports_ingested: IntCounter,
    pub reports_duplicate: IntCounter,
    pub reports_rejected: IntCounter,
    pub group_commits: IntCounter,
    pub group_committed_reports: IntCounter,
    pub reports_not_stored: IntCounter,
    pub connections_refused: IntCounter,
    pub connections_timed_out: IntCounter,
    pub auth_failures_limited: IntCounter,
    pub writer_restarts: IntCounter,
    /// `GET /v1/changes` long polls waiting now.
    pub change_waiters: IntGauge,
    pub change_waiters_refused: IntCounter,
    /// `GET /v1/snapshot` answered 503 because [`crate::Limits::max_snapshots`] were running.
    pub snapshots_refused: IntCounter,
}

/// Registers `metric` and hands it back. The names and help texts are constants,
/// so a refusal (a malformed or repeated name) is a bug the tests show at once.
fn register<M: Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are valid and registered once");
    metric
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(
        registry,
        IntCounter::new(name, help).expect("a valid metric name"),
    )
}

impl Metrics {
    /// The server's metrics, plus the store's `collectors` on the same page.
    pub fn new(collectors: Vec<Box<dyn Collector>>) -> Self {
        let registry = Registry::new();
        let requests = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "clinic_http_requests_total",
                    "HTTP requests by route and status.",
                ),
                &["route", "status"],
            )
            .expect("a valid metric name"),
        );
        let request_duration = register(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "clinic_http_request_duration_seconds",
                    "Request latency by route.",
                )
                .buckets(BUCKETS.to_vec()),
                &["route"],
            )
            .expect("a valid metric name"),
        );
        let change_waiters = register(
            &registry,
            IntGauge::new(
                "clinic_change_waiters",
                "Authenticated GET /v1/changes long polls waiting now.",
            )
            .expect("a valid metric name"),
        );
        let c = |name, help| counter(&registry, name, help);
        let metrics = Self {
            errors: c("clinic_http_errors_total", "Responses with a 5xx status."),
            reports_ingested: c("clinic_reports_ingested_total", "Reports newly stored."),
            reports_duplicate: c(
                "clinic_reports_duplicate_total",
                "Reports received again with the same content.",
            ),
            reports_rejected: c(
                "clinic_reports_rejected_total",
                "Reports refused: invalid or conflicting.",
            ),
            group_commits: c(
                "clinic_group_commits_total",
                "Ingest transactions committed.",
            ),
            group_committed_reports: c(
                "clinic_group_committed_reports_total",
                "Reports written by those transactions.",
            ),
            reports_not_stored: c(
                "clinic_reports_not_stored_total",
                "Reports that failed alone after their group commit failed.",
            ),
            connections_refused: c(
                "clinic_connections_refused_total",
                "Connections closed at once because the connection cap was reached.",
            ),
            connections_timed_out: c(
                "clinic_connections_timed_out_total",
                "Connections closed for being idle, or for headers or a body that did not arrive in time.",
            ),
            auth_failures_limited: c(
                "clinic_auth_failures_limited_total",
                "Requests answered 429 because their address failed authentication too often.",
            ),
            writer_restarts: c(
                "clinic_writer_restarts_total",
                "Times the report writer thread died and was restarted.",
            ),
            change_waiters_refused: c(
                "clinic_change_waiters_refused_total",
                "GET /v1/changes long polls answered 503 because the waiter cap was reached.",
            ),
            snapshots_refused: c(
                "clinic_snapshots_refused_total",
                "GET /v1/snapshot requests answered 503 because the snapshot cap was reached.",
            ),
            change_waiters,
            requests,
            request_duration,
            registry,
        };
        for collector in collectors {
            metrics
                .registry
                .register(collector)
                .expect("the store's metric names are valid and distinct from the server's");
        }
        metrics
    }

    pub fn observe(&self, route: &str, status: u16, latency: Duration) {
        self.requests
            .with_label_values(&[route, &status.to_string()])
            .inc();
        self.request_duration
            .with_label_values(&[route])
            .observe(latency.as_secs_f64());
        if status >= 500 {
            self.errors.inc();
        }
    }

    /// Prometheus text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("the registry's metrics encode");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use prometheus::IntGauge;

    use super::*;

    #[test]
    fn histogram_is_cumulative_and_counts_match() {
        let m = Metrics::default();
        m.observe("/a", 200, Duration::from_micros(300));
        m.observe("/a", 200, Duration::from_millis(30));
        m.observe("/a", 500, Duration::from_secs(10));
        let text = m.render();
        for line in [
            "# TYPE clinic_http_requests_total counter",
            "clinic_http_requests_total{route=\"/a\",status=\"200\"} 2",
            "clinic_http_requests_total{route=\"/a\",status=\"500\"} 1",
            "# TYPE clinic_http_request_duration_seconds histogram",
            "clinic_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.0005\"} 1",
            "clinic_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.05\"} 2",
            "clinic_http_request_duration_seconds_bucket{route=\"/a\",le=\"1\"} 2",
            "clinic_http_request_duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3",
            "clinic_http_request_duration_seconds_count{route=\"/a\"} 3",
            "clinic_http_errors_total 1",
            "clinic_reports_ingested_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        let sum = format!(
            "clinic_http_request_duration_seconds_sum{{route=\"/a\"}} {}",
            0.0003 + 0.03 + 10.0
        );
        assert!(text.lines().any(|l| l == sum), "{sum}\n{text}");
    }

    #[test]
    fn every_counter_is_listed_with_its_name() {
        let m = Metrics::default();
        m.writer_restarts.inc();
        m.group_committed_reports.inc_by(7);
        let text = m.render();
        for name in [
            "clinic_http_errors_total",
            "clinic_reports_ingested_total",
            "clinic_reports_duplicate_total",
            "clinic_reports_rejected_total",
            "clinic_group_commits_total",
            "clinic_group_committed_reports_total",
            "clinic_reports_not_stored_total",
            "clinic_connections_refused_total",
            "clinic_connections_timed_out_total",
            "clinic_auth_failures_limited_total",
            "clinic_writer_restarts_total",
            "clinic_change_waiters_refused_total",
            "clinic_snapshots_refused_total",
        ] {
            assert!(text.contains(&format!("# TYPE {name} counter\n")), "{name}");
        }
        assert!(text.contains("\nclinic_writer_restarts_total 1\n"));
        assert!(text.contains("\nclinic_group_committed_reports_total 7\n"));
        m.change_waiters.set(3);
        let text = m.render();
        assert!(text.contains("# TYPE clinic_change_waiters gauge\nclinic_change_waiters 3\n"));
    }

    #[test]
    fn the_stores_collectors_are_on_the_same_page() {
        let gauge = IntGauge::new("clinic_db_pool_max", "Connections the pool may open.").unwrap();
        gauge.set(16);
        let m = Metrics::new(vec![Box::new(gauge)]);
        assert!(m.render().contains("\nclinic_db_pool_max 16\n"));
    }
}
