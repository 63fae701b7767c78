//! The ward pain board through `Desk`, on a real store file with the demo clinic:
//! assessments recorded and corrected at the bedside, and one received from another
//! device, as the nurse in charge sees them.

use chrono::{Duration, SecondsFormat, Utc};
use clinic_desk_core::{AssessmentInput, CorrectionInput, DEMO_PIN, DEMO_SEED, Desk, WardBoardDto};
use clinic_domain::pain::PainBand;
use clinic_domain::ward::Trend;
use clinic_domain::{AssessmentForm, Reassessment};
use clinic_store::settings;
use rstest::rstest;

fn signed_in() -> (tempfile::TempDir, Desk) {
    let dir = tempfile::tempdir().unwrap();
    let desk = Desk::open(&dir.path().join("desk.sqlite3")).unwrap();
    desk.load_demo(DEMO_SEED, None).unwrap();
    desk.sign_in("N001", DEMO_PIN).unwrap();
    (dir, desk)
}

fn minutes_ago(m: i64) -> String {
    (Utc::now() - Duration::minutes(m)).to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn record(desk: &Desk, patient: &str, score: i64, ago: i64, intervention: Option<&str>) -> String {
    desk.record_assessment(&AssessmentInput {
        patient_id: patient.into(),
        values: AssessmentForm {
            scale: "nrs".into(),
            score,
            assessed_at: Some(minutes_ago(ago)),
            intervention: intervention.map(Into::into),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap()
    .id
}

fn order(board: &WardBoardDto) -> Vec<&str> {
    board
        .patients
        .iter()
        .map(|p| p.patient_id.as_str())
        .collect()
}

#[test]
fn the_nurse_in_charge_sees_the_most_urgent_first_with_trend_and_who() {
    let (_dir, desk) = signed_in();
    // P1: moderate, assessed 5 hours ago, then 4 hours ago: the oldest.
    record(&desk, "P0000001", 3, 300, None);
    record(&desk, "P0000001", 5, 240, None);
    // P2: severe an hour ago.
    record(&desk, "P0000002", 8, 60, None);
    // P3: an intervention two hours ago, never reassessed: overdue (the interval is 60 minutes).
    record(&desk, "P0000003", 4, 120, Some("布洛芬 400mg"));
    // P4: a 9 corrected to a 2 half an hour ago; the 9 is not current.
    let wrong = record(&desk, "P0000004", 9, 30, None);
    desk.correct_report(
        &wrong,
        &CorrectionInput {
            values: AssessmentForm {
                scale: "nrs".into(),
                score: 2,
                assessed_at: Some(minutes_ago(30)),
                ..Default::default()
            },
            reason: "录入错误".into(),
        },
    )
    .unwrap();

    let now = Utc::now();
    let board = desk.ward_board(now).unwrap();
    assert_eq!(board.window_hours, 24);
    assert_eq!(board.time_zone, "Asia/Shanghai");
    assert_eq!(
        order(&board),
        ["P0000003", "P0000002", "P0000001", "P0000004"],
        "overdue, then severe, then the oldest assessment"
    );
    let [p3, p2, p1, p4] = &board.patients[..] else {
        panic!("four patients")
    };
    assert_eq!(
        (p3.reassessment, p3.score, p3.band, p3.trend),
        (Reassessment::Overdue, 4, PainBand::Moderate, Trend::First)
    );
    assert!(p3.reassess_due_at.is_some());
    assert_eq!(
        (p2.band, p2.reassessment),
        (PainBand::Severe, Reassessment::NotNeeded)
    );
    assert_eq!(
        (p1.score, p1.previous_score, p1.trend, p1.minutes_ago),
        (5, Some(3), Trend::Up, 240)
    );
    assert_eq!(
        (p4.score, p4.band, p4.previous_score, p4.trend),
        (2, PainBand::Mild, None, Trend::First),
        "the corrected 9 is neither current nor the previous score"
    );
    assert_eq!(p1.recorded_by, "N001");
    assert!(p1.recorded_by_name.is_some(), "the demo nurse's name");
    assert!(p1.recorded_here, "recorded on this device");
    assert!(!p1.patient_name.is_empty());
    assert_eq!(board.as_of, now.to_rfc3339());
}

#[test]
fn a_report_received_from_another_device_is_on_the_board_marked_as_such() {
    let (_dir, desk) = signed_in();
    record(&desk, "P0000001", 2, 90, None);
    // As the pull stores a report recorded elsewhere: a row of its own, no outbox entry.
    desk.database()
        .write(|c| {
            c.execute(
                "INSERT INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at,
                                           recorded_by, device_id)
                 VALUES ('0190a0a0-0000-7000-8000-000000000001', 'P0000001', 'nrs', 7, ?1, ?1, 'N002', 'cart-2')",
                [(Utc::now() - Duration::minutes(10)).timestamp()],
            )
        })
        .unwrap();
    let board = desk.ward_board(Utc::now()).unwrap();
    let [p] = &board.patients[..] else {
        panic!("one patient: {:?}", order(&board))
    };
    assert_eq!(
        (
            p.score,
            p.previous_score,
            p.trend,
            p.recorded_by.as_str(),
            p.device_id.as_str()
        ),
        (7, Some(2), Trend::Up, "N002", "cart-2")
    );
    assert!(!p.recorded_here);
}

#[rstest]
#[case::the_default_window(None, 23 * 60, true)]
#[case::past_the_default_window(None, 25 * 60, false)]
#[case::the_clinics_shorter_window(Some("8"), 9 * 60, false)]
#[case::the_clinics_longer_window(Some("48"), 25 * 60, true)]
#[case::an_unreadable_setting_keeps_the_default(Some("soon"), 23 * 60, true)]
#[case::zero_keeps_the_default(Some("0"), 23 * 60, true)]
fn the_window_is_the_clinics_setting(
    #[case] setting: Option<&str>,
    #[case] ago_minutes: i64,
    #[case] listed: bool,
) {
    let (_dir, desk) = signed_in();
    if let Some(hours) = setting {
        desk.database()
            .write(|c| settings::set(c, settings::WARD_BOARD_HOURS, hours))
            .unwrap();
    }
    // Recorded now (the late-entry window is 12 hours), then looked at later.
    record(&desk, "P0000001", 4, 0, None);
    let later = Utc::now() + Duration::minutes(ago_minutes);
    let board = desk.ward_board(later).unwrap();
    assert_eq!(board.patients.len(), usize::from(listed));
    if let Some(p) = board.patients.first() {
        assert!(p.minutes_ago >= u32::try_from(ago_minutes).unwrap());
    }
}

#[test]
fn an_empty_ward_is_an_empty_board() {
    let (_dir, desk) = signed_in();
    assert!(desk.ward_board(Utc::now()).unwrap().patients.is_empty());
}
