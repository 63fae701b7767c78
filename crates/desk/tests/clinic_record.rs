//! One clinic record on every device: two `Desk`s, each with its own store file in
//! its own temp directory and its own sync engine, sharing reports through a real
//! `clinic-central` on a random port. What one device records, the other shows
//! with its own reads (record list, trail, FHIR, reassessments); corrections made
//! on both while offline end the same on both, flagged, until one resolves them.

use clinic_desk_core::{
    AssessmentInput, CorrectionInput, DEMO_PIN, Desk, ErrorCode, PainReportDto, ReportStateDto,
};
use clinic_domain::{AssessmentForm, Reassessment};
use clinic_sync::{SyncConfig, SyncEngine};

const CLINIC: &str = "C001";
const PATIENT: &str = "P0000001";

struct Central {
    _dir: tempfile::TempDir,
    server: clinic_central::TestServer,
    token: String,
}

fn central() -> Central {
    let dir = tempfile::tempdir().unwrap();
    let server = clinic_central::spawn_for_tests(&dir.path().join("central.db"), false).unwrap();
    server.load_demo(CLINIC, 1).unwrap();
    let token = server.issue_token(CLINIC).unwrap();
    Central {
        _dir: dir,
        server,
        token,
    }
}

/// A record as one device shows it: its live reports and the shown current one
/// as (id, score), and whether it is flagged conflicting.
type Record = (Vec<(String, u8)>, Option<(String, u8)>, bool);

/// One device: its store in its own directory, and its sync engine on that store.
struct Device {
    _dir: tempfile::TempDir,
    desk: Desk,
    engine: SyncEngine,
}

impl Device {
    async fn new(c: &Central, nurse: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let desk = Desk::open(&dir.path().join("desk.sqlite3")).unwrap();
        let mut config = SyncConfig::new(c.server.base_url(), Some(c.token.clone()));
        config.reuse_connections = false;
        let engine = SyncEngine::new(desk.shared_database(), config).unwrap();
        let device = Self {
            _dir: dir,
            desk,
            engine,
        };
        device.sync().await;
        device.desk.sign_in(nurse, DEMO_PIN).unwrap();
        device
    }

    /// Push, then pull every feed: what the engine's loop does on each tick.
    async fn sync(&self) {
        let run = self.engine.sync_once().await.unwrap();
        assert_eq!((run.rejected, run.set_aside), (0, 0), "{run:?}");
        assert_eq!(self.desk.sync_status().unwrap().set_aside, 0);
    }

    fn reports(&self) -> Vec<PainReportDto> {
        self.desk.patient_reports(PATIENT).unwrap()
    }

    fn report(&self, id: &str) -> PainReportDto {
        self.reports()
            .into_iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("report {id} is not on this device"))
    }

    /// The record's live reports and the shown current one, as (id, score).
    fn record(&self) -> Record {
        let reports = self.reports();
        let mut live: Vec<_> = reports
            .iter()
            .filter(|r| r.live)
            .map(|r| (r.id.clone(), r.score))
            .collect();
        live.sort();
        let current = reports
            .iter()
            .find(|r| r.current)
            .map(|r| (r.id.clone(), r.score));
        let conflicting = reports.iter().any(|r| r.conflicting);
        (live, current, conflicting)
    }
}

fn form(score: i64) -> AssessmentForm {
    AssessmentForm {
        scale: "nrs".into(),
        score,
        ..Default::default()
    }
}

/// A correction that keeps the original's intervention (so a reassessment is owed).
fn correction(score: i64, reason: &str) -> CorrectionInput {
    CorrectionInput {
        values: AssessmentForm {
            intervention: Some("吗啡 5mg".into()),
            ..form(score)
        },
        reason: reason.into(),
    }
}

/// A score saved on A appears on B with B's reads: the record list (marked as
/// received, with A's device and member), the trail, the FHIR export and the
/// clinic's reassessments; a follow-up on B settles A's reassessment on A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_score_saved_on_one_device_is_on_the_other_and_a_follow_up_there_settles_it() {
    let c = central();
    let a = Device::new(&c, "N001").await;
    let b = Device::new(&c, "N002").await;

    let saved = a
        .desk
        .record_assessment(&AssessmentInput {
            patient_id: PATIENT.into(),
            values: AssessmentForm {
                intervention: Some("吗啡 5mg".into()),
                ..form(9)
            },
            ..Default::default()
        })
        .unwrap();
    assert!(
        b.reports().iter().all(|r| r.id != saved.id),
        "not there before a sync"
    );
    a.sync().await;
    b.sync().await;

    let mine = a.report(&saved.id);
    assert_eq!(
        (mine.state, mine.received),
        (ReportStateDto::Delivered, false),
        "its own, recognised when it came back: not duplicated, not received"
    );
    assert_eq!(a.reports().len(), 1);
    let theirs = b.report(&saved.id);
    assert_eq!(
        (
            theirs.state,
            theirs.received,
            theirs.score,
            theirs.recorded_by.as_str(),
            theirs.device_id.as_str()
        ),
        (
            ReportStateDto::Received,
            true,
            9,
            "N001",
            mine.device_id.as_str()
        )
    );
    assert!(
        theirs.recorded_by_name.is_some(),
        "named from the pulled staff list"
    );
    assert!(theirs.current && !theirs.conflicting && theirs.pulled_at.is_some());
    assert_eq!(
        b.desk.sync_status().unwrap().waiting,
        0,
        "never queued on B"
    );

    let trail: Vec<String> = b
        .desk
        .report_history(&saved.id)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(trail, ["created", "received"]);
    let (bundle, n) = b.desk.fhir_bundle(Some(PATIENT)).unwrap();
    assert_eq!(n, 1);
    let observation = &bundle["entry"][0]["resource"];
    assert_eq!(
        (
            observation["id"].as_str(),
            observation["valueInteger"].as_i64(),
            observation["status"].as_str()
        ),
        (Some(saved.id.as_str()), Some(9), Some("final"))
    );

    // The reassessment A owes is listed on B, with who owes it; B follows it up.
    let owed = b.desk.pending_reassessments().unwrap();
    assert_eq!(owed.len(), 1);
    assert_eq!(
        (
            owed[0].report.id.as_str(),
            owed[0].report.recorded_by.as_str(),
            owed[0].report.received
        ),
        (saved.id.as_str(), "N001", true)
    );
    assert_eq!(a.desk.pending_reassessments().unwrap().len(), 1);
    let follow_up = b
        .desk
        .record_assessment(&AssessmentInput {
            patient_id: PATIENT.into(),
            values: form(4),
            follows_up: Some(saved.id.clone()),
        })
        .unwrap();
    assert!(b.desk.pending_reassessments().unwrap().is_empty());
    b.sync().await;
    a.sync().await;
    assert!(
        a.desk.pending_reassessments().unwrap().is_empty(),
        "settled on A by B's follow-up"
    );
    assert_eq!(a.report(&saved.id).reassessment, Reassessment::Done);
    assert_eq!(
        a.report(&follow_up.id).follows_up.as_deref(),
        Some(saved.id.as_str())
    );
}

