use chrono::Utc;
use clinic_domain::{AssessmentDetails, PainScale, PainScore, PatientId};
use rstest::rstest;
use rusqlite::Connection;

use super::*;
use crate::StoreError;
use crate::audit::{self, AuditAction};
use crate::{Database, patients};

fn store_with_patient() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("o.sqlite3")).unwrap();
    db.write(|c| {
        patients::upsert(
            c,
            &clinic_domain::Patient {
                id: PatientId::parse("P0001").unwrap(),
                name: "张三".into(),
                sex: clinic_domain::Sex::Male,
                birth_date: chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
                is_insured: true,
                phone: None,
            },
        )
    })
    .unwrap();
    (dir, db)
}

/// The lease the tests' claims at time 0 take: their entries are `sending` until 60.
const LEASE: i64 = 60;

fn report(score: i64) -> NewReport {
    NewReport::score(
        PatientId::parse("P0001").unwrap(),
        PainScore::new(PainScale::Nrs, score).unwrap(),
        Utc::now(),
        "N01",
        "dev",
    )
}

#[test]
fn a_report_and_its_entry_are_written_together_with_a_v7_id() {
    let (_d, db) = store_with_patient();
    let id = db
        .write(|c| record_report(c, &report(5), Utc::now()))
        .unwrap();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
    let e = db.read(|c| get(c, &id)).unwrap().unwrap();
    assert_eq!((e.state, e.score, e.attempts), (OutboxState::Queued, 5, 0));
    let mut bad = report(5);
    bad.patient_id = PatientId::parse("NOBODY").unwrap();
    assert!(
        db.write(|c| record_report(c, &bad, Utc::now())).is_err(),
        "unknown patient refused"
    );
    assert_eq!(
        db.read(counts).unwrap(),
        OutboxCounts {
            queued: 1,
            ..Default::default()
        },
        "nothing half-written"
    );
}

#[rstest]
#[case::delivered(OutboxState::Delivered)]
#[case::rejected(OutboxState::Rejected)]
#[case::released(OutboxState::Queued)]
fn claimed_entries_end_in_one_state_and_keep_their_id(#[case] end: OutboxState) {
    let (_d, db) = store_with_patient();
    let ids: Vec<String> = (0..3)
        .map(|i| {
            db.write(|c| record_report(c, &report(i), Utc::now()))
                .unwrap()
        })
        .collect();
    let batch = db.write(|c| claim_batch(c, 0, 2, LEASE)).unwrap();
    assert_eq!(
        batch.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        ids[..2],
        "oldest first"
    );
    assert_eq!(db.read(counts).unwrap().sending, 2);
    let claimed: Vec<String> = batch.iter().map(|e| e.id.clone()).collect();
    match end {
        OutboxState::Delivered => db
            .write(|c| {
                mark_delivered(
                    c,
                    &claimed
                        .iter()
                        .map(|i| (i.clone(), None))
                        .collect::<Vec<_>>(),
                    9,
                )
            })
            .unwrap(),
        OutboxState::Rejected => db
            .write(|c| {
                mark_rejected(
                    c,
                    &claimed
                        .iter()
                        .map(|i| (i.clone(), "bad".to_owned()))
                        .collect::<Vec<_>>(),
                )
            })
            .unwrap(),
        _ => db.write(|c| release(c, &claimed, "timeout", 0)).unwrap(),
    }
    for id in &claimed {
        assert_eq!(db.read(|c| get(c, id)).unwrap().unwrap().state, end);
    }
    assert_eq!(db.read(counts).unwrap().sending, 0);
    assert!(
        db.read(|c| patient_has_pending(c, "P0001")).unwrap(),
        "the third is still queued"
    );
}

#[test]
fn in_flight_entries_are_requeued_after_a_crash_and_rejected_ones_on_request() {
    let (_d, db) = store_with_patient();
    let id = db
        .write(|c| record_report(c, &report(1), Utc::now()))
        .unwrap();
    db.write(|c| claim_batch(c, 0, 10, LEASE)).unwrap();
    assert_eq!(db.write(|c| requeue_in_flight(c)).unwrap(), 1);
    let again = db.write(|c| claim_batch(c, 0, 10, LEASE)).unwrap();
    assert_eq!(
        (again[0].id.as_str(), again[0].attempts),
        (id.as_str(), 2),
        "same ID, second attempt"
    );
    db.write(|c| mark_rejected(c, &[(id.clone(), "409".into())]))
        .unwrap();
    assert!(
        db.write(|c| claim_batch(c, 0, 10, LEASE))
            .unwrap()
            .is_empty(),
        "rejected entries are not sent"
    );
    assert!(db.write(|c| requeue_rejected(c, &id)).unwrap());
    assert!(
        !db.write(|c| requeue_rejected(c, &id)).unwrap(),
        "only a rejected one"
    );
    assert_eq!(db.read(counts).unwrap().queued, 1);
}

