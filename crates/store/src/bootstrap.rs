//! Bootstrap: a device with an empty store loads its clinic from the server's
//! snapshot (one consistent stream at one change number) instead of paging
//! through the feeds, then continues the feeds from that number.
//!
//! The load is bulk: each batch is one transaction of prepared upserts, with no
//! savepoint per row (a statement that fails a constraint undoes only itself in
//! SQLite, so a refused row is set aside alone, as from a feed, and the batch goes
//! on), and without the patients' search keys, which are built after the load
//! in patient ID order ([`build_keys`]), from the domain's `lookup` keys through
//! `patients::add_keys`, the one place keys are made. Lookup by ID works as soon
//! as a patient's row is in ([`crate::patients::search`] reads IDs from the
//! patients table while a bootstrap is under way). Reports go through the
//! feed's own judging ([`crate::pull::judge_reports`]: trail rows by the
//! triggers, no outbox entries, this device's own recognised).
//!
//! The `sync_bootstrap` row (migration 0009) says a load is under way and how far
//! it is; the pull cursors are written only by [`finish`], which deletes the row
//! in the same transaction. A device killed mid-load therefore never looks
//! loaded: its next sync sees the row and, in `loading`, restarts the load from a
//! new snapshot over what is here ([`restart`]), or, in `keys`, goes on building
//! keys where it stopped.

use chrono::{DateTime, Utc};
use clinic_domain::{Appointment, Patient};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::pull::{
    self, Change, PulledItem, PulledReport, PulledStaff, STREAM_APPOINTMENTS, STREAM_PATIENTS,
    STREAM_REPORTS, STREAM_STAFF,
};
use crate::{StoreError, patients, settings};

/// A device is bootstrapped from a snapshot when it has no patients and has
/// pulled nothing from its server (every cursor at 0), or when a bootstrap is
/// under way. A device that has pulled before keeps the feeds.
pub fn needed(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sync_bootstrap)
             OR (NOT EXISTS (SELECT 1 FROM patients)
                 AND NOT EXISTS (SELECT 1 FROM sync_cursors WHERE cursor > 0))",
        [],
        |r| r.get(0),
    )?)
}

/// Where a store that has pulled before stands: its oldest stream cursor (the
/// change number every feed has come to) and how many records it holds (live
/// patients, appointments, reports), to weigh paging against a new snapshot.
pub fn position(conn: &Connection) -> Result<(i64, u64), StoreError> {
    Ok(conn.query_row(
        "SELECT (SELECT coalesce(min(cursor), 0) FROM sync_cursors),
                (SELECT count(*) FROM patients WHERE deleted_at IS NULL)
                  + (SELECT count(*) FROM appointments)
                  + (SELECT count(*) FROM pain_reports)",
        [],
        |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)),
    )?)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Loading,
    Keys,
}

/// The bootstrap under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootstrap {
    pub server: String,
    pub cursor: i64,
    pub phase: Phase,
    pub rows_total: u64,
    pub rows_loaded: u64,
    /// Patient IDs up to this one have their search keys (in `keys`).
    pub keys_after: String,
    pub started_at: i64,
}

pub fn current(conn: &Connection) -> Result<Option<Bootstrap>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT server, cursor, phase, rows_total, rows_loaded, keys_after, started_at
             FROM sync_bootstrap WHERE id = 1",
            [],
            |r| {
                Ok(Bootstrap {
                    server: r.get("server")?,
                    cursor: r.get("cursor")?,
                    phase: if r.get::<_, String>("phase")? == "keys" {
                        Phase::Keys
                    } else {
                        Phase::Loading
                    },
                    rows_total: r.get::<_, i64>("rows_total")?.max(0) as u64,
                    rows_loaded: r.get::<_, i64>("rows_loaded")?.max(0) as u64,
                    keys_after: r.get("keys_after")?,
                    started_at: r.get("started_at")?,
                })
            },
        )
        .optional()?)
}

