//! The board over a real SQLite file: reports are written as rows, the way this
//! device's own and received ones are both stored (the board never looks at the outbox).

use chrono::{DateTime, TimeZone, Utc};
use clinic_domain::ward::Trend;
use clinic_domain::{PatientId, Sex};
use rstest::rstest;

use super::*;
use crate::{Database, patients};

const M: i64 = 60;
const H: i64 = 3600;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap()
}

/// A report as a row: `ago` seconds before [`now`], on device `dev-a` by `N001`
/// unless told otherwise.
#[derive(Debug, Clone, Copy)]
struct Rep {
    id: &'static str,
    patient: &'static str,
    score: i64,
    ago: i64,
    /// Seconds after [`now`] the reassessment falls due (negative: already past).
    due_in: Option<i64>,
    supersedes: Option<&'static str>,
    follows_up: Option<&'static str>,
    by: &'static str,
    device: &'static str,
}

const fn rep(id: &'static str, patient: &'static str, score: i64, ago: i64) -> Rep {
    Rep {
        id,
        patient,
        score,
        ago,
        due_in: None,
        supersedes: None,
        follows_up: None,
        by: "N001",
        device: "dev-a",
    }
}

impl Rep {
    const fn due(self, due_in: i64) -> Self {
        Self {
            due_in: Some(due_in),
            ..self
        }
    }
    const fn corrects(self, id: &'static str) -> Self {
        Self {
            supersedes: Some(id),
            ..self
        }
    }
    const fn follows(self, id: &'static str) -> Self {
        Self {
            follows_up: Some(id),
            ..self
        }
    }
    const fn from(self, by: &'static str, device: &'static str) -> Self {
        Self { by, device, ..self }
    }
}

fn store(reports: &[Rep]) -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("ward.sqlite3")).unwrap();
    db.write(|c| {
        for (id, name) in [
            ("P1", "张一"),
            ("P2", "李二"),
            ("P3", "王三"),
            ("P4", "赵四"),
            ("P5", "钱五"),
        ] {
            patients::upsert(
                c,
                &clinic_domain::Patient {
                    id: PatientId::parse(id).unwrap(),
                    name: name.into(),
                    sex: Sex::Female,
                    birth_date: chrono::NaiveDate::from_ymd_opt(1960, 5, 1).unwrap(),
                    is_insured: true,
                    phone: None,
                },
            )?;
        }
        c.execute_batch(
            "INSERT INTO staff (id, name, role, department) VALUES ('N001', '护士甲', 'nurse', '内科');
             INSERT INTO staff (id, name, role, department) VALUES ('N002', '护士乙', 'nurse', '内科');",
        )?;
        for r in reports {
            insert(c, r)?;
        }
        Ok::<_, StoreError>(())
    })
    .unwrap();
    (dir, db)
}

fn insert(c: &Connection, r: &Rep) -> Result<(), StoreError> {
    let at = now().timestamp() - r.ago;
    c.execute(
        "INSERT INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at, recorded_by,
                                   device_id, supersedes, correction_reason, follows_up, intervention,
                                   reassess_due_at)
         VALUES (?1, ?2, 'nrs', ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            r.id,
            r.patient,
            r.score,
            at,
            r.by,
            r.device,
            r.supersedes,
            r.supersedes.map(|_| "typo"),
            r.follows_up,
            r.due_in.map(|_| "布洛芬"),
            r.due_in.map(|d| now().timestamp() + d),
        ],
    )?;
    Ok(())
}