/// A sync dropped between its claim and its verdicts leaves its entries `sending`;
/// a later claim takes them back once their lease has passed, same ID, one attempt
/// more, and never while the lease runs (the report may still be on the wire).
#[rstest]
#[case::lease_running(59, false)]
#[case::lease_ended(60, true)]
#[case::long_after(10_000, true)]
fn an_abandoned_claim_is_taken_again_once_its_lease_has_passed(
    #[case] later: i64,
    #[case] taken_again: bool,
) {
    let (_d, db) = store_with_patient();
    let id = db
        .write(|c| record_report(c, &report(5), Utc::now()))
        .unwrap();
    assert_eq!(db.write(|c| claim_batch(c, 0, 10, LEASE)).unwrap().len(), 1);
    let again = db
        .write(|c| claim_batch(c, later, 10, later + LEASE))
        .unwrap();
    if taken_again {
        assert_eq!(
            again
                .iter()
                .map(|e| (e.id.as_str(), e.attempts))
                .collect::<Vec<_>>(),
            [(id.as_str(), 2)],
            "same ID, second attempt"
        );
    } else {
        assert!(again.is_empty(), "still leased: {again:?}");
    }
    assert_eq!(db.read(counts).unwrap().sending, 1, "sending either way");
    // A restart does not wait for the lease: what was in flight is due at once.
    assert_eq!(db.write(|c| requeue_in_flight(c)).unwrap(), 1);
    assert_eq!(db.write(|c| claim_batch(c, 0, 10, LEASE)).unwrap().len(), 1);
}

#[rstest]
#[case::still_queued(None, OutboxState::Queued)]
#[case::delivered(Some(OutboxState::Delivered), OutboxState::Delivered)]
#[case::refused(Some(OutboxState::Rejected), OutboxState::Superseded)]
fn a_correction_is_a_new_report_that_names_the_old_one_which_stays(
    #[case] before: Option<OutboxState>,
    #[case] old_state_after: OutboxState,
) {
    let (_d, db) = store_with_patient();
    let old = db
        .write(|c| record_report(c, &report(3), Utc::now()))
        .unwrap();
    if let Some(state) = before {
        db.write(|c| claim_batch(c, 0, 10, LEASE)).unwrap();
        match state {
            OutboxState::Delivered => db
                .write(|c| mark_delivered(c, &[(old.clone(), None)], 1))
                .unwrap(),
            _ => db
                .write(|c| mark_rejected(c, &[(old.clone(), "bad".into())]))
                .unwrap(),
        }
    }
    let new = db
        .write(|c| correct(c, &old, &report(4), "typo", Utc::now()))
        .unwrap()
        .unwrap();
    let (o, n) = (
        db.read(|c| get(c, &old)).unwrap().unwrap(),
        db.read(|c| get(c, &new)).unwrap().unwrap(),
    );
    assert_eq!(
        (o.state, o.score, o.superseded_by.as_deref()),
        (old_state_after, 3, Some(new.as_str())),
        "original kept"
    );
    assert_eq!(
        (n.state, n.score, n.superseded_by),
        (OutboxState::Queued, 4, None)
    );
    assert_eq!(
        (n.supersedes.as_deref(), n.correction_reason.as_deref()),
        (Some(old.as_str()), Some("typo"))
    );
    assert_eq!(
        db.write(|c| correct(c, &old, &report(5), "again", Utc::now()))
            .unwrap(),
        None,
        "corrected once"
    );
    let trail: Vec<AuditAction> = db
        .read(|c| audit::for_report(c, &old))
        .unwrap()
        .iter()
        .map(|e| e.action)
        .collect();
    let expected_sync = if before.is_some() {
        vec![AuditAction::SyncState]
    } else {
        vec![]
    };
    let superseded_sync = if old_state_after == OutboxState::Superseded {
        vec![AuditAction::SyncState]
    } else {
        vec![]
    };
    assert_eq!(
        trail,
        [
            vec![AuditAction::Created],
            expected_sync,
            superseded_sync,
            vec![AuditAction::Superseded]
        ]
        .concat(),
        "the old record's trail"
    );
    let trail: Vec<AuditAction> = db
        .read(|c| audit::for_report(c, &new))
        .unwrap()
        .iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(trail, [AuditAction::Corrected]);
}

