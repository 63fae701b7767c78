//! What people see: where sync stands, as plain data the UI translates.

/// Why the last sync failed, as a kind the UI translates, plus an English detail
/// for support. Never contains patient data or tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncProblemKind {
    /// No connection to the server (network down, server stopped).
    Offline,
    /// The server did not answer in time.
    Timeout,
    /// The server answered with an error or is overloaded; we will retry.
    ServerError,
    /// The server refused the clinic's credentials; sync is stopped.
    CredentialsRefused,
    /// The server's answer could not be understood or the connection broke.
    Protocol,
    /// This device's database failed.
    LocalStorage,
    /// Something answered that is not a clinic server (a proxy, captive portal or
    /// login page, a wrong address): reports stay queued.
    UnexpectedAnswer,
    /// The server offers no patients or schedules and has not yet proven that it
    /// stores reports (no report delivered to it yet).
    FeedsMissing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncProblem {
    pub kind: SyncProblemKind,
    pub detail: String,
    /// Unix seconds.
    pub at: i64,
}

/// What a bootstrap is doing (see `crate::bootstrap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootstrapPhase {
    /// The snapshot's records are going in; `done` and `total` count records.
    Loading,
    /// Every record is in and lookup by ID works; the search keys are being
    /// built, `done` and `total` count patients.
    Indexing,
}

/// How far a bootstrap is, for the search screen to show instead of an empty search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootstrapProgress {
    pub phase: BootstrapPhase,
    pub done: u64,
    pub total: u64,
    /// Estimated from the rate so far; `None` before there is a rate.
    pub seconds_left: Option<u64>,
}

impl BootstrapProgress {
    /// Whole percent of the phase, 0 to 100.
    pub fn percent(&self) -> u8 {
        match self.total {
            0 => 100,
            t => (self.done.min(t) * 100 / t) as u8,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// A server is configured at all.
    pub configured: bool,
    /// `Some(true)` after the server last answered, `Some(false)` after it could not
    /// be reached, `None` before the first attempt.
    pub online: Option<bool>,
    /// A sync is running now.
    pub running: bool,
    /// Reports not yet acknowledged by the server (queued or being sent).
    pub waiting: u64,
    /// Reports the server refused, set aside with its reason.
    pub rejected: u64,
    /// Unix seconds of the last sync that completed; survives restarts.
    pub last_success_at: Option<i64>,
    pub last_error: Option<SyncProblem>,
    /// Sync stopped because the credentials were refused; only "sync now" restarts it.
    pub credentials_refused: bool,
    /// The server offers only the hospital's single-report route.
    pub single_post_mode: bool,
    /// The server takes reports (proven by a delivered one) but has no feeds, like
    /// the hospital's original API: nothing to pull, and that is not a failure.
    pub upload_only: bool,
    /// Pulled records this device refused, set aside with their reasons.
    pub set_aside: u64,
    /// Pulled items (patients, staff, appointments) applied since the engine started:
    /// when it grows, screens showing the clinic's data refresh themselves.
    pub pulled_changes: u64,
    /// A bootstrap under way: the store is being loaded from the server's snapshot.
    pub bootstrap: Option<BootstrapProgress>,
}