/// Two devices offline at once each correct one record. After both push and
/// pull, both show every correction, the same current value and the conflict
/// flag (trail and FHIR say so too); B resolves it, and after sync both clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_corrections_on_two_devices_conflict_alike_until_one_resolves() {
    let c = central();
    let a = Device::new(&c, "N001").await;
    let b = Device::new(&c, "N002").await;
    let original = a
        .desk
        .record_assessment(&AssessmentInput {
            patient_id: PATIENT.into(),
            values: form(8),
            ..Default::default()
        })
        .unwrap();
    a.sync().await;
    b.sync().await;

    // Both offline: each corrects the record it has.
    let on_a = a
        .desk
        .correct_report(&original.id, &correction(6, "patient said 6"))
        .unwrap();
    let on_b = b
        .desk
        .correct_report(&original.id, &correction(5, "scored on movement"))
        .unwrap();
    assert!(!a.record().2 && !b.record().2, "neither knows yet");
    a.sync().await;
    b.sync().await;
    a.sync().await;

    let (live_a, current_a, conflicting_a) = a.record();
    let (live_b, current_b, conflicting_b) = b.record();
    assert!(conflicting_a && conflicting_b);
    assert_eq!(live_a.len(), 2, "no correction lost or hidden: {live_a:?}");
    assert_eq!(live_a, live_b);
    assert_eq!(current_a, current_b, "the same current value on both");
    let current = current_a.unwrap();
    assert!([on_a.id.as_str(), on_b.id.as_str()].contains(&current.0.as_str()));
    let other = if current.0 == on_a.id { &on_b } else { &on_a };
    for d in [&a, &b] {
        // The record owes one reassessment, on its shown current report.
        let owed = d.desk.pending_reassessments().unwrap();
        assert_eq!(owed.len(), 1);
        assert_eq!(owed[0].report.id, current.0);
        assert_eq!(d.report(&other.id).reassessment, Reassessment::NotNeeded);
        assert_eq!(d.report(&current.0).reassessment, Reassessment::Due);
    }
    for d in [&a, &b] {
        let trail: Vec<String> = d
            .desk
            .report_history(&other.id)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert!(trail.contains(&"conflicting".to_owned()), "{trail:?}");
        let (bundle, _) = d.desk.fhir_bundle(Some(PATIENT)).unwrap();
        let flagged = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["resource"]["extension"].as_array().is_some_and(|x| {
                    x.iter().any(|x| {
                        x["url"]
                            .as_str()
                            .is_some_and(|u| u.ends_with("/conflicting-corrections"))
                    })
                })
            })
            .count();
        assert_eq!(flagged, 2, "both live corrections carry the conflict");
    }

    // Only the shown current one is resolved; the resolution names the other.
    assert_eq!(
        b.desk
            .resolve_conflict(&other.id, &correction(5, "agreed"))
            .unwrap_err()
            .code,
        ErrorCode::InvalidResolution
    );
    let resolution = b
        .desk
        .resolve_conflict(&current.0, &correction(5, "asked again: 5"))
        .unwrap();
    assert_eq!(resolution.resolves, std::slice::from_ref(&other.id));
    assert!(!b.record().2, "settled on B at once");
    b.sync().await;
    a.sync().await;
    for d in [&a, &b] {
        let (live, current, conflicting) = d.record();
        assert!(!conflicting);
        assert_eq!(live, [(resolution.id.clone(), 5)]);
        assert_eq!(current, Some((resolution.id.clone(), 5)));
    }
    assert!(a.report(&other.id).superseded_by.is_some());
    // A's export says the same: both corrections replaced, the resolution replaces both.
    let (bundle, _) = a.desk.fhir_bundle(Some(PATIENT)).unwrap();
    let resource = |id: &str| {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["resource"])
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    for replaced in [&on_a.id, &on_b.id, &original.id] {
        assert_eq!(resource(replaced)["status"], "entered-in-error");
    }
    let settled = resource(&resolution.id);
    let replaces: Vec<&str> = settled["extension"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["url"].as_str().is_some_and(|u| u.ends_with("/replaces")))
        .filter_map(|x| x["valueReference"]["reference"].as_str())
        .collect();
    assert_eq!(replaces.len(), 2, "{settled}");
    assert_eq!(settled["status"], "corrected");
}
