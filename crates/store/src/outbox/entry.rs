//! The stored report with its delivery state, and how it is read from a row.

use std::borrow::Cow;

use clinic_domain::corrections::Standing;
use clinic_domain::{Activity, AssessmentDetails, PainScale};
use rusqlite::{Row, Statement};

use crate::column::{self, Text, TextForm};
use crate::standing_sql::live;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxState {
    Queued,
    Sending,
    Delivered,
    Rejected,
    /// A rejected report replaced by a correction; kept, no longer waiting.
    Superseded,
    /// Not an outbox state: a report recorded on another device and received from
    /// the server, which has no outbox entry here (it is never sent). Reads give it
    /// to such a report; the outbox table's CHECK never lets it be written.
    Received,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::Sending => "sending",
            OutboxState::Delivered => "delivered",
            OutboxState::Rejected => "rejected",
            OutboxState::Superseded => "superseded",
            OutboxState::Received => "received",
        }
    }
}

impl TextForm for OutboxState {
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.as_str())
    }
    fn from_text(raw: &str) -> Result<Self, String> {
        Ok(match raw {
            "queued" => OutboxState::Queued,
            "sending" => OutboxState::Sending,
            "delivered" => OutboxState::Delivered,
            "rejected" => OutboxState::Rejected,
            "superseded" => OutboxState::Superseded,
            "received" => OutboxState::Received,
            other => return Err(format!("outbox state '{other}'")),
        })
    }
}

column::sql_text!(OutboxState);

/// A stored report with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportEntry {
    pub id: String,
    pub patient_id: String,
    pub scale: PainScale,
    pub score: i64,
    pub assessed_at: i64,
    pub recorded_at: i64,
    pub recorded_by: String,
    pub device_id: String,
    pub state: OutboxState,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub server_report_id: Option<String>,
    pub delivered_at: Option<i64>,
    /// The report this one corrects, and why.
    pub supersedes: Option<String>,
    pub correction_reason: Option<String>,
    pub details: AssessmentDetails,
    pub follows_up: Option<String>,
    pub reassess_due_at: Option<i64>,
    /// The correction that replaced this report, when one did: one that supersedes
    /// it, or else a resolution that names it (the smallest ID when several did).
    pub superseded_by: Option<String>,
    /// A live (neither superseded nor resolved) reassessment that follows this one up.
    pub followed_up_by: Option<String>,
    /// The other corrections this one settles (`resolves`), in ID order.
    pub resolves: Vec<String>,
    /// When the server first stored it (its `receivedAt`), for a report received
    /// from another device; `None` for this device's own.
    pub received_at: Option<i64>,
    /// When this device pulled it; `None` for this device's own.
    pub pulled_at: Option<i64>,
    /// Where it stands in its record (`clinic_domain::corrections`): computed by
    /// the reads from the patient's whole record, `None` on the sender's claims.
    pub standing: Option<Standing<String>>,
}

impl ReportEntry {
    /// Recorded on another device and received from the server.
    pub fn is_received(&self) -> bool {
        self.pulled_at.is_some()
    }
}

/// The report as recorded (`pain_reports r`); [`EntryColumns`] finds these by name.
macro_rules! report_columns {
    () => {
        "r.id, r.patient_id, r.scale, r.score, r.assessed_at, r.recorded_at, r.recorded_by,
         r.device_id, r.supersedes, r.correction_reason, r.body_site, r.activity, r.note,
         r.intervention, r.follows_up, r.reassess_due_at, r.received_at, r.pulled_at,
         (SELECT group_concat(x.resolves, ',') FROM
            (SELECT resolves FROM report_resolutions WHERE report_id = r.id ORDER BY resolves) x)
            AS resolves"
    };
}

