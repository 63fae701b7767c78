//! The support bundle leaves the clinic: it must hold no token and no patient
//! name, even when a log line carried one by mistake.

use std::io::Write as _;

use clinic_desk_core::Desk;
use clinic_install::logfile::RotatingFile;
use clinic_install::profile::{ClinicSection, ServerSection};
use clinic_install::{Layers, Profile, Setup};

const TOKEN: &str = "cct_9f8e7d6c5b4a39281706f5e4d3c2b1a0";

#[test]
fn the_bundle_holds_the_logs_and_settings_but_no_token_and_no_patient_name() {
    let dir = tempfile::tempdir().unwrap();
    let desk = Desk::open(&dir.path().join("desk.sqlite3")).unwrap();
    assert!(desk.load_demo(clinic_desk_core::DEMO_SEED, None).unwrap());
    let names: Vec<String> = desk
        .database()
        .read(|c| {
            let mut stmt = c.prepare("SELECT name FROM patients")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    assert!(names.len() >= 2_000);
    let ids: Vec<String> = desk
        .database()
        .read(|c| {
            let mut stmt = c.prepare("SELECT id FROM patients")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<Vec<_>, _>>()
        })
        .unwrap();

    let log_dir = dir.path().join("logs");
    let mut log = RotatingFile::open(&log_dir, 1 << 20, 2).unwrap();
    writeln!(log, r#"{{"level":"INFO","fields":{{"message":"sync started","server":"http://central.example"}}}}"#).unwrap();
    // Lines that break the logging rules, as a careless future change might.
    writeln!(
        log,
        r#"{{"level":"WARN","fields":{{"message":"refused","token":"{TOKEN}"}}}}"#
    )
    .unwrap();
    writeln!(
        log,
        r#"{{"level":"DEBUG","fields":{{"message":"search","query":"{}"}}}}"#,
        names[0]
    )
    .unwrap();
    writeln!(
        log,
        r#"{{"level":"DEBUG","fields":{{"message":"opened {} then {}"}}}}"#,
        names[1],
        names[names.len() - 1]
    )
    .unwrap();
    // An ID, and a name as the JSON logger escapes it.
    writeln!(
        log,
        r#"{{"level":"DEBUG","fields":{{"message":"opened","patient":"{}","again":"{}"}}}}"#,
        ids[0],
        names[2]
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect::<String>()
    )
    .unwrap();
    drop(log);

    let profile = Profile {
        clinic: ClinicSection {
            id: Some("C001".into()),
            ..Default::default()
        },
        server: ServerSection {
            url: Some("http://central.example".into()),
            token: Some(TOKEN.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let setup = Setup {
        data_dir: dir.path().to_owned(),
        config_dir: None,
        log_dir,
        installed_profile: None,
        layers: Layers {
            provisioned: Some(profile),
            ..Default::default()
        },
        problems: vec![],
    };
    let out = desk
        .export_support_bundle(&setup, &dir.path().join("out"))
        .unwrap();
    let text = std::fs::read_to_string(&out.path).unwrap();

    assert!(
        !text.contains(TOKEN) && !text.contains("9f8e7d6c5b4a"),
        "no token in the bundle"
    );
    let leaked: Vec<&String> = names.iter().filter(|n| text.contains(n.as_str())).collect();
    assert!(leaked.is_empty(), "patient names in the bundle: {leaked:?}");
    let leaked: Vec<&String> = ids.iter().filter(|i| text.contains(i.as_str())).collect();
    assert!(leaked.is_empty(), "patient IDs in the bundle: {leaked:?}");
    // And it is still useful: the harmless log line, the server, the clinic, the schema.
    let bundle: serde_json::Value = serde_json::from_str(&text).unwrap();
    let lines = bundle["logs"]["clinic-desk.jsonl"].as_array().unwrap();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["fields"]["message"], "sync started");
    assert_eq!(bundle["diagnostics"]["serverUrl"], "http://central.example");
    assert!(bundle["diagnostics"]["schemaVersion"].as_u64().unwrap() >= 1);
    // 2,000 patients just written: most of them still in the WAL, which counts.
    assert!(
        bundle["diagnostics"]["databaseKib"].as_u64().unwrap() > 100,
        "{}",
        bundle["diagnostics"]
    );
    assert!(bundle["profile"].as_str().unwrap().contains("C001"));
}
