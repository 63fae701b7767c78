//! `clinic-central`: the reference central server for Clinic Desk.
//!
//! - [`router`] builds the HTTP API over an [`AppState`]; [`start`] binds and serves it.
//! - [`store`]: the [`store::CentralStore`] trait, its SQLite and PostgreSQL implementations.
//! - [`ingest`]: the group-commit writer every report goes through, and its supervisor.
//! - [`limits`]: every bound (timeouts, connections, PIN hashing, failed
//!   authentication, body sizes) as named constants; [`serve`] the accept loop that applies them.
//! - [`api`] handlers, [`extract`] JSON-error extractors, [`error::ApiError`].
//! - [`auth`] per-clinic bearer tokens and their scopes (the table of routes), enrolment
//!   codes; [`pin`] staff PIN verifiers, [`demo`] the demo clinic.
//! - [`metrics`] Prometheus counters, [`telemetry`] trace IDs and JSON logs.
//! - [`spawn_for_tests`] / [`spawn_store_for_tests`]: a real server on 127.0.0.1:0 for any
//!   crate's tests; [`store::postgres::cluster::PgCluster`] a throwaway PostgreSQL for them.
//! - [`import`]: bulk load of patients, appointments and staff from CSV or FHIR.
//! - [`tls`]: HTTPS from PEM certificate and key files, reloaded on SIGHUP;
//!   [`check_compat_listen`] keeps compat mode's unauthenticated API on loopback
//!   unless asked; `test_pki` (feature `test-pki`) a throwaway CA for other crates' tests.

pub mod api;
pub mod auth;
pub mod changes;
pub mod demo;
pub mod error;
pub mod extract;
pub mod import;
pub mod ingest;
pub mod limits;
pub mod metrics;
pub mod pin;
mod serve;
pub mod snapshot;
pub mod store;
pub mod telemetry;
#[cfg(feature = "test-pki")]
pub mod test_pki;
pub mod tls;

use std::net::SocketAddr;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use clinic_domain::ClinicZone;
use clinic_protocol::paths;
use tokio::sync::oneshot;
use tower_http::catch_panic::CatchPanicLayer;

use crate::auth::with_segment;
use crate::ingest::Ingestor;
use crate::limits::FailedAuthLimiter;
pub use crate::limits::{BATCH_BODY_LIMIT, BODY_LIMIT, Limits};
use crate::metrics::Metrics;
use crate::store::{CentralStore, Durability, PgOptions, SqliteStore, StoreError};
/// Clinic that compat mode's unauthenticated requests act for, unless configured.
pub const DEFAULT_COMPAT_CLINIC: &str = "C001";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Everything: idempotent ingest, batch, feeds, record upserts; bearer tokens required.
    Full,
    /// Only the hospital contract, as the original server had it: no authentication,
    /// server-assigned report IDs, everything stored under `clinic_id`.
    Compat { clinic_id: String },
}

pub struct Shared {
    pub store: Arc<dyn CentralStore>,
    pub ingest: Ingestor,
    pub metrics: Arc<Metrics>,
    pub mode: Mode,
    pub limits: Limits,
    /// argon2id PIN hashing, [`Limits::max_concurrent_pin_hashes`] at once.
    pub pin_hasher: pin::PinHasher,
    pub failed_auth: FailedAuthLimiter,
    /// `GET /v1/changes` waiters by clinic; writes wake them.
    pub changes: changes::ChangeHub,
    /// Which tokens' last use is due to be written.
    pub token_touches: auth::TokenTouches,
    /// `GET /v1/snapshot` bodies being written, [`Limits::max_snapshots`] at most.
    pub snapshots: Arc<tokio::sync::Semaphore>,
}

/// Cheap to clone; the writer thread lives as long as any clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// Starts the group-commit writer for `store`, with the default [`Limits`].
    pub fn new(store: Arc<dyn CentralStore>, mode: Mode) -> Self {
        Self::with_limits(store, mode, Limits::default())
    }

    pub fn with_limits(store: Arc<dyn CentralStore>, mode: Mode, limits: Limits) -> Self {
        let metrics = Arc::new(Metrics::new(store.metric_collectors()));
        let changes = changes::ChangeHub::new(
            store.clone(),
            limits.change_waiter_cap(),
            metrics.change_waiters.clone(),
            metrics.change_waiters_refused.clone(),
        );
        let ingest = Ingestor::start(
            store.clone(),
            metrics.clone(),
            limits.writer_restart_delay,
            changes.clone(),
        );
        Self(Arc::new(Shared {
            store,
            ingest,
            metrics,
            mode,
            pin_hasher: pin::PinHasher::new(limits.max_concurrent_pin_hashes),
            failed_auth: FailedAuthLimiter::new(&limits),
            changes,
            token_touches: auth::TokenTouches::new(limits.token_touch_interval),
            snapshots: Arc::new(tokio::sync::Semaphore::new(limits.max_snapshots.max(1))),
            limits,
        }))
    }
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(clinic_protocol::ErrorBody::new("internal error")),
    )
        .into_response()
}

