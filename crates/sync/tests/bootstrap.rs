//! Bootstrap against the real clinic-central: a new device with an empty store
//! loads a big clinic from the snapshot, then pulls what changed during and after
//! it, and ends with exactly the server's rows (none missing, none twice, none
//! left over); a device process SIGKILLed mid-load (while rows go in, and while
//! the search keys are built) never looks loaded, and its next run finishes the
//! job and ends identical to the server.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use chrono::Utc;
use clinic_central::TestServer;
use clinic_central::auth::Scope;
use clinic_central::store::{CentralStore, NewReport};
use clinic_domain::{AssessmentDetails, PainScale, PainScore};
use clinic_protocol::{AppointmentRecord, MAX_FEED_LIMIT, PatientRecord};
use clinic_store::{Database, bootstrap, patients};
use clinic_sync::{BootstrapPhase, SyncConfig, SyncEngine};
use rstest::rstest;
use support::*;
use uuid::Uuid;

const AGENT: &str = env!("CARGO_BIN_EXE_sync-agent");
const CLINIC: &str = "C001";

/// What the device must end up holding: the clinic's live records, from the
/// server's feeds read from the start (each record at its latest change).
#[derive(Debug, PartialEq, Eq)]
struct Clinic {
    patients: BTreeMap<String, PatientRecord>,
    appointments: BTreeMap<String, AppointmentRecord>,
    staff: BTreeMap<String, (String, String, bool)>,
    reports: BTreeSet<String>,
}

fn server_clinic(store: &dyn CentralStore) -> Clinic {
    fn all<T>(mut page: impl FnMut(i64) -> clinic_protocol::FeedPage<T>) -> BTreeMap<String, T> {
        let mut out = BTreeMap::new();
        let mut after = 0;
        loop {
            let p = page(after);
            for item in p.items {
                match item.data {
                    Some(d) if !item.deleted => out.insert(item.id, d),
                    _ => out.remove(&item.id),
                };
            }
            if !p.has_more {
                return out;
            }
            after = p.next_cursor;
        }
    }
    let patients = all(|a| store.patients_feed(CLINIC, a, MAX_FEED_LIMIT).unwrap());
    // A device keeps a visit only with its patient (the server keeps a deleted
    // patient's visits; the device removes or sets them aside).
    let appointments = all(|a| store.appointments_feed(CLINIC, a, MAX_FEED_LIMIT).unwrap())
        .into_iter()
        .filter(|(_, a)| patients.contains_key(&a.patient_id))
        .collect();
    Clinic {
        patients,
        appointments,
        staff: all(|a| store.staff_feed(CLINIC, a, MAX_FEED_LIMIT).unwrap())
            .into_iter()
            .map(|(id, s)| (id, (s.name, s.role, s.active)))
            .collect(),
        reports: all(|a| store.reports_feed(CLINIC, a, MAX_FEED_LIMIT).unwrap())
            .into_keys()
            .collect(),
    }
}

fn device_clinic(db: &Database) -> Clinic {
    db.read(|c| {
        let mut patients = BTreeMap::new();
        let mut stmt = c.prepare(
            "SELECT id, name, sex, birth_date, is_insured, phone FROM patients WHERE deleted_at IS NULL",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            patients.insert(
                r.get::<_, String>(0)?,
                PatientRecord {
                    name: r.get(1)?,
                    sex: r.get(2)?,
                    birth_date: r.get::<_, String>(3)?.parse().unwrap(),
                    is_insured: r.get(4)?,
                    phone: r.get(5)?,
                },
            );
        }
        let mut appointments = BTreeMap::new();
        let mut stmt = c.prepare(
            "SELECT id, doctor_id, patient_id, starts_at, ends_at, status FROM appointments",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            appointments.insert(
                r.get::<_, String>(0)?,
                AppointmentRecord {
                    doctor_id: r.get(1)?,
                    patient_id: r.get(2)?,
                    starts_at: chrono::DateTime::from_timestamp(r.get(3)?, 0).unwrap(),
                    ends_at: chrono::DateTime::from_timestamp(r.get(4)?, 0).unwrap(),
                    status: r.get(5)?,
                },
            );
        }
        let mut staff = BTreeMap::new();
        let mut stmt = c.prepare("SELECT id, name, role, active FROM staff")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            staff.insert(r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?));
        }
        let mut stmt = c.prepare("SELECT id FROM pain_reports")?;
        let reports = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        Ok::<_, clinic_store::StoreError>(Clinic {
            patients,
            appointments,
            staff,
            reports,
        })
    })
    .unwrap()
}