/// Everything a person or a bug could try on a saved assessment or the trail.
#[rstest]
#[case::change_a_score("UPDATE pain_reports SET score = 0")]
#[case::change_the_time("UPDATE pain_reports SET assessed_at = assessed_at - 3600")]
#[case::change_who("UPDATE pain_reports SET recorded_by = 'N999'")]
#[case::add_a_note_later("UPDATE pain_reports SET note = 'added later'")]
#[case::hide_a_correction("UPDATE pain_reports SET supersedes = NULL")]
#[case::delete_a_report("DELETE FROM pain_reports")]
#[case::rewrite_the_trail("UPDATE audit_log SET actor = 'N999'")]
#[case::erase_the_trail("DELETE FROM audit_log")]
#[case::replace_a_report("INSERT OR REPLACE INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at, recorded_by, device_id)
                          SELECT id, patient_id, scale, 0, assessed_at, recorded_at, recorded_by, device_id FROM pain_reports")]
#[case::replace_a_trail_row(
    "INSERT OR REPLACE INTO audit_log (seq, at, actor, device_id, action) SELECT seq, at, 'N999', device_id, action FROM audit_log"
)]
fn the_database_refuses_to_change_saved_assessments_and_the_trail(#[case] sql: &str) {
    let (_d, db) = store_with_patient();
    let old = db
        .write(|c| record_report(c, &report(7), Utc::now()))
        .unwrap();
    db.write(|c| correct(c, &old, &report(6), "typo", Utc::now()))
        .unwrap()
        .unwrap();
    let snapshot = |c: &Connection| -> Result<String, StoreError> {
        Ok(c.query_row(
            "SELECT (SELECT group_concat(id || score || assessed_at || recorded_by || coalesce(note, '') || coalesce(supersedes, ''), ';')
                     FROM (SELECT * FROM pain_reports ORDER BY id)) || '|' ||
                    (SELECT group_concat(seq || actor || action, ';') FROM (SELECT * FROM audit_log ORDER BY seq))",
            [],
            |r| r.get(0),
        )?)
    };
    let before = db.read(snapshot).unwrap();
    let err = db.write(|c| c.execute_batch(sql)).unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert_eq!(db.read(snapshot).unwrap(), before, "nothing changed");
}

#[test]
fn reassessments_wait_until_a_current_follow_up_is_recorded() {
    let (_d, db) = store_with_patient();
    let due = Utc::now() - chrono::Duration::minutes(5);
    let with_intervention = |device: &str| NewReport {
        details: AssessmentDetails {
            intervention: Some("ibuprofen 400mg".into()),
            ..Default::default()
        },
        reassess_due_at: Some(due),
        device_id: device.into(),
        ..report(8)
    };
    let ours = db
        .write(|c| record_report(c, &with_intervention("dev"), Utc::now()))
        .unwrap();
    let theirs = db
        .write(|c| record_report(c, &with_intervention("other-device"), Utc::now()))
        .unwrap();
    db.write(|c| record_report(c, &report(2), Utc::now()))
        .unwrap();
    let pending = |db: &Database| -> Vec<String> {
        db.read(|c| pending_reassessments(c, 10))
            .unwrap()
            .into_iter()
            .map(|(e, _)| e.id)
            .collect()
    };
    assert_eq!(
        pending(&db),
        [ours.clone(), theirs.clone()],
        "every device's, only with an intervention"
    );
    let follow = NewReport {
        follows_up: Some(ours.clone()),
        ..report(3)
    };
    let f = db.write(|c| record_report(c, &follow, Utc::now())).unwrap();
    assert_eq!(pending(&db), std::slice::from_ref(&theirs));
    assert_eq!(
        db.read(|c| get(c, &ours)).unwrap().unwrap().followed_up_by,
        Some(f.clone())
    );
    // The follow-up itself corrected (same link): still done.
    db.write(|c| {
        correct(
            c,
            &f,
            &NewReport {
                follows_up: Some(ours.clone()),
                ..report(4)
            },
            "typo",
            Utc::now(),
        )
    })
    .unwrap()
    .unwrap();
    assert_eq!(pending(&db), std::slice::from_ref(&theirs));
    // The original corrected: the reassessment already made still counts for the correction.
    let fixed = db
        .write(|c| {
            correct(
                c,
                &ours,
                &with_intervention("dev"),
                "wrong dose",
                Utc::now(),
            )
        })
        .unwrap()
        .unwrap();
    assert_eq!(
        pending(&db),
        std::slice::from_ref(&theirs),
        "{:?}",
        db.read(|c| get(c, &fixed)).unwrap()
    );
}
