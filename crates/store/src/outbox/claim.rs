//! The sender's side: claiming queued entries and recording how each attempt ended.

use rusqlite::{Connection, TransactionBehavior, params};

use super::entry::{CLAIMED_COLUMNS, EntryColumns, ReportEntry};
use crate::StoreError;

/// After a crash or restart, requests that were in flight have an unknown outcome:
/// send them again under the same ID, at once. Returns how many were reset.
pub fn requeue_in_flight(conn: &Connection) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE outbox SET state = 'queued', next_attempt_at = 0 WHERE state = 'sending'",
        [],
    )?)
}

/// Takes up to `limit` queued reports due by `now`, oldest first, and marks them
/// `sending` (one attempt more) in the same transaction, before any byte leaves.
///
/// A claim is a lease until `lease_until`: a `sending` entry keeps its end in
/// `next_attempt_at`. A sync dropped between its claim and its verdicts (a
/// cancelled task whose claim still committed on the blocking pool, an engine
/// replaced mid-run) leaves its entries `sending` with nobody to finish them;
/// once their lease has passed, the next claim puts them back in the queue
/// first, so no report waits for the app's next start. The caller's lease must
/// outlast any attempt it can make, so a report still on the wire is never
/// claimed twice (the hospital's original server cannot tell a resend apart).
pub fn claim_batch(
    conn: &mut Connection,
    now: i64,
    limit: usize,
    lease_until: i64,
) -> Result<Vec<ReportEntry>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.prepare_cached(
        "UPDATE outbox SET state = 'queued', next_attempt_at = 0
         WHERE state = 'sending' AND next_attempt_at <= ?1",
    )?
    .execute([now])?;
    let entries = {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {CLAIMED_COLUMNS} FROM outbox o JOIN pain_reports r ON r.id = o.report_id
             WHERE o.state = 'queued' AND o.next_attempt_at <= ?1
             ORDER BY o.report_id LIMIT ?2"
        ))?;
        let columns = EntryColumns::of(&stmt)?;
        let rows = stmt.query_map(params![now, limit as i64], |r| columns.read(r))?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    {
        let mut mark = tx.prepare_cached(
            "UPDATE outbox SET state = 'sending', attempts = attempts + 1, next_attempt_at = ?2
             WHERE report_id = ?1",
        )?;
        for e in &entries {
            mark.execute(params![&e.id, lease_until])?;
        }
    }
    tx.commit()?;
    Ok(entries)
}

/// The server acknowledged these (accepted or duplicate). `server_id` is set when the
/// server stored the report under an ID other than ours.
pub fn mark_delivered(
    conn: &mut Connection,
    delivered: &[(String, Option<String>)],
    now: i64,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(
            "UPDATE outbox SET state = 'delivered', delivered_at = ?2, server_report_id = ?3, last_error = NULL
             WHERE report_id = ?1 AND state IN ('sending', 'queued')",
        )?;
        for (id, server_id) in delivered {
            stmt.execute(params![id, now, server_id])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The server refused these for good: set aside with its reason, never deleted,
/// never in the way of the rest.
pub fn mark_rejected(
    conn: &mut Connection,
    rejected: &[(String, String)],
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(
            "UPDATE outbox SET state = 'rejected', last_error = ?2 WHERE report_id = ?1 AND state IN ('sending', 'queued')",
        )?;
        for (id, reason) in rejected {
            stmt.execute(params![id, reason])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The attempt failed in a way worth retrying: back to `queued`, due at `next_attempt_at`.
pub fn release(
    conn: &mut Connection,
    ids: &[String],
    error: &str,
    next_attempt_at: i64,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(
            "UPDATE outbox SET state = 'queued', last_error = ?2, next_attempt_at = ?3
             WHERE report_id = ?1 AND state = 'sending'",
        )?;
        for id in ids {
            stmt.execute(params![id, error, next_attempt_at])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Puts a rejected report back in the queue (after whatever was wrong was put
/// right), same ID and content. `false` when it was not rejected.
pub fn requeue_rejected(conn: &Connection, report_id: &str) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE outbox SET state = 'queued', next_attempt_at = 0 WHERE report_id = ?1 AND state = 'rejected'",
        [report_id],
    )?;
    Ok(n == 1)
}