/// The device is complete and equal to the server, and every received report
/// kept the feed's rules: a `received` trail row, no outbox entry.
fn assert_identical(store: &dyn CentralStore, db: &Database) {
    let (server, device) = (server_clinic(store), device_clinic(db));
    assert_eq!(device.patients.len(), server.patients.len(), "patients");
    assert_eq!(device.appointments.len(), server.appointments.len());
    assert!(device == server, "the device's rows are the server's");
    let (trail, outbox, unset, cursors): (i64, i64, bool, i64) = db
        .read(|c| {
            Ok::<_, clinic_store::StoreError>((
                c.query_row(
                    "SELECT count(DISTINCT report_id) FROM audit_log WHERE action = 'received'",
                    [],
                    |r| r.get(0),
                )?,
                c.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?,
                bootstrap::under_way(c)?,
                c.query_row("SELECT min(cursor) FROM sync_cursors", [], |r| r.get(0))?,
            ))
        })
        .unwrap();
    assert_eq!(trail as usize, server.reports.len(), "a trail row each");
    assert_eq!(outbox, 0, "received reports are never queued");
    assert!(!unset, "the bootstrap row is gone");
    assert!(cursors > 0);
}

/// Reports recorded on other devices: runs of ten per patient, the last of each
/// run correcting the first.
fn reports(store: &dyn CentralStore, from: usize, n: usize) {
    let base = Utc::now().timestamp() - 3_600;
    let id = |i: usize| Uuid::from_u128(0x0190_f7a4_0000_7000_8000_0000_0000_0000 + i as u128);
    let batch: Vec<NewReport> = (from..from + n)
        .map(|i| NewReport {
            clinic_id: CLINIC.into(),
            report_id: id(i),
            patient_id: clinic_domain::demo::patient_id((i / 10 % 500 + 1) as u64),
            score: PainScore::new(PainScale::Nrs, (i % 11) as i64).unwrap(),
            submit_time: base + i as i64,
            assessed_at: Some(base + i as i64),
            recorded_by: Some("N001".into()),
            device_id: Some("ward-2".into()),
            supersedes: (i % 10 == 9).then(|| id(i - 9)),
            reason: (i % 10 == 9).then(|| "wrong score".to_owned()),
            details: AssessmentDetails::default(),
            follows_up: None,
            resolves: Vec::new(),
        })
        .collect();
    store.ingest(&batch).unwrap();
}