/// (patient, latest score, previous score, trend, reassessment owed and overdue).
type Line = (&'static str, u8, Option<u8>, Trend, bool);

fn lines(db: &Database, hours: u32) -> Vec<Line> {
    db.read(|c| board(c, now(), hours))
        .unwrap()
        .iter()
        .map(|row| {
            let leaked: &'static str = Box::leak(row.patient_id.clone().into_boxed_str());
            (
                leaked,
                row.latest.score.value(),
                row.previous.map(|p| p.score.value()),
                row.trend(),
                row.urgency(now()).overdue,
            )
        })
        .collect()
}

#[rstest]
#[case::overdue_then_severe_then_oldest(
    &[
        rep("a1", "P1", 3, 5 * H),
        rep("b1", "P2", 8, H),
        rep("c1", "P3", 2, 3 * H).due(-2 * H),
        rep("d1", "P4", 4, 2 * H),
    ],
    &[("P3", 2, None, Trend::First, true), ("P2", 8, None, Trend::First, false),
      ("P1", 3, None, Trend::First, false), ("P4", 4, None, Trend::First, false)],
)]
#[case::a_reassessment_not_yet_due_does_not_jump_the_queue(
    &[rep("a1", "P1", 3, 5 * H), rep("c1", "P3", 2, 30 * M).due(30 * M)],
    &[("P1", 3, None, Trend::First, false), ("P3", 2, None, Trend::First, false)],
)]
#[case::a_followed_up_intervention_is_settled(
    &[
        rep("a1", "P1", 6, 4 * H),
        rep("c1", "P3", 7, 3 * H).due(-2 * H),
        rep("c2", "P3", 3, 2 * H).follows("c1"),
    ],
    &[("P1", 6, None, Trend::First, false), ("P3", 3, Some(7), Trend::Down, false)],
)]
#[case::a_follow_up_of_the_record_a_correction_replaced_still_counts(
    &[
        rep("c1", "P3", 7, 3 * H).due(-2 * H),
        rep("c2", "P3", 3, 2 * H).follows("c1"),
        rep("c3", "P3", 8, 3 * H).due(-2 * H).corrects("c1"),
    ],
    &[("P3", 3, Some(8), Trend::Down, false)],
)]
#[case::a_superseded_follow_up_settles_nothing(
    &[
        rep("c1", "P3", 7, 3 * H).due(-2 * H),
        rep("c2", "P3", 3, 2 * H).follows("c1"),
        rep("c3", "P3", 3, 2 * H).corrects("c2"),
    ],
    &[("P3", 3, Some(7), Trend::Down, true)],
)]
#[case::a_superseded_intervention_owes_nothing(
    &[
        rep("c1", "P3", 7, 3 * H).due(-2 * H),
        rep("c2", "P3", 7, 3 * H).corrects("c1"),
    ],
    &[("P3", 7, None, Trend::First, false)],
)]
#[case::received_reports_count_like_this_devices_own(
    &[
        rep("a1", "P1", 9, H).from("N002", "dev-b"),
        rep("c1", "P3", 1, 2 * H).due(-H).from("N002", "dev-b"),
    ],
    &[("P3", 1, None, Trend::First, true), ("P1", 9, None, Trend::First, false)],
)]
#[case::the_trend_is_since_the_previous_assessment_whenever_it_was(
    &[
        rep("a1", "P1", 2, 3 * 24 * H),
        rep("a2", "P1", 5, H),
        rep("b1", "P2", 6, 5 * H),
        rep("b2", "P2", 6, 4 * H),
        rep("d1", "P4", 9, 2 * H),
        rep("d2", "P4", 4, 90 * M),
    ],
    &[("P2", 6, Some(6), Trend::Same, false), ("P4", 4, Some(9), Trend::Down, false),
      ("P1", 5, Some(2), Trend::Up, false)],
)]
#[case::a_corrected_score_is_shown_as_corrected(
    &[
        rep("a1", "P1", 3, 5 * H),
        rep("a2", "P1", 9, 2 * H),
        rep("a3", "P1", 4, 2 * H).corrects("a2"),
    ],
    &[("P1", 4, Some(3), Trend::Up, false)],
)]
#[case::a_correction_of_a_correction(
    &[
        rep("a1", "P1", 3, 5 * H),
        rep("a2", "P1", 9, 2 * H),
        rep("a3", "P1", 8, 2 * H).corrects("a2"),
        rep("a4", "P1", 7, 2 * H).corrects("a3"),
    ],
    &[("P1", 7, Some(3), Trend::Up, false)],
)]
#[case::a_correction_moved_out_of_the_window_takes_the_patient_off(
    &[
        rep("a1", "P1", 3, 30 * H),
        rep("a2", "P1", 5, 2 * H),
        rep("a3", "P1", 5, 26 * H).corrects("a2"),
        rep("b1", "P2", 1, H),
    ],
    &[("P2", 1, None, Trend::First, false)],
)]
#[case::the_latest_is_by_assessment_time_not_by_when_it_was_typed(
    &[rep("z9", "P1", 8, 3 * H), rep("a1", "P1", 2, H)],
    &[("P1", 2, Some(8), Trend::Down, false)],
)]
#[case::a_tie_in_time_is_broken_by_the_report_id(
    &[rep("a1", "P1", 2, H), rep("a2", "P1", 6, H)],
    &[("P1", 6, Some(2), Trend::Up, false)],
)]
#[case::patients_without_reports_are_not_listed(&[], &[])]
#[case::patients_assessed_before_the_window_are_not_listed(
    &[rep("a1", "P1", 8, 25 * H).due(-24 * H), rep("b1", "P2", 2, 23 * H)],
    &[("P2", 2, None, Trend::First, false)],
)]
fn the_board_lists_the_current_scores_most_urgent_first(
    #[case] reports: &[Rep],
    #[case] expected: &[Line],
) {
    let (_dir, db) = store(reports);
    assert_eq!(lines(&db, 24), expected);
}

