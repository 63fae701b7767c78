//! The store at rest: SQLCipher with a random 256-bit raw key, owner-only file
//! modes, and the one-time conversion of a plaintext store (and its migration
//! backups) into encrypted files.
//!
//! The key is raw (`PRAGMA key = "x'…'"`), so opening costs no passphrase KDF.
//! Where the key is kept (OS keyring or a 0600 key file) is the install side's
//! business (`clinic_install::store_key`); this module only applies it.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::StoreError;
use crate::page_crypto;

/// Page cache of an encrypted connection, KiB. A page read from the file is
/// decrypted on every cache miss (the OS cache holds ciphertext), so SQLite's
/// default 2 MB made lookups 2.5x slower in a trial; 64 MiB keeps the working
/// set decrypted and put lookups on par with plaintext (`benches/lookup.rs`).
/// Memory is taken only as pages are read, per connection (one writer, three readers).
pub const ENCRYPTED_CACHE_KIB: i64 = 64 * 1024;

/// The pages' HMAC. SQLCipher 4 defaults to HMAC-SHA512; HMAC-SHA256 is as
/// sound a MAC here (a 256-bit key, 4 KiB pages) and runs on the CPU's SHA
/// extensions (x86 SHA-NI, ARMv8's SHA-2 instructions), which most CPUs lack for
/// SHA-512. Every page read from the file is verified and every page written
/// signed: on the 2-core build machine a pulled page of 1,000 patients went
/// from 1.6x plaintext to 1.4-1.5x (`benches/lookup.rs`, both arms in one run;
/// the lookup medians moved within the runs' noise). A store written with the
/// default is converted once ([`keyed_as_first_written`]).
const HMAC_ALGORITHM: &str = "HMAC_SHA256";

/// Every plain SQLite file starts with these 16 bytes; an encrypted one starts
/// with its random salt.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The store's 256-bit key. Never printed; zeroed when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreKey([u8; 32]);

impl StoreKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
        Self(bytes)
    }

    /// Exactly 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(bytes))
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The raw-key literal SQLCipher takes: `x'<64 hex>'`, no KDF.
    fn literal(&self) -> String {
        format!("x'{}'", self.to_hex())
    }

    /// Keys `conn` with the store's cipher settings; must come before anything
    /// reads the file. Public for connections opened outside the store (a
    /// bench's read-only poller, `store-sql`).
    pub fn apply(&self, conn: &Connection) -> rusqlite::Result<()> {
        process_settings(conn);
        conn.execute_batch(&format!(
            "PRAGMA key = \"{}\"; PRAGMA cipher_hmac_algorithm = {HMAC_ALGORITHM};",
            self.literal()
        ))
    }

    /// Keys `conn` with SQLCipher 4's default settings, as the first encrypted
    /// version of the store was written (HMAC-SHA512); only to convert such a store.
    pub(crate) fn apply_as_first_written(&self, conn: &Connection) -> rusqlite::Result<()> {
        process_settings(conn);
        // Named in full: the process's defaults are the store's own ([`process_settings`]).
        conn.execute_batch(&format!(
            "PRAGMA key = \"{}\"; PRAGMA cipher_compatibility = 4;",
            self.literal()
        ))
    }

    /// Attaches the new, empty database at `path` as `schema`, encrypted with
    /// this key and the store's cipher settings.
    fn attach(&self, conn: &Connection, path: &Path, schema: &str) -> rusqlite::Result<()> {
        process_settings(conn);
        conn.execute(
            &format!("ATTACH DATABASE ?1 AS {schema} KEY \"{}\"", self.literal()),
            [path.to_string_lossy()],
        )?;
        conn.execute_batch(&format!(
            "PRAGMA {schema}.cipher_hmac_algorithm = {HMAC_ALGORITHM};"
        ))
    }
}

/// What the process sets up once, before its first keyed connection (every way
/// to key one calls this first; `conn` only proves SQLite is initialised):
/// - SQLCipher also keys databases it attaches itself (`VACUUM INTO`'s backup)
///   with the process's default settings, so the default is made the store's.
///   The pragma is a plain global write in SQLCipher, hence once and not per
///   connection.
/// - The page cipher and HMAC on per-thread OpenSSL contexts ([`page_crypto`]).
fn process_settings(conn: &Connection) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if !page_crypto::install(conn) {
            tracing::warn!("SQLCipher's page cipher could not be replaced; its own is used");
        }
        if let Err(e) = conn.execute_batch(&format!(
            "PRAGMA cipher_default_hmac_algorithm = {HMAC_ALGORITHM};"
        )) {
            // Backups would then be written with SQLCipher's own default,
            // which the next start converts; the store itself is not affected.
            tracing::error!(error = %e, "could not set SQLCipher's default settings");
        }
    });
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(..)")
    }
}

