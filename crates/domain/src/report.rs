//! A pain report's content, the one type every copy of a report maps to: the
//! bedside form's values once checked, the device's row (`clinic_store::outbox::NewReport`
//! adds who recorded it and on which device), the wire's submission and the central
//! server's row (which add IDs and receipt times around the same score, scale and details).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::assessment::{AssessmentDetails, TimeWindow};
use crate::{ClinicZone, DomainError, PainScale, PainScore, PatientId};

/// What a pain report says, checked: whose pain, the score on its scale, when it was
/// assessed, and what the nurse added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PainReport {
    pub patient_id: PatientId,
    pub score: PainScore,
    pub assessed_at: DateTime<Utc>,
    pub details: AssessmentDetails,
}

/// A report's values as a person entered them (the bedside form, for a new
/// assessment and a correction alike), before any rule is applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct AssessmentForm {
    /// `nrs` or `wong_baker_faces`.
    pub scale: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub score: i64,
    /// RFC 3339 with offset, or `YYYY-MM-DDTHH:MM` on the clinic's clock; null is now.
    pub assessed_at: Option<String>,
    pub body_site: Option<String>,
    /// `rest` or `movement`.
    pub activity: Option<String>,
    pub note: Option<String>,
    pub intervention: Option<String>,
}

/// The clinic's clock an entered assessment is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryClock {
    pub zone: ClinicZone,
    pub window: TimeWindow,
    pub now: DateTime<Utc>,
}

impl AssessmentForm {
    /// Every rule of the entered values, in the order a nurse fixes them: scale,
    /// score, time, details. `keep` is the time of the record a correction replaces:
    /// a correction that keeps it may be older than the window, which limits late
    /// entries, not fixing old mistakes.
    pub fn check(
        &self,
        patient_id: PatientId,
        clock: EntryClock,
        keep: Option<DateTime<Utc>>,
    ) -> Result<PainReport, DomainError> {
        let score = PainScore::new(PainScale::parse(&self.scale)?, self.score)?;
        let requested = self
            .assessed_at
            .as_deref()
            .map(|raw| clock.zone.parse_instant(raw))
            .transpose()?;
        let assessed_at = match (requested, keep) {
            (Some(t), Some(original)) if t == original => original,
            _ => clock.window.assessment_time(requested, clock.now)?,
        };
        let details = AssessmentDetails::new(
            self.body_site.as_deref(),
            self.activity.as_deref(),
            self.note.as_deref(),
            self.intervention.as_deref(),
        )?;
        Ok(PainReport {
            patient_id,
            score,
            assessed_at,
            details,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use rstest::rstest;

    use super::*;
    use crate::Activity;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap()
    }

    fn clock() -> EntryClock {
        EntryClock {
            zone: ClinicZone::parse("Asia/Shanghai").unwrap(),
            window: TimeWindow::minutes(12 * 60),
            now: now(),
        }
    }

    fn nrs(score: i64) -> AssessmentForm {
        AssessmentForm {
            scale: "nrs".into(),
            score,
            ..Default::default()
        }
    }

    fn patient() -> PatientId {
        PatientId::parse("P1").unwrap()
    }

    #[rstest]
    #[case::now(nrs(3), None, Ok(0))]
    #[case::clinic_wall_clock(AssessmentForm { assessed_at: Some("2026-11-28T17:00".into()), ..nrs(3) }, None, Ok(-60))]
    #[case::rfc3339(AssessmentForm { assessed_at: Some("2026-11-28T09:30:00Z".into()), ..nrs(3) }, None, Ok(-30))]
    #[case::unknown_scale(AssessmentForm { scale: "vas".into(), ..nrs(3) }, None, Err(DomainError::UnknownScale("vas".into())))]
    #[case::score_off_the_scale(AssessmentForm { scale: "wong_baker_faces".into(), ..nrs(3) }, None, Err(DomainError::ScoreOutOfRange { score: 3, scale: "wong_baker_faces" }))]
    #[case::not_a_time(AssessmentForm { assessed_at: Some("yesterday".into()), ..nrs(3) }, None, Err(DomainError::InvalidTime("yesterday".into())))]
    #[case::past_the_window(AssessmentForm { assessed_at: Some("2026-11-27T09:00:00Z".into()), ..nrs(3) }, None, Err(DomainError::AssessmentTooOld { window_minutes: 720 }))]
    #[case::correction_keeps_an_old_time(AssessmentForm { assessed_at: Some("2026-11-27T09:00:00Z".into()), ..nrs(3) }, Some(-25 * 60), Ok(-25 * 60))]
    #[case::correction_moves_an_old_time(AssessmentForm { assessed_at: Some("2026-11-27T09:05:00Z".into()), ..nrs(3) }, Some(-25 * 60), Err(DomainError::AssessmentTooOld { window_minutes: 720 }))]
    #[case::details_too_long(AssessmentForm { body_site: Some("膝".repeat(41)), ..nrs(3) }, None, Err(DomainError::TextTooLong { field: "body site", max: 40 }))]
    fn entered_values_are_checked_in_one_place(
        #[case] form: AssessmentForm,
        #[case] keep_minutes: Option<i64>,
        #[case] expected: Result<i64, DomainError>,
    ) {
        let keep = keep_minutes.map(|m| now() + Duration::minutes(m));
        let got = form
            .check(patient(), clock(), keep)
            .map(|r| (r.assessed_at - now()).num_minutes());
        assert_eq!(got, expected);
    }

    #[test]
    fn a_checked_form_is_the_report() {
        let form = AssessmentForm {
            activity: Some(" movement ".into()),
            note: Some(" 翻身时加重 ".into()),
            ..nrs(7)
        };
        assert_eq!(
            form.check(patient(), clock(), None),
            Ok(PainReport {
                patient_id: patient(),
                score: PainScore::new(PainScale::Nrs, 7).unwrap(),
                assessed_at: now(),
                details: AssessmentDetails {
                    activity: Some(Activity::Movement),
                    note: Some("翻身时加重".into()),
                    ..Default::default()
                },
            })
        );
    }
}
