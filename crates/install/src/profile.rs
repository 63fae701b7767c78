//! The clinic profile: which clinic this device serves, its server and credential,
//! and the intervals the clinic chose. Every field can come from four places; a
//! field is taken from the first that has it (see [`Layers::resolve`]):
//!
//! 1. a command-line flag,
//! 2. an environment variable,
//! 3. the profile provisioned for this user (`<config dir>/profile.toml`),
//! 4. the profile installed with the package (`/etc/clinic-desk/profile.toml`),
//!
//! then the built-in default.

use std::path::Path;

use base64::Engine as _;
use clinic_domain::id::MAX_ID_LEN;
use clinic_domain::{ClinicZone, record_id};
use clinic_protocol::transport::{self, Transport, TransportError};
use serde::{Deserialize, Serialize};

use crate::InstallError;

/// Prefix of an enrolment code, so a pasted code is told apart from a file path
/// and a future format can change the version.
pub const ENROLMENT_PREFIX: &str = "CDP1-";

pub const DEFAULT_SYNC_INTERVAL_SECONDS: u64 = 60;
pub const DEFAULT_PROBE_INTERVAL_SECONDS: u64 = 15;
pub const DEFAULT_REASSESS_INTERVAL_MINUTES: u32 = 60;

/// `(field, environment variable)`: the variable that sets each field.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("clinic.id", "CLINIC_DESK_CLINIC_ID"),
    ("clinic.name", "CLINIC_DESK_CLINIC_NAME"),
    ("clinic.time_zone", "CLINIC_DESK_TIME_ZONE"),
    ("clinic.language", "CLINIC_DESK_LANGUAGE"),
    ("server.url", "CLINIC_DESK_SERVER_URL"),
    ("server.token", "CLINIC_DESK_TOKEN"),
    (
        "server.allow_insecure_http",
        "CLINIC_DESK_ALLOW_INSECURE_HTTP",
    ),
    ("server.ca_file", "CLINIC_DESK_CA_FILE"),
    ("sync.interval_seconds", "CLINIC_DESK_SYNC_INTERVAL_SECONDS"),
    (
        "sync.offline_probe_seconds",
        "CLINIC_DESK_SYNC_PROBE_SECONDS",
    ),
    (
        "assessment.reassess_interval_minutes",
        "CLINIC_DESK_REASSESS_INTERVAL_MINUTES",
    ),
];

/// One layer of configuration: every field optional, so layers can be merged field by field.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "ClinicSection::is_empty")]
    pub clinic: ClinicSection,
    #[serde(default, skip_serializing_if = "ServerSection::is_empty")]
    pub server: ServerSection,
    #[serde(default, skip_serializing_if = "SyncSection::is_empty")]
    pub sync: SyncSection,
    #[serde(default, skip_serializing_if = "AssessmentSection::is_empty")]
    pub assessment: AssessmentSection,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClinicSection {
    pub id: Option<String>,
    pub name: Option<String>,
    pub time_zone: Option<String>,
    /// `zh-CN` or `en`: the clinic's language; a user's own choice in the UI still wins.
    pub language: Option<String>,
}

#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub url: Option<String>,
    /// The device credential (a `clinic-central` bearer token). Only ever in this
    /// user's own 0600 profile: a package profile carries `url` and the clinic only.
    pub token: Option<String>,
    /// A one-time `clinic-central enrol-code`, in a provisioning code only: the device
    /// trades it at `url` for its own device token, which is what gets saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolment_code: Option<String>,
    /// Plain `http://` to a server on another machine is refused unless this is
    /// `true` ([`clinic_protocol::transport::check_server_url`]); the diagnostics
    /// screen shows it in red when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_insecure_http: Option<bool>,
    /// A PEM file of CA certificates the device trusts for this server, in addition
    /// to the built-in roots: for a clinic that runs its own CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSection {
    pub interval_seconds: Option<u64>,
    pub offline_probe_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssessmentSection {
    pub reassess_interval_minutes: Option<u32>,
}