impl Drop for StoreKey {
    fn drop(&mut self) {
        for b in &mut self.0 {
            // Volatile, so the zeroing is not optimised away as a dead store.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// What is at a store's path before it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// No file, or an empty one: a new store.
    Missing,
    Plaintext,
    /// Not a plain SQLite file: encrypted (or not a database at all).
    Encrypted,
}

pub fn file_state(path: &Path) -> Result<FileState, StoreError> {
    use std::io::Read;
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileState::Missing),
        Err(e) => return Err(io(path, e)),
    };
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]).map_err(|e| io(path, e))? {
            0 => break,
            n => read += n,
        }
    }
    Ok(match read {
        0 => FileState::Missing,
        16 if &header == SQLITE_HEADER => FileState::Plaintext,
        _ => FileState::Encrypted,
    })
}

fn io(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// `<path><suffix>`: the WAL (`-wal`), shared-memory (`-shm`) and work files beside a database.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The database file and the files SQLite keeps beside it.
pub fn database_files(path: &Path) -> [PathBuf; 4] {
    [
        path.to_owned(),
        sibling(path, "-wal"),
        sibling(path, "-shm"),
        sibling(path, "-journal"),
    ]
}

/// Owner-only (0600) for each of `path`'s database files that exists.
pub fn make_private(path: &Path) -> Result<(), StoreError> {
    for file in database_files(path) {
        set_mode(&file, 0o600)?;
    }
    Ok(())
}

/// Sets `path`'s permission bits when it exists (Unix; elsewhere the user's
/// profile directory already keeps other accounts out).
pub fn set_mode(path: &Path, mode: u32) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(path, e)),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// Creates `path` empty and owner-only, so SQLite (which takes an empty file as a
/// new database, and gives its WAL the database file's mode) never makes a
/// world-readable one. A file already there is left alone.
pub(crate) fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(path, e)),
    }
}

/// Removes `path`'s database files that exist.
pub(crate) fn remove_database_files(path: &Path) -> Result<(), StoreError> {
    for file in database_files(path) {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&file, e)),
        }
    }
    Ok(())
}

/// A wrong key and a file that is not a database look the same to SQLite.
pub(crate) fn is_not_a_database(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::NotADatabase)
}

/// Reads the schema once, so a wrong or missing key fails here with a clear
/// error instead of at the first query.
pub(crate) fn check_readable(
    conn: &Connection,
    path: &Path,
    key: Option<&StoreKey>,
) -> Result<(), StoreError> {
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => Ok(()),
        Err(e) if is_not_a_database(&e) => Err(match key {
            Some(_) => StoreError::WrongKey {
                path: path.to_owned(),
            },
            None => StoreError::Encrypted {
                path: path.to_owned(),
            },
        }),
        Err(e) => Err(e.into()),
    }
}

/// Rows of every table: what a converted copy must hold too.
fn table_counts(conn: &Connection, schema: &str) -> rusqlite::Result<Vec<(String, i64)>> {
    let names: Vec<String> = conn
        .prepare(&format!(
            "SELECT name FROM {schema}.sqlite_master WHERE type = 'table' ORDER BY name"
        ))?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    names
        .into_iter()
        .map(|name| {
            let n = conn.query_row(
                &format!(
                    "SELECT count(*) FROM {schema}.\"{}\"",
                    name.replace('"', "\"\"")
                ),
                [],
                |r| r.get(0),
            )?;
            Ok((name, n))
        })
        .collect()
}

/// What a database to convert is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Plain SQLite, from the versions before encryption.
    Plaintext,
    /// Encrypted with the store's key and SQLCipher 4's default settings, as the
    /// first encrypted version wrote it ([`HMAC_ALGORITHM`] says why that changed).
    FirstWritten,
}

