//! Push: deliver the outbox. Entries are marked `sending` before a request leaves
//! and become `delivered` only on the server's proof that it stored them
//! (`crate::proof`); anything else sends
//! them back to `queued` (same ID) or, when the server refused that one report for
//! good, sets it aside as `rejected` with the reason.

use std::collections::HashMap;

use clinic_protocol::{BatchItemStatus, BatchResponse, ReportSubmission};
use clinic_store::outbox::{self, ReportEntry};
use futures_util::StreamExt;
use futures_util::stream::{self, FuturesOrdered};

use crate::context::Context;
use crate::{ErrorClass, SyncError, Trace};

/// What one push delivered and set aside.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushCounts {
    pub delivered: u64,
    pub rejected: u64,
}

pub(crate) fn submission(e: &ReportEntry) -> Result<ReportSubmission, SyncError> {
    Ok(ReportSubmission {
        report_id: uuid::Uuid::parse_str(&e.id)
            .map_err(|err| SyncError::Internal(format!("stored report ID: {err}")))?,
        patient_id: e.patient_id.clone(),
        pain_score: e.score,
        // Fixed at recording time: every retry must carry identical content, or the
        // server's idempotency check would call it a conflict.
        submit_time: e.recorded_at,
        scale: e.scale,
        recorded_by: Some(e.recorded_by.clone()),
        device_id: Some(e.device_id.clone()),
        supersedes: e
            .supersedes
            .as_deref()
            .map(uuid::Uuid::parse_str)
            .transpose()
            .map_err(|err| SyncError::Internal(format!("stored supersedes ID: {err}")))?,
        reason: e.correction_reason.clone(),
        assessed_at: Some(e.assessed_at),
        details: e.details.clone(),
        follows_up: e
            .follows_up
            .as_deref()
            .map(uuid::Uuid::parse_str)
            .transpose()
            .map_err(|err| SyncError::Internal(format!("stored follow-up ID: {err}")))?,
        resolves: e
            .resolves
            .iter()
            .map(|id| uuid::Uuid::parse_str(id))
            .collect::<Result<_, _>>()
            .map_err(|err| SyncError::Internal(format!("stored resolves ID: {err}")))?,
    })
}

/// The outcome of one batch or group of singles, applied to the store in one go.
#[derive(Default)]
struct Verdicts {
    delivered: Vec<(String, Option<String>)>,
    rejected: Vec<(String, String)>,
    retry: Vec<String>,
    /// The first failure worth reporting (auth beats transient).
    error: Option<SyncError>,
}

impl Verdicts {
    fn fail(&mut self, id: String, e: SyncError) {
        self.retry.push(id);
        keep_worst(&mut self.error, e);
    }
}

/// Sends the outbox until it is empty or a failure stops the run.
///
/// Batches are pipelined: up to `batches_in_flight` are on the wire at once, and
/// their verdicts are applied in the order they were claimed. After a failure no
/// new batch is claimed, but every batch already sent still gets its verdicts, so
/// no report is left `sending` until the next start.
pub(crate) async fn run(ctx: &Context, trace: &Trace) -> Result<PushCounts, SyncError> {
    let mut counts = PushCounts::default();
    let mut in_flight = FuturesOrdered::new();
    let mut outbox_empty = false;
    let mut failure: Option<SyncError> = None;
    loop {
        while !outbox_empty && failure.is_none() && in_flight.len() < depth(ctx) {
            let single = ctx.single_post_mode();
            let limit = if single {
                ctx.config.single_chunk
            } else {
                ctx.config.batch_size
            };
            let now = chrono::Utc::now().timestamp();
            let lease = i64::try_from(ctx.config.sending_lease().as_secs()).unwrap_or(i64::MAX);
            let lease_until = now.saturating_add(lease.max(1));
            match ctx
                .store(move |db| db.write(|c| outbox::claim_batch(c, now, limit, lease_until)))
                .await
            {
                Ok(batch) if batch.is_empty() => outbox_empty = true,
                Ok(batch) => in_flight.push_back(send(ctx, batch, single, trace)),
                Err(e) => keep_worst(&mut failure, e),
            }
        }
        let Some(verdicts) = in_flight.next().await else {
            return match failure {
                Some(e) => Err(e),
                None => Ok(counts),
            };
        };
        counts.delivered += verdicts.delivered.len() as u64;
        counts.rejected += verdicts.rejected.len() as u64;
        let proven = !verdicts.delivered.is_empty();
        match apply(ctx, verdicts).await {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => keep_worst(&mut failure, e),
        }
        if proven && let Err(e) = ctx.remember_upload().await {
            keep_worst(&mut failure, e);
        }
    }
}

/// Batches on the wire at once. Single POSTs are already concurrent within a
/// group, and a mode being learned must see one group's outcome before the next.
fn depth(ctx: &Context) -> usize {
    if ctx.single_post_mode() {
        1
    } else {
        ctx.config.batches_in_flight.max(1)
    }
}

