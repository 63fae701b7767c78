//! Starting the app and provisioning it, through `DeskApp` as the shell does: a
//! real store file in a temp directory and, where a server is needed, a real
//! `clinic-central` on a random port.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clinic_desk_core::{
    ConnectionFailureDto, DeskApp, ErrorCode, StartOptions, SyncStatusDto, sync_config,
};
use clinic_install::profile::{
    ClinicSection, DEFAULT_PROBE_INTERVAL_SECONDS, DEFAULT_SYNC_INTERVAL_SECONDS, ServerSection,
    SyncSection,
};
use clinic_install::{Layers, Profile, Setup};
use rstest::rstest;

const VERSION: &str = "9.9.9-test";

struct Central {
    _dir: tempfile::TempDir,
    server: clinic_central::TestServer,
    token: String,
}

fn central() -> Central {
    let dir = tempfile::tempdir().unwrap();
    let server = clinic_central::spawn_for_tests(&dir.path().join("central.db"), false).unwrap();
    server.load_demo("C001", 1).unwrap();
    let token = server.issue_token("C001").unwrap();
    Central {
        _dir: dir,
        server,
        token,
    }
}

fn profile(clinic: &str, url: &str, token: &str) -> Profile {
    Profile {
        clinic: ClinicSection {
            id: Some(clinic.into()),
            name: Some("和平诊所".into()),
            time_zone: Some("Asia/Shanghai".into()),
            language: Some("zh-CN".into()),
        },
        server: ServerSection {
            url: Some(url.into()),
            token: Some(token.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn setup(dir: &Path, flags: Profile) -> Setup {
    Setup {
        data_dir: dir.to_owned(),
        config_dir: Some(dir.join("config")),
        log_dir: dir.join("logs"),
        installed_profile: None,
        layers: Layers {
            flags,
            ..Default::default()
        },
        problems: vec![],
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn start(rt: &tokio::runtime::Runtime, dir: &Path, flags: Profile, demo: Option<u64>) -> DeskApp {
    DeskApp::start(
        StartOptions {
            setup: setup(dir, flags),
            database: dir.join("desk.sqlite3"),
            demo_seed: demo,
            app_version: VERSION.into(),
        },
        rt.handle().clone(),
    )
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn patient_count(app: &DeskApp) -> i64 {
    app.desk()
        .unwrap()
        .database()
        .read(clinic_store::patients::count)
        .unwrap()
}

#[test]
fn without_a_profile_the_app_works_offline_on_local_data() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let app = start(&rt, dir.path(), Profile::default(), None);
    let desk = app.desk().unwrap();
    assert!(!desk.sync_status().unwrap().configured);
    assert_eq!(
        desk.sync_now().unwrap_err().code,
        ErrorCode::SyncNotConfigured
    );
    let info = app.diagnostics().unwrap();
    assert!(!info.provisioned);
    assert!(info.problems.is_empty(), "{:?}", info.problems);
    assert_eq!(
        rt.block_on(app.test_connection()).failure,
        Some(ConnectionFailureDto::NotConfigured)
    );
}

#[test]
fn the_demo_clinic_fills_an_empty_store_once() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let app = start(
        &rt,
        dir.path(),
        Profile::default(),
        Some(clinic_desk_core::DEMO_SEED),
    );
    let loaded = patient_count(&app);
    assert!(loaded >= 2_000, "{loaded}");
    assert_eq!(
        app.desk().unwrap().app_info().unwrap().clinic_id.as_deref(),
        Some("DEMO")
    );
    drop(app);
    let again = start(&rt, dir.path(), Profile::default(), Some(7));
    assert_eq!(
        patient_count(&again),
        loaded,
        "a store with data is left as it was"
    );
}

#[test]
fn a_store_from_a_newer_version_makes_every_command_say_so() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    {
        let desk = clinic_desk_core::Desk::open(&dir.path().join("desk.sqlite3")).unwrap();
        desk.database()
            .write(|c| c.pragma_update(None, "user_version", 10_000))
            .unwrap();
    }
    let app = start(&rt, dir.path(), Profile::default(), None);
    assert_eq!(app.desk().err().unwrap().code, ErrorCode::DatabaseTooNew);
    assert_eq!(
        app.diagnostics().unwrap_err().code,
        ErrorCode::DatabaseTooNew
    );
    assert_eq!(
        app.subscribe_sync_status(|_| true).unwrap_err().code,
        ErrorCode::DatabaseTooNew
    );
}

#[test]
fn a_profile_with_a_server_binds_the_store_starts_sync_and_pulls_the_clinic() {
    let c = central();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let app = start(
        &rt,
        dir.path(),
        profile("C001", &c.server.base_url(), &c.token),
        None,
    );
    let info = app.desk().unwrap().app_info().unwrap();
    assert_eq!(
        (info.clinic_id.as_deref(), info.time_zone.as_str()),
        (Some("C001"), "Asia/Shanghai"),
        "the profile's clinic settings are in the store"
    );
    let (tx, rx) = mpsc::channel::<SyncStatusDto>();
    app.subscribe_sync_status(move |s| tx.send(s).is_ok())
        .unwrap();
    let first = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(first.configured);
    wait_until("the clinic's patients arrived", || patient_count(&app) > 0);
    wait_until("a status with the pull was pushed", || {
        rx.try_iter()
            .any(|s| s.pulled_changes > 0 && s.last_success_at.is_some())
    });
    assert!(app.diagnostics().unwrap().provisioned);
    assert!(
        rt.block_on(app.test_connection()).ok,
        "the effective profile's server answers"
    );
}

#[rstest]
#[case::another_clinics_data(
    "the local store holds clinic DEMO",
    false,
    "holds data of clinic DEMO"
)]
#[case::an_unreadable_store(
    "the store cannot tell what it holds",
    true,
    "the local database failed"
)]
fn a_profile_the_store_refuses_is_a_problem_and_nothing_syncs(
    #[case] _what: &str,
    #[case] break_store: bool,
    #[case] problem: &str,
) {
    let c = central();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    {
        let demo = start(
            &rt,
            dir.path(),
            Profile::default(),
            Some(clinic_desk_core::DEMO_SEED),
        );
        if break_store {
            break_patients_table(&demo);
        }
    }
    let app = start(
        &rt,
        dir.path(),
        profile("C001", &c.server.base_url(), &c.token),
        None,
    );
    let info = app.diagnostics().unwrap();
    assert!(
        info.problems.iter().any(|p| p.contains(problem)),
        "{:?}",
        info.problems
    );
    assert!(
        !info.sync.configured,
        "no sync for a store the profile does not fit"
    );
    assert_eq!(
        info.clinic_id.as_deref(),
        Some("DEMO"),
        "the store keeps its clinic"
    );
}

