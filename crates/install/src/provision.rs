//! Provisioning: a profile is checked against its server before anything is
//! saved, then bound to the local store and written owner-only.
//!
//! Re-provisioning rule: a device that holds another clinic's data (patients or
//! reports) is refused, because its pulled data and queued reports belong to that
//! clinic and must not be mixed or sent elsewhere. The same clinic on a different
//! server URL is allowed, and the pull cursors are reset so the new server's feeds
//! are read from the start (its sequence numbers mean nothing to the old cursors).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clinic_store::{Connection, outbox, patients, pull, settings};
use rusqlite::TransactionBehavior;

use clinic_protocol::EnrolRequest;
use clinic_protocol::transport::{self, TransportError};

use crate::check::{CheckError, check_connection, enrol, revoke_own_token};
use crate::paths::PROFILE_FILE;
use crate::profile::ServerSection;
use crate::{InstallError, Profile};

/// `sync_state` key: the server URL the pull cursors were read from.
pub const CURSORS_SERVER_KEY: &str = "cursors_server_url";

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Invalid(#[from] InstallError),
    #[error("connection check failed: {0}")]
    Connection(#[from] CheckError),
    /// The profile (with the device's token, after an enrolment) was saved; binding
    /// the store to it failed after. The app binds it again each time it starts.
    #[error("the profile was saved to {}, but the local store could not be bound to it: {source}", profile_path.display())]
    NotBound {
        profile_path: PathBuf,
        /// The profile as saved, as in [`Provisioned::profile`].
        profile: Box<Profile>,
        source: InstallError,
    },
}

/// What provisioning did, for the installer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub clinic_id: String,
    pub server_url: String,
    pub profile_path: PathBuf,
    /// The pull cursors were reset because the server changed.
    pub cursors_reset: bool,
    /// The profile as saved: after an enrolment, with the device's token instead of the code.
    pub profile: Profile,
}

