//! The clinic's data pulled from the central server: one cursor per stream, and
//! each page applied in one transaction together with its cursor, so a crash
//! between pages repeats a page rather than skipping one (every apply is an upsert
//! or a delete, so applying a page twice changes nothing).
//!
//! One record this device refuses never stalls a stream: each item is applied
//! under its own savepoint, and one the device could not read or store is rolled
//! back alone and *set aside* (`pull_set_aside`: stream, ID, sequence number,
//! reason), while the rest of the page and the cursor move on. A later good
//! version of the same record clears it; [`recheck_set_aside`] has it fetched again
//! when this device's rules change.

use chrono::{DateTime, Utc};
use clinic_domain::assessment::{self, FollowUpTarget};
use clinic_domain::{Appointment, AssessmentDetails, PainScore, Patient, PatientId, StaffRole};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::column::Text;
use crate::{StoreError, outbox, patients, schedule};

pub const STREAM_PATIENTS: &str = "patients";
pub const STREAM_STAFF: &str = "staff";
pub const STREAM_APPOINTMENTS: &str = "appointments";
pub const STREAM_REPORTS: &str = "reports";

/// One item of a page: a new or changed record, or a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    Upsert(T),
    Delete(String),
}

/// One item of a pulled page as the caller read it: its change, or why this
/// device cannot use it (it is then set aside, not applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledItem<T> {
    pub seq: i64,
    pub id: String,
    pub change: Result<Change<T>, String>,
}

impl<T> PulledItem<T> {
    pub fn upsert(seq: i64, id: impl Into<String>, value: T) -> Self {
        Self {
            seq,
            id: id.into(),
            change: Ok(Change::Upsert(value)),
        }
    }
    pub fn delete(seq: i64, id: impl Into<String>) -> Self {
        let id = id.into();
        Self {
            seq,
            id: id.clone(),
            change: Ok(Change::Delete(id)),
        }
    }
    pub fn refused(seq: i64, id: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            seq,
            id: id.into(),
            change: Err(reason.into()),
        }
    }
}

/// A pulled record this device refused, kept with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    pub stream: String,
    pub item_id: String,
    pub seq: i64,
    pub reason: String,
    /// Unix seconds.
    pub set_aside_at: i64,
}

/// Longest reason kept (characters); a reason quoting a 1 MB value stays small.
const MAX_REASON_CHARS: usize = 300;
/// Longest item ID kept (characters): the ID comes from the server and may itself be the bad part.
const MAX_ITEM_ID_CHARS: usize = 80;

fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

/// Sets `item` aside (or updates the reason of an earlier setting-aside); the
/// bootstrap's load sets aside through it too.
pub(crate) fn set_aside(
    conn: &Connection,
    stream: &str,
    seq: i64,
    id: &str,
    reason: &str,
) -> Result<(), StoreError> {
    set_aside_waiting(conn, stream, seq, id, reason, None)
}

/// [`set_aside`], noting the record it waits for (a pulled report whose target is
/// not here yet), if any.
fn set_aside_waiting(
    conn: &Connection,
    stream: &str,
    seq: i64,
    id: &str,
    reason: &str,
    waits_for: Option<&str>,
) -> Result<(), StoreError> {
    tracing::warn!(
        stream,
        seq,
        waiting = waits_for.is_some(),
        "a pulled record this device cannot store was set aside"
    );
    conn.prepare_cached(
        "INSERT INTO pull_set_aside (stream, item_id, seq, reason, set_aside_at, waits_for)
         VALUES (?1, ?2, ?3, ?4, unixepoch(), ?5)
         ON CONFLICT (stream, item_id) DO UPDATE SET seq = excluded.seq, reason = excluded.reason,
             set_aside_at = excluded.set_aside_at, waits_for = excluded.waits_for",
    )?
    .execute(params![
        stream,
        clip(id, MAX_ITEM_ID_CHARS),
        seq,
        clip(reason, MAX_REASON_CHARS),
        waits_for
    ])?;
    Ok(())
}

fn clear_set_aside(conn: &Connection, stream: &str, id: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM pull_set_aside WHERE stream = ?1 AND item_id = ?2")?
        .execute(params![stream, id])?;
    Ok(())
}

/// Whether `e` says the record itself is unacceptable here (a rule of the schema
/// or the domain), as opposed to the database failing (then the page is not
/// applied at all and is tried again).
pub(crate) fn is_refusal(e: &StoreError) -> bool {
    match e {
        StoreError::CorruptRow(_) | StoreError::InvalidQuery(_) => true,
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
            matches!(
                f.code,
                rusqlite::ErrorCode::ConstraintViolation
                    | rusqlite::ErrorCode::TooBig
                    | rusqlite::ErrorCode::TypeMismatch
            )
        }
        StoreError::Sqlite(rusqlite::Error::ToSqlConversionFailure(_)) => true,
        _ => false,
    }
}

