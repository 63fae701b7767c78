//! The bedside rules for a pain assessment beyond its score: when it may be dated,
//! what may be added to it, how it is corrected, and when a reassessment is due.
//!
//! Pure functions over plain values so every rule has a table of cases; the store
//! and the app call these and never re-implement them.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::DomainError;

/// A device clock a little ahead of the nurse's watch must not refuse a score.
pub const FUTURE_TOLERANCE: Duration = Duration::minutes(2);
/// How far back an assessment may be dated unless the clinic says otherwise: a
/// nurse catching up on a shift's notes, not a week later.
pub const DEFAULT_BACKDATE_WINDOW_MINUTES: u32 = 12 * 60;
/// Common after an analgesic (field notes: "reassess within 60 minutes").
pub const DEFAULT_REASSESS_INTERVAL_MINUTES: u32 = 60;
/// A signed-in nurse who has not touched the app for this long must enter her PIN again.
pub const DEFAULT_LOCK_AFTER_MINUTES: u32 = 5;

pub const MAX_BODY_SITE_CHARS: usize = 40;
pub const MAX_NOTE_CHARS: usize = 500;
pub const MAX_INTERVENTION_CHARS: usize = 200;
pub const MAX_REASON_CHARS: usize = 200;

/// The clinic's limits on when an assessment may be dated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    pub backdate: Duration,
}

impl TimeWindow {
    pub fn minutes(backdate_minutes: u32) -> Self {
        Self {
            backdate: Duration::minutes(i64::from(backdate_minutes)),
        }
    }

    /// `None` (the usual case) is now. A time in the future or earlier than the
    /// window allows is refused, whichever zone the caller wrote it in.
    pub fn assessment_time(
        self,
        requested: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, DomainError> {
        let Some(at) = requested else { return Ok(now) };
        if at > now + FUTURE_TOLERANCE {
            return Err(DomainError::AssessmentInFuture);
        }
        if at < now - self.backdate {
            return Err(DomainError::AssessmentTooOld {
                window_minutes: self.backdate.num_minutes(),
            });
        }
        Ok(at)
    }
}

/// Pain at rest or on movement (coughing, turning, walking): recorded apart
/// because it is movement pain that keeps a patient from recovering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    Rest,
    Movement,
}

impl Activity {
    pub fn as_str(self) -> &'static str {
        match self {
            Activity::Rest => "rest",
            Activity::Movement => "movement",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "rest" => Ok(Activity::Rest),
            "movement" => Ok(Activity::Movement),
            other => Err(DomainError::UnknownActivity(other.to_owned())),
        }
    }
}

/// One free-text part of a report: its name in messages, its name on the wire,
/// its length in characters, and whether it may have line breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRule {
    pub field: &'static str,
    pub wire: &'static str,
    pub max: usize,
    pub multiline: bool,
}

pub const BODY_SITE: TextRule = TextRule {
    field: "body site",
    wire: "bodySite",
    max: MAX_BODY_SITE_CHARS,
    multiline: false,
};
/// A note keeps its line breaks (as `\n`, which is what a text area gives).
pub const NOTE: TextRule = TextRule {
    field: "note",
    wire: "note",
    max: MAX_NOTE_CHARS,
    multiline: true,
};
pub const INTERVENTION: TextRule = TextRule {
    field: "intervention",
    wire: "intervention",
    max: MAX_INTERVENTION_CHARS,
    multiline: false,
};
/// The free-text details, in wire order.
pub const DETAIL_TEXT: [TextRule; 3] = [BODY_SITE, NOTE, INTERVENTION];
pub const REASON: TextRule = TextRule {
    field: "reason",
    wire: "reason",
    max: MAX_REASON_CHARS,
    multiline: false,
};

impl TextRule {
    /// Text a person typed: trimmed, blank is absent.
    pub fn entered(self, raw: Option<&str>) -> Result<Option<String>, DomainError> {
        free_text(self.field, raw, self.max, self.multiline)
    }

