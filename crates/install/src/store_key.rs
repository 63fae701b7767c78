//! The local store's key: a random 256-bit raw key, kept in the OS keyring where
//! one answers (Secret Service on Linux, Credential Manager, Keychain) and
//! otherwise in an owner-only key file in the config directory. One key per
//! config directory; the diagnostics screen says where it is kept.
//!
//! A key is made only for a store that has none yet (no file, or a plaintext one
//! about to be converted). An encrypted store without a key found is an error,
//! never a new key and a new empty store over the old one.

use std::io::Write;
use std::path::{Path, PathBuf};

use clinic_store::{FileState, StoreKey};

use crate::paths::{IDENTIFIER, KEYRING_ENV, STORE_KEY_FILE};

/// Where the key was found or put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Keyring,
    File(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Keyring => f.write_str("the OS keyring"),
            Self::File(p) => write!(f, "the key file {}", p.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the local database is encrypted, but its key is in neither the OS keyring nor {file}: this data directory was copied without its key, or the key was lost; it was left untouched"
    )]
    Missing { file: PathBuf },
    #[error("the store key file {0} does not hold a key (64 hex digits)")]
    InvalidFile(PathBuf),
    #[error("the OS keyring's store key is not a key (64 hex digits)")]
    InvalidKeyring,
    #[error("there is no config directory to keep the store key in")]
    NoConfigDir,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] clinic_store::StoreError),
}

/// A place that keeps one secret string: the OS keyring, or a fake in tests.
/// `Err` means the place is not there (no Secret Service, say): not an error,
/// the key file is used then.
pub trait Secrets {
    fn get(&self) -> Result<Option<String>, String>;
    fn set(&self, secret: &str) -> Result<(), String>;
}

/// The OS keyring's entry for the store key of the config directory `config_dir`.
pub struct OsKeyring {
    account: String,
}

impl OsKeyring {
    /// `None` when the keyring is switched off (`CLINIC_DESK_KEYRING=off`) or, on
    /// Linux, when no session bus is there to reach Secret Service (a headless
    /// machine): asking D-Bus then could start a bus of its own, or wait.
    pub fn for_config_dir(config_dir: &Path) -> Option<Self> {
        if std::env::var(KEYRING_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("off")) {
            return None;
        }
        if cfg!(target_os = "linux") && std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
            return None;
        }
        Some(Self {
            account: format!("store-key {}", config_dir.display()),
        })
    }

    fn entry(&self) -> Result<keyring::Entry, String> {
        keyring::Entry::new(IDENTIFIER, &self.account).map_err(|e| e.to_string())
    }
}

