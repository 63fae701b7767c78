//! The bedside flow on a real store file with the demo clinic: sign in with a PIN,
//! record, correct, reassess, export, and the trail each leaves.

use chrono::{Duration, SecondsFormat, Utc};
use clinic_desk_core::{
    AssessmentInput, CorrectionInput, DEMO_PIN, DEMO_SEED, Desk, ErrorCode, ReportStateDto,
    SessionStateDto,
};
use clinic_domain::pain::PainBand;
use clinic_domain::{Activity, AssessmentForm, Reassessment};
use clinic_store::{outbox, settings};
use rstest::rstest;

const NURSE: &str = "N001";
const PATIENT: &str = "P0000001";

fn desk() -> (tempfile::TempDir, Desk) {
    let dir = tempfile::tempdir().unwrap();
    let desk = Desk::open(&dir.path().join("desk.sqlite3")).unwrap();
    desk.load_demo(DEMO_SEED, None).unwrap();
    (dir, desk)
}

fn signed_in() -> (tempfile::TempDir, Desk) {
    let (dir, desk) = desk();
    desk.sign_in(NURSE, DEMO_PIN).unwrap();
    (dir, desk)
}

fn minutes_ago(m: i64) -> String {
    (Utc::now() - Duration::minutes(m)).to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// `YYYY-MM-DDTHH:MM` on the clinic's (Shanghai's) clock, as a form's date-time field sends it.
fn clinic_clock(minutes_ago: i64) -> String {
    (Utc::now() - Duration::minutes(minutes_ago))
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

fn form(score: i64) -> AssessmentForm {
    AssessmentForm {
        scale: "nrs".into(),
        score,
        ..Default::default()
    }
}

fn nrs(score: i64) -> AssessmentInput {
    AssessmentInput {
        patient_id: PATIENT.into(),
        values: form(score),
        ..Default::default()
    }
}

fn saved(desk: &Desk) -> usize {
    desk.database().read(outbox::all).unwrap().len()
}

#[rstest]
#[case::score_above_ten(AssessmentInput { values: AssessmentForm { score: 11, ..form(0) }, ..nrs(0) }, ErrorCode::InvalidScore)]
#[case::negative_score(AssessmentInput { values: AssessmentForm { score: -1, ..form(0) }, ..nrs(0) }, ErrorCode::InvalidScore)]
#[case::odd_faces_score(AssessmentInput { values: AssessmentForm { scale: "wong_baker_faces".into(), score: 3, ..form(0) }, ..nrs(0) }, ErrorCode::InvalidScore)]
#[case::unknown_scale(AssessmentInput { values: AssessmentForm { scale: "vas".into(), ..form(3) }, ..nrs(3) }, ErrorCode::InvalidScale)]
#[case::future_time(AssessmentInput { values: AssessmentForm { assessed_at: Some(minutes_ago(-30)), ..form(3) }, ..nrs(3) }, ErrorCode::AssessmentInFuture)]
#[case::before_the_window(AssessmentInput { values: AssessmentForm { assessed_at: Some(minutes_ago(13 * 60)), ..form(3) }, ..nrs(3) }, ErrorCode::AssessmentTooOld)]
#[case::wall_clock_in_the_future(AssessmentInput { values: AssessmentForm { assessed_at: Some(clinic_clock(-30)), ..form(3) }, ..nrs(3) }, ErrorCode::AssessmentInFuture)]
#[case::not_a_time(AssessmentInput { values: AssessmentForm { assessed_at: Some("yesterday".into()), ..form(3) }, ..nrs(3) }, ErrorCode::InvalidAssessmentTime)]
#[case::unknown_patient(AssessmentInput { patient_id: "Z9999999".into(), ..nrs(3) }, ErrorCode::PatientNotFound)]
#[case::malformed_patient_id(AssessmentInput { patient_id: "bad id".into(), ..nrs(3) }, ErrorCode::InvalidPatientId)]
#[case::body_site_too_long(AssessmentInput { values: AssessmentForm { body_site: Some("膝".repeat(41)), ..form(3) }, ..nrs(3) }, ErrorCode::InvalidAssessmentDetails)]
#[case::unknown_activity(AssessmentInput { values: AssessmentForm { activity: Some("sleeping".into()), ..form(3) }, ..nrs(3) }, ErrorCode::InvalidAssessmentDetails)]
#[case::follow_up_of_nothing(AssessmentInput { follows_up: Some("0190d6f0-0000-7000-8000-000000000000".into()), ..nrs(3) }, ErrorCode::InvalidFollowUp)]
fn bad_assessments_are_refused_with_a_code_and_nothing_is_saved(
    #[case] input: AssessmentInput,
    #[case] code: ErrorCode,
) {
    let (_d, desk) = signed_in();
    assert_eq!(desk.record_assessment(&input).unwrap_err().code, code);
    assert_eq!(saved(&desk), 0);
    assert_eq!(desk.sync_status().unwrap().waiting, 0);
}

#[test]
fn nothing_is_recorded_without_a_signed_in_member() {
    let (_d, desk) = desk();
    assert_eq!(
        desk.staff_session(false).unwrap().state,
        SessionStateDto::SignedOut
    );
    assert_eq!(
        desk.record_assessment(&nrs(3)).unwrap_err().code,
        ErrorCode::NotSignedIn
    );
    assert_eq!(
        desk.export_fhir(None).unwrap_err().code,
        ErrorCode::NotSignedIn
    );
    assert_eq!(saved(&desk), 0);
}

#[test]
fn sign_in_needs_the_members_pin_and_wrong_pins_are_limited_and_audited() {
    let (_d, desk) = desk();
    let staff = desk.staff().unwrap();
    assert!(
        staff
            .iter()
            .any(|s| s.id == NURSE && s.role == "nurse" && s.can_sign_in)
    );
    assert_eq!(
        staff.first().map(|s| s.role.as_str()),
        Some("nurse"),
        "nurses first"
    );
    assert_eq!(
        desk.sign_in("N999", DEMO_PIN).unwrap_err().code,
        ErrorCode::UnknownStaff
    );
    for _ in 0..4 {
        assert_eq!(
            desk.sign_in(NURSE, "0000").unwrap_err().code,
            ErrorCode::WrongPin
        );
    }
    assert_eq!(
        desk.sign_in(NURSE, "0000").unwrap_err().code,
        ErrorCode::PinAttemptsExceeded
    );
    assert_eq!(
        desk.sign_in(NURSE, DEMO_PIN).unwrap_err().code,
        ErrorCode::PinAttemptsExceeded,
        "even the right PIN waits"
    );
    let other = desk.sign_in("N002", DEMO_PIN).unwrap();
    assert_eq!(
        (other.state, other.staff_id.as_deref()),
        (SessionStateDto::Active, Some("N002"))
    );
    let trail: Vec<String> = desk
        .database()
        .read(|c| {
            let mut newest_first =
                c.prepare("SELECT actor || ' ' || action FROM audit_log ORDER BY seq DESC")?;
            let rows = newest_first.query_map([], |r| r.get(0))?;
            Ok::<_, clinic_store::StoreError>(rows.collect::<Result<_, _>>()?)
        })
        .unwrap();
    assert_eq!(
        trail.iter().filter(|t| *t == "N001 sign_in_failed").count(),
        5
    );
    assert_eq!(trail[0], "N002 signed_in");
    let out = desk.sign_out().unwrap();
    assert_eq!(out.state, SessionStateDto::SignedOut);
}

#[test]
fn an_assessment_keeps_its_details_and_recorder_and_waits_in_the_outbox() {
    let (_d, desk) = signed_in();
    let input = AssessmentInput {
        values: AssessmentForm {
            scale: "wong_baker_faces".into(),
            score: 6,
            assessed_at: Some(minutes_ago(20)),
            body_site: Some(" 右膝 ".into()),
            activity: Some("movement".into()),
            note: Some("翻身时加重".into()),
            ..form(0)
        },
        ..nrs(0)
    };
    let r = desk.record_assessment(&input).unwrap();
    let on_the_clock = desk
        .record_assessment(&AssessmentInput {
            values: AssessmentForm {
                assessed_at: Some(clinic_clock(90)),
                ..form(2)
            },
            ..nrs(2)
        })
        .unwrap();
    let age = Utc::now()
        - chrono::DateTime::parse_from_rfc3339(&on_the_clock.assessed_at)
            .unwrap()
            .with_timezone(&Utc);
    assert!(
        (89..=91).contains(&age.num_minutes()),
        "read on the clinic's clock, whatever the machine's zone: {age}"
    );
    assert_eq!(
        (r.score, r.band, r.state),
        (6, PainBand::Moderate, ReportStateDto::Queued)
    );
    assert_eq!(
        (r.recorded_by.as_str(), r.recorded_by_name.is_some()),
        (NURSE, true)
    );
    assert_eq!(
        (r.body_site.as_deref(), r.activity, r.note.as_deref()),
        (Some("右膝"), Some(Activity::Movement), Some("翻身时加重"))
    );
    assert_eq!(r.reassessment, Reassessment::NotNeeded);
    assert_eq!(
        desk.patient_reports(PATIENT).unwrap()[0].id,
        r.id,
        "newest assessment first"
    );
    assert_eq!(desk.sync_status().unwrap().waiting, 2);
    let history: Vec<String> = desk
        .report_history(&r.id)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(history, ["created"]);
}

#[test]
fn an_intervention_makes_a_reassessment_due_and_a_linked_one_settles_it() {
    let (_d, desk) = signed_in();
    desk.database()
        .write(|c| settings::set(c, settings::REASSESS_INTERVAL_MINUTES, "30"))
        .unwrap();
    let given = desk
        .record_assessment(&AssessmentInput {
            values: AssessmentForm {
                intervention: Some("布洛芬 400mg".into()),
                assessed_at: Some(minutes_ago(40)),
                ..form(8)
            },
            ..nrs(8)
        })
        .unwrap();
    assert_eq!(
        given.reassessment,
        Reassessment::Overdue,
        "due 30 minutes after, 10 minutes ago"
    );
    let fresh = desk
        .record_assessment(&AssessmentInput {
            values: AssessmentForm {
                intervention: Some("冰敷".into()),
                ..form(5)
            },
            ..nrs(5)
        })
        .unwrap();
    assert_eq!(fresh.reassessment, Reassessment::Due);
    let pending: Vec<String> = desk
        .pending_reassessments()
        .unwrap()
        .into_iter()
        .map(|p| p.report.id)
        .collect();
    assert_eq!(
        pending,
        [given.id.clone(), fresh.id.clone()],
        "soonest due first"
    );
    // A reassessment may not claim to come before what it follows.
    let early = AssessmentInput {
        follows_up: Some(given.id.clone()),
        values: AssessmentForm {
            assessed_at: Some(minutes_ago(50)),
            ..form(4)
        },
        ..nrs(4)
    };
    assert_eq!(
        desk.record_assessment(&early).unwrap_err().code,
        ErrorCode::InvalidFollowUp
    );
    let again = desk
        .record_assessment(&AssessmentInput {
            follows_up: Some(given.id.clone()),
            ..nrs(3)
        })
        .unwrap();
    assert_eq!(again.follows_up.as_deref(), Some(given.id.as_str()));
    let pending = desk.pending_reassessments().unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|p| p.report.id.as_str())
            .collect::<Vec<_>>(),
        [fresh.id.as_str()]
    );
    assert!(!pending[0].patient_name.is_empty());
    let reports = desk.patient_reports(PATIENT).unwrap();
    let settled = reports.iter().find(|r| r.id == given.id).unwrap();
    assert_eq!(
        (settled.reassessment, settled.followed_up_by.as_deref()),
        (Reassessment::Done, Some(again.id.as_str()))
    );
}

