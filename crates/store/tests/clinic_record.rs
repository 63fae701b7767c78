//! One clinic record on every device, at the store: a page of the reports feed
//! applied to a real SQLite file (foreign reports, this device's own coming back,
//! an own ID with other content, a target not here yet, invalid ones), the
//! conflict rule on every read, the database still refusing any change, and the
//! upgrade of a v5 store that holds data.

use chrono::{DateTime, Duration, Utc};
use clinic_domain::{AssessmentDetails, PainScale, PainScore, Patient, PatientId, Sex};
use clinic_store::audit::{self, AuditAction};
use clinic_store::outbox::{self, NewReport, OutboxState};
use clinic_store::pull::{self, Applied, PulledItem, PulledReport, STREAM_REPORTS, apply_reports};
use clinic_store::{Database, StoreError, migrate, migrations_sql, open_connection, patients};
use rstest::rstest;

const OWN_DEVICE: &str = "0190f7a4-0000-7000-8000-00000000000a";
const OTHER_DEVICE: &str = "0190f7a4-0000-7000-8000-00000000000b";
const PATIENT: &str = "P0001";

fn patient(id: &str) -> Patient {
    Patient {
        id: PatientId::parse(id).unwrap(),
        name: "张三".into(),
        sex: Sex::Male,
        birth_date: chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
        is_insured: true,
        phone: None,
    }
}

fn store() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("r.sqlite3")).unwrap();
    db.write(|c| {
        patients::upsert(c, &patient(PATIENT))?;
        clinic_store::settings::set(c, "device_id", OWN_DEVICE)
    })
    .unwrap();
    (dir, db)
}

fn at(minutes_ago: i64) -> DateTime<Utc> {
    DateTime::from_timestamp((Utc::now() - Duration::minutes(minutes_ago)).timestamp(), 0).unwrap()
}

/// A report recorded on the other device `minutes_ago`, as the feed brings it.
fn foreign(n: u128, score: i64, minutes_ago: i64) -> PulledReport {
    PulledReport {
        id: uuid::Uuid::from_u128(0x0190_f7a4_0000_7000_8000_0000_0000_0000 + n).to_string(),
        patient_id: PatientId::parse(PATIENT).unwrap(),
        score: PainScore::new(PainScale::Nrs, score).unwrap(),
        assessed_at: at(minutes_ago),
        recorded_at: at(minutes_ago).timestamp(),
        recorded_by: "N002".into(),
        device_id: OTHER_DEVICE.into(),
        supersedes: None,
        reason: None,
        details: AssessmentDetails::default(),
        follows_up: None,
        resolves: Vec::new(),
        received_at: at(minutes_ago).timestamp() + 5,
    }
}

fn correction(n: u128, of: &PulledReport, score: i64, minutes_ago: i64) -> PulledReport {
    PulledReport {
        supersedes: Some(of.id.clone()),
        reason: Some("entered the wrong score".into()),
        assessed_at: of.assessed_at,
        ..foreign(n, score, minutes_ago)
    }
}

fn item(seq: i64, r: &PulledReport) -> PulledItem<PulledReport> {
    PulledItem::upsert(seq, r.id.clone(), r.clone())
}

fn apply(db: &Database, page: &[PulledItem<PulledReport>], next: i64) -> pull::ReportsApplied {
    db.write(|c| apply_reports(c, page, next, Utc::now(), true))
        .unwrap()
}

fn set_aside(db: &Database) -> Vec<(String, String)> {
    let mut v: Vec<_> = db
        .read(|c| pull::set_aside_items(c, 100))
        .unwrap()
        .into_iter()
        .filter(|s| s.stream == STREAM_REPORTS)
        .map(|s| (s.item_id, s.reason))
        .collect();
    v.sort();
    v
}

fn trail(db: &Database, id: &str) -> Vec<AuditAction> {
    db.read(|c| audit::for_report(c, id))
        .unwrap()
        .iter()
        .map(|e| e.action)
        .collect()
}