/// Leaves the clinic's ID readable but the patients unreadable, as a damaged
/// file might: whether the store holds another clinic's data cannot be known.
fn break_patients_table(app: &DeskApp) {
    app.desk()
        .unwrap()
        .database()
        .write(|c| {
            c.execute_batch(
                "PRAGMA foreign_keys = OFF; ALTER TABLE patients RENAME TO patients_elsewhere;",
            )?;
            Ok::<_, clinic_store::StoreError>(())
        })
        .unwrap();
}

#[test]
fn provisioning_from_a_code_checks_the_server_saves_and_starts_sync() {
    let c = central();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let app = start(&rt, dir.path(), Profile::default(), None);
    let saved = dir.path().join("config/profile.toml");

    let refused = rt.block_on(app.provision("CDP1-not-a-code")).unwrap_err();
    assert_eq!(refused.code, ErrorCode::InvalidProfile);

    let wrong = profile("C001", &c.server.base_url(), "cct_wrong").enrolment_code();
    let outcome = rt.block_on(app.provision(&wrong)).unwrap();
    assert!(!outcome.provisioned);
    assert_eq!(
        outcome.failure,
        Some(ConnectionFailureDto::CredentialRejected)
    );
    assert!(!outcome.detail.contains("cct_wrong"));
    assert!(!saved.exists(), "nothing saved after a failed check");
    assert!(app.setup().layers.provisioned.is_none());

    let good = profile("C001", &c.server.base_url(), &c.token).enrolment_code();
    let outcome = rt.block_on(app.provision(&good)).unwrap();
    assert!(outcome.provisioned, "{}", outcome.detail);
    assert_eq!(outcome.clinic_id.as_deref(), Some("C001"));
    assert!(!outcome.restart_needed, "sync was not running before");
    assert!(saved.exists());
    assert!(app.setup().layers.provisioned.is_some());
    assert!(app.diagnostics().unwrap().provisioned);
    wait_until("sync pulled the clinic's patients", || {
        patient_count(&app) > 0
    });

    // Enrolled now: enrolling again takes a signed-in member, not a passer-by.
    let refused = rt.block_on(app.provision(&good)).unwrap_err();
    assert_eq!(refused.code, ErrorCode::NotSignedIn, "{refused}");
    wait_until("sync pulled the clinic's staff", || {
        app.desk().unwrap().staff().is_ok_and(|s| !s.is_empty())
    });
    app.desk()
        .unwrap()
        .sign_in("N001", clinic_domain::pin::DEMO_PIN)
        .unwrap();
    let again = rt.block_on(app.provision(&good)).unwrap();
    assert!(
        again.provisioned && again.restart_needed,
        "sync already runs"
    );
}

