//! The JSON that Clinic Desk's sync client and the central server exchange.
//!
//! Serde types, camelCase on the wire, so both sides (and the hospital's
//! original API, which this extends) agree on one definition. A report's scale,
//! activity and details are `clinic_domain`'s types, with the domain's limits. Optional extension
//! fields default, so a client that only knows the hospital's four-field report
//! still speaks this protocol, and unknown fields are ignored so an older server
//! accepts a newer client's report.
//!
//! [`paths`] holds every route path and [`trace`] the W3C `traceparent` header,
//! so the server and the client define neither twice; [`transport`] the rule for
//! which server URLs the app may use and (feature `client`) its one HTTP client builder.

use chrono::{DateTime, NaiveDate, Utc};
use clinic_domain::{AssessmentDetails, PainScale};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub mod paths;
pub mod trace;
pub mod transport;

/// Header set to `true` on a `POST /v1/reports` answer when the report had
/// already been stored under the same ID with the same content: the answer stays
/// 200 (the hospital contract knows no other success), and the body's
/// `duplicate` field says the same.
pub const DUPLICATE_HEADER: &str = "idempotent-replayed";

/// Most reports one `POST /v1/reports/batch` may carry; more is a 413.
pub const MAX_BATCH_REPORTS: usize = 1_000;

/// Largest page a feed returns, whatever `limit` asks for.
pub const MAX_FEED_LIMIT: u32 = 1_000;
pub const DEFAULT_FEED_LIMIT: u32 = 500;

/// The error body of every 4xx/5xx answer: `{"error": "..."}`, and for the
/// refusals a client acts on, a stable `code` from [`error_code`] beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl ErrorBody {
    /// A body with a message and no code.
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            code: None,
        }
    }
}

/// The `code` of an [`ErrorBody`] a client may act on. Append only.
pub mod error_code {
    /// 403: the token is valid but its scope does not allow this route (a device
    /// token on a route that changes the clinic's records).
    pub const ADMIN_SCOPE_REQUIRED: &str = "admin_scope_required";
    /// 403 from `POST /v1/enrol`: the enrolment code is unknown, used, expired or
    /// another clinic's. The message says which.
    pub const ENROLMENT_CODE_REFUSED: &str = "enrolment_code_refused";
}

/// Body of `POST /v1/enrol`: a device trades a one-time enrolment code (made by
/// `clinic-central enrol-code`) for its own device token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrolRequest {
    /// The enrolment code as printed (dashes, spaces and case do not matter).
    pub code: String,
    /// The clinic the device is installed for: a code of another clinic is refused.
    pub clinic_id: String,
    /// What the device calls itself (its host name), shown in the token list when
    /// the code carries no label of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// Answer to `POST /v1/enrol`: the device's own token, shown this once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrolResponse {
    pub clinic_id: String,
    /// `tok_…`: what the clinic's administrator revokes this device by.
    pub token_id: String,
    /// `cct_…`: the bearer token; only its hash is kept by the server.
    pub token: String,
    /// Always `device`: able to push reports and read the clinic's feeds, nothing else.
    pub scope: String,
}

// Codes and tokens must not reach a log or a panic message through `{:?}`.
impl std::fmt::Debug for EnrolRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolRequest")
            .field("code", &"<redacted>")
            .field("clinic_id", &self.clinic_id)
            .field("label", &self.label)
            .finish()
    }
}
impl std::fmt::Debug for EnrolResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolResponse")
            .field("clinic_id", &self.clinic_id)
            .field("token_id", &self.token_id)
            .field("token", &"<redacted>")
            .field("scope", &self.scope)
            .finish()
    }
}

