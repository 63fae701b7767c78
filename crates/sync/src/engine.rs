//! The background task: a `tokio::select!` over a command channel, a ticker, the
//! backoff timer and (while offline) a reachability probe. One sync at a time; a
//! request that arrives during a run sets "run again" (coalesced, not lost).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clinic_store::{Database, StoreError, outbox, pull};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use crate::push::PushCounts;
use crate::{
    Backoff, Client, ErrorClass, SyncError, SyncProblem, SyncProblemKind, SyncStatus, Trace,
};

const LAST_SUCCESS_KEY: &str = "last_success_at";
/// Earlier versions remembered single-POST mode for good under `single_post_mode:<url>`;
/// such rows are removed at start (the batch route is tried again after every start).
const OLD_SINGLE_POST_PREFIX: &str = "single_post_mode:";

#[derive(Clone)]
pub struct SyncConfig {
    /// e.g. `http://127.0.0.1:8080`
    pub server_url: String,
    /// Bearer token for the clinic; `None` for the hospital's unauthenticated original.
    pub token: Option<String>,
    /// Reports per `POST /v1/reports/batch` (the server takes at most 1,000).
    pub batch_size: usize,
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
}

impl std::fmt::Debug for SyncConfig {
    // Written out so the token can never reach a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncConfig")
            .field("server_url", &self.server_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("batch_size", &self.batch_size)
            .field("single_concurrency", &self.single_concurrency)
            .field("interval", &self.interval)
            .field("backoff", &(self.backoff_base, self.backoff_cap))
            .field("timeouts", &(self.connect_timeout, self.request_timeout))
            .field("pull", &self.pull)
            .finish_non_exhaustive()
    }
}

impl SyncConfig {
    pub fn new(server_url: impl Into<String>, token: Option<String>) -> Self {
        Self {
            server_url: server_url.into(),
            token,
            batch_size: 500,
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
            reuse_connections: true,
            batch_recheck: Duration::from_secs(24 * 3600),
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// What one completed sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncRun {
    pub delivered: u64,
    pub rejected: u64,
    pub pulled: u64,
    /// Pulled records set aside in this run.
    pub set_aside: u64,
}

enum Command {
    SyncNow,
    ReportQueued,
    Shutdown,
}

/// The engine's state shared by the loop and one sync run.
pub struct SyncEngine {
    pub(crate) db: Arc<Database>,
    pub(crate) client: Client,
    pub(crate) config: SyncConfig,
    /// When single-POST mode was learned (proof from the single route after the
    /// batch route was missing); never persisted, and it lapses after `batch_recheck`.
    single_post_since: Mutex<Option<Instant>>,
    upload_only: AtomicBool,
    status: watch::Sender<SyncStatus>,
}

/// The app's handle on the background task.
#[derive(Clone)]
pub struct SyncHandle {
    tx: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<SyncStatus>,
}

impl SyncHandle {
    /// Ask for a sync now, ignoring backoff and a credentials stop.
    pub fn sync_now(&self) {
        let _ = self.tx.send(Command::SyncNow);
    }
    /// A report was just saved: update the counts and send it soon.
    pub fn report_queued(&self) {
        let _ = self.tx.send(Command::ReportQueued);
    }
    /// Stops the task; a request in flight is abandoned (its reports stay
    /// `sending` and are re-sent with the same IDs at the next start).
    pub fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown);
    }
    pub fn status(&self) -> SyncStatus {
        self.status.borrow().clone()
    }
    pub fn subscribe(&self) -> watch::Receiver<SyncStatus> {
        self.status.clone()
    }
}