    /// Text another system sent: blank is absent, anything else is kept exactly as
    /// sent (it is part of a report's idempotency content) and refused by the same
    /// rule as typed text. Errors name the field as the wire does.
    pub fn received(self, raw: Option<String>) -> Result<Option<String>, DomainError> {
        let Some(text) = raw.filter(|t| !t.trim().is_empty()) else {
            return Ok(None);
        };
        crate::text::check_text(self.wire, &text, self.max, self.multiline)?;
        Ok(Some(text))
    }
}

/// The optional parts of an assessment, checked: within their lengths, no control
/// or invisible characters (a note may have line breaks), blank is absent. On the
/// wire they are flat camelCase fields of the report; a deserialised value is
/// checked with [`AssessmentDetails::received`] before it is used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssessmentDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_site: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<Activity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What was given or done for the pain; a reassessment falls due after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervention: Option<String>,
}

impl AssessmentDetails {
    /// What a nurse typed: trimmed, then checked.
    pub fn new(
        body_site: Option<&str>,
        activity: Option<&str>,
        note: Option<&str>,
        intervention: Option<&str>,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            body_site: BODY_SITE.entered(body_site)?,
            activity: activity
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(Activity::parse)
                .transpose()?,
            note: NOTE.entered(note)?,
            intervention: INTERVENTION.entered(intervention)?,
        })
    }

    /// Details as another system sent them: blank text is absent, the rest is kept
    /// exactly and checked by the same rules as [`AssessmentDetails::new`].
    pub fn received(self) -> Result<Self, DomainError> {
        Ok(Self {
            body_site: BODY_SITE.received(self.body_site)?,
            activity: self.activity,
            note: NOTE.received(self.note)?,
            intervention: INTERVENTION.received(self.intervention)?,
        })
    }
}

/// Blank is absent; otherwise trimmed, at most `max` characters (not bytes: 汉字
/// count as one), and free of control characters other than line breaks where allowed.
pub fn free_text(
    field: &'static str,
    raw: Option<&str>,
    max: usize,
    multiline: bool,
) -> Result<Option<String>, DomainError> {
    let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    // Nothing invisible gets in, bidirectional overrides and zero-width characters included.
    crate::text::check_text(field, text, max, multiline)?;
    Ok(Some(text.to_owned()))
}

/// Why a record is corrected: required, and kept with both records.
pub fn correction_reason(raw: &str) -> Result<String, DomainError> {
    REASON
        .entered(Some(raw))?
        .ok_or(DomainError::ReasonRequired)
}

// Which record may be corrected, and how concurrent corrections are settled: `crate::corrections`.
pub use crate::corrections::{CorrectionTarget, check_correction};

/// Most concurrent corrections one settling correction may name in `resolves`
/// besides the one it supersedes: more than a handful of devices correcting one
/// record offline at once is not a ward, it is a fault.
pub const MAX_RESOLVES: usize = 16;

/// A correction that settles concurrent corrections (ARCHITECTURE.md, "Concurrent
/// corrections") supersedes one of them and names the others in `resolves`: it
/// must be a correction, name at most [`MAX_RESOLVES`], each once, and neither
/// itself nor the record it supersedes. Which records they are, and that they
/// correct the same record, only a store holding them can tell; the server may
/// receive a resolution before the corrections it names, like `supersedes`.
pub fn check_resolves<T: PartialEq>(
    report_id: &T,
    supersedes: Option<&T>,
    resolves: &[T],
) -> Result<(), DomainError> {
    if resolves.is_empty() {
        return Ok(());
    }
    let Some(supersedes) = supersedes else {
        return Err(DomainError::InvalidResolution);
    };
    let repeated = resolves
        .iter()
        .enumerate()
        .any(|(i, id)| resolves[..i].contains(id));
    if resolves.len() > MAX_RESOLVES
        || repeated
        || resolves
            .iter()
            .any(|id| id == report_id || id == supersedes)
    {
        return Err(DomainError::InvalidResolution);
    }
    Ok(())
}