pub fn router(state: AppState) -> Router {
    let mut app = Router::new()
        .route(paths::HEALTH, get(api::healthz))
        .route(paths::METRICS, get(api::metrics))
        .route(
            &with_segment(paths::PATIENT_SUMMARY, "id"),
            get(api::get_patient),
        )
        .route(paths::PATIENT_SUMMARY, get(api::empty_patient_id));
    app = match state.mode {
        Mode::Compat { .. } => app.route(paths::REPORTS, post(api::post_report_compat)),
        Mode::Full => app
            .route(paths::REPORTS, post(api::post_report))
            .route(
                paths::REPORTS_BATCH,
                post(api::post_batch).layer(DefaultBodyLimit::max(BATCH_BODY_LIMIT)),
            )
            .route(&with_segment(paths::FEEDS, "kind"), get(api::feed))
            .route(paths::CHANGES, get(changes::changes))
            .route(paths::SNAPSHOT, get(snapshot::snapshot))
            .route(paths::ENROL, post(api::enrol))
            .route(paths::OWN_TOKEN, delete(api::revoke_own_token))
            .route(
                &with_segment(paths::PATIENTS, "id"),
                put(api::put_patient).delete(api::delete_patient),
            )
            .route(
                &with_segment(paths::APPOINTMENTS, "id"),
                put(api::put_appointment).delete(api::delete_appointment),
            )
            .route(&with_segment(paths::STAFF, "id"), put(api::put_staff)),
    };
    app.fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            telemetry::observe,
        ))
        .layer(axum::middleware::map_response(serve::close_if_body_unread))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "compat mode serves the hospital's original API without authentication, so it listens only on this machine (127.0.0.1 or ::1), not on {0}: put it behind a proxy on this machine, or pass --compat-listen-anywhere if every network that reaches {0} is trusted"
    )]
    CompatNotLoopback(SocketAddr),
}

/// Compat mode answers without authentication: it listens on a loopback address
/// only, unless `anywhere` (`serve --compat-listen-anywhere`) says otherwise.
pub fn check_compat_listen(
    mode: &Mode,
    listen: SocketAddr,
    anywhere: bool,
) -> Result<(), StartError> {
    let loopback = clinic_protocol::transport::is_loopback_ip(listen.ip());
    match mode {
        Mode::Compat { .. } if !loopback && !anywhere => Err(StartError::CompatNotLoopback(listen)),
        _ => Ok(()),
    }
}

/// Opens (and migrates) the database `db` names (a `postgres://` URL or a SQLite
/// file path) and makes sure compat mode's clinic exists.
pub fn open_store(
    db: &str,
    mode: &Mode,
    durability: Durability,
    pg: PgOptions,
) -> Result<Arc<dyn CentralStore>, StoreError> {
    let store = store::open(db, durability, pg)?;
    if let Mode::Compat { clinic_id } = mode {
        store.ensure_clinic(clinic_id, ClinicZone::default())?;
    }
    Ok(store)
}

/// A server running on the current tokio runtime.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, and waits.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// Binds `listen` (port 0 picks a free port; see `addr`) and serves in the background
/// with the default [`Limits`].
pub async fn start(
    store: Arc<dyn CentralStore>,
    mode: Mode,
    listen: SocketAddr,
) -> Result<RunningServer, StartError> {
    start_with_limits(store, mode, listen, Limits::default()).await
}

pub async fn start_with_limits(
    store: Arc<dyn CentralStore>,
    mode: Mode,
    listen: SocketAddr,
    limits: Limits,
) -> Result<RunningServer, StartError> {
    start_serving(store, mode, listen, limits, None).await
}

/// [`start_with_limits`], speaking HTTPS with `tls` when given (plain HTTP
/// otherwise, as behind a proxy that ends TLS).
pub async fn start_serving(
    store: Arc<dyn CentralStore>,
    mode: Mode,
    listen: SocketAddr,
    limits: Limits,
    tls: Option<Arc<tls::Tls>>,
) -> Result<RunningServer, StartError> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let state = AppState::with_limits(store, mode, limits.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let app = router(state.clone());
    let task = tokio::spawn(serve::serve(listener, app, state.clone(), limits, tls, rx));
    Ok(RunningServer {
        addr,
        state,
        shutdown: Some(tx),
        task,
    })
}

/// A real server on 127.0.0.1 (random port) over a durable store, on its own
/// runtime thread, so sync and async tests of any crate can use it.
/// Dropping it stops the server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Arc<dyn CentralStore>,
    pub mode: Mode,
    /// The running server's state: its metrics, limits and report writer.
    pub state: AppState,
    /// Serving HTTPS: [`TestServer::base_url`] is `https://127.0.0.1:<port>`.
    pub tls: Option<Arc<tls::Tls>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts a [`TestServer`] on `db_path` (created if missing). `compat: true` serves