#[test]
fn an_enrolment_code_gets_this_device_its_own_token_and_it_syncs() {
    let c = central();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let app = start(&rt, dir.path(), Profile::default(), None);
    let issued = clinic_central::auth::issue_enrolment_code(
        c.server.store.as_ref(),
        "C001",
        Duration::from_secs(600),
        Some("ward 3 desk"),
    )
    .unwrap();
    let mut pasted = profile("C001", &c.server.base_url(), "unused");
    pasted.server.token = None;
    pasted.server.enrolment_code = Some(issued.code.clone());
    let outcome = rt
        .block_on(app.provision(&pasted.enrolment_code()))
        .unwrap();
    assert!(outcome.provisioned, "{}", outcome.detail);
    let saved = std::fs::read_to_string(dir.path().join("config/profile.toml")).unwrap();
    assert!(!saved.contains(&issued.code));
    let token = Profile::from_toml(&saved).unwrap().server.token.unwrap();
    assert_ne!(token, c.token);
    let listed = c.server.store.tokens("C001").unwrap();
    assert!(
        listed
            .iter()
            .any(|t| t.scope == clinic_central::auth::Scope::Device
                && t.label.as_deref() == Some("ward 3 desk"))
    );
    wait_until(
        "sync pulled the clinic's patients with the device token",
        || patient_count(&app) > 0,
    );

    // The same code again, from a signed-in member: spent, refused, nothing changed.
    wait_until("sync pulled the clinic's staff", || {
        app.desk().unwrap().staff().is_ok_and(|s| !s.is_empty())
    });
    app.desk()
        .unwrap()
        .sign_in("N001", clinic_domain::pin::DEMO_PIN)
        .unwrap();
    let again = rt
        .block_on(app.provision(&pasted.enrolment_code()))
        .unwrap();
    assert!(!again.provisioned);
    assert_eq!(again.failure, Some(ConnectionFailureDto::EnrolmentRefused));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("config/profile.toml")).unwrap(),
        saved
    );
}

#[test]
fn provisioning_a_store_whose_data_cannot_be_read_fails_visibly() {
    let c = central();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let app = start(
        &rt,
        dir.path(),
        Profile::default(),
        Some(clinic_desk_core::DEMO_SEED),
    );
    break_patients_table(&app);
    let good = profile("C001", &c.server.base_url(), &c.token).enrolment_code();
    let err = rt.block_on(app.provision(&good)).unwrap_err();
    assert_eq!(err.code, ErrorCode::StorageFailed, "{err}");
    assert!(!dir.path().join("config/profile.toml").exists());
}

#[test]
fn a_profile_saved_but_not_bound_to_the_store_counts_as_enrolled_and_waits_for_a_restart() {
    let c = central();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let app = start(&rt, dir.path(), Profile::default(), None);
    // The store reads and says whose it is, and refuses the binding's first write.
    app.desk()
        .unwrap()
        .database()
        .write(|c| {
            c.execute_batch(
                "CREATE TRIGGER refuse_binding BEFORE INSERT ON clinic_settings
                 BEGIN SELECT RAISE(ABORT, 'the disk refused the write'); END;",
            )
        })
        .unwrap();
    let good = profile("C001", &c.server.base_url(), &c.token).enrolment_code();
    let outcome = rt.block_on(app.provision(&good)).unwrap();
    assert!(outcome.provisioned && outcome.restart_needed, "{outcome:?}");
    assert!(
        !outcome.detail.contains("refused"),
        "no store internals: {}",
        outcome.detail
    );
    assert!(dir.path().join("config/profile.toml").exists());
    assert!(
        app.desk().unwrap().sync_handle().is_none(),
        "no sync into a store not bound to the profile"
    );
    // The saved token makes this an enrolled device: enrolling it again takes a member.
    let again = rt.block_on(app.provision(&good)).unwrap_err();
    assert_eq!(again.code, ErrorCode::NotSignedIn, "{again}");
}

#[rstest]
#[case::no_server(None, None, None)]
#[case::defaults(Some("http://central.example"), None, Some((DEFAULT_SYNC_INTERVAL_SECONDS, DEFAULT_PROBE_INTERVAL_SECONDS)))]
#[case::profile_intervals(Some("http://central.example"), Some((30, 5)), Some((30, 5)))]
fn the_sync_settings_come_from_the_profile(
    #[case] url: Option<&str>,
    #[case] intervals: Option<(u64, u64)>,
    #[case] expected: Option<(u64, u64)>,
) {
    let p = Profile {
        server: ServerSection {
            url: url.map(String::from),
            token: Some("cct_x".into()),
            // What the engine's client builder is given comes from the profile too.
            allow_insecure_http: Some(true),
            ca_file: Some("/etc/clinic-desk/clinic-ca.pem".into()),
            ..Default::default()
        },
        sync: SyncSection {
            interval_seconds: intervals.map(|i| i.0),
            offline_probe_seconds: intervals.map(|i| i.1),
        },
        ..Default::default()
    };
    let config = sync_config(&p, VERSION);
    assert_eq!(
        config
            .as_ref()
            .map(|c| (c.interval.as_secs(), c.probe_interval.as_secs())),
        expected
    );
    if let Some(config) = config {
        assert_eq!(config.server_url, url.unwrap());
        assert_eq!(config.token.as_deref(), Some("cct_x"));
        assert_eq!(config.app_version, VERSION);
        assert!(config.transport.allow_insecure_http);
        assert_eq!(
            config.transport.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/clinic-desk/clinic-ca.pem"))
        );
    }
}