/// Whether a bootstrap is under way (then search keys are not complete).
pub fn under_way(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM sync_bootstrap)")?
        .query_row([], |r| r.get(0))?)
}

/// Starts (or restarts) loading the snapshot taken at `cursor` from `server`,
/// with `rows_total` records. What the store holds (an unfinished load's rows, or
/// a far-behind device's directory and schedule) is cleared first ([`restart`]);
/// its reports and their outbox stay.
pub fn begin(
    conn: &mut Connection,
    server: &str,
    cursor: i64,
    rows_total: u64,
    now: i64,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    restart(&tx)?;
    tx.execute(
        "INSERT INTO sync_bootstrap (id, server, cursor, phase, rows_total, rows_loaded, keys_after, started_at)
         VALUES (1, ?1, ?2, 'loading', ?3, 0, '', ?4)
         ON CONFLICT (id) DO UPDATE SET server = excluded.server, cursor = excluded.cursor,
             phase = 'loading', rows_total = excluded.rows_total, rows_loaded = 0,
             keys_after = '', started_at = excluded.started_at",
        params![server, cursor, rows_total as i64, now],
    )?;
    tx.commit()?;
    Ok(())
}

/// Clears what an unfinished load wrote, or what a device far behind holds, so a
/// new snapshot loads over a clean directory (on an empty store it does
/// nothing): appointments, search keys and doctors go, and so do the patients
/// no report refers to; a patient a stored report refers to (reports are never
/// deleted) stays, hidden until the new snapshot brings it again (a patient
/// deleted on the server meanwhile stays hidden, as the feed would leave it).
/// Staff stay (reports name them) and the snapshot, which holds every member,
/// active or not, updates each. Set-aside records go too: the new load judges
/// them afresh.
fn restart(tx: &Connection) -> Result<(), StoreError> {
    tx.execute_batch(
        "DELETE FROM appointments;
         DELETE FROM patient_search_keys;
         DELETE FROM patients WHERE id NOT IN (SELECT patient_id FROM pain_reports);
         UPDATE patients SET deleted_at = unixepoch(), phone = NULL;
         DELETE FROM doctors;
         DELETE FROM pull_set_aside;",
    )?;
    // Staff rows stay (old reports name their members); the snapshot upserts them.
    Ok(())
}

fn loaded(tx: &Connection, rows: usize) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE sync_bootstrap SET rows_loaded = rows_loaded + ?1 WHERE id = 1")?
        .execute([rows as i64])?;
    Ok(())
}

/// Sets `item` aside as the feed would (it was unreadable or broke a rule).
fn refused<T>(
    tx: &Connection,
    stream: &str,
    item: &PulledItem<T>,
    reason: &str,
) -> Result<(), StoreError> {
    pull::set_aside(tx, stream, item.seq, &item.id, reason)
}

/// Runs `insert` for every upsert of `batch`; a refusal (an unreadable item, or a
/// statement failing a constraint, which undoes only itself) sets the item aside.
fn load<T>(
    conn: &mut Connection,
    stream: &str,
    batch: &[PulledItem<T>],
    mut insert: impl FnMut(&Connection, &T) -> Result<(), StoreError>,
) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut set_aside = 0;
    for item in batch {
        let outcome = match &item.change {
            Ok(Change::Upsert(v)) => insert(&tx, v),
            // A snapshot holds live records only.
            Ok(Change::Delete(_)) => Err(StoreError::CorruptRow(
                "a deletion in a snapshot (it holds live records only)".into(),
            )),
            Err(reason) => Err(StoreError::CorruptRow(reason.clone())),
        };
        match outcome {
            Ok(()) => {}
            Err(e) if pull::is_refusal(&e) => {
                let reason = match e {
                    StoreError::CorruptRow(r) => r,
                    e => e.to_string(),
                };
                refused(&tx, stream, item, &reason)?;
                set_aside += 1;
            }
            Err(e) => return Err(e),
        }
    }
    loaded(&tx, batch.len())?;
    tx.commit()?;
    Ok(set_aside)
}