/// When the reassessment after an intervention falls due; none without one.
pub fn reassessment_due(
    assessed_at: DateTime<Utc>,
    intervention: Option<&str>,
    interval_minutes: u32,
) -> Option<DateTime<Utc>> {
    intervention.map(|_| assessed_at + Duration::minutes(i64::from(interval_minutes)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Reassessment {
    /// No intervention, so nothing to follow up.
    NotNeeded,
    /// Followed up by a later assessment.
    Done,
    Due,
    Overdue,
}

pub fn reassessment_state(
    due_at: Option<DateTime<Utc>>,
    followed_up: bool,
    now: DateTime<Utc>,
) -> Reassessment {
    match due_at {
        None => Reassessment::NotNeeded,
        Some(_) if followed_up => Reassessment::Done,
        Some(due) if now > due => Reassessment::Overdue,
        Some(_) => Reassessment::Due,
    }
}

/// What a reassessment must link to: an earlier assessment of the same patient
/// that had an intervention and is still current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowUpTarget<'a> {
    pub patient_id: &'a str,
    pub assessed_at: DateTime<Utc>,
    pub had_intervention: bool,
    pub superseded: bool,
}

pub fn check_follow_up(
    target: FollowUpTarget<'_>,
    patient_id: &str,
    assessed_at: DateTime<Utc>,
) -> Result<(), DomainError> {
    if target.patient_id != patient_id
        || !target.had_intervention
        || target.superseded
        || assessed_at < target.assessed_at
    {
        return Err(DomainError::InvalidFollowUp);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::not_a_resolution(None, &[], true)]
    #[case::a_plain_correction(Some(2), &[], true)]
    #[case::settles_two(Some(2), &[3], true)]
    #[case::settles_many(Some(2), &[3, 4, 5], true)]
    #[case::not_a_correction(None, &[3], false)]
    #[case::names_itself(Some(2), &[1], false)]
    #[case::names_what_it_supersedes(Some(2), &[2], false)]
    #[case::names_one_twice(Some(2), &[3, 3], false)]
    fn a_resolution_names_other_corrections_once(
        #[case] supersedes: Option<u32>,
        #[case] resolves: &[u32],
        #[case] ok: bool,
    ) {
        assert_eq!(
            check_resolves(&1, supersedes.as_ref(), resolves).is_ok(),
            ok
        );
    }

    #[test]
    fn a_resolution_names_at_most_the_limit() {
        let at_limit: Vec<u32> = (10..10 + MAX_RESOLVES as u32).collect();
        assert!(check_resolves(&1, Some(&2), &at_limit).is_ok());
        let over: Vec<u32> = (10..11 + MAX_RESOLVES as u32).collect();
        assert!(check_resolves(&1, Some(&2), &over).is_err());
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap()
    }

    #[rstest]
    #[case::now(None, Ok(0))]
    #[case::an_hour_ago(Some(-60), Ok(-60))]
    #[case::at_the_window_edge(Some(-720), Ok(-720))]
    #[case::past_the_window(Some(-721), Err(DomainError::AssessmentTooOld { window_minutes: 720 }))]
    #[case::clock_skew_tolerated(Some(2), Ok(2))]
    #[case::future(Some(3), Err(DomainError::AssessmentInFuture))]
    #[case::far_future(Some(60 * 24 * 365), Err(DomainError::AssessmentInFuture))]
    fn assessment_times_stay_within_the_window(
        #[case] offset_min: Option<i64>,
        #[case] expected: Result<i64, DomainError>,
    ) {
        let window = TimeWindow::minutes(DEFAULT_BACKDATE_WINDOW_MINUTES);
        let requested = offset_min.map(|m| now() + Duration::minutes(m));
        let got = window
            .assessment_time(requested, now())
            .map(|t| (t - now()).num_minutes());
        assert_eq!(got, expected);
    }

    #[rstest]
    #[case::all_blank(None, None, Some("  "), None, Ok(AssessmentDetails::default()))]
    #[case::trimmed(Some(" 右膝 "), Some("movement"), Some("翻身时加重\n夜间醒来"), Some("吗啡 5mg"), Ok(AssessmentDetails {
        body_site: Some("右膝".into()), activity: Some(Activity::Movement),
        note: Some("翻身时加重\n夜间醒来".into()), intervention: Some("吗啡 5mg".into()) }))]
    #[case::site_at_limit_in_hanzi(Some(&*"痛".repeat(40)), None, None, None, Ok(AssessmentDetails { body_site: Some("痛".repeat(40)), ..Default::default() }))]
    #[case::site_over_limit(Some(&*"痛".repeat(41)), None, None, None, Err(DomainError::TextTooLong { field: "body site", max: 40 }))]
    #[case::note_over_limit(None, None, Some(&*"a".repeat(501)), None, Err(DomainError::TextTooLong { field: "note", max: 500 }))]
    #[case::unknown_activity(None, Some("sleeping"), None, None, Err(DomainError::UnknownActivity("sleeping".into())))]
    #[case::newline_in_site(Some("left\nknee"), None, None, None, Err(DomainError::InvisibleCharacter { field: "body site" }))]
    #[case::nul_in_note(None, None, Some("a\0b"), None, Err(DomainError::InvisibleCharacter { field: "note" }))]
    #[case::tab_in_note(None, None, Some("a\tb"), None, Err(DomainError::InvisibleCharacter { field: "note" }))]
    #[case::override_in_site(Some("左\u{202E}膝"), None, None, None, Err(DomainError::InvisibleCharacter { field: "body site" }))]
    #[case::isolate_in_note(None, None, Some("a\u{2066}b\u{2069}"), None, Err(DomainError::InvisibleCharacter { field: "note" }))]
    #[case::zero_width_in_note(None, None, Some("吗\u{200B}啡"), None, Err(DomainError::InvisibleCharacter { field: "note" }))]
    #[case::soft_hyphen_in_intervention(None, None, None, Some("mor\u{00AD}phine"), Err(DomainError::InvisibleCharacter { field: "intervention" }))]
    #[case::bom_in_intervention(None, None, None, Some("\u{FEFF}ice"), Err(DomainError::InvisibleCharacter { field: "intervention" }))]
    #[case::word_joiner_in_site(Some("knee\u{2060}"), None, None, None, Err(DomainError::InvisibleCharacter { field: "body site" }))]
    fn details_are_checked(
        #[case] site: Option<&str>,
        #[case] activity: Option<&str>,
        #[case] note: Option<&str>,
        #[case] intervention: Option<&str>,
        #[case] expected: Result<AssessmentDetails, DomainError>,
    ) {
        assert_eq!(
            AssessmentDetails::new(site, activity, note, intervention),
            expected
        );
    }

    fn sent(
        site: Option<&str>,
        note: Option<&str>,
        intervention: Option<&str>,
    ) -> AssessmentDetails {
        AssessmentDetails {
            body_site: site.map(str::to_owned),
            activity: None,
            note: note.map(str::to_owned),
            intervention: intervention.map(str::to_owned),
        }
    }

    #[rstest]
    #[case::kept_exactly(
        sent(Some(" 右膝 "), Some("a\nb"), None),
        Ok(sent(Some(" 右膝 "), Some("a\nb"), None))
    )]
    #[case::blank_is_absent(
        sent(Some(""), Some(" \n\t "), Some("\u{3000}")),
        Ok(AssessmentDetails::default())
    )]
    #[case::site_at_limit(sent(Some(&"汉".repeat(40)), None, None), Ok(sent(Some(&"汉".repeat(40)), None, None)))]
    #[case::site_over_limit(sent(Some(&"汉".repeat(41)), None, None), Err(DomainError::TextTooLong { field: "bodySite", max: 40 }))]
    #[case::note_over_limit(sent(None, Some(&"汉".repeat(501)), None), Err(DomainError::TextTooLong { field: "note", max: 500 }))]
    #[case::intervention_over_limit(sent(None, None, Some(&"汉".repeat(201))), Err(DomainError::TextTooLong { field: "intervention", max: 200 }))]
    #[case::newline_in_site(sent(Some("left\nknee"), None, None), Err(DomainError::InvisibleCharacter { field: "bodySite" }))]
    #[case::carriage_return_in_note(sent(None, Some("a\r\nb"), None), Err(DomainError::InvisibleCharacter { field: "note" }))]
    #[case::zero_width_in_intervention(sent(None, None, Some("吗\u{200B}啡")), Err(DomainError::InvisibleCharacter { field: "intervention" }))]
    fn received_details_are_kept_as_sent_and_checked_by_the_same_rules(
        #[case] details: AssessmentDetails,
        #[case] expected: Result<AssessmentDetails, DomainError>,
    ) {
        assert_eq!(details.received(), expected);
    }

    #[rstest]
    #[case("  entered 6, patient said 4 ", Ok("entered 6, patient said 4".to_owned()))]
    #[case("   ", Err(DomainError::ReasonRequired))]
    #[case(&"x".repeat(201), Err(DomainError::TextTooLong { field: "reason", max: 200 }))]
    #[case::nul("entered\u{0} 6", Err(DomainError::InvisibleCharacter { field: "reason" }))]
    #[case::escape("\u{1b}[31mentered 6", Err(DomainError::InvisibleCharacter { field: "reason" }))]
    #[case::carriage_return("entered 6\r said 4", Err(DomainError::InvisibleCharacter { field: "reason" }))]
    #[case::newline("entered 6\nsaid 4", Err(DomainError::InvisibleCharacter { field: "reason" }))]
    #[case::right_to_left_override("entered \u{202E}6", Err(DomainError::InvisibleCharacter { field: "reason" }))]
    #[case::zero_width_space("entered\u{200B} 6", Err(DomainError::InvisibleCharacter { field: "reason" }))]
    #[case::hanzi_at_limit(&"错".repeat(200), Ok("错".repeat(200)))]
    fn a_correction_needs_a_reason(
        #[case] raw: &str,
        #[case] expected: Result<String, DomainError>,
    ) {
        assert_eq!(correction_reason(raw), expected);
    }

    #[rstest]
    #[case::no_intervention(None, 60, false, 0, Reassessment::NotNeeded)]
    #[case::just_given(Some("ibuprofen"), 60, false, 0, Reassessment::Due)]
    #[case::at_the_due_minute(Some("ibuprofen"), 60, false, 60, Reassessment::Due)]
    #[case::a_minute_late(Some("ibuprofen"), 60, false, 61, Reassessment::Overdue)]
    #[case::clinic_uses_30(Some("cold pack"), 30, false, 31, Reassessment::Overdue)]
    #[case::followed_up_late(Some("ibuprofen"), 60, true, 500, Reassessment::Done)]
    fn reassessments_fall_due_after_an_intervention(
        #[case] intervention: Option<&str>,
        #[case] interval: u32,
        #[case] followed_up: bool,
        #[case] minutes_later: i64,
        #[case] expected: Reassessment,
    ) {
        let due = reassessment_due(now(), intervention, interval);
        if let Some(due) = due {
            assert_eq!(due - now(), Duration::minutes(i64::from(interval)));
        }
        assert_eq!(
            reassessment_state(due, followed_up, now() + Duration::minutes(minutes_later)),
            expected
        );
    }

    #[rstest]
    #[case::valid("P1", true, false, 30, Ok(()))]
    #[case::other_patient("P2", true, false, 30, Err(DomainError::InvalidFollowUp))]
    #[case::nothing_given("P1", false, false, 30, Err(DomainError::InvalidFollowUp))]
    #[case::superseded("P1", true, true, 30, Err(DomainError::InvalidFollowUp))]
    #[case::before_the_original("P1", true, false, -5, Err(DomainError::InvalidFollowUp))]
    fn a_reassessment_follows_a_current_intervention_of_the_same_patient(
        #[case] target_patient: &str,
        #[case] had_intervention: bool,
        #[case] superseded: bool,
        #[case] minutes_after: i64,
        #[case] expected: Result<(), DomainError>,
    ) {
        let target = FollowUpTarget {
            patient_id: target_patient,
            assessed_at: now(),
            had_intervention,
            superseded,
        };
        assert_eq!(
            check_follow_up(target, "P1", now() + Duration::minutes(minutes_after)),
            expected
        );
    }
}
