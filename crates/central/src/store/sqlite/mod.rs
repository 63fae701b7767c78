//! SQLite implementation of [`CentralStore`]: the embedded one-machine store and
//! the reference behaviour. `pool` holds the connections; each other module is
//! the SQL of one kind of data, over a connection it is handed: `ingest`
//! (reports), `feeds`, `records` (clinics, patients, staff, appointments) and
//! `tokens` (tokens and enrolment codes).

mod feeds;
mod ingest;
mod pool;
mod records;
mod tokens;

use std::path::Path;

use clinic_domain::demo::DemoClinic;
use clinic_domain::{Appointment, ClinicZone, Patient, PatientId, StaffMember, StaffRole};
use clinic_protocol::{AppointmentRecord, FeedPage, PatientRecord, StaffRecord, StoredReport};
use rusqlite_migration::{M, Migrations};

use super::{
    CentralStore, ImportRows, IngestOutcome, NewReport, Redeemed, StoreError, TokenInfo,
    TokenRecord,
};
use crate::auth::{EnrolmentCodeRecord, TokenAuth};
use crate::snapshot::SnapshotWriter;
use pool::Connections;

// Append only: a shipped step has already run on clinics' databases, so editing it changes nothing there.
const MIGRATION_LIST: &[M<'static>] = &[
    M::up(include_str!("../../../migrations/0001_init.sql")),
    M::up(include_str!(
        "../../../migrations/0002_assessment_details.sql"
    )),
    M::up(include_str!("../../../migrations/0003_report_feed.sql")),
    M::up(include_str!(
        "../../../migrations/0004_token_scopes_enrolment.sql"
    )),
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
    connections: Connections,
}

impl SqliteStore {
    pub fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        Ok(Self {
            connections: Connections::open(path, durability)?,
        })
    }

    pub fn path(&self) -> &Path {
        self.connections.path()
    }

    /// Creates or migrates the database at `path` to schema step `steps` only (of
    /// this binary's list), as an older release left it. For upgrade tests.
    #[doc(hidden)]
    pub fn migrate_for_tests(path: &Path, steps: usize) -> Result<(), StoreError> {
        let mut conn = rusqlite::Connection::open(path)?;
        Migrations::from_slice(&MIGRATION_LIST[..steps]).to_latest(&mut conn)?;
        Ok(())
    }
}

impl CentralStore for SqliteStore {
    fn ingest(&self, reports: &[NewReport]) -> Result<Vec<IngestOutcome>, StoreError> {
        ingest::ingest(&mut self.connections.writer(), reports)
    }

    fn report_count(&self, clinic_id: Option<&str>) -> Result<u64, StoreError> {
        ingest::report_count(&*self.connections.reader()?, clinic_id)
    }

    fn ensure_clinic(&self, clinic_id: &str, zone: ClinicZone) -> Result<(), StoreError> {
        records::ensure_clinic(&self.connections.writer(), clinic_id, zone)
    }

    fn clinic_zone(&self, clinic_id: &str) -> Result<Option<ClinicZone>, StoreError> {
        records::clinic_zone(&*self.connections.reader()?, clinic_id)
    }

    fn patient(
        &self,
        clinic_id: &str,
        id: &PatientId,
    ) -> Result<Option<(Patient, ClinicZone)>, StoreError> {
        records::patient(&*self.connections.reader()?, clinic_id, id)
    }

    fn snapshot(&self, clinic_id: &str, out: SnapshotWriter) -> Result<u64, StoreError> {
        feeds::snapshot(&mut *self.connections.reader()?, clinic_id, out)
    }