#[rstest]
#[case::while_queued(false)]
#[case::after_delivery(true)]
fn a_correction_supersedes_any_record_which_stays_visible(#[case] delivered: bool) {
    let (_d, desk) = signed_in();
    let first = desk.record_assessment(&nrs(7)).unwrap();
    if delivered {
        desk.database()
            .write(|c| {
                outbox::claim_batch(c, i64::MAX, 10, i64::MAX)?;
                outbox::mark_delivered(c, &[(first.id.clone(), None)], 1)
            })
            .unwrap();
    }
    let fix = |reason: &str, score: i64| CorrectionInput {
        reason: reason.into(),
        values: AssessmentForm {
            scale: "nrs".into(),
            score,
            ..Default::default()
        },
    };
    assert_eq!(
        desk.correct_report(&first.id, &fix("  ", 4))
            .unwrap_err()
            .code,
        ErrorCode::InvalidCorrectionReason
    );
    assert_eq!(
        desk.correct_report(&first.id, &fix("patient said 4", 12))
            .unwrap_err()
            .code,
        ErrorCode::InvalidScore
    );
    assert_eq!(saved(&desk), 1, "refused corrections save nothing");
    let second = desk
        .correct_report(&first.id, &fix("patient said 4", 4))
        .unwrap();
    assert_eq!(
        (
            second.supersedes.as_deref(),
            second.correction_reason.as_deref()
        ),
        (Some(first.id.as_str()), Some("patient said 4"))
    );
    assert_eq!(
        second.state,
        ReportStateDto::Queued,
        "the correction is synced too"
    );
    assert_eq!(
        desk.correct_report(&first.id, &fix("again", 5))
            .unwrap_err()
            .code,
        ErrorCode::ReportAlreadyCorrected
    );
    let listed = desk.patient_reports(PATIENT).unwrap();
    assert_eq!(listed.len(), 2);
    let old = listed.iter().find(|r| r.id == first.id).unwrap();
    let expected_state = if delivered {
        ReportStateDto::Delivered
    } else {
        ReportStateDto::Queued
    };
    assert_eq!(
        (old.score, old.state, old.superseded_by.as_deref()),
        (7, expected_state, Some(second.id.as_str()))
    );
    let history: Vec<String> = desk
        .report_history(&first.id)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    let expected: &[&str] = if delivered {
        &["created", "sync_state", "superseded"]
    } else {
        &["created", "superseded"]
    };
    assert_eq!(history, expected);
    assert_eq!(
        desk.sync_status().unwrap().waiting,
        if delivered { 1 } else { 2 }
    );
}

