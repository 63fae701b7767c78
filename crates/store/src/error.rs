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
    #[error(
        "the local database {path} is encrypted and this device has no key for it (a data directory copied without its key, or a lost key); it was left untouched"
    )]
    Encrypted { path: PathBuf },
    #[error(
        "the local database {path} cannot be opened with this device's key (a data directory from another device or account, or a replaced key); it was left untouched"
    )]
    WrongKey { path: PathBuf },
    #[error(
        "could not encrypt the plaintext database {path}: {reason}; the plaintext was left in place"
    )]
    Encrypt { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
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
    Pool(#[from] crate::pool::PoolError),
    #[error(transparent)]
    Sqlite(rusqlite::Error),
}

/// A value a column's type cannot become (a stored enum's unknown text, say) is a
/// stored row that is invalid, whichever query read it; the rest is SQLite's.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::FromSqlConversionFailure(_, _, cause) => {
                StoreError::CorruptRow(cause.to_string())
            }
            other => StoreError::Sqlite(other),
        }
    }
}
