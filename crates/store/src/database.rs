use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::StoreError;
use crate::encryption::{self, ENCRYPTED_CACHE_KIB, FileState, StoreKey};
use crate::migrate;
use crate::pool::{PoolOptions, SqlitePool};

/// How long a statement waits for another connection's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a connection with the pragmas every connection needs. `synchronous=FULL`:
/// in WAL mode NORMAL can lose the last commits on power loss, and a lost pain score
/// is worse than the fraction of a millisecond FULL costs per commit.
pub fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    open_connection_keyed(path, None)
}

/// [`open_connection`] on a store encrypted with `key` (`None`: a plain file).
/// A new file is created owner-only (0600); a wrong or missing key fails here.
pub fn open_connection_keyed(
    path: &Path,
    key: Option<&StoreKey>,
) -> Result<Connection, StoreError> {
    encryption::create_private(path)?;
    let conn = Connection::open(path)?;
    set_pragmas(&conn, key).map_err(|e| match (key, encryption::is_not_a_database(&e)) {
        (Some(_), true) => StoreError::WrongKey {
            path: path.to_owned(),
        },
        (None, true) => StoreError::Encrypted {
            path: path.to_owned(),
        },
        _ => e.into(),
    })?;
    encryption::check_readable(&conn, path, key)?;
    Ok(conn)
}

/// The key first (SQLCipher needs it before any read), then the pragmas every
/// connection shares, the writer and each reader alike.
fn set_pragmas(conn: &Connection, key: Option<&StoreKey>) -> rusqlite::Result<()> {
    if let Some(key) = key {
        key.apply(conn)?;
        conn.pragma_update(None, "cache_size", -ENCRYPTED_CACHE_KIB)?;
    }
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")
}

/// Converts the file at `path` to the store's encryption if an earlier version
/// wrote it otherwise, as `from` says: plaintext (before encryption, told by
/// its header) or SQLCipher's defaults (the first encrypted version, told only
/// by which settings read it). Anything else is left alone.
fn convert(path: &Path, key: &StoreKey, from: encryption::Source) -> Result<(), StoreError> {
    use encryption::Source;
    let convert = match from {
        Source::Plaintext => encryption::file_state(path)? == FileState::Plaintext,
        Source::FirstWritten => encryption::keyed_as_first_written(path, key)?,
    };
    if convert {
        encryption::encrypt_in_place(path, key, from)?;
    }
    Ok(())
}

/// The device's database: one writer, three readers.
pub struct Database {
    pool: SqlitePool,
}

