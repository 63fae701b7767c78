//! The clinic's data pulled from the central server: one cursor per stream, and
//! each page applied in one transaction together with its cursor, so a crash
//! between pages repeats a page rather than skipping one (every apply is an upsert
//! or a delete, so applying a page twice changes nothing).

use clinic_domain::{Appointment, Patient, PatientId, StaffRole};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::{StoreError, outbox, patients, schedule};

pub const STREAM_PATIENTS: &str = "patients";
pub const STREAM_STAFF: &str = "staff";
pub const STREAM_APPOINTMENTS: &str = "appointments";

/// One item of a page: a new or changed record, or a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    Upsert(T),
    Delete(String),
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
}

pub fn cursor(conn: &Connection, stream: &str) -> Result<i64, StoreError> {
    Ok(conn
        .query_row("SELECT cursor FROM sync_cursors WHERE stream = ?1", [stream], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

fn set_cursor(conn: &Connection, stream: &str, cursor: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sync_cursors (stream, cursor) VALUES (?1, ?2)
         ON CONFLICT (stream) DO UPDATE SET cursor = excluded.cursor",
    )?
    .execute(params![stream, cursor])?;
    Ok(())
}

pub fn state(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn.query_row("SELECT value FROM sync_state WHERE key = ?1", [key], |r| r.get(0)).optional()?)
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

/// Applies a patients page and advances the cursor, in one transaction.
///
/// A deletion of a patient who still has reports the server has not acknowledged is
/// deferred (the nurse's work stays reachable) and applied by
/// [`apply_deferred_deletions`] once they are delivered.
pub fn apply_patients(conn: &mut Connection, page: &[(i64, Change<Patient>)], next_cursor: i64) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (seq, change) in page {
        match change {
            Change::Upsert(p) => {
                tx.execute("DELETE FROM deferred_patient_deletions WHERE patient_id = ?1", [p.id.as_str()])?;
                patients::upsert(&tx, p)?;
            }
            Change::Delete(id) => {
                if outbox::patient_has_pending(&tx, id)? {
                    tx.execute(
                        "INSERT INTO deferred_patient_deletions (patient_id, seq) VALUES (?1, ?2)
                         ON CONFLICT (patient_id) DO UPDATE SET seq = excluded.seq",
                        params![id, seq],
                    )?;
                } else {
                    delete_patient(&tx, id)?;
                }
            }
        }
    }
    set_cursor(&tx, STREAM_PATIENTS, next_cursor)?;
    tx.commit()?;
    Ok(())
}

/// Removes a patient the server deleted: their appointments go; the row goes too
/// unless reports (never deleted) still refer to it, in which case it is hidden
/// from search and stripped of contact data.
fn delete_patient(conn: &Connection, id: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM appointments WHERE patient_id = ?1", [id])?;
    let id = PatientId::parse(id).map_err(|e| StoreError::CorruptRow(format!("pulled patient id: {e}")))?;
    patients::delete(conn, &id)?;
    Ok(())
}

/// Applies deferred deletions whose patients have nothing pending any more.
/// Returns how many were applied.
pub fn apply_deferred_deletions(conn: &mut Connection) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let ids: Vec<String> = {
        let mut stmt = tx.prepare("SELECT patient_id FROM deferred_patient_deletions")?;
        stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    let mut applied = 0;
    for id in ids {
        if !outbox::patient_has_pending(&tx, &id)? {
            delete_patient(&tx, &id)?;
            tx.execute("DELETE FROM deferred_patient_deletions WHERE patient_id = ?1", [&id])?;
            applied += 1;
        }
    }
    tx.commit()?;
    Ok(applied)
}

/// Applies a staff page (doctors also go into `doctors`, which the schedule uses)
/// and advances the cursor, in one transaction. Staff are never tombstoned.
pub fn apply_staff(conn: &mut Connection, page: &[(i64, Change<PulledStaff>)], next_cursor: i64) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (_, change) in page {
        match change {
            Change::Upsert(s) => {
                tx.prepare_cached(
                    "INSERT INTO staff (id, name, role, department, active, pin_verifier) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role,
                         department = excluded.department, active = excluded.active, pin_verifier = excluded.pin_verifier",
                )?
                .execute(params![s.id, s.name, s.role.as_str(), s.department, s.active, s.pin_verifier])?;
                if s.role == StaffRole::Doctor {
                    let id = clinic_domain::DoctorId::parse(&s.id).map_err(|e| StoreError::CorruptRow(e.to_string()))?;
                    schedule::upsert_doctor(
                        &tx,
                        &clinic_domain::Doctor { id, name: s.name.clone(), department: s.department.clone() },
                    )?;
                }
            }
            // The server never sends these (a departed member is inactive); if one
            // came, old reports and appointments still name them, so keep the row.
            Change::Delete(id) => {
                tx.execute("UPDATE staff SET active = 0 WHERE id = ?1", [id])?;
            }
        }
    }
    set_cursor(&tx, STREAM_STAFF, next_cursor)?;
    tx.commit()?;
    Ok(())
}

