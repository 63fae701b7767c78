//! PostgreSQL implementation of [`CentralStore`], for a central database shared by
//! several stateless `clinic-central` replicas.
//!
//! ## Bridging the synchronous trait
//! The trait is synchronous and is called from the group-commit writer thread, from
//! `spawn_blocking`, and (in tests and the CLI) from plain threads or even inside
//! async code. The store owns a small tokio runtime of its own: every call spawns its
//! work (tokio-postgres on a deadpool pool) there and waits on a std channel. Waiting
//! on a channel never nests runtimes, so it is safe from any caller; the sync
//! `postgres` crate instead `block_on`s a runtime per client and panics when called
//! from inside a tokio context. deadpool's wait and create timeouts, plus one overall
//! deadline per call, turn an unreachable database into [`StoreError::Unavailable`]
//! (503 with `Retry-After`) within seconds instead of a hang, and broken connections
//! are dropped on recycle, so a replica recovers by itself when the database returns.
//!
//! ## Feeds that never skip a change
//! A sequence (or serial column) hands out numbers at call time, not commit time:
//! transaction A takes 11, B takes 12, B commits first, a reader pages past 12, and
//! when A commits, 11 is behind every cursor for ever. Instead each clinic's row in
//! `clinics` holds its change counter, and a writing transaction takes its numbers by
//! `UPDATE ... RETURNING` on that row. The row lock is held until commit, so the next
//! writer of that clinic (on any replica) gets its number only after the previous one
//! committed: numbers become visible in order, and a reader who has seen N has seen
//! everything numbered below N. Writers of different clinics never wait for each other.
//!
//! Reports are numbered the same way, by the group's insert itself (`INSERT_REPORTS`),
//! so one clinic's groups commit one at a time across replicas: the counter row is held
//! from the insert to the commit's flush. Measured (README, "Reports in the feed"), two
//! replicas lost about the share one replica did (the new index is the cost, not the
//! lock). Keeping the lock shorter by inserting first and numbering last in a narrow
//! side table ingested the same and halved feed reads (a join per report), so it was
//! not kept; routing each clinic to one replica is the remedy where the lock matters.
//!
//! ## Durability and group commit
//! Every session runs with `synchronous_commit = on` (set in the connection's startup
//! options, whatever the server default), so a commit returns only once its WAL is
//! flushed (and, with synchronous standbys configured, acknowledged by them): a 200
//! still means durably stored. The writer thread still batches waiting reports into
//! one transaction, and that transaction inserts them all with ONE statement.

pub mod cluster;
mod metrics;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use clinic_domain::demo::DemoClinic;
use clinic_domain::{Appointment, ClinicZone, Patient, PatientId, Sex, StaffMember};
use clinic_protocol::{
    AppointmentRecord, FeedItem, FeedPage, PatientRecord, SnapshotCounts, StaffRecord, StoredReport,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Transaction};
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use self::metrics::CallStats;
use super::common::{
    RawReport, accepted, activity_to_db, corrupt, instant, now_unix, resolves_to_db,
};
use super::{
    CentralStore, ImportRows, IngestOutcome, NewReport, Redeemed, StaffImport, StoreError,
    TokenInfo, TokenRecord,
};
use crate::auth::{EnrolmentCodeRecord, Scope, TokenAuth};
use crate::snapshot::{SnapshotRecord, SnapshotWriter};

fn scope_from_db(raw: &str) -> Result<Scope, StoreError> {
    Scope::parse(raw).ok_or_else(|| corrupt(format!("unknown token scope '{raw}'")))
}

/// Append only, like the SQLite list: a shipped step has already run on live databases.
/// refinery wants `V<n>__<name>` names; the files keep the house's `NNNN_name.sql`.
fn migrations() -> Vec<refinery::Migration> {
    [
        (
            "V1__init",
            include_str!("../../../migrations/postgres/0001_init.sql"),
        ),
        (
            "V2__report_clinic_check_per_statement",
            include_str!("../../../migrations/postgres/0002_report_clinic_check_per_statement.sql"),
        ),
        (
            "V3__report_feed",
            include_str!("../../../migrations/postgres/0003_report_feed.sql"),
        ),
        (
            "V4__report_insert_clinic_rule",
            include_str!("../../../migrations/postgres/0004_report_insert_clinic_rule.sql"),
        ),
        (
            "V5__token_scopes_enrolment",
            include_str!("../../../migrations/postgres/0005_token_scopes_enrolment.sql"),
        ),
    ]
    .into_iter()
    .map(|(name, sql)| {
        refinery::Migration::unapplied(name, sql).expect("migration names are valid")
    })
    .collect()
}

/// Serialises migrations of replicas starting together (refinery itself does not lock).
const MIGRATION_LOCK: i64 = 0x636c_696e_6963; // "clinic"

/// Rows per statement when loading many: bounds one statement's parameter arrays.
const BULK_CHUNK: usize = 20_000;

#[derive(Debug, Clone, Copy)]
pub struct PgOptions {
    /// Connections this replica keeps at most. The writer uses one; the rest serve
    /// reads and record writes. Replicas × pool size must stay under `max_connections`.
    pub pool_size: usize,
    /// How long a request may wait for a connection, to connect, or for one call
    /// to finish before it gets a 503.
    pub timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            timeout: Duration::from_secs(5),
        }
    }
}

pub struct PostgresStore {
    /// `Option` only so `Drop` can shut it down without blocking (dropping a runtime
    /// inside async code would panic).
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: Pool,
    timeout: Duration,
    stats: Arc<CallStats>,
    tokens: tokio::sync::mpsc::UnboundedSender<TokenLookup>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.pool.close();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    /// Connection trouble, a server shutting down, or a deadlock/serialization retry
    /// are "try again" (503); anything else is a real error.
    fn from(e: tokio_postgres::Error) -> Self {
        const RETRYABLE: [&str; 7] = [
            "57P01", "57P02", "57P03", "53300", "40001", "40P01", "08006",
        ];
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            if code.starts_with("08") || RETRYABLE.contains(&code) {
                return StoreError::Unavailable(format!("database: {}", db.message()));
            }
            return StoreError::Postgres(e);
        }
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        if e.is_closed() || io {
            StoreError::Unavailable(format!("database connection: {e}"))
        } else {
            StoreError::Postgres(e)
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => StoreError::Unavailable(format!("database pool: {other}")),
        }
    }
}

/// `postgres://` and `postgresql://` URLs (and nothing else) name a PostgreSQL database.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

