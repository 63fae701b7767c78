//! Group commit. One writer thread owns ingest: it takes every request waiting
//! on the channel (up to a cap), writes them all in ONE transaction, and only
//! after that commit answers each. One fsync then covers dozens of reports, and
//! a 200 still always means "durably stored".
//!
//! One bad report must not fail the others that share its transaction: when a
//! group commit fails, each report is written again alone, and only the ones that
//! fail alone too are answered as not stored. If every one fails alone, the store
//! itself is failing and everyone gets "unavailable".
//!
//! A supervisor thread watches the writer: if it dies, [`Ingestor::is_healthy`]
//! is false (so `/healthz` answers 503), the death is logged, and after
//! [`Limits::writer_restart_delay`](crate::limits::Limits) a new writer takes over
//! the same queue. Requests caught in the dead writer's group get "unavailable".

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::changes::ChangeHub;
use crate::metrics::Metrics;
use crate::store::{CentralStore, IngestOutcome, NewReport};

/// Most reports in one transaction: bounds the latency a large commit adds to everyone in it.
pub const MAX_GROUP: usize = 2_048;
/// Requests that may wait for the writer; beyond it senders wait (backpressure, not unbounded memory).
const QUEUE: usize = 4_096;

#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the report writer is unavailable")]
pub struct WriterUnavailable;

/// This report failed to store on its own while others of its group were stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server could not store this report")]
pub struct NotStored;

/// One answer per submitted report, in order.
pub type Reply = Result<Vec<Result<IngestOutcome, NotStored>>, WriterUnavailable>;

enum Job {
    Reports {
        reports: Vec<NewReport>,
        reply: oneshot::Sender<Reply>,
    },
    /// Makes the writer panic, so tests can show it is noticed and replaced.
    Crash,
}

#[derive(Clone)]
pub struct Ingestor {
    tx: mpsc::Sender<Job>,
    healthy: Arc<AtomicBool>,
}

impl Ingestor {
    /// Starts the writer (and its supervisor); both end when the last `Ingestor` clone
    /// is dropped. After each commit the clinics it wrote are `changes.written`.
    pub fn start(
        store: Arc<dyn CentralStore>,
        metrics: Arc<Metrics>,
        restart_delay: Duration,
        changes: ChangeHub,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let healthy = Arc::new(AtomicBool::new(true));
        let queue = Arc::new(Mutex::new(rx));
        let supervisor_healthy = healthy.clone();
        thread::Builder::new()
            .name("report-writer-supervisor".into())
            .spawn(move || {
                supervise(
                    store,
                    metrics,
                    queue,
                    supervisor_healthy,
                    restart_delay,
                    changes,
                )
            })
            .expect("spawning the writer's supervisor");
        Self { tx, healthy }
    }

    /// False while the writer is down (between its death and its restart).
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Relaxed) && !self.tx.is_closed()
    }

    /// Stores `reports` (in one transaction with whatever else is waiting) and answers in order.
    pub async fn submit(&self, reports: Vec<NewReport>) -> Reply {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job::Reports { reports, reply })
            .await
            .map_err(|_| WriterUnavailable)?;
        answer.await.map_err(|_| WriterUnavailable)?
    }

    /// Kills the writer thread as a crash would. For tests of the supervisor only.
    #[doc(hidden)]
    pub async fn crash_writer_for_tests(&self) {
        let _ = self.tx.send(Job::Crash).await;
    }
}

