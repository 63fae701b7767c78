//! The engine: one sync run (push, then pull, with the status kept up to date)
//! and the handle on the background loop (`executor.rs`, deciding with
//! `planner.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use clinic_store::{Database, outbox, pull};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::context::Context;
use crate::executor::{Command, Timers, Work};
use crate::planner::{Outcome, Planner, Watched};
use crate::push::PushCounts;
use crate::{
    Backoff, Client, ErrorClass, SyncConfig, SyncError, SyncProblem, SyncProblemKind, SyncStatus,
    Trace,
};

const LAST_SUCCESS_KEY: &str = "last_success_at";
/// Earlier versions remembered single-POST mode for good under `single_post_mode:<url>`;
/// such rows are removed at start (the batch route is tried again after every start).
const OLD_SINGLE_POST_PREFIX: &str = "single_post_mode:";

/// What one completed sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncRun {
    pub delivered: u64,
    pub rejected: u64,
    pub pulled: u64,
    /// Pulled records set aside in this run.
    pub set_aside: u64,
}

/// The engine's state shared by the loop and one sync run.
pub struct SyncEngine {
    ctx: Context,
    /// The largest change counter a long poll answered: a run follows every larger
    /// one, so the next long poll waits past it even before the pull's cursors do
    /// (a feed this device does not pull must not make every long poll answer at once).
    seen_change: AtomicI64,
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
    /// `sending` and are re-sent with the same IDs at the next start, or by a
    /// later claim once their lease, `SyncConfig::sending_lease`, has passed).
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
        SyncError::Interrupted(_)
        | SyncError::Protocol(_)
        | SyncError::Internal(_)
        | SyncError::Transport(_) => SyncProblemKind::Protocol,
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
            &config.transport,
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
            Ok::<_, clinic_store::StoreError>(())
        })?;
        let rules = rules_version(&config.app_version);
        let rewound = db.write(|c| pull::recheck_set_aside(c, &rules))?;
        if rewound > 0 {
            tracing::info!(
                streams = rewound,
                "the rules changed: records set aside earlier will be fetched again"
            );
        }
        let last_success = db.read(|c| {
            Ok::<_, clinic_store::StoreError>(
                pull::state(c, LAST_SUCCESS_KEY)?.and_then(|v| v.parse().ok()),
            )
        })?;
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
            ctx: Context::new(db, client, config, status),
            seen_change: AtomicI64::new(0),
        })
    }

    pub fn subscribe(&self) -> watch::Receiver<SyncStatus> {
        self.ctx.status.subscribe()
    }

    pub fn status(&self) -> SyncStatus {
        self.ctx.status.borrow().clone()
    }

    /// Re-reads the outbox counts into the status.
    pub async fn refresh_counts(&self) {
        match self
            .ctx
            .store(|db| db.read(|c| Ok((outbox::counts(c)?, pull::set_aside_count(c)?))))
            .await
        {
            Ok((c, set_aside)) => self.ctx.status.send_modify(|s| {
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
            let ctx = &self.ctx;
            ctx.status.send_modify(|s| s.running = true);
            let result = run(ctx, &trace).await;
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
                    let last = if ctx.upload_only() {
                        ctx.last_upload().await.ok().flatten()
                    } else {
                        Some(now)
                    };
                    if let Some(last) = last {
                        let _ = ctx
                            .store(move |db| {
                                db.write(|c| {
                                    pull::set_state(c, LAST_SUCCESS_KEY, Some(&last.to_string()))
                                })
                            })
                            .await;
                    }
                    ctx.status.send_modify(|s| {
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
                    ctx.status.send_modify(|s| {
                        s.online = Some(!offline);
                        s.last_error = Some(p);
                        s.credentials_refused = auth;
                    });
                }
            }
            self.refresh_counts().await;
            ctx.status.send_modify(|s| s.running = false);
            result
        }
        .instrument(span)
        .await
    }

    /// Starts the background task on `runtime`.
    pub fn spawn(self, runtime: &tokio::runtime::Handle) -> SyncHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let status = self.ctx.status.subscribe();
        let config = &self.ctx.config;
        let planner = Planner::new(
            Backoff::new(config.backoff_base, config.backoff_cap),
            fastrand::Rng::new(),
            config.live && config.pull,
        );
        let timers = Timers {
            interval: config.interval,
            probe_interval: config.probe_interval,
        };
        runtime.spawn(crate::executor::run_loop(self, planner, timers, rx));
        SyncHandle { tx, status }
    }
}

