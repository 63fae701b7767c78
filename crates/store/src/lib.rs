//! Clinic Desk's local store: one SQLite file per device.
//!
//! The API is synchronous over `&Connection`; async callers run it on a blocking
//! thread. [`Database`] owns one writer and a few readers so a long search never
//! waits behind a sync batch (WAL lets readers and the writer run together); the
//! connections themselves are kept by [`pool::SqlitePool`].

pub mod audit;
pub mod bootstrap;
pub mod column;
mod database;
pub mod demo;
pub mod encryption;
mod error;
pub mod lockout;
pub mod migrate;
pub mod outbox;
mod page_crypto;
pub mod patients;
pub mod pool;
pub mod pull;
pub mod schedule;
pub mod settings;
pub mod staff;
mod standing_sql;
pub mod ward;

pub use database::{Database, open_connection, open_connection_keyed};
pub use encryption::{ENCRYPTED_CACHE_KIB, FileState, StoreKey, file_state};
pub use error::StoreError;
pub use migrate::{SCHEMA_VERSION, migrations_sql};
pub use rusqlite::Connection;
