//! The app as it runs: the setup it found (profile layers, directories), its store
//! (or why the store could not be opened) and the runtime sync runs on. Starting,
//! binding the store to the clinic profile, starting sync and provisioning from
//! the first-run screen all happen here, so the shell only hands over a runtime
//! and forwards each command to one method.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use clinic_install::{InstallError, Profile, Setup, paths};
use clinic_sync::{SyncConfig, SyncEngine};
use tokio::runtime::Handle;

use crate::{
    ApiError, ConnectionTestDto, Desk, DiagnosticsDto, ProvisionOutcomeDto, SupportBundleDto,
    SyncStatusDto,
};

/// What the shell knows before the store opens.
#[derive(Debug, Clone)]
pub struct StartOptions {
    pub setup: Setup,
    /// The database file (created when missing).
    pub database: PathBuf,
    /// Fill an empty store with this demo clinic.
    pub demo_seed: Option<u64>,
    /// The app's version: a new one fetches again the pulled records an old one set aside.
    pub app_version: String,
}

/// The running app behind every command. Cheap to clone (the parts are shared).
#[derive(Clone)]
pub struct DeskApp {
    desk: Result<Desk, ApiError>,
    setup: Arc<RwLock<Setup>>,
    runtime: Handle,
    app_version: String,
}

/// The engine's settings for `profile`; `None` without a server (reports then stay
/// queued on this device).
pub fn sync_config(profile: &Profile, app_version: &str) -> Option<SyncConfig> {
    let url = profile.server.url.clone()?;
    let mut config = SyncConfig::new(url, profile.server.token.clone());
    config.transport = profile.transport();
    config.interval = profile.sync_interval();
    config.probe_interval = profile.probe_interval();
    config.app_version = app_version.to_owned();
    Some(config)
}

impl Desk {
    /// Applies `profile` to the store (clinic settings; pull cursors reset when the
    /// server changed). Refuses a store holding another clinic's data. Returns
    /// whether the cursors were reset.
    pub fn bind_profile(&self, profile: &Profile) -> Result<bool, InstallError> {
        Ok(self
            .database()
            .write(|c| clinic_install::provision::bind_store(c, profile))?)
    }

    /// Starts the background sync on `runtime` when `profile` names a server;
    /// `true` when it runs. Without a server the app works offline.
    pub fn start_sync(&self, profile: &Profile, app_version: &str, runtime: &Handle) -> bool {
        let Some(config) = sync_config(profile, app_version) else {
            tracing::info!("no central server configured: reports stay queued on this device");
            return false;
        };
        let url = config.server_url.clone();
        match SyncEngine::new(self.shared_database(), config) {
            Ok(engine) => {
                self.attach_sync(engine.spawn(runtime));
                // The URL is configuration, not a secret; the token is never logged.
                tracing::info!(server = %url, "sync started");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start sync");
                false
            }
        }
    }
}

fn open(config_dir: Option<&Path>, path: &Path, demo_seed: Option<u64>) -> Result<Desk, ApiError> {
    let desk = Desk::open_encrypted(config_dir, path)
        .inspect_err(|e| tracing::error!(error = %e, "cannot open the local store"))?;
    tracing::info!(path = %path.display(), "local store open");
    if let Some(seed) = demo_seed
        && desk.load_demo(seed, None)?
    {
        tracing::info!(seed, "loaded the demo clinic");
    }
    Ok(desk)
}