/// Applies each item of `page` under its own savepoint: an item the caller could
/// not read, or one `apply` refuses, is rolled back alone and set aside; a
/// successful one clears an earlier setting-aside of the same record. `apply`
/// returns `false` to stop before the item (nothing of it applied). Returns how
/// many were set aside and the seq of the last item handled.
fn apply_items<T>(
    tx: &mut rusqlite::Transaction<'_>,
    stream: &str,
    page: &[PulledItem<T>],
    mut apply: impl FnMut(&Connection, i64, &Change<T>) -> Result<bool, StoreError>,
) -> Result<(usize, Option<i64>, bool), StoreError> {
    let mut set_aside_count = 0;
    let mut last_seq = None;
    for item in page {
        match &item.change {
            Err(reason) => {
                set_aside(tx, stream, item.seq, &item.id, reason)?;
                set_aside_count += 1;
            }
            Ok(change) => {
                let sp = tx.savepoint()?;
                match apply(&sp, item.seq, change) {
                    Ok(true) => {
                        sp.commit()?;
                        clear_set_aside(tx, stream, &item.id)?;
                    }
                    Ok(false) => return Ok((set_aside_count, last_seq, true)),
                    Err(e) if is_refusal(&e) => {
                        drop(sp); // rolls back whatever of this item was written
                        set_aside(tx, stream, item.seq, &item.id, &e.to_string())?;
                        set_aside_count += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        last_seq = Some(item.seq);
    }
    Ok((set_aside_count, last_seq, false))
}

/// The records set aside, newest first, at most `limit`.
pub fn set_aside_items(conn: &Connection, limit: u32) -> Result<Vec<SetAside>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT stream, item_id, seq, reason, set_aside_at FROM pull_set_aside ORDER BY set_aside_at DESC, seq DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        Ok(SetAside {
            stream: r.get("stream")?,
            item_id: r.get("item_id")?,
            seq: r.get("seq")?,
            reason: r.get("reason")?,
            set_aside_at: r.get("set_aside_at")?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn set_aside_count(conn: &Connection) -> Result<u64, StoreError> {
    Ok(conn
        .query_row("SELECT count(*) FROM pull_set_aside", [], |r| {
            r.get::<_, i64>(0)
        })?
        .max(0) as u64)
}

const SET_ASIDE_RULES_KEY: &str = "set_aside_checked_by";

/// When `rules` (what decides what this device accepts: the app's version and
/// its schema) differ from those that set the records aside, moves each stream's
/// cursor back to just before its oldest set-aside record, so the next pull
/// fetches them again and the new rules judge them afresh (re-fetch rather than
/// re-apply: the record may have changed on the server meanwhile, and nothing of
/// a refused record needs to be kept here). Records stay listed until a pull
/// stores them. Returns how many streams were rewound.
pub fn recheck_set_aside(conn: &mut Connection, rules: &str) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if state(&tx, SET_ASIDE_RULES_KEY)?.as_deref() == Some(rules) {
        return Ok(0);
    }
    let oldest: Vec<(String, i64)> = {
        let mut stmt =
            tx.prepare("SELECT stream, min(seq) AS oldest FROM pull_set_aside GROUP BY stream")?;
        stmt.query_map([], |r| Ok((r.get("stream")?, r.get("oldest")?)))?
            .collect::<Result<_, _>>()?
    };
    for (stream, seq) in &oldest {
        let back = (seq - 1).max(0);
        if cursor(&tx, stream)? > back {
            set_cursor(&tx, stream, back)?;
        }
    }
    set_state(&tx, SET_ASIDE_RULES_KEY, Some(rules))?;
    tx.commit()?;
    Ok(oldest.len())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledStaff {
    pub id: String,
    pub name: String,
    pub role: StaffRole,
    pub department: String,
    pub active: bool,
    pub pin_verifier: String,
}

/// What applying an appointments page did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Every item applied; the cursor is the page's.
    All,
    /// Stopped at an appointment whose patient or doctor this device does not have
    /// yet (it was created after that stream was pulled). Items before it were
    /// applied and the cursor stops just before it: pull the other streams, then again.
    StoppedAtUnknownReference,
    /// A report set aside earlier because the report it names was not here yet can
    /// be stored now: the cursor went back to just before it; pull again.
    Rewound,
}

pub fn cursor(conn: &Connection, stream: &str) -> Result<i64, StoreError> {
    Ok(conn
        .query_row(
            "SELECT cursor FROM sync_cursors WHERE stream = ?1",
            [stream],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

pub(crate) fn set_cursor(conn: &Connection, stream: &str, cursor: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sync_cursors (stream, cursor) VALUES (?1, ?2)
         ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor",
    )?
    .execute(params![stream, cursor])?;
    Ok(())
}

pub fn state(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM sync_state WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?)
}

pub fn set_state(conn: &Connection, key: &str, value: Option<&str>) -> Result<(), StoreError> {
    match value {
        Some(v) => conn.execute(
            "INSERT INTO sync_state (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, v],
        )?,
        None => conn.execute("DELETE FROM sync_state WHERE key = ?1", [key])?,
    };
    Ok(())
}

/// Applies a patients page and advances the cursor, in one transaction; returns
/// how many items were set aside.
///
/// A deletion of a patient who still has reports the server has not acknowledged is
/// deferred (the nurse's work stays reachable) and applied by
/// [`apply_deferred_deletions`] once they are delivered.
pub fn apply_patients(
    conn: &mut Connection,
    page: &[PulledItem<Patient>],
    next_cursor: i64,
) -> Result<usize, StoreError> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (set_aside, _, _) = apply_items(&mut tx, STREAM_PATIENTS, page, |c, seq, change| {
        match change {
            Change::Upsert(p) => {
                c.execute(
                    "DELETE FROM deferred_patient_deletions WHERE patient_id = ?1",
                    [p.id.as_str()],
                )?;
                patients::upsert(c, p)?;
            }
            Change::Delete(id) => {
                if outbox::patient_has_pending(c, id)? {
                    c.execute(
                        "INSERT INTO deferred_patient_deletions (patient_id, seq) VALUES (?1, ?2)
                         ON CONFLICT (patient_id) DO UPDATE SET seq = excluded.seq",
                        params![id, seq],
                    )?;
                } else {
                    delete_patient(c, id)?;
                }
            }
        }
        Ok(true)
    })?;
    set_cursor(&tx, STREAM_PATIENTS, next_cursor)?;
    tx.commit()?;
    Ok(set_aside)
}

/// Removes a patient the server deleted: their appointments go; the row goes too
/// unless reports (never deleted) still refer to it, in which case it is hidden
/// from search and stripped of contact data.
fn delete_patient(conn: &Connection, id: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM appointments WHERE patient_id = ?1", [id])?;
    let id = PatientId::parse(id)
        .map_err(|e| StoreError::CorruptRow(format!("pulled patient id: {e}")))?;
    patients::delete(conn, &id)?;
    Ok(())
}

/// Applies deferred deletions whose patients have nothing pending any more.
/// Returns how many were applied.
pub fn apply_deferred_deletions(conn: &mut Connection) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let ids: Vec<String> = {
        let mut stmt = tx.prepare("SELECT patient_id FROM deferred_patient_deletions")?;
        stmt.query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    let mut applied = 0;
    for id in ids {
        if !outbox::patient_has_pending(&tx, &id)? {
            delete_patient(&tx, &id)?;
            tx.execute(
                "DELETE FROM deferred_patient_deletions WHERE patient_id = ?1",
                [&id],
            )?;
            applied += 1;
        }
    }
    tx.commit()?;
    Ok(applied)
}

/// Applies a staff page (doctors also go into `doctors`, which the schedule uses)
/// and advances the cursor, in one transaction; returns how many items were set
/// aside. Staff are never tombstoned.
pub fn apply_staff(
    conn: &mut Connection,
    page: &[PulledItem<PulledStaff>],
    next_cursor: i64,
) -> Result<usize, StoreError> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (set_aside, _, _) = apply_items(&mut tx, STREAM_STAFF, page, |c, _, change| {
        match change {
            Change::Upsert(s) => upsert_staff(c, s)?,
            // The server never sends these (a departed member is inactive); if one
            // came, old reports and appointments still name them, so keep the row.
            Change::Delete(id) => {
                c.execute("UPDATE staff SET active = 0 WHERE id = ?1", [id])?;
            }
        }
        Ok(true)
    })?;
    set_cursor(&tx, STREAM_STAFF, next_cursor)?;
    tx.commit()?;
    Ok(set_aside)
}

/// Writes a pulled staff member (a doctor into `doctors` too, which the schedule uses).
pub(crate) fn upsert_staff(c: &Connection, s: &PulledStaff) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO staff (id, name, role, department, active, pin_verifier) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role,
             department = excluded.department, active = excluded.active, pin_verifier = excluded.pin_verifier",
    )?
    .execute(params![s.id, s.name, Text(s.role), s.department, s.active, s.pin_verifier])?;
    if s.role == StaffRole::Doctor {
        let id = clinic_domain::DoctorId::parse(&s.id)
            .map_err(|e| StoreError::CorruptRow(e.to_string()))?;
        schedule::upsert_doctor(
            c,
            &clinic_domain::Doctor {
                id,
                name: s.name.clone(),
                department: s.department.clone(),
            },
        )?;
    }
    Ok(())
}

/// What applying an appointments page did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppointmentsApplied {
    pub applied: Applied,
    pub set_aside: usize,
}

/// Applies an appointments page (tombstones delete, cancellations are a status)
/// and advances the cursor, in one transaction.
///
/// An appointment whose patient or doctor is not here either is newer than our
/// last patients/staff page (then stop before it, so the caller can pull those
/// first) or refers to a patient the server has since deleted or a doctor this
/// device refused (then, with `set_aside_unknown`, which the caller sets once the
/// other streams are pulled to their end, it is set aside: a schedule row needs
/// its patient and doctor).
pub fn apply_appointments(
    conn: &mut Connection,
    page: &[PulledItem<Appointment>],
    next_cursor: i64,
    set_aside_unknown: bool,
) -> Result<AppointmentsApplied, StoreError> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let start = cursor(&tx, STREAM_APPOINTMENTS)?;
    let (set_aside, last_seq, stopped) = apply_items(
        &mut tx,
        STREAM_APPOINTMENTS,
        page,
        |c, _, change| {
            match change {
                Change::Upsert(a) => {
                    let known: bool = c.query_row(
                    "SELECT EXISTS (SELECT 1 FROM patients WHERE id = ?1) AND EXISTS (SELECT 1 FROM doctors WHERE id = ?2)",
                    params![a.patient_id.as_str(), a.doctor_id.as_str()],
                    |r| r.get(0),
                )?;
                    if !known && set_aside_unknown {
                        return Err(StoreError::CorruptRow(
                            "its patient or doctor is not on this device".into(),
                        ));
                    } else if !known {
                        return Ok(false);
                    }
                    schedule::upsert_appointment(c, a)?;
                }
                Change::Delete(id) => {
                    c.execute("DELETE FROM appointments WHERE id = ?1", [id])?;
                }
            }
            Ok(true)
        },
    )?;
    let (applied, next) = if stopped {
        (
            Applied::StoppedAtUnknownReference,
            last_seq.unwrap_or(start),
        )
    } else {
        (Applied::All, next_cursor)
    };
    set_cursor(&tx, STREAM_APPOINTMENTS, next)?;
    tx.commit()?;
    Ok(AppointmentsApplied { applied, set_aside })
}

