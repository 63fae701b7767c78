//! What both stores share: a stored report's row and how it compares with a new
//! one (the duplicate-versus-conflict rule), and the conversions between the wire
//! types and the columns.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use clinic_domain::{Activity, AssessmentDetails, PainScale};
use clinic_protocol::{ReportSubmission, StoredReport};
use uuid::Uuid;

use super::{NewReport, StoreError};

pub(super) fn now_unix() -> i64 {
    Utc::now().timestamp()
}

pub(super) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub(super) fn parse_uuid(raw: &str) -> Result<Uuid, StoreError> {
    Uuid::from_str(raw).map_err(|_| corrupt("report ID is not a UUID"))
}

/// `resolves` as stored: the IDs in the order sent, canonical hyphenated form, joined
/// by `,`; `None` (NULL) when there are none, which is how every report stored
/// before the column existed reads, so an old client's replay stays a duplicate.
pub(super) fn resolves_to_db(ids: &[Uuid]) -> Option<String> {
    if ids.is_empty() {
        return None;
    }
    let mut joined = String::with_capacity(ids.len() * 37);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            joined.push(',');
        }
        joined.push_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()));
    }
    Some(joined)
}

pub(super) fn resolves_from_db(raw: Option<&str>) -> Result<Vec<Uuid>, StoreError> {
    raw.map_or(Ok(Vec::new()), |s| s.split(',').map(parse_uuid).collect())
}

pub(super) fn activity_to_db(a: Activity) -> &'static str {
    a.as_str()
}

pub(super) fn activity_from_db(raw: &str) -> Result<Activity, StoreError> {
    Activity::parse(raw).map_err(corrupt)
}

#[derive(Clone)]
pub(super) struct RawReport {
    pub(super) report_id: String,
    pub(super) patient_id: String,
    pub(super) pain_score: i64,
    pub(super) scale: String,
    pub(super) submit_time: i64,
    pub(super) assessed_at: Option<i64>,
    pub(super) recorded_by: Option<String>,
    pub(super) device_id: Option<String>,
    pub(super) supersedes: Option<String>,
    pub(super) reason: Option<String>,
    pub(super) received_at: i64,
    pub(super) body_site: Option<String>,
    pub(super) activity: Option<String>,
    pub(super) note: Option<String>,
    pub(super) intervention: Option<String>,
    pub(super) follows_up: Option<String>,
    pub(super) resolves: Option<String>,
}

impl RawReport {
    pub(super) fn same_content(&self, r: &NewReport) -> bool {
        self.patient_id == r.patient_id.as_str()
            && self.pain_score == i64::from(r.score.value())
            && self.scale == r.score.scale().as_str()
            && self.submit_time == r.submit_time
            && self.assessed_at == r.assessed_at
            && self.recorded_by == r.recorded_by
            && self.device_id == r.device_id
            && self.supersedes == r.supersedes.map(|u| u.to_string())
            && self.reason == r.reason
            && self.body_site == r.details.body_site
            && self.activity.as_deref() == r.details.activity.map(activity_to_db)
            && self.note == r.details.note
            && self.intervention == r.details.intervention
            && self.follows_up == r.follows_up.map(|u| u.to_string())
            && self.resolves == resolves_to_db(&r.resolves)
    }

    pub(super) fn into_wire(self, duplicate: bool) -> Result<StoredReport, StoreError> {
        Ok(StoredReport {
            submission: ReportSubmission {
                report_id: parse_uuid(&self.report_id)?,
                patient_id: self.patient_id,
                pain_score: self.pain_score,
                submit_time: self.submit_time,
                scale: PainScale::parse(&self.scale).map_err(corrupt)?,
                recorded_by: self.recorded_by,
                device_id: self.device_id,
                supersedes: self.supersedes.as_deref().map(parse_uuid).transpose()?,
                reason: self.reason,
                assessed_at: self.assessed_at,
                details: AssessmentDetails {
                    body_site: self.body_site,
                    activity: self.activity.as_deref().map(activity_from_db).transpose()?,
                    note: self.note,
                    intervention: self.intervention,
                },
                follows_up: self.follows_up.as_deref().map(parse_uuid).transpose()?,
                resolves: resolves_from_db(self.resolves.as_deref())?,
            },
            received_at: self.received_at,
            duplicate,
        })
    }
}

pub(super) fn accepted(r: &NewReport, received_at: i64) -> StoredReport {
    StoredReport {
        submission: ReportSubmission {
            report_id: r.report_id,
            patient_id: r.patient_id.to_string(),
            pain_score: i64::from(r.score.value()),
            submit_time: r.submit_time,
            scale: r.score.scale(),
            recorded_by: r.recorded_by.clone(),
            device_id: r.device_id.clone(),
            supersedes: r.supersedes,
            reason: r.reason.clone(),
            assessed_at: r.assessed_at,
            details: r.details.clone(),
            follows_up: r.follows_up,
            resolves: r.resolves.clone(),
        },
        received_at,
        duplicate: false,
    }
}

pub(super) fn instant(secs: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp(secs, 0).ok_or_else(|| corrupt("timestamp out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_round_trip_in_order_and_none_is_null() {
        assert_eq!(resolves_to_db(&[]), None);
        assert_eq!(resolves_from_db(None).unwrap(), Vec::<Uuid>::new());
        let ids = [Uuid::from_u128(9), Uuid::from_u128(2)];
        let stored = resolves_to_db(&ids).unwrap();
        assert_eq!(
            stored,
            "00000000-0000-0000-0000-000000000009,00000000-0000-0000-0000-000000000002"
        );
        assert_eq!(resolves_from_db(Some(&stored)).unwrap(), ids);
        assert!(resolves_from_db(Some("")).is_err());
    }
}
