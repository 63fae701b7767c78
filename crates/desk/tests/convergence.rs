//! Convergence under chaos: three devices, each a `Desk` on its own
//! store file in its own temp directory with its own real sync engine, talk to a
//! real `clinic-central` through the sync crate's fault-injecting proxy (one per
//! device). Seeded random schedules interleave recording, correcting (also the
//! same record on two devices while both are offline), settling conflicts,
//! reassessment follow-ups, devices going offline and online and syncing through
//! the proxy's faults, and the app dying mid-sync. Then the network calms and every
//! device syncs until nothing changes; every device and the server must hold the
//! same reports, each exactly once, and each patient's record, read through the
//! UI's own reads (`patient_reports`, `pending_reassessments`), must be
//! byte-identical on all three.
//!
//! Dying mid-sync comes two ways. Devices 0 and 1 sync in this process, and a crash
//! drops their sync wherever it was (often with reports on the wire) and starts a
//! new engine on the same store. Device 2 (`PROCESS_DEVICE`) syncs as a real OS
//! process: this test binary re-executed as a child (`CHILD_*` in its environment)
//! that opens the device's store file and runs one sync through the device's
//! proxy; a crash, and one in four of its syncs, is a `SIGKILL` at a random moment
//! after the child's sync began (a write transaction open, a request on the wire,
//! an answer not yet stored), and its next sync is a new process on the same file.
//! The child is this binary rather than `sync-agent` because a test of this crate
//! cannot name another package's binary (`CARGO_BIN_EXE_*` is only set for the
//! package's own), and the child then runs exactly the engine and settings the
//! in-process devices run.
//!
//! `CONVERGENCE_SCHEDULES=n` runs n schedules (soak runs); `CONVERGENCE_SEED=s`
//! replays the one schedule a failure printed (the kill times are drawn from the
//! seed too; where a kill lands in the child's sync is up to the machine).

#[path = "../../sync/tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clinic_desk_core::{AssessmentInput, CorrectionInput, DEMO_PIN, Desk, PainReportDto};
use clinic_domain::AssessmentForm;
use clinic_sync::{SyncConfig, SyncEngine};
use futures_util::StreamExt;
use support::{FAULT_NAMES, Fault, INJECTED, Proxy, Random, Schedule, start_proxy};

const CLINIC: &str = "C001";
/// Few patients, so the devices keep meeting on the same records.
const PATIENTS: [&str; 3] = ["P0000001", "P0000002", "P0000003"];
const NURSES: [&str; 3] = ["N001", "N002", "N003"];
const SCHEDULES: u64 = 200;
const STEPS: usize = 40;
const IN_PARALLEL: usize = 4;
/// Final sync rounds allowed before "never settles" fails the schedule.
const MAX_FINAL_ROUNDS: usize = 8;
/// The device whose syncs run as child processes, killed with SIGKILL mid-sync.
const PROCESS_DEVICE: usize = 2;
/// A process device's sync is killed at most this long after it began.
const KILL_WITHIN_MS: u64 = 40;
/// This test, as the child re-executes it.
const TEST_NAME: &str = "three_devices_converge_on_every_record_whatever_the_schedule";
/// What a child is told: its store file, its proxy, its token, its schedule and device.
const CHILD_DB: &str = "CONVERGENCE_CHILD_DB";
const CHILD_URL: &str = "CONVERGENCE_CHILD_URL";
const CHILD_TOKEN: &str = "CONVERGENCE_CHILD_TOKEN";
const CHILD_SEED: &str = "CONVERGENCE_CHILD_SEED";
const CHILD_DEVICE: &str = "CONVERGENCE_CHILD_DEVICE";
/// The line a child prints once its engine is up and its sync begins.
const CHILD_SYNCING: &str = "convergence child: syncing";
/// A child's exit code for a sync that failed (a fault, a timeout, offline).
const CHILD_SYNC_FAILED: i32 = 3;

/// A device's network, switched by the schedule: the proxy's random faults,
/// down altogether (offline), or calm for the final syncs.
struct Network {
    mode: AtomicU8,
    faults: Random,
}

const FAULTY: u8 = 0;
const OFFLINE: u8 = 1;
const CALM: u8 = 2;

