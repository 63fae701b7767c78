use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error(
        "the database {path} was written by a newer Clinic Desk (schema {found}, this version knows up to {supported}); it was left untouched"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("could not back up {path} before migrating it: {source}")]
    Backup {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("could not create the data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("migrating the database failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("{0}")]
    InvalidQuery(clinic_domain::DomainError),
    #[error("a stored row is invalid: {0}")]
    CorruptRow(String),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreError {
    /// Lock contention that outlived the busy timeout: the caller may try again.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}