/// only the hospital contract, unauthenticated, for clinic [`DEFAULT_COMPAT_CLINIC`].
pub fn spawn_for_tests(db_path: &Path, compat: bool) -> Result<TestServer, StartError> {
    spawn_for_tests_with(db_path, compat, Limits::default())
}

/// [`spawn_for_tests`] with other [`Limits`] (short timeouts, a small connection cap).
pub fn spawn_for_tests_with(
    db_path: &Path,
    compat: bool,
    limits: Limits,
) -> Result<TestServer, StartError> {
    let store = Arc::new(SqliteStore::open(db_path, Durability::Full)?);
    spawn_store_for_tests_with(store, compat, limits)
}

/// Like [`spawn_for_tests`] over any store: a PostgreSQL one, or a second replica's
/// view of a database another server already uses.
pub fn spawn_store_for_tests(
    store: Arc<dyn CentralStore>,
    compat: bool,
) -> Result<TestServer, StartError> {
    spawn_store_for_tests_with(store, compat, Limits::default())
}

/// [`spawn_store_for_tests`] with other [`Limits`].
pub fn spawn_store_for_tests_with(
    store: Arc<dyn CentralStore>,
    compat: bool,
    limits: Limits,
) -> Result<TestServer, StartError> {
    spawn_serving_for_tests(store, compat, limits, None)
}

/// A [`TestServer`] on `db_path` speaking HTTPS with `tls` (see `test_pki` for a
/// throwaway CA and a certificate for 127.0.0.1 and `localhost`).
pub fn spawn_tls_for_tests(
    db_path: &Path,
    limits: Limits,
    tls: Arc<tls::Tls>,
) -> Result<TestServer, StartError> {
    let store = Arc::new(SqliteStore::open(db_path, Durability::Full)?);
    spawn_serving_for_tests(store, false, limits, Some(tls))
}

fn spawn_serving_for_tests(
    store: Arc<dyn CentralStore>,
    compat: bool,
    limits: Limits,
    tls: Option<Arc<tls::Tls>>,
) -> Result<TestServer, StartError> {
    let mode = if compat {
        Mode::Compat {
            clinic_id: DEFAULT_COMPAT_CLINIC.to_owned(),
        }
    } else {
        Mode::Full
    };
    if let Mode::Compat { clinic_id } = &mode {
        store.ensure_clinic(clinic_id, ClinicZone::default())?;
    }
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (thread_store, thread_mode, thread_tls) = (store.clone(), mode.clone(), tls.clone());
    let thread = std::thread::Builder::new()
        .name("clinic-central-test".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(StartError::Io(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                let listen = SocketAddr::from(([127, 0, 0, 1], 0));
                match start_serving(thread_store, thread_mode, listen, limits, thread_tls).await {
                    Ok(server) => {
                        let _ = ready_tx.send(Ok((server.addr, server.state.clone())));
                        let _ = stop_rx.await;
                        let _ = server.shutdown().await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
        })?;
    let (addr, state) = ready_rx
        .recv()
        .map_err(|_| StartError::Io(std::io::Error::other("test server thread died")))??;
    Ok(TestServer {
        addr,
        store,
        mode,
        state,
        tls,
        shutdown: Some(stop_tx),
        thread: Some(thread),
    })
}

impl TestServer {
    /// `http://127.0.0.1:<port>`, or `https://` when it serves TLS.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Creates `clinic_id` if needed and returns a fresh admin token for it (what
    /// every token was before scopes: it may do anything a route allows).
    pub fn issue_token(&self, clinic_id: &str) -> Result<String, StoreError> {
        self.issue_scoped_token(clinic_id, auth::Scope::Admin)
    }

    /// Creates `clinic_id` if needed and returns a fresh token of `scope` for it.
    pub fn issue_scoped_token(
        &self,
        clinic_id: &str,
        scope: auth::Scope,
    ) -> Result<String, StoreError> {
        self.store.ensure_clinic(clinic_id, ClinicZone::default())?;
        Ok(auth::issue_token(self.store.as_ref(), clinic_id, scope, Some("test"))?.secret)
    }

    /// Loads the demo clinic (2,000 patients, 18 staff with the demo PIN 1234, a week of appointments).
    pub fn load_demo(&self, clinic_id: &str, seed: u64) -> Result<demo::DemoSummary, StoreError> {
        demo::load_demo(self.store.as_ref(), clinic_id, seed, ClinicZone::default())
    }

    /// Reports stored for `clinic_id` (or all clinics), read straight from the database.
    pub fn report_count(&self, clinic_id: Option<&str>) -> Result<u64, StoreError> {
        self.store.report_count(clinic_id)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
