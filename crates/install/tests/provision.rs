//! Provisioning against a real `clinic-central` on a random port: a good profile
//! is saved owner-only and bound to the store; every kind of failure gets its own
//! answer and leaves nothing behind.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use clinic_install::check::Failure;
use clinic_install::profile::{ClinicSection, ServerSection};
use clinic_install::provision::{BindError, CURSORS_SERVER_KEY, bind_store};
use clinic_install::{InstallError, Profile, ProvisionError, StoreAt, provision};
use clinic_store::{Database, pull, settings};
use rstest::rstest;

const TIMEOUT: Duration = Duration::from_secs(2);

fn profile(url: &str, token: &str) -> Profile {
    Profile {
        clinic: ClinicSection {
            id: Some("C001".into()),
            name: Some("和平诊所".into()),
            time_zone: Some("Europe/London".into()),
            language: Some("en".into()),
        },
        server: ServerSection {
            url: Some(url.into()),
            token: Some(token.into()),
            enrolment_code: None,
            ..Default::default()
        },
        assessment: clinic_install::profile::AssessmentSection {
            reassess_interval_minutes: Some(45),
        },
        ..Default::default()
    }
}

struct Fixture {
    _server_dir: tempfile::TempDir,
    server: clinic_central::TestServer,
    token: String,
    dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let server_dir = tempfile::tempdir().unwrap();
    let server =
        clinic_central::spawn_for_tests(&server_dir.path().join("central.db"), false).unwrap();
    server.load_demo("C001", 1).unwrap();
    let token = server.issue_token("C001").unwrap();
    Fixture {
        _server_dir: server_dir,
        server,
        token,
        dir: tempfile::tempdir().unwrap(),
    }
}

async fn run(
    f: &Fixture,
    p: Profile,
) -> Result<clinic_install::provision::Provisioned, ProvisionError> {
    provision(
        p,
        None,
        &f.dir.path().join("config"),
        StoreAt::Path(&f.dir.path().join("data/desk.sqlite3")),
        TIMEOUT,
    )
    .await
}

fn nothing_saved(dir: &Path) {
    assert!(
        !dir.join("config/profile.toml").exists(),
        "no profile saved"
    );
    assert!(
        !dir.join("data/desk.sqlite3").exists(),
        "no database created"
    );
}

#[tokio::test]
async fn a_good_profile_is_checked_saved_owner_only_and_bound_to_the_store() {
    let f = fixture();
    let done = run(&f, profile(&f.server.base_url(), &f.token))
        .await
        .unwrap();
    assert_eq!(done.clinic_id, "C001");
    let saved = Profile::from_file(&done.profile_path).unwrap().unwrap();
    assert_eq!(saved.server.token.as_deref(), Some(f.token.as_str()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&done.profile_path)
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(f.dir.path().join("config"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }
    // The store is encrypted with the device's key, kept beside the profile.
    let (db, _) = clinic_install::store_key::open_store(
        Some(&f.dir.path().join("config")),
        &f.dir.path().join("data/desk.sqlite3"),
    )
    .unwrap();
    let got = db
        .read(|c| {
            Ok::<_, clinic_store::StoreError>(
                [
                    settings::CLINIC_ID,
                    settings::CLINIC_NAME,
                    settings::TIME_ZONE,
                    settings::LANGUAGE,
                    settings::REASSESS_INTERVAL_MINUTES,
                ]
                .map(|k| settings::get(c, k).unwrap()),
            )
        })
        .unwrap();
    assert_eq!(
        got.map(|v| v.unwrap_or_default()),
        ["C001", "和平诊所", "Europe/London", "en", "45"].map(String::from)
    );
}

/// A port that refuses connections: bound once, then released.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[rstest]
#[case::not_clinic_central("wrong_path", Failure::NotClinicCentral)]
#[case::credential_rejected("wrong_token", Failure::CredentialRejected)]
#[case::server_down("refused", Failure::Refused)]
#[case::https_to_a_plain_port("tls", Failure::Tls)]
#[case::no_answer("silent", Failure::Timeout)]
#[tokio::test]
async fn each_failure_has_its_own_answer_and_saves_nothing(
    #[case] what: &str,
    #[case] want: Failure,
) {
    let f = fixture();
    let base = f.server.base_url();
    // A listener that accepts and never answers: a machine behind a black-holing firewall.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let (url, token) = match what {
        "wrong_path" => (format!("{base}/not-the-api"), f.token.clone()),
        "wrong_token" => (base.clone(), "cct_not-a-real-token".to_owned()),
        "refused" => (
            format!("http://127.0.0.1:{}", closed_port()),
            f.token.clone(),
        ),
        "tls" => (base.replace("http://", "https://"), f.token.clone()),
        "silent" => (
            format!("http://{}", silent.local_addr().unwrap()),
            f.token.clone(),
        ),
        _ => unreachable!(),
    };
    let err = run(&f, profile(&url, &token)).await.unwrap_err();
    match &err {
        ProvisionError::Connection(e) => assert_eq!(e.failure, want, "{e}"),
        other => panic!("expected a connection failure, got {other}"),
    }
    assert!(
        !err.to_string().contains(&f.token),
        "the message never carries the token"
    );
    nothing_saved(f.dir.path());
}

#[tokio::test]
async fn an_incomplete_profile_is_refused_before_any_connection() {
    let f = fixture();
    let mut p = profile(&f.server.base_url(), &f.token);
    p.server.token = None;
    let err = run(&f, p).await.unwrap_err();
    assert!(
        matches!(err, ProvisionError::Invalid(_)) && err.to_string().contains("server.token"),
        "{err}"
    );
    nothing_saved(f.dir.path());
}

#[tokio::test]
async fn a_device_holding_another_clinics_data_is_not_reprovisioned() {
    let f = fixture();
    let path = f.dir.path().join("data/desk.sqlite3");
    let desk = clinic_desk_core::Desk::open(&path).unwrap();
    assert!(
        desk.load_demo(1, None).unwrap(),
        "the demo clinic (ID DEMO) fills the store"
    );
    drop(desk);
    let err = run(&f, profile(&f.server.base_url(), &f.token))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("holds data of clinic DEMO"),
        "{err}"
    );
    assert!(!f.dir.path().join("config/profile.toml").exists());
}

