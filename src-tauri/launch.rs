//! The command line: the installer's subcommands (see `provision.rs`), or how the
//! app is started: where its data lives, whether to fill it with the demo clinic,
//! and the command line's layer of the clinic profile.

use std::path::PathBuf;

use clap::{Args, Parser};

use crate::provision::Subcommand;

pub use clinic_install::paths::DATA_DIR_ENV;

#[derive(Parser)]
#[command(
    name = "clinic-desk",
    version,
    about = "Clinic Desk: offline-first bedside and front-desk app for clinics",
    args_conflicts_with_subcommands = true,
    // A flag given twice takes its last value, as before clap.
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Subcommand>,
    #[command(flatten)]
    pub launch: LaunchArgs,
}

/// The flags of a start with a window.
#[derive(Args, Clone, Default)]
pub struct LaunchArgs {
    /// Keep the local database in DIR (default: the OS app-data directory; also
    /// CLINIC_DESK_DATA_DIR). Tests and a second instance need their own.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Where the provisioned clinic profile is kept (default: the OS config
    /// directory; also CLINIC_DESK_CONFIG_DIR).
    #[arg(long, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Fill an empty database with the demo clinic.
    #[arg(long)]
    demo: bool,
    /// Which demo clinic (default 1); implies --demo.
    #[arg(long, value_name = "N")]
    demo_seed: Option<u64>,
    /// The clinic's central server, e.g. https://central.example:8443 (also
    /// CLINIC_DESK_SERVER_URL); without one, reports stay queued on this device.
    #[arg(long = "server", value_name = "URL", value_parser = http_url)]
    server_url: Option<String>,
    /// The clinic's bearer token for that server (also CLINIC_DESK_TOKEN; prefer
    /// the variable: flags show in process lists).
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
}

fn http_url(raw: &str) -> Result<String, String> {
    if raw.starts_with("http://") || raw.starts_with("https://") {
        Ok(raw.to_owned())
    } else {
        Err(format!("takes an http:// or https:// URL, not '{raw}'"))
    }
}

/// How the app was started. The server and token variables are read with the
/// rest of the clinic profile (`clinic_install::Setup`), so these fields hold the
/// flags alone.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LaunchOptions {
    /// The flag, else `CLINIC_DESK_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    pub demo_seed: Option<u64>,
    pub server_url: Option<String>,
    pub token: Option<String>,
    pub config_dir: Option<PathBuf>,
}

impl std::fmt::Debug for LaunchOptions {
    // The token must not reach a log or a panic message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchOptions")
            .field("data_dir", &self.data_dir)
            .field("demo_seed", &self.demo_seed)
            .field("server_url", &self.server_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("config_dir", &self.config_dir)
            .finish()
    }
}

impl From<LaunchArgs> for LaunchOptions {
    fn from(args: LaunchArgs) -> Self {
        let from_env = std::env::var_os(DATA_DIR_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Self {
            data_dir: args.data_dir.or(from_env),
            demo_seed: args
                .demo_seed
                .or(args.demo.then_some(clinic_desk_core::DEMO_SEED)),
            server_url: args.server_url,
            token: args.token,
            config_dir: args.config_dir,
        }
    }
}

impl LaunchOptions {
    /// The command line's layer of the clinic profile.
    pub fn profile_layer(&self) -> clinic_install::Profile {
        let mut p = clinic_install::Profile::default();
        p.server.url = self.server_url.clone();
        p.server.token = self.token.clone();
        p
    }
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;
    use rstest::rstest;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("clinic-desk").chain(args.iter().copied()))
    }

    fn launch(args: &[&str]) -> LaunchOptions {
        let cli = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(cli.command.is_none());
        cli.launch.into()
    }

    #[rstest]
    #[case(&["--data-dir", "/x", "--demo"], Some("/x"), Some(clinic_desk_core::DEMO_SEED))]
    #[case(&["--data-dir=/y"], Some("/y"), None)]
    #[case(&["--demo-seed", "9"], None, Some(9))]
    #[case(&["--demo-seed", "9", "--demo"], None, Some(9))]
    #[case(&["--demo", "--demo-seed=9"], None, Some(9))]
    #[case(&["--demo"], None, Some(clinic_desk_core::DEMO_SEED))]
    #[case(&["--data-dir", "/a", "--data-dir", "/b"], Some("/b"), None)]
    fn launch_flags_are_understood(
        #[case] args: &[&str],
        #[case] data_dir: Option<&str>,
        #[case] demo_seed: Option<u64>,
    ) {
        let o = launch(args);
        if data_dir.is_some() {
            assert_eq!(o.data_dir, data_dir.map(PathBuf::from));
        }
        assert_eq!(o.demo_seed, demo_seed);
    }

    #[rstest]
    #[case(&["--data-dir"], ErrorKind::InvalidValue, "--data-dir")]
    #[case(&["--demo-seed", "x"], ErrorKind::ValueValidation, "invalid digit")]
    #[case(&["--frobnicate"], ErrorKind::UnknownArgument, "--frobnicate")]
    #[case(&["--server", "ftp://x"], ErrorKind::ValueValidation, "http://")]
    #[case(&["--demo", "provision", "CDP1-x"], ErrorKind::ArgumentConflict, "provision")]
    #[case(&["check", "profile.toml"], ErrorKind::UnknownArgument, "profile.toml")]
    #[case(&["provision"], ErrorKind::MissingRequiredArgument, "SOURCE")]
    #[case(&["provision", "a", "b"], ErrorKind::UnknownArgument, "b")]
    #[case(&["enrolment-code", "--token", "x"], ErrorKind::UnknownArgument, "--token")]
    fn mistakes_are_explained(#[case] args: &[&str], #[case] kind: ErrorKind, #[case] says: &str) {
        let e = parse(args)
            .err()
            .unwrap_or_else(|| panic!("{args:?} parsed"));
        assert_eq!(e.kind(), kind, "{args:?}: {e}");
        assert!(e.to_string().contains(says), "{args:?}: {e}");
    }

    #[test]
    fn the_server_and_token_flags_form_the_command_lines_profile_layer() {
        let o = launch(&["--server", "http://127.0.0.1:9", "--token=cct_x"]);
        let layer = o.profile_layer();
        assert_eq!(
            (layer.server.url.as_deref(), layer.server.token.as_deref()),
            (Some("http://127.0.0.1:9"), Some("cct_x"))
        );
        assert!(
            !format!("{o:?}").contains("cct_x"),
            "the token never shows in Debug"
        );
    }

    #[rstest]
    #[case(&["provision", "CDP1-abc", "--data-dir", "/d"], "provision")]
    #[case(&["enrolment-code", "clinic.toml"], "enrolment-code")]
    #[case(&["check", "--config-dir=/c"], "check")]
    fn subcommands_are_recognised(#[case] args: &[&str], #[case] name: &str) {
        let cli = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert_eq!(cli.command.map(|c| c.name()), Some(name));
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