impl PostgresStore {
    /// Connects, applies the embedded migrations (refusing a database migrated by a
    /// newer binary) and returns the store. Fails if the database cannot be reached.
    pub fn connect(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Config(format!("database URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.timeout);
        }
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        let extra = config.get_options().unwrap_or_default().to_owned();
        config.options(format!("{extra} -c synchronous_commit=on").trim());
        if config.get_application_name().is_none() {
            config.application_name("clinic-central");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("postgres-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Config(format!("database runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(2))
            .wait_timeout(Some(options.timeout))
            .create_timeout(Some(options.timeout))
            .recycle_timeout(Some(options.timeout))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Config(format!("database pool: {e}")))?;
        let (tokens, waiting) = tokio::sync::mpsc::unbounded_channel();
        handle.spawn(look_up_tokens(pool.clone(), waiting, options.timeout * 3));
        let store = Self {
            runtime: Some(runtime),
            handle,
            pool,
            timeout: options.timeout,
            stats: Arc::default(),
            tokens,
        };
        store.run_for(None, move |_| migrate(config, refinery::Target::Latest))?;
        Ok(store)
    }

    /// Migrates the database at `url` to schema version `version` only (of this
    /// binary's list), as an older release left it. For upgrade tests.
    #[doc(hidden)]
    pub fn migrate_for_tests(url: &str, version: u32) -> Result<(), StoreError> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Config(format!("database URL: {e}")))?;
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Config(format!("database runtime: {e}")))?
            .block_on(migrate(config, refinery::Target::Version(version)))
    }

    /// Runs `work` on the store's runtime and waits for it; `deadline: None` for bulk loads.
    fn run_for<T, F>(
        &self,
        deadline: Option<Duration>,
        work: impl FnOnce(Pool) -> F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let future = work(self.pool.clone());
        let stats = self.stats.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let started = Instant::now();
            let result = match deadline {
                Some(d) => within(d, future).await,
                None => future.await,
            };
            let unavailable = matches!(result, Err(StoreError::Unavailable(_)));
            stats.observe(started.elapsed(), unavailable);
            let _ = tx.send(result);
        });
        rx.recv()
            .unwrap_or_else(|_| Err(StoreError::Unavailable("database runtime stopped".into())))
    }

    /// Every request-sized call: bounded by the wait/connect timeout plus room for the work.
    fn run<T, F>(&self, work: impl FnOnce(Pool) -> F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        self.run_for(Some(self.timeout * 3), work)
    }
}

async fn migrate(
    config: tokio_postgres::Config,
    target: refinery::Target,
) -> Result<(), StoreError> {
    let (mut client, connection) = config.connect(NoTls).await?;
    let driver = tokio::spawn(connection);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    // abort_missing (refinery's default) refuses a database that has steps this binary
    // does not know: it was migrated by a newer clinic-central.
    let result = refinery::Runner::new(&migrations())
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .set_target(target)
        .run_async(&mut client)
        .await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    drop(client);
    let _ = driver.await;
    result
        .map(|_| ())
        .map_err(|e| StoreError::PgMigration(e.to_string()))
}

/// Takes `count` change numbers for the clinic inside `tx` and returns the first.
async fn reserve_seqs(
    tx: &Transaction<'_>,
    clinic_id: &str,
    count: usize,
) -> Result<i64, StoreError> {
    let count = count as i64;
    let stmt = tx
        .prepare_cached(
            "UPDATE clinics SET change_seq = change_seq + $2 WHERE id = $1 RETURNING change_seq",
        )
        .await?;
    let row = tx
        .query_opt(&stmt, &[&clinic_id, &count])
        .await?
        .ok_or_else(|| StoreError::UnknownClinic(clinic_id.to_owned()))?;
    let last: i64 = row.get(0);
    Ok(last - count + 1)
}

async fn put_patients(
    tx: &Transaction<'_>,
    clinic_id: &str,
    patients: &[Patient],
    first_seq: i64,
) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO patients (clinic_id, id, name, sex, birth_date, is_insured, phone, deleted, seq)
             SELECT $1, id, name, sex, birth_date, is_insured, phone, FALSE, seq
             FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::text[], $8::int8[])
                 AS t(id, name, sex, birth_date, is_insured, phone, seq)
             ON CONFLICT (clinic_id, id) DO UPDATE SET name = excluded.name, sex = excluded.sex,
                 birth_date = excluded.birth_date, is_insured = excluded.is_insured,
                 phone = excluded.phone, deleted = FALSE, seq = excluded.seq",
        )
        .await?;
    let mut seq = first_seq;
    for chunk in patients.chunks(BULK_CHUNK) {
        let ids: Vec<&str> = chunk.iter().map(|p| p.id.as_str()).collect();
        let names: Vec<&str> = chunk.iter().map(|p| p.name.as_str()).collect();
        let sexes: Vec<&str> = chunk.iter().map(|p| p.sex.as_str()).collect();
        let births: Vec<String> = chunk.iter().map(|p| p.birth_date.to_string()).collect();
        let insured: Vec<bool> = chunk.iter().map(|p| p.is_insured).collect();
        let phones: Vec<Option<&str>> = chunk.iter().map(|p| p.phone.as_deref()).collect();
        let seqs: Vec<i64> = (seq..seq + chunk.len() as i64).collect();
        seq += chunk.len() as i64;
        tx.execute(
            &stmt,
            &[
                &clinic_id, &ids, &names, &sexes, &births, &insured, &phones, &seqs,
            ],
        )
        .await?;
    }
    Ok(())
}

async fn put_appointments(
    tx: &Transaction<'_>,
    clinic_id: &str,
    appointments: &[Appointment],
    first_seq: i64,
) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO appointments (clinic_id, id, doctor_id, patient_id, starts_at, ends_at, status, deleted, seq)
             SELECT $1, id, doctor_id, patient_id, starts_at, ends_at, status, FALSE, seq
             FROM unnest($2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::text[], $8::int8[])
                 AS t(id, doctor_id, patient_id, starts_at, ends_at, status, seq)
             ON CONFLICT (clinic_id, id) DO UPDATE SET doctor_id = excluded.doctor_id,
                 patient_id = excluded.patient_id, starts_at = excluded.starts_at,
                 ends_at = excluded.ends_at, status = excluded.status, deleted = FALSE,
                 seq = excluded.seq",
        )
        .await?;
    let mut seq = first_seq;
    for chunk in appointments.chunks(BULK_CHUNK) {
        let ids: Vec<&str> = chunk.iter().map(|a| a.id.as_str()).collect();
        let doctors: Vec<&str> = chunk.iter().map(|a| a.doctor_id.as_str()).collect();
        let patients: Vec<&str> = chunk.iter().map(|a| a.patient_id.as_str()).collect();
        let starts: Vec<i64> = chunk.iter().map(|a| a.starts_at.timestamp()).collect();
        let ends: Vec<i64> = chunk.iter().map(|a| a.ends_at.timestamp()).collect();
        let statuses: Vec<&str> = chunk.iter().map(|a| a.status.as_str()).collect();
        let seqs: Vec<i64> = (seq..seq + chunk.len() as i64).collect();
        seq += chunk.len() as i64;
        tx.execute(
            &stmt,
            &[
                &clinic_id, &ids, &doctors, &patients, &starts, &ends, &statuses, &seqs,
            ],
        )
        .await?;
    }
    Ok(())
}

