//! The clinic's records (clinics, patients, staff, appointments): point reads,
//! upserts and deletes, whole-clinic loads and imports. Every write takes its
//! change number from the clinic's counter row inside its own transaction.

use std::str::FromStr;

use chrono::NaiveDate;
use clinic_domain::demo::DemoClinic;
use clinic_domain::{Appointment, ClinicZone, Patient, PatientId, Sex, StaffMember, StaffRole};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::super::common::corrupt;
use super::super::{ImportRows, StoreError};

/// Takes the clinic's next change number inside `tx`, so the number and the change commit together.
fn next_seq(tx: &Transaction<'_>, clinic_id: &str) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "UPDATE clinics SET change_seq = change_seq + 1 WHERE id = ?1 RETURNING change_seq",
    )?
    .query_row([clinic_id], |r| r.get(0))
    .optional()?
    .ok_or_else(|| StoreError::UnknownClinic(clinic_id.to_owned()))
}

fn put_patient(
    tx: &Transaction<'_>,
    clinic_id: &str,
    p: &Patient,
    seq: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO patients (clinic_id, id, name, sex, birth_date, is_insured, phone, deleted, seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8)
         ON CONFLICT (clinic_id, id) DO UPDATE SET name = excluded.name, sex = excluded.sex,
             birth_date = excluded.birth_date, is_insured = excluded.is_insured,
             phone = excluded.phone, deleted = 0, seq = excluded.seq",
    )?
    .execute(params![
        clinic_id,
        p.id.as_str(),
        p.name,
        p.sex.as_str(),
        p.birth_date.to_string(),
        p.is_insured,
        p.phone,
        seq
    ])?;
    Ok(())
}

fn put_appointment(
    tx: &Transaction<'_>,
    clinic_id: &str,
    a: &Appointment,
    seq: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO appointments (clinic_id, id, doctor_id, patient_id, starts_at, ends_at, status, deleted, seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8)
         ON CONFLICT (clinic_id, id) DO UPDATE SET doctor_id = excluded.doctor_id,
             patient_id = excluded.patient_id, starts_at = excluded.starts_at, ends_at = excluded.ends_at,
             status = excluded.status, deleted = 0, seq = excluded.seq",
    )?
    .execute(params![
        clinic_id,
        a.id,
        a.doctor_id.as_str(),
        a.patient_id.as_str(),
        a.starts_at.timestamp(),
        a.ends_at.timestamp(),
        a.status.as_str(),
        seq
    ])?;
    Ok(())
}

fn put_staff(
    tx: &Transaction<'_>,
    clinic_id: &str,
    m: &StaffMember,
    active: bool,
    pin_verifier: &str,
    seq: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO staff (clinic_id, id, name, role, department, active, pin_verifier, seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (clinic_id, id) DO UPDATE SET name = excluded.name, role = excluded.role,
             department = excluded.department, active = excluded.active,
             pin_verifier = excluded.pin_verifier, seq = excluded.seq",
    )?
    .execute(params![
        clinic_id,
        m.id,
        m.name,
        m.role.as_str(),
        m.department,
        active,
        pin_verifier,
        seq
    ])?;
    Ok(())
}

pub(super) fn ensure_clinic(
    conn: &Connection,
    clinic_id: &str,
    zone: ClinicZone,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO clinics (id, zone) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
        params![clinic_id, zone.name()],
    )?;
    Ok(())
}

pub(super) fn clinic_zone(
    conn: &Connection,
    clinic_id: &str,
) -> Result<Option<ClinicZone>, StoreError> {
    let zone: Option<String> = conn
        .prepare_cached("SELECT zone FROM clinics WHERE id = ?1")?
        .query_row([clinic_id], |r| r.get(0))
        .optional()?;
    zone.map(|z| ClinicZone::parse(&z).map_err(corrupt))
        .transpose()
}

