//! Pain reports and their outbox: what the sync engine must deliver, and where each
//! report stands (queued, sending, delivered, rejected).
//!
//! A report and its outbox entry are written in one transaction, with a UUIDv7 made
//! there and never regenerated: that ID is the server's idempotency key, so every
//! retry (after a timeout, a crash, a lost answer) is the same report.

use chrono::{DateTime, Utc};
use clinic_domain::{Activity, AssessmentDetails, PainScale, PainScore, PatientId};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::StoreError;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxState {
    Queued,
    Sending,
    Delivered,
    Rejected,
    /// A rejected report replaced by a correction; kept, no longer waiting.
    Superseded,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::Sending => "sending",
            OutboxState::Delivered => "delivered",
            OutboxState::Rejected => "rejected",
            OutboxState::Superseded => "superseded",
        }
    }
    fn parse(raw: &str) -> Result<Self, StoreError> {
        Ok(match raw {
            "queued" => OutboxState::Queued,
            "sending" => OutboxState::Sending,
            "delivered" => OutboxState::Delivered,
            "rejected" => OutboxState::Rejected,
            "superseded" => OutboxState::Superseded,
            other => return Err(StoreError::CorruptRow(format!("outbox state '{other}'"))),
        })
    }
}

/// A stored report with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportEntry {
    pub id: String,
    pub patient_id: String,
    pub scale: PainScale,
    pub score: i64,
    pub assessed_at: i64,
    pub recorded_at: i64,
    pub recorded_by: String,
    pub device_id: String,
    pub state: OutboxState,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub server_report_id: Option<String>,
    pub delivered_at: Option<i64>,
    /// The report this one corrects, and why.
    pub supersedes: Option<String>,
    pub correction_reason: Option<String>,
    pub details: AssessmentDetails,
    pub follows_up: Option<String>,
    pub reassess_due_at: Option<i64>,
    /// The correction that replaced this report, when one did.
    pub superseded_by: Option<String>,
    /// A current (not superseded) reassessment that follows this one up.
    pub followed_up_by: Option<String>,
}

macro_rules! report_columns {
    () => {
        "r.id, r.patient_id, r.scale, r.score, r.assessed_at, r.recorded_at, r.recorded_by,
         r.device_id, o.state, o.attempts, o.last_error, o.server_report_id, o.delivered_at, r.supersedes,
         r.correction_reason, r.body_site, r.activity, r.note, r.intervention, r.follows_up, r.reassess_due_at"
    };
}

/// A report with what happened to it since: the correction that replaced it and a
/// current reassessment that followed it up.
const ENTRY_COLUMNS: &str = concat!(
    report_columns!(),
    ", (SELECT n.id FROM pain_reports n WHERE n.supersedes = r.id),
     (SELECT f.id FROM pain_reports f WHERE f.follows_up IN (r.id, r.supersedes)
        AND NOT EXISTS (SELECT 1 FROM pain_reports g WHERE g.supersedes = f.id) ORDER BY f.id LIMIT 1)"
);

/// What sending needs: the report as recorded. The sender claims thousands a
/// second, and the two look-ups above would be wasted on it.
const SEND_COLUMNS: &str = concat!(report_columns!(), ", NULL, NULL");