/// A report from the server's reports feed, each field already read and checked
/// by the domain's rules (`clinic_sync::pull` does that); what it refers to (its
/// patient, the reports it corrects, follows up or resolves) is checked here,
/// against what this device holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledReport {
    pub id: String,
    pub patient_id: PatientId,
    pub score: PainScore,
    pub assessed_at: DateTime<Utc>,
    /// When it was recorded on its device (the wire's `submitTime`).
    pub recorded_at: i64,
    /// Empty when the server does not say (a report posted without it).
    pub recorded_by: String,
    pub device_id: String,
    pub supersedes: Option<String>,
    pub reason: Option<String>,
    pub details: AssessmentDetails,
    pub follows_up: Option<String>,
    /// In ID order.
    pub resolves: Vec<String>,
    /// When the server first stored it.
    pub received_at: i64,
}

/// What applying a reports page did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportsApplied {
    pub applied: Applied,
    /// Reports written here (received from other devices).
    pub stored: usize,
    pub set_aside: usize,
}

/// What became of one pulled report that was not set aside.
enum Verdict {
    /// Written here.
    Stored,
    /// Already here with the same content (this device's own coming back, or one
    /// fetched again): nothing written.
    Known,
    /// Its patient is not here yet: stop before it.
    Stop,
}

