//! The pull feeds: a clinic's changes after a cursor, in change-number order, one page at a time.

use std::str::FromStr;

use chrono::NaiveDate;
use clinic_protocol::{
    AppointmentRecord, FeedItem, FeedPage, PatientRecord, SnapshotCounts, StaffRecord, StoredReport,
};
use rusqlite::{Connection, params};

use super::super::StoreError;
use super::super::common::{corrupt, instant};
use super::ingest::{REPORT_COLUMNS, read_report_from};
use crate::snapshot::{SnapshotRecord, SnapshotWriter};

/// Runs a feed query selecting `id, seq, deleted, <data columns...>` and pages it.
fn page<T>(
    conn: &Connection,
    sql: &str,
    clinic_id: &str,
    after: i64,
    limit: u32,
    data: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<FeedPage<T>, StoreError> {
    let limit = limit.max(1);
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params![clinic_id, after, i64::from(limit) + 1])?;
    let mut items = Vec::new();
    let mut has_more = false;
    while let Some(row) = rows.next()? {
        if items.len() == limit as usize {
            has_more = true;
            break;
        }
        let id: String = row.get(0)?;
        let seq: i64 = row.get(1)?;
        let deleted: bool = row.get(2)?;
        let data = if deleted { None } else { Some(data(row)?) };
        items.push(FeedItem {
            seq,
            id,
            deleted,
            data,
        });
    }
    let next_cursor = items.last().map_or(after, |i| i.seq);
    Ok(FeedPage {
        items,
        next_cursor,
        has_more,
    })
}

// Each stream's columns after `id, seq, deleted`, and their reader: one each, for
// the feed pages and the snapshot.
const PATIENT_COLUMNS: &str = "name, sex, birth_date, is_insured, phone FROM patients";
const STAFF_COLUMNS: &str = "name, role, department, active, pin_verifier FROM staff";
const APPOINTMENT_COLUMNS: &str =
    "doctor_id, patient_id, starts_at, ends_at, status FROM appointments";

fn patient_record(r: &rusqlite::Row<'_>) -> Result<PatientRecord, StoreError> {
    Ok(PatientRecord {
        name: r.get(3)?,
        sex: r.get(4)?,
        birth_date: NaiveDate::from_str(&r.get::<_, String>(5)?).map_err(corrupt)?,
        is_insured: r.get(6)?,
        phone: r.get(7)?,
    })
}

fn staff_record(r: &rusqlite::Row<'_>) -> Result<StaffRecord, StoreError> {
    Ok(StaffRecord {
        name: r.get(3)?,
        role: r.get(4)?,
        department: r.get(5)?,
        active: r.get(6)?,
        pin_verifier: r.get(7)?,
    })
}

fn appointment_record(r: &rusqlite::Row<'_>) -> Result<AppointmentRecord, StoreError> {
    Ok(AppointmentRecord {
        doctor_id: r.get(3)?,
        patient_id: r.get(4)?,
        starts_at: instant(r.get(5)?)?,
        ends_at: instant(r.get(6)?)?,
        status: r.get(7)?,
    })
}

fn report_record(r: &rusqlite::Row<'_>) -> Result<StoredReport, StoreError> {
    read_report_from(r, 3)?.into_wire(false)
}

pub(super) fn patients(
    conn: &Connection,
    clinic_id: &str,
    after: i64,
    limit: u32,
) -> Result<FeedPage<PatientRecord>, StoreError> {
    page(
        conn,
        &format!(
            "SELECT id, seq, deleted, {PATIENT_COLUMNS}
             WHERE clinic_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
        ),
        clinic_id,
        after,
        limit,
        patient_record,
    )
}

pub(super) fn staff(
    conn: &Connection,
    clinic_id: &str,
    after: i64,
    limit: u32,
) -> Result<FeedPage<StaffRecord>, StoreError> {
    page(
        conn,
        &format!(
            "SELECT id, seq, 0, {STAFF_COLUMNS}
             WHERE clinic_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
        ),
        clinic_id,
        after,
        limit,
        staff_record,
    )
}

