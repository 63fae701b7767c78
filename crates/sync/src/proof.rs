//! What counts as the server's proof that it stored a report. A report becomes
//! `delivered` only on such proof; any other answer (HTML from a proxy, an empty
//! body, JSON of another shape, an echo of another report) is
//! [`SyncError::UnexpectedAnswer`]: the report stays queued and is sent again.
//!
//! Two proofs are accepted for a single `POST /v1/reports`:
//! - clinic-central's [`StoredReport`] under *our* `reportId`, with our content
//!   (patient, score, scale, times, author, links: `supersedes`, `followsUp` and
//!   the set of `resolves`). Free text is not compared: the
//!   server may store a blank note as absent, and the ID with the rest already
//!   pins the report (its idempotency check refuses other content under our ID).
//! - the hospital's original API's echo: the four contract fields, with a
//!   `reportId` and `submitTime` of the server's own making (it assigns both) and
//!   our patient and score.

use clinic_protocol::{BatchResponse, ReportSubmission, StoredReport};
use serde::Deserialize;

use crate::SyncError;

/// A report the server proved it stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The server's ID for it when it assigned its own (the original API does).
    pub server_report_id: Option<String>,
}

/// The original API's answer: the hospital contract's four fields.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContractEcho {
    report_id: String,
    patient_id: String,
    pain_score: i64,
    #[allow(dead_code)] // required to be present (the contract's shape), its value is the server's
    submit_time: i64,
}

/// Describes a body for the error detail without repeating it (it may hold anything).
fn shape(body: &[u8]) -> String {
    let trimmed = body.trim_ascii_start();
    if trimmed.is_empty() {
        "an empty body".to_owned()
    } else if trimmed.starts_with(b"<") {
        format!("HTML or XML, {} bytes", body.len())
    } else if trimmed.starts_with(b"{") || trimmed.starts_with(b"[") {
        format!("JSON of another shape, {} bytes", body.len())
    } else {
        format!("{} bytes of something else", body.len())
    }
}

