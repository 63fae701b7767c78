//! What is stored: one report, a patient's, those owing a reassessment, the counts
//! per state.

use clinic_domain::PatientId;
use rusqlite::{Connection, OptionalExtension, params};

use super::entry::{ENTRY_COLUMNS, EntryColumns, OutboxState, ReportEntry};
use crate::StoreError;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub queued: u64,
    pub sending: u64,
    pub delivered: u64,
    pub rejected: u64,
}

impl OutboxCounts {
    /// Not yet acknowledged by the server and not set aside.
    pub fn waiting(&self) -> u64 {
        self.queued + self.sending
    }
}

pub fn counts(conn: &Connection) -> Result<OutboxCounts, StoreError> {
    let mut c = OutboxCounts::default();
    let mut stmt = conn.prepare_cached("SELECT state, count(*) AS n FROM outbox GROUP BY state")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, OutboxState>("state")?, r.get::<_, i64>("n")?))
    })?;
    for row in rows {
        let (state, n) = row?;
        let n = n as u64;
        match state {
            OutboxState::Queued => c.queued = n,
            OutboxState::Sending => c.sending = n,
            OutboxState::Delivered => c.delivered = n,
            OutboxState::Rejected => c.rejected = n,
            OutboxState::Superseded => {}
        }
    }
    Ok(c)
}

pub fn get(conn: &Connection, report_id: &str) -> Result<Option<ReportEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} FROM outbox o JOIN pain_reports r ON r.id = o.report_id WHERE r.id = ?1"
    ))?;
    let columns = EntryColumns::of(&stmt)?;
    Ok(stmt
        .query_row([report_id], |r| columns.read(r))
        .optional()?)
}

/// A patient's reports, newest assessment first, each with its delivery state.
pub fn for_patient(
    conn: &Connection,
    patient: &PatientId,
    limit: usize,
) -> Result<Vec<ReportEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} FROM outbox o JOIN pain_reports r ON r.id = o.report_id
         WHERE r.patient_id = ?1 ORDER BY r.assessed_at DESC, r.id DESC LIMIT ?2"
    ))?;
    let columns = EntryColumns::of(&stmt)?;
    let rows = stmt.query_map(params![patient.as_str(), limit as i64], |r| columns.read(r))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Assessments recorded on this device with an intervention whose reassessment is
/// still to be recorded, soonest due first, with the patient's name. A follow-up of
/// the record a correction replaced still counts (the nurse reassessed the patient).
pub fn pending_reassessments(
    conn: &Connection,
    device_id: &str,
    limit: usize,
) -> Result<Vec<(ReportEntry, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS}, p.name AS patient_name FROM pain_reports r
         JOIN outbox o ON o.report_id = r.id JOIN patients p ON p.id = r.patient_id
         WHERE r.reassess_due_at IS NOT NULL AND r.device_id = ?1
           AND NOT EXISTS (SELECT 1 FROM pain_reports n WHERE n.supersedes = r.id)
           AND NOT EXISTS (SELECT 1 FROM pain_reports f WHERE f.follows_up IN (r.id, r.supersedes)
                           AND NOT EXISTS (SELECT 1 FROM pain_reports g WHERE g.supersedes = f.id))
         ORDER BY r.reassess_due_at, r.id LIMIT ?2"
    ))?;
    let columns = EntryColumns::of(&stmt)?;
    let patient_name = stmt.column_index("patient_name")?;
    let rows = stmt.query_map(params![device_id, limit as i64], |r| {
        Ok((columns.read(r)?, r.get(patient_name)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every report, oldest first (exports).
pub fn all(conn: &Connection) -> Result<Vec<ReportEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} FROM outbox o JOIN pain_reports r ON r.id = o.report_id ORDER BY r.id"
    ))?;
    let columns = EntryColumns::of(&stmt)?;
    let rows = stmt.query_map([], |r| columns.read(r))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every report in one state (tests and support tools).
pub fn in_state(conn: &Connection, state: OutboxState) -> Result<Vec<ReportEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} FROM outbox o JOIN pain_reports r ON r.id = o.report_id
         WHERE o.state = ?1 ORDER BY o.report_id"
    ))?;
    let columns = EntryColumns::of(&stmt)?;
    let rows = stmt.query_map([state], |r| columns.read(r))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// True when the patient has reports the server has not acknowledged (queued,
/// sending or rejected): local work a pull must not remove.
pub fn patient_has_pending(conn: &Connection, patient_id: &str) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pain_reports r JOIN outbox o ON o.report_id = r.id
                        WHERE r.patient_id = ?1 AND o.state IN ('queued', 'sending', 'rejected'))",
        [patient_id],
        |r| r.get(0),
    )?)
}