/// A foreign report is stored like an own one (every read sees it) with who and
/// where it was recorded, marked received, never queued, and its trail says so.
#[test]
fn a_foreign_report_is_stored_as_received_and_never_queued() {
    let (_d, db) = store();
    let r = PulledReport {
        details: AssessmentDetails {
            intervention: Some("吗啡 5mg".into()),
            ..Default::default()
        },
        ..foreign(1, 7, 10)
    };
    let done = apply(&db, &[item(1, &r)], 1);
    assert_eq!(
        (done.applied, done.stored, done.set_aside),
        (Applied::All, 1, 0)
    );
    let e = db.read(|c| outbox::get(c, &r.id)).unwrap().unwrap();
    assert_eq!(
        (
            e.state,
            e.recorded_by.as_str(),
            e.device_id.as_str(),
            e.received_at
        ),
        (
            OutboxState::Received,
            "N002",
            OTHER_DEVICE,
            Some(r.received_at)
        )
    );
    assert!(e.is_received() && e.standing.as_ref().unwrap().current);
    assert_eq!(
        e.reassess_due_at,
        Some(r.assessed_at.timestamp() + 60 * 60),
        "due from its assessment time and the clinic's interval (the default 60 minutes)"
    );
    assert_eq!(
        db.read(outbox::counts).unwrap().waiting(),
        0,
        "nothing to send"
    );
    assert!(
        db.write(|c| outbox::claim_batch(c, i64::MAX, 10, i64::MAX))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        trail(&db, &r.id),
        [AuditAction::Created, AuditAction::Received]
    );
    let pending = db.read(|c| outbox::pending_reassessments(c, 10)).unwrap();
    assert_eq!(
        pending.len(),
        1,
        "the clinic owes its reassessment here too"
    );
    assert_eq!(db.read(|c| pull::cursor(c, STREAM_REPORTS)).unwrap(), 1);
}

/// This device's own reports come back in the feed: recognised, nothing written;
/// the same ID with other content is set aside as a conflict and the stored one kept.
#[rstest]
#[case::same_content(None, 0)]
#[case::other_score(Some(9), 1)]
fn an_own_report_coming_back_is_recognised(
    #[case] other_score: Option<i64>,
    #[case] conflicts: usize,
) {
    let (_d, db) = store();
    let now = at(3);
    let own = NewReport {
        details: AssessmentDetails {
            note: Some("翻身时加重".into()),
            ..Default::default()
        },
        ..NewReport::score(
            PatientId::parse(PATIENT).unwrap(),
            PainScore::new(PainScale::Nrs, 4).unwrap(),
            now,
            "N001",
            OWN_DEVICE,
        )
    };
    let id = db.write(|c| outbox::record_report(c, &own, now)).unwrap();
    let back = PulledReport {
        id: id.clone(),
        score: PainScore::new(PainScale::Nrs, other_score.unwrap_or(4)).unwrap(),
        assessed_at: now,
        recorded_at: now.timestamp(),
        recorded_by: "N001".into(),
        device_id: OWN_DEVICE.into(),
        details: own.details.clone(),
        ..foreign(0, 4, 3)
    };
    let before = trail(&db, &id);
    let done = apply(&db, &[item(1, &back)], 1);
    assert_eq!((done.stored, done.set_aside), (0, conflicts));
    let e = db.read(|c| outbox::get(c, &id)).unwrap().unwrap();
    assert_eq!(
        (e.score, e.state, e.pulled_at),
        (4, OutboxState::Queued, None),
        "kept as it was"
    );
    assert_eq!(trail(&db, &id), before, "nothing written");
    assert_eq!(set_aside(&db).len(), conflicts);
    if conflicts > 0 {
        assert!(
            set_aside(&db)[0].1.contains("conflict"),
            "{:?}",
            set_aside(&db)
        );
    }
}

