//! Writing reports: a new one, or a correction that replaces an earlier one.

use chrono::{DateTime, Utc};
use clinic_domain::{AssessmentDetails, PainScore, PatientId};
use rusqlite::{Connection, TransactionBehavior, params};

use super::OutboxState;
use crate::StoreError;
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
    let d = &report.details;
    tx.prepare_cached(
        "INSERT INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at, recorded_by, device_id,
                                   supersedes, correction_reason, body_site, activity, note, intervention,
                                   follows_up, reassess_due_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        id,
        report.patient_id.as_str(),
        Text(report.score.scale()),
        report.score.value(),
        report.assessed_at.timestamp(),
        now.timestamp(),
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
    ])?;
    tx.prepare_cached("INSERT INTO outbox (report_id, state, queued_at) VALUES (?1, ?2, ?3)")?
        .execute(params![id, OutboxState::Queued, now.timestamp()])?;
    Ok(id)
}

/// Replaces a report by a corrected one, in one transaction: the new report (new
/// ID, queued) names the old one and the reason; the old one is kept unchanged. A
/// refused old one stops waiting (`superseded`); one delivered or still queued
/// keeps its state, so the server gets both and sees the second replace the first.
/// `None` when `old_id` was already corrected (the caller checked; this is the race).
pub fn correct(
    conn: &mut Connection,
    old_id: &str,
    corrected: &NewReport,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let already: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM pain_reports WHERE supersedes = ?1)",
        [old_id],
        |r| r.get(0),
    )?;
    if already {
        return Ok(None);
    }
    tx.execute(
        "UPDATE outbox SET state = 'superseded' WHERE report_id = ?1 AND state = 'rejected'",
        [old_id],
    )?;
    let id = insert_report(&tx, corrected, Some((old_id, reason)), now)?;
    tx.commit()?;
    Ok(Some(id))
}
