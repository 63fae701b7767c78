//! Pain reports and their outbox: what the sync engine must deliver, and where each
//! report stands (queued, sending, delivered, rejected).
//!
//! A report and its outbox entry are written in one transaction, with a UUIDv7 made
//! there and never regenerated: that ID is the server's idempotency key, so every
//! retry (after a timeout, a crash, a lost answer) is the same report.
//!
//! `record` writes reports (new ones and corrections), `claim` moves entries
//! through their delivery states for the sender, `read` answers what is stored;
//! `entry` is the row they all read.

mod claim;
mod entry;
mod read;
mod record;

pub use claim::{
    claim_batch, mark_delivered, mark_rejected, release, requeue_in_flight, requeue_rejected,
};
pub use entry::{OutboxState, ReportEntry};
pub use read::{
    OutboxCounts, all, counts, for_patient, get, in_state, links, patient_has_pending,
    pending_reassessments, record_links, standings,
};
pub use record::{NewReport, correct, record_report, resolve};
pub(crate) use record::{Receipt, insert_resolutions, insert_row, note_conflict};

#[cfg(test)]
mod tests;