/// What the loop asks of the engine.
impl Work for SyncEngine {
    async fn sync(&self) -> Outcome {
        match self.sync_once().await {
            Ok(_) if self.ctx.upload_only() => Outcome::UploadOnly,
            Ok(_) => Outcome::Synced,
            Err(e) if e.class() == ErrorClass::Auth => Outcome::CredentialsRefused,
            Err(e) => Outcome::Failed {
                retry_after: e.retry_after(),
                offline: e.is_offline(),
            },
        }
    }

    async fn probe(&self) -> bool {
        let reachable = self.ctx.client.reachable(&Trace::new()).await;
        if reachable {
            tracing::info!("server reachable again");
        }
        reachable
    }

    async fn report_queued(&self) {
        self.refresh_counts().await;
    }

    fn abandoned(&self) {
        self.ctx.status.send_modify(|s| s.running = false);
    }

    async fn watch(&self) -> Watched {
        let ctx = &self.ctx;
        let held = match ctx.store(|db| db.read(held_cursor)).await {
            Ok(held) => held,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the pull cursors");
                return Watched::Failed { retry_after: None };
            }
        };
        let after = held.max(self.seen_change.load(Ordering::Relaxed));
        let (wait, answer_within) = (ctx.config.changes_wait, ctx.config.request_timeout);
        let asked = tokio::time::Instant::now();
        match ctx
            .client
            .changes(after, wait, answer_within, &Trace::new())
            .await
        {
            Ok(changes) => {
                self.seen_change
                    .fetch_max(changes.change_seq, Ordering::Relaxed);
                if changes.change_seq > after {
                    tracing::debug!(after, change_seq = changes.change_seq, "the server changed");
                    Watched::Changed
                } else if asked.elapsed() < wait / 2 {
                    // "Nothing changed" without waiting: something between us and the
                    // server (a caching proxy) or a server ignoring `waitSeconds`.
                    // Polling again at once would be a busy loop, so it backs off like
                    // a failure.
                    tracing::debug!(after, "the long poll answered without waiting");
                    Watched::Failed { retry_after: None }
                } else {
                    Watched::Quiet
                }
            }
            Err(SyncError::NotOffered { status }) => {
                tracing::info!(
                    status,
                    "the server has no long poll: changes elsewhere arrive with the ticker"
                );
                Watched::NotOffered
            }
            Err(e) if e.class() == ErrorClass::Auth => {
                tracing::warn!(error = %e, "long poll refused");
                let p = problem(&e);
                ctx.status.send_modify(|s| {
                    s.online = Some(true);
                    s.last_error = Some(p);
                    s.credentials_refused = true;
                });
                Watched::CredentialsRefused
            }
            Err(e) => {
                tracing::debug!(error = %e, "long poll failed");
                Watched::Failed {
                    retry_after: e.retry_after(),
                }
            }
        }
    }
}

/// The largest cursor this device holds over its feeds: every feed numbers its
/// items from the clinic's one change counter, so this is how far it has pulled.
fn held_cursor(c: &clinic_store::Connection) -> Result<i64, clinic_store::StoreError> {
    Ok(c.query_row(
        "SELECT COALESCE(MAX(cursor), 0) FROM sync_cursors",
        [],
        |r| r.get(0),
    )?)
}

/// One run's work: push before pull, so the server sees our work before we take
/// its view.
async fn run(ctx: &Context, trace: &Trace) -> Result<SyncRun, SyncError> {
    let PushCounts {
        delivered,
        rejected,
    } = crate::push::run(ctx, trace).await?;
    ctx.status.send_modify(|s| s.online = Some(true));
    let mut run = SyncRun {
        delivered,
        rejected,
        ..Default::default()
    };
    if ctx.config.pull {
        let pulled = crate::pull::run(ctx, trace).await?;
        run.pulled = pulled.applied;
        run.set_aside = pulled.set_aside;
        // Deletions deferred for undelivered reports may be due now.
        ctx.store(|db| db.write(pull::apply_deferred_deletions))
            .await?;
        // Screens reload on this count: tell them now, not after the run's bookkeeping.
        if pulled.applied > 0 {
            ctx.status
                .send_modify(|s| s.pulled_changes += pulled.applied);
        }
    }
    Ok(run)
}

/// What decides which pulled records this device accepts: the app and its schema.
fn rules_version(app_version: &str) -> String {
    format!(
        "app {app_version}, sync {}, schema {}",
        env!("CARGO_PKG_VERSION"),
        *clinic_store::SCHEMA_VERSION
    )
}
