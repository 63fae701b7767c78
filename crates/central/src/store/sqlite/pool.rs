//! The store's connections: one write connection behind a mutex (SQLite has one
//! writer anyway; holding it ourselves keeps writers from spinning on
//! `SQLITE_BUSY`) and an `r2d2` pool of read-only connections, which WAL lets run
//! beside the writer.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use super::super::StoreError;
use super::{Durability, MIGRATIONS};

/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read connections kept open while idle.
const IDLE_READERS: u32 = 8;
/// Read connections at most; a read finding all busy waits for one.
const MAX_READERS: u32 = 64;
/// How long a read waits for a free connection before the store counts as unavailable (503).
const READER_WAIT: Duration = Duration::from_secs(5);
/// Readers above [`IDLE_READERS`] unused this long are closed.
const READER_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) type Reader = r2d2::PooledConnection<SqliteConnectionManager>;

pub(super) struct Connections {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: r2d2::Pool<SqliteConnectionManager>,
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::Unavailable(format!("no SQLite read connection: {e}"))
    }
}

impl Connections {
    /// Opens the writer with the durable pragmas, migrates the database to the latest
    /// schema, then opens the readers.
    pub(super) fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Off => "OFF",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        MIGRATIONS.to_latest(&mut conn)?;
        let manager = SqliteConnectionManager::file(path).with_init(|c| {
            c.busy_timeout(BUSY_TIMEOUT)?;
            c.pragma_update(None, "query_only", "ON")
        });
        let readers = r2d2::Pool::builder()
            .min_idle(Some(IDLE_READERS))
            .max_size(MAX_READERS)
            .connection_timeout(READER_WAIT)
            .idle_timeout(Some(READER_IDLE_TIMEOUT))
            // A local file does not go away between uses: no probe query per checkout.
            .test_on_check_out(false)
            .build(manager)?;
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new(conn),
            readers,
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-transaction drops the Transaction, which rolls back: the connection is fine.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn reader(&self) -> Result<Reader, StoreError> {
        Ok(self.readers.get()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_are_read_only_and_see_the_writers_commits() {
        let dir = tempfile::tempdir().unwrap();
        let c = Connections::open(&dir.path().join("c.db"), Durability::Full).unwrap();
        c.writer()
            .execute("INSERT INTO clinics (id, zone) VALUES ('C1', 'UTC')", [])
            .unwrap();
        let reader = c.reader().unwrap();
        let n: i64 = reader
            .query_row("SELECT count(*) FROM clinics", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        let refused = reader.execute("DELETE FROM clinics", []).unwrap_err();
        assert!(refused.to_string().contains("readonly"), "{refused}");
    }

    #[test]
    fn a_read_waits_for_a_free_reader_then_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let c = Connections::open(&dir.path().join("c.db"), Durability::Full).unwrap();
        let held: Vec<Reader> = (0..MAX_READERS).map(|_| c.reader().unwrap()).collect();
        let started = std::time::Instant::now();
        let Err(StoreError::Unavailable(_)) = c.reader() else {
            panic!("a reader beyond the pool's size");
        };
        assert!(started.elapsed() >= READER_WAIT);
        drop(held);
        c.reader().expect("a reader once one is back");
    }
}