/// Each refused report is set aside with its reason and never blocks the rest of
/// its page or the cursor.
#[rstest]
#[case::claims_this_device(PulledReport { device_id: OWN_DEVICE.into(), ..foreign(2, 3, 5) }, "this device")]
#[case::unknown_patient(PulledReport { patient_id: PatientId::parse("P9999").unwrap(), ..foreign(2, 3, 5) }, "patient")]
#[case::supersedes_itself(PulledReport { supersedes: Some(foreign(2, 3, 5).id), ..foreign(2, 3, 5) }, "itself")]
#[case::follows_up_itself(PulledReport { follows_up: Some(foreign(2, 3, 5).id), ..foreign(2, 3, 5) }, "itself")]
#[case::resolves_without_correcting(PulledReport { resolves: vec![foreign(1, 5, 9).id], ..foreign(2, 3, 5) }, "resolving")]
#[case::follows_up_an_assessment_without_intervention(PulledReport { follows_up: Some(foreign(1, 5, 9).id), ..foreign(2, 3, 5) }, "reassessment")]
fn an_invalid_report_is_set_aside_and_the_rest_goes_on(
    #[case] bad: PulledReport,
    #[case] why: &str,
) {
    let (_d, db) = store();
    let first = foreign(1, 5, 9);
    let last = foreign(3, 2, 1);
    let done = apply(&db, &[item(1, &first), item(2, &bad), item(3, &last)], 3);
    assert_eq!(
        (done.applied, done.stored, done.set_aside),
        (Applied::All, 2, 1)
    );
    let aside = set_aside(&db);
    assert_eq!(aside.len(), 1);
    assert!(aside[0].1.to_lowercase().contains(why), "{aside:?}");
    assert!(
        db.read(|c| outbox::get(c, &bad.id)).unwrap().is_none(),
        "nothing of it stored"
    );
    assert_eq!(db.read(|c| pull::cursor(c, STREAM_REPORTS)).unwrap(), 3);
}

/// A correction that arrives before the report it corrects waits, set aside; when
/// the report arrives the cursor goes back so the next fetch brings it again.
#[test]
fn a_report_whose_target_is_not_here_yet_waits_and_is_fetched_again() {
    let (_d, db) = store();
    let original = foreign(1, 8, 30);
    let fix = correction(2, &original, 6, 20);
    let done = apply(&db, &[item(5, &fix)], 5);
    assert_eq!((done.applied, done.set_aside), (Applied::All, 1));
    assert!(set_aside(&db)[0].1.contains("waits for"));
    // The original comes in a later page: stored, and the stream rewinds to refetch.
    let done = apply(&db, &[item(6, &original)], 6);
    assert_eq!(done.applied, Applied::Rewound);
    assert_eq!(db.read(|c| pull::cursor(c, STREAM_REPORTS)).unwrap(), 4);
    let done = apply(&db, &[item(5, &fix), item(6, &original)], 6);
    assert_eq!(
        (done.applied, done.stored, done.set_aside),
        (Applied::All, 1, 0)
    );
    assert!(set_aside(&db).is_empty());
    let o = db.read(|c| outbox::get(c, &original.id)).unwrap().unwrap();
    assert_eq!(o.superseded_by.as_deref(), Some(fix.id.as_str()));
}

fn standing(db: &Database, id: &str) -> (bool, bool, bool) {
    let s = db
        .read(|c| outbox::get(c, id))
        .unwrap()
        .unwrap()
        .standing
        .unwrap();
    (s.live, s.current, s.conflicting)
}

/// Two corrections of one record: both stored, the record conflicting, the later
/// shown as current, the trail says so; a resolution settles it.
#[test]
fn concurrent_corrections_conflict_until_a_resolution_settles_them() {
    let (_d, db) = store();
    let original = foreign(1, 8, 30);
    let a = correction(2, &original, 6, 20);
    let b = PulledReport {
        device_id: "third-device".into(),
        ..correction(3, &original, 5, 10)
    };
    apply(&db, &[item(1, &original), item(2, &a), item(3, &b)], 3);
    assert_eq!(standing(&db, &original.id), (false, false, true));
    assert_eq!(standing(&db, &a.id), (true, false, true));
    assert_eq!(
        standing(&db, &b.id),
        (true, true, true),
        "recorded later: shown"
    );
    assert!(trail(&db, &a.id).contains(&AuditAction::Conflicting));
    assert!(trail(&db, &b.id).contains(&AuditAction::Conflicting));
    let list = db
        .read(|c| outbox::for_patient(c, &PatientId::parse(PATIENT).unwrap(), 10))
        .unwrap();
    assert_eq!(list.len(), 3, "no correction lost or hidden");

    // This device settles it: supersedes the shown one, resolves the other.
    let settled = NewReport::score(
        PatientId::parse(PATIENT).unwrap(),
        PainScore::new(PainScale::Nrs, 5).unwrap(),
        original.assessed_at,
        "N001",
        OWN_DEVICE,
    );
    assert_eq!(
        db.write(|c| outbox::resolve(
            c,
            &a.id,
            &settled,
            "agreed",
            std::slice::from_ref(&b.id),
            Utc::now()
        ))
        .unwrap(),
        None,
        "only the shown current one is superseded by a resolution"
    );
    let r = db
        .write(|c| {
            outbox::resolve(
                c,
                &b.id,
                &settled,
                "agreed with N002",
                std::slice::from_ref(&a.id),
                Utc::now(),
            )
        })
        .unwrap()
        .unwrap();
    assert_eq!(standing(&db, &r), (true, true, false));
    assert_eq!(standing(&db, &a.id), (false, false, false));
    let resolved = db.read(|c| outbox::get(c, &a.id)).unwrap().unwrap();
    assert_eq!(resolved.superseded_by.as_deref(), Some(r.as_str()));
    assert_eq!(trail(&db, &a.id).last(), Some(&AuditAction::Superseded));
    let claimed = db
        .write(|c| outbox::claim_batch(c, i64::MAX, 10, i64::MAX))
        .unwrap();
    assert_eq!(
        claimed[0].resolves,
        std::slice::from_ref(&a.id),
        "the sender sends what it resolves"
    );
}