#[test]
fn an_old_record_can_be_corrected_at_its_own_time_but_not_moved_out_of_the_window() {
    let (_d, desk) = signed_in();
    desk.database()
        .write(|c| settings::set(c, settings::BACKDATE_WINDOW_MINUTES, "2000"))
        .unwrap();
    let old = desk
        .record_assessment(&AssessmentInput {
            values: AssessmentForm {
                assessed_at: Some(minutes_ago(1500)),
                ..form(6)
            },
            ..nrs(6)
        })
        .unwrap();
    desk.database()
        .write(|c| settings::set(c, settings::BACKDATE_WINDOW_MINUTES, "60"))
        .unwrap();
    let moved = CorrectionInput {
        reason: "r".into(),
        values: AssessmentForm {
            scale: "nrs".into(),
            score: 5,
            assessed_at: Some(minutes_ago(1400)),
            ..Default::default()
        },
    };
    assert_eq!(
        desk.correct_report(&old.id, &moved).unwrap_err().code,
        ErrorCode::AssessmentTooOld
    );
    let kept = CorrectionInput {
        values: AssessmentForm {
            assessed_at: Some(old.assessed_at.clone()),
            ..moved.values.clone()
        },
        ..moved
    };
    let fixed = desk.correct_report(&old.id, &kept).unwrap();
    assert_eq!((fixed.assessed_at, fixed.score), (old.assessed_at, 5));
}

