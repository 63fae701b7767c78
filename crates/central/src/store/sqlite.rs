//! SQLite implementation of [`CentralStore`].
//!
//! One write connection behind a mutex (SQLite has one writer anyway; holding it
//! ourselves keeps writers from spinning on `SQLITE_BUSY`) and a small pool of
//! read connections, which WAL lets run beside the writer.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::NaiveDate;
use clinic_domain::demo::DemoClinic;
use clinic_domain::{Appointment, ClinicZone, Patient, PatientId, Sex, StaffMember};
use clinic_protocol::{AppointmentRecord, FeedItem, FeedPage, PatientRecord, StaffRecord};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use rusqlite_migration::{M, Migrations};

use super::common::{RawReport, accepted, activity_to_db, corrupt, instant, now_unix};
use super::{CentralStore, ImportRows, IngestOutcome, NewReport, StoreError, TokenRecord};

// Append only: a shipped step has already run on clinics' databases, so editing it changes nothing there.
const MIGRATION_LIST: &[M<'static>] = &[
    M::up(include_str!("../../migrations/0001_init.sql")),
    M::up(include_str!("../../migrations/0002_assessment_details.sql")),
];
const MIGRATIONS: Migrations<'static> = Migrations::from_slice(MIGRATION_LIST);

/// How hard commits try to survive a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: a commit returns only once the WAL is fsynced. Production.
    Full,
    /// `synchronous=OFF`: no fsync at all. Only the benchmark's baseline uses it.
    Off,
}

pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

/// Read connections kept open; more may be opened under load and are then dropped.
const POOLED_READERS: usize = 8;

impl SqliteStore {
    pub fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Off => "OFF",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        MIGRATIONS.to_latest(&mut conn)?;
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-transaction drops the Transaction, which rolls back: the connection is fine.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reader(&self) -> Result<Reader<'_>, StoreError> {
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open(&self.path)?;
                c.busy_timeout(Duration::from_secs(5))?;
                c.pragma_update(None, "query_only", "ON")?;
                c
            }
        };
        Ok(Reader {
            store: self,
            conn: Some(conn),
        })
    }
}

struct Reader<'a> {
    store: &'a SqliteStore,
    conn: Option<Connection>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("present until drop")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut pool = self.store.readers.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < POOLED_READERS {
                pool.push(conn);
            }
        }
    }
}

/// Takes the clinic's next change number inside `tx`, so the number and the change commit together.
fn next_seq(tx: &Transaction<'_>, clinic_id: &str) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "UPDATE clinics SET change_seq = change_seq + 1 WHERE id = ?1 RETURNING change_seq",
    )?
    .query_row([clinic_id], |r| r.get(0))
    .optional()?
    .ok_or_else(|| StoreError::UnknownClinic(clinic_id.to_owned()))
}

/// Columns of [`read_report`], in its order.
const REPORT_COLUMNS: &str = "report_id, patient_id, pain_score, scale, submit_time, assessed_at,
    recorded_by, device_id, supersedes, reason, received_at,
    body_site, activity, note, intervention, follows_up";

