//! Doctors and their appointments.

use chrono::{DateTime, NaiveDate, Utc};
use clinic_domain::{Appointment, AppointmentStatus, Doctor, DoctorId, PatientId};
use rusqlite::{Connection, Row, params};

use crate::StoreError;
use crate::column::Text;

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
    let rows = stmt.query_map([], |r| {
        Ok(Doctor {
            id: r.get::<_, Text<DoctorId>>("id")?.0,
            name: r.get("name")?,
            department: r.get("department")?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
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
        Text(a.status)
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

/// A stored instant (Unix seconds) as a time; one out of chrono's range is a corrupt row.
fn instant(r: &Row<'_>, column: &str) -> rusqlite::Result<DateTime<Utc>> {
    let index = r.as_ref().column_index(column)?;
    let secs: i64 = r.get(index)?;
    DateTime::from_timestamp(secs, 0).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Integer,
            format!("time {secs} out of range").into(),
        )
    })
}

fn visit_from_row(r: &Row<'_>) -> rusqlite::Result<ScheduledVisit> {
    Ok(ScheduledVisit {
        appointment: Appointment {
            id: r.get("id")?,
            doctor_id: r.get::<_, Text<DoctorId>>("doctor_id")?.0,
            patient_id: r.get::<_, Text<PatientId>>("patient_id")?.0,
            starts_at: instant(r, "starts_at")?,
            ends_at: instant(r, "ends_at")?,
            status: r.get::<_, Text<AppointmentStatus>>("status")?.0,
        },
        patient_name: r.get("patient_name")?,
        patient_birth_date: r.get::<_, Text<NaiveDate>>("birth_date")?.0,
        patient_insured: r.get("is_insured")?,
    })
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
                p.name AS patient_name, p.birth_date, p.is_insured
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
    Ok(rows.collect::<Result<_, _>>()?)
}