impl Secrets for OsKeyring {
    fn get(&self) -> Result<Option<String>, String> {
        match self.entry()?.get_password() {
            Ok(s) => Ok(Some(s)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn set(&self, secret: &str) -> Result<(), String> {
        self.entry()?
            .set_password(secret)
            .map_err(|e| e.to_string())
    }
}

/// How the app opens its store: the data directory made owner-only, the key found
/// (in the key file of `config_dir`, else the OS keyring) or made for a new or
/// plaintext store, and the store opened encrypted with it, converting a
/// plaintext one in place.
pub fn open_store(
    config_dir: Option<&Path>,
    database: &Path,
) -> Result<(clinic_store::Database, KeySource), KeyError> {
    if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::paths::create_private_dir(dir).map_err(|source| KeyError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    let keyring = config_dir.and_then(OsKeyring::for_config_dir);
    let (key, source) = load_or_create(
        config_dir,
        database,
        keyring.as_ref().map(|k| k as &dyn Secrets),
    )?;
    let db = clinic_store::Database::open_encrypted(database, &key)?;
    Ok((db, source))
}

/// The key file of `config_dir`.
pub fn key_file(config_dir: &Path) -> PathBuf {
    config_dir.join(STORE_KEY_FILE)
}

/// The key for the store at `database`: from the key file or the keyring, or a
/// new one when the store has none yet (kept in the keyring if it takes it,
/// else in the key file). `keyring` is `None` where there is none.
pub fn load_or_create(
    config_dir: Option<&Path>,
    database: &Path,
    keyring: Option<&dyn Secrets>,
) -> Result<(StoreKey, KeySource), KeyError> {
    let config_dir = config_dir.ok_or(KeyError::NoConfigDir)?;
    let file = key_file(config_dir);
    if let Some(key) = read_key_file(&file)? {
        return Ok((key, KeySource::File(file)));
    }
    let mut keyring = keyring;
    if let Some(k) = keyring {
        match k.get() {
            Ok(Some(hex)) => {
                let key = StoreKey::from_hex(&hex).ok_or(KeyError::InvalidKeyring)?;
                return Ok((key, KeySource::Keyring));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::info!(error = %e, "no OS keyring: the store key is kept in a file");
                keyring = None;
            }
        }
    }
    if clinic_store::file_state(database)? == FileState::Encrypted {
        return Err(KeyError::Missing { file });
    }
    let key = StoreKey::generate();
    if let Some(k) = keyring {
        // Kept only once it reads back: a keyring that forgets is no keyring.
        match k.set(&key.to_hex()).and_then(|()| k.get()) {
            Ok(Some(back)) if StoreKey::from_hex(&back).as_ref() == Some(&key) => {
                tracing::info!("made the store key; kept in the OS keyring");
                return Ok((key, KeySource::Keyring));
            }
            Ok(_) => tracing::warn!("the OS keyring did not keep the store key; using a file"),
            Err(e) => {
                tracing::warn!(error = %e, "the OS keyring refused the store key; using a file")
            }
        }
    }
    write_key_file(&file, &key)?;
    tracing::info!(file = %file.display(), "made the store key; kept in a file");
    Ok((key, KeySource::File(file)))
}

fn read_key_file(file: &Path) -> Result<Option<StoreKey>, KeyError> {
    match std::fs::read_to_string(file) {
        Ok(text) => StoreKey::from_hex(&text)
            .map(Some)
            .ok_or_else(|| KeyError::InvalidFile(file.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KeyError::Io {
            path: file.to_owned(),
            source,
        }),
    }
}

/// Writes a new key file, 0600 from its creation, in a 0700 directory. Never
/// overwrites one (`create_new`): a key file there is a key some store may need.
fn write_key_file(file: &Path, key: &StoreKey) -> Result<(), KeyError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| KeyError::Io { path, source }
    };
    let dir = file.parent().unwrap_or(Path::new("."));
    crate::paths::create_private_dir(dir).map_err(io(dir))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options.open(file).map_err(io(file))?;
    f.write_all(format!("{}\n", key.to_hex()).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io(file))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use rstest::rstest;

    use super::*;

    /// A keyring in memory; `None` inside: no keyring service answers.
    struct FakeKeyring(RefCell<Option<Option<String>>>);

    impl FakeKeyring {
        fn working() -> Self {
            Self(RefCell::new(Some(None)))
        }
        fn absent() -> Self {
            Self(RefCell::new(None))
        }
    }

    impl Secrets for FakeKeyring {
        fn get(&self) -> Result<Option<String>, String> {
            self.0.borrow().clone().ok_or_else(|| "no service".into())
        }
        fn set(&self, secret: &str) -> Result<(), String> {
            match &mut *self.0.borrow_mut() {
                Some(slot) => {
                    *slot = Some(secret.to_owned());
                    Ok(())
                }
                None => Err("no service".into()),
            }
        }
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[rstest]
    #[case::keyring(FakeKeyring::working(), true)]
    #[case::no_keyring_service(FakeKeyring::absent(), false)]
    fn a_new_key_goes_to_the_keyring_when_one_answers_else_to_a_private_file(
        #[case] keyring: FakeKeyring,
        #[case] in_keyring: bool,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        let db = dir.path().join("data/desk.sqlite3");
        let (key, source) = load_or_create(Some(&config), &db, Some(&keyring)).unwrap();
        let file = key_file(&config);
        if in_keyring {
            assert_eq!(source, KeySource::Keyring);
            assert!(!file.exists(), "no copy on disk");
            assert_eq!(keyring.get().unwrap(), Some(key.to_hex()));
        } else {
            assert_eq!(source, KeySource::File(file.clone()));
            assert_eq!(mode(&file), 0o600);
            assert_eq!(mode(&config), 0o700);
        }
        let (again, source_again) = load_or_create(Some(&config), &db, Some(&keyring)).unwrap();
        assert_eq!(
            (again, source_again),
            (key, source),
            "found again, not made anew"
        );
    }

    #[test]
    fn without_a_keyring_the_file_is_used_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("desk.sqlite3");
        let (key, source) = load_or_create(Some(dir.path()), &db, None).unwrap();
        assert_eq!(source, KeySource::File(key_file(dir.path())));
        let text = std::fs::read_to_string(key_file(dir.path())).unwrap();
        assert_eq!(StoreKey::from_hex(&text), Some(key));
    }

    #[test]
    fn an_encrypted_store_without_its_key_gets_no_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("desk.sqlite3");
        drop(clinic_store::Database::open_encrypted(&db, &StoreKey::generate()).unwrap());
        let config = dir.path().join("elsewhere");
        let err = load_or_create(Some(&config), &db, Some(&FakeKeyring::working())).unwrap_err();
        assert!(matches!(err, KeyError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("copied without its key"));
        assert!(!key_file(&config).exists(), "no key made");
    }

    #[rstest]
    #[case("")]
    #[case("not a key")]
    #[case(&"ab".repeat(31))]
    fn a_damaged_key_file_is_an_error_and_is_kept(#[case] text: &str) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(key_file(dir.path()), text).unwrap();
        let err = load_or_create(Some(dir.path()), &dir.path().join("d"), None).unwrap_err();
        assert!(matches!(err, KeyError::InvalidFile(_)), "{err}");
        assert_eq!(std::fs::read_to_string(key_file(dir.path())).unwrap(), text);
    }

    #[test]
    fn no_config_directory_no_key() {
        let err = load_or_create(None, Path::new("/nonexistent/d"), None).unwrap_err();
        assert!(matches!(err, KeyError::NoConfigDir));
    }
}