/// Changes a writer makes while (or after) a device loads: renames, deletions
/// and new patients, moved, cancelled and deleted appointments, a new doctor.
fn write_changes(store: &dyn CentralStore, round: u64, patients: u64) {
    let today = Utc::now().date_naive();
    let base = chrono::DateTime::from_timestamp(1_900_000_000, 0).unwrap();
    // Renamed patients are even, deleted ones odd, both past the first 1,000
    // (the reports' patients), so a deleted patient is never brought back.
    let pick =
        |k: u64, odd: u64| 1_000 + 2 * ((round * 7_919 + k * 104_729) % (patients / 2 - 600)) + odd;
    for k in 0..150u64 {
        let n = pick(k, 0);
        match k % 6 {
            0 => {
                let mut p = clinic_domain::demo::patient(1, n, today);
                p.name = format!("改{round}名{k}");
                store.upsert_patient(CLINIC, &p).unwrap();
            }
            1 => {
                store
                    .delete_patient(CLINIC, &clinic_domain::demo::patient_id(pick(k, 1)))
                    .unwrap();
            }
            2 => {
                let p = clinic_domain::demo::patient(2, patients + round * 1_000 + k, today);
                store.upsert_patient(CLINIC, &p).unwrap();
            }
            3 => {
                let mut a = big_appointment(n * 3 % 1_000 + 1, patients, base);
                a.status = clinic_domain::AppointmentStatus::Cancelled;
                store.upsert_appointment(CLINIC, &a).unwrap();
            }
            4 => {
                store
                    .delete_appointment(CLINIC, &format!("A{:07}", n * 5 % 1_000 + 1))
                    .unwrap();
            }
            _ => {
                let a = big_appointment(10_000_000 + round * 1_000 + k, patients, base);
                store.upsert_appointment(CLINIC, &a).unwrap();
            }
        }
    }
    let member = clinic_domain::StaffMember {
        id: format!("D9{round:02}"),
        name: "新医生".into(),
        role: clinic_domain::StaffRole::Doctor,
        department: "内科".into(),
    };
    store
        .upsert_staff(
            CLINIC,
            &member,
            true,
            Some(clinic_domain::pin::DEMO_VERIFIER),
        )
        .unwrap();
}

/// The device's runtime, as the app's (two workers).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn server(dir: &std::path::Path, patients: u64, appointments: u64) -> (TestServer, String) {
    let (server, _) = central(dir, false);
    big_clinic(&server, CLINIC, patients, appointments);
    reports(server.store.as_ref(), 0, 2_000);
    let token = server.issue_scoped_token(CLINIC, Scope::Device).unwrap();
    (server, token)
}

#[test]
fn a_big_clinic_bootstraps_then_pulls_what_changed_during_and_after_the_snapshot() {
    const PATIENTS: u64 = 50_000;
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = server(dir.path(), PATIENTS, 200_000);
    let store = server.store.clone();
    let db = Arc::new(Database::open(&dir.path().join("device.sqlite3")).unwrap());
    let runtime = runtime();
    let mut config = SyncConfig::new(server.base_url(), Some(token));
    config.live = false;
    let engine = SyncEngine::new(db.clone(), config).unwrap();
    let mut status = engine.subscribe();

    // A writer starts as soon as the first rows are in (the snapshot's cursor was
    // taken before), so its changes land during the load.
    let (writer, total) = runtime.block_on(async {
        let sync = engine.sync_once();
        let watch = async {
            loop {
                status.changed().await.unwrap();
                let now = status.borrow_and_update().bootstrap;
                if let Some(p) = now.filter(|p| p.phase == BootstrapPhase::Loading && p.done > 0) {
                    let store = store.clone();
                    let writer = std::thread::spawn(move || {
                        write_changes(store.as_ref(), 1, PATIENTS);
                        reports(store.as_ref(), 2_000, 300);
                    });
                    return (writer, p.total);
                }
            }
        };
        let (ran, (writer, total)) = tokio::join!(sync, watch);
        ran.unwrap();
        (writer, total)
    });
    assert!(total > 250_000, "the snapshot counted its records: {total}");
    writer.join().unwrap();
    // Lookup by every kind of key works after the bootstrap.
    let found = db.read(|c| patients::search(c, "P0049999", 5)).unwrap();
    assert_eq!(found[0].patient.id.as_str(), "P0049999");
    let name = clinic_domain::demo::patient(1, 12_345, Utc::now().date_naive()).name;
    assert!(
        !db.read(|c| patients::search(c, &name, 50))
            .unwrap()
            .is_empty(),
        "name search works once the bootstrap is done"
    );

    // What the writer did during the load comes through the feeds, then what
    // changes after.
    runtime.block_on(engine.sync_once()).unwrap();
    assert_identical(store.as_ref(), &db);
    write_changes(store.as_ref(), 2, PATIENTS);
    runtime.block_on(engine.sync_once()).unwrap();
    assert_identical(store.as_ref(), &db);
}