async fn put_staff(
    tx: &Transaction<'_>,
    clinic_id: &str,
    staff: &[StaffImport],
    first_seq: i64,
) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO staff (clinic_id, id, name, role, department, active, pin_verifier, seq)
             SELECT $1, id, name, role, department, active, pin_verifier, seq
             FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::text[], $8::int8[])
                 AS t(id, name, role, department, active, pin_verifier, seq)
             ON CONFLICT (clinic_id, id) DO UPDATE SET name = excluded.name, role = excluded.role,
                 department = excluded.department, active = excluded.active,
                 pin_verifier = excluded.pin_verifier, seq = excluded.seq",
        )
        .await?;
    let mut seq = first_seq;
    for chunk in staff.chunks(BULK_CHUNK) {
        let ids: Vec<&str> = chunk.iter().map(|s| s.member.id.as_str()).collect();
        let names: Vec<&str> = chunk.iter().map(|s| s.member.name.as_str()).collect();
        let roles: Vec<&str> = chunk.iter().map(|s| s.member.role.as_str()).collect();
        let departments: Vec<&str> = chunk.iter().map(|s| s.member.department.as_str()).collect();
        let active: Vec<bool> = chunk.iter().map(|s| s.active).collect();
        let verifiers: Vec<&str> = chunk.iter().map(|s| s.pin_verifier.as_str()).collect();
        let seqs: Vec<i64> = (seq..seq + chunk.len() as i64).collect();
        seq += chunk.len() as i64;
        tx.execute(
            &stmt,
            &[
                &clinic_id,
                &ids,
                &names,
                &roles,
                &departments,
                &active,
                &verifiers,
                &seqs,
            ],
        )
        .await?;
    }
    Ok(())
}

/// Columns of [`raw_report_from`], in its order, as a literal so feed queries can
/// `concat!` it.
macro_rules! report_columns {
    () => {
        "clinic_id, report_id, patient_id, pain_score, scale, submit_time,
         assessed_at, recorded_by, device_id, supersedes, reason, received_at,
         body_site, activity, note, intervention, follows_up, resolves"
    };
}
const REPORT_COLUMNS: &str = report_columns!();

/// [`REPORT_COLUMNS`] starting at column `first` (its `clinic_id`) of `row`.
fn raw_report_from(row: &tokio_postgres::Row, first: usize) -> Result<RawReport, StoreError> {
    let at = |i: usize| first + i;
    Ok(RawReport {
        report_id: row.try_get::<_, Uuid>(at(1))?.to_string(),
        patient_id: row.try_get(at(2))?,
        pain_score: row.try_get(at(3))?,
        scale: row.try_get(at(4))?,
        submit_time: row.try_get(at(5))?,
        assessed_at: row.try_get(at(6))?,
        recorded_by: row.try_get(at(7))?,
        device_id: row.try_get(at(8))?,
        supersedes: row.try_get(at(9))?,
        reason: row.try_get(at(10))?,
        received_at: row.try_get(at(11))?,
        body_site: row.try_get(at(12))?,
        activity: row.try_get(at(13))?,
        note: row.try_get(at(14))?,
        intervention: row.try_get(at(15))?,
        follows_up: row.try_get(at(16))?,
        resolves: row.try_get(at(17))?,
    })
}

/// A group's reports as one array per column, for the `unnest` of [`INSERT_REPORTS`].
/// Holds only the first delivery of each (clinic, report ID), in key order, so each
/// clinic's reports are contiguous.
struct ReportArrays<'a> {
    clinics: Vec<&'a str>,
    ids: Vec<Uuid>,
    patients: Vec<&'a str>,
    scores: Vec<i64>,
    scales: Vec<&'a str>,
    submitted: Vec<i64>,
    assessed: Vec<Option<i64>>,
    recorded_by: Vec<Option<&'a str>>,
    devices: Vec<Option<&'a str>>,
    supersedes: Vec<Option<String>>,
    reasons: Vec<Option<&'a str>>,
    sites: Vec<Option<&'a str>>,
    activities: Vec<Option<&'a str>>,
    notes: Vec<Option<&'a str>>,
    interventions: Vec<Option<&'a str>>,
    follows: Vec<Option<String>>,
    resolves: Vec<Option<String>>,
    /// Each clinic of the group once, in key order, and how many reports it has here.
    distinct_clinics: Vec<&'a str>,
    clinic_counts: Vec<i64>,
    /// Per report: how far below its clinic's new counter its number is (the
    /// clinic's last report in the group gets the counter itself).
    below_top: Vec<i64>,
}

impl<'a> ReportArrays<'a> {
    fn new(reports: impl ExactSizeIterator<Item = &'a NewReport> + Clone) -> Self {
        let mut distinct_clinics: Vec<&'a str> = Vec::new();
        let mut clinic_counts: Vec<i64> = Vec::new();
        let mut rank = Vec::with_capacity(reports.len());
        for r in reports.clone() {
            if distinct_clinics.last() != Some(&r.clinic_id.as_str()) {
                distinct_clinics.push(&r.clinic_id);
                clinic_counts.push(0);
            }
            let clinic = clinic_counts.len() - 1;
            clinic_counts[clinic] += 1;
            rank.push((clinic, clinic_counts[clinic]));
        }
        let below_top = rank
            .into_iter()
            .map(|(clinic, rank)| clinic_counts[clinic] - rank)
            .collect();
        Self {
            clinics: reports.clone().map(|r| r.clinic_id.as_str()).collect(),
            ids: reports.clone().map(|r| r.report_id).collect(),
            patients: reports.clone().map(|r| r.patient_id.as_str()).collect(),
            scores: reports
                .clone()
                .map(|r| i64::from(r.score.value()))
                .collect(),
            scales: reports.clone().map(|r| r.score.scale().as_str()).collect(),
            submitted: reports.clone().map(|r| r.submit_time).collect(),
            assessed: reports.clone().map(|r| r.assessed_at).collect(),
            recorded_by: reports.clone().map(|r| r.recorded_by.as_deref()).collect(),
            devices: reports.clone().map(|r| r.device_id.as_deref()).collect(),
            supersedes: reports
                .clone()
                .map(|r| r.supersedes.map(|u| u.to_string()))
                .collect(),
            reasons: reports.clone().map(|r| r.reason.as_deref()).collect(),
            sites: reports
                .clone()
                .map(|r| r.details.body_site.as_deref())
                .collect(),
            activities: reports
                .clone()
                .map(|r| r.details.activity.map(activity_to_db))
                .collect(),
            notes: reports.clone().map(|r| r.details.note.as_deref()).collect(),
            interventions: reports
                .clone()
                .map(|r| r.details.intervention.as_deref())
                .collect(),
            follows: reports
                .clone()
                .map(|r| r.follows_up.map(|u| u.to_string()))
                .collect(),
            resolves: reports.map(|r| resolves_to_db(&r.resolves)).collect(),
            distinct_clinics,
            clinic_counts,
            below_top,
        }
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    /// The parameters of [`INSERT_REPORTS`], `received_at` as `$12`.
    fn params<'p>(&'p self, received_at: &'p i64) -> [&'p (dyn ToSql + Sync); 21] {
        [
            &self.clinics,
            &self.ids,
            &self.patients,
            &self.scores,
            &self.scales,
            &self.submitted,
            &self.assessed,
            &self.recorded_by,
            &self.devices,
            &self.supersedes,
            &self.reasons,
            received_at,
            &self.sites,
            &self.activities,
            &self.notes,
            &self.interventions,
            &self.follows,
            &self.resolves,
            &self.distinct_clinics,
            &self.clinic_counts,
            &self.below_top,
        ]
    }
}