impl ClinicSection {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
impl ServerSection {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
impl SyncSection {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
impl AssessmentSection {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

// The token must not reach a log, a panic message or a support bundle through `{:?}`.
impl std::fmt::Debug for ServerSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSection")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field(
                "enrolment_code",
                &self.enrolment_code.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}
impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("clinic", &self.clinic)
            .field("server", &self.server)
            .field("sync", &self.sync)
            .field("assessment", &self.assessment)
            .finish()
    }
}

fn parse_bool(var: &str, raw: &str) -> Result<bool, InstallError> {
    match raw.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(InstallError::InvalidProfile(format!(
            "{var} must be true or false, not '{raw}'"
        ))),
    }
}

fn parse_num<T: std::str::FromStr>(var: &str, raw: &str) -> Result<T, InstallError> {
    raw.trim().parse().map_err(|_| {
        InstallError::InvalidProfile(format!("{var} must be a whole number, not '{raw}'"))
    })
}

impl Profile {
    pub fn from_toml(text: &str) -> Result<Self, InstallError> {
        toml::from_str(text).map_err(|e| InstallError::InvalidProfile(e.message().to_owned()))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a profile always serialises")
    }

    /// A file path, a provisioning code (`CDP1-…`) or a bare one-time enrolment code.
    pub fn load(path_or_code: &str) -> Result<Self, InstallError> {
        let trimmed = path_or_code.trim();
        if trimmed.starts_with(ENROLMENT_PREFIX) {
            return Self::from_enrolment_code(trimmed);
        }
        if let Some(p) = Self::from_one_time_code(trimmed) {
            return Ok(p);
        }
        Self::from_file(Path::new(trimmed))?
            .ok_or_else(|| InstallError::InvalidProfile(format!("no profile file at {trimmed}")))
    }