/// How many snapshots the server has served (its request metric).
fn snapshots_served(server: &TestServer) -> u64 {
    let metric = format!(
        "clinic_http_requests_total{{route=\"{}\",status=\"200\"}} ",
        clinic_protocol::paths::SNAPSHOT
    );
    server
        .state
        .metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(&metric)?.trim().parse().ok())
        .unwrap_or(0)
}

/// A device away while its clinic changed a lot (more changes waiting than a
/// quarter of the rows it holds, and at least `far_behind_min_changes`) loads a
/// new snapshot over its store instead of paging; one a little behind pages.
/// Either way it keeps and delivers the report recorded while away, takes a
/// member made inactive meanwhile as inactive, and ends with exactly the
/// server's rows.
#[rstest]
#[case::far_behind(20, true)]
#[case::a_little_behind(1, false)]
fn a_device_far_behind_loads_a_new_snapshot_and_one_a_little_behind_pages(
    #[case] rounds: u64,
    #[case] new_snapshot: bool,
) {
    const PATIENTS: u64 = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = server(dir.path(), PATIENTS, 2_000);
    let store = server.store.clone();
    let db = Arc::new(Database::open(&dir.path().join("device.sqlite3")).unwrap());
    let runtime = runtime();
    let engine = || {
        let mut config = SyncConfig::new(server.base_url(), Some(token.clone()));
        config.live = false;
        config.far_behind_min_changes = 500;
        SyncEngine::new(db.clone(), config).unwrap()
    };
    runtime.block_on(engine().sync_once()).unwrap();
    assert_eq!(snapshots_served(&server), 1, "the first day bootstraps");
    assert!(device_clinic(&db) == server_clinic(store.as_ref()));

    // Away: a report recorded here; on the server, `rounds` rounds of changes
    // (151 each) and a nurse made inactive.
    let mine = record(&db, 1).remove(0);
    for round in 1..=rounds {
        write_changes(store.as_ref(), round, PATIENTS);
    }
    let today = Utc::now().date_naive();
    let demo = clinic_domain::demo::clinic("DEMO", 1, Default::default(), today);
    let nurse = demo
        .staff
        .iter()
        .find(|m| m.role == clinic_domain::StaffRole::Nurse && m.id != "N001")
        .unwrap();
    store.upsert_staff(CLINIC, nurse, false, None).unwrap();

    runtime.block_on(engine().sync_once()).unwrap();
    assert_eq!(
        snapshots_served(&server),
        1 + u64::from(new_snapshot),
        "a new snapshot only when far behind"
    );
    assert!(device_clinic(&db) == server_clinic(store.as_ref()));
    let (delivered, active, unset): (i64, bool, bool) = db
        .read(|c| {
            Ok::<_, clinic_store::StoreError>((
                c.query_row(
                    "SELECT count(*) FROM pain_reports p JOIN outbox o ON o.report_id = p.id
                     WHERE p.id = ?1 AND o.state = 'delivered'",
                    [&mine],
                    |r| r.get(0),
                )?,
                c.query_row("SELECT active FROM staff WHERE id = ?1", [&nurse.id], |r| {
                    r.get(0)
                })?,
                bootstrap::under_way(c)?,
            ))
        })
        .unwrap();
    assert_eq!(
        delivered, 1,
        "the report recorded while away, once, delivered"
    );
    assert!(
        !active,
        "the member made inactive meanwhile cannot sign in here"
    );
    assert!(!unset);
    let name = clinic_domain::demo::patient(1, 123, today).name;
    assert!(
        !db.read(|c| patients::search(c, &name, 50))
            .unwrap()
            .is_empty(),
        "name search works again"
    );
}

/// Which progress line the device process is killed on.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// The first batch of rows is committed, the rest are going in.
    Loading,
    /// Every row is in; a batch of search keys is built, the rest are not.
    Indexing,
}