/// Why one pulled report is set aside.
enum Refused {
    Because(String),
    /// It names this report, which is not here yet.
    WaitsFor(String),
}

/// Applies a page of the reports feed and advances the cursor, in one transaction.
///
/// Each report is judged on its own (under a savepoint): one already here is
/// recognised by ID and content (nothing written; the same ID with other content
/// is set aside as a conflict and the stored one kept); one claiming this device
/// that this device does not hold is refused; a foreign one is stored as received
/// (`received_at` from the server, `pulled_at` = `pulled_at`), without an outbox
/// row, with its reassessment due time fixed now from its assessment time and the
/// clinic's interval (`settings::reassess_interval_minutes`).
///
/// A report whose `supersedes`, `followsUp` or `resolves` names a report not here
/// yet is set aside *waiting for* it. When a later item (of this page or a later
/// one) stores that report, the cursor goes back to just before the waiting one
/// ([`Applied::Rewound`]) so the next fetch brings it again and it is judged
/// afresh; each waiting entry causes one such rewind (its mark is cleared then).
/// A report whose patient is not here is newer than our patients page (stop before
/// it, like an appointment) unless `set_aside_unknown_patient`.
pub fn apply_reports(
    conn: &mut Connection,
    page: &[PulledItem<PulledReport>],
    next_cursor: i64,
    pulled_at: DateTime<Utc>,
    set_aside_unknown_patient: bool,
) -> Result<ReportsApplied, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let start = cursor(&tx, STREAM_REPORTS)?;
    let judged = judge_reports(&tx, page, pulled_at, set_aside_unknown_patient)?;
    let (mut applied, mut next) = if judged.stopped {
        (
            Applied::StoppedAtUnknownReference,
            judged.last_seq.unwrap_or(start),
        )
    } else {
        (Applied::All, next_cursor)
    };
    if let Some(back) = rewind_to_ready(&tx, next)? {
        next = back;
        applied = Applied::Rewound;
    }
    set_cursor(&tx, STREAM_REPORTS, next)?;
    tx.commit()?;
    Ok(ReportsApplied {
        applied,
        stored: judged.stored,
        set_aside: judged.set_aside,
    })
}