/// A pain report as the app sends it (`POST /v1/reports`, one item of a batch).
///
/// The first four fields are the hospital contract; the rest are our extensions.
/// `reportId` is the idempotency key: the same ID sent again with the same
/// content is a duplicate, with other content a conflict. The score's scale and
/// the details are the domain's own types (`clinic_domain`), which also hold their
/// limits and checks; this type is what arrives, before those checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportSubmission {
    pub report_id: Uuid,
    pub patient_id: String,
    pub pain_score: i64,
    /// Unix seconds, when the app submitted (queued) the report.
    pub submit_time: i64,
    /// The hospital contract has no scale: its scores are NRS.
    #[serde(default = "hospital_scale")]
    pub scale: PainScale,
    /// Staff ID of the nurse or doctor who assessed the patient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// The `reportId` of an earlier report this one corrects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<Uuid>,
    /// Why the earlier report was corrected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Unix seconds, when the patient was assessed (may precede `submitTime` by hours offline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessed_at: Option<i64>,
    /// What a nurse may add to a score; all optional, all our extension (flattened
    /// into the report, so the wire stays one flat camelCase object).
    #[serde(flatten)]
    pub details: AssessmentDetails,
    /// The `reportId` of the assessment (with an intervention) this one reassesses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follows_up: Option<Uuid>,
    /// A correction that settles concurrent corrections: it supersedes one of
    /// them (`supersedes`) and names here the others it replaces as well
    /// (`clinic_domain::assessment::check_resolves`; ARCHITECTURE.md, "Concurrent
    /// corrections"). Empty, and absent on the wire, for every other report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolves: Vec<Uuid>,
}

fn hospital_scale() -> PainScale {
    PainScale::Nrs
}

/// A report as the server stored it: the answer to `POST /v1/reports`. The
/// submission's fields (defaulting when absent, so the app can parse the original
/// server's answer with the same type) and what the server adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredReport {
    #[serde(flatten)]
    pub submission: ReportSubmission,
    /// Unix seconds, when the server first committed the report (0 from a server that does not say).
    #[serde(default)]
    pub received_at: i64,
    /// True when this answer is a replay: the report was already stored and nothing new was written.
    #[serde(default)]
    pub duplicate: bool,
}

/// `POST /v1/reports/batch`. The server parses each item on its own, so a
/// client may send items this type would refuse and still get per-item answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRequest {
    pub reports: Vec<ReportSubmission>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchItemStatus {
    /// Newly stored (committed durably before the answer was sent).
    Accepted,
    /// Already stored with the same content; nothing new written. Treat as delivered.
    Duplicate,
    /// Not stored: invalid, or the ID is taken by a report with other content.
    /// Resending the same item will not help; `reason` says why.
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemResult {
    /// The item's `reportId` as sent, or null when it had none readable.
    pub report_id: Option<String>,
    pub status: BatchItemStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Answer to a batch: one result per item, in the request's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub results: Vec<BatchItemResult>,
}

/// `GET /api/v1/patients/{patientId}` (hospital contract). `age` is in completed
/// years on today's date in the clinic's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatientSummary {
    pub id: String,
    pub name: String,
    pub age: u32,
    pub is_insured: bool,
}

/// Query of `GET /v1/feeds/{patients|staff|appointments|reports}?after=<cursor>&limit=<n>`.
/// Start with `after=0`; then pass the previous page's `nextCursor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedQuery {
    #[serde(default)]
    pub after: i64,
    #[serde(default = "default_limit")]
    pub limit: u32,
}

fn default_limit() -> u32 {
    DEFAULT_FEED_LIMIT
}

impl Default for FeedQuery {
    fn default() -> Self {
        Self {
            after: 0,
            limit: DEFAULT_FEED_LIMIT,
        }
    }
}

/// One change in a feed. `seq` is the clinic's change sequence number, assigned
/// in the write's own transaction, so every later change has a larger one.
/// A deleted record comes as a tombstone: `deleted: true` and no `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedItem<T> {
    pub seq: i64,
    pub id: String,
    #[serde(default)]
    pub deleted: bool,
    // No `default`: serde would then demand `T: Default`; a missing Option is None anyway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
}

/// A page of a feed: items in increasing `seq`. Ask again with
/// `after=nextCursor` while `hasMore`; when it is false the copy is up to date
/// (until the next change). `nextCursor` equals `after` on an empty page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedPage<T> {
    pub items: Vec<FeedItem<T>>,
    pub next_cursor: i64,
    pub has_more: bool,
}

/// `"female" | "male" | "unknown"`, as `clinic_domain::Sex`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatientRecord {
    pub name: String,
    pub sex: String,
    pub birth_date: NaiveDate,
    pub is_insured: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// `"doctor" | "nurse" | "clerk"`, as `clinic_domain::StaffRole`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaffRecord {
    pub name: String,
    pub role: String,
    pub department: String,
    /// An inactive member keeps their ID in old reports but may no longer sign in.
    pub active: bool,
    /// PHC string of the sign-in PIN, `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`;
    /// verify with any argon2 PHC verifier. Never the PIN itself.
    pub pin_verifier: String,
}

