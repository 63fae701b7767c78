//! The diagnostics screen lists the pulled records this device set aside, with
//! the feed, the ID and the reason, so someone can correct them at the source.

use chrono::NaiveDate;
use clinic_desk_core::{Desk, PulledStreamDto};
use clinic_domain::{Patient, PatientId, Sex};
use clinic_install::{Layers, Setup};
use clinic_store::pull::{self, PulledItem};

fn patient(id: &str, name: String) -> Patient {
    Patient {
        id: PatientId::parse(id).unwrap(),
        name,
        sex: Sex::Female,
        birth_date: NaiveDate::from_ymd_opt(1980, 1, 1).unwrap(),
        is_insured: true,
        phone: None,
    }
}

#[test]
fn set_aside_records_are_listed_with_stream_id_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let desk = Desk::open(&dir.path().join("desk.sqlite3")).unwrap();
    let page = [
        PulledItem::upsert(1, "P1", patient("P1", "张三".into())),
        PulledItem::upsert(2, "P2", patient("P2", "名".repeat(100))),
        PulledItem::refused(3, "P3", "unknown sex 'robot'"),
    ];
    assert_eq!(
        desk.database()
            .write(|c| pull::apply_patients(c, &page, 3))
            .unwrap(),
        2
    );
    let setup = Setup {
        data_dir: dir.path().to_owned(),
        config_dir: None,
        log_dir: dir.path().join("logs"),
        installed_profile: None,
        layers: Layers::default(),
        problems: vec![],
    };
    let info = desk.diagnostics(&setup).unwrap();
    let mut listed: Vec<(PulledStreamDto, &str, i64)> = info
        .set_aside
        .iter()
        .map(|s| (s.stream, s.id.as_str(), s.seq))
        .collect();
    listed.sort_by_key(|(_, _, seq)| *seq);
    assert_eq!(
        listed,
        [
            (PulledStreamDto::Patients, "P2", 2),
            (PulledStreamDto::Patients, "P3", 3)
        ]
    );
    assert!(
        info.set_aside
            .iter()
            .find(|s| s.id == "P2")
            .unwrap()
            .reason
            .contains("name")
    );
    assert_eq!(
        info.set_aside.iter().find(|s| s.id == "P3").unwrap().reason,
        "unknown sex 'robot'"
    );
    assert!(
        info.set_aside
            .iter()
            .all(|s| chrono::DateTime::parse_from_rfc3339(&s.at).is_ok())
    );
    assert_eq!(
        info.sync.set_aside, 2,
        "counted in the status too, even without a server"
    );
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(
        json["setAside"][0]["stream"], "patients",
        "camelCase fields, snake_case kinds, as the UI reads them"
    );
}

/// A profile naming plain `http://` to another machine: diagnostics flag the URL
/// (the UI says why in the installer's language) and the connection test refuses
/// it before connecting; `allow_insecure_http = true` lets it through, and is
/// flagged itself (red on the screen).
#[rstest::rstest]
#[case::refused("http://10.0.0.5:8080", None, true, false)]
#[case::allowed_and_flagged("http://10.0.0.5:8080", Some(true), false, true)]
#[case::https("https://10.0.0.5:8443", None, false, false)]
#[case::loopback("http://127.0.0.1:8080", Some(false), false, false)]
#[tokio::test]
async fn plain_http_beyond_this_machine_is_flagged_and_refused(
    #[case] url: &str,
    #[case] allow_insecure_http: Option<bool>,
    #[case] refused: bool,
    #[case] allowed_flag: bool,
) {
    use clinic_install::Profile;
    use clinic_install::profile::ServerSection;
    let dir = tempfile::tempdir().unwrap();
    let desk = Desk::open(&dir.path().join("desk.sqlite3")).unwrap();
    let profile = Profile {
        server: ServerSection {
            url: Some(url.into()),
            token: Some("cct_x".into()),
            allow_insecure_http,
            ..Default::default()
        },
        ..Default::default()
    };
    let layers = Layers {
        provisioned: Some(profile.clone()),
        ..Default::default()
    };
    let problems = profile
        .validate(false)
        .err()
        .map(|e| e.to_string())
        .into_iter()
        .collect::<Vec<_>>();
    assert_eq!(
        problems.iter().any(|p| p.contains("plain http://")),
        refused,
        "{problems:?}"
    );
    let setup = Setup {
        data_dir: dir.path().to_owned(),
        config_dir: None,
        log_dir: dir.path().join("logs"),
        installed_profile: None,
        layers,
        problems,
    };
    let info = desk.diagnostics(&setup).unwrap();
    assert_eq!(info.insecure_server_url, refused);
    assert_eq!(info.allow_insecure_http, allowed_flag);
    if refused {
        // Refused before connecting: nothing listens at 10.0.0.5, so only the rule answers at once.
        let test = clinic_desk_core::test_connection(&profile).await;
        assert_eq!(
            test.failure,
            Some(clinic_desk_core::ConnectionFailureDto::InsecureHttp),
            "{}",
            test.detail
        );
    }
}