pub(super) fn appointments(
    conn: &Connection,
    clinic_id: &str,
    after: i64,
    limit: u32,
) -> Result<FeedPage<AppointmentRecord>, StoreError> {
    page(
        conn,
        &format!(
            "SELECT id, seq, deleted, {APPOINTMENT_COLUMNS}
             WHERE clinic_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
        ),
        clinic_id,
        after,
        limit,
        appointment_record,
    )
}

/// Reports are never changed or deleted: each appears once, at the number it was stored with.
pub(super) fn reports(
    conn: &Connection,
    clinic_id: &str,
    after: i64,
    limit: u32,
) -> Result<FeedPage<StoredReport>, StoreError> {
    page(
        conn,
        &format!(
            "SELECT report_id, seq, 0, {REPORT_COLUMNS} FROM reports
             WHERE clinic_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
        ),
        clinic_id,
        after,
        limit,
        report_record,
    )
}

/// Streams every live record of `clinic_id` of one stream (`id, seq, 0, <columns>`
/// in change-number order) into `out`.
fn stream<T>(
    conn: &Connection,
    sql: &str,
    clinic_id: &str,
    out: &mut SnapshotWriter,
    data: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
    wrap: fn(FeedItem<T>) -> SnapshotRecord,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([clinic_id])?;
    while let Some(row) = rows.next()? {
        let item = FeedItem {
            id: row.get(0)?,
            seq: row.get(1)?,
            deleted: false,
            data: Some(data(row)?),
        };
        if out.record(&wrap(item))? {
            out.flush_blocking()?;
        }
    }
    Ok(())
}

/// The clinic's live records at one change number: the counter, the counts and
/// every stream read in ONE read transaction (the reader's WAL snapshot is taken
/// at its first read and kept to the end), so what the snapshot holds is exactly
/// the changes up to the counter it names. Returns the records written.
pub(super) fn snapshot(
    conn: &mut Connection,
    clinic_id: &str,
    mut out: SnapshotWriter,
) -> Result<u64, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)?;
    let cursor: i64 = tx
        .query_row(
            "SELECT change_seq FROM clinics WHERE id = ?1",
            [clinic_id],
            |r| r.get(0),
        )
        .map_err(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => StoreError::UnknownClinic(clinic_id.into()),
            e => e.into(),
        })?;
    let count = |sql: &str| -> Result<u64, StoreError> {
        Ok(tx
            .query_row(sql, [clinic_id], |r| r.get::<_, i64>(0))?
            .max(0) as u64)
    };
    let counts = SnapshotCounts {
        staff: count("SELECT count(*) FROM staff WHERE clinic_id = ?1")?,
        patients: count("SELECT count(*) FROM patients WHERE clinic_id = ?1 AND NOT deleted")?,
        appointments: count(
            "SELECT count(*) FROM appointments WHERE clinic_id = ?1 AND NOT deleted",
        )?,
        reports: count("SELECT count(*) FROM reports WHERE clinic_id = ?1")?,
    };
    out.begin(cursor, counts)?;
    out.flush_blocking()?;
    stream(
        &tx,
        &format!("SELECT id, seq, 0, {STAFF_COLUMNS} WHERE clinic_id = ?1 ORDER BY seq"),
        clinic_id,
        &mut out,
        staff_record,
        SnapshotRecord::Staff,
    )?;
    stream(
        &tx,
        &format!(
            "SELECT id, seq, 0, {PATIENT_COLUMNS} WHERE clinic_id = ?1 AND NOT deleted ORDER BY seq"
        ),
        clinic_id,
        &mut out,
        patient_record,
        SnapshotRecord::Patient,
    )?;
    stream(
        &tx,
        &format!(
            "SELECT id, seq, 0, {APPOINTMENT_COLUMNS} WHERE clinic_id = ?1 AND NOT deleted ORDER BY seq"
        ),
        clinic_id,
        &mut out,
        appointment_record,
        SnapshotRecord::Appointment,
    )?;
    stream(
        &tx,
        &format!(
            "SELECT report_id, seq, 0, {REPORT_COLUMNS} FROM reports WHERE clinic_id = ?1 ORDER BY seq"
        ),
        clinic_id,
        &mut out,
        report_record,
        SnapshotRecord::Report,
    )?;
    let rows = counts.total();
    out.end()?;
    out.flush_blocking()?;
    tx.finish()?;
    Ok(rows)
}