    fn patients_feed(
        &self,
        clinic_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<FeedPage<PatientRecord>, StoreError> {
        feeds::patients(&*self.connections.reader()?, clinic_id, after, limit)
    }

    fn staff_feed(
        &self,
        clinic_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<FeedPage<StaffRecord>, StoreError> {
        feeds::staff(&*self.connections.reader()?, clinic_id, after, limit)
    }

    fn appointments_feed(
        &self,
        clinic_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<FeedPage<AppointmentRecord>, StoreError> {
        feeds::appointments(&*self.connections.reader()?, clinic_id, after, limit)
    }

    fn reports_feed(
        &self,
        clinic_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<FeedPage<StoredReport>, StoreError> {
        feeds::reports(&*self.connections.reader()?, clinic_id, after, limit)
    }

    fn upsert_patient(&self, clinic_id: &str, patient: &Patient) -> Result<i64, StoreError> {
        records::upsert_patient(&mut self.connections.writer(), clinic_id, patient)
    }

    fn delete_patient(&self, clinic_id: &str, id: &PatientId) -> Result<Option<i64>, StoreError> {
        records::delete_patient(&mut self.connections.writer(), clinic_id, id)
    }

    fn upsert_appointment(
        &self,
        clinic_id: &str,
        appointment: &Appointment,
    ) -> Result<i64, StoreError> {
        records::upsert_appointment(&mut self.connections.writer(), clinic_id, appointment)
    }

    fn delete_appointment(&self, clinic_id: &str, id: &str) -> Result<Option<i64>, StoreError> {
        records::delete_appointment(&mut self.connections.writer(), clinic_id, id)
    }

    fn upsert_staff(
        &self,
        clinic_id: &str,
        member: &StaffMember,
        active: bool,
        pin_verifier: Option<&str>,
    ) -> Result<i64, StoreError> {
        records::upsert_staff(
            &mut self.connections.writer(),
            clinic_id,
            member,
            active,
            pin_verifier,
        )
    }

    fn load_clinic(&self, clinic: &DemoClinic, pin_verifiers: &[String]) -> Result<(), StoreError> {
        records::load_clinic(&mut self.connections.writer(), clinic, pin_verifiers)
    }

    fn import(&self, clinic_id: &str, rows: ImportRows) -> Result<u64, StoreError> {
        records::import(&mut self.connections.writer(), clinic_id, rows)
    }

    fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        tokens::insert(&self.connections.writer(), token)
    }

    fn revoke_token(&self, token_id: &str) -> Result<bool, StoreError> {
        tokens::revoke(&self.connections.writer(), token_id)
    }

    fn token_for_hash(&self, sha256: &[u8; 32]) -> Result<Option<TokenAuth>, StoreError> {
        tokens::for_hash(&*self.connections.reader()?, sha256)
    }

    fn touch_token(
        &self,
        token_id: &str,
        at: i64,
        address: Option<&str>,
    ) -> Result<(), StoreError> {
        tokens::touch(&self.connections.writer(), token_id, at, address)
    }

    fn tokens(&self, clinic_id: &str) -> Result<Vec<TokenInfo>, StoreError> {
        tokens::list(&*self.connections.reader()?, clinic_id)
    }

    fn insert_enrolment_code(&self, code: &EnrolmentCodeRecord) -> Result<(), StoreError> {
        tokens::insert_code(&self.connections.writer(), code)
    }

    fn redeem_enrolment_code(
        &self,
        sha256: &[u8; 32],
        now: i64,
        token: &TokenRecord,
    ) -> Result<Redeemed, StoreError> {
        tokens::redeem(&mut self.connections.writer(), sha256, now, token)
    }

    fn staff_role(&self, clinic_id: &str, id: &str) -> Result<Option<StaffRole>, StoreError> {
        records::staff_role(&*self.connections.reader()?, clinic_id, id)
    }

    fn check(&self) -> Result<(), StoreError> {
        let conn = self.connections.reader()?;
        conn.query_row("SELECT count(*) FROM clinics", [], |r| r.get::<_, i64>(0))?;
        Ok(())
    }

    fn change_counters(&self, clinic_ids: &[String]) -> Result<Vec<(String, i64)>, StoreError> {
        use rusqlite::OptionalExtension;
        let conn = self.connections.reader()?;
        let mut read = conn.prepare_cached("SELECT change_seq FROM clinics WHERE id = ?1")?;
        let mut found = Vec::with_capacity(clinic_ids.len());
        for id in clinic_ids {
            if let Some(seq) = read.query_row([id], |r| r.get(0)).optional()? {
                found.push((id.clone(), seq));
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A durable store in a temp directory with clinic `C1`.
    pub(super) fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("c.db"), Durability::Full).unwrap();
        s.ensure_clinic("C1", ClinicZone::default()).unwrap();
        (dir, s)
    }

    #[test]
    fn migrations_are_valid() {
        MIGRATIONS.validate().unwrap();
    }
}