/// Whether the encrypted store at `path` is readable with `key` only as the
/// first encrypted version wrote it: then it is converted
/// ([`encrypt_in_place`] from [`Source::FirstWritten`]). `false` when the
/// store's settings read it, and when nothing does (a wrong key, which opening
/// then reports as it always has).
pub fn keyed_as_first_written(path: &Path, key: &StoreKey) -> Result<bool, StoreError> {
    let readable = |apply: fn(&StoreKey, &Connection) -> rusqlite::Result<()>| {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        apply(key, &conn)?;
        match check_readable(&conn, path, Some(key)) {
            Ok(()) => Ok(true),
            Err(StoreError::WrongKey { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    };
    Ok(!readable(StoreKey::apply)? && readable(StoreKey::apply_as_first_written)?)
}

/// Converts the database at `path`, written as `source` says, into one
/// encrypted with `key` and the store's settings, in place: `sqlcipher_export`
/// into `<path>.encrypting`, which is then checked (integrity, schema version,
/// every table's row count) and renamed over the original, whose WAL and
/// shared-memory files are removed. A crash at any step leaves either the
/// original (converted again at the next start) or the finished new file.
pub fn encrypt_in_place(path: &Path, key: &StoreKey, source: Source) -> Result<(), StoreError> {
    let failed = |reason: String| StoreError::Encrypt {
        path: path.to_owned(),
        reason,
    };
    let work = sibling(path, ".encrypting");
    remove_database_files(&work)?;
    create_private(&work)?;

    let original = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    if source == Source::FirstWritten {
        key.apply_as_first_written(&original)?;
    }
    original.busy_timeout(std::time::Duration::from_secs(5))?;
    // Everything into the main file, so nothing is left only in the WAL.
    original.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let version: u32 = original.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let before = table_counts(&original, "main")?;
    key.attach(&original, &work, "encrypted")?;
    original.query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))?;
    // sqlcipher_export copies schema and rows, not the header's user_version.
    original.execute_batch(&format!("PRAGMA encrypted.user_version = {version}"))?;
    let copied = table_counts(&original, "encrypted")?;
    original.execute_batch("DETACH DATABASE encrypted")?;
    drop(original);
    if copied != before {
        remove_database_files(&work)?;
        return Err(failed(format!(
            "the encrypted copy's row counts {copied:?} differ from {before:?}"
        )));
    }

    {
        let check = Connection::open_with_flags(
            &work,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        key.apply(&check)?;
        let integrity: String = check.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        let got: u32 = check.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let after = table_counts(&check, "main")?;
        if integrity != "ok" || got != version || after != before {
            drop(check);
            remove_database_files(&work)?;
            return Err(failed(format!(
                "the encrypted copy did not verify (integrity: {integrity}, version {got} for {version})"
            )));
        }
    }
    File::open(&work)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(&work, e))?;
    if file_state(&work)? != FileState::Encrypted {
        remove_database_files(&work)?;
        return Err(failed("the copy came out plaintext".into()));
    }
    // The plaintext's WAL was checkpointed into the file and holds nothing more;
    // gone before the rename, so it can never be replayed into the new file.
    for f in [sibling(path, "-wal"), sibling(path, "-shm")] {
        match std::fs::remove_file(&f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&f, e)),
        }
    }
    std::fs::rename(&work, path).map_err(|e| io(path, e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename is durable once the directory is.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    make_private(path)?;
    tracing::info!(path = %path.display(), ?source, "converted the store to the store's encryption");
    Ok(())
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("", false)]
    #[case(&"ab".repeat(31), false)]
    #[case(&"ab".repeat(33), false)]
    #[case(&"zz".repeat(32), false)]
    #[case(&"é".repeat(32), false)]
    #[case(&"0f".repeat(32), true)]
    #[case(&format!("  {}\n", "A0".repeat(32)), true)]
    fn hex_keys(#[case] text: &str, #[case] ok: bool) {
        let key = StoreKey::from_hex(text);
        assert_eq!(key.is_some(), ok, "{text:?}");
        if let Some(key) = key {
            assert_eq!(key.to_hex(), text.trim().to_ascii_lowercase());
        }
    }

    #[test]
    fn generated_keys_differ_and_never_print() {
        let (a, b) = (StoreKey::generate(), StoreKey::generate());
        assert_ne!(a, b);
        assert_eq!(StoreKey::from_hex(&a.to_hex()), Some(a.clone()));
        assert_eq!(format!("{a:?}"), "StoreKey(..)");
    }

    #[test]
    fn the_key_decides_who_reads_and_the_header_says_which_file_is_plain() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, secret) = (dir.path().join("p.db"), dir.path().join("e.db"));
        let key = StoreKey::generate();
        assert_eq!(file_state(&plain).unwrap(), FileState::Missing);
        Connection::open(&plain)
            .unwrap()
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES ('hello');")
            .unwrap();
        let c = Connection::open(&secret).unwrap();
        key.apply(&c).unwrap();
        c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES ('hello');")
            .unwrap();
        drop(c);
        assert_eq!(file_state(&plain).unwrap(), FileState::Plaintext);
        assert_eq!(file_state(&secret).unwrap(), FileState::Encrypted);

        let none = Connection::open(&secret).unwrap();
        let err = check_readable(&none, &secret, None).unwrap_err();
        assert!(matches!(err, StoreError::Encrypted { .. }), "{err}");
        let wrong = Connection::open(&secret).unwrap();
        let other = StoreKey::generate();
        other.apply(&wrong).unwrap();
        let err = check_readable(&wrong, &secret, Some(&other)).unwrap_err();
        assert!(matches!(err, StoreError::WrongKey { .. }), "{err}");
        let right = Connection::open(&secret).unwrap();
        key.apply(&right).unwrap();
        check_readable(&right, &secret, Some(&key)).unwrap();
    }
}