/// A resolution from another device arrives after the corrections it names.
#[test]
fn a_received_resolution_settles_the_record_here_too() {
    let (_d, db) = store();
    let original = foreign(1, 8, 30);
    let a = correction(2, &original, 6, 20);
    let b = correction(3, &original, 5, 10);
    let r = PulledReport {
        resolves: vec![a.id.clone()],
        ..correction(4, &b, 5, 5)
    };
    let done = apply(
        &db,
        &[item(1, &original), item(2, &a), item(3, &b), item(4, &r)],
        4,
    );
    assert_eq!((done.stored, done.set_aside), (4, 0));
    assert_eq!(standing(&db, &r.id), (true, true, false));
    assert!(!standing(&db, &a.id).0, "resolved");
    // A resolution naming a report of another record is refused.
    let other = foreign(5, 3, 50);
    let wrong = PulledReport {
        resolves: vec![other.id.clone()],
        ..correction(6, &r, 4, 2)
    };
    let done = apply(&db, &[item(5, &other), item(6, &wrong)], 6);
    assert_eq!(done.set_aside, 1);
    assert!(set_aside(&db)[0].1.contains("another record"));
}

/// The triggers still refuse any change to a saved assessment, received ones and
/// resolutions included.
#[rstest]
#[case::change_a_received_score("UPDATE pain_reports SET score = 0 WHERE pulled_at IS NOT NULL")]
#[case::unmark_received("UPDATE pain_reports SET pulled_at = NULL")]
#[case::delete_a_received_report("DELETE FROM pain_reports WHERE pulled_at IS NOT NULL")]
#[case::undo_a_resolution("DELETE FROM report_resolutions")]
#[case::move_a_resolution("UPDATE report_resolutions SET resolves = report_id")]
#[case::replace_a_resolution(
    "INSERT OR REPLACE INTO report_resolutions SELECT * FROM report_resolutions"
)]
#[case::rewrite_the_trail("UPDATE audit_log SET actor = 'N999' WHERE action = 'received'")]
#[case::erase_the_trail("DELETE FROM audit_log")]
fn received_reports_and_resolutions_are_append_only(#[case] sql: &str) {
    let (_d, db) = store();
    let original = foreign(1, 8, 30);
    let a = correction(2, &original, 6, 20);
    let b = correction(3, &original, 5, 10);
    let r = PulledReport {
        resolves: vec![a.id.clone()],
        ..correction(4, &b, 5, 5)
    };
    apply(
        &db,
        &[item(1, &original), item(2, &a), item(3, &b), item(4, &r)],
        4,
    );
    let snapshot = |c: &rusqlite::Connection| -> Result<String, StoreError> {
        Ok(c.query_row(
            "SELECT (SELECT group_concat(id || score || coalesce(pulled_at, ''), ';') FROM (SELECT * FROM pain_reports ORDER BY id))
                    || '|' || (SELECT group_concat(report_id || resolves, ';') FROM report_resolutions)
                    || '|' || (SELECT group_concat(seq || actor || action, ';') FROM (SELECT * FROM audit_log ORDER BY seq))",
            [],
            |r| r.get(0),
        )?)
    };
    let before = db.read(snapshot).unwrap();
    let err = db.write(|c| c.execute_batch(sql)).unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert_eq!(db.read(snapshot).unwrap(), before, "nothing changed");
}

