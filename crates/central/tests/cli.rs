//! The binary as an operator runs it: demo, token issue/revoke, serve on port 0,
//! and what its logs do and do not contain.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_clinic-central");
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn issue(db: &Path) -> (String, String) {
    let (ok, out) = run(&[
        "token",
        "issue",
        "--db",
        db.to_str().unwrap(),
        "--clinic",
        "C001",
        "--label",
        "t",
    ]);
    assert!(ok, "{out}");
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .expect(name)
    };
    (field("token id:"), field("token:"))
}

struct Serving {
    child: Child,
    lines: mpsc::Receiver<String>,
    addr: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(db: &Path) -> Serving {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            db.to_str().unwrap(),
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("serve prints its address");
        if let Some(a) = line.strip_prefix("listening on ") {
            break a.trim().to_owned();
        }
    };
    Serving { child, lines, addr }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_workflow_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("central.db");
    let (ok, out) = run(&[
        "demo",
        "--db",
        db.to_str().unwrap(),
        "--clinic",
        "C001",
        "--clinic",
        "C002",
        "--seed",
        "3",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("C002: 2000 patients"), "{out}");
    let (token_id, token) = issue(&db);
    assert!(token.starts_with("cct_") && token.len() == 4 + 64);

    let server = serve(&db);
    let client = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let patient: Value = client
        .get(format!("{base}/api/v1/patients/P0000001"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let name = patient["name"].as_str().unwrap().to_owned();
    let resp = client
        .post(format!("{base}/v1/reports"))
        .bearer_auth(&token)
        .json(&json!({"reportId": uuid::Uuid::now_v7(), "patientId": "P0000001", "painScore": 9, "submitTime": 1764300000, "reason": "SECRET-NOTE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let (ok, out) = run(&["token", "revoke", "--db", db.to_str().unwrap(), &token_id]);
    assert!(ok, "{out}");
    let resp = client
        .get(format!("{base}/v1/feeds/staff"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        401,
        "revocation from another process applies at once"
    );
    let (ok, _) = run(&["token", "revoke", "--db", db.to_str().unwrap(), &token_id]);
    assert!(!ok, "revoking twice fails");

    // Give the log writer a moment, then read what was logged so far.
    std::thread::sleep(Duration::from_millis(300));
    let logged: Vec<String> = server.lines.try_iter().collect();
    let traced: Vec<Value> = logged
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["span"]["trace_id"] == TRACE)
        .collect();
    assert!(
        !traced.is_empty(),
        "the request's log line carries the traceparent's trace ID: {logged:?}"
    );
    assert_eq!(traced[0]["span"]["route"], "/api/v1/patients/{id}");
    let all = logged.join("\n");
    for secret in [name.as_str(), token.as_str(), "SECRET-NOTE", "painScore"] {
        assert!(!all.contains(secret), "logs must not contain {secret:?}");
    }
}

#[test]
fn revoking_an_unknown_token_fails_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("central.db");
    let out = Command::new(BIN)
        .args(["token", "revoke", "--db", db.to_str().unwrap(), "tok_nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tok_nope"));
}

#[test]
fn tokens_are_listed_with_their_scope_and_enrolment_codes_print_once_with_a_qr() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("central.db");
    let db = db.to_str().unwrap();
    let (ok, out) = run(&["demo", "--db", db, "--clinic", "C001", "--seed", "3"]);
    assert!(ok, "{out}");
    let (device_id, _) = issue(Path::new(db));
    let (ok, out) = run(&[
        "token", "issue", "--db", db, "--clinic", "C001", "--label", "HIS", "--scope", "admin",
    ]);
    assert!(ok && out.contains("scope:    admin"), "{out}");
    let (ok, listed) = run(&["token", "list", "--db", db, "--clinic", "C001"]);
    assert!(ok, "{listed}");
    let line = |needle: &str| {
        listed
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} in {listed}"))
            .to_owned()
    };
    let device = line(&device_id);
    assert!(
        device.contains("device") && device.contains("never"),
        "{device}"
    );
    assert!(line("HIS").contains("admin"));
    assert!(!listed.contains("cct_"), "no secret in a listing");
    let (ok, _) = run(&["token", "revoke", "--db", db, &device_id]);
    assert!(ok);
    let (_, listed) = run(&["token", "list", "--db", db, "--clinic", "C001"]);
    assert!(
        !listed
            .lines()
            .find(|l| l.contains(&device_id))
            .unwrap()
            .trim_end()
            .ends_with('-'),
        "the revoked token shows when: {listed}"
    );

    let (ok, out) = run(&[
        "enrol-code",
        "--db",
        db,
        "--clinic",
        "C001",
        "--ttl",
        "10m",
        "--label",
        "ward 3",
        "--qr",
    ]);
    assert!(ok, "{out}");
    let code = out
        .lines()
        .find_map(|l| l.strip_prefix("code:"))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(code.len(), 19, "{code}");
    assert!(out.contains('█') || out.contains('▀'), "a QR drawn: {out}");
    for bad in [["--ttl", "2d"], ["--ttl", "25h"], ["--clinic", "NOPE"]] {
        let mut args = vec!["enrol-code", "--db", db];
        if bad[0] != "--clinic" {
            args.extend(["--clinic", "C001"]);
        }
        args.extend(bad);
        let (ok, out) = run(&args);
        assert!(!ok, "{bad:?} refused: {out}");
    }
}
