//! The diagnostics screen and what an installer does from it: test the
//! connection, export a support bundle, provision from an enrolment code.

use std::path::Path;
use std::time::Duration;

use clinic_domain::roles::Access;
use clinic_install::store_key::{KeyError, KeySource};
use clinic_install::{
    Failure, InstallError, Profile, ProvisionError, Setup, Source, StoreAt, bundle,
};
use clinic_store::{SCHEMA_VERSION, pull};
use serde::Serialize;
use ts_rs::TS;

use crate::dto::rfc3339;
use crate::{ApiError, Desk, ErrorCode, SyncStatusDto};

/// How long "test connection" and provisioning wait for the server.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum SettingsSourceDto {
    Flag,
    Environment,
    Provisioned,
    Installed,
    None,
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosticsDto {
    pub version: String,
    pub data_dir: String,
    pub database_path: String,
    /// Size of the database file and its write-ahead log, KiB.
    pub database_kib: u32,
    pub schema_version: u32,
    /// Where the key of the encrypted store is kept.
    pub store_key: StoreKeyDto,
    /// The key file, when the key is kept in one.
    pub store_key_file: Option<String>,
    pub log_dir: String,
    /// A clinic, a server and a credential are configured.
    pub provisioned: bool,
    pub clinic_id: Option<String>,
    pub clinic_name: Option<String>,
    pub server_url: Option<String>,
    /// Which layer the server setting came from.
    pub server_source: SettingsSourceDto,
    /// The profile says `server.allow_insecure_http = true` (shown in red).
    pub allow_insecure_http: bool,
    /// The server URL is plain `http://` to another machine without
    /// `allow_insecure_http`: the device refuses it and does not sync.
    pub insecure_server_url: bool,
    /// Profile files that could not be read, or why the store refused the profile (English).
    pub problems: Vec<String>,
    pub sync: SyncStatusDto,
    /// Pulled records this device refused, newest first (at most [`SET_ASIDE_SHOWN`]).
    pub set_aside: Vec<SetAsideDto>,
}

/// Where the local store's key is kept (`clinic_install::store_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum StoreKeyDto {
    /// The OS keyring (Secret Service, Credential Manager, Keychain).
    Keyring,
    /// An owner-only key file in the config directory: no keyring answered.
    File,
    /// Not encrypted: a store opened by a test or tool, never by the app.
    None,
}

/// How many set-aside records the diagnostics screen lists.
pub const SET_ASIDE_SHOWN: u32 = 200;

/// Which feed a set-aside record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum PulledStreamDto {
    Patients,
    Staff,
    Appointments,
    /// Pain reports recorded on other devices (the reports feed).
    Reports,
}

/// A pulled record this device refused: kept out, with why (English, from the
/// rule that refused it), so someone can fix it at the source.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SetAsideDto {
    pub stream: PulledStreamDto,
    /// The record's ID as the server sent it.
    pub id: String,
    /// The feed's change number.
    pub seq: i64,
    pub reason: String,
    /// RFC 3339.
    pub at: String,
}

/// What failed, from the network up; the UI says each in plain words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionFailureDto {
    NotConfigured,
    BadUrl,
    Dns,
    Refused,
    Timeout,
    Tls,
    NotClinicCentral,
    CredentialRejected,
    ServerError,
    Network,
    EnrolmentRefused,
    InsecureHttp,
}