/// Takes each clinic's numbers and inserts the group's rows with them, in ONE
/// statement: the `UPDATE` of the clinics' counter rows (`k`) holds their row locks
/// until the commit, so the next writer of a clinic, on any replica, numbers its
/// reports only after this group committed (module docs: "Feeds that never skip a
/// change"). Every row of a clinic joins that clinic's updated row, so none is
/// inserted before the lock is held. A clinic that does not exist updates no row,
/// its reports get no number, and NOT NULL fails the statement. A report ID that is
/// already stored fails it too (no ON CONFLICT: [`ingest`] says why).
const INSERT_REPORTS: &str = "WITH k AS (
         UPDATE clinics SET change_seq = clinics.change_seq + n.n
         FROM unnest($19::text[], $20::int8[]) AS n(id, n)
         WHERE clinics.id = n.id
         RETURNING clinics.id, clinics.change_seq)
     INSERT INTO reports (clinic_id, report_id, patient_id, pain_score,
         scale, submit_time, assessed_at, recorded_by, device_id, supersedes, reason,
         received_at, body_site, activity, note, intervention, follows_up, resolves, seq)
     SELECT t.c, t.r, t.p, t.ps, t.sc, t.st, t.aa, t.rb, t.dv, t.su, t.re, $12,
         t.bs, t.ac, t.nt, t.iv, t.fu, t.rs, k.change_seq - t.bt
     FROM unnest($1::text[], $2::uuid[], $3::text[], $4::int8[], $5::text[], $6::int8[],
                 $7::int8[], $8::text[], $9::text[], $10::text[], $11::text[],
                 $13::text[], $14::text[], $15::text[], $16::text[], $17::text[],
                 $18::text[], $21::int8[])
         AS t(c, r, p, ps, sc, st, aa, rb, dv, su, re, bs, ac, nt, iv, fu, rs, bt)
     LEFT JOIN k ON k.id = t.c";

/// Locks the counter rows of the group's clinics in key order before a group of
/// several clinics takes them ([`INSERT_REPORTS`]'s own `UPDATE` locks in whatever
/// order its plan visits them), so two replicas' groups cannot deadlock.
const LOCK_CLINICS: &str =
    "SELECT id FROM clinics WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE";

/// Stores a group. Almost every group is all new reports, so it is inserted by ONE
/// statement that also numbers it ([`INSERT_REPORTS`]), its BEGIN and COMMIT
/// pipelined with it: the whole group costs one round trip (the COMMIT's answer
/// comes only after its WAL flush). A plain insert also skips ON CONFLICT's per-row
/// probe of the key index, about half of PostgreSQL's work per report. A report ID
/// that is already stored (a retry) fails that insert as a whole, nothing of it
/// stays, and [`ingest_retried`] writes the group again.
async fn ingest(pool: Pool, reports: Vec<NewReport>) -> Result<Vec<IngestOutcome>, StoreError> {
    let received_at = now_unix();
    // The earliest delivery of each key in the group is the one stored, as in the
    // SQLite store. Rows go in key order so concurrent groups take the key locks in
    // one order and cannot deadlock.
    let mut first_of: HashMap<(&str, Uuid), usize> = HashMap::with_capacity(reports.len());
    let mut firsts = Vec::with_capacity(reports.len());
    for (i, r) in reports.iter().enumerate() {
        first_of
            .entry((r.clinic_id.as_str(), r.report_id))
            .or_insert_with(|| {
                firsts.push(i);
                i
            });
    }
    firsts.sort_unstable_by_key(|&i| (reports[i].clinic_id.as_str(), reports[i].report_id));
    let firsts: Vec<&NewReport> = firsts.iter().map(|&i| &reports[i]).collect();
    let arrays = ReportArrays::new(firsts.iter().copied());
    let params = arrays.params(&received_at);

    let mut client = pool.get().await?;
    let plain = client.prepare_cached(INSERT_REPORTS).await?;
    let several = arrays.distinct_clinics.len() > 1;
    let lock = if several {
        Some(client.prepare_cached(LOCK_CLINICS).await?)
    } else {
        None
    };
    // All go out before any answer comes back. An explicit COMMIT, not the
    // statement's implicit one, so its answer is what says "durably stored".
    let (begun, locked, insert, commit) = tokio::join!(
        client.batch_execute("BEGIN"),
        async {
            match &lock {
                Some(lock) => client
                    .query(lock, &[&arrays.distinct_clinics])
                    .await
                    .map(|_| ()),
                None => Ok(()),
            }
        },
        client.execute(&plain, &params),
        client.batch_execute("COMMIT"),
    );
    begun?;
    let (inserted, stored) = match locked.and(insert) {
        // After a failed statement COMMIT only ends the failed transaction: it is not checked.
        Ok(n) if n == arrays.len() as u64 => {
            commit?;
            (None, HashMap::new())
        }
        Ok(n) => {
            return Err(corrupt(format!(
                "{n} of {} new reports inserted",
                arrays.len()
            )));
        }
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            let (inserted, stored) = ingest_retried(&mut client, &firsts, received_at).await?;
            (Some(inserted), stored)
        }
        Err(e) => return Err(e.into()),
    };

    let mut outcomes = Vec::with_capacity(reports.len());
    for (i, r) in reports.iter().enumerate() {
        let first = first_of[&(r.clinic_id.as_str(), r.report_id)];
        let key = || (r.clinic_id.clone(), r.report_id);
        let new = inserted.as_ref().is_none_or(|set| set.contains(&key()));
        outcomes.push(if first == i && new {
            IngestOutcome::Accepted(accepted(r, received_at))
        } else if new {
            let first = &reports[first];
            if first == r {
                let mut replay = accepted(first, received_at);
                replay.duplicate = true;
                IngestOutcome::Duplicate(replay)
            } else {
                IngestOutcome::Conflict
            }
        } else {
            let earlier = stored
                .get(&key())
                .ok_or_else(|| corrupt("a report neither inserted nor stored"))?;
            if earlier.same_content(r) {
                IngestOutcome::Duplicate(earlier.clone().into_wire(true)?)
            } else {
                IngestOutcome::Conflict
            }
        });
    }
    Ok(outcomes)
}

