//! The store's connections: one write connection behind a mutex (SQLite has one
//! writer anyway; holding it ourselves keeps writers from spinning on
//! `SQLITE_BUSY`) and a small pool of read connections, which WAL lets run beside
//! the writer.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

use super::super::StoreError;
use super::{Durability, MIGRATIONS};

/// Read connections kept open; more may be opened under load and are then dropped.
const POOLED_READERS: usize = 8;

pub(super) struct Connections {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl Connections {
    /// Opens the writer with the durable pragmas and migrates the database to the latest schema.
    pub(super) fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Off => "OFF",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        MIGRATIONS.to_latest(&mut conn)?;
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-transaction drops the Transaction, which rolls back: the connection is fine.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn reader(&self) -> Result<Reader<'_>, StoreError> {
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open(&self.path)?;
                c.busy_timeout(Duration::from_secs(5))?;
                c.pragma_update(None, "query_only", "ON")?;
                c
            }
        };
        Ok(Reader {
            pool: self,
            conn: Some(conn),
        })
    }
}

pub(super) struct Reader<'a> {
    pool: &'a Connections,
    conn: Option<Connection>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("present until drop")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut pool = self.pool.readers.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < POOLED_READERS {
                pool.push(conn);
            }
        }
    }
}
