//! The store at rest, on real files: a plaintext store from the version before
//! encryption is converted in place with its data intact; afterwards no file in
//! the data directory (database, WAL, migration backups) nor the support bundle
//! holds a patient's name or phone in any encoding; files are owner-only; and a
//! data directory copied without its key opens nothing, with a clear error.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use clinic_desk_core::Desk;
use clinic_desk_core::{
    AssessmentInput, DEMO_PIN, DEMO_SEED, DeskApp, ErrorCode, StartOptions, StoreKeyDto,
};
use clinic_domain::{AssessmentForm, Patient, PatientId};
use clinic_install::store_key::key_file;
use clinic_install::{Layers, Profile, Setup};
use clinic_store::migrate::{BACKUPS_KEPT, backup_path, backups};
use clinic_store::{FileState, SCHEMA_VERSION, file_state, outbox, patients};
use rstest::rstest;

const NAME: &str = "欧阳慕华";
const PHONE: &str = "13912345678";
const PATIENT: &str = "P7654321";
const NURSE: &str = "N001";

/// Every way the name and phone could sit in a file's bytes.
fn needles() -> Vec<(String, Vec<u8>)> {
    let utf16 = |s: &str, le: bool| -> Vec<u8> {
        s.encode_utf16()
            .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
            .collect()
    };
    let mut out = Vec::new();
    for text in [NAME, PHONE] {
        out.push((format!("{text} (UTF-8)"), text.as_bytes().to_vec()));
        out.push((format!("{text} (UTF-16LE)"), utf16(text, true)));
        out.push((format!("{text} (UTF-16BE)"), utf16(text, false)));
    }
    // The phone's last eight digits alone, as a number column or a search key might hold them.
    out.push(("phone digits".into(), PHONE.as_bytes()[3..].to_vec()));
    out
}