pub(super) fn patient(
    conn: &Connection,
    clinic_id: &str,
    id: &PatientId,
) -> Result<Option<(Patient, ClinicZone)>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT p.name, p.sex, p.birth_date, p.is_insured, p.phone, c.zone
             FROM patients p JOIN clinics c ON c.id = p.clinic_id
             WHERE p.clinic_id = ?1 AND p.id = ?2 AND p.deleted = 0",
        )?
        .query_row(params![clinic_id, id.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
            ))
        })
        .optional()?;
    let Some((name, sex, birth, is_insured, phone, zone)) = row else {
        return Ok(None);
    };
    let patient = Patient {
        id: id.clone(),
        name,
        sex: Sex::parse(&sex).map_err(corrupt)?,
        birth_date: NaiveDate::from_str(&birth).map_err(corrupt)?,
        is_insured,
        phone,
    };
    Ok(Some((patient, ClinicZone::parse(&zone).map_err(corrupt)?)))
}

pub(super) fn upsert_patient(
    conn: &mut Connection,
    clinic_id: &str,
    patient: &Patient,
) -> Result<i64, StoreError> {
    let tx = conn.transaction()?;
    let seq = next_seq(&tx, clinic_id)?;
    put_patient(&tx, clinic_id, patient, seq)?;
    tx.commit()?;
    Ok(seq)
}

pub(super) fn delete_patient(
    conn: &mut Connection,
    clinic_id: &str,
    id: &PatientId,
) -> Result<Option<i64>, StoreError> {
    let tx = conn.transaction()?;
    let seq = next_seq(&tx, clinic_id)?;
    // The tombstone keeps no personal data: only the ID travels to the clinics' copies.
    let n = tx.execute(
        "UPDATE patients SET deleted = 1, name = '', phone = NULL, seq = ?3
         WHERE clinic_id = ?1 AND id = ?2 AND deleted = 0",
        params![clinic_id, id.as_str(), seq],
    )?;
    if n == 0 {
        return Ok(None); // dropping tx rolls the sequence number back
    }
    tx.commit()?;
    Ok(Some(seq))
}

pub(super) fn upsert_appointment(
    conn: &mut Connection,
    clinic_id: &str,
    appointment: &Appointment,
) -> Result<i64, StoreError> {
    let tx = conn.transaction()?;
    let seq = next_seq(&tx, clinic_id)?;
    put_appointment(&tx, clinic_id, appointment, seq)?;
    tx.commit()?;
    Ok(seq)
}

pub(super) fn delete_appointment(
    conn: &mut Connection,
    clinic_id: &str,
    id: &str,
) -> Result<Option<i64>, StoreError> {
    let tx = conn.transaction()?;
    let seq = next_seq(&tx, clinic_id)?;
    let n = tx.execute(
        "UPDATE appointments SET deleted = 1, seq = ?3 WHERE clinic_id = ?1 AND id = ?2 AND deleted = 0",
        params![clinic_id, id, seq],
    )?;
    if n == 0 {
        return Ok(None);
    }
    tx.commit()?;
    Ok(Some(seq))
}