/// Status names as `clinic_domain::AppointmentStatus`: `booked`, `checked_in`,
/// `completed`, `cancelled`, `no_show`. A cancellation is a status, not a tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppointmentRecord {
    pub doctor_id: String,
    pub patient_id: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub status: String,
}

/// Body of `PUT /v1/patients/{id}`.
pub type PatientUpsert = PatientRecord;

/// Body of `PUT /v1/appointments/{id}`; cancel by sending `"status": "cancelled"`.
pub type AppointmentUpsert = AppointmentRecord;

/// Body of `PUT /v1/staff/{id}`. `pin` is hashed by the server and never stored;
/// without it an existing member keeps their verifier (a new member needs one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaffUpsert {
    pub name: String,
    pub role: String,
    pub department: String,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

fn yes() -> bool {
    true
}

/// Query of `GET /v1/changes?after=<changeSeq>&waitSeconds=<n>`: a long poll that
/// answers as soon as the clinic's change counter (the `seq` every feed item
/// carries) is past `after`, or when the wait ends with the counter unchanged.
/// A device passes the largest cursor it holds and pulls when the answer is
/// larger. A server without this route (the hospital's original API) answers
/// 404, and the device keeps its ticker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangesQuery {
    #[serde(default)]
    pub after: i64,
    #[serde(default = "default_wait_seconds")]
    pub wait_seconds: u32,
}

/// Longest wait `GET /v1/changes` holds, whatever `waitSeconds` asks for; short
/// enough that proxies with a one-minute idle timeout do not cut it.
pub const MAX_CHANGES_WAIT_SECONDS: u32 = 50;
pub const DEFAULT_CHANGES_WAIT_SECONDS: u32 = 25;

fn default_wait_seconds() -> u32 {
    DEFAULT_CHANGES_WAIT_SECONDS
}

/// Answer to `GET /v1/changes`: the clinic's change counter now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Changes {
    pub change_seq: i64,
}

/// Answer to a `PUT`/`DELETE` on a record: the change's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeAck {
    pub seq: i64,
}

/// What one line of `GET /v1/snapshot` is. The body is newline-delimited JSON
/// (`application/x-ndjson`), one [`SnapshotLine`] a line: first `begin` (the
/// change number the snapshot was taken at, and how many records follow of each
/// stream), then the clinic's live records stream by stream in this order (staff,
/// patients, appointments, reports; each stream in change-number order), each as
/// the [`FeedItem`] its feed would send, then `end` with the number of records
/// sent. A body without its `end` line broke off and is not a snapshot. A device
/// that loaded one continues every feed from `begin`'s cursor: everything changed
/// after it has a larger number and comes through the feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SnapshotKind {
    Begin,
    Staff,
    Patients,
    Appointments,
    Reports,
    End,
}

/// How many records of each stream a snapshot carries (its `begin` line), so a
/// device can say how far its load is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotCounts {
    pub staff: u64,
    pub patients: u64,
    pub appointments: u64,
    pub reports: u64,
}

impl SnapshotCounts {
    pub fn total(&self) -> u64 {
        self.staff + self.patients + self.appointments + self.reports
    }
}

/// One line of a snapshot (see [`SnapshotKind`]): `begin` has `cursor` and
/// `counts`, a record line its `item`, `end` its `rows`. `I` is a
/// `FeedItem<Record>` when written, and may be read as a raw value so one record
/// a device cannot read is set aside alone, as from a feed page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotLine<I> {
    pub kind: SnapshotKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<SnapshotCounts>,
    // No `default`: serde would then demand `I: Default`; a missing Option is None anyway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<I>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

impl<I> SnapshotLine<I> {
    pub fn begin(cursor: i64, counts: SnapshotCounts) -> Self {
        Self {
            kind: SnapshotKind::Begin,
            cursor: Some(cursor),
            counts: Some(counts),
            item: None,
            rows: None,
        }
    }

    pub fn item(kind: SnapshotKind, item: I) -> Self {
        Self {
            kind,
            cursor: None,
            counts: None,
            item: Some(item),
            rows: None,
        }
    }

    pub fn end(rows: u64) -> Self {
        Self {
            kind: SnapshotKind::End,
            cursor: None,
            counts: None,
            item: None,
            rows: Some(rows),
        }
    }
}