impl Schedule for Network {
    fn next(&self, conn: u64) -> Fault {
        match self.mode.load(Ordering::SeqCst) {
            FAULTY => self.faults.next(conn),
            OFFLINE => Fault::DropBeforeForward,
            _ => Fault::Pass,
        }
    }
}

/// Device `n`'s engine settings in schedule `seed` through the proxy at `url`: small
/// batches and pages, short timeouts, a new connection per request (so each meets
/// the proxy's next fault). The same in this process and in a child.
fn chaos_config(url: String, token: &str, seed: u64, n: usize) -> SyncConfig {
    let mut config = SyncConfig::new(url, Some(token.to_owned()));
    let mut rng = fastrand::Rng::with_seed(seed ^ ((n as u64) << 32));
    config.batch_size = rng.usize(1..=4);
    config.single_chunk = 3;
    config.feed_page_limit = rng.u32(2..=8);
    config.reuse_connections = false;
    config.live = false;
    config.connect_timeout = Duration::from_millis(500);
    config.request_timeout = Duration::from_millis(250);
    config
}

/// How a process device's sync ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChildEnd {
    Synced,
    Failed,
    Killed,
}

/// When this binary runs as a process device's child (`CHILD_*` set): one sync
/// of that store, then exit (0 synced, `CHILD_SYNC_FAILED` failed), before the
/// test harness could say anything more. Returns when this is not a child.
async fn run_as_child_if_asked() {
    let Some(db) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} unset"));
    let seed: u64 = var(CHILD_SEED).parse().unwrap();
    let n: usize = var(CHILD_DEVICE).parse().unwrap();
    let db = Arc::new(clinic_store::Database::open(Path::new(&db)).unwrap());
    let config = chaos_config(var(CHILD_URL), &var(CHILD_TOKEN), seed, n);
    // A new engine on the store, as at the app's start: reports a killed child
    // left `sending` go back to `queued`.
    let engine = SyncEngine::new(db, config).unwrap();
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{CHILD_SYNCING}").unwrap();
        out.flush().unwrap();
    }
    let code = match engine.sync_once().await {
        Ok(_) => 0,
        Err(_) => CHILD_SYNC_FAILED,
    };
    std::process::exit(code);
}

struct Device {
    _dir: tempfile::TempDir,
    desk: Desk,
    /// The engine through the fault proxy; replaced by a new one after a crash.
    /// The process device's syncs run in children instead.
    engine: Mutex<Arc<SyncEngine>>,
    config: SyncConfig,
    network: Arc<Network>,
    _proxy: Proxy,
    token: String,
    seed: u64,
    n: usize,
}

impl Device {
    async fn new(seed: u64, n: usize, server: &clinic_central::TestServer, token: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let desk = Desk::open(&dir.path().join("desk.sqlite3")).unwrap();
        let network = Arc::new(Network {
            mode: AtomicU8::new(CALM),
            faults: Random::new(seed * 3 + n as u64, 0.08, 400),
        });
        let proxy = start_proxy(server.addr, network.clone()).await;
        let config = chaos_config(proxy.url(), token, seed, n);
        let device = Self {
            engine: Mutex::new(Arc::new(
                SyncEngine::new(desk.shared_database(), config.clone()).unwrap(),
            )),
            config,
            _dir: dir,
            desk,
            network,
            _proxy: proxy,
            token: token.to_owned(),
            seed,
            n,
        };
        // The clinic's patients and staff first, straight from the server.
        let run = device.calm_engine(server).sync_once().await.unwrap();
        assert!(run.pulled > 0, "schedule {seed}: {run:?}");
        device.desk.sign_in(NURSES[n], DEMO_PIN).unwrap();
        device.network.mode.store(FAULTY, Ordering::SeqCst);
        device
    }

    /// An engine with the app's own settings straight to the server, as after a
    /// restart on a good network (the chaos engine's short timeouts are no test of
    /// a loaded machine).
    fn calm_engine(&self, server: &clinic_central::TestServer) -> SyncEngine {
        let mut config = SyncConfig::new(server.base_url(), Some(self.token.clone()));
        config.live = false;
        SyncEngine::new(self.desk.shared_database(), config).unwrap()
    }