    /// `None` when there is no file; an error when it exists and cannot be read or parsed.
    pub fn from_file(path: &Path) -> Result<Option<Self>, InstallError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_toml(&text)
                .map(Some)
                .map_err(|e| InstallError::InvalidProfile(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(InstallError::Io(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// The profile as one line an installer can paste: `CDP1-` and the TOML in
    /// unpadded base64url (it survives e-mail, chat and QR codes unchanged).
    pub fn enrolment_code(&self) -> String {
        format!(
            "{ENROLMENT_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.to_toml())
        )
    }

    /// What an installer types or pastes: a provisioning code (`CDP1-…`), a bare
    /// one-time enrolment code (`7Q2M-9KXR-4TBW-H8ND`, as `clinic-central enrol-code`
    /// prints it: the server and clinic then come from the installed profile), or a
    /// profile's TOML.
    pub fn from_pasted(text: &str) -> Result<Self, InstallError> {
        let text = text.trim();
        if text.starts_with(ENROLMENT_PREFIX) {
            Self::from_enrolment_code(text)
        } else if let Some(p) = Self::from_one_time_code(text) {
            Ok(p)
        } else {
            Self::from_toml(text)
        }
    }

    /// A profile carrying only `text` as its enrolment code, when `text` has the
    /// shape of one: four groups of four letters or digits.
    fn from_one_time_code(text: &str) -> Option<Self> {
        let groups: Vec<&str> = text.split('-').collect();
        let shaped = groups.len() == 4
            && groups
                .iter()
                .all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_alphanumeric()));
        shaped.then(|| Profile {
            server: ServerSection {
                enrolment_code: Some(text.to_owned()),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    pub fn from_enrolment_code(code: &str) -> Result<Self, InstallError> {
        let body: String = code
            .trim()
            .trim_start_matches(ENROLMENT_PREFIX)
            .split_whitespace()
            .collect();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body.trim_end_matches('='))
            .map_err(|_| {
                InstallError::InvalidProfile(
                    "the enrolment code is damaged (not base64url); copy it again".into(),
                )
            })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            InstallError::InvalidProfile(
                "the enrolment code is damaged (not text); copy it again".into(),
            )
        })?;
        Self::from_toml(&text)
    }

    /// The layer the environment gives (variables in [`ENV_VARS`]; blank ones ignored).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, InstallError> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let num = |name: &str| -> Result<Option<u64>, InstallError> {
            var(name).map(|v| parse_num(name, &v)).transpose()
        };
        Ok(Profile {
            clinic: ClinicSection {
                id: var("CLINIC_DESK_CLINIC_ID"),
                name: var("CLINIC_DESK_CLINIC_NAME"),
                time_zone: var("CLINIC_DESK_TIME_ZONE"),
                language: var("CLINIC_DESK_LANGUAGE"),
            },
            server: ServerSection {
                url: var("CLINIC_DESK_SERVER_URL"),
                token: var("CLINIC_DESK_TOKEN"),
                enrolment_code: None,
                allow_insecure_http: var("CLINIC_DESK_ALLOW_INSECURE_HTTP")
                    .map(|v| parse_bool("CLINIC_DESK_ALLOW_INSECURE_HTTP", &v))
                    .transpose()?,
                ca_file: var("CLINIC_DESK_CA_FILE"),
            },
            sync: SyncSection {
                interval_seconds: num("CLINIC_DESK_SYNC_INTERVAL_SECONDS")?,
                offline_probe_seconds: num("CLINIC_DESK_SYNC_PROBE_SECONDS")?,
            },
            assessment: AssessmentSection {
                reassess_interval_minutes: var("CLINIC_DESK_REASSESS_INTERVAL_MINUTES")
                    .map(|v| parse_num("CLINIC_DESK_REASSESS_INTERVAL_MINUTES", &v))
                    .transpose()?,
            },
        })
    }

    /// Field by field: this layer's value where it has one, `lower`'s otherwise;
    /// except that a credential belongs to the server it was issued for: a layer
    /// naming another server URL takes none of `lower`'s server section (token,
    /// enrolment code, nor the CA file and `allow_insecure_http` that server was
    /// trusted by), so a partial profile never sends a credential to a new URL.
    pub fn over(self, lower: Profile) -> Profile {
        let server = if self.server.url.is_some() && self.server.url != lower.server.url {
            self.server
        } else {
            ServerSection {
                url: self.server.url.or(lower.server.url),
                token: self.server.token.or(lower.server.token),
                enrolment_code: self.server.enrolment_code.or(lower.server.enrolment_code),
                allow_insecure_http: self
                    .server
                    .allow_insecure_http
                    .or(lower.server.allow_insecure_http),
                ca_file: self.server.ca_file.or(lower.server.ca_file),
            }
        };
        Profile {
            clinic: ClinicSection {
                id: self.clinic.id.or(lower.clinic.id),
                name: self.clinic.name.or(lower.clinic.name),
                time_zone: self.clinic.time_zone.or(lower.clinic.time_zone),
                language: self.clinic.language.or(lower.clinic.language),
            },
            server,
            sync: SyncSection {
                interval_seconds: self.sync.interval_seconds.or(lower.sync.interval_seconds),
                offline_probe_seconds: self
                    .sync
                    .offline_probe_seconds
                    .or(lower.sync.offline_probe_seconds),
            },
            assessment: AssessmentSection {
                reassess_interval_minutes: self
                    .assessment
                    .reassess_interval_minutes
                    .or(lower.assessment.reassess_interval_minutes),
            },
        }
    }

    /// Checks what is there; `complete` also demands what provisioning needs
    /// (clinic ID, server URL and credential).
    pub fn validate(&self, complete: bool) -> Result<(), InstallError> {
        let bad = |m: String| Err(InstallError::InvalidProfile(m));
        // The domain's ID rule, exactly: it trims what a scanner adds, but a profile
        // value with spaces around it is a typo to show, not to fix silently.
        if let Some(id) = &self.clinic.id
            && !matches!(record_id(id), Ok(valid) if valid == *id)
        {
            return bad(format!(
                "clinic.id must be 1–{MAX_ID_LEN} letters, digits, '-' or '_', not '{id}'"
            ));
        }
        if let Some(zone) = &self.clinic.time_zone
            && let Err(e) = ClinicZone::parse(zone)
        {
            return bad(format!("clinic.time_zone: {e}"));
        }
        if let Some(lang) = &self.clinic.language
            && lang != "zh-CN"
            && lang != "en"
        {
            return bad(format!(
                "clinic.language must be \"zh-CN\" or \"en\", not '{lang}'"
            ));
        }
        if let Some(url) = &self.server.url {
            match transport::check_server_url(url, self.allows_insecure_http()) {
                Ok(_) => {}
                Err(TransportError::BadUrl(_)) => {
                    return bad(format!(
                        "server.url must be an http:// or https:// URL, not '{url}'"
                    ));
                }
                Err(e) => return bad(format!("server.url: {e}")),
            }
        }
        if let Some(ca) = &self.server.ca_file
            && ca.trim().is_empty()
        {
            return bad("server.ca_file must name a PEM file".into());
        }
        if let Some(token) = &self.server.token
            && (token.trim().is_empty() || token.chars().any(char::is_whitespace))
        {
            return bad("server.token must be one word without spaces".into());
        }
        if matches!(self.sync.interval_seconds, Some(0))
            || matches!(self.sync.offline_probe_seconds, Some(0))
        {
            return bad("sync intervals must be at least 1 second".into());
        }
        if matches!(self.assessment.reassess_interval_minutes, Some(0)) {
            return bad("assessment.reassess_interval_minutes must be at least 1".into());
        }
        if let Some(code) = &self.server.enrolment_code
            && (code.trim().is_empty() || code.len() > 64)
        {
            return bad("server.enrolment_code is not an enrolment code".into());
        }
        if self.server.token.is_some() && self.server.enrolment_code.is_some() {
            return bad(
                "the profile has both server.token and server.enrolment_code: give one".into(),
            );
        }
        if complete {
            for (missing, name) in [
                (self.clinic.id.is_none(), "clinic.id"),
                (self.server.url.is_none(), "server.url"),
                (
                    self.server.token.is_none() && self.server.enrolment_code.is_none(),
                    "server.token (or server.enrolment_code)",
                ),
            ] {
                if missing {
                    return bad(format!("the profile has no {name}"));
                }
            }
        }
        Ok(())
    }

    /// The same profile with the credential blanked, for bundles and screens.
    pub fn redacted(&self) -> Profile {
        let mut p = self.clone();
        if p.server.token.is_some() {
            p.server.token = Some("<redacted>".into());
        }
        if p.server.enrolment_code.is_some() {
            p.server.enrolment_code = Some("<redacted>".into());
        }
        p
    }

    /// `server.allow_insecure_http = true`.
    pub fn allows_insecure_http(&self) -> bool {
        self.server.allow_insecure_http == Some(true)
    }

    /// The server URL is plain `http://` to another machine without
    /// `allow_insecure_http`: the device refuses it (and does not sync).
    pub fn refuses_insecure_url(&self) -> bool {
        self.server.url.as_deref().is_some_and(|url| {
            matches!(
                transport::check_server_url(url, self.allows_insecure_http()),
                Err(TransportError::InsecureHttp(_))
            )
        })
    }

    /// How the device reaches this profile's server, for
    /// [`clinic_protocol::transport::client_builder`].
    pub fn transport(&self) -> Transport {
        Transport {
            allow_insecure_http: self.allows_insecure_http(),
            ca_file: self.server.ca_file.as_ref().map(std::path::PathBuf::from),
        }
    }

    pub fn sync_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.sync
                .interval_seconds
                .unwrap_or(DEFAULT_SYNC_INTERVAL_SECONDS),
        )
    }

    pub fn probe_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.sync
                .offline_probe_seconds
                .unwrap_or(DEFAULT_PROBE_INTERVAL_SECONDS),
        )
    }
}

