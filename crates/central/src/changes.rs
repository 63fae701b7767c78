//! `GET /v1/changes?after=<seq>&waitSeconds=<n>`: the long poll that wakes a
//! device's pull when its clinic changes, instead of the device asking every second.
//!
//! It answers at once when the clinic's change counter (the `seq` every feed item
//! carries) is past `after`, else when the counter moves, else when the wait ends
//! (with the unchanged counter), else at shutdown. The request is authenticated
//! like the feeds before anything waits: until then every header, body and idle
//! bound of `serve.rs` applies, and only an authenticated wait outlasts them.
//!
//! [`ChangeHub`] is the per-clinic registry: a `watch` channel per clinic that has
//! a waiter, made when the first one comes and dropped with the last. Writes wake
//! it in two ways:
//!
//! - **This replica's writes** ([`ChangeHub::written`]: the report writer after
//!   each group commit, record `PUT`/`DELETE` after theirs) mark their clinic and
//!   wake the refresher task at once, which reads the committed counters and sends
//!   the new value to that clinic's waiters. Wake latency: a few milliseconds.
//! - **Everyone else's** (another replica on the same PostgreSQL, an `import` or
//!   `demo` run by the command line against a running server's database) are seen
//!   by polling: every [`POLL_INTERVAL`], while any clinic has waiters, one query
//!   reads the counters of all watched clinics (`= ANY($1)` on PostgreSQL).
//!
//! Why a bounded poll and not PostgreSQL's LISTEN/NOTIFY (a trigger on the counter
//! row): NOTIFY takes a database-wide lock when a notifying transaction commits,
//! so every group commit of every replica would queue behind every other's, which
//! is the ingest path this server is tuned for (its README's benchmark); it also
//! needs a dedicated connection per replica, a reconnect loop, and a re-read after
//! every reconnect because notifications sent meanwhile are lost, which is the poll
//! anyway. The poll costs one indexed read of at most a few thousand rows per
//! interval per replica, whatever the number of waiters, and covers SQLite's
//! out-of-process writers too. What it costs in latency is at most
//! [`POLL_INTERVAL`] for a write committed through another replica (measured:
//! `benches/waiters.rs`, README); this replica's own writes wake at once.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use clinic_protocol::{Changes, ChangesQuery, MAX_CHANGES_WAIT_SECONDS};
use prometheus::{IntCounter, IntGauge};
use tokio::sync::{Notify, watch};
use tokio::time::MissedTickBehavior;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Clinic, QueryParams};
use crate::limits::{CHANGES_FULL_RETRY_AFTER, LogThrottle};
use crate::store::{CentralStore, StoreError};

/// How often the watched clinics' counters are read for writes this replica did
/// not make itself (see the module's comment for why a poll).
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// The waiters of every clinic, their count and cap, and the refresher that wakes them.
#[derive(Clone)]
pub struct ChangeHub {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn CentralStore>,
    /// One channel per clinic with at least one waiter; the value is the counter.
    clinics: Mutex<HashMap<String, Arc<watch::Sender<i64>>>>,
    /// Watched clinics this replica wrote since the refresher last read them.
    dirty: Mutex<HashSet<String>>,
    wake: Arc<Notify>,
    waiting: AtomicUsize,
    cap: usize,
    gauge: IntGauge,
    refused: IntCounter,
    /// `true` once the server shuts down: every wait ends at once.
    closing: watch::Sender<bool>,
    refresher_started: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    /// Raises `clinic`'s counter to `seq` (a counter never goes back), waking its waiters.
    fn offer(&self, clinic: &str, seq: i64) {
        let sender = lock(&self.clinics).get(clinic).cloned();
        if let Some(sender) = sender {
            raise(&sender, seq);
        }
    }
}

fn raise(sender: &watch::Sender<i64>, seq: i64) {
    sender.send_if_modified(|v| {
        let higher = seq > *v;
        if higher {
            *v = seq;
        }
        higher
    });
}

impl ChangeHub {
    /// At most `cap` waiters at once; `gauge` shows how many wait, `refused` counts those over the cap.
    pub fn new(
        store: Arc<dyn CentralStore>,
        cap: usize,
        gauge: IntGauge,
        refused: IntCounter,
    ) -> Self {
        let (closing, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                store,
                clinics: Mutex::new(HashMap::new()),
                dirty: Mutex::new(HashSet::new()),
                wake: Arc::new(Notify::new()),
                waiting: AtomicUsize::new(0),
                cap,
                gauge,
                refused,
                closing,
                refresher_started: AtomicBool::new(false),
            }),
        }
    }

    /// `clinic` committed a write on this replica: its waiters are woken as soon as
    /// the refresher has read the new counter. Cheap when nobody waits for the clinic.
    pub fn written(&self, clinic: &str) {
        if !lock(&self.inner.clinics).contains_key(clinic) {
            return;
        }
        lock(&self.inner.dirty).insert(clinic.to_owned());
        self.inner.wake.notify_one();
    }

    /// Ends every wait now and refuses new ones at once (shutdown).
    pub fn close(&self) {
        self.inner.closing.send_replace(true);
    }

    /// A place among the waiters for `clinic`, or `None` at the cap.
    fn admit(&self, clinic: &str) -> Option<Waiter> {
        let inner = &self.inner;
        inner
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < inner.cap).then_some(n + 1)
            })
            .ok()?;
        inner.gauge.inc();
        self.start_refresher();
        // Subscribed under the lock: a last waiter leaving counts receivers under it
        // too, so it cannot remove the channel this waiter is about to listen on.
        let (sender, rx) = {
            let mut clinics = lock(&inner.clinics);
            let sender = clinics
                .entry(clinic.to_owned())
                .or_insert_with(|| Arc::new(watch::channel(0).0))
                .clone();
            let rx = sender.subscribe();
            (sender, rx)
        };
        Some(Waiter {
            inner: inner.clone(),
            clinic: clinic.to_owned(),
            sender,
            rx: Some(rx),
        })
    }

    fn start_refresher(&self) {
        if self.inner.refresher_started.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(refresh(
            Arc::downgrade(&self.inner),
            self.inner.wake.clone(),
            self.inner.closing.subscribe(),
        ));
    }
}