impl Database {
    /// Opens (creating if need be) and migrates the plain (unencrypted) store at
    /// `path`: tests, benches and tools. The app opens with [`Database::open_encrypted`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_keyed(path, None)
    }

    /// Opens (creating if need be) and migrates the store at `path`, encrypted with
    /// `key`. A plaintext store there (from a version before encryption) and its
    /// plaintext migration backups are converted first
    /// ([`encryption::encrypt_in_place`]), and so are a store and backups the
    /// first encrypted version wrote with SQLCipher's default settings. A store
    /// this key cannot read is left untouched: [`StoreError::WrongKey`].
    pub fn open_encrypted(path: &Path, key: &StoreKey) -> Result<Self, StoreError> {
        Self::open_keyed(path, Some(key))
    }

    fn open_keyed(path: &Path, key: Option<&StoreKey>) -> Result<Self, StoreError> {
        let db = Self::open_with(path, migrate::migrations_sql(), key)?;
        db.write(crate::patients::ensure_search_index)?;
        Ok(db)
    }

    pub(crate) fn open_with(
        path: &Path,
        sql: &[&'static str],
        key: Option<&StoreKey>,
    ) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        if let (FileState::Encrypted, None) = (encryption::file_state(path)?, key) {
            return Err(StoreError::Encrypted {
                path: path.to_owned(),
            });
        }
        use encryption::Source;
        if let Some(key) = key {
            convert(path, key, Source::Plaintext)?;
        }
        migrate::prune_backups(path)?;
        if let Some(key) = key {
            for (_, backup) in migrate::backups(path)? {
                convert(&backup, key, Source::Plaintext)?;
            }
        }
        // The version check is the first read with the store's settings. Only when
        // it fails is the store asked whether the first encrypted version wrote it
        // (then it and its backups are converted once), so a start pays nothing
        // for that conversion.
        match (migrate::refuse_newer(path, sql, key), key) {
            (Err(StoreError::WrongKey { .. }), Some(key))
                if encryption::keyed_as_first_written(path, key)? =>
            {
                // The guard has just told the store apart: convert it without asking again.
                encryption::encrypt_in_place(path, key, Source::FirstWritten)?;
                for (_, backup) in migrate::backups(path)? {
                    convert(&backup, key, Source::FirstWritten)?;
                }
                migrate::refuse_newer(path, sql, Some(key))?;
            }
            (result, _) => {
                result?;
            }
        }
        let mut writer = open_connection_keyed(path, key)?;
        migrate::migrate(&mut writer, path, sql)?;
        // Files made before owner-only modes (and the WAL SQLite just made).
        encryption::make_private(path)?;
        // Readers open only now, on the migrated schema.
        let key = key.cloned();
        let pool = SqlitePool::new(path, writer, PoolOptions::default(), move |c| {
            set_pragmas(c, key.as_ref())
        })?;
        Ok(Self { pool })
    }

    pub fn path(&self) -> &Path {
        self.pool.path()
    }

    /// Runs `f` on a reader connection. Readers see the last committed state.
    /// `f` fails with the caller's own error (a `StoreError`, or one of its own
    /// that says why it refused), so no `Result` is nested in another.
    pub fn read<T, E>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E> {
        f(&self.pool.reader())
    }

    /// Runs `f` on the single writer connection; callers open their own transaction.
    pub fn write<T, E>(&self, f: impl FnOnce(&mut Connection) -> Result<T, E>) -> Result<T, E> {
        f(&mut self.pool.writer())
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::encryption::FileState;
    use crate::migrate::{SCHEMA_VERSION, backup_path, stored_version};

    fn pragma<T: rusqlite::types::FromSql>(db: &Database, name: &str) -> T {
        db.read(|c| c.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0)))
            .unwrap()
    }

    #[test]
    fn migrates_from_empty_with_durable_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/desk.sqlite3");
        let db = Database::open(&path).unwrap();
        assert_eq!(pragma::<u32>(&db, "user_version"), *SCHEMA_VERSION);
        assert_eq!(pragma::<String>(&db, "journal_mode"), "wal");
        assert_eq!(pragma::<i64>(&db, "synchronous"), 2, "FULL");
        assert_eq!(pragma::<i64>(&db, "foreign_keys"), 1);
        assert!(
            !backup_path(&path, 0).exists(),
            "a new file needs no backup"
        );
    }

    #[test]
    fn reopening_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("desk.sqlite3");
        drop(Database::open(&path).unwrap());
        let db = Database::open(&path).unwrap();
        db.write(|c| c.execute("INSERT INTO clinic_settings VALUES ('k', 'v')", []))
            .unwrap();
        drop(db);
        let db = Database::open(&path).unwrap();
        let v: String = db
            .read(|c| {
                c.query_row(
                    "SELECT value FROM clinic_settings WHERE key = 'k'",
                    [],
                    |r| r.get(0),
                )
            })
            .unwrap();
        assert_eq!(v, "v");
        assert!(
            !backup_path(&path, *SCHEMA_VERSION).exists(),
            "nothing migrated, nothing backed up"
        );
    }

    #[rstest]
    #[case(1)]
    #[case(7)]
    fn a_newer_database_is_refused_and_left_untouched(#[case] ahead: u32) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("desk.sqlite3");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE future (x); INSERT INTO future VALUES (1);")
                .unwrap();
            conn.pragma_update(None, "user_version", *SCHEMA_VERSION + ahead)
                .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let err = Database::open(&path).err().expect("refused");
        assert!(
            matches!(err, StoreError::TooNew { found, .. } if found == *SCHEMA_VERSION + ahead),
            "{err}"
        );
        assert!(err.to_string().contains("newer Clinic Desk"));
        assert_eq!(std::fs::read(&path).unwrap(), before, "file unchanged");
        assert!(
            !dir.path().join("desk.sqlite3-wal").exists(),
            "not even switched to WAL"
        );
    }

    #[test]
    fn upgrading_keeps_a_backup_of_the_old_version() {
        const V1: &str = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);";
        const V2: &str = "ALTER TABLE notes ADD COLUMN author TEXT;";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("desk.sqlite3");
        let db = Database::open_with(&path, &[V1], None).unwrap();
        db.write(|c| c.execute("INSERT INTO notes (body) VALUES ('before upgrade')", []))
            .unwrap();
        drop(db);

        let db = Database::open_with(&path, &[V1, V2], None).unwrap();
        assert_eq!(pragma::<u32>(&db, "user_version"), 2);
        let backup = backup_path(&path, 1);
        assert_eq!(stored_version(&backup, None).unwrap(), Some(1));
        let old = Connection::open(&backup).unwrap();
        let body: String = old
            .query_row("SELECT body FROM notes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(body, "before upgrade");
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// SQLCipher's `VACUUM INTO` on a keyed connection writes the backup encrypted
    /// with the same key; backups are owner-only and only the newest two stay.
    #[test]
    fn an_encrypted_store_keeps_its_two_newest_backups_encrypted_and_owner_only() {
        const V: [&str; 4] = [
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
            "ALTER TABLE notes ADD COLUMN a TEXT;",
            "ALTER TABLE notes ADD COLUMN b TEXT;",
            "ALTER TABLE notes ADD COLUMN c TEXT;",
        ];
        const SECRET: &str = "a secret body 欧阳";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("desk.sqlite3");
        let key = StoreKey::generate();
        let db = Database::open_with(&path, &V[..1], Some(&key)).unwrap();
        db.write(|c| c.execute("INSERT INTO notes (body) VALUES (?1)", [SECRET]))
            .unwrap();
        drop(db);
        for n in 2..=V.len() {
            drop(Database::open_with(&path, &V[..n], Some(&key)).unwrap());
        }
        let kept = migrate::backups(&path).unwrap();
        assert_eq!(
            kept.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
            [2, 3],
            "v1 pruned"
        );
        for (_, backup) in &kept {
            let bytes = std::fs::read(backup).unwrap();
            assert_eq!(
                encryption::file_state(backup).unwrap(),
                FileState::Encrypted
            );
            assert!(
                !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                "{} holds plaintext",
                backup.display()
            );
            assert_eq!(mode(backup), 0o600);
            let old = open_connection_keyed(backup, Some(&key)).unwrap();
            let body: String = old
                .query_row("SELECT body FROM notes", [], |r| r.get(0))
                .unwrap();
            assert_eq!(body, SECRET);
            assert!(
                matches!(
                    open_connection_keyed(backup, Some(&StoreKey::generate())),
                    Err(StoreError::WrongKey { .. })
                ),
                "another key reads nothing"
            );
        }
        for f in encryption::database_files(&path)
            .iter()
            .filter(|f| f.exists())
        {
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }
    }

    /// The first encrypted version wrote SQLCipher's default settings (HMAC-SHA512);
    /// such a store and its backups are converted once, whole, to the store's
    /// settings, which the old settings then no longer read.
    #[test]
    fn a_store_written_with_sqlcipher_defaults_is_converted_with_its_backups() {
        const V1: &str = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);";
        const SECRET: &str = "a secret body 欧阳";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("desk.sqlite3");
        let backup = backup_path(&path, 1);
        let key = StoreKey::generate();
        for file in [&path, &backup] {
            let conn = Connection::open(file).unwrap();
            key.apply_as_first_written(&conn).unwrap();
            conn.execute_batch(&format!(
                "PRAGMA journal_mode = WAL; {V1} PRAGMA user_version = 1;"
            ))
            .unwrap();
            conn.execute("INSERT INTO notes (body) VALUES (?1)", [SECRET])
                .unwrap();
            assert!(encryption::keyed_as_first_written(file, &key).unwrap());
        }

        let db = Database::open_with(&path, &[V1], Some(&key)).unwrap();
        let body: String = db
            .read(|c| c.query_row("SELECT body FROM notes", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(body, SECRET);
        drop(db);
        for file in [&path, &backup] {
            assert!(!encryption::keyed_as_first_written(file, &key).unwrap());
            assert_eq!(encryption::file_state(file).unwrap(), FileState::Encrypted);
            let conn = open_connection_keyed(file, Some(&key)).unwrap();
            let body: String = conn
                .query_row("SELECT body FROM notes", [], |r| r.get(0))
                .unwrap();
            assert_eq!(body, SECRET, "{}", file.display());
            let old = Connection::open(file).unwrap();
            key.apply_as_first_written(&old).unwrap();
            assert!(
                matches!(
                    encryption::check_readable(&old, file, Some(&key)),
                    Err(StoreError::WrongKey { .. })
                ),
                "the old settings no longer read {}",
                file.display()
            );
        }
        assert!(!encryption::sibling(&path, ".encrypting").exists());
    }

    #[test]
    fn a_failing_migration_changes_nothing() {
        const V1: &str = "CREATE TABLE notes (id INTEGER PRIMARY KEY);";
        const BAD: &str = "CREATE TABLE half (x); INSERT INTO no_such_table VALUES (1);";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("desk.sqlite3");
        drop(Database::open_with(&path, &[V1], None).unwrap());
        assert!(Database::open_with(&path, &[V1, BAD], None).is_err());
        let conn = Connection::open(&path).unwrap();
        let v: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        let half: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'half'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            (v, half),
            (1, 0),
            "the failed migration was rolled back whole"
        );
    }
}