fn supervise(
    store: Arc<dyn CentralStore>,
    metrics: Arc<Metrics>,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    healthy: Arc<AtomicBool>,
    restart_delay: Duration,
    changes: ChangeHub,
) {
    loop {
        let (writer_store, writer_metrics, queue) = (store.clone(), metrics.clone(), queue.clone());
        let writer_changes = changes.clone();
        let writer = thread::Builder::new()
            .name("report-writer".into())
            .spawn(move || {
                // A writer that panicked poisoned the lock; the queue itself is intact.
                let mut rx = queue.lock().unwrap_or_else(|e| e.into_inner());
                write_loop(
                    writer_store.as_ref(),
                    &writer_metrics,
                    &writer_changes,
                    &mut rx,
                );
            });
        let ended = match writer {
            Ok(handle) => handle.join(),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the report writer; retrying");
                Err(Box::new(e) as Box<dyn std::any::Any + Send>)
            }
        };
        if ended.is_ok() {
            return; // the queue closed: the server is shutting down
        }
        healthy.store(false, Relaxed);
        metrics.writer_restarts.inc();
        tracing::error!(
            restart_in_ms = restart_delay.as_millis() as u64,
            "the report writer died; reports get 503 until it is restarted"
        );
        thread::sleep(restart_delay);
        healthy.store(true, Relaxed);
        tracing::info!("report writer restarted");
    }
}

fn write_loop(
    store: &dyn CentralStore,
    metrics: &Metrics,
    changes: &ChangeHub,
    rx: &mut mpsc::Receiver<Job>,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = Vec::new();
        let mut n = 0;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Reports { reports, reply } => {
                    n += reports.len();
                    jobs.push((reports, reply));
                }
                Job::Crash => panic!("report writer crash requested by a test"),
            }
            if n < MAX_GROUP {
                next = rx.try_recv().ok();
            }
        }
        let sizes: Vec<usize> = jobs.iter().map(|(r, _)| r.len()).collect();
        let mut all = Vec::with_capacity(n);
        let mut replies = Vec::with_capacity(jobs.len());
        for (reports, reply) in jobs {
            all.extend(reports);
            replies.push(reply);
        }
        let outcomes = commit(store, metrics, &all);
        match outcomes {
            Some(outcomes) => {
                // Committed: the clinics' waiting devices may pull (before the answers,
                // so a device's own push and its next long poll cannot pass the wake).
                let mut woken = std::collections::HashSet::new();
                for report in &all {
                    if woken.insert(report.clinic_id.as_str()) {
                        changes.written(&report.clinic_id);
                    }
                }
                let mut outcomes = outcomes.into_iter();
                for (size, reply) in sizes.into_iter().zip(replies) {
                    // A caller that went away (client disconnected) still had its report stored.
                    let _ = reply.send(Ok(outcomes.by_ref().take(size).collect()));
                }
            }
            None => {
                for reply in replies {
                    let _ = reply.send(Err(WriterUnavailable));
                }
            }
        }
    }
}

/// The group in one transaction; if that fails, each report alone. `None` when
/// nothing could be stored at all.
fn commit(
    store: &dyn CentralStore,
    metrics: &Metrics,
    all: &[NewReport],
) -> Option<Vec<Result<IngestOutcome, NotStored>>> {
    match store.ingest(all) {
        Ok(outcomes) => {
            metrics.group_commits.inc();
            metrics.group_committed_reports.inc_by(all.len() as u64);
            return Some(outcomes.into_iter().map(Ok).collect());
        }
        Err(e) if all.len() == 1 => {
            tracing::error!(error = %e, "storing a report failed; nothing stored");
            return None;
        }
        Err(e) => {
            tracing::error!(error = %e, reports = all.len(), "group commit failed; writing each report alone");
        }
    }
    let mut stored_any = false;
    let alone: Vec<Result<IngestOutcome, NotStored>> = all
        .iter()
        .map(|report| match store.ingest(std::slice::from_ref(report)) {
            Ok(mut outcome) => {
                metrics.group_commits.inc();
                metrics.group_committed_reports.inc();
                stored_any = true;
                outcome.pop().ok_or(NotStored)
            }
            Err(e) => {
                // The clinic and report IDs identify the row for an operator; no patient data.
                tracing::error!(error = %e, clinic = %report.clinic_id, report_id = %report.report_id,
                    "a report failed to store on its own");
                Err(NotStored)
            }
        })
        .collect();
    if !stored_any {
        tracing::error!(
            reports = all.len(),
            "every report failed alone too: the store is failing"
        );
        return None;
    }
    let not_stored = alone.iter().filter(|o| o.is_err()).count();
    metrics.reports_not_stored.inc_by(not_stored as u64);
    Some(alone)
}