fn entry_from_row(r: &Row<'_>) -> rusqlite::Result<Result<ReportEntry, StoreError>> {
    let scale: String = r.get(2)?;
    let state: String = r.get(8)?;
    let entry = ReportEntry {
        id: r.get(0)?,
        patient_id: r.get(1)?,
        scale: PainScale::Nrs,
        score: r.get(3)?,
        assessed_at: r.get(4)?,
        recorded_at: r.get(5)?,
        recorded_by: r.get(6)?,
        device_id: r.get(7)?,
        state: OutboxState::Queued,
        attempts: r.get(9)?,
        last_error: r.get(10)?,
        server_report_id: r.get(11)?,
        delivered_at: r.get(12)?,
        supersedes: r.get(13)?,
        correction_reason: r.get(14)?,
        details: AssessmentDetails {
            body_site: r.get(15)?,
            activity: None,
            note: r.get(17)?,
            intervention: r.get(18)?,
        },
        follows_up: r.get(19)?,
        reassess_due_at: r.get(20)?,
        superseded_by: r.get(21)?,
        followed_up_by: r.get(22)?,
    };
    let activity: Option<String> = r.get(16)?;
    Ok((|| {
        let activity = activity
            .as_deref()
            .map(Activity::parse)
            .transpose()
            .map_err(|e| StoreError::CorruptRow(e.to_string()))?;
        Ok(ReportEntry {
            scale: PainScale::parse(&scale).map_err(|e| StoreError::CorruptRow(e.to_string()))?,
            state: OutboxState::parse(&state)?,
            details: AssessmentDetails {
                activity,
                ..entry.details.clone()
            },
            ..entry
        })
    })())
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
        report.score.scale().as_str(),
        report.score.value(),
        report.assessed_at.timestamp(),
        now.timestamp(),
        report.recorded_by,
        report.device_id,
        correction.map(|c| c.0),
        correction.map(|c| c.1),
        d.body_site,
        d.activity.map(Activity::as_str),
        d.note,
        d.intervention,
        report.follows_up,
        report.reassess_due_at.map(|t| t.timestamp()),
    ])?;
    tx.prepare_cached(
        "INSERT INTO outbox (report_id, state, queued_at) VALUES (?1, 'queued', ?2)",
    )?
    .execute(params![id, now.timestamp()])?;
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

/// After a crash or restart, requests that were in flight have an unknown outcome:
/// send them again under the same ID. Returns how many were reset.
pub fn requeue_in_flight(conn: &Connection) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE outbox SET state = 'queued' WHERE state = 'sending'",
        [],
    )?)
}

/// Takes up to `limit` queued reports due by `now`, oldest first, and marks them
/// `sending` (one attempt more) in the same transaction, before any byte leaves.
pub fn claim_batch(
    conn: &mut Connection,
    now: i64,
    limit: usize,
) -> Result<Vec<ReportEntry>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let entries = {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {SEND_COLUMNS} FROM outbox o JOIN pain_reports r ON r.id = o.report_id
             WHERE o.state = 'queued' AND o.next_attempt_at <= ?1
             ORDER BY o.report_id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![now, limit as i64], entry_from_row)?;
        rows.map(|r| r?).collect::<Result<Vec<_>, _>>()?
    };
    {
        let mut mark = tx.prepare_cached(
            "UPDATE outbox SET state = 'sending', attempts = attempts + 1 WHERE report_id = ?1",
        )?;
        for e in &entries {
            mark.execute([&e.id])?;
        }
    }
    tx.commit()?;
    Ok(entries
        .into_iter()
        .map(|e| ReportEntry {
            state: OutboxState::Sending,
            attempts: e.attempts + 1,
            ..e
        })
        .collect())
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
    let mut stmt = conn.prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (state, n) = row?;
        let n = n as u64;
        match OutboxState::parse(&state)? {
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
    conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} FROM outbox o JOIN pain_reports r ON r.id = o.report_id WHERE r.id = ?1"
    ))?
    .query_row([report_id], entry_from_row)
    .optional()?
    .transpose()
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
    let rows = stmt.query_map(params![patient.as_str(), limit as i64], entry_from_row)?;
    rows.map(|r| r?).collect()
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
        "SELECT {ENTRY_COLUMNS}, p.name FROM pain_reports r
         JOIN outbox o ON o.report_id = r.id JOIN patients p ON p.id = r.patient_id
         WHERE r.reassess_due_at IS NOT NULL AND r.device_id = ?1
           AND NOT EXISTS (SELECT 1 FROM pain_reports n WHERE n.supersedes = r.id)
           AND NOT EXISTS (SELECT 1 FROM pain_reports f WHERE f.follows_up IN (r.id, r.supersedes)
                           AND NOT EXISTS (SELECT 1 FROM pain_reports g WHERE g.supersedes = f.id))
         ORDER BY r.reassess_due_at, r.id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![device_id, limit as i64], |r| {
        let name: String = r.get(23)?;
        Ok(entry_from_row(r)?.map(|e| (e, name)))
    })?;
    rows.map(|r| r?).collect()
}