fn leaks(bytes: &[u8]) -> Vec<String> {
    needles()
        .into_iter()
        .filter(|(_, n)| bytes.windows(n.len()).any(|w| w == n.as_slice()))
        .map(|(what, _)| what)
        .collect()
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The store's files under `dir`: all but the logs (whose rule, no patient data,
/// is kept where lines are written; the bundle scrubs them again).
fn leaks_in(dir: &Path) -> Vec<(PathBuf, Vec<String>)> {
    files(dir)
        .into_iter()
        .filter(|f| !f.starts_with(dir.join("logs")))
        .map(|f| {
            let l = leaks(&std::fs::read(&f).unwrap());
            (f, l)
        })
        .filter(|(_, l)| !l.is_empty())
        .collect()
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn report(desk: &Desk, score: i64) {
    desk.record_assessment(&AssessmentInput {
        patient_id: PATIENT.into(),
        values: AssessmentForm {
            scale: "nrs".into(),
            score,
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
}

struct Dirs {
    _root: tempfile::TempDir,
    data: PathBuf,
    config: PathBuf,
    db: PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let config = root.path().join("config");
    let db = data.join("clinic-desk.sqlite3");
    Dirs {
        data,
        config,
        db,
        _root: root,
    }
}

/// What the version before encryption left: a plaintext store with the demo clinic,
/// the known patient and a report for her, and three plaintext migration backups.
fn previous_version(db: &Path) {
    let desk = Desk::open(db).unwrap();
    assert!(desk.load_demo(DEMO_SEED, None).unwrap());
    let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let patient = Patient::new(
        PATIENT,
        NAME,
        "female",
        NaiveDate::from_ymd_opt(1956, 3, 4).unwrap(),
        true,
        Some(PHONE),
        today,
    )
    .unwrap();
    desk.database()
        .write(|c| patients::upsert(c, &patient))
        .unwrap();
    desk.sign_in(NURSE, DEMO_PIN).unwrap();
    report(&desk, 7);
    desk.database()
        .write(|c| {
            for v in [
                *SCHEMA_VERSION - 3,
                *SCHEMA_VERSION - 2,
                *SCHEMA_VERSION - 1,
            ] {
                c.execute("VACUUM INTO ?1", [backup_path(db, v).to_string_lossy()])?;
            }
            Ok::<_, clinic_store::StoreError>(())
        })
        .unwrap();
    drop(desk);
    let plain = std::fs::read(db).unwrap();
    assert!(
        leaks(&plain).iter().any(|l| l.contains("UTF-8")),
        "the test's premise: plaintext shows the name and phone"
    );
}

#[test]
fn a_plaintext_store_is_converted_in_place_and_no_file_holds_the_patient_afterwards() {
    let d = dirs();
    previous_version(&d.db);
    let reports_before = Desk::open(&d.db)
        .unwrap()
        .database()
        .read(outbox::all)
        .unwrap()
        .len();

    let desk = Desk::open_encrypted(Some(&d.config), &d.db).unwrap();
    // The data came across whole.
    let p = desk
        .database()
        .read(|c| patients::get(c, &PatientId::parse(PATIENT).unwrap()))
        .unwrap()
        .expect("the patient is still there");
    assert_eq!((p.name.as_str(), p.phone.as_deref()), (NAME, Some(PHONE)));
    assert_eq!(
        desk.database().read(outbox::all).unwrap().len(),
        reports_before
    );
    assert_eq!(desk.database().read(patients::count).unwrap(), 2_001);
    // New writes go on: a second report, whose pages sit in the WAL for now.
    desk.sign_in(NURSE, DEMO_PIN).unwrap();
    report(&desk, 4);
    assert_eq!(desk.patient_reports(PATIENT).unwrap().len(), 2);

    // Two newest backups kept, each encrypted; the plaintext and its work files gone.
    let kept: Vec<u32> = backups(&d.db)
        .unwrap()
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    assert_eq!(kept.len(), BACKUPS_KEPT);
    assert_eq!(kept, [*SCHEMA_VERSION - 2, *SCHEMA_VERSION - 1]);
    for f in [
        d.db.clone(),
        backup_path(&d.db, kept[0]),
        backup_path(&d.db, kept[1]),
    ] {
        assert_eq!(
            file_state(&f).unwrap(),
            FileState::Encrypted,
            "{}",
            f.display()
        );
    }
    let wal = PathBuf::from(format!("{}-wal", d.db.display()));
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "the WAL holds the new report"
    );
    assert!(!PathBuf::from(format!("{}.encrypting", d.db.display())).exists());

    // The support bundle, with a careless log line naming the patient.
    let log_dir = d.data.join("logs");
    {
        use std::io::Write as _;
        let mut log = clinic_install::logfile::RotatingFile::open(&log_dir, 1 << 20, 2).unwrap();
        writeln!(
            log,
            r#"{{"level":"DEBUG","fields":{{"message":"opened {NAME}"}}}}"#
        )
        .unwrap();
    }
    let setup = Setup {
        data_dir: d.data.clone(),
        config_dir: Some(d.config.clone()),
        log_dir,
        installed_profile: None,
        layers: Layers::default(),
        problems: vec![],
    };
    let bundle = desk
        .export_support_bundle(&setup, &d.data.join("support"))
        .unwrap();
    let diagnostics = desk.diagnostics(&setup).unwrap();
    assert_eq!(
        diagnostics.store_key,
        StoreKeyDto::File,
        "no keyring on a headless machine"
    );
    assert_eq!(
        diagnostics.store_key_file.as_deref(),
        Some(key_file(&d.config).to_str().unwrap())
    );

    // Nothing in any file, while the store is open (WAL full) and after it closed.
    assert_eq!(
        leaks(&std::fs::read(&bundle.path).unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(leaks_in(&d.data), vec![]);
    drop(desk);
    assert_eq!(leaks_in(&d.data), vec![]);

    // Owner-only: directories 0700, every file 0600.
    for dir in [&d.data, &d.config, &d.data.join("logs")] {
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
    }
    let mut checked = files(&d.data);
    checked.push(key_file(&d.config));
    for f in checked
        .iter()
        .filter(|f| !f.starts_with(d.data.join("support")))
    {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }

    // And it opens again, with the same key.
    let again = Desk::open_encrypted(Some(&d.config), &d.db).unwrap();
    assert_eq!(again.patient_reports(PATIENT).unwrap().len(), 2);
}

#[derive(Debug, Clone, Copy)]
enum Elsewhere {
    /// A machine or account with no key at all.
    NoKey,
    /// One with a key of its own (its own store).
    OtherKey,
}

#[rstest]
#[case::without_any_key(Elsewhere::NoKey, ErrorCode::StoreKeyMissing)]
#[case::with_another_key(Elsewhere::OtherKey, ErrorCode::StoreKeyWrong)]
fn a_data_directory_copied_without_its_key_opens_nothing(
    #[case] elsewhere: Elsewhere,
    #[case] code: ErrorCode,
) {
    let d = dirs();
    previous_version(&d.db);
    drop(Desk::open_encrypted(Some(&d.config), &d.db).unwrap());

    let there = dirs();
    std::fs::create_dir_all(&there.data).unwrap();
    for f in files(&d.data) {
        // The closed store's -wal/-shm can still go while the copy runs (SQLite
        // removes them as the last connection closes): a copy takes what is there.
        match std::fs::copy(&f, there.data.join(f.file_name().unwrap())) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => {
                other.unwrap();
            }
        }
    }
    if let Elsewhere::OtherKey = elsewhere {
        let own = there.config.join("own.sqlite3");
        drop(Desk::open_encrypted(Some(&there.config), &own).unwrap());
    }
    let key_before = std::fs::read(key_file(&there.config)).ok();
    let bytes_before = std::fs::read(&there.db).unwrap();

    let err = Desk::open_encrypted(Some(&there.config), &there.db)
        .err()
        .expect("refused");
    assert_eq!(err.code, code, "{err}");
    assert!(err.message.contains("left untouched"), "{err}");
    // Left as it was: no new key, no new empty store over the old one.
    assert_eq!(std::fs::read(&there.db).unwrap(), bytes_before);
    assert_eq!(std::fs::read(key_file(&there.config)).ok(), key_before);
    // A plain open (a tool, the sync agent) says so too.
    let plain = Desk::open(&there.db).err().expect("refused");
    assert_eq!(plain.code, ErrorCode::StoreKeyMissing);

    // The app starts anyway and says why on every command, diagnostics included.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = DeskApp::start(
        StartOptions {
            setup: Setup::load(
                Profile::default(),
                there.data.clone(),
                Some(there.config.clone()),
            ),
            database: there.db.clone(),
            demo_seed: Some(DEMO_SEED),
            app_version: "test".into(),
        },
        rt.handle().clone(),
    );
    assert_eq!(app.diagnostics().unwrap_err().code, code);
    assert_eq!(
        std::fs::read(&there.db).unwrap(),
        bytes_before,
        "the demo was not loaded over it"
    );
}
