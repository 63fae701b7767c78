//! How the app was started: where its data lives and whether to fill it with the demo clinic.

use std::path::PathBuf;

pub const USAGE: &str = "usage: clinic-desk [--data-dir DIR] [--demo] [--demo-seed N]

  --data-dir DIR   keep the local database in DIR (default: the OS app-data directory;
                   also CLINIC_DESK_DATA_DIR). Tests and a second instance need their own.
  --demo           fill an empty database with the demo clinic
  --demo-seed N    which demo clinic (default 1); implies --demo";

/// Environment variable naming the data directory when `--data-dir` is not given.
pub const DATA_DIR_ENV: &str = "CLINIC_DESK_DATA_DIR";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchOptions {
    pub data_dir: Option<PathBuf>,
    pub demo_seed: Option<u64>,
}

impl LaunchOptions {
    /// Flag beats environment, environment beats the OS default.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut options = LaunchOptions {
            data_dir: std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()).map(PathBuf::from),
            demo_seed: None,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
                None => (arg.clone(), None),
            };
            let mut value = |name: &str| {
                inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{name} needs a value"))
            };
            match flag.as_str() {
                "--data-dir" => options.data_dir = Some(PathBuf::from(value("--data-dir")?)),
                "--demo" => options.demo_seed = options.demo_seed.or(Some(clinic_desk_core::DEMO_SEED)),
                "--demo-seed" => {
                    let raw = value("--demo-seed")?;
                    options.demo_seed = Some(raw.parse().map_err(|_| format!("--demo-seed takes a number, not '{raw}'"))?);
                }
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
        assert_eq!(parse(&["--data-dir", "/x", "--demo"]).unwrap().data_dir, Some(PathBuf::from("/x")));
        assert_eq!(parse(&["--data-dir=/y"]).unwrap().data_dir, Some(PathBuf::from("/y")));
        assert_eq!(parse(&["--demo-seed", "9"]).unwrap().demo_seed, Some(9));
        assert_eq!(parse(&["--demo"]).unwrap().demo_seed, Some(clinic_desk_core::DEMO_SEED));
        assert_eq!(parse(&["--data-dir"]).unwrap_err(), "--data-dir needs a value");
        assert!(parse(&["--demo-seed", "x"]).unwrap_err().contains("takes a number"));
        assert!(parse(&["--frobnicate"]).unwrap_err().contains("unknown argument"));
    }
}
