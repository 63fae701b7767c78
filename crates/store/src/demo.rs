//! Loading the demo clinic into an empty store.

use clinic_domain::demo::DemoClinic;
use rusqlite::{Connection, TransactionBehavior, params};

use crate::column::Text;
use crate::{StoreError, patients, schedule, settings};

/// Fills an empty store with `clinic` in one transaction. A store that already has
/// patients is left alone (returns `false`): demo data never mixes with real data.
pub fn load_if_empty(conn: &mut Connection, clinic: &DemoClinic) -> Result<bool, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if patients::count(&tx)? > 0 {
        return Ok(false);
    }
    settings::set(&tx, settings::CLINIC_ID, &clinic.clinic_id)?;
    settings::set(&tx, settings::CLINIC_NAME, &clinic.clinic_name)?;
    settings::set(&tx, settings::TIME_ZONE, clinic.zone.name())?;
    for p in &clinic.patients {
        patients::upsert(&tx, p)?;
    }
    for d in &clinic.doctors {
        schedule::upsert_doctor(&tx, d)?;
    }
    {
        let mut staff = tx.prepare_cached(
            "INSERT INTO staff (id, name, role, department) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role, department = excluded.department",
        )?;
        for s in &clinic.staff {
            staff.execute(params![s.id, s.name, Text(s.role), s.department])?;
        }
    }
    for a in &clinic.appointments {
        schedule::upsert_appointment(&tx, a)?;
    }
    tx.commit()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use clinic_domain::{ClinicZone, demo};

    use super::*;
    use crate::Database;

    #[test]
    fn demo_loads_once_and_its_day_is_queryable() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("d.sqlite3")).unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let clinic = demo::clinic("C001", 42, ClinicZone::default(), today);
        assert!(db.write(|c| load_if_empty(c, &clinic)).unwrap());
        assert!(
            !db.write(|c| load_if_empty(c, &clinic)).unwrap(),
            "second load is refused"
        );
        assert_eq!(db.read(patients::count).unwrap(), 2_000);
        let (from, to) = clinic.zone.day_bounds(today);
        let visits = db
            .read(|c| schedule::visits_between(c, from, to, None))
            .unwrap();
        let expected = clinic
            .appointments
            .iter()
            .filter(|a| clinic.zone.date_of(a.starts_at) == today)
            .count();
        assert_eq!(visits.len(), expected);
        assert!(
            visits
                .windows(2)
                .all(|w| w[0].appointment.starts_at <= w[1].appointment.starts_at)
        );
        let d = &clinic.doctors[0].id;
        let one = db
            .read(|c| schedule::visits_between(c, from, to, Some(d)))
            .unwrap();
        assert!(!one.is_empty() && one.iter().all(|v| &v.appointment.doctor_id == d));
    }
}