/// The group again after its insert met a stored report ID, in one transaction:
/// first the counter rows of its clinics are locked (in key order), which waits
/// for every other writer of those clinics to commit and keeps new ones out, so
/// the reports stored now are all there are; they are read back, and only the
/// others are inserted and numbered (a stored report takes no number: the feed
/// stays gap-free). Returns the keys inserted and the reports stored earlier.
async fn ingest_retried(
    client: &mut deadpool_postgres::Client,
    firsts: &[&NewReport],
    received_at: i64,
) -> Result<(HashSet<(String, Uuid)>, HashMap<(String, Uuid), RawReport>), StoreError> {
    let all = ReportArrays::new(firsts.iter().copied());
    let tx = client.transaction().await?;
    let lock = tx.prepare_cached(LOCK_CLINICS).await?;
    tx.query(&lock, &[&all.distinct_clinics]).await?;
    let existing = tx
        .prepare_cached(&format!(
            "SELECT {REPORT_COLUMNS} FROM reports
             WHERE (clinic_id, report_id) IN (SELECT * FROM unnest($1::text[], $2::uuid[]))"
        ))
        .await?;
    let mut stored = HashMap::new();
    for row in tx.query(&existing, &[&all.clinics, &all.ids]).await? {
        stored.insert(
            (row.try_get(0)?, row.try_get(1)?),
            raw_report_from(&row, 0)?,
        );
    }
    let new: Vec<&NewReport> = firsts
        .iter()
        .copied()
        .filter(|r| !stored.contains_key(&(r.clinic_id.clone(), r.report_id)))
        .collect();
    if !new.is_empty() {
        let arrays = ReportArrays::new(new.iter().copied());
        let insert = tx.prepare_cached(INSERT_REPORTS).await?;
        let n = tx.execute(&insert, &arrays.params(&received_at)).await?;
        if n != arrays.len() as u64 {
            return Err(corrupt(format!(
                "{n} of {} new reports inserted",
                arrays.len()
            )));
        }
    }
    tx.commit().await?;
    let inserted = new
        .iter()
        .map(|r| (r.clinic_id.clone(), r.report_id))
        .collect();
    Ok((inserted, stored))
}

/// A token hash waiting for its token, and where to send the answer.
type TokenLookup = (
    [u8; 32],
    std::sync::mpsc::SyncSender<Result<Option<TokenAuth>, StoreError>>,
);

const INSERT_TOKEN: &str =
    "INSERT INTO api_tokens (id, clinic_id, token_sha256, label, created_at, scope)
     VALUES ($1, $2, $3, $4, $5, $6)";

/// Most token lookups answered by one query.
const TOKEN_LOOKUPS_PER_QUERY: usize = 256;

/// Every request is authenticated by a token lookup, so at thousands of requests a
/// second the lookups themselves were a large share of the database's work. They
/// are answered by one query for everything waiting, while the next ones queue. The
/// query for a lookup starts only after the lookup was asked, so a revoked token
/// fails on the next request, whichever replica revoked it.
async fn look_up_tokens(
    pool: Pool,
    mut waiting: tokio::sync::mpsc::UnboundedReceiver<TokenLookup>,
    deadline: Duration,
) {
    let mut batch = Vec::with_capacity(TOKEN_LOOKUPS_PER_QUERY);
    while waiting.recv_many(&mut batch, TOKEN_LOOKUPS_PER_QUERY).await > 0 {
        let hashes: Vec<&[u8]> = batch.iter().map(|(h, _)| h.as_slice()).collect();
        match within(deadline, tokens_for_hashes(&pool, &hashes)).await {
            Ok(found) => {
                for (hash, answer) in batch.drain(..) {
                    let _ = answer.send(Ok(found.get(&hash).cloned()));
                }
            }
            Err(StoreError::Unavailable(why)) => {
                for (_, answer) in batch.drain(..) {
                    let _ = answer.send(Err(StoreError::Unavailable(why.clone())));
                }
            }
            // Not the database's absence: each lookup alone, so each gets its own error.
            Err(_) => {
                for (hash, answer) in batch.drain(..) {
                    let alone = within(deadline, tokens_for_hashes(&pool, &[hash.as_slice()]))
                        .await
                        .map(|found| found.get(&hash).cloned());
                    let _ = answer.send(alone);
                }
            }
        }
    }
}

/// `work`, or "unavailable" once `deadline` has passed.
async fn within<T>(
    deadline: Duration,
    work: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(deadline, work)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the database did not answer in time".into(),
            ))
        })
}

async fn tokens_for_hashes(
    pool: &Pool,
    hashes: &[&[u8]],
) -> Result<HashMap<[u8; 32], TokenAuth>, StoreError> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT token_sha256, id, clinic_id, scope FROM api_tokens
             WHERE token_sha256 = ANY($1) AND revoked_at IS NULL",
        )
        .await?;
    let mut found = HashMap::new();
    for row in client.query(&stmt, &[&hashes]).await? {
        let hash: &[u8] = row.try_get(0)?;
        let hash: [u8; 32] = hash.try_into().map_err(corrupt)?;
        let scope: &str = row.try_get(3)?;
        found.insert(
            hash,
            TokenAuth {
                token_id: row.try_get(1)?,
                clinic_id: row.try_get(2)?,
                scope: scope_from_db(scope)?,
            },
        );
    }
    Ok(found)
}

// Each stream's record from the columns after `id, seq, deleted`: one reader
// each, for the feed pages and the snapshot.
fn patient_record(r: &tokio_postgres::Row) -> Result<PatientRecord, StoreError> {
    let birth: String = r.try_get(5)?;
    Ok(PatientRecord {
        name: r.try_get(3)?,
        sex: r.try_get(4)?,
        birth_date: NaiveDate::from_str(&birth).map_err(corrupt)?,
        is_insured: r.try_get(6)?,
        phone: r.try_get(7)?,
    })
}

fn staff_record(r: &tokio_postgres::Row) -> Result<StaffRecord, StoreError> {
    Ok(StaffRecord {
        name: r.try_get(3)?,
        role: r.try_get(4)?,
        department: r.try_get(5)?,
        active: r.try_get(6)?,
        pin_verifier: r.try_get(7)?,
    })
}

fn appointment_record(r: &tokio_postgres::Row) -> Result<AppointmentRecord, StoreError> {
    Ok(AppointmentRecord {
        doctor_id: r.try_get(3)?,
        patient_id: r.try_get(4)?,
        starts_at: instant(r.try_get(5)?)?,
        ends_at: instant(r.try_get(6)?)?,
        status: r.try_get(7)?,
    })
}

fn report_record(r: &tokio_postgres::Row) -> Result<StoredReport, StoreError> {
    raw_report_from(r, 3)?.into_wire(false)
}

/// Streams one stream's live rows (`id, seq, deleted, <columns>`) of the
/// snapshot's transaction into `out`, row by row as the server sends them.
async fn stream_rows<T>(
    tx: &Transaction<'_>,
    sql: &str,
    clinic_id: &str,
    out: &mut SnapshotWriter,
    data: fn(&tokio_postgres::Row) -> Result<T, StoreError>,
    wrap: fn(FeedItem<T>) -> SnapshotRecord,
) -> Result<(), StoreError> {
    use futures_util::TryStreamExt;
    let stmt = tx.prepare(sql).await?;
    let rows = tx.query_raw(&stmt, [clinic_id]).await?;
    let mut rows = std::pin::pin!(rows);
    while let Some(row) = rows.try_next().await? {
        let item = FeedItem {
            id: row.try_get(0)?,
            seq: row.try_get(1)?,
            deleted: false,
            data: Some(data(&row)?),
        };
        if out.record(&wrap(item))? {
            out.flush().await?;
        }
    }
    Ok(())
}