#[rstest]
#[case::exactly_at_the_edge_is_in(24 * H, 24, true)]
#[case::a_second_before_the_edge_is_out(24 * H + 1, 24, false)]
#[case::the_clinics_shorter_window(9 * H, 8, false)]
#[case::the_clinics_longer_window(47 * H, 48, true)]
#[case::a_time_slightly_ahead_of_this_clock_is_in(-60, 24, true)]
fn the_window_edge_is_inclusive(#[case] ago: i64, #[case] hours: u32, #[case] listed: bool) {
    let (_dir, db) = store(&[rep("a1", "P1", 5, ago)]);
    assert_eq!(!lines(&db, hours).is_empty(), listed);
}

#[test]
fn a_row_says_who_recorded_the_latest_score_where_and_when() {
    let (_dir, db) = store(&[
        rep("a1", "P1", 3, 5 * H),
        rep("a2", "P1", 6, 2 * H).due(-H).from("N002", "dev-b"),
        rep("b1", "P2", 1, H).from("X404", "dev-c"),
    ]);
    let rows = db.read(|c| board(c, now(), 24)).unwrap();
    let p1 = rows.iter().find(|r| r.patient_id == "P1").unwrap();
    assert_eq!(p1.patient_name, "张一");
    assert_eq!(p1.latest.report_id, "a2");
    assert_eq!(
        (
            p1.latest.recorded_by.as_str(),
            p1.latest.recorded_by_name.as_deref()
        ),
        ("N002", Some("护士乙"))
    );
    assert_eq!(p1.latest.device_id, "dev-b");
    assert_eq!(p1.latest.assessed_at, now() - chrono::Duration::hours(2));
    assert_eq!(p1.reassess_due_at, Some(now() - chrono::Duration::hours(1)));
    assert_eq!(
        p1.previous.map(|p| p.assessed_at),
        Some(now() - chrono::Duration::hours(5))
    );
    let p2 = rows.iter().find(|r| r.patient_id == "P2").unwrap();
    assert_eq!(
        (
            p2.latest.recorded_by.as_str(),
            p2.latest.recorded_by_name.as_deref()
        ),
        ("X404", None),
        "a member this device does not know keeps the ID"
    );
}

#[test]
fn the_earliest_owed_reassessment_is_the_one_shown() {
    let (_dir, db) = store(&[
        rep("a1", "P1", 6, 5 * H).due(-4 * H),
        rep("a2", "P1", 5, 3 * H).due(-2 * H).follows("a1"),
        rep("a3", "P1", 5, 20 * M).due(40 * M),
    ]);
    let rows = db.read(|c| board(c, now(), 24)).unwrap();
    assert_eq!(
        rows[0].reassess_due_at,
        Some(now() - chrono::Duration::hours(2)),
        "a1 is settled by a2; a2 is owed and earlier than a3"
    );
}

#[test]
fn a_deleted_patient_is_not_listed() {
    let (_dir, db) = store(&[rep("a1", "P1", 5, H), rep("b1", "P2", 5, H)]);
    db.write(|c| c.execute("UPDATE patients SET deleted_at = 1 WHERE id = 'P2'", []))
        .unwrap();
    assert_eq!(
        lines(&db, 24),
        [("P1", 5, None, Trend::First, false)],
        "the patients screen cannot open them"
    );
}

#[test]
fn a_score_no_rule_would_have_written_is_an_error_not_a_guess() {
    let (_dir, db) = store(&[]);
    db.write(|c| {
        c.execute(
            "INSERT INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at, recorded_by, device_id)
             VALUES ('x', 'P1', 'wong_baker_faces', 5, ?1, ?1, 'N001', 'dev-a')",
            [now().timestamp() - H],
        )
    })
    .unwrap();
    let err = db.read(|c| board(c, now(), 24)).unwrap_err();
    assert!(matches!(err, StoreError::CorruptRow(_)), "{err}");
}

/// Every access to `pain_reports`, `patients` and `staff` is a search of an index or
/// of the primary key: none reads the table through, so the board's cost follows the
/// ward, not the years of history.
#[test]
fn the_plan_searches_indexes_only() {
    let (_dir, db) = store(&[rep("a1", "P1", 5, H)]);
    let plan: Vec<String> = db
        .read(|c| {
            let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {}", board_sql()))?;
            let rows = stmt.query_map([0], |r| r.get::<_, String>("detail"))?;
            rows.collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    let text = plan.join("\n");
    assert!(
        text.contains("pain_reports_by_assessed_at"),
        "the window is a range of its index:\n{text}"
    );
    assert!(
        text.contains("pain_reports_awaiting_reassessment_by_patient"),
        "what a patient is owed is found among their interventions:\n{text}"
    );
    for line in &plan {
        let scans_a_table = line.starts_with("SCAN ")
            && !["SCAN recent", "SCAN b"]
                .iter()
                .any(|cte| line == cte || line.starts_with(&format!("{cte} ")));
        assert!(!scans_a_table, "a full scan: {line}\n{text}");
    }
}