#[test]
fn fhir_export_is_observations_keyed_by_report_id_with_the_right_loinc_codes() {
    let (dir, desk) = signed_in();
    let a = desk.record_assessment(&nrs(7)).unwrap();
    let b = desk
        .record_assessment(&AssessmentInput {
            values: AssessmentForm {
                scale: "wong_baker_faces".into(),
                score: 4,
                body_site: Some("腹部".into()),
                ..form(0)
            },
            ..nrs(0)
        })
        .unwrap();
    let fixed = desk
        .correct_report(
            &a.id,
            &CorrectionInput {
                reason: "wrong patient bed".into(),
                values: AssessmentForm {
                    scale: "nrs".into(),
                    score: 5,
                    ..Default::default()
                },
            },
        )
        .unwrap();
    let export = desk.export_fhir(Some(PATIENT)).unwrap();
    assert_eq!(export.observations, 3);
    assert!(export.path.starts_with(dir.path().to_str().unwrap()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&export.path)
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    let text = std::fs::read_to_string(&export.path).unwrap();
    let bundle: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (bundle["resourceType"].as_str(), bundle["type"].as_str()),
        (Some("Bundle"), Some("collection"))
    );
    let find = |id: &str| {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["resource"])
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap()
    };
    let (oa, ob, ofixed) = (find(&a.id), find(&b.id), find(&fixed.id));
    assert_eq!(oa["code"]["coding"][0]["code"], "72514-3");
    assert_eq!(ob["code"]["coding"][0]["code"], "38221-8");
    assert_eq!(oa["code"]["coding"][0]["system"], "http://loinc.org");
    assert_eq!(
        (
            oa["valueInteger"].as_i64(),
            ob["valueInteger"].as_i64(),
            ofixed["valueInteger"].as_i64()
        ),
        (Some(7), Some(4), Some(5))
    );
    assert_eq!(
        (
            oa["status"].as_str(),
            ofixed["status"].as_str(),
            ob["status"].as_str()
        ),
        (Some("entered-in-error"), Some("corrected"), Some("final"))
    );
    assert_eq!(oa["subject"]["reference"], format!("Patient/{PATIENT}"));
    assert_eq!(
        oa["performer"][0]["reference"],
        format!("Practitioner/{NURSE}")
    );
    assert_eq!(ob["bodySite"]["text"], "腹部");
    assert!(
        chrono::DateTime::parse_from_rfc3339(oa["effectiveDateTime"].as_str().unwrap()).is_ok()
    );
    // Exporting again gives the same resource IDs, so a receiver updates instead of duplicating.
    let (again, n) = desk.fhir_bundle(Some(PATIENT)).unwrap();
    assert_eq!(n, 3);
    let ids = |b: &serde_json::Value| -> Vec<String> {
        let mut v: Vec<String> = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&again), ids(&bundle));
    let patient_name = desk.patient(PATIENT).unwrap().name;
    assert!(
        !text.contains(&patient_name),
        "the export identifies the patient by ID only"
    );
    assert_eq!(desk.fhir_bundle(None).unwrap().1, 3);
}