pub(super) fn upsert_staff(
    conn: &mut Connection,
    clinic_id: &str,
    member: &StaffMember,
    active: bool,
    pin_verifier: Option<&str>,
) -> Result<i64, StoreError> {
    let tx = conn.transaction()?;
    let verifier = match pin_verifier {
        Some(v) => v.to_owned(),
        None => tx
            .query_row(
                "SELECT pin_verifier FROM staff WHERE clinic_id = ?1 AND id = ?2",
                params![clinic_id, member.id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or(StoreError::PinRequired)?,
    };
    let seq = next_seq(&tx, clinic_id)?;
    put_staff(&tx, clinic_id, member, active, &verifier, seq)?;
    tx.commit()?;
    Ok(seq)
}

pub(super) fn staff_role(
    conn: &Connection,
    clinic_id: &str,
    id: &str,
) -> Result<Option<StaffRole>, StoreError> {
    let role: Option<String> = conn
        .prepare_cached("SELECT role FROM staff WHERE clinic_id = ?1 AND id = ?2")?
        .query_row(params![clinic_id, id], |r| r.get(0))
        .optional()?;
    role.map(|r| StaffRole::parse(&r).map_err(corrupt))
        .transpose()
}

pub(super) fn load_clinic(
    conn: &mut Connection,
    clinic: &DemoClinic,
    pin_verifiers: &[String],
) -> Result<(), StoreError> {
    if pin_verifiers.len() != clinic.staff.len() {
        return Err(StoreError::PinRequired);
    }
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO clinics (id, zone) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET zone = excluded.zone",
        params![clinic.clinic_id, clinic.zone.name()],
    )?;
    let id = clinic.clinic_id.as_str();
    for p in &clinic.patients {
        let seq = next_seq(&tx, id)?;
        put_patient(&tx, id, p, seq)?;
    }
    for (m, v) in clinic.staff.iter().zip(pin_verifiers) {
        let seq = next_seq(&tx, id)?;
        put_staff(&tx, id, m, true, v, seq)?;
    }
    for a in &clinic.appointments {
        let seq = next_seq(&tx, id)?;
        put_appointment(&tx, id, a, seq)?;
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn import(
    conn: &mut Connection,
    clinic_id: &str,
    rows: ImportRows,
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let tx = conn.transaction()?;
    // One counter update for the whole file: the numbers are the block just below it.
    let n = rows.len() as i64;
    let last: i64 = tx
        .prepare_cached(
            "UPDATE clinics SET change_seq = change_seq + ?2 WHERE id = ?1 RETURNING change_seq",
        )?
        .query_row(params![clinic_id, n], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::UnknownClinic(clinic_id.to_owned()))?;
    let seqs = last - n + 1..;
    match &rows {
        ImportRows::Patients(ps) => {
            for (p, seq) in ps.iter().zip(seqs) {
                put_patient(&tx, clinic_id, p, seq)?;
            }
        }
        ImportRows::Appointments(list) => {
            for (a, seq) in list.iter().zip(seqs) {
                put_appointment(&tx, clinic_id, a, seq)?;
            }
        }
        ImportRows::Staff(list) => {
            for (s, seq) in list.iter().zip(seqs) {
                put_staff(&tx, clinic_id, &s.member, s.active, &s.pin_verifier, seq)?;
            }
        }
    }
    tx.commit()?;
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::super::tests::store;
    use super::*;
    use crate::store::{CentralStore, staff_role_from_feed};

    #[test]
    fn staff_roles_from_the_point_read_and_from_the_feed_agree() {
        let (_d, s) = store();
        let member = |id: &str, role| StaffMember {
            id: id.into(),
            name: "李静".into(),
            role,
            department: "内科".into(),
        };
        s.upsert_staff("C1", &member("D1", StaffRole::Doctor), true, Some("v"))
            .unwrap();
        s.upsert_staff("C1", &member("N1", StaffRole::Nurse), false, Some("v"))
            .unwrap();
        for (id, role) in [
            ("D1", Some(StaffRole::Doctor)),
            ("N1", Some(StaffRole::Nurse)),
            ("X9", None),
        ] {
            assert_eq!(s.staff_role("C1", id).unwrap(), role, "{id}");
            assert_eq!(staff_role_from_feed(&s, "C1", id).unwrap(), role, "{id}");
        }
        assert_eq!(s.staff_role("C2", "D1").unwrap(), None, "another clinic's");
    }

    #[test]
    fn a_failed_delete_does_not_burn_a_sequence_number() {
        let (_d, s) = store();
        assert_eq!(
            s.delete_patient("C1", &PatientId::parse("P404").unwrap())
                .unwrap(),
            None
        );
        let seq = s.delete_appointment("C1", "A1").unwrap();
        assert_eq!(seq, None);
        let page = s.patients_feed("C1", 0, 10).unwrap();
        assert_eq!(page.next_cursor, 0);
    }
}