fn read_report(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawReport> {
    Ok(RawReport {
        report_id: row.get(0)?,
        patient_id: row.get(1)?,
        pain_score: row.get(2)?,
        scale: row.get(3)?,
        submit_time: row.get(4)?,
        assessed_at: row.get(5)?,
        recorded_by: row.get(6)?,
        device_id: row.get(7)?,
        supersedes: row.get(8)?,
        reason: row.get(9)?,
        received_at: row.get(10)?,
        body_site: row.get(11)?,
        activity: row.get(12)?,
        note: row.get(13)?,
        intervention: row.get(14)?,
        follows_up: row.get(15)?,
    })
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

impl CentralStore for SqliteStore {
    fn ingest(&self, reports: &[NewReport]) -> Result<Vec<IngestOutcome>, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let received_at = now_unix();
        let mut outcomes = Vec::with_capacity(reports.len());
        {
            // ON CONFLICT DO NOTHING, then look: the primary key decides, not a prior check,
            // so two deliveries of one report can never both be stored.
            let mut insert = tx.prepare_cached(
                "INSERT INTO reports (clinic_id, report_id, patient_id, pain_score, scale, submit_time,
                     assessed_at, recorded_by, device_id, supersedes, reason, received_at,
                     body_site, activity, note, intervention, follows_up)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
                 ON CONFLICT (clinic_id, report_id) DO NOTHING",
            )?;
            let mut existing = tx.prepare_cached(&format!(
                "SELECT {REPORT_COLUMNS} FROM reports WHERE clinic_id = ?1 AND report_id = ?2"
            ))?;
            for r in reports {
                let id = r.report_id.to_string();
                let inserted = insert.execute(params![
                    r.clinic_id,
                    id,
                    r.patient_id.as_str(),
                    i64::from(r.score.value()),
                    r.score.scale().as_str(),
                    r.submit_time,
                    r.assessed_at,
                    r.recorded_by,
                    r.device_id,
                    r.supersedes.map(|u| u.to_string()),
                    r.reason,
                    received_at,
                    r.details.body_site,
                    r.details.activity.map(activity_to_db),
                    r.details.note,
                    r.details.intervention,
                    r.follows_up.map(|u| u.to_string()),
                ])?;
                if inserted == 1 {
                    outcomes.push(IngestOutcome::Accepted(accepted(r, received_at)));
                    continue;
                }
                let first = existing.query_row(params![r.clinic_id, id], read_report)?;
                outcomes.push(if first.same_content(r) {
                    IngestOutcome::Duplicate(first.into_wire(true)?)
                } else {
                    IngestOutcome::Conflict
                });
            }
        }
        tx.commit()?;
        Ok(outcomes)
    }

    fn report_count(&self, clinic_id: Option<&str>) -> Result<u64, StoreError> {
        let conn = self.reader()?;
        let n: i64 = match clinic_id {
            Some(c) => conn.query_row(
                "SELECT count(*) FROM reports WHERE clinic_id = ?1",
                [c],
                |r| r.get(0),
            )?,
            None => conn.query_row("SELECT count(*) FROM reports", [], |r| r.get(0))?,
        };
        Ok(n as u64)
    }

    fn ensure_clinic(&self, clinic_id: &str, zone: ClinicZone) -> Result<(), StoreError> {
        self.writer().execute(
            "INSERT INTO clinics (id, zone) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
            params![clinic_id, zone.name()],
        )?;
        Ok(())
    }

    fn clinic_zone(&self, clinic_id: &str) -> Result<Option<ClinicZone>, StoreError> {
        let conn = self.reader()?;
        let zone: Option<String> = conn
            .prepare_cached("SELECT zone FROM clinics WHERE id = ?1")?
            .query_row([clinic_id], |r| r.get(0))
            .optional()?;
        zone.map(|z| ClinicZone::parse(&z).map_err(corrupt))
            .transpose()
    }

    fn patient(
        &self,
        clinic_id: &str,
        id: &PatientId,
    ) -> Result<Option<(Patient, ClinicZone)>, StoreError> {
        let conn = self.reader()?;
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

    fn patients_feed(
        &self,
        clinic_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<FeedPage<PatientRecord>, StoreError> {
        let conn = self.reader()?;
        page(
            &conn,
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

    fn staff_feed(
        &self,
        clinic_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<FeedPage<StaffRecord>, StoreError> {
        let conn = self.reader()?;
        page(
            &conn,
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

    fn appointments_feed(
        &self,
        clinic_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<FeedPage<AppointmentRecord>, StoreError> {
        let conn = self.reader()?;
        page(
            &conn,
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

    fn upsert_patient(&self, clinic_id: &str, patient: &Patient) -> Result<i64, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let seq = next_seq(&tx, clinic_id)?;
        put_patient(&tx, clinic_id, patient, seq)?;
        tx.commit()?;
        Ok(seq)
    }

    fn delete_patient(&self, clinic_id: &str, id: &PatientId) -> Result<Option<i64>, StoreError> {
        let mut conn = self.writer();
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

    fn upsert_appointment(
        &self,
        clinic_id: &str,
        appointment: &Appointment,
    ) -> Result<i64, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        let seq = next_seq(&tx, clinic_id)?;
        put_appointment(&tx, clinic_id, appointment, seq)?;
        tx.commit()?;
        Ok(seq)
    }

    fn delete_appointment(&self, clinic_id: &str, id: &str) -> Result<Option<i64>, StoreError> {
        let mut conn = self.writer();
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

    fn upsert_staff(
        &self,
        clinic_id: &str,
        member: &StaffMember,
        active: bool,
        pin_verifier: Option<&str>,
    ) -> Result<i64, StoreError> {
        let mut conn = self.writer();
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

    fn load_clinic(&self, clinic: &DemoClinic, pin_verifiers: &[String]) -> Result<(), StoreError> {
        if pin_verifiers.len() != clinic.staff.len() {
            return Err(StoreError::PinRequired);
        }
        let mut conn = self.writer();
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

    fn import(&self, clinic_id: &str, rows: ImportRows) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut conn = self.writer();
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

    fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.writer().execute(
            "INSERT INTO api_tokens (id, clinic_id, token_sha256, label, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![token.id, token.clinic_id, token.sha256.as_slice(), token.label, now_unix()],
        )?;
        Ok(())
    }

    fn revoke_token(&self, token_id: &str) -> Result<bool, StoreError> {
        let n = self.writer().execute(
            "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![token_id, now_unix()],
        )?;
        Ok(n == 1)
    }

    fn clinic_for_token(&self, sha256: &[u8; 32]) -> Result<Option<String>, StoreError> {
        let conn = self.reader()?;
        let clinic = conn
            .prepare_cached(
                "SELECT clinic_id FROM api_tokens WHERE token_sha256 = ?1 AND revoked_at IS NULL",
            )?
            .query_row([sha256.as_slice()], |r| r.get(0))
            .optional()?;
        Ok(clinic)
    }

    fn staff_role(
        &self,
        clinic_id: &str,
        id: &str,
    ) -> Result<Option<clinic_domain::StaffRole>, StoreError> {
        let conn = self.reader()?;
        let role: Option<String> = conn
            .prepare_cached("SELECT role FROM staff WHERE clinic_id = ?1 AND id = ?2")?
            .query_row(params![clinic_id, id], |r| r.get(0))
            .optional()?;
        role.map(|r| clinic_domain::StaffRole::parse(&r).map_err(corrupt))
            .transpose()
    }

    fn check(&self) -> Result<(), StoreError> {
        let conn = self.reader()?;
        conn.query_row("SELECT count(*) FROM clinics", [], |r| r.get::<_, i64>(0))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clinic_domain::{Activity, AssessmentDetails, PainScale, PainScore, StaffRole};
    use uuid::Uuid;

    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("c.db"), Durability::Full).unwrap();
        s.ensure_clinic("C1", ClinicZone::default()).unwrap();
        (dir, s)
    }

    fn report(score: i64) -> NewReport {
        NewReport {
            clinic_id: "C1".into(),
            report_id: Uuid::from_u128(1),
            patient_id: PatientId::parse("P1").unwrap(),
            score: PainScore::new(PainScale::Nrs, score).unwrap(),
            submit_time: 100,
            assessed_at: None,
            recorded_by: None,
            device_id: None,
            supersedes: None,
            reason: None,
            details: AssessmentDetails::default(),
            follows_up: None,
        }
    }

    #[test]
    fn one_transaction_sorts_new_duplicate_and_conflict() {
        let (_d, s) = store();
        let out = s.ingest(&[report(3), report(3), report(4)]).unwrap();
        assert!(matches!(out[0], IngestOutcome::Accepted(_)));
        assert!(
            matches!(&out[1], IngestOutcome::Duplicate(r) if r.duplicate && r.submission.pain_score == 3)
        );
        assert_eq!(out[2], IngestOutcome::Conflict);
        assert_eq!(s.report_count(Some("C1")).unwrap(), 1);
    }

    fn detailed(score: i64) -> NewReport {
        NewReport {
            details: AssessmentDetails {
                body_site: Some("左膝".into()),
                activity: Some(Activity::Movement),
                note: Some("两行\n备注".into()),
                intervention: Some("paracetamol 1 g".into()),
            },
            follows_up: Some(Uuid::from_u128(9)),
            ..report(score)
        }
    }

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
            assert_eq!(
                super::super::staff_role_from_feed(&s, "C1", id).unwrap(),
                role,
                "{id}"
            );
        }
        assert_eq!(s.staff_role("C2", "D1").unwrap(), None, "another clinic's");
    }

    #[test]
    fn migrations_are_valid() {
        MIGRATIONS.validate().unwrap();
    }

    #[test]
    fn details_are_stored_read_back_and_part_of_the_content() {
        let (_d, s) = store();
        let mut other_note = detailed(3);
        other_note.details.note = Some("其他".into());
        let out = s
            .ingest(&[detailed(3), detailed(3), other_note, report(3)])
            .unwrap();
        let IngestOutcome::Duplicate(replayed) = &out[1] else {
            panic!("{:?}", out[1]);
        };
        assert_eq!(replayed.submission.details, detailed(3).details);
        assert_eq!(replayed.submission.follows_up, detailed(3).follows_up);
        assert_eq!(out[2], IngestOutcome::Conflict);
        assert_eq!(
            out[3],
            IngestOutcome::Conflict,
            "dropping the details is other content too"
        );
    }

    #[test]
    fn a_report_stored_before_the_details_migration_still_replays_as_a_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            Migrations::from_slice(&MIGRATION_LIST[..1])
                .to_latest(&mut conn)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO clinics (id) VALUES ('C1');
                 INSERT INTO reports (clinic_id, report_id, patient_id, pain_score, scale, submit_time, received_at)
                 VALUES ('C1', '00000000-0000-0000-0000-000000000001', 'P1', 3, 'nrs', 100, 50);",
            )
            .unwrap();
        }
        let s = SqliteStore::open(&path, Durability::Full).unwrap();
        let out = s.ingest(&[report(3), detailed(3)]).unwrap();
        assert!(
            matches!(&out[0], IngestOutcome::Duplicate(r) if r.received_at == 50 && r.submission.details == AssessmentDetails::default()),
            "{:?}",
            out[0]
        );
        assert_eq!(out[1], IngestOutcome::Conflict);
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
