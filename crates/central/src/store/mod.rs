//! Storage behind the server. The HTTP layer talks to [`CentralStore`] only:
//! [`SqliteStore`] is the embedded one-machine store and the reference behaviour,
//! [`PostgresStore`] the shared database behind several replicas. [`open`] picks one
//! from the database setting (a `postgres://` URL or a file path).
//!
//! The trait is synchronous: the SQLite driver is, and the server calls it from
//! the group-commit writer thread or `spawn_blocking`. The PostgreSQL store bridges
//! to its async driver inside (see its module).

mod common;
pub mod postgres;
mod sqlite;

use clinic_domain::{
    Appointment, AssessmentDetails, ClinicZone, PainScore, Patient, PatientId, StaffMember,
    StaffRole,
};
use clinic_protocol::{AppointmentRecord, FeedPage, PatientRecord, StaffRecord, StoredReport};
use thiserror::Error;
use uuid::Uuid;

use crate::auth::{EnrolmentCodeRecord, Scope, TokenAuth};
use crate::snapshot::SnapshotWriter;
pub use postgres::{PgOptions, PostgresStore, is_postgres_url};
pub use sqlite::{Durability, SqliteStore};

/// Opens the store `db` names: a `postgres://` / `postgresql://` URL is PostgreSQL,
/// anything else a SQLite file path. Both apply their migrations first.
pub fn open(
    db: &str,
    durability: Durability,
    pg: PgOptions,
) -> Result<std::sync::Arc<dyn CentralStore>, StoreError> {
    Ok(if is_postgres_url(db) {
        std::sync::Arc::new(PostgresStore::connect(db, pg)?)
    } else {
        std::sync::Arc::new(SqliteStore::open(std::path::Path::new(db), durability)?)
    })
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("postgres: {0}")]
    Postgres(tokio_postgres::Error),
    #[error("postgres migration: {0}")]
    PgMigration(String),
    /// The database cannot be reached or did not answer in time: retry later (503).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("unknown clinic '{0}'")]
    UnknownClinic(String),
    #[error("a new staff member needs a PIN")]
    PinRequired,
}

/// A validated report ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReport {
    pub clinic_id: String,
    pub report_id: Uuid,
    pub patient_id: PatientId,
    pub score: PainScore,
    pub submit_time: i64,
    pub assessed_at: Option<i64>,
    pub recorded_by: Option<String>,
    pub device_id: Option<String>,
    pub supersedes: Option<Uuid>,
    pub reason: Option<String>,
    /// Already checked ([`AssessmentDetails::received`]: blank text is `None`), so
    /// comparing it with a stored report's details is what decides duplicate versus conflict.
    pub details: AssessmentDetails,
    pub follows_up: Option<Uuid>,
    /// The other concurrent corrections this one settles, as sent (already checked
    /// with `clinic_domain::assessment::check_resolves`); part of the content.
    pub resolves: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Newly stored in this transaction.
    Accepted(StoredReport),
    /// Same ID, same content as the stored report (returned with `duplicate: true`).
    Duplicate(StoredReport),
    /// Same ID, other content: the first report is kept.
    Conflict,
}

/// A staff member as imported: the PIN is already a verifier, never the PIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffImport {
    pub member: StaffMember,
    pub active: bool,
    pub pin_verifier: String,
}

/// One validated import file's rows, stored all or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportRows {
    Patients(Vec<Patient>),
    Appointments(Vec<Appointment>),
    Staff(Vec<StaffImport>),
}

impl ImportRows {
    pub fn len(&self) -> usize {
        match self {
            ImportRows::Patients(p) => p.len(),
            ImportRows::Appointments(a) => a.len(),
            ImportRows::Staff(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A token as stored: only the hash of the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub clinic_id: String,
    pub sha256: [u8; 32],
    pub label: Option<String>,
    pub scope: Scope,
}

/// A token as the `token list` command shows it (never its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub clinic_id: String,
    pub scope: Scope,
    pub label: Option<String>,
    pub created_at: i64,
    /// Written at most once per [`crate::limits::TOKEN_TOUCH_INTERVAL`] per replica.
    pub last_seen_at: Option<i64>,
    /// The client address of that request (a proxy's, behind one).
    pub last_seen_address: Option<String>,
    pub revoked_at: Option<i64>,
}

/// What redeeming an enrolment code did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The code is spent and the device token stored, labelled `label`.
    Enrolled {
        label: Option<String>,
    },
    Unknown,
    Used,
    Expired,
    /// The code enrols into another clinic than the one asked for; it stays unspent.
    OtherClinic,
}

/// A staff member's role found by paging the staff feed (each member appears once,
/// at their latest change): the oracle the stores' point reads are tested against.
pub fn staff_role_from_feed<S: CentralStore + ?Sized>(
    store: &S,
    clinic_id: &str,
    id: &str,
) -> Result<Option<StaffRole>, StoreError> {
    let mut after = 0;
    loop {
        let page = store.staff_feed(clinic_id, after, clinic_protocol::MAX_FEED_LIMIT)?;
        if let Some(item) = page.items.iter().find(|i| i.id == id) {
            let role = item.data.as_ref().map(|d| StaffRole::parse(&d.role));
            return role
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.to_string()));
        }
        if !page.has_more || page.next_cursor <= after {
            return Ok(None);
        }
        after = page.next_cursor;
    }
}