/// A report, its outbox entry (`LEFT JOIN outbox o`: a received report has none)
/// and what happened to it since: the correction that replaced it and a live
/// reassessment that followed it up.
pub(super) const ENTRY_COLUMNS: &str = concat!(
    report_columns!(),
    ", coalesce(o.state, 'received') AS state, coalesce(o.attempts, 0) AS attempts, o.last_error,
     o.server_report_id, o.delivered_at,
     coalesce((SELECT min(n.id) FROM pain_reports n WHERE n.supersedes = r.id),
              (SELECT min(x.report_id) FROM report_resolutions x WHERE x.resolves = r.id))
        AS superseded_by,
     (SELECT f.id FROM pain_reports f WHERE f.follows_up IN (r.id, r.supersedes) AND ",
    live!("f"),
    " ORDER BY f.id LIMIT 1)
        AS followed_up_by"
);

/// What sending needs: the report as recorded, and its entry as the claim that
/// reads it leaves it (`claim_batch` sets the same in the same transaction). The
/// sender claims thousands a second, and the two look-ups above would be wasted on it.
pub(super) const CLAIMED_COLUMNS: &str = concat!(
    report_columns!(),
    ", 'sending' AS state, o.attempts + 1 AS attempts, o.last_error, o.server_report_id,
     o.delivered_at, NULL AS superseded_by, NULL AS followed_up_by"
);

/// Where each column of an entry sits in a statement's result, looked up by name
/// once per statement. rusqlite finds a column by name by walking the columns, so
/// by-name reads on every row cost the sender more than the rest of a claim.
macro_rules! entry_columns {
    ($($column:ident),* $(,)?) => {
        pub(super) struct EntryColumns {
            $($column: usize),*
        }

        impl EntryColumns {
            pub(super) fn of(stmt: &Statement<'_>) -> rusqlite::Result<Self> {
                Ok(Self {
                    $($column: stmt.column_index(stringify!($column))?),*
                })
            }
        }
    };
}

entry_columns!(
    id,
    patient_id,
    scale,
    score,
    assessed_at,
    recorded_at,
    recorded_by,
    device_id,
    state,
    attempts,
    last_error,
    server_report_id,
    delivered_at,
    supersedes,
    correction_reason,
    body_site,
    activity,
    note,
    intervention,
    follows_up,
    reassess_due_at,
    superseded_by,
    followed_up_by,
    resolves,
    received_at,
    pulled_at,
);

impl EntryColumns {
    pub(super) fn read(&self, r: &Row<'_>) -> rusqlite::Result<ReportEntry> {
        Ok(ReportEntry {
            id: r.get(self.id)?,
            patient_id: r.get(self.patient_id)?,
            scale: r.get::<_, Text<PainScale>>(self.scale)?.0,
            score: r.get(self.score)?,
            assessed_at: r.get(self.assessed_at)?,
            recorded_at: r.get(self.recorded_at)?,
            recorded_by: r.get(self.recorded_by)?,
            device_id: r.get(self.device_id)?,
            state: r.get(self.state)?,
            attempts: r.get(self.attempts)?,
            last_error: r.get(self.last_error)?,
            server_report_id: r.get(self.server_report_id)?,
            delivered_at: r.get(self.delivered_at)?,
            supersedes: r.get(self.supersedes)?,
            correction_reason: r.get(self.correction_reason)?,
            details: AssessmentDetails {
                body_site: r.get(self.body_site)?,
                activity: r
                    .get::<_, Option<Text<Activity>>>(self.activity)?
                    .map(|a| a.0),
                note: r.get(self.note)?,
                intervention: r.get(self.intervention)?,
            },
            follows_up: r.get(self.follows_up)?,
            reassess_due_at: r.get(self.reassess_due_at)?,
            superseded_by: r.get(self.superseded_by)?,
            followed_up_by: r.get(self.followed_up_by)?,
            resolves: split_ids(r.get(self.resolves)?),
            received_at: r.get(self.received_at)?,
            pulled_at: r.get(self.pulled_at)?,
            standing: None,
        })
    }
}

/// A `group_concat` of report IDs (UUIDs: no commas) back into a list.
pub(super) fn split_ids(joined: Option<String>) -> Vec<String> {
    joined
        .map(|j| j.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}
