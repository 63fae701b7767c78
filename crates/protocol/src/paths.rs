//! Route paths, each defined once: the central server routes them and the sync
//! client calls them. A path ending in `/` is a prefix that takes one segment,
//! the record's ID (or a feed's kind). Feeds take a [`FeedQuery`](crate::FeedQuery)
//! as query string.

/// The feeds' prefix, as a macro so the feed paths below are built from the one literal.
macro_rules! feeds {
    () => {
        "/v1/feeds/"
    };
}

/// Hospital contract (and our idempotent extension).
pub const REPORTS: &str = "/v1/reports";
pub const REPORTS_BATCH: &str = "/v1/reports/batch";
/// Hospital contract: append the patient ID.
pub const PATIENT_SUMMARY: &str = "/api/v1/patients/";
/// Append the feed's kind: one of the four paths below.
pub const FEEDS: &str = feeds!();
pub const FEED_PATIENTS: &str = concat!(feeds!(), "patients");
pub const FEED_STAFF: &str = concat!(feeds!(), "staff");
pub const FEED_APPOINTMENTS: &str = concat!(feeds!(), "appointments");
/// Every report of the clinic, as `FeedPage<StoredReport>`; reports are never deleted.
pub const FEED_REPORTS: &str = concat!(feeds!(), "reports");
/// The long poll that wakes a device's pull ([`ChangesQuery`](crate::ChangesQuery)).
pub const CHANGES: &str = "/v1/changes";
/// The clinic's live records at one change number, streamed as newline-delimited
/// [`SnapshotLine`](crate::SnapshotLine)s: what a new device loads before the feeds.
pub const SNAPSHOT: &str = "/v1/snapshot";
/// Record upserts and deletes: append the record's ID.
pub const PATIENTS: &str = "/v1/patients/";
pub const APPOINTMENTS: &str = "/v1/appointments/";
pub const STAFF: &str = "/v1/staff/";
/// Unauthenticated: a one-time enrolment code for a device token
/// ([`EnrolRequest`](crate::EnrolRequest)).
pub const ENROL: &str = "/v1/enrol";
/// `DELETE`: revokes the token the request carries, and only it. A device that was
/// given a token it will not keep (its set-up failed after the enrolment) gives it
/// back, so no live credential is left that nobody holds.
pub const OWN_TOKEN: &str = "/v1/tokens/self";
pub const HEALTH: &str = "/healthz";
pub const METRICS: &str = "/metrics";