/// What judging a run of pulled reports did.
pub(crate) struct Judged {
    pub stored: usize,
    pub set_aside: usize,
    /// The seq of the last report judged (stored, known or set aside).
    pub last_seq: Option<i64>,
    /// Stopped before a report whose patient is not here.
    pub stopped: bool,
}

/// Judges and writes each report of `page` in the caller's transaction, by every
/// rule of [`apply_reports`] (which adds the cursor); the bootstrap's load uses
/// it too, so a report from a snapshot is stored exactly as from the feed.
pub(crate) fn judge_reports(
    tx: &Connection,
    page: &[PulledItem<PulledReport>],
    pulled_at: DateTime<Utc>,
    set_aside_unknown_patient: bool,
) -> Result<Judged, StoreError> {
    let own_device = crate::settings::get(tx, crate::settings::DEVICE_ID)?;
    let interval = crate::settings::reassess_interval_minutes(tx)?;
    let (mut stored, mut set_aside_n, mut last_seq, mut stopped) = (0, 0, None, false);
    for item in page {
        let verdict = match &item.change {
            Err(reason) => Ok(Err(Refused::Because(reason.clone()))),
            Ok(Change::Delete(_)) => Ok(Err(Refused::Because(
                "a report deletion (reports are never deleted)".into(),
            ))),
            Ok(Change::Upsert(r)) => {
                // A savepoint of our own, its statements cached: rusqlite's parses
                // its SQL on every item, a tenth of the cost of a stored report.
                tx.prepare_cached("SAVEPOINT pulled_report")?.execute([])?;
                let judged = apply_report(
                    tx,
                    r,
                    own_device.as_deref(),
                    interval,
                    pulled_at,
                    set_aside_unknown_patient,
                );
                if !matches!(judged, Ok(Ok(Verdict::Stored))) {
                    // Whatever of it was written goes (nothing, unless a write failed).
                    tx.prepare_cached("ROLLBACK TO pulled_report")?
                        .execute([])?;
                }
                tx.prepare_cached("RELEASE pulled_report")?.execute([])?;
                judged
            }
        };
        match verdict {
            Ok(Ok(Verdict::Stored)) => {
                stored += 1;
                clear_set_aside(tx, STREAM_REPORTS, &item.id)?;
            }
            Ok(Ok(Verdict::Known)) => clear_set_aside(tx, STREAM_REPORTS, &item.id)?,
            Ok(Ok(Verdict::Stop)) => {
                stopped = true;
                break;
            }
            Ok(Err(refused)) => {
                let (reason, waits_for) = match refused {
                    Refused::Because(r) => (r, None),
                    Refused::WaitsFor(t) => (
                        format!("waits for report {t}, not on this device yet"),
                        Some(t),
                    ),
                };
                set_aside_waiting(
                    tx,
                    STREAM_REPORTS,
                    item.seq,
                    &item.id,
                    &reason,
                    waits_for.as_deref(),
                )?;
                set_aside_n += 1;
            }
            Err(e) if is_refusal(&e) => {
                set_aside(tx, STREAM_REPORTS, item.seq, &item.id, &e.to_string())?;
                set_aside_n += 1;
            }
            Err(e) => return Err(e),
        }
        last_seq = Some(item.seq);
    }
    Ok(Judged {
        stored,
        set_aside: set_aside_n,
        last_seq,
        stopped,
    })
}

