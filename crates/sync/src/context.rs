//! What one sync run works with: the store, the client, the config, and what
//! earlier runs learned about the server (single-post mode, upload-only), which
//! the status shows as soon as it changes. Push and pull are plain functions over
//! a `&Context`; the engine owns one and the loop never lends it out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use clinic_store::{Database, StoreError, pull};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::{Client, SyncConfig, SyncError, SyncStatus};

pub(crate) struct Context {
    pub(crate) db: Arc<Database>,
    pub(crate) client: Client,
    pub(crate) config: SyncConfig,
    pub(crate) status: watch::Sender<SyncStatus>,
    /// When single-POST mode was learned (proof from the single route after the
    /// batch route was missing); never persisted, and it lapses after `batch_recheck`.
    single_post_since: Mutex<Option<Instant>>,
    upload_only: AtomicBool,
    /// The server answered `GET /v1/snapshot` with 404/405: pull page by page
    /// without asking again until the engine restarts.
    snapshot_missing: AtomicBool,
    /// When this engine last learned how far behind the store is (see
    /// `SyncConfig::far_behind_probe_every`).
    far_behind_probed: Mutex<Option<Instant>>,
}

impl Context {
    pub(crate) fn new(
        db: Arc<Database>,
        client: Client,
        config: SyncConfig,
        status: watch::Sender<SyncStatus>,
    ) -> Self {
        Self {
            db,
            client,
            config,
            status,
            single_post_since: Mutex::new(None),
            upload_only: AtomicBool::new(false),
            snapshot_missing: AtomicBool::new(false),
            far_behind_probed: Mutex::new(None),
        }
    }

    /// Runs a store call on a blocking thread (SQLite waits must not stall the runtime).
    pub(crate) async fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, SyncError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| SyncError::Internal(format!("store task: {e}")))?
            .map_err(SyncError::Store)
    }

    /// Single POSTs while the mode is fresh; once `batch_recheck` has passed the
    /// batch route gets another chance.
    pub(crate) fn single_post_mode(&self) -> bool {
        let mut since = self
            .single_post_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match *since {
            Some(t) if t.elapsed() < self.config.batch_recheck => true,
            Some(_) => {
                tracing::info!("trying the batch route again");
                *since = None;
                self.status.send_modify(|s| s.single_post_mode = false);
                false
            }
            None => false,
        }
    }

    pub(crate) fn learn_single_post_mode(&self) {
        *self
            .single_post_since
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.status.send_modify(|s| s.single_post_mode = true);
    }

    pub(crate) fn upload_only(&self) -> bool {
        self.upload_only.load(Ordering::Relaxed)
    }

    pub(crate) fn set_upload_only(&self, on: bool) {
        if self.upload_only.swap(on, Ordering::Relaxed) != on {
            self.status.send_modify(|s| s.upload_only = on);
        }
    }

    pub(crate) fn snapshot_missing(&self) -> bool {
        self.snapshot_missing.load(Ordering::Relaxed)
    }

    pub(crate) fn set_snapshot_missing(&self) {
        self.snapshot_missing.store(true, Ordering::Relaxed);
    }

    /// Whether it is time to ask how far behind the store is: never asked by this
    /// engine, or not for `far_behind_probe_every`.
    pub(crate) fn far_behind_probe_due(&self) -> bool {
        let last = *self.far_behind_probed.lock().expect("not poisoned");
        last.is_none_or(|at| at.elapsed() >= self.config.far_behind_probe_every)
    }

    pub(crate) fn far_behind_probed(&self) {
        *self.far_behind_probed.lock().expect("not poisoned") = Some(Instant::now());
    }

    /// Records that this server proved it stores reports (a delivered one), now.
    pub(crate) async fn remember_upload(&self) -> Result<(), SyncError> {
        let key = upload_proven_key(&self.config.server_url);
        let now = chrono::Utc::now().timestamp().to_string();
        self.store(move |db| db.write(|c| pull::set_state(c, &key, Some(&now))))
            .await
    }

    /// Unix seconds of the last report this server proved it stored.
    pub(crate) async fn last_upload(&self) -> Result<Option<i64>, SyncError> {
        let key = upload_proven_key(&self.config.server_url);
        self.store(move |db| db.read(|c| Ok(pull::state(c, &key)?.and_then(|v| v.parse().ok()))))
            .await
    }

    pub(crate) async fn uploads_proven(&self) -> Result<bool, SyncError> {
        Ok(self.last_upload().await?.is_some())
    }
}

fn upload_proven_key(server_url: &str) -> String {
    format!("upload_proven:{}", server_url.trim_end_matches('/'))
}
