//! What is stored: one report, a patient's, those owing a reassessment, the counts
//! per state.

use std::collections::HashMap;

use clinic_domain::PatientId;
use clinic_domain::corrections::{self, Link, Standing};
use rusqlite::{Connection, OptionalExtension, params};

use super::entry::{ENTRY_COLUMNS, EntryColumns, OutboxState, ReportEntry, split_ids};
use crate::StoreError;
use crate::standing_sql::{LIVE, OWED};

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
            OutboxState::Superseded | OutboxState::Received => {}
        }
    }
    Ok(c)
}

/// What the conflict rule reads of one patient's reports (every report, so whole
/// records: a correction and what it supersedes or resolves are the same patient's).
pub fn links(conn: &Connection, patient_id: &str) -> Result<Vec<Link<String>>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.id, r.supersedes, r.recorded_at,
                (SELECT group_concat(x.resolves, ',') FROM report_resolutions x WHERE x.report_id = r.id) AS resolves
         FROM pain_reports r WHERE r.patient_id = ?1",
    )?;
    let rows = stmt.query_map([patient_id], |r| {
        Ok(Link {
            id: r.get("id")?,
            supersedes: r.get("supersedes")?,
            recorded_at: r.get("recorded_at")?,
            resolves: split_ids(r.get("resolves")?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What the conflict rule reads of the record `report_id` belongs to: the top of
/// its chain (followed up `supersedes`) and every report below it. Cheaper than
/// [`links`] for one record of a patient with many; the same outcome, since a
/// record's reports resolve only reports of the same record (the store checks).
pub fn record_links(conn: &Connection, report_id: &str) -> Result<Vec<Link<String>>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE
           up(id, supersedes, depth) AS (
             SELECT id, supersedes, 0 FROM pain_reports WHERE id = ?1
             UNION ALL
             SELECT p.id, p.supersedes, up.depth + 1 FROM pain_reports p JOIN up ON p.id = up.supersedes),
           tree(id) AS (
             SELECT * FROM (SELECT id FROM up ORDER BY depth DESC LIMIT 1)
             UNION
             SELECT p.id FROM pain_reports p JOIN tree t ON p.supersedes = t.id)
         SELECT r.id, r.supersedes, r.recorded_at,
                (SELECT group_concat(x.resolves, ',') FROM report_resolutions x WHERE x.report_id = r.id) AS resolves
         FROM tree JOIN pain_reports r ON r.id = tree.id",
    )?;
    let rows = stmt.query_map([report_id], |r| {
        Ok(Link {
            id: r.get(0)?,
            supersedes: r.get(1)?,
            recorded_at: r.get(2)?,
            resolves: split_ids(r.get(3)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The standing of every report of one patient (`clinic_domain::corrections`).
pub fn standings(
    conn: &Connection,
    patient_id: &str,
) -> Result<HashMap<String, Standing<String>>, StoreError> {
    Ok(corrections::standings(&links(conn, patient_id)?))
}

/// Fills each entry's standing from its patient's whole record.
fn with_standings(
    conn: &Connection,
    mut entries: Vec<ReportEntry>,
) -> Result<Vec<ReportEntry>, StoreError> {
    let mut by_patient: HashMap<String, HashMap<String, Standing<String>>> = HashMap::new();
    for e in &mut entries {
        if !by_patient.contains_key(&e.patient_id) {
            let s = standings(conn, &e.patient_id)?;
            by_patient.insert(e.patient_id.clone(), s);
        }
        e.standing = by_patient[&e.patient_id].get(&e.id).cloned();
    }
    Ok(entries)
}

pub fn get(conn: &Connection, report_id: &str) -> Result<Option<ReportEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} FROM pain_reports r LEFT JOIN outbox o ON o.report_id = r.id WHERE r.id = ?1"
    ))?;
    let columns = EntryColumns::of(&stmt)?;
    let found = stmt
        .query_row([report_id], |r| columns.read(r))
        .optional()?;
    Ok(match found {
        Some(e) => with_standings(conn, vec![e])?.pop(),
        None => None,
    })
}

/// A patient's reports, newest assessment first, each with its delivery state and
/// its standing in its record; received reports included.
pub fn for_patient(
    conn: &Connection,
    patient: &PatientId,
    limit: usize,
) -> Result<Vec<ReportEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} FROM pain_reports r LEFT JOIN outbox o ON o.report_id = r.id
         WHERE r.patient_id = ?1 ORDER BY r.assessed_at DESC, r.id DESC LIMIT ?2"
    ))?;
    let columns = EntryColumns::of(&stmt)?;
    let rows = stmt.query_map(params![patient.as_str(), limit as i64], |r| columns.read(r))?;
    with_standings(conn, rows.collect::<Result<_, _>>()?)
}

/// Assessments with an intervention whose reassessment is still to be recorded,
/// recorded on any device of the clinic, soonest due first, with the patient's
/// name. A follow-up of the record a correction replaced still counts (the nurse
/// reassessed the patient), and one from any device settles it. Only the shown
/// current report of a record is listed: a conflicting record owes one reassessment.
pub fn pending_reassessments(
    conn: &Connection,
    limit: usize,
) -> Result<Vec<(ReportEntry, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS}, p.name AS patient_name FROM pain_reports r
         LEFT JOIN outbox o ON o.report_id = r.id JOIN patients p ON p.id = r.patient_id
         WHERE r.reassess_due_at IS NOT NULL AND {LIVE} AND {OWED}
         ORDER BY r.reassess_due_at, r.id LIMIT ?1"
    ))?;
    let columns = EntryColumns::of(&stmt)?;
    let patient_name = stmt.column_index("patient_name")?;
    let rows = stmt.query_map(params![limit as i64], |r| {
        Ok((columns.read(r)?, r.get::<_, String>(patient_name)?))
    })?;
    let (entries, names): (Vec<ReportEntry>, Vec<String>) =
        rows.collect::<Result<Vec<_>, _>>()?.into_iter().unzip();
    Ok(with_standings(conn, entries)?
        .into_iter()
        .zip(names)
        .filter(|(e, _)| e.standing.as_ref().is_none_or(|s| s.current))
        .collect())
}

/// Every report, oldest first (exports), received ones included.
pub fn all(conn: &Connection) -> Result<Vec<ReportEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} FROM pain_reports r LEFT JOIN outbox o ON o.report_id = r.id ORDER BY r.id"
    ))?;
    let columns = EntryColumns::of(&stmt)?;
    let rows = stmt.query_map([], |r| columns.read(r))?;
    with_standings(conn, rows.collect::<Result<_, _>>()?)
}

/// Every report in one outbox state (tests and support tools): this device's own.
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
