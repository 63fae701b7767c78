//! What the app found at start: its directories and the four profile layers.
//! Problems reading a layer do not stop the app (it still works offline on local
//! data); they are kept here and shown on the diagnostics screen.

use std::path::PathBuf;

use crate::paths::{self, PROFILE_FILE};
use crate::{Layers, Profile};

#[derive(Debug, Clone)]
pub struct Setup {
    pub data_dir: PathBuf,
    /// `None` only on a system with no home directory.
    pub config_dir: Option<PathBuf>,
    pub log_dir: PathBuf,
    pub installed_profile: Option<PathBuf>,
    pub layers: Layers,
    /// Why a layer could not be used, or the store refused the profile.
    pub problems: Vec<String>,
}

impl Setup {
    /// Reads the environment layer and both profile files; `flags` is the command line's layer.
    pub fn load(flags: Profile, data_dir: PathBuf, config_dir: Option<PathBuf>) -> Self {
        let mut problems = Vec::new();
        let mut keep = |r: Result<Option<Profile>, crate::InstallError>| match r {
            Ok(p) => p,
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        };
        let env = keep(Profile::from_env(|n| std::env::var(n).ok()).map(Some)).unwrap_or_default();
        let installed_profile = paths::installed_profile();
        let installed = installed_profile
            .as_deref()
            .and_then(|p| keep(Profile::from_file(p)));
        let provisioned = config_dir
            .as_deref()
            .and_then(|d| keep(Profile::from_file(&d.join(PROFILE_FILE))));
        let layers = Layers {
            flags,
            env,
            provisioned,
            installed,
        };
        if let Err(e) = layers.resolve().validate(false) {
            problems.push(e.to_string());
        }
        Self {
            log_dir: paths::log_dir(&data_dir),
            data_dir,
            config_dir,
            installed_profile,
            layers,
            problems,
        }
    }

    pub fn profile(&self) -> Profile {
        self.layers.resolve()
    }

    /// A clinic, a server and a credential, valid, from whichever layers.
    pub fn is_provisioned(&self) -> bool {
        self.profile().validate(true).is_ok()
    }

    /// Every credential any layer holds, for scrubbing.
    pub fn secrets(&self) -> Vec<String> {
        let l = &self.layers;
        [
            Some(&l.flags),
            Some(&l.env),
            l.provisioned.as_ref(),
            l.installed.as_ref(),
        ]
        .into_iter()
        .flatten()
        .filter_map(|p| p.server.token.clone())
        .collect()
    }
}
