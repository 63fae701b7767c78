//! Clinic Desk's sync engine, without Tauri.
//!
//! A pain score is saved locally at once ([`clinic_store::outbox::record_report`]);
//! this crate's background task delivers the outbox to the central server whenever
//! it can and pulls the clinic's patients, staff and appointments down so lookup and
//! schedules work offline. See `README.md` for the rules it keeps and why.

mod backoff;
mod bootstrap;
mod client;
mod config;
mod context;
mod engine;
mod error;
mod executor;
mod planner;
pub mod proof;
mod pull;
mod push;
mod status;

pub use backoff::{Backoff, parse_retry_after};
pub use client::{Client, RawFeedPage, Trace};
pub use config::SyncConfig;
pub use engine::{SyncEngine, SyncHandle, SyncRun};
pub use error::{ErrorClass, SyncError};
pub use status::{BootstrapPhase, BootstrapProgress, SyncProblem, SyncProblemKind, SyncStatus};