impl DeskApp {
    /// Opens the store (with the demo clinic when asked), binds it to the effective
    /// profile and starts sync on `runtime`. Never fails: a store that cannot be
    /// opened makes every command say why, and a profile the store refuses is a
    /// problem on the diagnostics screen (the app then works offline).
    pub fn start(options: StartOptions, runtime: Handle) -> Self {
        let StartOptions {
            mut setup,
            database,
            demo_seed,
            app_version,
        } = options;
        let desk = open(setup.config_dir.as_deref(), &database, demo_seed);
        if let Ok(desk) = &desk {
            let profile = setup.profile();
            match desk.bind_profile(&profile) {
                Ok(reset) => {
                    if reset {
                        tracing::info!(
                            "the server changed: its data will be pulled from the start"
                        );
                    }
                    desk.start_sync(&profile, &app_version, &runtime);
                }
                Err(e) => {
                    tracing::error!(error = %e, "the clinic profile does not fit this device's data: not syncing");
                    setup.problems.push(e.to_string());
                }
            }
            if !setup.is_provisioned() {
                tracing::info!("not provisioned: working offline on local data");
            }
        }
        Self {
            desk,
            setup: Arc::new(RwLock::new(setup)),
            runtime,
            app_version,
        }
    }

    /// The store, or why it could not be opened.
    pub fn desk(&self) -> Result<&Desk, ApiError> {
        self.desk.as_ref().map_err(Clone::clone)
    }

    /// Whether whoever is at the device may do what `access` names
    /// ([`Desk::authorize`]); `Open` needs no store, so diagnostics answer even
    /// when the store could not be opened.
    pub fn authorize(&self, access: crate::Access) -> Result<(), ApiError> {
        if access == crate::Access::Open {
            return Ok(());
        }
        self.desk()?.authorize(access)
    }

    /// What the app found at start, with what provisioning changed since.
    pub fn setup(&self) -> Setup {
        self.setup.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn diagnostics(&self) -> Result<DiagnosticsDto, ApiError> {
        self.desk()?.diagnostics(&self.setup())
    }

    /// Checks the effective profile's server and credential; a failure is the answer, not an error.
    pub async fn test_connection(&self) -> ConnectionTestDto {
        crate::test_connection(&self.setup().profile()).await
    }

    /// Writes the support bundle where an installer looks first (see `paths::bundle_dir`).
    pub fn export_support_bundle(&self) -> Result<SupportBundleDto, ApiError> {
        let setup = self.setup();
        self.desk()?
            .export_support_bundle(&setup, &paths::bundle_dir(&setup.data_dir))
    }

    /// Provisions the running app from an enrolment code (or a profile's text): the
    /// server is checked first and nothing is saved when that fails. On success the
    /// profile becomes the provisioned layer and sync starts with it, unless sync
    /// already runs (the new settings then apply after a restart).
    pub async fn provision(&self, code: &str) -> Result<ProvisionOutcomeDto, ApiError> {
        let desk = self.desk()?;
        let (outcome, saved) = desk.provision_from_code(&self.setup(), code).await?;
        if let Some(profile) = saved {
            let effective = {
                let mut setup = self.setup.write().unwrap_or_else(|e| e.into_inner());
                setup.layers.provisioned = Some(profile);
                setup.problems.clear();
                setup.profile()
            };
            if !outcome.restart_needed {
                desk.start_sync(&effective, &self.app_version, &self.runtime);
            }
        }
        Ok(outcome)
    }

    /// Gives `send` the sync status now and on every change, until `send` returns
    /// `false` (the window went away). Without a server the status only changes
    /// when a report is saved, and the UI asks again then.
    pub fn subscribe_sync_status(
        &self,
        mut send: impl FnMut(SyncStatusDto) -> bool + Send + 'static,
    ) -> Result<(), ApiError> {
        let desk = self.desk()?;
        if !send(desk.sync_status()?) {
            return Ok(());
        }
        let Some(handle) = desk.sync_handle() else {
            return Ok(());
        };
        let mut changes = handle.subscribe();
        self.runtime.spawn(async move {
            while changes.changed().await.is_ok() {
                // A status with a time out of range is logged and skipped, never shown blank.
                let status = SyncStatusDto::try_from(&*changes.borrow_and_update());
                let Ok(status) = status.inspect_err(|e| tracing::error!(error = %e, "sync status"))
                else {
                    continue;
                };
                if !send(status) {
                    break;
                }
            }
        });
        Ok(())
    }
}