/// A store holding clinic OTHER whose patients cannot be read (a damaged file):
/// whether it holds another clinic's data cannot be known.
fn unreadable_store_of_another_clinic(path: &Path) -> Database {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let db = Database::open(path).unwrap();
    db.write(|c| {
        settings::set(c, settings::CLINIC_ID, "OTHER")?;
        c.execute_batch(
            "PRAGMA foreign_keys = OFF; ALTER TABLE patients RENAME TO patients_elsewhere;",
        )?;
        Ok::<_, clinic_store::StoreError>(())
    })
    .unwrap();
    db
}

#[test]
fn a_store_that_cannot_say_what_it_holds_is_never_bound() {
    let dir = tempfile::tempdir().unwrap();
    let db = unreadable_store_of_another_clinic(&dir.path().join("desk.sqlite3"));
    let result = db
        .write(|c| {
            Ok::<_, clinic_store::StoreError>(bind_store(
                c,
                &profile("http://one.example", "cct_x"),
            ))
        })
        .unwrap();
    assert!(
        matches!(result, Err(BindError::Store(_))),
        "a read failure is an error, not \"no other clinic\": {result:?}"
    );
    assert_eq!(
        db.read(|c| settings::get(c, settings::CLINIC_ID))
            .unwrap()
            .as_deref(),
        Some("OTHER"),
        "nothing was bound"
    );
}

#[tokio::test]
async fn provisioning_a_store_that_cannot_say_what_it_holds_fails_and_saves_nothing() {
    let f = fixture();
    drop(unreadable_store_of_another_clinic(
        &f.dir.path().join("data/desk.sqlite3"),
    ));
    let err = run(&f, profile(&f.server.base_url(), &f.token))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProvisionError::Invalid(InstallError::Store(_))),
        "{err}"
    );
    assert!(!f.dir.path().join("config/profile.toml").exists());
}

#[tokio::test]
async fn a_store_that_fails_to_bind_after_the_profile_is_saved_is_reported_as_saved() {
    let f = fixture();
    let path = f.dir.path().join("data/desk.sqlite3");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // The store reads and says whose it is, and refuses the binding's first write.
    let db = Database::open(&path).unwrap();
    db.write(|c| {
        c.execute_batch(
            "CREATE TRIGGER refuse_binding BEFORE INSERT ON clinic_settings
             BEGIN SELECT RAISE(ABORT, 'the disk refused the write'); END;",
        )
    })
    .unwrap();
    drop(db);
    let err = run(&f, profile(&f.server.base_url(), &f.token))
        .await
        .unwrap_err();
    let ProvisionError::NotBound { profile_path, .. } = &err else {
        panic!("the profile was saved before the binding failed: {err}");
    };
    assert_eq!(profile_path, &f.dir.path().join("config/profile.toml"));
    assert!(
        Profile::from_file(profile_path)
            .unwrap()
            .is_some_and(|p| p.server.token.as_deref() == Some(f.token.as_str())),
        "the saved profile holds the token"
    );
    assert!(
        err.to_string().contains("was saved") && err.to_string().contains("refused the write"),
        "{err}"
    );
}

#[test]
fn a_new_server_for_the_same_clinic_resets_the_pull_cursors_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("desk.sqlite3")).unwrap();
    let first = profile("http://one.example", "cct_x");
    assert!(
        !db.write(|c| bind_store(c, &first)).unwrap(),
        "no cursors yet, nothing to reset"
    );
    db.write(|c| {
        c.execute(
            "INSERT INTO sync_cursors (stream, cursor) VALUES (?1, 500)",
            [pull::STREAM_PATIENTS],
        )
    })
    .unwrap();
    assert!(
        !db.write(|c| bind_store(c, &first)).unwrap(),
        "same server: cursors kept"
    );
    assert_eq!(
        db.read(|c| pull::cursor(c, pull::STREAM_PATIENTS)).unwrap(),
        500
    );
    db.write(|c| {
        pull::apply_patients(
            c,
            &[pull::PulledItem::refused(501, "P1", "unknown sex 'x'")],
            501,
        )
    })
    .unwrap();
    let moved = profile("http://two.example", "cct_x");
    assert!(
        db.write(|c| bind_store(c, &moved)).unwrap(),
        "new server: cursors reset"
    );
    assert_eq!(
        db.read(|c| pull::cursor(c, pull::STREAM_PATIENTS)).unwrap(),
        0
    );
    assert_eq!(
        db.read(pull::set_aside_count).unwrap(),
        0,
        "the old server's set-aside records go with its cursors"
    );
    assert_eq!(
        db.read(|c| pull::state(c, CURSORS_SERVER_KEY))
            .unwrap()
            .as_deref(),
        Some("http://two.example")
    );
}