/// The media type of a snapshot's body.
pub const SNAPSHOT_CONTENT_TYPE: &str = "application/x-ndjson";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hospitals_four_field_report_still_parses() {
        let r: ReportSubmission = serde_json::from_str(
            r#"{"reportId":"0190f7a4-1c2b-7d3e-8f00-000000000001","patientId":"P0000001","painScore":7,"submitTime":1764300000}"#,
        )
        .unwrap();
        assert_eq!(r.scale, PainScale::Nrs);
        assert_eq!(r.recorded_by, None);
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["painScore"], 7);
        assert!(back.get("recordedBy").is_none());
    }

    #[test]
    fn the_original_servers_answer_parses_as_a_stored_report() {
        let r: StoredReport = serde_json::from_str(
            r#"{"reportId":"0190f7a4-1c2b-7d3e-8f00-000000000001","patientId":"P1","painScore":7,"submitTime":1}"#,
        )
        .unwrap();
        assert!(!r.duplicate);
        assert_eq!((r.submission.scale, r.received_at), (PainScale::Nrs, 0));
    }

    /// Every field set, in the order the app has always sent them: the bytes a
    /// server (and a stored report's idempotency content) sees must not move.
    #[test]
    fn a_full_report_keeps_its_wire_bytes() {
        let submission = ReportSubmission {
            report_id: Uuid::from_u128(1),
            patient_id: "P1".into(),
            pain_score: 6,
            submit_time: 1_764_300_000,
            scale: PainScale::WongBakerFaces,
            recorded_by: Some("N001".into()),
            device_id: Some("dev".into()),
            supersedes: Some(Uuid::from_u128(2)),
            reason: Some("typo".into()),
            assessed_at: Some(1_764_299_000),
            details: AssessmentDetails {
                body_site: Some("左膝".into()),
                activity: Some(clinic_domain::Activity::Movement),
                note: Some("a\nb".into()),
                intervention: Some("ice".into()),
            },
            follows_up: Some(Uuid::from_u128(3)),
            resolves: Vec::new(),
        };
        let sent = r#"{"reportId":"00000000-0000-0000-0000-000000000001","patientId":"P1","painScore":6,"submitTime":1764300000,"scale":"wong_baker_faces","recordedBy":"N001","deviceId":"dev","supersedes":"00000000-0000-0000-0000-000000000002","reason":"typo","assessedAt":1764299000,"bodySite":"左膝","activity":"movement","note":"a\nb","intervention":"ice","followsUp":"00000000-0000-0000-0000-000000000003"}"#;
        assert_eq!(serde_json::to_string(&submission).unwrap(), sent);
        assert_eq!(
            serde_json::from_str::<ReportSubmission>(sent).unwrap(),
            submission
        );
        let stored = StoredReport {
            submission,
            received_at: 1_764_300_001,
            duplicate: true,
        };
        let answer = format!(
            "{},\"receivedAt\":1764300001,\"duplicate\":true}}",
            &sent[..sent.len() - 1]
        );
        assert_eq!(serde_json::to_string(&stored).unwrap(), answer);
        assert_eq!(
            serde_json::from_str::<StoredReport>(&answer).unwrap(),
            stored
        );
        let bare = r#"{"reportId":"00000000-0000-0000-0000-000000000001","patientId":"P1","painScore":6,"submitTime":1764300000,"scale":"nrs"}"#;
        let parsed: ReportSubmission = serde_json::from_str(bare).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), bare);
    }

    #[test]
    fn feed_pages_are_camel_case() {
        let page = FeedPage {
            items: vec![FeedItem::<PatientRecord> {
                seq: 3,
                id: "P1".into(),
                deleted: true,
                data: None,
            }],
            next_cursor: 3,
            has_more: false,
        };
        let v = serde_json::to_value(&page).unwrap();
        assert_eq!(v["nextCursor"], 3);
        assert_eq!(v["hasMore"], false);
        assert_eq!(v["items"][0]["deleted"], true);
        assert!(v["items"][0].get("data").is_none());
    }

    #[test]
    fn batch_statuses_are_snake_case() {
        let v = serde_json::to_value(BatchItemResult {
            report_id: None,
            status: BatchItemStatus::Duplicate,
            reason: None,
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"reportId": null, "status": "duplicate"})
        );
    }
}