/// When a report set aside waiting for another can be stored now (that one is
/// here), the reports cursor goes back to just before the first such (each
/// waiting mark causes one rewind: it is cleared here). Returns the cursor to
/// store instead of `next`, if it must go back.
pub(crate) fn rewind_to_ready(tx: &Connection, next: i64) -> Result<Option<i64>, StoreError> {
    let ready: Option<i64> = tx.query_row(
        "SELECT min(seq) FROM pull_set_aside WHERE stream = ?1
           AND waits_for IN (SELECT id FROM pain_reports)",
        [STREAM_REPORTS],
        |r| r.get(0),
    )?;
    let Some(seq) = ready else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE pull_set_aside SET waits_for = NULL WHERE stream = ?1
           AND waits_for IN (SELECT id FROM pain_reports)",
        [STREAM_REPORTS],
    )?;
    Ok((seq - 1 < next).then(|| (seq - 1).max(0)))
}

/// The content of a stored report as the feed would carry it (for recognising one
/// that comes back), or `None` when no report has that ID.
fn stored_content(
    conn: &Connection,
    id: &str,
    received_at: i64,
) -> Result<Option<PulledReport>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT patient_id, scale, score, assessed_at, recorded_at, recorded_by, device_id,
                    supersedes, correction_reason, body_site, activity, note, intervention, follows_up,
                    (SELECT group_concat(x.resolves, ',') FROM
                       (SELECT resolves FROM report_resolutions WHERE report_id = r.id ORDER BY resolves) x)
                       AS resolves
             FROM pain_reports r WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>("patient_id")?,
                r.get::<_, Text<clinic_domain::PainScale>>("scale")?.0,
                r.get::<_, i64>("score")?,
                r.get::<_, i64>("assessed_at")?,
                r.get::<_, i64>("recorded_at")?,
                r.get::<_, String>("recorded_by")?,
                r.get::<_, String>("device_id")?,
                r.get::<_, Option<String>>("supersedes")?,
                r.get::<_, Option<String>>("correction_reason")?,
                AssessmentDetails {
                    body_site: r.get("body_site")?,
                    activity: r
                        .get::<_, Option<Text<clinic_domain::Activity>>>("activity")?
                        .map(|a| a.0),
                    note: r.get("note")?,
                    intervention: r.get("intervention")?,
                },
                r.get::<_, Option<String>>("follows_up")?,
                r.get::<_, Option<String>>("resolves")?,
            ))
        })
        .optional()?;
    let Some((
        patient,
        scale,
        score,
        assessed,
        recorded,
        by,
        device,
        sup,
        reason,
        details,
        follows,
        resolves,
    )) = row
    else {
        return Ok(None);
    };
    let corrupt =
        |e: clinic_domain::DomainError| StoreError::CorruptRow(format!("report {id}: {e}"));
    Ok(Some(PulledReport {
        id: id.to_owned(),
        patient_id: PatientId::parse(&patient).map_err(corrupt)?,
        score: PainScore::new(scale, score).map_err(corrupt)?,
        assessed_at: DateTime::from_timestamp(assessed, 0)
            .ok_or_else(|| StoreError::CorruptRow(format!("report {id}: time out of range")))?,
        recorded_at: recorded,
        recorded_by: by,
        device_id: device,
        supersedes: sup,
        reason,
        details,
        follows_up: follows,
        resolves: resolves
            .map(|j| j.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
        received_at,
    }))
}

fn exists(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM pain_reports WHERE id = ?1)")?
        .query_row([id], |r| r.get(0))?)
}