/// Where the effective server setting came from, for the diagnostics screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Flag,
    Environment,
    Provisioned,
    Installed,
    Default,
}

/// The four layers, highest first.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    pub flags: Profile,
    pub env: Profile,
    pub provisioned: Option<Profile>,
    pub installed: Option<Profile>,
}

impl Layers {
    /// flag > environment > provisioned > installed; defaults are applied by the readers.
    pub fn resolve(&self) -> Profile {
        let lower = self
            .provisioned
            .clone()
            .unwrap_or_default()
            .over(self.installed.clone().unwrap_or_default());
        self.flags.clone().over(self.env.clone().over(lower))
    }

    /// Which layer the server URL was taken from.
    pub fn server_source(&self) -> Source {
        let has = |p: Option<&Profile>| p.is_some_and(|p| p.server.url.is_some());
        if has(Some(&self.flags)) {
            Source::Flag
        } else if has(Some(&self.env)) {
            Source::Environment
        } else if has(self.provisioned.as_ref()) {
            Source::Provisioned
        } else if has(self.installed.as_ref()) {
            Source::Installed
        } else {
            Source::Default
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn layer(url: Option<&str>, zone: Option<&str>) -> Profile {
        Profile {
            server: ServerSection {
                url: url.map(str::to_owned),
                ..Default::default()
            },
            clinic: ClinicSection {
                time_zone: zone.map(str::to_owned),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[rstest]
    #[case::flag_wins(
        Some("http://flag"),
        Some("http://env"),
        Some("http://prov"),
        Some("http://inst"),
        Some("http://flag"),
        Source::Flag
    )]
    #[case::env_beats_files(
        None,
        Some("http://env"),
        Some("http://prov"),
        Some("http://inst"),
        Some("http://env"),
        Source::Environment
    )]
    #[case::provisioned_beats_installed(
        None,
        None,
        Some("http://prov"),
        Some("http://inst"),
        Some("http://prov"),
        Source::Provisioned
    )]
    #[case::installed_alone(
        None,
        None,
        None,
        Some("http://inst"),
        Some("http://inst"),
        Source::Installed
    )]
    #[case::nothing(None, None, None, None, None, Source::Default)]
    fn precedence_is_flag_env_provisioned_installed(
        #[case] flag: Option<&str>,
        #[case] env: Option<&str>,
        #[case] prov: Option<&str>,
        #[case] inst: Option<&str>,
        #[case] want: Option<&str>,
        #[case] source: Source,
    ) {
        let layers = Layers {
            flags: layer(flag, None),
            env: layer(env, None),
            provisioned: Some(layer(prov, None)),
            // The installed profile's zone must survive: merging is per field.
            installed: Some(layer(inst, Some("Europe/London"))),
        };
        let p = layers.resolve();
        assert_eq!(p.server.url.as_deref(), want);
        assert_eq!(p.clinic.time_zone.as_deref(), Some("Europe/London"));
        assert_eq!(layers.server_source(), source);
    }

    const FULL: &str = r#"