/// The snapshot's transaction: `REPEATABLE READ, READ ONLY`, so the counter, the
/// counts and every stream are read from one database snapshot. A writer holds
/// its clinic's counter row from taking a number to its commit, so a change not
/// in this snapshot has a number above the counter read here.
async fn snapshot(
    pool: Pool,
    clinic_id: String,
    mut out: SnapshotWriter,
) -> Result<u64, StoreError> {
    let mut client = pool.get().await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let Some(row) = tx
        .query_opt(
            "SELECT change_seq FROM clinics WHERE id = $1",
            &[&clinic_id],
        )
        .await?
    else {
        return Err(StoreError::UnknownClinic(clinic_id));
    };
    let cursor: i64 = row.try_get(0)?;
    let row = tx
        .query_one(
            "SELECT (SELECT count(*) FROM staff WHERE clinic_id = $1),
                    (SELECT count(*) FROM patients WHERE clinic_id = $1 AND NOT deleted),
                    (SELECT count(*) FROM appointments WHERE clinic_id = $1 AND NOT deleted),
                    (SELECT count(*) FROM reports WHERE clinic_id = $1)",
            &[&clinic_id],
        )
        .await?;
    let n = |i: usize| -> Result<u64, StoreError> { Ok(row.try_get::<_, i64>(i)?.max(0) as u64) };
    let counts = SnapshotCounts {
        staff: n(0)?,
        patients: n(1)?,
        appointments: n(2)?,
        reports: n(3)?,
    };
    out.begin(cursor, counts)?;
    out.flush().await?;
    stream_rows(
        &tx,
        "SELECT id, seq, FALSE, name, role, department, active, pin_verifier FROM staff
         WHERE clinic_id = $1 ORDER BY seq",
        &clinic_id,
        &mut out,
        staff_record,
        SnapshotRecord::Staff,
    )
    .await?;
    stream_rows(
        &tx,
        "SELECT id, seq, deleted, name, sex, birth_date, is_insured, phone FROM patients
         WHERE clinic_id = $1 AND NOT deleted ORDER BY seq",
        &clinic_id,
        &mut out,
        patient_record,
        SnapshotRecord::Patient,
    )
    .await?;
    stream_rows(
        &tx,
        "SELECT id, seq, deleted, doctor_id, patient_id, starts_at, ends_at, status
         FROM appointments WHERE clinic_id = $1 AND NOT deleted ORDER BY seq",
        &clinic_id,
        &mut out,
        appointment_record,
        SnapshotRecord::Appointment,
    )
    .await?;
    stream_rows(
        &tx,
        concat!(
            "SELECT report_id::text, seq, FALSE, ",
            report_columns!(),
            " FROM reports WHERE clinic_id = $1 ORDER BY seq"
        ),
        &clinic_id,
        &mut out,
        report_record,
        SnapshotRecord::Report,
    )
    .await?;
    out.end()?;
    out.flush().await?;
    tx.commit().await?;
    Ok(counts.total())
}

/// Runs a feed query selecting `id, seq, deleted, <data columns...>` and pages it.
async fn page<T>(
    pool: Pool,
    sql: &'static str,
    clinic_id: String,
    after: i64,
    limit: u32,
    data: impl Fn(&tokio_postgres::Row) -> Result<T, StoreError>,
) -> Result<FeedPage<T>, StoreError> {
    let limit = limit.max(1);
    let client = pool.get().await?;
    let stmt = client.prepare_cached(sql).await?;
    let rows = client
        .query(&stmt, &[&clinic_id, &after, &(i64::from(limit) + 1)])
        .await?;
    let has_more = rows.len() > limit as usize;
    let mut items = Vec::with_capacity(rows.len().min(limit as usize));
    for row in rows.iter().take(limit as usize) {
        let deleted: bool = row.try_get(2)?;
        items.push(FeedItem {
            id: row.try_get(0)?,
            seq: row.try_get(1)?,
            deleted,
            data: if deleted { None } else { Some(data(row)?) },
        });
    }
    let next_cursor = items.last().map_or(after, |i| i.seq);
    Ok(FeedPage {
        items,
        next_cursor,
        has_more,
    })
}