    fn engine(&self) -> Arc<SyncEngine> {
        self.engine.lock().unwrap().clone()
    }

    /// The app dies in the middle of a sync (its sync is dropped wherever it
    /// was: a request on the wire, an answer not yet stored) and starts again
    /// with a new engine on the same store.
    /// Returns whether it died with reports on the wire (claimed, not yet proven delivered).
    async fn crash_mid_sync(&self, after: Duration) -> bool {
        let engine = self.engine();
        // The sync runs on a runtime of its own, dropped `after` in: its tasks are
        // cancelled and the drop waits for the store work it had begun on the
        // blocking pool, as a dying process stops all at once. (Aborting a task on
        // the shared runtime left that work running, so a claim could commit
        // after the new engine had already put `sending` rows back in the queue.)
        let died = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let _ = tokio::time::timeout(after, engine.sync_once()).await;
            });
            drop(runtime);
        });
        tokio::task::spawn_blocking(move || died.join().expect("the dying sync's thread"))
            .await
            .unwrap();
        let on_the_wire = self.on_the_wire();
        let engine = SyncEngine::new(self.desk.shared_database(), self.config.clone()).unwrap();
        *self.engine.lock().unwrap() = Arc::new(engine);
        on_the_wire
    }

    fn is_process(&self) -> bool {
        self.n == PROCESS_DEVICE
    }

    /// One sync of this device as a child process (this test binary re-executed,
    /// see `run_as_child_if_asked`) on its store file through its proxy. With
    /// `kill_after`, the child is sent SIGKILL that long after its sync began.
    async fn sync_in_child(&self, kill_after: Option<Duration>) -> ChildEnd {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD_DB, self.desk.database().path())
            .env(CHILD_URL, &self.config.server_url)
            .env(CHILD_TOKEN, &self.token)
            .env(CHILD_SEED, self.seed.to_string())
            .env(CHILD_DEVICE, self.n.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("re-executing the test binary");
        let stdout = child.stdout.take().unwrap();
        let (began_tx, began) = tokio::sync::oneshot::channel();
        // Read the child's output to its end; say when its sync began.
        std::thread::spawn(move || {
            let mut began_tx = Some(began_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The harness's "test … " may precede it on the line.
                if line.ends_with(CHILD_SYNCING)
                    && let Some(tx) = began_tx.take()
                {
                    let _ = tx.send(());
                }
            }
        });
        // Without the line the child ended before its sync began; its status says how.
        let began = tokio::time::timeout(Duration::from_secs(60), began)
            .await
            .expect("the child's sync began within a minute")
            .is_ok();
        if let Some(after) = kill_after.filter(|_| began) {
            tokio::time::sleep(after).await;
            let _ = child.kill(); // SIGKILL; nothing if it has ended
        }
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        match (began, status.code(), status.signal()) {
            (true, Some(0), _) => ChildEnd::Synced,
            (true, Some(CHILD_SYNC_FAILED), _) => ChildEnd::Failed,
            (true, _, Some(9)) if kill_after.is_some() => ChildEnd::Killed,
            _ => panic!(
                "schedule {}: device {}'s sync process ended with {status} (its sync began: {began})",
                self.seed, self.n
            ),
        }
    }

    /// Whether this device holds reports claimed for sending and not proven delivered.
    fn on_the_wire(&self) -> bool {
        self.desk
            .database()
            .read(clinic_store::outbox::counts)
            .unwrap()
            .sending
            > 0
    }

    /// The outbox rows not yet delivered (state, attempts, last error), for a failure's message.
    fn unsent(&self) -> Vec<String> {
        use clinic_store::outbox::{self, OutboxState};
        let db = self.desk.database();
        [OutboxState::Queued, OutboxState::Sending]
            .into_iter()
            .flat_map(|state| db.read(|c| outbox::in_state(c, state)).unwrap())
            .map(|e| {
                format!(
                    "{} {:?} attempts={} last_error={:?}",
                    e.id, e.state, e.attempts, e.last_error
                )
            })
            .collect()
    }

    fn online(&self) -> bool {
        self.network.mode.load(Ordering::SeqCst) != OFFLINE
    }

    fn set_online(&self, on: bool) {
        let mode = if on { FAULTY } else { OFFLINE };
        self.network.mode.store(mode, Ordering::SeqCst);
    }

    fn reports(&self, patient: &str) -> Vec<PainReportDto> {
        self.desk.patient_reports(patient).unwrap()
    }

    /// Every report this device holds (all patients), with how many times its reads list each.
    fn report_ids(&self) -> BTreeMap<String, usize> {
        let mut ids = BTreeMap::new();
        for p in PATIENTS {
            for r in self.reports(p) {
                *ids.entry(r.id).or_insert(0) += 1;
            }
        }
        ids
    }

    /// The canonical digest of one patient's record as this device shows it:
    /// every report with its chain (supersedes, superseded by, resolves), its
    /// values, whether it is live, current, conflicting, and its reassessment,
    /// then the reassessments the clinic owes for the patient. Nothing local
    /// (delivery state, received or not, pull times) is in it.
    fn digest(&self, patient: &str) -> String {
        let mut reports = self.reports(patient);
        reports.sort_by(|a, b| a.id.cmp(&b.id));
        let mut out = String::new();
        for r in &reports {
            let mut resolves = r.resolves.clone();
            resolves.sort();
            out.push_str(&format!(
                "{} record={} {:?}={} assessed={} recorded={} by={} device={} supersedes={:?} \
                 reason={:?} superseded_by={:?} resolves={resolves:?} live={} current={} \
                 conflicting={} intervention={:?} follows_up={:?} followed_up_by={:?} \
                 due={:?} reassessment={:?}\n",
                r.id,
                r.record_id,
                r.scale,
                r.score,
                r.assessed_at,
                r.recorded_at,
                r.recorded_by,
                r.device_id,
                r.supersedes,
                r.correction_reason,
                r.superseded_by,
                r.live,
                r.current,
                r.conflicting,
                r.intervention,
                r.follows_up,
                r.followed_up_by,
                r.reassess_due_at,
                r.reassessment,
            ));
        }
        let mut owed: Vec<String> = self
            .desk
            .pending_reassessments()
            .unwrap()
            .into_iter()
            .filter(|p| p.report.patient_id == patient)
            .map(|p| p.report.id)
            .collect();
        owed.sort();
        out.push_str(&format!("owed={owed:?}\n"));
        out
    }

    /// What a sync may change, to tell when the final syncs have settled.
    fn state(&self) -> (Vec<String>, u32) {
        let digests = PATIENTS.iter().map(|p| self.digest(p)).collect();
        (digests, self.desk.sync_status().unwrap().waiting)
    }
}

