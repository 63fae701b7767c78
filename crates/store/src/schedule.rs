//! Doctors and their appointments.

use chrono::{DateTime, NaiveDate, Utc};
use clinic_domain::{
    Appointment, AppointmentStatus, Doctor, DoctorId, PatientId, patient::parse_date,
};
use rusqlite::{Connection, Row, params};

use crate::StoreError;

pub fn upsert_doctor(conn: &Connection, d: &Doctor) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO doctors (id, name, department) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, department = excluded.department",
    )?
    .execute(params![d.id.as_str(), d.name, d.department])?;
    Ok(())
}

pub fn doctors(conn: &Connection) -> Result<Vec<Doctor>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id, name, department FROM doctors ORDER BY department, id")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))?;
    rows.map(|r| {
        let (id, name, department) = r?;
        Ok(Doctor {
            id: DoctorId::parse(&id).map_err(|e| StoreError::CorruptRow(e.to_string()))?,
            name,
            department,
        })
    })
    .collect()
}

pub fn upsert_appointment(conn: &Connection, a: &Appointment) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO appointments (id, doctor_id, patient_id, starts_at, ends_at, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET doctor_id = excluded.doctor_id, patient_id = excluded.patient_id,
             starts_at = excluded.starts_at, ends_at = excluded.ends_at, status = excluded.status",
    )?
    .execute(params![
        a.id,
        a.doctor_id.as_str(),
        a.patient_id.as_str(),
        a.starts_at.timestamp(),
        a.ends_at.timestamp(),
        a.status.as_str()
    ])?;
    Ok(())
}

/// An appointment with what the front desk needs to know of its patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledVisit {
    pub appointment: Appointment,
    pub patient_name: String,
    pub patient_birth_date: NaiveDate,
    pub patient_insured: bool,
}

fn instant(secs: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| StoreError::CorruptRow(format!("time {secs} out of range")))
}

fn visit_from_row(r: &Row<'_>) -> rusqlite::Result<Result<ScheduledVisit, StoreError>> {
    let (id, doctor, patient): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
    let (starts, ends): (i64, i64) = (r.get(3)?, r.get(4)?);
    let status: String = r.get(5)?;
    let (patient_name, birth, patient_insured): (String, String, bool) =
        (r.get(6)?, r.get(7)?, r.get(8)?);
    let corrupt = |e: clinic_domain::DomainError| StoreError::CorruptRow(e.to_string());
    Ok((|| {
        Ok(ScheduledVisit {
            appointment: Appointment {
                id,
                doctor_id: DoctorId::parse(&doctor).map_err(corrupt)?,
                patient_id: PatientId::parse(&patient).map_err(corrupt)?,
                starts_at: instant(starts)?,
                ends_at: instant(ends)?,
                status: AppointmentStatus::parse(&status).map_err(corrupt)?,
            },
            patient_name,
            patient_birth_date: parse_date(&birth).map_err(corrupt)?,
            patient_insured,
        })
    })())
}

/// Visits starting in `[from, to)`, in time order, for one doctor or all.
pub fn visits_between(
    conn: &Connection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    doctor: Option<&DoctorId>,
) -> Result<Vec<ScheduledVisit>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, a.doctor_id, a.patient_id, a.starts_at, a.ends_at, a.status,
                p.name, p.birth_date, p.is_insured
         FROM appointments a JOIN patients p ON p.id = a.patient_id
         WHERE a.starts_at >= ?1 AND a.starts_at < ?2 AND (?3 IS NULL OR a.doctor_id = ?3)
         ORDER BY a.starts_at, a.doctor_id, a.id",
    )?;
    let rows = stmt.query_map(
        params![
            from.timestamp(),
            to.timestamp(),
            doctor.map(DoctorId::as_str)
        ],
        visit_from_row,
    )?;
    rows.map(|r| r?).collect()
}