/// Judges one pulled report against what is here and writes it when it may be.
fn apply_report(
    conn: &Connection,
    r: &PulledReport,
    own_device: Option<&str>,
    interval_minutes: u32,
    pulled_at: DateTime<Utc>,
    set_aside_unknown_patient: bool,
) -> Result<Result<Verdict, Refused>, StoreError> {
    let refuse = |why: &str| Ok(Err(Refused::Because(why.to_owned())));
    if let Some(here) = stored_content(conn, &r.id, r.received_at)? {
        return if here == *r {
            Ok(Ok(Verdict::Known))
        } else {
            refuse(
                "conflict: a report with this ID and other content is stored here, and is kept as it was",
            )
        };
    }
    if own_device.is_some_and(|d| d == r.device_id) {
        return refuse("it claims to be recorded on this device, which holds no such report");
    }
    if r.supersedes.as_deref() == Some(r.id.as_str())
        || r.follows_up.as_deref() == Some(r.id.as_str())
    {
        return refuse("a report cannot correct or follow up itself");
    }
    if let Err(e) = assessment::check_resolves(&r.id, r.supersedes.as_ref(), &r.resolves) {
        return refuse(&e.to_string());
    }
    // The row, even of a patient the server has since deleted (kept for its reports).
    let patient_here: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM patients WHERE id = ?1)")?
        .query_row([r.patient_id.as_str()], |row| row.get(0))?;
    if !patient_here {
        return if set_aside_unknown_patient {
            refuse("its patient is not on this device")
        } else {
            Ok(Ok(Verdict::Stop))
        };
    }
    for target in r.supersedes.iter().chain(&r.follows_up).chain(&r.resolves) {
        if !exists(conn, target)? {
            return Ok(Err(Refused::WaitsFor(target.clone())));
        }
    }
    let patient = r.patient_id.as_str();
    if let Some(old) = &r.supersedes {
        let target_patient: String = conn
            .prepare_cached("SELECT patient_id FROM pain_reports WHERE id = ?1")?
            .query_row([old], |row| row.get(0))?;
        if target_patient != patient {
            return refuse(&clinic_domain::DomainError::CorrectionForOtherPatient.to_string());
        }
        // Every report named in `resolves` belongs to the record it corrects.
        if !r.resolves.is_empty() {
            let record = outbox::record_links(conn, old)?;
            if r.resolves
                .iter()
                .any(|x| !record.iter().any(|l| l.id == *x))
            {
                return refuse("it resolves a report of another record");
            }
        }
    }
    if let Some(first) = &r.follows_up {
        let (target_patient, assessed_at, intervention): (String, i64, Option<String>) = conn
            .query_row(
                "SELECT patient_id, assessed_at, intervention FROM pain_reports WHERE id = ?1",
                [first],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )?;
        let target = FollowUpTarget {
            patient_id: &target_patient,
            assessed_at: DateTime::from_timestamp(assessed_at, 0).unwrap_or_default(),
            had_intervention: intervention.is_some(),
            // Whether the target was still current when the follow-up was recorded
            // depends on what its device had then, not on what arrived here since:
            // a follow-up of a since-corrected assessment is kept, as on that device.
            superseded: false,
        };
        if let Err(e) = assessment::check_follow_up(target, patient, r.assessed_at) {
            return refuse(&e.to_string());
        }
    }
    let row = outbox::NewReport {
        patient_id: r.patient_id.clone(),
        score: r.score,
        assessed_at: r.assessed_at,
        recorded_by: r.recorded_by.clone(),
        device_id: r.device_id.clone(),
        details: r.details.clone(),
        follows_up: r.follows_up.clone(),
        reassess_due_at: assessment::reassessment_due(
            r.assessed_at,
            r.details.intervention.as_deref(),
            interval_minutes,
        ),
    };
    let correction = r
        .supersedes
        .as_deref()
        .map(|old| (old, r.reason.as_deref()));
    outbox::insert_row(
        conn,
        &r.id,
        &row,
        correction,
        r.recorded_at,
        Some(outbox::Receipt {
            received_at: r.received_at,
            pulled_at: pulled_at.timestamp(),
        }),
    )?;
    outbox::insert_resolutions(conn, &r.id, &r.resolves)?;
    // Only a correction can leave a record more than one live report (a new record
    // has one), so the rule is not run for the rest.
    if r.supersedes.is_some() {
        outbox::note_conflict(conn, &r.id, pulled_at.timestamp())?;
    }
    Ok(Ok(Verdict::Stored))
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, Utc};
    use clinic_domain::{PatientId, Sex};

    use super::*;
    use crate::Database;

    fn patient(id: &str) -> Patient {
        Patient {
            id: PatientId::parse(id).unwrap(),
            name: "李四".into(),
            sex: Sex::Female,
            birth_date: NaiveDate::from_ymd_opt(1990, 5, 6).unwrap(),
            is_insured: false,
            phone: Some("13900001111".into()),
        }
    }

    #[test]
    fn a_deletion_waits_while_the_patient_has_undelivered_reports() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("p.sqlite3")).unwrap();
        db.write(|c| {
            apply_patients(
                c,
                &[
                    PulledItem::upsert(1, "P1", patient("P1")),
                    PulledItem::upsert(2, "P2", patient("P2")),
                ],
                2,
            )
        })
        .unwrap();
        let report = outbox::NewReport::score(
            PatientId::parse("P1").unwrap(),
            clinic_domain::PainScore::new(clinic_domain::PainScale::Nrs, 4).unwrap(),
            Utc::now(),
            "N1",
            "d",
        );
        let id = db
            .write(|c| outbox::record_report(c, &report, Utc::now()))
            .unwrap();
        db.write(|c| {
            apply_patients(
                c,
                &[PulledItem::delete(3, "P1"), PulledItem::delete(4, "P2")],
                4,
            )
        })
        .unwrap();
        assert!(
            db.read(|c| patients::get(c, &PatientId::parse("P1").unwrap()))
                .unwrap()
                .is_some(),
            "kept: pending"
        );
        assert!(
            db.read(|c| patients::get(c, &PatientId::parse("P2").unwrap()))
                .unwrap()
                .is_none()
        );
        assert_eq!(db.read(|c| cursor(c, STREAM_PATIENTS)).unwrap(), 4);
        assert_eq!(
            db.write(apply_deferred_deletions).unwrap(),
            0,
            "still pending"
        );
        db.write(|c| outbox::mark_delivered(c, &[(id.clone(), None)], 1))
            .unwrap();
        assert_eq!(db.write(apply_deferred_deletions).unwrap(), 1);
        assert!(
            db.read(|c| patients::search(c, "李四", 10))
                .unwrap()
                .is_empty(),
            "hidden once delivered"
        );
        assert!(
            db.read(|c| outbox::get(c, &id)).unwrap().is_some(),
            "the report itself stays"
        );
    }

    fn staff(id: &str, role: StaffRole) -> PulledStaff {
        PulledStaff {
            id: id.into(),
            name: "王医生".into(),
            role,
            department: "内科".into(),
            active: true,
            pin_verifier: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        }
    }

    fn staff_ids(db: &Database) -> Vec<String> {
        db.read(|c| {
            let mut stmt = c.prepare("SELECT id FROM staff ORDER BY id")?;
            stmt.query_map([], |r| r.get(0))?.collect()
        })
        .unwrap()
    }

    /// A refused item is rolled back whole even when it failed after a first write
    /// (the staff row is written before the doctor row that fails), is listed with
    /// its reason, and the items around it and the cursor go through.
    #[test]
    fn a_refused_item_is_rolled_back_alone_and_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("p.sqlite3")).unwrap();
        let page = [
            PulledItem::upsert(1, "D001", staff("D001", StaffRole::Doctor)),
            // Passes the staff insert, then its ID is no doctor ID: fails midway.
            PulledItem::upsert(2, "bad id!", staff("bad id!", StaffRole::Doctor)),
            PulledItem::refused(3, "N009", "unknown role 'janitor'"),
            PulledItem::upsert(4, "N001", staff("N001", StaffRole::Nurse)),
        ];
        assert_eq!(db.write(|c| apply_staff(c, &page, 4)).unwrap(), 2);
        assert_eq!(
            staff_ids(&db),
            ["D001", "N001"],
            "nothing of the refused doctor stays"
        );
        assert_eq!(db.read(|c| cursor(c, STREAM_STAFF)).unwrap(), 4);
        let listed = db.read(|c| set_aside_items(c, 10)).unwrap();
        let mut ids: Vec<_> = listed.iter().map(|s| (s.item_id.as_str(), s.seq)).collect();
        ids.sort();
        assert_eq!(ids, [("N009", 3), ("bad id!", 2)]);
        assert!(
            listed
                .iter()
                .all(|s| !s.reason.is_empty() && s.stream == STREAM_STAFF)
        );
        assert_eq!(db.read(set_aside_count).unwrap(), 2);

        // A later good version of a set-aside record stores it and clears the entry.
        db.write(|c| {
            apply_staff(
                c,
                &[PulledItem::upsert(
                    5,
                    "N009",
                    staff("N009", StaffRole::Nurse),
                )],
                5,
            )
        })
        .unwrap();
        assert_eq!(db.read(set_aside_count).unwrap(), 1);
    }

    #[test]
    fn new_rules_rewind_each_stream_to_just_before_its_oldest_set_aside_record() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("p.sqlite3")).unwrap();
        let mut long = patient("P7");
        long.name = "名".repeat(100);
        let page = [
            PulledItem::upsert(6, "P6", patient("P6")),
            PulledItem::upsert(7, "P7", long),
            PulledItem::upsert(8, "P8", patient("P8")),
        ];
        assert_eq!(db.write(|c| apply_patients(c, &page, 9)).unwrap(), 1);
        assert_eq!(
            db.write(|c| recheck_set_aside(c, "v1")).unwrap(),
            1,
            "first start: nothing known, recheck"
        );
        assert_eq!(db.read(|c| cursor(c, STREAM_PATIENTS)).unwrap(), 6);
        db.write(|c| set_cursor(c, STREAM_PATIENTS, 9)).unwrap();
        assert_eq!(
            db.write(|c| recheck_set_aside(c, "v1")).unwrap(),
            0,
            "same rules: nothing to do"
        );
        assert_eq!(db.read(|c| cursor(c, STREAM_PATIENTS)).unwrap(), 9);
        assert_eq!(db.write(|c| recheck_set_aside(c, "v2")).unwrap(), 1);
        assert_eq!(db.read(|c| cursor(c, STREAM_PATIENTS)).unwrap(), 6);
        assert_eq!(
            db.read(|c| cursor(c, STREAM_STAFF)).unwrap(),
            0,
            "streams without set-aside records keep their place"
        );
        assert_eq!(
            db.read(set_aside_count).unwrap(),
            1,
            "listed until a pull stores it"
        );
    }
}