#[rstest]
#[case::while_rows_go_in(KillAt::Loading)]
#[case::while_search_keys_are_built(KillAt::Indexing)]
fn a_device_killed_mid_bootstrap_never_looks_loaded_and_finishes_next_time(
    #[case] kill_at: KillAt,
) {
    const PATIENTS: u64 = 60_000;
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = server(dir.path(), PATIENTS, 60_000);
    let store = server.store.clone();
    let db_path = dir.path().join("device.sqlite3");
    drop(Database::open(&db_path).unwrap());
    let agent = |progress: bool| {
        let mut cmd = Command::new(AGENT);
        cmd.args([
            "--db",
            db_path.to_str().unwrap(),
            "--server",
            &server.base_url(),
            "--token",
            &token,
            "--until-pulled",
        ]);
        if progress {
            cmd.arg("--progress");
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
        cmd.spawn().unwrap()
    };

    let mut child = agent(true);
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut killed_on = None;
    for line in lines {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |i: usize| -> u64 { words.get(i).and_then(|w| w.parse().ok()).unwrap_or(0) };
        let (done, total) = (number(2), number(3));
        // Loading: a quarter in (staff first, then patients: some patients are in).
        let (phase, far_enough) = match kill_at {
            KillAt::Loading => ("loading", done * 4 >= total),
            KillAt::Indexing => ("indexing", done > 0),
        };
        if words.first() == Some(&"bootstrap")
            && words.get(1) == Some(&phase)
            && far_enough
            && done < total
        {
            child.kill().unwrap(); // SIGKILL
            killed_on = Some(line);
            break;
        }
    }
    assert!(child.wait().unwrap().code().is_none(), "killed by a signal");
    assert!(
        killed_on.is_some(),
        "the device reported progress before it ended"
    );

    // Half loaded, and it says so: no cursor, the bootstrap row in its phase, and
    // no lookup by name yet.
    let db = Database::open(&db_path).unwrap();
    let (state, cursors, needed) = db
        .read(|c| {
            Ok::<_, clinic_store::StoreError>((
                bootstrap::current(c)?,
                c.query_row(
                    "SELECT count(*) FROM sync_cursors WHERE cursor > 0",
                    [],
                    |r| r.get::<_, i64>(0),
                )?,
                bootstrap::needed(c)?,
            ))
        })
        .unwrap();
    let state = state.expect("a bootstrap row after the kill");
    assert_eq!(
        cursors, 0,
        "no cursor is stored before the load is complete"
    );
    assert!(needed);
    match kill_at {
        KillAt::Loading => {
            assert_eq!(state.phase, bootstrap::Phase::Loading);
            assert!(state.rows_loaded > 0 && state.rows_loaded < state.rows_total);
        }
        KillAt::Indexing => {
            assert_eq!(state.phase, bootstrap::Phase::Keys);
            assert!(!state.keys_after.is_empty());
        }
    }
    let some_id = db
        .read(|c| {
            c.query_row("SELECT id FROM patients ORDER BY id LIMIT 1", [], |r| {
                r.get::<_, String>(0)
            })
        })
        .unwrap();
    let by_id = db.read(|c| patients::search(c, &some_id, 5)).unwrap();
    assert_eq!(
        by_id.first().map(|f| f.patient.id.as_str()),
        Some(some_id.as_str()),
        "lookup by ID works on the rows that are in"
    );
    drop(db);

    // The clinic changes while the device is down; the next run finishes.
    write_changes(store.as_ref(), 3, PATIENTS);
    let out = agent(false).wait_with_output().unwrap();
    assert!(out.status.success());
    let db = Database::open(&db_path).unwrap();
    assert_identical(store.as_ref(), &db);
    let cursor: i64 = db
        .read(|c| c.query_row("SELECT max(cursor) FROM sync_cursors", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(
        cursor,
        store.change_counters(&[CLINIC.into()]).unwrap()[0].1,
        "pulled to the clinic's last change"
    );
}
