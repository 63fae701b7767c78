use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::StoreError;
use crate::migrate;
use crate::pool::{PoolOptions, SqlitePool};

/// How long a statement waits for another connection's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a connection with the pragmas every connection needs. `synchronous=FULL`:
/// in WAL mode NORMAL can lose the last commits on power loss, and a lost pain score
/// is worse than the fraction of a millisecond FULL costs per commit.
pub fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    set_pragmas(&conn)?;
    Ok(conn)
}

fn set_pragmas(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")
}

/// The device's database: one writer, three readers.
pub struct Database {
    pool: SqlitePool,
}

impl Database {
    /// Opens (creating if need be) and migrates the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Self::open_with(path, migrate::migrations_sql())?;
        db.write(crate::patients::ensure_search_index)?;
        Ok(db)
    }

    pub(crate) fn open_with(path: &Path, sql: &[&'static str]) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        migrate::refuse_newer(path, sql)?;
        let mut writer = open_connection(path)?;
        migrate::migrate(&mut writer, path, sql)?;
        // Readers open only now, on the migrated schema.
        let pool = SqlitePool::new(path, writer, PoolOptions::default(), |c| set_pragmas(c))?;
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
        let db = Database::open_with(&path, &[V1]).unwrap();
        db.write(|c| c.execute("INSERT INTO notes (body) VALUES ('before upgrade')", []))
            .unwrap();
        drop(db);

        let db = Database::open_with(&path, &[V1, V2]).unwrap();
        assert_eq!(pragma::<u32>(&db, "user_version"), 2);
        let backup = backup_path(&path, 1);
        assert_eq!(stored_version(&backup).unwrap(), Some(1));
        let old = Connection::open(&backup).unwrap();
        let body: String = old
            .query_row("SELECT body FROM notes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(body, "before upgrade");
    }

    #[test]
    fn a_failing_migration_changes_nothing() {
        const V1: &str = "CREATE TABLE notes (id INTEGER PRIMARY KEY);";
        const BAD: &str = "CREATE TABLE half (x); INSERT INTO no_such_table VALUES (1);";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("desk.sqlite3");
        drop(Database::open_with(&path, &[V1]).unwrap());
        assert!(Database::open_with(&path, &[V1, BAD]).is_err());
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