fn form(score: i64, intervention: bool) -> AssessmentForm {
    AssessmentForm {
        scale: "nrs".into(),
        score,
        intervention: intervention.then(|| "吗啡 5mg".into()),
        ..Default::default()
    }
}

fn correction(rng: &mut fastrand::Rng, reason: &str) -> CorrectionInput {
    CorrectionInput {
        values: form(rng.i64(0..=10), rng.bool()),
        reason: reason.into(),
    }
}

/// What one schedule did, for the run's summary.
#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    recorded: usize,
    corrected: usize,
    concurrent: usize,
    resolved: usize,
    follow_ups: usize,
    syncs: usize,
    failed_syncs: usize,
    offline: usize,
    crashes: usize,
    crashes_sending: usize,
    /// The process device's syncs, how many were SIGKILLed before they ended, and
    /// how many of those with reports claimed for sending.
    process_syncs: usize,
    kills: usize,
    kills_sending: usize,
    conflicts_seen: usize,
    final_rounds: usize,
}

impl Tally {
    fn count_child(&mut self, end: ChildEnd, d: &Device) {
        self.process_syncs += 1;
        if end == ChildEnd::Killed {
            self.kills += 1;
            self.kills_sending += usize::from(d.on_the_wire());
        }
    }
}

async fn run_schedule(seed: u64) -> Tally {
    let dir = tempfile::tempdir().unwrap();
    let central_db = dir.path().join("central.sqlite3");
    let server = clinic_central::spawn_for_tests(&central_db, false).unwrap();
    server.load_demo(CLINIC, 1).unwrap();
    let token = server.issue_token(CLINIC).unwrap();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut tally = Tally::default();
    let mut made: BTreeSet<String> = BTreeSet::new();
    // Every device starts with a record per patient (device 0's), so the
    // schedule's corrections meet on shared records from the first step.
    let first = Device::new(seed, 0, &server, &token).await;
    for patient in PATIENTS {
        let r = first
            .desk
            .record_assessment(&AssessmentInput {
                patient_id: patient.into(),
                values: form(rng.i64(0..=10), true),
                ..Default::default()
            })
            .unwrap();
        made.insert(r.id);
    }
    first.calm_engine(&server).sync_once().await.unwrap();
    let mut devices = vec![first];
    for n in 1..3 {
        devices.push(Device::new(seed, n, &server, &token).await);
    }
    let steps = rng.usize(STEPS / 2..=STEPS);
    for step in 0..steps {
        let d = &devices[rng.usize(0..3)];
        let patient = PATIENTS[rng.usize(0..PATIENTS.len())];
        let at = format!("schedule {seed} step {step}");
        match rng.u8(0..100) {
            0..25 => {
                let r = d
                    .desk
                    .record_assessment(&AssessmentInput {
                        patient_id: patient.into(),
                        values: form(rng.i64(0..=10), rng.bool()),
                        ..Default::default()
                    })
                    .unwrap_or_else(|e| panic!("{at}: record: {e:?}"));
                made.insert(r.id);
                tally.recorded += 1;
            }
            25..40 => {
                // Any live report may be corrected, in a conflicting record too.
                let live: Vec<_> = d.reports(patient).into_iter().filter(|r| r.live).collect();
                if !live.is_empty() {
                    let target = &live[rng.usize(0..live.len())];
                    let r = d
                        .desk
                        .correct_report(&target.id, &correction(&mut rng, "rescored"))
                        .unwrap_or_else(|e| panic!("{at}: correct {}: {e:?}", target.id));
                    made.insert(r.id);
                    tally.corrected += 1;
                }
            }
            40..50 => {
                // Two devices offline at once correct the same record's current value.
                let a = rng.usize(0..3);
                let b = (a + rng.usize(1..3)) % 3;
                let (a, b) = (&devices[a], &devices[b]);
                let on_b: BTreeSet<String> = b
                    .reports(patient)
                    .into_iter()
                    .filter(|r| r.live)
                    .map(|r| r.id)
                    .collect();
                let shared: Vec<String> = a
                    .reports(patient)
                    .into_iter()
                    .filter(|r| r.live && on_b.contains(&r.id))
                    .map(|r| r.id)
                    .collect();
                if !shared.is_empty() {
                    let target = &shared[rng.usize(0..shared.len())];
                    a.set_online(false);
                    b.set_online(false);
                    for d in [a, b] {
                        let r = d
                            .desk
                            .correct_report(target, &correction(&mut rng, "offline rescore"))
                            .unwrap_or_else(|e| panic!("{at}: concurrent {target}: {e:?}"));
                        made.insert(r.id);
                    }
                    tally.concurrent += 1;
                }
            }
            50..60 => {
                // Settle a conflicting record this device knows of, if any.
                let reports: Vec<_> = PATIENTS.iter().flat_map(|p| d.reports(p)).collect();
                if let Some(current) = reports.iter().find(|r| r.current && r.conflicting) {
                    tally.conflicts_seen += 1;
                    let r = d
                        .desk
                        .resolve_conflict(&current.id, &correction(&mut rng, "asked again"))
                        .unwrap_or_else(|e| panic!("{at}: resolve {}: {e:?}", current.id));
                    assert!(
                        !r.resolves.is_empty(),
                        "{at}: a resolution names the others"
                    );
                    made.insert(r.id);
                    tally.resolved += 1;
                }
            }
            60..68 => {
                let owed = d.desk.pending_reassessments().unwrap();
                if !owed.is_empty() {
                    let target = &owed[rng.usize(0..owed.len())].report;
                    let r = d
                        .desk
                        .record_assessment(&AssessmentInput {
                            patient_id: target.patient_id.clone(),
                            values: form(rng.i64(0..=10), false),
                            follows_up: Some(target.id.clone()),
                        })
                        .unwrap_or_else(|e| panic!("{at}: follow up {}: {e:?}", target.id));
                    made.insert(r.id);
                    tally.follow_ups += 1;
                }
            }
            68..90 => {
                if !d.online() && rng.bool() {
                    d.set_online(true);
                }
                tally.syncs += 1;
                if d.is_process() {
                    // One in four of the process device's syncs is killed.
                    let kill = (rng.u8(0..4) == 0)
                        .then(|| Duration::from_millis(rng.u64(0..KILL_WITHIN_MS)));
                    let end = d.sync_in_child(kill).await;
                    tally.count_child(end, d);
                    tally.failed_syncs += usize::from(end != ChildEnd::Synced);
                } else if d.engine().sync_once().await.is_err() {
                    tally.failed_syncs += 1;
                }
            }
            90..93 => {
                tally.crashes += 1;
                if d.is_process() {
                    let after = Duration::from_millis(rng.u64(0..KILL_WITHIN_MS));
                    let end = d.sync_in_child(Some(after)).await;
                    tally.count_child(end, d);
                } else {
                    let after = Duration::from_millis(rng.u64(0..12));
                    tally.crashes_sending += usize::from(d.crash_mid_sync(after).await);
                }
            }
            _ => {
                let on = !d.online();
                d.set_online(on);
                tally.offline += usize::from(!on);
            }
        }
    }

    // The network calms; every device syncs until a whole round changes nothing.
    for d in &devices {
        d.set_online(true);
        d.network.mode.store(CALM, Ordering::SeqCst);
    }
    let calm: Vec<SyncEngine> = devices.iter().map(|d| d.calm_engine(&server)).collect();
    let mut before: Vec<_> = devices.iter().map(Device::state).collect();
    loop {
        tally.final_rounds += 1;
        if tally.final_rounds > MAX_FINAL_ROUNDS {
            let now: Vec<_> = devices.iter().map(Device::state).collect();
            let changed: Vec<String> = now
                .iter()
                .zip(&before)
                .enumerate()
                .map(|(n, ((digests, waiting), (was, _)))| {
                    let lines: Vec<&str> = digests
                        .iter()
                        .zip(was)
                        .flat_map(|(d, w)| d.lines().filter(|l| !w.contains(*l)))
                        .collect();
                    format!(
                        "device {n}: waiting {waiting} {:#?}, changed {lines:#?}",
                        devices[n].unsent()
                    )
                })
                .collect();
            panic!(
                "schedule {seed}: still changing after {MAX_FINAL_ROUNDS} final sync rounds\n{}",
                changed.join("\n")
            );
        }
        for (n, engine) in calm.iter().enumerate() {
            let run = engine
                .sync_once()
                .await
                .unwrap_or_else(|e| panic!("schedule {seed}: device {n}'s final sync: {e}"));
            // A report may be set aside for a while (a correction pulled before
            // the report it names); none may stay so (checked below).
            assert_eq!(run.rejected, 0, "schedule {seed}: device {n}: {run:?}");
        }
        let after: Vec<_> = devices.iter().map(Device::state).collect();
        let drained = after.iter().all(|(_, waiting)| *waiting == 0);
        if after == before && drained {
            break;
        }
        before = after;
    }

    let on_server = server_reports(&central_db);
    assert!(
        on_server.values().all(|&n| n == 1),
        "schedule {seed}: a report stored twice on the server: {on_server:?}"
    );
    let server_ids: BTreeSet<&String> = on_server.keys().collect();
    let made: BTreeSet<&String> = made.iter().collect();
    assert!(
        server_ids == made,
        "schedule {seed}: the server does not hold the reports recorded: missing {:?}, extra {:?}",
        made.difference(&server_ids).collect::<Vec<_>>(),
        server_ids.difference(&made).collect::<Vec<_>>()
    );
    for (n, d) in devices.iter().enumerate() {
        let aside = d
            .desk
            .database()
            .read(|c| clinic_store::pull::set_aside_items(c, 20))
            .unwrap();
        assert!(
            aside.is_empty(),
            "schedule {seed}: device {n} still sets aside {aside:?}"
        );
        let held = d.report_ids();
        assert!(
            held.values().all(|&k| k == 1),
            "schedule {seed}: device {n} lists a report twice: {held:?}"
        );
        let held: BTreeSet<&String> = held.keys().collect();
        assert!(
            held == server_ids,
            "schedule {seed}: device {n} does not hold the server's reports: missing {:?}, extra {:?}",
            server_ids.difference(&held).collect::<Vec<_>>(),
            held.difference(&server_ids).collect::<Vec<_>>()
        );
    }
    for patient in PATIENTS {
        let first = devices[0].digest(patient);
        for (n, d) in devices.iter().enumerate().skip(1) {
            let other = d.digest(patient);
            if first != other {
                let only = |a: &str, b: &str| -> String {
                    a.lines()
                        .filter(|l| !b.contains(*l))
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                panic!(
                    "schedule {seed}: {patient}'s record differs between device 0 and {n}\n\
                     --- only on device 0 ---\n{}\n--- only on device {n} ---\n{}",
                    only(&first, &other),
                    only(&other, &first)
                );
            }
        }
    }
    tally
}

/// Each report ID on the server with how many rows hold it, straight from its database.
fn server_reports(central_db: &Path) -> BTreeMap<String, i64> {
    let conn = rusqlite::Connection::open(central_db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut stmt = conn
        .prepare("SELECT report_id, count(*) FROM reports WHERE clinic_id = ?1 GROUP BY report_id")
        .unwrap();
    stmt.query_map([CLINIC], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_devices_converge_on_every_record_whatever_the_schedule() {
    run_as_child_if_asked().await;
    let seeds: Vec<u64> = match env_u64("CONVERGENCE_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("CONVERGENCE_SCHEDULES").unwrap_or(SCHEDULES)).collect(),
    };
    let started = Instant::now();
    let results: Vec<(u64, Result<Tally, tokio::task::JoinError>)> =
        futures_util::stream::iter(seeds.clone())
            .map(|seed| async move { (seed, tokio::spawn(run_schedule(seed)).await) })
            .buffer_unordered(IN_PARALLEL)
            .collect()
            .await;
    let failed: Vec<u64> = results
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(s, _)| *s)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} schedules failed (see the panics above); replay one with CONVERGENCE_SEED={}",
        failed.len(),
        seeds.len(),
        failed[0]
    );
    let total =
        results
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .fold(Tally::default(), |t, r| Tally {
                recorded: t.recorded + r.recorded,
                corrected: t.corrected + r.corrected,
                concurrent: t.concurrent + r.concurrent,
                resolved: t.resolved + r.resolved,
                follow_ups: t.follow_ups + r.follow_ups,
                syncs: t.syncs + r.syncs,
                failed_syncs: t.failed_syncs + r.failed_syncs,
                offline: t.offline + r.offline,
                crashes: t.crashes + r.crashes,
                crashes_sending: t.crashes_sending + r.crashes_sending,
                process_syncs: t.process_syncs + r.process_syncs,
                kills: t.kills + r.kills,
                kills_sending: t.kills_sending + r.kills_sending,
                conflicts_seen: t.conflicts_seen + r.conflicts_seen,
                final_rounds: t.final_rounds.max(r.final_rounds),
            });
    let injected: Vec<(&str, u64)> = FAULT_NAMES
        .iter()
        .zip(INJECTED.iter())
        .map(|(n, c)| (*n, c.load(Ordering::Relaxed)))
        .collect();
    eprintln!(
        "{} schedules in {:.1} s: {total:?}\nfaults injected: {injected:?}",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
    if seeds.len() >= SCHEDULES as usize {
        // The schedules really did what they claim to test.
        let t = total;
        assert!(
            t.concurrent >= 100
                && t.resolved >= 10
                && t.follow_ups >= 100
                && t.failed_syncs >= 100
                && t.crashes_sending >= 20
                && t.kills >= 50
                && t.kills_sending >= 15,
            "too little of something to mean anything: {t:?}"
        );
    }
}