impl CentralStore for PostgresStore {
    fn ingest(&self, reports: &[NewReport]) -> Result<Vec<IngestOutcome>, StoreError> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let reports = reports.to_vec();
        self.run(move |pool| ingest(pool, reports))
    }

    fn report_count(&self, clinic_id: Option<&str>) -> Result<u64, StoreError> {
        let clinic_id = clinic_id.map(str::to_owned);
        self.run(move |pool| async move {
            let client = pool.get().await?;
            let row = match clinic_id {
                Some(c) => {
                    client
                        .query_one("SELECT count(*) FROM reports WHERE clinic_id = $1", &[&c])
                        .await?
                }
                None => {
                    client
                        .query_one("SELECT count(*) FROM reports", &[])
                        .await?
                }
            };
            Ok(row.try_get::<_, i64>(0)? as u64)
        })
    }

    fn ensure_clinic(&self, clinic_id: &str, zone: ClinicZone) -> Result<(), StoreError> {
        let clinic_id = clinic_id.to_owned();
        self.run(move |pool| async move {
            pool.get()
                .await?
                .execute(
                    "INSERT INTO clinics (id, zone) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                    &[&clinic_id, &zone.name()],
                )
                .await?;
            Ok(())
        })
    }

    fn clinic_zone(&self, clinic_id: &str) -> Result<Option<ClinicZone>, StoreError> {
        let clinic_id = clinic_id.to_owned();
        self.run(move |pool| async move {
            let client = pool.get().await?;
            let stmt = client
                .prepare_cached("SELECT zone FROM clinics WHERE id = $1")
                .await?;
            let row = client.query_opt(&stmt, &[&clinic_id]).await?;
            row.map(|r| {
                let zone: String = r.try_get(0)?;
                ClinicZone::parse(&zone).map_err(corrupt)
            })
            .transpose()
        })
    }

    fn patient(
        &self,
        clinic_id: &str,
        id: &PatientId,
    ) -> Result<Option<(Patient, ClinicZone)>, StoreError> {
        let (clinic_id, id) = (clinic_id.to_owned(), id.clone());
        self.run(move |pool| async move {
            let client = pool.get().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT p.name, p.sex, p.birth_date, p.is_insured, p.phone, c.zone
                     FROM patients p JOIN clinics c ON c.id = p.clinic_id
                     WHERE p.clinic_id = $1 AND p.id = $2 AND NOT p.deleted",
                )
                .await?;
            let Some(row) = client.query_opt(&stmt, &[&clinic_id, &id.as_str()]).await? else {
                return Ok(None);
            };
            let sex: String = row.try_get(1)?;
            let birth: String = row.try_get(2)?;
            let zone: String = row.try_get(5)?;
            let patient = Patient {
                id,
                name: row.try_get(0)?,
                sex: Sex::parse(&sex).map_err(corrupt)?,
                birth_date: NaiveDate::from_str(&birth).map_err(corrupt)?,
                is_insured: row.try_get(3)?,
                phone: row.try_get(4)?,
            };
            Ok(Some((patient, ClinicZone::parse(&zone).map_err(corrupt)?)))
        })
    }

    fn snapshot(&self, clinic_id: &str, out: SnapshotWriter) -> Result<u64, StoreError> {
        let clinic_id = clinic_id.to_owned();
        // Bounded by the snapshot's own deadline, not a request's.
        let deadline = out.time_left();
        self.run_for(Some(deadline), move |pool| snapshot(pool, clinic_id, out))
    }

    fn patients_feed(
        &self,
        clinic_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<FeedPage<PatientRecord>, StoreError> {
        let clinic_id = clinic_id.to_owned();
        self.run(move |pool| {
            page(
                pool,
                "SELECT id, seq, deleted, name, sex, birth_date, is_insured, phone FROM patients
                 WHERE clinic_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                clinic_id,
                after,
                limit,
                patient_record,
            )
        })
    }

    fn staff_feed(
        &self,
        clinic_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<FeedPage<StaffRecord>, StoreError> {
        let clinic_id = clinic_id.to_owned();
        self.run(move |pool| {
            page(
                pool,
                "SELECT id, seq, FALSE, name, role, department, active, pin_verifier FROM staff
                 WHERE clinic_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                clinic_id,
                after,
                limit,
                staff_record,
            )
        })
    }

    fn appointments_feed(
        &self,
        clinic_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<FeedPage<AppointmentRecord>, StoreError> {
        let clinic_id = clinic_id.to_owned();
        self.run(move |pool| {
            page(
                pool,
                "SELECT id, seq, deleted, doctor_id, patient_id, starts_at, ends_at, status
                 FROM appointments WHERE clinic_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                clinic_id,
                after,
                limit,
                appointment_record,
            )
        })
    }

    fn reports_feed(
        &self,
        clinic_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<FeedPage<StoredReport>, StoreError> {
        let clinic_id = clinic_id.to_owned();
        self.run(move |pool| {
            page(
                pool,
                concat!(
                    "SELECT report_id::text, seq, FALSE, ",
                    report_columns!(),
                    " FROM reports WHERE clinic_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                ),
                clinic_id,
                after,
                limit,
                report_record,
            )
        })
    }

    fn upsert_patient(&self, clinic_id: &str, patient: &Patient) -> Result<i64, StoreError> {
        let (clinic_id, patient) = (clinic_id.to_owned(), patient.clone());
        self.run(move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let seq = reserve_seqs(&tx, &clinic_id, 1).await?;
            put_patients(&tx, &clinic_id, std::slice::from_ref(&patient), seq).await?;
            tx.commit().await?;
            Ok(seq)
        })
    }

    fn delete_patient(&self, clinic_id: &str, id: &PatientId) -> Result<Option<i64>, StoreError> {
        let (clinic_id, id) = (clinic_id.to_owned(), id.clone());
        self.run(move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let seq = reserve_seqs(&tx, &clinic_id, 1).await?;
            // The tombstone keeps no personal data: only the ID travels to the clinics' copies.
            let n = tx
                .execute(
                    "UPDATE patients SET deleted = TRUE, name = '', phone = NULL, seq = $3
                     WHERE clinic_id = $1 AND id = $2 AND NOT deleted",
                    &[&clinic_id, &id.as_str(), &seq],
                )
                .await?;
            if n == 0 {
                return Ok(None); // dropping tx rolls the change number back
            }
            tx.commit().await?;
            Ok(Some(seq))
        })
    }

    fn upsert_appointment(
        &self,
        clinic_id: &str,
        appointment: &Appointment,
    ) -> Result<i64, StoreError> {
        let (clinic_id, appointment) = (clinic_id.to_owned(), appointment.clone());
        self.run(move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let seq = reserve_seqs(&tx, &clinic_id, 1).await?;
            put_appointments(&tx, &clinic_id, std::slice::from_ref(&appointment), seq).await?;
            tx.commit().await?;
            Ok(seq)
        })
    }

    fn delete_appointment(&self, clinic_id: &str, id: &str) -> Result<Option<i64>, StoreError> {
        let (clinic_id, id) = (clinic_id.to_owned(), id.to_owned());
        self.run(move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let seq = reserve_seqs(&tx, &clinic_id, 1).await?;
            let n = tx
                .execute(
                    "UPDATE appointments SET deleted = TRUE, seq = $3
                     WHERE clinic_id = $1 AND id = $2 AND NOT deleted",
                    &[&clinic_id, &id, &seq],
                )
                .await?;
            if n == 0 {
                return Ok(None);
            }
            tx.commit().await?;
            Ok(Some(seq))
        })
    }

    fn upsert_staff(
        &self,
        clinic_id: &str,
        member: &StaffMember,
        active: bool,
        pin_verifier: Option<&str>,
    ) -> Result<i64, StoreError> {
        let (clinic_id, member) = (clinic_id.to_owned(), member.clone());
        let pin_verifier = pin_verifier.map(str::to_owned);
        self.run(move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let pin_verifier = match pin_verifier {
                Some(v) => v,
                None => tx
                    .query_opt(
                        "SELECT pin_verifier FROM staff WHERE clinic_id = $1 AND id = $2",
                        &[&clinic_id, &member.id],
                    )
                    .await?
                    .map(|r| r.try_get::<_, String>(0))
                    .transpose()?
                    .ok_or(StoreError::PinRequired)?,
            };
            let seq = reserve_seqs(&tx, &clinic_id, 1).await?;
            let row = StaffImport {
                member,
                active,
                pin_verifier,
            };
            put_staff(&tx, &clinic_id, std::slice::from_ref(&row), seq).await?;
            tx.commit().await?;
            Ok(seq)
        })
    }

    fn load_clinic(&self, clinic: &DemoClinic, pin_verifiers: &[String]) -> Result<(), StoreError> {
        if pin_verifiers.len() != clinic.staff.len() {
            return Err(StoreError::PinRequired);
        }
        let (clinic_id, zone) = (clinic.clinic_id.clone(), clinic.zone);
        let (patients, appointments) = (clinic.patients.clone(), clinic.appointments.clone());
        let staff: Vec<StaffImport> = clinic
            .staff
            .iter()
            .zip(pin_verifiers)
            .map(|(m, v)| StaffImport {
                member: m.clone(),
                active: true,
                pin_verifier: v.clone(),
            })
            .collect();
        self.run_for(None, move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let id = clinic_id.as_str();
            tx.execute(
                "INSERT INTO clinics (id, zone) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET zone = excluded.zone",
                &[&id, &zone.name()],
            )
            .await?;
            let n = patients.len() + staff.len() + appointments.len();
            let first = reserve_seqs(&tx, id, n).await?;
            put_patients(&tx, id, &patients, first).await?;
            let first = first + patients.len() as i64;
            put_staff(&tx, id, &staff, first).await?;
            let first = first + staff.len() as i64;
            put_appointments(&tx, id, &appointments, first).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn import(&self, clinic_id: &str, rows: ImportRows) -> Result<u64, StoreError> {
        let clinic_id = clinic_id.to_owned();
        self.run_for(None, move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let n = rows.len();
            if n == 0 {
                return Ok(0);
            }
            let first = reserve_seqs(&tx, &clinic_id, n).await?;
            match &rows {
                ImportRows::Patients(p) => put_patients(&tx, &clinic_id, p, first).await?,
                ImportRows::Appointments(a) => put_appointments(&tx, &clinic_id, a, first).await?,
                ImportRows::Staff(s) => put_staff(&tx, &clinic_id, s, first).await?,
            }
            tx.commit().await?;
            Ok(n as u64)
        })
    }

    fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let token = token.clone();
        self.run(move |pool| async move {
            pool.get()
                .await?
                .execute(
                    INSERT_TOKEN,
                    &[
                        &token.id,
                        &token.clinic_id,
                        &token.sha256.as_slice(),
                        &token.label,
                        &now_unix(),
                        &token.scope.as_str(),
                    ],
                )
                .await?;
            Ok(())
        })
    }

    fn revoke_token(&self, token_id: &str) -> Result<bool, StoreError> {
        let token_id = token_id.to_owned();
        self.run(move |pool| async move {
            let n = pool
                .get()
                .await?
                .execute(
                    "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                    &[&token_id, &now_unix()],
                )
                .await?;
            Ok(n == 1)
        })
    }

    fn touch_token(
        &self,
        token_id: &str,
        at: i64,
        address: Option<&str>,
    ) -> Result<(), StoreError> {
        let (token_id, address) = (token_id.to_owned(), address.map(str::to_owned));
        self.run(move |pool| async move {
            let client = pool.get().await?;
            let stmt = client
                .prepare_cached(
                    "UPDATE api_tokens SET last_seen_at = $2, last_seen_address = $3 WHERE id = $1",
                )
                .await?;
            client.execute(&stmt, &[&token_id, &at, &address]).await?;
            Ok(())
        })
    }

    fn tokens(&self, clinic_id: &str) -> Result<Vec<TokenInfo>, StoreError> {
        let clinic_id = clinic_id.to_owned();
        self.run(move |pool| async move {
            let rows = pool
                .get()
                .await?
                .query(
                    "SELECT id, clinic_id, scope, label, created_at, last_seen_at,
                            last_seen_address, revoked_at
                     FROM api_tokens WHERE clinic_id = $1 ORDER BY created_at, id",
                    &[&clinic_id],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    let scope: &str = r.try_get(2)?;
                    Ok(TokenInfo {
                        id: r.try_get(0)?,
                        clinic_id: r.try_get(1)?,
                        scope: scope_from_db(scope)?,
                        label: r.try_get(3)?,
                        created_at: r.try_get(4)?,
                        last_seen_at: r.try_get(5)?,
                        last_seen_address: r.try_get(6)?,
                        revoked_at: r.try_get(7)?,
                    })
                })
                .collect()
        })
    }

    fn insert_enrolment_code(&self, code: &EnrolmentCodeRecord) -> Result<(), StoreError> {
        let code = code.clone();
        self.run(move |pool| async move {
            pool.get()
                .await?
                .execute(
                    "INSERT INTO enrolment_codes
                         (id, clinic_id, code_sha256, label, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &code.id,
                        &code.clinic_id,
                        &code.sha256.as_slice(),
                        &code.label,
                        &now_unix(),
                        &code.expires_at,
                    ],
                )
                .await?;
            Ok(())
        })
    }

    fn redeem_enrolment_code(
        &self,
        sha256: &[u8; 32],
        now: i64,
        token: &TokenRecord,
    ) -> Result<Redeemed, StoreError> {
        let (sha256, token) = (*sha256, token.clone());
        self.run(move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            // FOR UPDATE: two replicas redeeming one code at once take turns, and
            // the second sees it used.
            let Some(row) = tx
                .query_opt(
                    "SELECT id, clinic_id, label, expires_at, used_at FROM enrolment_codes
                     WHERE code_sha256 = $1 FOR UPDATE",
                    &[&sha256.as_slice()],
                )
                .await?
            else {
                return Ok(Redeemed::Unknown);
            };
            let code_id: String = row.try_get(0)?;
            let clinic_id: String = row.try_get(1)?;
            let label: Option<String> = row.try_get(2)?;
            let expires_at: i64 = row.try_get(3)?;
            let used_at: Option<i64> = row.try_get(4)?;
            let verdict = if used_at.is_some() {
                Redeemed::Used
            } else if now >= expires_at {
                Redeemed::Expired
            } else if clinic_id != token.clinic_id {
                Redeemed::OtherClinic
            } else {
                let label = label.or_else(|| token.label.clone());
                tx.execute(
                    INSERT_TOKEN,
                    &[
                        &token.id,
                        &token.clinic_id,
                        &token.sha256.as_slice(),
                        &label,
                        &now_unix(),
                        &token.scope.as_str(),
                    ],
                )
                .await?;
                tx.execute(
                    "UPDATE enrolment_codes SET used_at = $2, token_id = $3 WHERE id = $1",
                    &[&code_id, &now, &token.id],
                )
                .await?;
                Redeemed::Enrolled { label }
            };
            tx.commit().await?;
            Ok(verdict)
        })
    }

    fn token_for_hash(&self, sha256: &[u8; 32]) -> Result<Option<TokenAuth>, StoreError> {
        let started = Instant::now();
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let result = match self.tokens.send((*sha256, answer)) {
            Ok(()) => answered.recv_timeout(self.timeout * 3).unwrap_or_else(|_| {
                Err(StoreError::Unavailable(
                    "the database did not answer in time".into(),
                ))
            }),
            Err(_) => Err(StoreError::Unavailable("database runtime stopped".into())),
        };
        let unavailable = matches!(result, Err(StoreError::Unavailable(_)));
        self.stats.observe(started.elapsed(), unavailable);
        result
    }

    fn staff_role(
        &self,
        clinic_id: &str,
        id: &str,
    ) -> Result<Option<clinic_domain::StaffRole>, StoreError> {
        let (clinic_id, id) = (clinic_id.to_owned(), id.to_owned());
        self.run(move |pool| async move {
            let client = pool.get().await?;
            let stmt = client
                .prepare_cached("SELECT role FROM staff WHERE clinic_id = $1 AND id = $2")
                .await?;
            let Some(row) = client.query_opt(&stmt, &[&clinic_id, &id]).await? else {
                return Ok(None);
            };
            let role: String = row.try_get(0)?;
            clinic_domain::StaffRole::parse(&role)
                .map(Some)
                .map_err(corrupt)
        })
    }

    fn check(&self) -> Result<(), StoreError> {
        self.run(move |pool| async move {
            pool.get().await?.query_one("SELECT 1", &[]).await?;
            Ok(())
        })
    }

    fn change_counters(&self, clinic_ids: &[String]) -> Result<Vec<(String, i64)>, StoreError> {
        let ids = clinic_ids.to_vec();
        self.run(move |pool| async move {
            let client = pool.get().await?;
            let stmt = client
                .prepare_cached("SELECT id, change_seq FROM clinics WHERE id = ANY($1)")
                .await?;
            let rows = client.query(&stmt, &[&ids]).await?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect()
        })
    }

    fn is_embedded(&self) -> bool {
        false
    }

    fn metric_collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        self.stats.collectors(&self.pool)
    }
}
