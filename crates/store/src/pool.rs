//! One SQLite file shared by threads: a single writer connection and a pool of
//! readers, which WAL lets run beside the writer.
//!
//! SQLite has one writer per file whatever the application does, so the writer is
//! one connection behind a mutex: writers queue here instead of spinning on
//! `SQLITE_BUSY`. Readers come from `r2d2` (with `r2d2_sqlite`), so a long search
//! never waits behind a sync batch and no reader is handed to two threads.
//!
//! Nothing here knows a schema: the caller opens and prepares (migrates) the
//! writer, then [`SqlitePool::new`] opens the readers with the caller's pragmas.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use thiserror::Error;

/// The readers could not be opened.
#[derive(Debug, Error)]
#[error("could not open the database's reader connections: {0}")]
pub struct PoolError(#[from] r2d2::Error);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    pub readers: u32,
    /// How long opening the readers may take, and how long a caller waits for a
    /// free reader before a warning is logged; it then goes on waiting, as callers
    /// of the writer do. A reader is busy for one query's time, so a wait this long
    /// means something is stuck.
    pub reader_wait: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            readers: 3,
            reader_wait: Duration::from_secs(60),
        }
    }
}

/// A reader on loan; it goes back to the pool when dropped.
pub type Reader = r2d2::PooledConnection<SqliteConnectionManager>;

pub struct SqlitePool {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: r2d2::Pool<SqliteConnectionManager>,
}

impl SqlitePool {
    /// Wraps `writer` (already open on `path`, and migrated) and opens
    /// `options.readers` readers on `path`, each set up by `init` (its pragmas).
    pub fn new(
        path: &Path,
        writer: Connection,
        options: PoolOptions,
        init: impl Fn(&mut Connection) -> rusqlite::Result<()> + Send + Sync + 'static,
    ) -> Result<Self, PoolError> {
        let manager = SqliteConnectionManager::file(path).with_init(init);
        let readers = r2d2::Pool::builder()
            .max_size(options.readers)
            .min_idle(Some(options.readers))
            .connection_timeout(options.reader_wait)
            // Local files: a connection does not go stale, and reopening one would
            // only throw away its prepared statements.
            .test_on_check_out(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .build(manager)?;
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A reader: it sees the last committed state. Waits while all are busy.
    pub fn reader(&self) -> Reader {
        loop {
            match self.readers.get() {
                Ok(conn) => return conn,
                Err(e) => {
                    tracing::warn!(error = %e, path = %self.path.display(), "every database reader is still busy; waiting on")
                }
            }
        }
    }

    /// The single writer; callers open their own transaction. A panic while holding
    /// it leaves no half-done transaction (rusqlite rolls back on drop), so a
    /// poisoned lock is safe to keep using.
    pub fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, mpsc};

    use super::*;

    fn pool(dir: &Path, readers: u32, reader_wait: Duration) -> SqlitePool {
        let path = dir.join("pool.sqlite3");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER);")
            .unwrap();
        SqlitePool::new(
            &path,
            writer,
            PoolOptions {
                readers,
                reader_wait,
            },
            |c| c.pragma_update(None, "query_only", "ON"),
        )
        .unwrap()
    }

    #[test]
    fn readers_are_set_up_by_init_and_see_committed_writes() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(dir.path(), 2, Duration::from_secs(5));
        pool.writer()
            .execute("INSERT INTO t VALUES (1)", [])
            .unwrap();
        let reader = pool.reader();
        let n: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        assert!(
            reader.execute("INSERT INTO t VALUES (2)", []).is_err(),
            "init made it read-only"
        );
    }

    #[test]
    fn a_reader_is_lent_to_one_caller_at_a_time_and_the_next_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Arc::new(pool(dir.path(), 2, Duration::from_millis(50)));
        let (a, b) = (pool.reader(), pool.reader());
        let (sent, third) = mpsc::channel();
        let waiting = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let c = pool.reader();
                sent.send(()).unwrap();
                c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).unwrap()
            })
        };
        assert!(
            third.recv_timeout(Duration::from_millis(300)).is_err(),
            "both lent: the third caller waits, past several warnings"
        );
        drop(a);
        third
            .recv_timeout(Duration::from_secs(5))
            .expect("the returned reader went to the waiting caller");
        assert_eq!(waiting.join().unwrap(), 1);
        drop(b);
    }
}