/// The failure a run reports: the first, unless a later one is about credentials
/// (which stops the loop until a person acts, so it must not be hidden).
fn keep_worst(failure: &mut Option<SyncError>, e: SyncError) {
    let replace = match failure {
        None => true,
        Some(prev) => e.class() == ErrorClass::Auth && prev.class() != ErrorClass::Auth,
    };
    if replace {
        *failure = Some(e);
    }
}

/// One claimed group on the wire: a batch, or single POSTs in single-POST mode.
async fn send(ctx: &Context, batch: Vec<ReportEntry>, single: bool, trace: &Trace) -> Verdicts {
    if single {
        return send_singles(ctx, &batch, trace).await;
    }
    match send_batch(ctx, &batch, trace).await {
        Ok(v) => v,
        Err(SyncError::NotOffered { status }) => {
            // A missing route alone proves nothing (a proxy answers 404
            // too): single POSTs become the mode only once one of them
            // brought back proof that the server stored the report.
            let v = send_singles(ctx, &batch, trace).await;
            if !v.delivered.is_empty() {
                tracing::info!(
                    status,
                    "the server has no batch route: sending reports one by one"
                );
                ctx.learn_single_post_mode();
            }
            v
        }
        // The batch as a whole was refused (e.g. too large, malformed):
        // let each report get its own verdict instead of refusing all.
        Err(e) if e.class() == ErrorClass::Permanent => {
            tracing::warn!(error = %e, "batch refused as a whole; sending its reports one by one");
            send_singles(ctx, &batch, trace).await
        }
        Err(e) => Verdicts {
            retry: batch.iter().map(|b| b.id.clone()).collect(),
            error: Some(e),
            ..Default::default()
        },
    }
}

async fn send_batch(
    ctx: &Context,
    batch: &[ReportEntry],
    trace: &Trace,
) -> Result<Verdicts, SyncError> {
    let subs = batch
        .iter()
        .map(submission)
        .collect::<Result<Vec<_>, _>>()?;
    let resp = ctx.client.post_batch(&subs, trace).await?;
    Ok(batch_verdicts(batch, resp))
}

/// The hospital's single-report route, a few requests in flight at once.
async fn send_singles(ctx: &Context, batch: &[ReportEntry], trace: &Trace) -> Verdicts {
    // Owned inputs: each request future must be `Send + 'static`-friendly for
    // the runtime (borrowing across `buffer_unordered` trips a higher-ranked `Send`).
    let jobs: Vec<_> = batch
        .iter()
        .map(|e| {
            let (client, trace, id, sub) = (
                ctx.client.clone(),
                trace.clone(),
                e.id.clone(),
                submission(e),
            );
            async move {
                let r = match sub {
                    Ok(s) => client.post_single(&s, &trace).await,
                    Err(err) => Err(err),
                };
                (id, r)
            }
        })
        .collect();
    let results: Vec<(String, Result<crate::proof::Stored, SyncError>)> = stream::iter(jobs)
        .buffer_unordered(ctx.config.single_concurrency.max(1))
        .collect()
        .await;
    let mut v = Verdicts::default();
    for (id, result) in results {
        match result {
            Ok(stored) => v.delivered.push((id, stored.server_report_id)),
            Err(e) if e.class() == ErrorClass::Permanent => {
                let reason = e.to_string();
                v.rejected.push((id, reason));
            }
            Err(e) => v.fail(id, e),
        }
    }
    v
}

async fn apply(ctx: &Context, v: Verdicts) -> Result<Option<SyncError>, SyncError> {
    let now = chrono::Utc::now().timestamp();
    let detail = v.error.as_ref().map(|e| e.to_string()).unwrap_or_default();
    let Verdicts {
        delivered,
        rejected,
        retry,
        error,
    } = v;
    ctx.store(move |db| {
        db.write(|c| {
            if !delivered.is_empty() {
                outbox::mark_delivered(c, &delivered, now)?;
            }
            if !rejected.is_empty() {
                outbox::mark_rejected(c, &rejected)?;
            }
            if !retry.is_empty() {
                outbox::release(c, &retry, &detail, 0)?;
            }
            Ok(())
        })
    })
    .await?;
    Ok(error)
}

fn batch_verdicts(batch: &[ReportEntry], resp: BatchResponse) -> Verdicts {
    let mut by_id: HashMap<String, (BatchItemStatus, Option<String>)> = HashMap::new();
    for r in resp.results {
        if let Some(id) = r.report_id {
            by_id.insert(id.to_ascii_lowercase(), (r.status, r.reason));
        }
    }
    let mut v = Verdicts::default();
    for e in batch {
        match by_id.remove(&e.id) {
            Some((BatchItemStatus::Accepted | BatchItemStatus::Duplicate, _)) => {
                v.delivered.push((e.id.clone(), None))
            }
            Some((BatchItemStatus::Rejected, reason)) => v.rejected.push((
                e.id.clone(),
                reason.unwrap_or_else(|| "rejected by the server".to_owned()),
            )),
            // No verdict for it: not acknowledged, so it stays in the queue.
            None => v.fail(
                e.id.clone(),
                SyncError::Protocol("the batch answer left a report out".into()),
            ),
        }
    }
    v
}