/// The store to bind: a path for the `provision` subcommand (opened only after the
/// check passed, so a failure creates no database), or the running app's store.
pub enum StoreAt<'a> {
    Path(&'a Path),
    Open(&'a clinic_store::Database),
}

/// Checks `profile` (over the package-installed one, so an enrolment code may
/// carry only what differs) against its server, binds the store in `data_dir` to
/// it and saves it as `<config_dir>/profile.toml`, mode 0600. Nothing is written
/// when any step before the save fails.
///
/// With `server.enrolment_code` instead of a token, the device first trades the code
/// at the profile's server for its own device token (`POST /v1/enrol`, no
/// credential sent), and saves that token in place of the code. A profile naming
/// another server than the installed one takes no credential from it
/// ([`Profile::over`]), so no token is ever sent to a URL it was not issued for.
/// When a step after the enrolment fails before the profile holding the new token
/// is saved, the token is given back to the server that issued it (`DELETE
/// /v1/tokens/self`): no live credential is left that nobody holds.
pub async fn provision(
    mut profile: Profile,
    installed: Option<Profile>,
    config_dir: &Path,
    store: StoreAt<'_>,
    timeout: Duration,
) -> Result<Provisioned, ProvisionError> {
    let mut effective = profile.clone().over(installed.unwrap_or_default());
    // Plain http:// to another machine is a connection failure of its own kind (the
    // UI says it in the installer's language), before the profile's other checks.
    if let Some(url) = &effective.server.url
        && let Err(e @ TransportError::InsecureHttp(_)) =
            transport::check_server_url(url, effective.allows_insecure_http())
    {
        return Err(CheckError::from(e).into());
    }
    effective.validate(true)?;
    let transport = effective.transport();
    let url = effective.server.url.clone().unwrap_or_default();
    if let Some(code) = effective.server.enrolment_code.take() {
        // A spent code cannot be had back: refuse a store of another clinic first.
        if let Some(e) = refusal_before_enrolment(&store, &effective, config_dir)? {
            return Err(e.into());
        }
        let request = EnrolRequest {
            code,
            clinic_id: effective.clinic.id.clone().unwrap_or_default(),
            label: device_label(),
        };
        let enrolled = enrol(&url, &transport, &request, timeout).await?;
        tracing::info!(clinic = %request.clinic_id, token_id = %enrolled.token_id, "enrolled: device token received");
        // The saved profile names its server and clinic itself, beside its token.
        profile.server = ServerSection {
            url: Some(url.clone()),
            token: Some(enrolled.token.clone()),
            enrolment_code: None,
            ..effective.server.clone()
        };
        profile.clinic.id = effective.clinic.id.clone();
        effective.server.token = Some(enrolled.token.clone());
        return match check_and_bind(profile, effective, config_dir, store, timeout).await {
            Ok(done) => Ok(done),
            // Binding the store failed after the profile holding the token was
            // saved: the device holds the token, and it stays.
            Err(e @ ProvisionError::NotBound { .. }) => Err(e),
            Err(e) => {
                // The token is not kept: give it back rather than leave a live
                // credential nobody holds (the code is spent either way).
                let given_back = revoke_own_token(&url, &transport, &enrolled.token, timeout).await;
                match given_back {
                    Ok(()) => {
                        tracing::warn!(error = %e, token_id = %enrolled.token_id, "set-up failed after enrolment; the new device token was revoked");
                    }
                    Err(revoke) => {
                        tracing::error!(error = %e, revoke_error = %revoke, token_id = %enrolled.token_id, "set-up failed after enrolment and the new device token could not be revoked: revoke it with `clinic-central token revoke`");
                    }
                }
                Err(e)
            }
        };
    }
    check_and_bind(profile, effective, config_dir, store, timeout).await
}

/// The steps after the credential is known: the connection check, the store's
/// clinic, the profile saved, the store bound to it.
async fn check_and_bind(
    profile: Profile,
    effective: Profile,
    config_dir: &Path,
    store: StoreAt<'_>,
    timeout: Duration,
) -> Result<Provisioned, ProvisionError> {
    let transport = effective.transport();
    let url = effective.server.url.clone().unwrap_or_default();
    let token = effective.server.token.clone().unwrap_or_default();
    check_connection(&url, &token, &transport, timeout).await?;

    let opened;
    let db = match store {
        StoreAt::Open(db) => db,
        StoreAt::Path(path) => {
            opened = crate::store_key::open_store(Some(config_dir), path)
                .map_err(InstallError::from)?
                .0;
            &opened
        }
    };
    // Refuse before saving: this check only reads.
    if let Some(e) = db
        .read(|c| other_clinic(c, &effective))
        .map_err(InstallError::from)?
    {
        return Err(e.into());
    }
    let path = save_profile(config_dir, &profile)?;
    // From here on the profile is saved: a failure says so (`NotBound`), which is how
    // the enrolment above knows to keep the token.
    let cursors_reset = match db.write(|c| bind_store(c, &effective)) {
        Ok(reset) => reset,
        Err(e) => {
            return Err(ProvisionError::NotBound {
                profile_path: path,
                profile: Box::new(profile),
                source: e.into(),
            });
        }
    };
    tracing::info!(clinic = %effective.clinic.id.as_deref().unwrap_or_default(), server = %url, cursors_reset, "device provisioned");
    Ok(Provisioned {
        clinic_id: effective.clinic.id.unwrap_or_default(),
        server_url: url,
        profile_path: path,
        cursors_reset,
        profile,
    })
}

/// [`other_clinic`] before an enrolment: on the open store, or on the database at
/// the path if one is there (none there holds no clinic's data, and none is created).
fn refusal_before_enrolment(
    store: &StoreAt<'_>,
    profile: &Profile,
    config_dir: &Path,
) -> Result<Option<InstallError>, InstallError> {
    let check = |db: &clinic_store::Database| {
        db.read(|c| other_clinic(c, profile))
            .map_err(InstallError::from)
    };
    match store {
        StoreAt::Open(db) => check(db),
        StoreAt::Path(path) if path.exists() => {
            check(&crate::store_key::open_store(Some(config_dir), path)?.0)
        }
        StoreAt::Path(_) => Ok(None),
    }
}

/// What the device calls itself in the clinic's token list: its host name.
fn device_label() -> Option<String> {
    let name = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())?;
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Why `profile` may not be bound to this store: it holds data (patients or
/// reports) of another clinic. A store that cannot be read is an error, never
/// "no other clinic": this check guards never binding another clinic's data.
fn other_clinic(
    conn: &Connection,
    profile: &Profile,
) -> Result<Option<InstallError>, clinic_store::StoreError> {
    let Some(wanted) = profile.clinic.id.as_deref() else {
        return Ok(None);
    };
    let Some(stored) = settings::get(conn, settings::CLINIC_ID)? else {
        return Ok(None);
    };
    if stored == wanted {
        return Ok(None);
    }
    let has_data = patients::count(conn)? > 0 || {
        let c = outbox::counts(conn)?;
        c.queued + c.sending + c.delivered + c.rejected > 0
    };
    Ok(has_data.then(|| InstallError::OtherClinic {
        stored,
        wanted: wanted.to_owned(),
    }))
}

#[derive(Debug)]
pub enum BindError {
    Store(clinic_store::StoreError),
    Install(InstallError),
}

impl From<BindError> for InstallError {
    fn from(e: BindError) -> Self {
        match e {
            BindError::Store(s) => InstallError::Store(s),
            BindError::Install(i) => i,
        }
    }
}

impl From<clinic_store::StoreError> for BindError {
    fn from(e: clinic_store::StoreError) -> Self {
        BindError::Store(e)
    }
}
impl From<rusqlite::Error> for BindError {
    fn from(e: rusqlite::Error) -> Self {
        BindError::Store(e.into())
    }
}

/// Applies the profile's clinic fields to `clinic_settings` (where the rest of
/// the app reads them) and resets the pull cursors when the server changed, in one
/// transaction. Refuses a device holding another clinic's data. Returns whether
/// the cursors were reset. The app calls this at every start with its effective
/// profile, so flags and environment variables obey the same rule.
pub fn bind_store(conn: &mut Connection, profile: &Profile) -> Result<bool, BindError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if let Some(e) = other_clinic(&tx, profile)? {
        return Err(BindError::Install(e));
    }
    let mut reset = false;
    if let Some(url) = profile.server.url.as_deref() {
        let previous = pull::state(&tx, CURSORS_SERVER_KEY)?;
        let has_cursors: i64 =
            tx.query_row("SELECT count(*) FROM sync_cursors", [], |r| r.get(0))?;
        let clinic_changed = profile.clinic.id.is_some()
            && settings::get(&tx, settings::CLINIC_ID)?.as_deref() != profile.clinic.id.as_deref();
        if previous.as_deref() != Some(url) || clinic_changed {
            if has_cursors > 0 {
                tx.execute("DELETE FROM sync_cursors", [])?;
                reset = true;
            }
            // Records the old server sent and this device set aside are that server's business.
            tx.execute("DELETE FROM pull_set_aside", [])?;
            pull::set_state(&tx, CURSORS_SERVER_KEY, Some(url))?;
        }
    }
    let c = &profile.clinic;
    let reassess = profile
        .assessment
        .reassess_interval_minutes
        .map(|m| m.to_string());
    for (key, value) in [
        (settings::CLINIC_ID, c.id.as_deref()),
        (settings::CLINIC_NAME, c.name.as_deref()),
        (settings::TIME_ZONE, c.time_zone.as_deref()),
        (settings::LANGUAGE, c.language.as_deref()),
        (settings::REASSESS_INTERVAL_MINUTES, reassess.as_deref()),
    ] {
        if let Some(v) = value {
            settings::set(&tx, key, v)?;
        }
    }
    tx.commit()?;
    Ok(reset)
}

/// Writes `<dir>/profile.toml` readable by its owner only (the file holds the
/// device credential): the directory 0700, the file 0600, replaced atomically.
pub fn save_profile(dir: &Path, profile: &Profile) -> Result<PathBuf, InstallError> {
    let io = |what: &str, e: std::io::Error| {
        InstallError::Io(format!("cannot {what} in {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| io("create the config directory", e))?;
    let path = dir.join(PROFILE_FILE);
    let tmp = dir.join(format!(".{PROFILE_FILE}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io("restrict the directory", e))?;
    }
    let mut file = options.open(&tmp).map_err(|e| io("write the profile", e))?;
    #[cfg(unix)]
    {
        // A leftover temp file may have had wider permissions; mode() applies only on create.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io("restrict the profile", e))?;
    }
    file.write_all(profile.to_toml().as_bytes())
        .map_err(|e| io("write the profile", e))?;
    file.sync_all().map_err(|e| io("write the profile", e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io("save the profile", e))?;
    Ok(path)
}