fn problem(e: &SyncError) -> SyncProblem {
    let kind = match e {
        SyncError::Unreachable(_) => SyncProblemKind::Offline,
        SyncError::Timeout => SyncProblemKind::Timeout,
        SyncError::Server { .. } | SyncError::Refused { .. } => SyncProblemKind::ServerError,
        // A clinic server has every route the engine asks for (the batch route's
        // absence is handled where it is asked): a missing one means the address
        // leads somewhere else.
        SyncError::NotOffered { .. } | SyncError::UnexpectedAnswer(_) => {
            SyncProblemKind::UnexpectedAnswer
        }
        SyncError::FeedsMissing { .. } => SyncProblemKind::FeedsMissing,
        SyncError::CredentialsRefused { .. } => SyncProblemKind::CredentialsRefused,
        SyncError::Interrupted(_) | SyncError::Protocol(_) | SyncError::Internal(_) => {
            SyncProblemKind::Protocol
        }
        SyncError::Store(_) => SyncProblemKind::LocalStorage,
    };
    SyncProblem {
        kind,
        detail: e.to_string(),
        at: chrono::Utc::now().timestamp(),
    }
}

impl SyncEngine {
    /// Prepares the engine: turns reports left `sending` by a crash back into
    /// `queued` (same IDs), and loads what earlier runs learned.
    pub fn new(db: Arc<Database>, config: SyncConfig) -> Result<Self, SyncError> {
        let client = Client::new(
            &config.server_url,
            config.token.clone(),
            config.connect_timeout,
            config.request_timeout,
            config.reuse_connections,
        )?;
        let requeued = db.write(|c| outbox::requeue_in_flight(c))?;
        if requeued > 0 {
            tracing::info!(
                requeued,
                "reports whose delivery was interrupted will be sent again under the same IDs"
            );
        }
        db.write(|c| {
            c.execute(
                "DELETE FROM sync_state WHERE key LIKE ?1 || '%'",
                [OLD_SINGLE_POST_PREFIX],
            )?;
            Ok(())
        })?;
        let rules = rules_version(&config.app_version);
        let rewound = db.write(|c| pull::recheck_set_aside(c, &rules))?;
        if rewound > 0 {
            tracing::info!(
                streams = rewound,
                "the rules changed: records set aside earlier will be fetched again"
            );
        }
        let last_success =
            db.read(|c| Ok(pull::state(c, LAST_SUCCESS_KEY)?.and_then(|v| v.parse().ok())))?;
        let counts = db.read(outbox::counts)?;
        let set_aside = db.read(pull::set_aside_count)?;
        let status = SyncStatus {
            configured: true,
            waiting: counts.waiting(),
            rejected: counts.rejected,
            last_success_at: last_success,
            set_aside,
            ..Default::default()
        };
        let (status, _) = watch::channel(status);
        Ok(Self {
            db,
            client,
            config,
            single_post_since: Mutex::new(None),
            upload_only: AtomicBool::new(false),
            status,
        })
    }

    pub fn subscribe(&self) -> watch::Receiver<SyncStatus> {
        self.status.subscribe()
    }

    pub fn status(&self) -> SyncStatus {
        self.status.borrow().clone()
    }

    /// Single POSTs while the mode is fresh; once `batch_recheck` has passed the
    /// batch route gets another chance.
    pub(crate) fn single_post_mode(&self) -> bool {
        let mut since = self
            .single_post_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match *since {
            Some(t) if t.elapsed() < self.config.batch_recheck => true,
            Some(_) => {
                tracing::info!("trying the batch route again");
                *since = None;
                self.status.send_modify(|s| s.single_post_mode = false);
                false
            }
            None => false,
        }
    }

    pub(crate) fn learn_single_post_mode(&self) {
        *self
            .single_post_since
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.status.send_modify(|s| s.single_post_mode = true);
    }

    pub(crate) fn upload_only(&self) -> bool {
        self.upload_only.load(Ordering::Relaxed)
    }

    pub(crate) fn set_upload_only(&self, on: bool) {
        if self.upload_only.swap(on, Ordering::Relaxed) != on {
            self.status.send_modify(|s| s.upload_only = on);
        }
    }

