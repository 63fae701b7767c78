//! How the app was started: where its data lives and whether to fill it with the demo clinic.

use std::path::PathBuf;

pub const USAGE: &str = "usage: clinic-desk [--data-dir DIR] [--config-dir DIR] [--demo] [--demo-seed N] [--server URL] [--token TOKEN]
       clinic-desk provision <profile.toml | enrolment code> [--data-dir DIR] [--config-dir DIR]
       clinic-desk enrolment-code <profile.toml>
       clinic-desk check [--config-dir DIR]

  --data-dir DIR   keep the local database in DIR (default: the OS app-data directory;
                   also CLINIC_DESK_DATA_DIR). Tests and a second instance need their own.
  --config-dir DIR where the provisioned clinic profile is kept (default: the OS config
                   directory; also CLINIC_DESK_CONFIG_DIR)
  --demo           fill an empty database with the demo clinic
  --demo-seed N    which demo clinic (default 1); implies --demo
  --server URL     the clinic's central server, e.g. https://central.example:8443 (also
                   CLINIC_DESK_SERVER_URL); without one, reports stay queued on this device
  --token TOKEN    the clinic's bearer token for that server (also CLINIC_DESK_TOKEN;
                   prefer the variable: flags show in process lists)";

/// Environment variable naming the data directory when `--data-dir` is not given.
pub const DATA_DIR_ENV: &str = "CLINIC_DESK_DATA_DIR";
pub const SERVER_URL_ENV: &str = "CLINIC_DESK_SERVER_URL";
pub const TOKEN_ENV: &str = "CLINIC_DESK_TOKEN";

#[derive(Clone, Default, PartialEq, Eq)]
pub struct LaunchOptions {
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

impl LaunchOptions {
    /// The command line's layer of the clinic profile.
    pub fn profile_layer(&self) -> clinic_install::Profile {
        let mut p = clinic_install::Profile::default();
        p.server.url = self.server_url.clone();
        p.server.token = self.token.clone();
        p
    }

    /// Flag beats environment, environment beats the OS default. The server and
    /// token variables are read with the rest of the clinic profile
    /// (`clinic_install::Setup`), so these fields hold the flags alone.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut options = LaunchOptions {
            data_dir: std::env::var_os(DATA_DIR_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            demo_seed: None,
            server_url: None,
            token: None,
            config_dir: None,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
                None => (arg.clone(), None),
            };
            let mut value = |name: &str| {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match flag.as_str() {
                "--data-dir" => options.data_dir = Some(PathBuf::from(value("--data-dir")?)),
                "--demo" => {
                    options.demo_seed = options.demo_seed.or(Some(clinic_desk_core::DEMO_SEED))
                }
                "--demo-seed" => {
                    let raw = value("--demo-seed")?;
                    options.demo_seed = Some(
                        raw.parse()
                            .map_err(|_| format!("--demo-seed takes a number, not '{raw}'"))?,
                    );
                }
                "--server" => {
                    let raw = value("--server")?;
                    if !(raw.starts_with("http://") || raw.starts_with("https://")) {
                        return Err(format!(
                            "--server takes an http:// or https:// URL, not '{raw}'"
                        ));
                    }
                    options.server_url = Some(raw);
                }
                "--token" => options.token = Some(value("--token")?),
                "--config-dir" => options.config_dir = Some(PathBuf::from(value("--config-dir")?)),
                other => return Err(format!("unknown argument '{other}'")),
            }
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<LaunchOptions, String> {
        LaunchOptions::from_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_are_understood_and_mistakes_explained() {
        assert_eq!(
            parse(&["--data-dir", "/x", "--demo"]).unwrap().data_dir,
            Some(PathBuf::from("/x"))
        );
        assert_eq!(
            parse(&["--data-dir=/y"]).unwrap().data_dir,
            Some(PathBuf::from("/y"))
        );
        assert_eq!(parse(&["--demo-seed", "9"]).unwrap().demo_seed, Some(9));
        assert_eq!(
            parse(&["--demo"]).unwrap().demo_seed,
            Some(clinic_desk_core::DEMO_SEED)
        );
        assert_eq!(
            parse(&["--data-dir"]).unwrap_err(),
            "--data-dir needs a value"
        );
        assert!(
            parse(&["--demo-seed", "x"])
                .unwrap_err()
                .contains("takes a number")
        );
        assert!(
            parse(&["--frobnicate"])
                .unwrap_err()
                .contains("unknown argument")
        );
        let o = parse(&["--server", "http://127.0.0.1:9", "--token=cct_x"]).unwrap();
        assert_eq!(
            (o.server_url.as_deref(), o.token.as_deref()),
            (Some("http://127.0.0.1:9"), Some("cct_x"))
        );
        assert!(
            !format!("{o:?}").contains("cct_x"),
            "the token never shows in Debug"
        );
        assert!(
            parse(&["--server", "ftp://x"])
                .unwrap_err()
                .contains("http://")
        );
    }
}