/// Every report, oldest first (exports).
pub fn all(conn: &Connection) -> Result<Vec<ReportEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} FROM outbox o JOIN pain_reports r ON r.id = o.report_id ORDER BY r.id"
    ))?;
    let rows = stmt.query_map([], entry_from_row)?;
    rows.map(|r| r?).collect()
}

/// Every report in one state (tests and support tools).
pub fn in_state(conn: &Connection, state: OutboxState) -> Result<Vec<ReportEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} FROM outbox o JOIN pain_reports r ON r.id = o.report_id
         WHERE o.state = ?1 ORDER BY o.report_id"
    ))?;
    let rows = stmt.query_map([state.as_str()], entry_from_row)?;
    rows.map(|r| r?).collect()
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

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::audit::{self, AuditAction};
    use crate::{Database, patients};

    pub(crate) fn store_with_patient() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("o.sqlite3")).unwrap();
        db.write(|c| {
            patients::upsert(
                c,
                &clinic_domain::Patient {
                    id: PatientId::parse("P0001").unwrap(),
                    name: "张三".into(),
                    sex: clinic_domain::Sex::Male,
                    birth_date: chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
                    is_insured: true,
                    phone: None,
                },
            )
        })
        .unwrap();
        (dir, db)
    }

    pub(crate) fn report(score: i64) -> NewReport {
        NewReport::score(
            PatientId::parse("P0001").unwrap(),
            PainScore::new(PainScale::Nrs, score).unwrap(),
            Utc::now(),
            "N01",
            "dev",
        )
    }

    #[test]
    fn a_report_and_its_entry_are_written_together_with_a_v7_id() {
        let (_d, db) = store_with_patient();
        let id = db
            .write(|c| record_report(c, &report(5), Utc::now()))
            .unwrap();
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
        let e = db.read(|c| get(c, &id)).unwrap().unwrap();
        assert_eq!((e.state, e.score, e.attempts), (OutboxState::Queued, 5, 0));
        let mut bad = report(5);
        bad.patient_id = PatientId::parse("NOBODY").unwrap();
        assert!(
            db.write(|c| record_report(c, &bad, Utc::now())).is_err(),
            "unknown patient refused"
        );
        assert_eq!(
            db.read(counts).unwrap(),
            OutboxCounts {
                queued: 1,
                ..Default::default()
            },
            "nothing half-written"
        );
    }

    #[rstest]
    #[case::delivered(OutboxState::Delivered)]
    #[case::rejected(OutboxState::Rejected)]
    #[case::released(OutboxState::Queued)]
    fn claimed_entries_end_in_one_state_and_keep_their_id(#[case] end: OutboxState) {
        let (_d, db) = store_with_patient();
        let ids: Vec<String> = (0..3)
            .map(|i| {
                db.write(|c| record_report(c, &report(i), Utc::now()))
                    .unwrap()
            })
            .collect();
        let batch = db.write(|c| claim_batch(c, 0, 2)).unwrap();
        assert_eq!(
            batch.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
            ids[..2],
            "oldest first"
        );
        assert_eq!(db.read(counts).unwrap().sending, 2);
        let claimed: Vec<String> = batch.iter().map(|e| e.id.clone()).collect();
        match end {
            OutboxState::Delivered => db
                .write(|c| {
                    mark_delivered(
                        c,
                        &claimed
                            .iter()
                            .map(|i| (i.clone(), None))
                            .collect::<Vec<_>>(),
                        9,
                    )
                })
                .unwrap(),
            OutboxState::Rejected => db
                .write(|c| {
                    mark_rejected(
                        c,
                        &claimed
                            .iter()
                            .map(|i| (i.clone(), "bad".to_owned()))
                            .collect::<Vec<_>>(),
                    )
                })
                .unwrap(),
            _ => db.write(|c| release(c, &claimed, "timeout", 0)).unwrap(),
        }
        for id in &claimed {
            assert_eq!(db.read(|c| get(c, id)).unwrap().unwrap().state, end);
        }
        assert_eq!(db.read(counts).unwrap().sending, 0);
        assert!(
            db.read(|c| patient_has_pending(c, "P0001")).unwrap(),
            "the third is still queued"
        );
    }

    #[test]
    fn in_flight_entries_are_requeued_after_a_crash_and_rejected_ones_on_request() {
        let (_d, db) = store_with_patient();
        let id = db
            .write(|c| record_report(c, &report(1), Utc::now()))
            .unwrap();
        db.write(|c| claim_batch(c, 0, 10)).unwrap();
        assert_eq!(db.write(|c| requeue_in_flight(c)).unwrap(), 1);
        let again = db.write(|c| claim_batch(c, 0, 10)).unwrap();
        assert_eq!(
            (again[0].id.as_str(), again[0].attempts),
            (id.as_str(), 2),
            "same ID, second attempt"
        );
        db.write(|c| mark_rejected(c, &[(id.clone(), "409".into())]))
            .unwrap();
        assert!(
            db.write(|c| claim_batch(c, 0, 10)).unwrap().is_empty(),
            "rejected entries are not sent"
        );
        assert!(db.write(|c| requeue_rejected(c, &id)).unwrap());
        assert!(
            !db.write(|c| requeue_rejected(c, &id)).unwrap(),
            "only a rejected one"
        );
        assert_eq!(db.read(counts).unwrap().queued, 1);
    }

    #[rstest]
    #[case::still_queued(None, OutboxState::Queued)]
    #[case::delivered(Some(OutboxState::Delivered), OutboxState::Delivered)]
    #[case::refused(Some(OutboxState::Rejected), OutboxState::Superseded)]
    fn a_correction_is_a_new_report_that_names_the_old_one_which_stays(
        #[case] before: Option<OutboxState>,
        #[case] old_state_after: OutboxState,
    ) {
        let (_d, db) = store_with_patient();
        let old = db
            .write(|c| record_report(c, &report(3), Utc::now()))
            .unwrap();
        if let Some(state) = before {
            db.write(|c| claim_batch(c, 0, 10)).unwrap();
            match state {
                OutboxState::Delivered => db
                    .write(|c| mark_delivered(c, &[(old.clone(), None)], 1))
                    .unwrap(),
                _ => db
                    .write(|c| mark_rejected(c, &[(old.clone(), "bad".into())]))
                    .unwrap(),
            }
        }
        let new = db
            .write(|c| correct(c, &old, &report(4), "typo", Utc::now()))
            .unwrap()
            .unwrap();
        let (o, n) = (
            db.read(|c| get(c, &old)).unwrap().unwrap(),
            db.read(|c| get(c, &new)).unwrap().unwrap(),
        );
        assert_eq!(
            (o.state, o.score, o.superseded_by.as_deref()),
            (old_state_after, 3, Some(new.as_str())),
            "original kept"
        );
        assert_eq!(
            (n.state, n.score, n.superseded_by),
            (OutboxState::Queued, 4, None)
        );
        assert_eq!(
            (n.supersedes.as_deref(), n.correction_reason.as_deref()),
            (Some(old.as_str()), Some("typo"))
        );
        assert_eq!(
            db.write(|c| correct(c, &old, &report(5), "again", Utc::now()))
                .unwrap(),
            None,
            "corrected once"
        );
        let trail: Vec<AuditAction> = db
            .read(|c| audit::for_report(c, &old))
            .unwrap()
            .iter()
            .map(|e| e.action)
            .collect();
        let expected_sync = if before.is_some() {
            vec![AuditAction::SyncState]
        } else {
            vec![]
        };
        let superseded_sync = if old_state_after == OutboxState::Superseded {
            vec![AuditAction::SyncState]
        } else {
            vec![]
        };
        assert_eq!(
            trail,
            [
                vec![AuditAction::Created],
                expected_sync,
                superseded_sync,
                vec![AuditAction::Superseded]
            ]
            .concat(),
            "the old record's trail"
        );
        let trail: Vec<AuditAction> = db
            .read(|c| audit::for_report(c, &new))
            .unwrap()
            .iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(trail, [AuditAction::Corrected]);
    }

    /// Everything a person or a bug could try on a saved assessment or the trail.
    #[rstest]
    #[case::change_a_score("UPDATE pain_reports SET score = 0")]
    #[case::change_the_time("UPDATE pain_reports SET assessed_at = assessed_at - 3600")]
    #[case::change_who("UPDATE pain_reports SET recorded_by = 'N999'")]
    #[case::add_a_note_later("UPDATE pain_reports SET note = 'added later'")]
    #[case::hide_a_correction("UPDATE pain_reports SET supersedes = NULL")]
    #[case::delete_a_report("DELETE FROM pain_reports")]
    #[case::rewrite_the_trail("UPDATE audit_log SET actor = 'N999'")]
    #[case::erase_the_trail("DELETE FROM audit_log")]
    #[case::replace_a_report("INSERT OR REPLACE INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at, recorded_by, device_id)
                              SELECT id, patient_id, scale, 0, assessed_at, recorded_at, recorded_by, device_id FROM pain_reports")]
    #[case::replace_a_trail_row(
        "INSERT OR REPLACE INTO audit_log (seq, at, actor, device_id, action) SELECT seq, at, 'N999', device_id, action FROM audit_log"
    )]
    fn the_database_refuses_to_change_saved_assessments_and_the_trail(#[case] sql: &str) {
        let (_d, db) = store_with_patient();
        let old = db
            .write(|c| record_report(c, &report(7), Utc::now()))
            .unwrap();
        db.write(|c| correct(c, &old, &report(6), "typo", Utc::now()))
            .unwrap()
            .unwrap();
        let snapshot = |c: &Connection| -> Result<String, StoreError> {
            Ok(c.query_row(
                "SELECT (SELECT group_concat(id || score || assessed_at || recorded_by || coalesce(note, '') || coalesce(supersedes, ''), ';')
                         FROM (SELECT * FROM pain_reports ORDER BY id)) || '|' ||
                        (SELECT group_concat(seq || actor || action, ';') FROM (SELECT * FROM audit_log ORDER BY seq))",
                [],
                |r| r.get(0),
            )?)
        };
        let before = db.read(snapshot).unwrap();
        let err = db.write(|c| Ok(c.execute_batch(sql)?)).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
        assert_eq!(db.read(snapshot).unwrap(), before, "nothing changed");
    }

    #[test]
    fn reassessments_wait_until_a_current_follow_up_is_recorded() {
        let (_d, db) = store_with_patient();
        let due = Utc::now() - chrono::Duration::minutes(5);
        let with_intervention = |device: &str| NewReport {
            details: AssessmentDetails {
                intervention: Some("ibuprofen 400mg".into()),
                ..Default::default()
            },
            reassess_due_at: Some(due),
            device_id: device.into(),
            ..report(8)
        };
        let ours = db
            .write(|c| record_report(c, &with_intervention("dev"), Utc::now()))
            .unwrap();
        db.write(|c| record_report(c, &with_intervention("other-device"), Utc::now()))
            .unwrap();
        db.write(|c| record_report(c, &report(2), Utc::now()))
            .unwrap();
        let pending = |db: &Database| -> Vec<String> {
            db.read(|c| pending_reassessments(c, "dev", 10))
                .unwrap()
                .into_iter()
                .map(|(e, _)| e.id)
                .collect()
        };
        assert_eq!(
            pending(&db),
            std::slice::from_ref(&ours),
            "only ours, only with an intervention"
        );
        let follow = NewReport {
            follows_up: Some(ours.clone()),
            ..report(3)
        };
        let f = db.write(|c| record_report(c, &follow, Utc::now())).unwrap();
        assert!(pending(&db).is_empty());
        assert_eq!(
            db.read(|c| get(c, &ours)).unwrap().unwrap().followed_up_by,
            Some(f.clone())
        );
        // The follow-up itself corrected (same link): still done.
        db.write(|c| {
            correct(
                c,
                &f,
                &NewReport {
                    follows_up: Some(ours.clone()),
                    ..report(4)
                },
                "typo",
                Utc::now(),
            )
        })
        .unwrap()
        .unwrap();
        assert!(pending(&db).is_empty());
        // The original corrected: the reassessment already made still counts for the correction.
        let fixed = db
            .write(|c| {
                correct(
                    c,
                    &ours,
                    &with_intervention("dev"),
                    "wrong dose",
                    Utc::now(),
                )
            })
            .unwrap()
            .unwrap();
        assert!(
            pending(&db).is_empty(),
            "{:?}",
            db.read(|c| get(c, &fixed)).unwrap()
        );
        assert_eq!(
            db.read(|c| pending_reassessments(c, "other-device", 10))
                .unwrap()
                .len(),
            1
        );
    }
}
