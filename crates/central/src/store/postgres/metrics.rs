//! The PostgreSQL store's metrics: database call latency (pool wait included),
//! calls that found no database, and the pool's state when `/metrics` is read.

use std::time::Duration;

use deadpool_postgres::Pool;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge};

/// Upper bounds in seconds of the database call latency histogram; the last bucket is +Inf.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

pub(super) struct CallStats {
    duration: Histogram,
    unavailable: IntCounter,
}

impl Default for CallStats {
    fn default() -> Self {
        let opts = HistogramOpts::new(
            "clinic_db_call_duration_seconds",
            "Database calls (pool wait included).",
        )
        .buckets(BUCKETS.to_vec());
        Self {
            duration: Histogram::with_opts(opts).expect("a valid metric name"),
            unavailable: IntCounter::new(
                "clinic_db_unavailable_total",
                "Calls answered 503: database unreachable or too slow.",
            )
            .expect("a valid metric name"),
        }
    }
}

impl CallStats {
    pub(super) fn observe(&self, latency: Duration, unavailable: bool) {
        self.duration.observe(latency.as_secs_f64());
        if unavailable {
            self.unavailable.inc();
        }
    }

    /// These metrics and `pool`'s gauges, for the server's registry.
    pub(super) fn collectors(&self, pool: &Pool) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.duration.clone()),
            Box::new(self.unavailable.clone()),
            Box::new(PoolGauges::new(pool.clone())),
        ]
    }
}

/// The pool's sizes, read from the pool each time the metrics are gathered.
struct PoolGauges {
    pool: Pool,
    max: IntGauge,
    open: IntGauge,
    idle: IntGauge,
    waiting: IntGauge,
}

impl PoolGauges {
    fn new(pool: Pool) -> Self {
        let gauge = |name, help| IntGauge::new(name, help).expect("a valid metric name");
        Self {
            pool,
            max: gauge("clinic_db_pool_max", "Connections the pool may open."),
            open: gauge("clinic_db_pool_open", "Connections open now."),
            idle: gauge("clinic_db_pool_idle", "Open connections not in use."),
            waiting: gauge("clinic_db_pool_waiting", "Calls waiting for a connection."),
        }
    }

    fn gauges(&self) -> [&IntGauge; 4] {
        [&self.max, &self.open, &self.idle, &self.waiting]
    }
}

impl Collector for PoolGauges {
    fn desc(&self) -> Vec<&Desc> {
        self.gauges().into_iter().flat_map(|g| g.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let status = self.pool.status();
        let as_gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.max.set(as_gauge(status.max_size));
        self.open.set(as_gauge(status.size));
        self.idle.set(as_gauge(status.available));
        self.waiting.set(as_gauge(status.waiting));
        self.gauges()
            .into_iter()
            .flat_map(|g| g.collect())
            .collect()
    }
}
