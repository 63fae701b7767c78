//! Writing reports: a new one, or a correction that replaces an earlier one.

use chrono::{DateTime, Utc};
use clinic_domain::{AssessmentDetails, PainScore, PatientId};
use rusqlite::{Connection, TransactionBehavior, params};

use clinic_domain::corrections;

use super::OutboxState;
use crate::StoreError;
use crate::audit::{self, AuditAction, NewAuditEntry};
use crate::column::Text;

/// A report as the nurse recorded it, before it has an ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReport {
    pub patient_id: PatientId,
    pub score: PainScore,
    pub assessed_at: DateTime<Utc>,
    pub recorded_by: String,
    pub device_id: String,
    pub details: AssessmentDetails,
    /// The assessment with an intervention that this one reassesses.
    pub follows_up: Option<String>,
    /// When this one must be reassessed (it records an intervention).
    pub reassess_due_at: Option<DateTime<Utc>>,
}

impl NewReport {
    /// A bare score: no details, no follow-up, nothing due.
    pub fn score(
        patient_id: PatientId,
        score: PainScore,
        assessed_at: DateTime<Utc>,
        recorded_by: &str,
        device_id: &str,
    ) -> Self {
        Self {
            patient_id,
            score,
            assessed_at,
            recorded_by: recorded_by.to_owned(),
            device_id: device_id.to_owned(),
            details: AssessmentDetails::default(),
            follows_up: None,
            reassess_due_at: None,
        }
    }
}

/// Writes the report and its outbox entry in one transaction and returns the new
/// report's ID (a UUIDv7, so IDs sort by creation time and the oldest go first).
pub fn record_report(
    conn: &mut Connection,
    report: &NewReport,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let id = insert_report(&tx, report, None, now)?;
    tx.commit()?;
    Ok(id)
}

/// `correction` is the report this one supersedes and why: part of the row from
/// the start, because a saved row can never be changed afterwards.
fn insert_report(
    tx: &Connection,
    report: &NewReport,
    correction: Option<(&str, &str)>,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let id = uuid::Uuid::now_v7().to_string();
    let correction = correction.map(|(old, reason)| (old, Some(reason)));
    insert_row(tx, &id, report, correction, now.timestamp(), None)?;
    tx.prepare_cached("INSERT INTO outbox (report_id, state, queued_at) VALUES (?1, ?2, ?3)")?
        .execute(params![id, OutboxState::Queued, now.timestamp()])?;
    Ok(id)
}

/// When a received report was stored by the server and pulled here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Receipt {
    pub received_at: i64,
    pub pulled_at: i64,
}

/// Writes one `pain_reports` row (the database adds its trail). `correction` is
/// the report it supersedes and the reason (a received one may come without).
/// `receipt` is set
/// for a report received from the server, which gets no outbox row.
pub(crate) fn insert_row(
    tx: &Connection,
    id: &str,
    report: &NewReport,
    correction: Option<(&str, Option<&str>)>,
    recorded_at: i64,
    receipt: Option<Receipt>,
) -> Result<(), StoreError> {
    let d = &report.details;
    tx.prepare_cached(
        "INSERT INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at, recorded_by, device_id,
                                   supersedes, correction_reason, body_site, activity, note, intervention,
                                   follows_up, reassess_due_at, received_at, pulled_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?
    .execute(params![
        id,
        report.patient_id.as_str(),
        Text(report.score.scale()),
        report.score.value(),
        report.assessed_at.timestamp(),
        recorded_at,
        report.recorded_by,
        report.device_id,
        correction.map(|c| c.0),
        correction.map(|c| c.1),
        d.body_site,
        d.activity.map(Text),
        d.note,
        d.intervention,
        report.follows_up,
        report.reassess_due_at.map(|t| t.timestamp()),
        receipt.map(|r| r.received_at),
        receipt.map(|r| r.pulled_at),
    ])?;
    Ok(())
}

/// Names the other corrections a resolution settles, in the report's transaction.
pub(crate) fn insert_resolutions(
    tx: &Connection,
    id: &str,
    resolves: &[String],
) -> Result<(), StoreError> {
    let mut stmt =
        tx.prepare_cached("INSERT INTO report_resolutions (report_id, resolves) VALUES (?1, ?2)")?;
    for r in resolves {
        stmt.execute(params![id, r])?;
    }
    Ok(())
}

/// After `id` was written: when its record now has more than one live report, the
/// trail of each says so ('conflicting', with the live ones and the shown current),
/// written by this device's system at `now`.
pub(crate) fn note_conflict(tx: &Connection, id: &str, now: i64) -> Result<(), StoreError> {
    let standings = corrections::standings(&super::read::record_links(tx, id)?);
    let Some(s) = standings.get(id).filter(|s| s.conflicting) else {
        return Ok(());
    };
    let device =
        crate::settings::get(tx, crate::settings::DEVICE_ID)?.unwrap_or_else(|| "unknown".into());
    let detail = format!(
        "{{\"live\":[{}],\"current\":\"{}\"}}",
        s.record_live
            .iter()
            .map(|l| format!("\"{l}\""))
            .collect::<Vec<_>>()
            .join(","),
        s.record_live[0]
    );
    for live in &s.record_live {
        audit::append(
            tx,
            &NewAuditEntry {
                at: now,
                actor: "system",
                device_id: &device,
                action: AuditAction::Conflicting,
                report_id: Some(live),
                detail: Some(&detail),
            },
        )?;
    }
    Ok(())
}

/// Replaces a report by a corrected one, in one transaction: the new report (new
/// ID, queued) names the old one and the reason; the old one is kept unchanged. A
/// refused old one stops waiting (`superseded`); one delivered or still queued
/// keeps its state, so the server gets both and sees the second replace the first.
///
/// `None` when `old_id` is no longer live (the caller checked; this is the race).
pub fn correct(
    conn: &mut Connection,
    old_id: &str,
    corrected: &NewReport,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    resolve(conn, old_id, corrected, reason, &[], now)
}

/// [`correct`] that also settles a conflicting record: `old_id` is its shown
/// current report and `resolves` its other live ones
/// (`clinic_domain::corrections::check_resolution`, checked again here in the
/// transaction). With `resolves` empty it is a plain correction. `None` when the
/// record changed since the caller checked (the race).
pub fn resolve(
    conn: &mut Connection,
    old_id: &str,
    corrected: &NewReport,
    reason: &str,
    resolves: &[String],
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let standings = super::read::standings(&tx, corrected.patient_id.as_str())?;
    let Some(target) = standings.get(old_id) else {
        return Ok(None);
    };
    let allowed = if resolves.is_empty() {
        target.live
    } else {
        corrections::check_resolution(target, resolves).is_ok()
    };
    if !allowed {
        return Ok(None);
    }
    tx.execute(
        "UPDATE outbox SET state = 'superseded' WHERE report_id = ?1 AND state = 'rejected'",
        [old_id],
    )?;
    let id = insert_report(&tx, corrected, Some((old_id, reason)), now)?;
    insert_resolutions(&tx, &id, resolves)?;
    note_conflict(&tx, &id, now.timestamp())?;
    tx.commit()?;
    Ok(Some(id))
}