impl From<Failure> for ConnectionFailureDto {
    fn from(f: Failure) -> Self {
        match f {
            Failure::BadUrl => Self::BadUrl,
            Failure::Dns => Self::Dns,
            Failure::Refused => Self::Refused,
            Failure::Timeout => Self::Timeout,
            Failure::Tls => Self::Tls,
            Failure::NotClinicCentral => Self::NotClinicCentral,
            Failure::CredentialRejected => Self::CredentialRejected,
            Failure::ServerError => Self::ServerError,
            Failure::Network => Self::Network,
            Failure::EnrolmentRefused => Self::EnrolmentRefused,
            Failure::InsecureHttp => Self::InsecureHttp,
        }
    }
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionTestDto {
    pub ok: bool,
    pub failure: Option<ConnectionFailureDto>,
    /// English detail for support (no token).
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionOutcomeDto {
    pub provisioned: bool,
    /// Set when the server check failed; nothing was saved then.
    pub failure: Option<ConnectionFailureDto>,
    pub detail: String,
    pub clinic_id: Option<String>,
    /// Sync was already running with the old settings, or the store could not be set up
    /// for the saved profile: the new settings apply after a restart.
    pub restart_needed: bool,
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SupportBundleDto {
    pub path: String,
}

impl From<InstallError> for ApiError {
    fn from(e: InstallError) -> Self {
        match e {
            InstallError::InvalidProfile(_) => {
                ApiError::new(ErrorCode::InvalidProfile, e.to_string())
            }
            InstallError::OtherClinic { .. } => {
                ApiError::new(ErrorCode::OtherClinicData, e.to_string())
            }
            InstallError::Store(s) => s.into(),
            InstallError::StoreKey(k) => match k {
                KeyError::Store(s) => s.into(),
                KeyError::Missing { .. } => {
                    ApiError::new(ErrorCode::StoreKeyMissing, k.to_string())
                }
                KeyError::InvalidFile(_) | KeyError::InvalidKeyring => {
                    ApiError::new(ErrorCode::StoreKeyWrong, k.to_string())
                }
                KeyError::NoConfigDir | KeyError::Io { .. } => {
                    ApiError::new(ErrorCode::StorageFailed, k.to_string())
                }
            },
            InstallError::Io(_) => ApiError::new(ErrorCode::StorageFailed, e.to_string()),
        }
    }
}

fn source(s: Source) -> SettingsSourceDto {
    match s {
        Source::Flag => SettingsSourceDto::Flag,
        Source::Environment => SettingsSourceDto::Environment,
        Source::Provisioned => SettingsSourceDto::Provisioned,
        Source::Installed => SettingsSourceDto::Installed,
        Source::Default => SettingsSourceDto::None,
    }
}

/// Checks the server and credential of `profile`, as the diagnostics button does.
pub async fn test_connection(profile: &Profile) -> ConnectionTestDto {
    let (Some(url), Some(token)) = (
        profile.server.url.as_deref(),
        profile.server.token.as_deref(),
    ) else {
        return ConnectionTestDto {
            ok: false,
            failure: Some(ConnectionFailureDto::NotConfigured),
            detail: "no server URL and credential are configured".into(),
        };
    };
    match clinic_install::check_connection(url, token, &profile.transport(), CHECK_TIMEOUT).await {
        Ok(()) => ConnectionTestDto {
            ok: true,
            failure: None,
            detail: "the server answered and accepted the credential".into(),
        },
        Err(e) => ConnectionTestDto {
            ok: false,
            failure: Some(e.failure.into()),
            detail: e.to_string(),
        },
    }
}

impl Desk {
    pub fn diagnostics(&self, setup: &Setup) -> Result<DiagnosticsDto, ApiError> {
        let info = self.app_info()?;
        let profile = setup.profile();
        let (allow_insecure_http, insecure_server_url) = (
            profile.allows_insecure_http(),
            profile.refuses_insecure_url(),
        );
        // Recent writes sit in the WAL until a checkpoint: count it, or a fresh store looks empty.
        let path = self.database().path();
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let wal = path.with_file_name(format!(
            "{}-wal",
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
        let database_kib = (size(path) + size(&wal)) / 1024;
        let set_aside = self
            .database()
            .read(|c| pull::set_aside_items(c, SET_ASIDE_SHOWN))?
            .into_iter()
            .filter_map(|s| {
                let stream = match s.stream.as_str() {
                    pull::STREAM_PATIENTS => PulledStreamDto::Patients,
                    pull::STREAM_STAFF => PulledStreamDto::Staff,
                    pull::STREAM_APPOINTMENTS => PulledStreamDto::Appointments,
                    pull::STREAM_REPORTS => PulledStreamDto::Reports,
                    _ => return None,
                };
                Some(rfc3339(s.set_aside_at).map(|at| SetAsideDto {
                    stream,
                    id: s.item_id,
                    seq: s.seq,
                    reason: s.reason,
                    at,
                }))
            })
            .collect::<Result<_, _>>()?;
        Ok(DiagnosticsDto {
            version: info.version,
            data_dir: setup.data_dir.display().to_string(),
            database_path: info.database_path,
            database_kib: database_kib.min(u32::MAX as u64) as u32,
            schema_version: *SCHEMA_VERSION,
            store_key: match &self.store_key {
                Some(KeySource::Keyring) => StoreKeyDto::Keyring,
                Some(KeySource::File(_)) => StoreKeyDto::File,
                None => StoreKeyDto::None,
            },
            store_key_file: match &self.store_key {
                Some(KeySource::File(p)) => Some(p.display().to_string()),
                _ => None,
            },
            log_dir: setup.log_dir.display().to_string(),
            provisioned: setup.is_provisioned(),
            clinic_id: info.clinic_id.or(profile.clinic.id),
            clinic_name: info.clinic_name.or(profile.clinic.name),
            server_url: profile.server.url,
            allow_insecure_http,
            insecure_server_url,
            server_source: source(setup.layers.server_source()),
            problems: setup.problems.clone(),
            sync: self.sync_status()?,
            set_aside,
        })
    }

    /// Writes the support bundle into `out_dir`: diagnostics, the profile without
    /// its credential, the log files; every token, every patient and staff name and
    /// every patient ID on this device scrubbed from all of it.
    pub fn export_support_bundle(
        &self,
        setup: &Setup,
        out_dir: &Path,
    ) -> Result<SupportBundleDto, ApiError> {
        let diagnostics = self.diagnostics(setup)?;
        let [names, ids] = self.database().read(|c| {
            let column = |sql: &str| -> Result<Vec<String>, clinic_store::StoreError> {
                let mut stmt = c.prepare(sql)?;
                let values = stmt.query_map([], |r| r.get::<_, String>(0))?;
                Ok(values.collect::<Result<_, _>>()?)
            };
            let mut names = column("SELECT name FROM patients")?;
            names.extend(column("SELECT name FROM staff")?);
            Ok::<_, clinic_store::StoreError>([names, column("SELECT id FROM patients")?])
        })?;
        let scrubber = bundle::Scrubber::new(setup.secrets(), names).with_patient_ids(ids);
        let profile = setup.profile();
        let path = bundle::write_bundle(
            out_dir,
            bundle::BundleInput {
                diagnostics: serde_json::to_value(&diagnostics).unwrap_or_default(),
                profile: Some(&profile),
                log_dir: &setup.log_dir,
                scrubber: &scrubber,
            },
        )
        .map_err(|e| ApiError::new(ErrorCode::SupportBundleFailed, e.to_string()))?;
        tracing::info!(path = %path.display(), "support bundle written");
        Ok(SupportBundleDto {
            path: path.display().to_string(),
        })
    }

    /// The one rule for re-enrolment, the screen's and the `provision` command's: a
    /// device that already has a credential is re-enrolled only by a signed-in
    /// member (an active, unlocked session), so no passer-by can point a ward PC
    /// elsewhere. Returns who, when someone had to be signed in.
    pub fn may_reprovision(&self, setup: &Setup) -> Result<Option<String>, ApiError> {
        if setup.profile().server.token.is_none() {
            return Ok(None);
        }
        let who = self.acting(chrono::Utc::now(), self.rules()?, Access::Open)?;
        Ok(Some(who.staff_id))
    }

    /// Provisions this running app from an enrolment code (or a profile's text):
    /// checks the server first and saves nothing when that fails. Re-enrolment
    /// follows [`Self::may_reprovision`].
    pub async fn provision_from_code(
        &self,
        setup: &Setup,
        code: &str,
    ) -> Result<(ProvisionOutcomeDto, Option<Profile>), ApiError> {
        self.may_reprovision(setup)?;
        let profile = Profile::from_pasted(code)?;
        let Some(config_dir) = setup.config_dir.as_deref() else {
            return Err(ApiError::new(
                ErrorCode::StorageFailed,
                "this system has no configuration directory",
            ));
        };
        let restart_needed = self.sync_handle().is_some();
        match clinic_install::provision(
            profile,
            setup.layers.installed.clone(),
            config_dir,
            StoreAt::Open(self.database()),
            CHECK_TIMEOUT,
        )
        .await
        {
            Ok(done) => Ok((
                ProvisionOutcomeDto {
                    provisioned: true,
                    failure: None,
                    detail: format!("saved to {}", done.profile_path.display()),
                    clinic_id: Some(done.clinic_id),
                    restart_needed,
                },
                Some(done.profile),
            )),
            Err(ProvisionError::Connection(e)) => Ok((
                ProvisionOutcomeDto {
                    provisioned: false,
                    failure: Some(e.failure.into()),
                    detail: e.to_string(),
                    clinic_id: None,
                    restart_needed: false,
                },
                None,
            )),
            Err(ProvisionError::Invalid(e)) => Err(e.into()),
            // The profile and its token are saved: the app takes it as its profile (so
            // enrolling again takes a member, as on any enrolled device) and binds the
            // store to it at its next start instead of syncing into a store not bound.
            Err(ProvisionError::NotBound {
                profile_path,
                profile,
                source,
            }) => {
                tracing::error!(error = %source, "profile saved but the store not bound to it: bound at the next start");
                Ok((
                    ProvisionOutcomeDto {
                        provisioned: true,
                        failure: None,
                        detail: format!(
                            "saved to {}; the local data is set up for it when the app restarts",
                            profile_path.display()
                        ),
                        clinic_id: profile.clinic.id.clone(),
                        restart_needed: true,
                    },
                    Some(*profile),
                ))
            }
        }
    }
}