/// One waiting request: counted while it lives, its clinic's channel dropped with
/// the clinic's last waiter (also when the client goes away and the request is dropped).
struct Waiter {
    inner: Arc<Inner>,
    clinic: String,
    sender: Arc<watch::Sender<i64>>,
    rx: Option<watch::Receiver<i64>>,
}

impl Waiter {
    /// Waits until the counter is past `after`, `wait` has passed or the server
    /// shuts down; the counter then.
    async fn past(&mut self, after: i64, wait: Duration) -> i64 {
        let mut closing = self.inner.closing.subscribe();
        let Some(rx) = self.rx.as_mut() else {
            return after;
        };
        tokio::select! {
            _ = rx.wait_for(|seq| *seq > after) => {}
            _ = tokio::time::sleep(wait) => {}
            _ = closing.wait_for(|closed| *closed) => {}
        }
        *rx.borrow()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        drop(self.rx.take());
        let mut clinics = lock(&self.inner.clinics);
        // Under the lock, so no new waiter can subscribe between the count and the removal.
        if self.sender.receiver_count() == 0
            && clinics
                .get(&self.clinic)
                .is_some_and(|s| Arc::ptr_eq(s, &self.sender))
        {
            clinics.remove(&self.clinic);
        }
        drop(clinics);
        self.inner.waiting.fetch_sub(1, Ordering::AcqRel);
        self.inner.gauge.dec();
    }
}

/// Reads the counters of the clinics this replica wrote (at once) and of every
/// watched clinic (every [`POLL_INTERVAL`]), and wakes their waiters. Ends with the hub.
async fn refresh(weak: Weak<Inner>, wake: Arc<Notify>, mut closing: watch::Receiver<bool>) {
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let failures = LogThrottle::default();
    loop {
        let polling = tokio::select! {
            () = wake.notified() => false,
            _ = poll.tick() => true,
            _ = closing.wait_for(|closed| *closed) => return,
        };
        let Some(inner) = weak.upgrade() else { return };
        let mut clinics: HashSet<String> = std::mem::take(&mut *lock(&inner.dirty));
        if polling {
            clinics.extend(lock(&inner.clinics).keys().cloned());
        }
        if clinics.is_empty() {
            continue;
        }
        let store = inner.store.clone();
        let ids: Vec<String> = clinics.into_iter().collect();
        match tokio::task::spawn_blocking(move || store.change_counters(&ids)).await {
            Ok(Ok(counters)) => {
                for (clinic, seq) in counters {
                    inner.offer(&clinic, seq);
                }
            }
            Ok(Err(e)) => {
                if let Some(held_back) = failures.ready() {
                    tracing::warn!(error = %e, held_back, "cannot read the clinics' change counters");
                }
            }
            Err(e) => tracing::error!(error = %e, "change counter read panicked"),
        }
    }
}

/// 503 with `Retry-After`: the waiter cap is reached; the device keeps its ticker.
fn full() -> ApiError {
    ApiError::Full {
        message: "too many devices are waiting for changes; retry later",
        retry_after_secs: CHANGES_FULL_RETRY_AFTER.as_secs(),
    }
}

/// `GET /v1/changes`.
pub async fn changes(
    State(state): State<AppState>,
    Clinic(clinic): Clinic,
    QueryParams(q): QueryParams<ChangesQuery>,
) -> Result<Json<Changes>, ApiError> {
    if q.after < 0 {
        return Err(ApiError::BadRequest(
            "after must be 0 or a change number from an earlier answer".into(),
        ));
    }
    let hub = &state.changes;
    let Some(mut waiter) = hub.admit(&clinic) else {
        hub.inner.refused.inc();
        return Err(full());
    };
    // Subscribed before the counter is read: a write committed in between still wakes us.
    let store = state.store.clone();
    let ids = vec![clinic.clone()];
    let counters = tokio::task::spawn_blocking(move || store.change_counters(&ids))
        .await
        .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))??;
    let Some(&(_, now)) = counters.first() else {
        return Err(ApiError::Store(StoreError::UnknownClinic(clinic)));
    };
    raise(&waiter.sender, now);
    let wait = Duration::from_secs(u64::from(q.wait_seconds.min(MAX_CHANGES_WAIT_SECONDS)));
    let seq = if now > q.after {
        now
    } else {
        waiter.past(q.after, wait).await.max(now)
    };
    drop(waiter);
    Ok(Json(Changes { change_seq: seq }))
}