#[test]
fn the_clinic_profiles_language_reaches_the_ui_as_its_default() {
    let (_d, desk) = desk();
    assert_eq!(
        desk.app_info().unwrap().language,
        None,
        "the demo names no language: the OS locale decides"
    );
    desk.database()
        .write(|c| settings::set(c, settings::LANGUAGE, "zh-CN"))
        .unwrap();
    assert_eq!(desk.app_info().unwrap().language.as_deref(), Some("zh-CN"));
}

/// A row no rule of this app would write, as a damaged or foreign database may hold:
/// `scale`, `score` and `assessed_at` as given, with an intervention, queued.
fn plant(desk: &Desk, id: &str, scale: &str, score: i64, assessed_at: i64) {
    let now = Utc::now().timestamp();
    desk.database()
        .write(|c| {
            c.execute_batch(&format!(
                "INSERT INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at,
                                           recorded_by, device_id, intervention)
                 VALUES ('{id}', '{PATIENT}', '{scale}', {score}, {assessed_at}, {now}, 'N001', 'dev', 'ice');
                 INSERT INTO outbox (report_id, state, queued_at) VALUES ('{id}', 'queued', 0);"
            ))
        })
        .unwrap();
}

#[rstest]
#[case::time_out_of_range("nrs", 5, i64::MAX)]
#[case::score_off_its_scale("wong_baker_faces", 5, Utc::now().timestamp())]
fn a_stored_report_no_rule_would_write_is_an_error_not_a_guess(
    #[case] scale: &str,
    #[case] score: i64,
    #[case] assessed_at: i64,
) {
    let (dir, desk) = signed_in();
    let id = "0190d6f0-0000-7000-8000-00000000dead";
    plant(&desk, id, scale, score, assessed_at);
    // Before: an empty time (or 1970) and the "severe" band were shown.
    assert_eq!(
        desk.patient_reports(PATIENT).unwrap_err().code,
        ErrorCode::StorageFailed
    );
    if assessed_at == i64::MAX {
        // Before: the export left the time out, and a follow-up was checked against 1970.
        assert_eq!(
            desk.export_fhir(Some(PATIENT)).unwrap_err().code,
            ErrorCode::StorageFailed
        );
        assert!(
            !dir.path().join("exports").exists(),
            "no export file written"
        );
        let follow_up = AssessmentInput {
            follows_up: Some(id.into()),
            ..nrs(3)
        };
        assert_eq!(
            desk.record_assessment(&follow_up).unwrap_err().code,
            ErrorCode::StorageFailed
        );
    }
}

#[test]
fn an_export_for_a_malformed_patient_id_names_the_id_not_the_store() {
    let (_d, desk) = signed_in();
    assert_eq!(
        desk.fhir_bundle(Some("bad id")).unwrap_err().code,
        ErrorCode::InvalidPatientId
    );
}
