//! What the engine is told: the server, the token, the batch sizes and every
//! interval, timeout and bound of its loop.

use std::time::Duration;

#[derive(Clone)]
pub struct SyncConfig {
    /// e.g. `http://127.0.0.1:8080`
    pub server_url: String,
    /// Bearer token for the clinic; `None` for the hospital's unauthenticated original.
    pub token: Option<String>,
    /// Plain `http://` beyond this machine, and the clinic's own CA certificate.
    pub transport: clinic_protocol::transport::Transport,
    /// Reports per `POST /v1/reports/batch` (the server takes at most 1,000).
    pub batch_size: usize,
    /// Batches on the wire at once: while the server commits one, the device claims
    /// and sends the next and marks the previous delivered, so neither side's disk
    /// waits for the other's. 1 sends them one after another.
    pub batches_in_flight: usize,
    /// Reports claimed at a time in single-POST mode.
    pub single_chunk: usize,
    /// Single POSTs in flight at once.
    pub single_concurrency: usize,
    /// A sync runs at least this often even if nothing asks for one.
    pub interval: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// While offline, how often to check whether the server is back.
    pub probe_interval: Duration,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub feed_page_limit: u32,
    /// Pull the clinic's data after pushing.
    pub pull: bool,
    /// While online, keep a `GET /v1/changes` long poll in flight, so a change
    /// another device made is pulled at once rather than at the next tick (only
    /// with `pull`; a server without the route is left to the ticker).
    pub live: bool,
    /// How long one long poll asks the server to wait (it caps this at
    /// `clinic_protocol::MAX_CHANGES_WAIT_SECONDS`); the request may take this plus
    /// `request_timeout`.
    pub changes_wait: Duration,
    /// Keep HTTP connections alive between requests (tests turn it off so every
    /// request meets the fault proxy's next decision).
    pub reuse_connections: bool,
    /// How long single-POST mode, once learned, lasts before the batch route is
    /// tried again (it is also tried after every start), so a deploy glitch that
    /// hid the route does not pin the device to the slow path.
    pub batch_recheck: Duration,
    /// The app's version: when it (or the store's schema) changes, pulled records
    /// set aside under the old rules are fetched again and judged by the new ones.
    pub app_version: String,
    /// Load an empty store from the server's snapshot (`GET /v1/snapshot`) before
    /// the feeds; off, it pages through the feeds as a server without the route
    /// makes it (the pull bench's baseline).
    pub bootstrap: bool,
    /// Longest a snapshot may take to arrive, whole (a stalled one is cut sooner:
    /// no byte for `request_timeout`).
    pub snapshot_timeout: Duration,
    /// A device that has pulled before loads a new snapshot over its store when it
    /// is this many changes behind or more, and more than a quarter of the rows it
    /// holds ([`crate::bootstrap::far_behind`]).
    pub far_behind_min_changes: u64,
    /// How often a device that has pulled before asks how far behind it is (one
    /// `GET /v1/changes` without waiting): at its first pull, then at most this often.
    pub far_behind_probe_every: Duration,
}

impl std::fmt::Debug for SyncConfig {
    // Written out so the token can never reach a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncConfig")
            .field("server_url", &self.server_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("transport", &self.transport)
            .field("batch_size", &self.batch_size)
            .field("batches_in_flight", &self.batches_in_flight)
            .field("single_concurrency", &self.single_concurrency)
            .field("interval", &self.interval)
            .field("backoff", &(self.backoff_base, self.backoff_cap))
            .field("timeouts", &(self.connect_timeout, self.request_timeout))
            .field("pull", &self.pull)
            .field("live", &(self.live, self.changes_wait))
            .finish_non_exhaustive()
    }
}

impl SyncConfig {
    /// How long a claimed report stays this run's (`clinic_store::outbox::claim_batch`'s
    /// lease) before a later claim may presume its attempt lost and send it again.
    /// It outlasts the longest a claimed group can take to get its verdicts: every
    /// group in flight waits for the one claimed before it, and a batch the server
    /// does not take as a batch goes out as single POSTs, `single_concurrency` at a
    /// time, each up to a connect and a request timeout. About 2½ hours with the
    /// defaults: an abandoned claim then waits that long, not until the next start.
    pub fn sending_lease(&self) -> Duration {
        let attempt = self.connect_timeout + self.request_timeout;
        let singles_per_group = self
            .batch_size
            .max(self.single_chunk)
            .div_ceil(self.single_concurrency.max(1));
        let attempts_per_group = 1 + singles_per_group;
        let groups = self.batches_in_flight.max(1) + 1;
        attempt.saturating_mul(u32::try_from(attempts_per_group * groups).unwrap_or(u32::MAX))
    }

    pub fn new(server_url: impl Into<String>, token: Option<String>) -> Self {
        Self {
            server_url: server_url.into(),
            token,
            transport: Default::default(),
            batch_size: 500,
            batches_in_flight: 2,
            single_chunk: 64,
            single_concurrency: 6,
            interval: Duration::from_secs(60),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            probe_interval: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            feed_page_limit: clinic_protocol::DEFAULT_FEED_LIMIT,
            pull: true,
            live: true,
            changes_wait: Duration::from_secs(u64::from(
                clinic_protocol::DEFAULT_CHANGES_WAIT_SECONDS,
            )),
            reuse_connections: true,
            batch_recheck: Duration::from_secs(24 * 3600),
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
            bootstrap: true,
            snapshot_timeout: Duration::from_secs(20 * 60),
            far_behind_min_changes: 50_000,
            far_behind_probe_every: Duration::from_secs(10 * 60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Client;

    #[test]
    fn a_claim_outlasts_the_longest_wait_for_its_verdicts() {
        let config = SyncConfig::new("http://x", None);
        // Defaults: 2 groups in flight + 1, each a batch attempt plus 500 / 6 → 84
        // rounds of single POSTs, each up to 5 s to connect and 30 s to answer.
        assert_eq!(config.sending_lease(), Duration::from_secs(35 * 85 * 3));
        let quick = SyncConfig {
            connect_timeout: Duration::from_millis(100),
            request_timeout: Duration::from_millis(400),
            batch_size: 10,
            single_chunk: 4,
            single_concurrency: 4,
            batches_in_flight: 1,
            ..config
        };
        assert_eq!(quick.sending_lease(), Duration::from_millis(500 * 4 * 2));
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let config = SyncConfig::new("http://127.0.0.1:1", Some("cct_secret".into()));
        assert!(!format!("{config:?}").contains("cct_secret"));
        let client = Client::new(
            "http://x",
            Some("cct_secret".into()),
            &clinic_protocol::transport::Transport {
                allow_insecure_http: true,
                ca_file: None,
            },
            Duration::from_secs(1),
            Duration::from_secs(1),
            true,
        )
        .unwrap();
        assert!(!format!("{client:?}").contains("cct_secret"));
    }
}
