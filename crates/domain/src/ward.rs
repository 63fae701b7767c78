//! The ward pain board (病区疼痛一览): which patients the nurse in charge sees, how
//! each one's pain moved since the assessment before, and who needs her first.
//!
//! Pure rules with case tables; the store selects the reports and sorts by
//! [`Urgency`], the app shows what they decide. The band of a score and whether a
//! reassessment is overdue are not decided here: they are [`PainScore::band`] and
//! [`reassessment_state`], so the board and the bedside always agree.

use std::cmp::Ordering;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::assessment::reassessment_state;
use crate::{PainBand, PainScore, Reassessment};

/// Hours back the board looks for assessments unless the clinic sets another window.
pub const DEFAULT_WARD_BOARD_HOURS: u32 = 24;

/// The earliest assessment time that puts a patient on the board at `now`: a
/// patient is listed when a current assessment is at or after it (the edge is in).
pub fn window_start(now: DateTime<Utc>, hours: u32) -> DateTime<Utc> {
    now - Duration::hours(i64::from(hours))
}

/// How the latest score moved since the patient's assessment before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    Up,
    Down,
    Same,
    /// No current assessment before this one: nothing to compare with.
    First,
}

/// The trend from `previous` to `latest`. Both scales score 0–10 and share the
/// bands, so a FACES score and an NRS score compare by their values.
pub fn trend(previous: Option<PainScore>, latest: PainScore) -> Trend {
    match previous.map(|p| latest.value().cmp(&p.value())) {
        None => Trend::First,
        Some(Ordering::Greater) => Trend::Up,
        Some(Ordering::Less) => Trend::Down,
        Some(Ordering::Equal) => Trend::Same,
    }
}

/// What decides a patient's place on the board: the most urgent first, that is
/// an overdue reassessment first, then a severe latest score, then the patient
/// assessed longest ago; the patient ID breaks a tie so every device lists the
/// same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Urgency<'a> {
    pub overdue: bool,
    pub severe: bool,
    pub assessed_at: DateTime<Utc>,
    pub patient_id: &'a str,
}

impl<'a> Urgency<'a> {
    /// `reassess_due_at`: the earliest reassessment the patient is still owed, if any.
    pub fn new(
        latest: PainScore,
        assessed_at: DateTime<Utc>,
        reassess_due_at: Option<DateTime<Utc>>,
        patient_id: &'a str,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            overdue: reassessment_state(reassess_due_at, false, now) == Reassessment::Overdue,
            severe: latest.band() == PainBand::Severe,
            assessed_at,
            patient_id,
        }
    }
}

impl Ord for Urgency<'_> {
    /// `Less` is more urgent: sorting ascending lists the most urgent first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .overdue
            .cmp(&self.overdue)
            .then(other.severe.cmp(&self.severe))
            .then(self.assessed_at.cmp(&other.assessed_at))
            .then(self.patient_id.cmp(other.patient_id))
    }
}

impl PartialOrd for Urgency<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use rstest::rstest;

    use super::*;
    use crate::PainScale;

    fn nrs(v: i64) -> PainScore {
        PainScore::new(PainScale::Nrs, v).unwrap()
    }

    fn faces(v: i64) -> PainScore {
        PainScore::new(PainScale::WongBakerFaces, v).unwrap()
    }

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap()
    }

    #[rstest]
    #[case::first(None, nrs(5), Trend::First)]
    #[case::up(Some(nrs(3)), nrs(5), Trend::Up)]
    #[case::down(Some(nrs(8)), nrs(2), Trend::Down)]
    #[case::same(Some(nrs(4)), nrs(4), Trend::Same)]
    #[case::from_zero(Some(nrs(0)), nrs(1), Trend::Up)]
    #[case::to_zero(Some(nrs(1)), nrs(0), Trend::Down)]
    #[case::across_scales_by_value(Some(faces(6)), nrs(6), Trend::Same)]
    #[case::across_scales_down(Some(nrs(7)), faces(4), Trend::Down)]
    fn the_trend_compares_the_latest_with_the_one_before(
        #[case] previous: Option<PainScore>,
        #[case] latest: PainScore,
        #[case] expected: Trend,
    ) {
        assert_eq!(trend(previous, latest), expected);
    }

    #[rstest]
    #[case::the_edge_is_in(24, at(12, 0), at(12, 0) - Duration::hours(24))]
    #[case::a_shorter_window(8, at(12, 0), at(4, 0))]
    #[case::none_at_all(0, at(12, 0), at(12, 0))]
    fn the_window_reaches_back_the_clinics_hours(
        #[case] hours: u32,
        #[case] now: DateTime<Utc>,
        #[case] start: DateTime<Utc>,
    ) {
        assert_eq!(window_start(now, hours), start);
    }

    /// (patient, latest score, assessed at, reassessment due at) at 12:00.
    type Row = (&'static str, i64, DateTime<Utc>, Option<DateTime<Utc>>);

    #[rstest]
    #[case::overdue_before_severe(
        &[("A", 9, at(11, 0), None), ("B", 2, at(11, 30), Some(at(11, 45)))],
        &["B", "A"],
    )]
    #[case::due_but_not_yet_overdue_is_not_first(
        &[("A", 9, at(11, 0), None), ("B", 2, at(10, 0), Some(at(12, 30)))],
        &["A", "B"],
    )]
    #[case::due_exactly_now_is_not_overdue(
        &[("A", 7, at(11, 0), None), ("B", 2, at(10, 0), Some(at(12, 0)))],
        &["A", "B"],
    )]
    #[case::severe_before_moderate(
        &[("A", 6, at(8, 0), None), ("B", 7, at(11, 0), None)],
        &["B", "A"],
    )]
    #[case::then_the_oldest_assessment(
        &[("A", 3, at(11, 0), None), ("B", 5, at(9, 0), None), ("C", 0, at(10, 0), None)],
        &["B", "C", "A"],
    )]
    #[case::severe_then_oldest_among_the_overdue(
        &[("A", 8, at(11, 0), Some(at(11, 10))), ("B", 1, at(9, 0), Some(at(10, 0))), ("C", 9, at(10, 0), Some(at(11, 0)))],
        &["C", "A", "B"],
    )]
    #[case::the_patient_id_breaks_a_tie(
        &[("B", 4, at(9, 0), None), ("A", 4, at(9, 0), None)],
        &["A", "B"],
    )]
    fn the_most_urgent_come_first(#[case] rows: &[Row], #[case] expected: &[&str]) {
        let now = at(12, 0);
        let mut keys: Vec<Urgency<'_>> = rows
            .iter()
            .map(|&(id, score, assessed, due)| Urgency::new(nrs(score), assessed, due, id, now))
            .collect();
        keys.sort();
        let order: Vec<&str> = keys.iter().map(|k| k.patient_id).collect();
        assert_eq!(order, expected);
    }
}