/// The same IDs, whatever their order (a server may keep `resolves` sorted).
fn same_set(a: &[uuid::Uuid], b: &[uuid::Uuid]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

/// Judges the 2xx answer to a single `POST /v1/reports` of `sent`.
pub fn single_answer(sent: &ReportSubmission, body: &[u8]) -> Result<Stored, SyncError> {
    let echo: ContractEcho =
        serde_json::from_slice(body).map_err(|_| SyncError::UnexpectedAnswer(shape(body)))?;
    if echo.report_id.trim().is_empty() {
        return Err(SyncError::UnexpectedAnswer(
            "an answer without a report ID".into(),
        ));
    }
    if echo
        .report_id
        .eq_ignore_ascii_case(&sent.report_id.to_string())
    {
        // Our ID: clinic-central, which keeps the whole report under it.
        let stored: StoredReport =
            serde_json::from_slice(body).map_err(|_| SyncError::UnexpectedAnswer(shape(body)))?;
        let stored = stored.submission;
        let same = stored.patient_id == sent.patient_id
            && stored.pain_score == sent.pain_score
            && stored.scale == sent.scale
            && stored.submit_time == sent.submit_time
            && stored.recorded_by == sent.recorded_by
            && stored.supersedes == sent.supersedes
            && stored.assessed_at == sent.assessed_at
            && stored.follows_up == sent.follows_up
            && same_set(&stored.resolves, &sent.resolves)
            && stored.details.activity == sent.details.activity;
        return if same {
            Ok(Stored {
                server_report_id: None,
            })
        } else {
            Err(SyncError::UnexpectedAnswer(
                "the server's copy of this report differs from what was sent".into(),
            ))
        };
    }
    if echo.patient_id != sent.patient_id || echo.pain_score != sent.pain_score {
        return Err(SyncError::UnexpectedAnswer(
            "an echo of another patient or score".into(),
        ));
    }
    Ok(Stored {
        server_report_id: Some(echo.report_id),
    })
}

/// Judges the 2xx answer to a batch: it must be a batch answer and name at least
/// one report of the batch (reports it leaves out stay queued, see `push`).
pub fn batch_answer(sent: &[ReportSubmission], body: &[u8]) -> Result<BatchResponse, SyncError> {
    let resp: BatchResponse =
        serde_json::from_slice(body).map_err(|_| SyncError::UnexpectedAnswer(shape(body)))?;
    let ours = |id: &str| {
        sent.iter()
            .any(|s| s.report_id.to_string().eq_ignore_ascii_case(id))
    };
    if !sent.is_empty()
        && !resp
            .results
            .iter()
            .any(|r| r.report_id.as_deref().is_some_and(ours))
    {
        return Err(SyncError::UnexpectedAnswer(
            "a batch answer about none of the reports sent".into(),
        ));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use clinic_domain::PainScale;
    use rstest::rstest;
    use serde_json::json;

    use super::*;

    const OURS: &str = "0190f7a4-1c2b-7d3e-8f00-000000000001";
    const OTHER: &str = "0190f7a4-1c2b-7d3e-8f00-000000000002";
    const THIRD: &str = "0190f7a4-1c2b-7d3e-8f00-000000000003";

    fn sent() -> ReportSubmission {
        ReportSubmission {
            report_id: OURS.parse().unwrap(),
            patient_id: "P0000001".into(),
            pain_score: 7,
            submit_time: 1_764_300_000,
            scale: PainScale::Nrs,
            recorded_by: Some("N001".into()),
            device_id: Some("dev".into()),
            supersedes: None,
            reason: None,
            assessed_at: Some(1_764_299_000),
            details: Default::default(),
            follows_up: None,
            resolves: Vec::new(),
        }
    }

    fn stored() -> serde_json::Value {
        json!({"reportId": OURS, "patientId": "P0000001", "painScore": 7, "submitTime": 1_764_300_000,
               "scale": "nrs", "recordedBy": "N001", "deviceId": "dev", "assessedAt": 1_764_299_000,
               "receivedAt": 1_764_300_001, "duplicate": false})
    }

    #[rstest]
    #[case::clinic_central(stored(), Some(None))]
    #[case::clinic_central_duplicate({ let mut v = stored(); v["duplicate"] = json!(true); v }, Some(None))]
    #[case::original_api_echo(json!({"reportId": "9b1f0c2e-0000-4000-8000-00000000abcd", "patientId": "P0000001", "painScore": 7, "submitTime": 1_800_000_000}),
           Some(Some("9b1f0c2e-0000-4000-8000-00000000abcd")))]
    #[case::echo_of_another_patient(json!({"reportId": "x1", "patientId": "P0000002", "painScore": 7, "submitTime": 1}), None)]
    #[case::echo_of_another_score(json!({"reportId": "x1", "patientId": "P0000001", "painScore": 6, "submitTime": 1}), None)]
    #[case::echo_without_submit_time(json!({"reportId": "x1", "patientId": "P0000001", "painScore": 7}), None)]
    #[case::echo_with_blank_id(json!({"reportId": " ", "patientId": "P0000001", "painScore": 7, "submitTime": 1}), None)]
    #[case::our_id_other_score({ let mut v = stored(); v["painScore"] = json!(3); v }, None)]
    #[case::our_id_other_scale({ let mut v = stored(); v["scale"] = json!("wong_baker_faces"); v }, None)]
    #[case::our_id_resolving_something(
        { let mut v = stored(); v["supersedes"] = json!(OTHER); v["resolves"] = json!([OTHER]); v }, None)]
    #[case::other_json(json!({"ok": true}), None)]
    #[case::a_list(json!([stored()]), None)]
    fn only_a_copy_of_this_report_proves_delivery(
        #[case] answer: serde_json::Value,
        #[case] expect: Option<Option<&str>>,
    ) {
        let got = single_answer(&sent(), answer.to_string().as_bytes());
        match expect {
            Some(theirs) => assert_eq!(got.unwrap().server_report_id.as_deref(), theirs),
            None => assert!(
                matches!(got, Err(SyncError::UnexpectedAnswer(_))),
                "{got:?}"
            ),
        }
    }

    /// A resolution is proven by a copy naming the same corrections, in any order.
    #[rstest]
    #[case::same_order(json!([OTHER, THIRD]), true)]
    #[case::other_order(json!([THIRD, OTHER]), true)]
    #[case::one_left_out(json!([OTHER]), false)]
    #[case::none(json!(null), false)]
    fn a_resolutions_copy_names_the_same_corrections(
        #[case] resolves: serde_json::Value,
        #[case] proven: bool,
    ) {
        let settling = ReportSubmission {
            supersedes: Some(uuid::Uuid::from_u128(9)),
            resolves: vec![OTHER.parse().unwrap(), THIRD.parse().unwrap()],
            ..sent()
        };
        let mut answer = stored();
        answer["supersedes"] = json!(uuid::Uuid::from_u128(9));
        if !resolves.is_null() {
            answer["resolves"] = resolves;
        }
        let got = single_answer(&settling, answer.to_string().as_bytes());
        assert_eq!(got.is_ok(), proven, "{got:?}");
    }

    #[rstest]
    #[case::html(b"<!doctype html><html><body>Please sign in</body></html>".as_slice(), "HTML")]
    #[case::empty(b"".as_slice(), "empty")]
    #[case::text(b"OK".as_slice(), "something else")]
    #[case::truncated(br#"{"reportId":"0190f7a4"#.as_slice(), "JSON")]
    fn bodies_that_are_not_json_say_what_they_were(#[case] body: &[u8], #[case] words: &str) {
        let err = single_answer(&sent(), body).unwrap_err();
        assert!(err.to_string().contains(words), "{err}");
        assert!(
            !err.to_string().contains("sign in"),
            "the body itself is never repeated"
        );
    }

    #[rstest]
    #[case::ours(json!({"results": [{"reportId": OURS, "status": "accepted"}]}), true)]
    #[case::empty_results(json!({"results": []}), false)]
    #[case::someone_elses(json!({"results": [{"reportId": "0190f7a4-1c2b-7d3e-8f00-000000000009", "status": "accepted"}]}), false)]
    #[case::other_shape(json!({"status": "ok"}), false)]
    fn a_batch_answer_must_be_about_our_reports(
        #[case] answer: serde_json::Value,
        #[case] ok: bool,
    ) {
        let got = batch_answer(&[sent()], answer.to_string().as_bytes());
        assert_eq!(got.is_ok(), ok, "{got:?}");
    }
}