/// Loads a batch of the snapshot's patients (without search keys). Returns how
/// many were set aside.
pub fn load_patients(
    conn: &mut Connection,
    batch: &[PulledItem<Patient>],
) -> Result<usize, StoreError> {
    load(conn, STREAM_PATIENTS, batch, patients::upsert_row)
}

/// Loads a batch of the snapshot's staff (doctors into `doctors` too).
pub fn load_staff(
    conn: &mut Connection,
    batch: &[PulledItem<PulledStaff>],
) -> Result<usize, StoreError> {
    load(conn, STREAM_STAFF, batch, pull::upsert_staff)
}

/// Loads a batch of the snapshot's appointments. One whose patient or doctor is
/// not here (the foreign key refuses it) is set aside, as the feed does once
/// the other streams are current.
pub fn load_appointments(
    conn: &mut Connection,
    batch: &[PulledItem<Appointment>],
) -> Result<usize, StoreError> {
    load(conn, STREAM_APPOINTMENTS, batch, |c, a| {
        crate::schedule::upsert_appointment(c, a).map_err(|e| match e {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                StoreError::CorruptRow("its patient or doctor is not on this device".into())
            }
            e => e,
        })
    })
}

/// Loads a batch of the snapshot's reports by the feed's rules (a report whose
/// patient is not here is set aside). Returns (stored here, set aside).
pub fn load_reports(
    conn: &mut Connection,
    batch: &[PulledItem<PulledReport>],
    pulled_at: DateTime<Utc>,
) -> Result<(usize, usize), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let judged = pull::judge_reports(&tx, batch, pulled_at, true)?;
    loaded(&tx, batch.len())?;
    tx.commit()?;
    Ok((judged.stored, judged.set_aside))
}

/// Every row is in: from now on a restart builds keys instead of loading again.
pub fn rows_loaded(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute("UPDATE sync_bootstrap SET phase = 'keys' WHERE id = 1", [])?;
    Ok(())
}

/// Builds the search keys of up to `limit` patients after the last one done, in
/// one transaction; returns how many were done (0: all are).
pub fn build_keys(conn: &mut Connection, limit: usize) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let after: String = tx.query_row(
        "SELECT keys_after FROM sync_bootstrap WHERE id = 1",
        [],
        |r| r.get(0),
    )?;
    let batch = patients::live_after(&tx, &after, limit)?;
    let Some(last) = batch.last().map(|p| p.id.as_str().to_owned()) else {
        return Ok(0);
    };
    patients::add_keys_sorted(&tx, &batch)?;
    tx.execute(
        "UPDATE sync_bootstrap SET keys_after = ?1 WHERE id = 1",
        [&last],
    )?;
    tx.commit()?;
    Ok(batch.len())
}

/// Ends the bootstrap in one transaction: every stream's cursor becomes the
/// snapshot's (the reports cursor goes back to just before a report that waited
/// for one loaded after it, as the feed rewinds), the search index is marked
/// current, and the bootstrap row goes. From here the device pulls the feeds.
pub fn finish(conn: &mut Connection) -> Result<i64, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let cursor: i64 = tx.query_row("SELECT cursor FROM sync_bootstrap WHERE id = 1", [], |r| {
        r.get(0)
    })?;
    for stream in [STREAM_PATIENTS, STREAM_STAFF, STREAM_APPOINTMENTS] {
        pull::set_cursor(&tx, stream, cursor)?;
    }
    let reports = pull::rewind_to_ready(&tx, cursor)?.unwrap_or(cursor);
    pull::set_cursor(&tx, STREAM_REPORTS, reports)?;
    settings::set(
        &tx,
        patients::SEARCH_INDEX_SETTING,
        &patients::SEARCH_INDEX_VERSION.to_string(),
    )?;
    tx.execute("DELETE FROM sync_bootstrap", [])?;
    tx.commit()?;
    Ok(cursor)
}