/// Applies an appointments page (tombstones delete, cancellations are a status)
/// and advances the cursor, in one transaction.
///
/// An appointment whose patient or doctor is not here either is newer than our
/// last patients/staff page (then stop before it, so the caller can pull those
/// first) or refers to a patient the server has since deleted (then, with
/// `skip_unknown`, which the caller sets once the other streams are pulled to
/// their end, it is left out: a schedule row needs its patient).
pub fn apply_appointments(
    conn: &mut Connection,
    page: &[(i64, Change<Appointment>)],
    next_cursor: i64,
    skip_unknown: bool,
) -> Result<Applied, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let start = cursor(&tx, STREAM_APPOINTMENTS)?;
    let mut applied = Applied::All;
    let mut next = next_cursor;
    let mut last_seq = None;
    for (seq, change) in page {
        match change {
            Change::Upsert(a) => {
                let known: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM patients WHERE id = ?1) AND EXISTS (SELECT 1 FROM doctors WHERE id = ?2)",
                    params![a.patient_id.as_str(), a.doctor_id.as_str()],
                    |r| r.get(0),
                )?;
                if !known && skip_unknown {
                    tracing::info!(seq, "leaving out an appointment whose patient or doctor the server no longer has");
                } else if !known {
                    applied = Applied::StoppedAtUnknownReference;
                    next = last_seq.unwrap_or(start);
                    break;
                } else {
                    schedule::upsert_appointment(&tx, a)?;
                }
            }
            Change::Delete(id) => {
                tx.execute("DELETE FROM appointments WHERE id = ?1", [id])?;
            }
        }
        last_seq = Some(*seq);
    }
    set_cursor(&tx, STREAM_APPOINTMENTS, next)?;
    tx.commit()?;
    Ok(applied)
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
        db.write(|c| apply_patients(c, &[(1, Change::Upsert(patient("P1"))), (2, Change::Upsert(patient("P2")))], 2))
            .unwrap();
        let report = outbox::NewReport::score(
            PatientId::parse("P1").unwrap(),
            clinic_domain::PainScore::new(clinic_domain::PainScale::Nrs, 4).unwrap(),
            Utc::now(),
            "N1",
            "d",
        );
        let id = db.write(|c| outbox::record_report(c, &report, Utc::now())).unwrap();
        db.write(|c| apply_patients(c, &[(3, Change::Delete("P1".into())), (4, Change::Delete("P2".into()))], 4))
            .unwrap();
        assert!(db.read(|c| patients::get(c, &PatientId::parse("P1").unwrap())).unwrap().is_some(), "kept: pending");
        assert!(db.read(|c| patients::get(c, &PatientId::parse("P2").unwrap())).unwrap().is_none());
        assert_eq!(db.read(|c| cursor(c, STREAM_PATIENTS)).unwrap(), 4);
        assert_eq!(db.write(apply_deferred_deletions).unwrap(), 0, "still pending");
        db.write(|c| outbox::mark_delivered(c, &[(id.clone(), None)], 1)).unwrap();
        assert_eq!(db.write(apply_deferred_deletions).unwrap(), 1);
        assert!(db.read(|c| patients::search(c, "李四", 10)).unwrap().is_empty(), "hidden once delivered");
        assert!(db.read(|c| outbox::get(c, &id)).unwrap().is_some(), "the report itself stays");
    }
}
