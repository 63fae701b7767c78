//! Group commit. One writer thread owns ingest: it takes every request waiting
//! on the channel (up to a cap), writes them all in ONE transaction, and only
//! after that commit answers each. One fsync then covers dozens of reports, and
//! a 200 still always means "durably stored".

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::thread;

use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::store::{CentralStore, IngestOutcome, NewReport};

/// Most reports in one transaction: bounds the latency a large commit adds to everyone in it.
pub const MAX_GROUP: usize = 2_048;
/// Requests that may wait for the writer; beyond it senders wait (backpressure, not unbounded memory).
const QUEUE: usize = 4_096;

#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the report writer is unavailable")]
pub struct WriterUnavailable;

type Reply = Result<Vec<IngestOutcome>, WriterUnavailable>;

struct Job {
    reports: Vec<NewReport>,
    reply: oneshot::Sender<Reply>,
}

#[derive(Clone)]
pub struct Ingestor {
    tx: mpsc::Sender<Job>,
}

impl Ingestor {
    /// Starts the writer thread; it ends when the last `Ingestor` clone is dropped.
    pub fn start(store: Arc<dyn CentralStore>, metrics: Arc<Metrics>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        thread::Builder::new()
            .name("report-writer".into())
            .spawn(move || write_loop(store, metrics, rx))
            .expect("spawning the writer thread");
        Self { tx }
    }

    /// Stores `reports` (in one transaction with whatever else is waiting) and answers in order.
    pub async fn submit(&self, reports: Vec<NewReport>) -> Reply {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { reports, reply })
            .await
            .map_err(|_| WriterUnavailable)?;
        answer.await.map_err(|_| WriterUnavailable)?
    }
}

fn write_loop(store: Arc<dyn CentralStore>, metrics: Arc<Metrics>, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        let mut n = jobs[0].reports.len();
        while n < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => {
                    n += job.reports.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let mut all = Vec::with_capacity(n);
        let mut sizes = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            sizes.push(job.reports.len());
            all.extend(job.reports);
            replies.push(job.reply);
        }
        match store.ingest(&all) {
            Ok(outcomes) => {
                metrics.group_commits.fetch_add(1, Relaxed);
                metrics
                    .group_committed_reports
                    .fetch_add(all.len() as u64, Relaxed);
                let mut outcomes = outcomes.into_iter();
                for (size, reply) in sizes.into_iter().zip(replies) {
                    // A caller that went away (client disconnected) still had its report stored.
                    let _ = reply.send(Ok(outcomes.by_ref().take(size).collect()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, reports = all.len(), "group commit failed; nothing stored");
                for reply in replies {
                    let _ = reply.send(Err(WriterUnavailable));
                }
            }
        }
    }
}
