//! Where the app keeps things. The defaults are the same directories Tauri's
//! path resolver gives for our identifier, so the `provision` subcommand (which
//! runs without Tauri) and the app agree.

use std::path::PathBuf;

/// `identifier` in tauri.conf.json.
pub const IDENTIFIER: &str = "cn.clinicdesk.desk";
pub const PROFILE_FILE: &str = "profile.toml";
/// File name of the local database inside the data directory.
pub const DATABASE_FILE: &str = "clinic-desk.sqlite3";
/// The store's key file in the config directory, where no OS keyring keeps it
/// (`store_key`).
pub const STORE_KEY_FILE: &str = "store.key";
/// `off` keeps the store key out of the OS keyring (tests, kiosks without one).
pub const KEYRING_ENV: &str = "CLINIC_DESK_KEYRING";
/// Names the data directory when no `--data-dir` flag does.
pub const DATA_DIR_ENV: &str = "CLINIC_DESK_DATA_DIR";
pub const CONFIG_DIR_ENV: &str = "CLINIC_DESK_CONFIG_DIR";
/// Overrides where the package-installed profile is looked for (tests, unusual layouts).
pub const INSTALLED_PROFILE_ENV: &str = "CLINIC_DESK_INSTALLED_PROFILE";
/// Where the `.deb` puts the clinic's profile.
pub const INSTALLED_PROFILE_UNIX: &str = "/etc/clinic-desk/profile.toml";

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The per-user config directory that holds the provisioned profile.
pub fn config_dir(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| env_path(CONFIG_DIR_ENV))
        .or_else(|| dirs::config_dir().map(|d| d.join(IDENTIFIER)))
}

/// The data directory: the flag, else `CLINIC_DESK_DATA_DIR`, else the OS default.
pub fn data_dir(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| env_path(DATA_DIR_ENV))
        .or_else(default_data_dir)
}

/// The data directory when neither `--data-dir` nor `CLINIC_DESK_DATA_DIR` names one.
pub fn default_data_dir() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join(IDENTIFIER))
}

/// Log files live with the data they describe, so `--data-dir` keeps a test's or
/// a second clinic's logs apart too.
pub fn log_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("logs")
}

/// The profile the package installed beside the app: `/etc/clinic-desk/profile.toml`
/// on Linux; `profile.toml` next to the executable elsewhere (where the .msi and
/// the macOS bundle put it).
pub fn installed_profile() -> Option<PathBuf> {
    if let Some(p) = env_path(INSTALLED_PROFILE_ENV) {
        return Some(p);
    }
    if cfg!(target_os = "linux") {
        Some(PathBuf::from(INSTALLED_PROFILE_UNIX))
    } else {
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join(PROFILE_FILE)))
    }
}

/// Where "export support bundle" writes: the user's Downloads folder when there
/// is one (where an installer looks first), else `<data dir>/support`.
pub fn bundle_dir(data_dir: &std::path::Path) -> PathBuf {
    dirs::download_dir()
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| data_dir.join("support"))
}

/// Creates `dir` (and its parents) and makes it owner-only (0700 on Unix): the data
/// and config directories hold patient data, the store key and the device token.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
