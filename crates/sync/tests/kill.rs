//! Kill the sync process (SIGKILL) while a batch is in flight, restart it, and
//! check that every report is on the server exactly once: once killed before the
//! server saw the batch, once after the server committed it but before the answer
//! reached the app ("outcome unknown").

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clinic_store::{Database, outbox};
use rstest::rstest;
use support::*;

const AGENT: &str = env!("CARGO_BIN_EXE_sync-agent");
const REPORTS: usize = 1_200;

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[rstest]
#[case::before_the_server_saw_it(Fault::Delay(Duration::from_secs(3)), false)]
#[case::after_the_server_committed_it(Fault::HoldResponse(Duration::from_secs(3)), true)]
fn killed_mid_batch_then_restarted_delivers_each_report_once(
    #[case] fault: Fault,
    #[case] committed: bool,
) {
    let dir = tempfile::tempdir().unwrap();
    let (server, central_db) = central(dir.path(), false);
    let token = server.issue_token("C001").unwrap();
    let db = local_store(dir.path());
    let ids = record(&db, REPORTS);
    let db_path = db.path().to_owned();
    drop(db);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let proxy = runtime.block_on(start_proxy(server.addr, Arc::new(Always(fault))));
    let agent = |url: String| {
        Command::new(AGENT)
            .args([
                "--db",
                db_path.to_str().unwrap(),
                "--server",
                &url,
                "--token",
                &token,
                "--until-drained",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = agent(proxy.url());
    let local = Database::open(&db_path).unwrap();
    wait_until("a batch is in flight", 20, || {
        local.read(outbox::counts).unwrap().sending > 0
    });
    if committed {
        wait_until("the server committed the batch", 20, || {
            server.report_count(Some("C001")).unwrap() > 0
        });
    }
    child.kill().unwrap(); // SIGKILL: no chance to tidy up
    child.wait().unwrap();

    let counts = local.read(outbox::counts).unwrap();
    assert!(
        counts.sending > 0,
        "killed with a batch in flight: {counts:?}"
    );
    assert_eq!(counts.delivered, 0, "nothing acknowledged yet");
    let on_server = server.report_count(Some("C001")).unwrap();
    assert_eq!(on_server > 0, committed, "server had {on_server}");

    // Restart, straight to the server this time.
    let out = agent(server.base_url()).wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&format!("drained {REPORTS}")));
    drop(proxy);
    // A delayed copy of the killed batch may still reach the server: give it time, then count.
    std::thread::sleep(Duration::from_millis(3_500));
    let copies = server_copies(&central_db, "C001", &ids);
    assert!(copies.iter().all(|&n| n == 1), "each report exactly once");
    assert_eq!(server.report_count(Some("C001")).unwrap(), REPORTS as u64);
    let counts = local.read(outbox::counts).unwrap();
    assert_eq!(
        (counts.delivered, counts.waiting(), counts.rejected),
        (REPORTS as u64, 0, 0)
    );
}

/// Several SIGKILLs at random moments while the network misbehaves at random.
#[test]
fn killed_again_and_again_under_random_faults_still_delivers_each_report_once() {
    let dir = tempfile::tempdir().unwrap();
    let (server, central_db) = central(dir.path(), false);
    let token = server.issue_token("C001").unwrap();
    let db = local_store(dir.path());
    let ids = record(&db, 3_000);
    let db_path = db.path().to_owned();
    drop(db);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut rng = fastrand::Rng::with_seed(4);
    for round in 0..4u64 {
        let proxy = runtime.block_on(start_proxy(
            server.addr,
            Arc::new(Random::new(round, 0.5, 300)),
        ));
        let mut child = Command::new(AGENT)
            .args([
                "--db",
                db_path.to_str().unwrap(),
                "--server",
                &proxy.url(),
                "--token",
                &token,
            ])
            .args(["--request-timeout-ms", "200"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.u64(100..700)));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let out = Command::new(AGENT)
        .args([
            "--db",
            db_path.to_str().unwrap(),
            "--server",
            &server.base_url(),
            "--token",
            &token,
            "--until-drained",
        ])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    std::thread::sleep(Duration::from_millis(500)); // stragglers from the killed runs' proxies
    assert!(
        server_copies(&central_db, "C001", &ids)
            .iter()
            .all(|&n| n == 1)
    );
    assert_eq!(server.report_count(Some("C001")).unwrap(), 3_000);
    let local = Database::open(&db_path).unwrap();
    assert_eq!(local.read(outbox::counts).unwrap().delivered, 3_000);
}
