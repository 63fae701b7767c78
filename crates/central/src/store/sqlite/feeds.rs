//! The pull feeds: a clinic's changes after a cursor, in change-number order, one page at a time.

use std::str::FromStr;

use chrono::NaiveDate;
use clinic_protocol::{
    AppointmentRecord, FeedItem, FeedPage, PatientRecord, StaffRecord, StoredReport,
};
use rusqlite::{Connection, params};

use super::super::StoreError;
use super::super::common::{corrupt, instant};
use super::ingest::{REPORT_COLUMNS, read_report_from};

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

pub(super) fn patients(
    conn: &Connection,
    clinic_id: &str,
    after: i64,
    limit: u32,
) -> Result<FeedPage<PatientRecord>, StoreError> {
    page(
        conn,
        "SELECT id, seq, deleted, name, sex, birth_date, is_insured, phone FROM patients
         WHERE clinic_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        clinic_id,
        after,
        limit,
        |r| {
            Ok(PatientRecord {
                name: r.get(3)?,
                sex: r.get(4)?,
                birth_date: NaiveDate::from_str(&r.get::<_, String>(5)?).map_err(corrupt)?,
                is_insured: r.get(6)?,
                phone: r.get(7)?,
            })
        },
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
        "SELECT id, seq, 0, name, role, department, active, pin_verifier FROM staff
         WHERE clinic_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        clinic_id,
        after,
        limit,
        |r| {
            Ok(StaffRecord {
                name: r.get(3)?,
                role: r.get(4)?,
                department: r.get(5)?,
                active: r.get(6)?,
                pin_verifier: r.get(7)?,
            })
        },
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
        "SELECT id, seq, deleted, doctor_id, patient_id, starts_at, ends_at, status FROM appointments
         WHERE clinic_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        clinic_id,
        after,
        limit,
        |r| {
            Ok(AppointmentRecord {
                doctor_id: r.get(3)?,
                patient_id: r.get(4)?,
                starts_at: instant(r.get(5)?)?,
                ends_at: instant(r.get(6)?)?,
                status: r.get(7)?,
            })
        },
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
        |r| read_report_from(r, 3)?.into_wire(false),
    )
}