[clinic]
id = "C001"
name = "和平诊所"
time_zone = "Asia/Shanghai"
language = "zh-CN"

[server]
url = "https://central.example:8443"
token = "cct_secret"

[sync]
interval_seconds = 30

[assessment]
reassess_interval_minutes = 45
"#;

    #[test]
    fn a_profile_round_trips_through_its_enrolment_code_and_hides_its_token() {
        let p = Profile::from_toml(FULL).unwrap();
        p.validate(true).unwrap();
        let code = p.enrolment_code();
        assert!(code.starts_with(ENROLMENT_PREFIX) && !code.contains(char::is_whitespace));
        // Pasted with a line break in the middle, as chat programs do.
        let (a, b) = code.split_at(20);
        assert_eq!(Profile::load(&format!("{a}\n{b}")).unwrap(), p);
        assert!(!format!("{p:?}").contains("cct_secret"));
        assert!(!p.redacted().to_toml().contains("cct_secret"));
        assert_eq!(p.sync_interval().as_secs(), 30);
        assert_eq!(p.probe_interval().as_secs(), DEFAULT_PROBE_INTERVAL_SECONDS);
    }

    #[rstest]
    #[case::unknown_field("[clinic]\nid = \"C001\"\ncolour = \"red\"", "colour")]
    #[case::bad_zone("[clinic]\ntime_zone = \"Mars/Base\"", "time_zone")]
    #[case::bad_language("[clinic]\nlanguage = \"fr\"", "language")]
    #[case::bad_url("[server]\nurl = \"ftp://x\"", "server.url")]
    #[case::bad_id("[clinic]\nid = \"C 001\"", "clinic.id")]
    #[case::id_with_spaces_around("[clinic]\nid = \" C001\"", "clinic.id")]
    #[case::id_longer_than_the_domain_allows(
        "[clinic]\nid = \"C00000000000000000000000000000001\"",
        "1–32"
    )]
    #[case::zero_interval("[sync]\ninterval_seconds = 0", "at least")]
    #[case::missing_token(
        "[clinic]\nid = \"C001\"\n[server]\nurl = \"https://x\"",
        "server.token"
    )]
    fn mistakes_in_a_profile_are_named(#[case] text: &str, #[case] names: &str) {
        let err = Profile::from_toml(text)
            .and_then(|p| p.validate(true))
            .unwrap_err()
            .to_string();
        assert!(err.contains(names), "{err}");
    }

    fn server(url: Option<&str>, token: Option<&str>, code: Option<&str>) -> Profile {
        Profile {
            server: ServerSection {
                url: url.map(str::to_owned),
                token: token.map(str::to_owned),
                enrolment_code: code.map(str::to_owned),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[rstest]
    #[case::same_url_inherits(Some("http://a"), None, Some("cct_a"))]
    #[case::no_url_inherits(None, None, Some("cct_a"))]
    #[case::other_url_takes_nothing(Some("http://b"), None, None)]
    #[case::other_url_keeps_its_own(Some("http://b"), Some("cct_b"), Some("cct_b"))]
    fn a_credential_is_never_carried_to_another_server(
        #[case] url: Option<&str>,
        #[case] token: Option<&str>,
        #[case] want: Option<&str>,
    ) {
        let installed = server(Some("http://a"), Some("cct_a"), None);
        let merged = server(url, token, None).over(installed);
        assert_eq!(merged.server.token.as_deref(), want);
        assert_eq!(
            merged.server.url.as_deref(),
            Some(url.unwrap_or("http://a"))
        );
        // Through the layers as well: an environment URL does not take the file's token.
        let layers = Layers {
            env: server(url, token, None),
            provisioned: Some(server(Some("http://a"), Some("cct_a"), None)),
            ..Default::default()
        };
        assert_eq!(layers.resolve().server.token.as_deref(), want);
    }

    #[test]
    fn an_enrolment_code_stands_in_for_the_token_and_is_hidden() {
        let mut p = Profile::from_toml(FULL).unwrap();
        p.server.token = None;
        p.server.enrolment_code = Some("7Q2M-9KXR-4TBW-H8ND".into());
        p.validate(true).unwrap();
        let back = Profile::load(&p.enrolment_code()).unwrap();
        assert_eq!(back, p);
        assert!(!format!("{p:?}").contains("7Q2M"));
        assert!(!p.redacted().to_toml().contains("7Q2M"));
        p.server.token = Some("cct_x".into());
        let err = p.validate(true).unwrap_err().to_string();
        assert!(err.contains("both"), "{err}");
    }

    #[rstest]
    #[case::bare("7Q2M-9KXR-4TBW-H8ND", true)]
    #[case::typed_lower(" 7q2m-9kxr-4tbw-h8nd ", true)]
    #[case::short("7Q2M-9KXR-4TBW", false)]
    #[case::a_path("/etc/clinic-desk/profile.toml", false)]
    fn a_bare_one_time_code_is_an_enrolment_code(#[case] text: &str, #[case] is_code: bool) {
        let pasted = Profile::from_pasted(text);
        let code = pasted.ok().and_then(|p| p.server.enrolment_code);
        assert_eq!(code.as_deref(), is_code.then_some(text.trim()));
    }

    #[test]
    fn a_damaged_enrolment_code_says_so() {
        let err = Profile::load("CDP1-***").unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
    }

    #[test]
    fn the_environment_fills_every_field_and_blank_variables_count_as_unset() {
        let env = |name: &str| match name {
            "CLINIC_DESK_CLINIC_ID" => Some("C009".to_owned()),
            "CLINIC_DESK_SERVER_URL" => Some("  ".to_owned()),
            "CLINIC_DESK_REASSESS_INTERVAL_MINUTES" => Some("30".to_owned()),
            _ => None,
        };
        let p = Profile::from_env(env).unwrap();
        assert_eq!(p.clinic.id.as_deref(), Some("C009"));
        assert_eq!(p.server.url, None);
        assert_eq!(p.assessment.reassess_interval_minutes, Some(30));
        let err = Profile::from_env(|n| {
            (n == "CLINIC_DESK_SYNC_INTERVAL_SECONDS").then(|| "soon".to_owned())
        })
        .unwrap_err();
        assert!(err.to_string().contains("whole number"));
        assert_eq!(ENV_VARS.len(), 11, "every field has its variable");
    }
}