pub trait CentralStore: Send + Sync + 'static {
    /// Stores `reports` in ONE durable transaction (the unit of group commit) and
    /// answers each in order. An `Err` means nothing was stored.
    fn ingest(&self, reports: &[NewReport]) -> Result<Vec<IngestOutcome>, StoreError>;

    /// Reports stored, for one clinic or all. Tests use it to check "each report once".
    fn report_count(&self, clinic_id: Option<&str>) -> Result<u64, StoreError>;

    /// Creates the clinic if it is new; an existing clinic keeps its zone.
    fn ensure_clinic(&self, clinic_id: &str, zone: ClinicZone) -> Result<(), StoreError>;

    fn clinic_zone(&self, clinic_id: &str) -> Result<Option<ClinicZone>, StoreError>;

    /// A live (not deleted) patient with their clinic's zone.
    fn patient(
        &self,
        clinic_id: &str,
        id: &PatientId,
    ) -> Result<Option<(Patient, ClinicZone)>, StoreError>;

    fn patients_feed(
        &self,
        clinic_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<FeedPage<PatientRecord>, StoreError>;
    fn staff_feed(
        &self,
        clinic_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<FeedPage<StaffRecord>, StoreError>;
    fn appointments_feed(
        &self,
        clinic_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<FeedPage<AppointmentRecord>, StoreError>;
    /// Every report of the clinic, each once (reports are never changed or deleted,
    /// so never a tombstone), numbered from the clinic's change counter in its own
    /// ingest transaction like every other change.
    fn reports_feed(
        &self,
        clinic_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<FeedPage<StoredReport>, StoreError>;

    /// The clinic's live records (no tombstones) at one change number, read in ONE
    /// read transaction with that number (the clinic's counter) and the counts,
    /// written to `out` as `begin`, staff, patients, appointments, reports (each in
    /// change-number order), `end` (see [`crate::snapshot`]). Returns the records
    /// written. An `Err` after `begin` leaves the body without its `end` line.
    fn snapshot(&self, clinic_id: &str, out: SnapshotWriter) -> Result<u64, StoreError>;

    /// Each returns the change's sequence number.
    fn upsert_patient(&self, clinic_id: &str, patient: &Patient) -> Result<i64, StoreError>;
    /// `None` when there was no live patient with that ID.
    fn delete_patient(&self, clinic_id: &str, id: &PatientId) -> Result<Option<i64>, StoreError>;
    fn upsert_appointment(
        &self,
        clinic_id: &str,
        appointment: &Appointment,
    ) -> Result<i64, StoreError>;
    fn delete_appointment(&self, clinic_id: &str, id: &str) -> Result<Option<i64>, StoreError>;
    /// `pin_verifier: None` keeps an existing member's verifier; a new member needs one.
    fn upsert_staff(
        &self,
        clinic_id: &str,
        member: &StaffMember,
        active: bool,
        pin_verifier: Option<&str>,
    ) -> Result<i64, StoreError>;

    /// Loads a whole clinic (demo or import) in one transaction; `pin_verifiers[i]` belongs to `staff[i]`.
    fn load_clinic(
        &self,
        clinic: &clinic_domain::demo::DemoClinic,
        pin_verifiers: &[String],
    ) -> Result<(), StoreError>;

    /// Stores one import file's rows (upserts) in ONE transaction: all or none. Each row
    /// takes a change number, so the feeds carry it. Returns the rows stored.
    fn import(&self, clinic_id: &str, rows: ImportRows) -> Result<u64, StoreError>;

    fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    /// False when no unrevoked token has that ID.
    fn revoke_token(&self, token_id: &str) -> Result<bool, StoreError>;
    /// The unrevoked token with this hash: its ID, clinic and scope.
    fn token_for_hash(&self, sha256: &[u8; 32]) -> Result<Option<TokenAuth>, StoreError>;
    /// Records when and from where a token was last used.
    fn touch_token(&self, token_id: &str, at: i64, address: Option<&str>)
    -> Result<(), StoreError>;
    /// Every token of the clinic, revoked ones too, oldest first.
    fn tokens(&self, clinic_id: &str) -> Result<Vec<TokenInfo>, StoreError>;

    fn insert_enrolment_code(&self, code: &EnrolmentCodeRecord) -> Result<(), StoreError>;
    /// In ONE transaction: if the code with this hash is unused, unexpired at `now`
    /// and of `token.clinic_id`, spends it and stores `token` (labelled with the
    /// code's label when it has one). Anything else stores nothing and says why.
    fn redeem_enrolment_code(
        &self,
        sha256: &[u8; 32],
        now: i64,
        token: &TokenRecord,
    ) -> Result<Redeemed, StoreError>;

    /// The role of a staff member (active or not), `None` when the clinic has no such
    /// member: a point read, since every appointment PUT asks it.
    fn staff_role(&self, clinic_id: &str, id: &str) -> Result<Option<StaffRole>, StoreError>;

    /// Cheap round trip for `/healthz`.
    fn check(&self) -> Result<(), StoreError>;

    /// The change counters (the `seq` the feeds carry) of those of `clinic_ids` that
    /// exist, read committed: what `GET /v1/changes` compares with a device's cursor.
    fn change_counters(&self, clinic_ids: &[String]) -> Result<Vec<(String, i64)>, StoreError>;

    /// True when calls are answered in-process within microseconds (an embedded
    /// database), so a handler may make a point read on an async worker; false when
    /// a call is a network round trip that may wait for a timeout.
    fn is_embedded(&self) -> bool {
        true
    }

    /// Store-specific metrics for `/metrics` (pool and database latency), listed
    /// beside the server's own.
    fn metric_collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        Vec::new()
    }
}