/// A v5 store with reports, a correction, its trail and a set-aside record opens
/// as v6 with everything kept (same trail rows), and then takes what v5 refused:
/// a second correction of one record.
#[test]
fn a_v5_store_with_data_is_upgraded_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v5.sqlite3");
    let v5 = &migrations_sql()[..5];
    let (first, fix) = {
        let mut conn = open_connection(&path).unwrap();
        migrate::migrate(&mut conn, &path, v5).unwrap();
        conn.execute_batch(
            "INSERT INTO patients (id, name, sex, birth_date, is_insured) VALUES ('P0001', '张三', 'male', '1970-01-01', 1);
             INSERT INTO clinic_settings (key, value) VALUES ('device_id', 'v5-device');
             INSERT INTO pull_set_aside (stream, item_id, seq, reason, set_aside_at) VALUES ('staff', 'N9', 3, 'unknown role', 1);",
        )
        .unwrap();
        let first = uuid::Uuid::now_v7().to_string();
        let fix = uuid::Uuid::now_v7().to_string();
        conn.execute(
            "INSERT INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at, recorded_by, device_id, intervention, reassess_due_at)
             VALUES (?1, 'P0001', 'nrs', 8, 1764300000, 1764300000, 'N001', 'v5-device', 'ice', 1764303600)",
            [&first],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at, recorded_by, device_id, supersedes, correction_reason)
             VALUES (?1, 'P0001', 'nrs', 6, 1764300000, 1764300100, 'N001', 'v5-device', ?2, 'typo')",
            [&fix, &first],
        )
        .unwrap();
        for id in [&first, &fix] {
            conn.execute(
                "INSERT INTO outbox (report_id, state, queued_at) VALUES (?1, 'delivered', 1764300100)",
                [id],
            )
            .unwrap();
        }
        let again = conn.execute(
            "INSERT INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at, recorded_by, device_id, supersedes)
             VALUES ('x', 'P0001', 'nrs', 5, 1764300000, 1764300200, 'N001', 'v5-device', ?1)",
            [&first],
        );
        assert!(
            again.is_err(),
            "v5 refuses a second correction of one record"
        );
        (first, fix)
    };
    let trail_v5: Vec<(i64, String)> = {
        let conn = open_connection(&path).unwrap();
        let mut stmt = conn
            .prepare("SELECT seq, action FROM audit_log ORDER BY seq")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(trail_v5.len(), 3, "created, corrected, superseded");

    let db = Database::open(&path).unwrap();
    let trail_v6: Vec<(i64, String)> = db
        .read(|c| {
            let mut stmt = c.prepare("SELECT seq, action FROM audit_log ORDER BY seq")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    assert_eq!(trail_v6, trail_v5, "every trail row kept with its seq");
    let e = db.read(|c| outbox::get(c, &first)).unwrap().unwrap();
    assert_eq!(
        (e.state, e.superseded_by.as_deref(), e.pulled_at),
        (OutboxState::Delivered, Some(fix.as_str()), None),
        "own reports stay own"
    );
    assert_eq!(
        db.read(pull::set_aside_count).unwrap(),
        1,
        "set-aside rows kept"
    );
    assert_eq!(
        db.read(|c| pull::cursor(c, STREAM_REPORTS)).unwrap(),
        0,
        "the feed starts from the beginning"
    );
    let err = db
        .write(|c| c.execute("UPDATE pain_reports SET score = 0", []))
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");

    // What v5 refused: a concurrent correction from another device.
    let other = PulledReport {
        id: uuid::Uuid::now_v7().to_string(),
        supersedes: Some(first.clone()),
        reason: Some("scored on movement".into()),
        assessed_at: DateTime::from_timestamp(1_764_300_000, 0).unwrap(),
        recorded_at: 1_764_300_300,
        ..foreign(0, 7, 0)
    };
    let done = apply(&db, &[item(1, &other)], 1);
    assert_eq!((done.stored, done.set_aside), (1, 0));
    assert_eq!(standing(&db, &other.id), (true, true, true));
    assert_eq!(standing(&db, &fix), (true, false, true));
}