    /// Records that this server proved it stores reports (a delivered one), now.
    pub(crate) async fn remember_upload(&self) -> Result<(), SyncError> {
        let key = upload_proven_key(&self.config.server_url);
        let now = chrono::Utc::now().timestamp().to_string();
        self.store(move |db| db.write(|c| pull::set_state(c, &key, Some(&now))))
            .await
    }

    /// Unix seconds of the last report this server proved it stored.
    async fn last_upload(&self) -> Result<Option<i64>, SyncError> {
        let key = upload_proven_key(&self.config.server_url);
        self.store(move |db| db.read(|c| Ok(pull::state(c, &key)?.and_then(|v| v.parse().ok()))))
            .await
    }

    pub(crate) async fn uploads_proven(&self) -> Result<bool, SyncError> {
        Ok(self.last_upload().await?.is_some())
    }

    /// Runs a store call on a blocking thread (SQLite waits must not stall the runtime).
    pub(crate) async fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, SyncError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| SyncError::Internal(format!("store task: {e}")))?
            .map_err(SyncError::Store)
    }

    /// Re-reads the outbox counts into the status.
    pub async fn refresh_counts(&self) {
        match self
            .store(|db| db.read(|c| Ok((outbox::counts(c)?, pull::set_aside_count(c)?))))
            .await
        {
            Ok((c, set_aside)) => self.status.send_modify(|s| {
                s.waiting = c.waiting();
                s.rejected = c.rejected;
                s.set_aside = set_aside;
            }),
            Err(e) => tracing::error!(error = %e, "cannot read the outbox counts"),
        }
    }

    /// One sync: push the outbox, then (if that worked) pull the clinic's data.
    /// Every request of the run carries the same W3C trace ID, which is also on
    /// this run's log lines, so the server's logs can be matched to ours.
    pub async fn sync_once(&self) -> Result<SyncRun, SyncError> {
        let trace = Trace::new();
        let span = tracing::info_span!("sync", trace_id = %trace.trace_id);
        async {
            self.status.send_modify(|s| s.running = true);
            let result = self.run(&trace).await;
            let now = chrono::Utc::now().timestamp();
            match &result {
                Ok(run) => {
                    tracing::info!(
                        delivered = run.delivered,
                        rejected = run.rejected,
                        pulled = run.pulled,
                        set_aside = run.set_aside,
                        "sync done"
                    );
                    // Against an upload-only server a run with nothing to send
                    // proves nothing: its last sync is its last proven upload.
                    let last = if self.upload_only() {
                        self.last_upload().await.ok().flatten()
                    } else {
                        Some(now)
                    };
                    if let Some(last) = last {
                        let _ = self
                            .store(move |db| {
                                db.write(|c| {
                                    pull::set_state(c, LAST_SUCCESS_KEY, Some(&last.to_string()))
                                })
                            })
                            .await;
                    }
                    let pulled = run.pulled;
                    self.status.send_modify(|s| {
                        s.pulled_changes += pulled;
                        s.online = Some(true);
                        if last.is_some() {
                            s.last_success_at = last;
                        }
                        s.last_error = None;
                        s.credentials_refused = false;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sync failed");
                    let p = problem(e);
                    let offline = e.is_offline();
                    let auth = e.class() == ErrorClass::Auth;
                    self.status.send_modify(|s| {
                        s.online = Some(!offline);
                        s.last_error = Some(p);
                        s.credentials_refused = auth;
                    });
                }
            }
            self.refresh_counts().await;
            self.status.send_modify(|s| s.running = false);
            result
        }
        .instrument(span)
        .await
    }

    async fn run(&self, trace: &Trace) -> Result<SyncRun, SyncError> {
        // Push before pull: the server sees our work before we take its view.
        let PushCounts {
            delivered,
            rejected,
        } = self.push(trace).await?;
        self.status.send_modify(|s| s.online = Some(true));
        let mut run = SyncRun {
            delivered,
            rejected,
            ..Default::default()
        };
        if self.config.pull {
            let pulled = self.pull(trace).await?;
            run.pulled = pulled.applied;
            run.set_aside = pulled.set_aside;
            // Deletions deferred for undelivered reports may be due now.
            self.store(|db| db.write(pull::apply_deferred_deletions))
                .await?;
        }
        Ok(run)
    }

    /// Starts the background task on `runtime`.
    pub fn spawn(self, runtime: &tokio::runtime::Handle) -> SyncHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let status = self.status.subscribe();
        runtime.spawn(self.run_loop(rx));
        SyncHandle { tx, status }
    }

    async fn run_loop(self, mut rx: mpsc::UnboundedReceiver<Command>) {
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut probe = tokio::time::interval(self.config.probe_interval);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backoff = Backoff::new(self.config.backoff_base, self.config.backoff_cap);
        let mut rng = fastrand::Rng::new();
        let mut retry_at: Option<Instant> = None;
        let mut stopped_for_auth = false;
        let mut want = true;
        let mut forced = false;
        loop {
            let due = retry_at.is_none_or(|t| Instant::now() >= t);
            if want && (forced || (due && !stopped_for_auth)) {
                forced = false;
                let mut again = false;
                let mut shutdown = false;
                let result = {
                    let run = self.sync_once();
                    tokio::pin!(run);
                    loop {
                        tokio::select! {
                            r = &mut run => break Some(r),
                            cmd = rx.recv() => match cmd {
                                None | Some(Command::Shutdown) => { shutdown = true; break None }
                                Some(Command::SyncNow) => { again = true; forced = true; }
                                Some(Command::ReportQueued) => {
                                    again = true;
                                    self.refresh_counts().await;
                                }
                            },
                        }
                    }
                };
                if shutdown {
                    self.status.send_modify(|s| s.running = false);
                    return;
                }
                match result {
                    Some(Ok(_)) => {
                        backoff.reset();
                        retry_at = None;
                        stopped_for_auth = false;
                    }
                    Some(Err(e)) if e.class() == ErrorClass::Auth => {
                        // Retrying refused credentials only locks the clinic out faster.
                        stopped_for_auth = true;
                        retry_at = None;
                        again = forced;
                    }
                    Some(Err(e)) => {
                        let delay = backoff.next_delay(e.retry_after(), &mut rng);
                        tracing::info!(delay_ms = delay.as_millis() as u64, "sync will retry");
                        retry_at = Some(crate::backoff::deadline(Instant::now(), delay));
                    }
                    None => {}
                }
                want = again;
                if want {
                    continue;
                }
            }
            let offline = self.status.borrow().online == Some(false);
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    None | Some(Command::Shutdown) => return,
                    Some(Command::SyncNow) => { want = true; forced = true; stopped_for_auth = false; }
                    Some(Command::ReportQueued) => { self.refresh_counts().await; want = true; }
                },
                _ = ticker.tick() => want = true,
                _ = sleep_until(retry_at), if retry_at.is_some() => want = true,
                _ = probe.tick(), if offline && retry_at.is_some() && !stopped_for_auth => {
                    // The server may be back long before the backoff runs out.
                    if self.client.reachable(&Trace::new()).await {
                        tracing::info!("server reachable again");
                        retry_at = None;
                        want = true;
                    }
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn upload_proven_key(server_url: &str) -> String {
    format!("upload_proven:{}", server_url.trim_end_matches('/'))
}

/// What decides which pulled records this device accepts: the app and its schema.
fn rules_version(app_version: &str) -> String {
    format!(
        "app {app_version}, sync {}, schema {}",
        env!("CARGO_PKG_VERSION"),
        *clinic_store::SCHEMA_VERSION
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let config = SyncConfig::new("http://127.0.0.1:1", Some("cct_secret".into()));
        assert!(!format!("{config:?}").contains("cct_secret"));
        let client = Client::new(
            "http://x",
            Some("cct_secret".into()),
            Duration::from_secs(1),
            Duration::from_secs(1),
            true,
        )
        .unwrap();
        assert!(!format!("{client:?}").contains("cct_secret"));
    }
}
