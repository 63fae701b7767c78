//! HTTPS served by clinic-central itself, with certificates from a CA made in each
//! test: the reload hook and SIGHUP to the real process switch new handshakes to
//! the new certificate (a bad one keeps the old); compat mode keeps to loopback
//! unless told otherwise. The handshake's timeouts are in `abuse.rs`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use clinic_central::test_pki::{CertFiles, TestCa};
use clinic_central::tls::Tls;
use clinic_central::{Limits, Mode, check_compat_listen, spawn_tls_for_tests};
use rstest::rstest;

const BIN: &str = env!("CARGO_BIN_EXE_clinic-central");

/// A client that trusts only `ca` and opens a new connection (a new handshake)
/// for every request.
fn trusting(ca: &TestCa) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem.as_bytes()).unwrap())
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// `Ok(status)` when the handshake succeeded, `Err` with the chain of causes when not.
async fn healthz(client: &reqwest::Client, base: &str) -> Result<u16, String> {
    match client.get(format!("{base}/healthz")).send().await {
        Ok(resp) => Ok(resp.status().as_u16()),
        Err(e) => {
            let mut chain = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                chain.push_str(&format!(": {s}"));
                source = s.source();
            }
            Err(chain)
        }
    }
}

fn cert_for_localhost(ca: &TestCa, dir: &Path) -> CertFiles {
    ca.server_cert(&["localhost", "127.0.0.1"])
        .write(dir, "server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_switches_new_handshakes_to_the_new_certificate_and_a_bad_one_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_a, ca_b) = (TestCa::new("CA A"), TestCa::new("CA B"));
    let files = cert_for_localhost(&ca_a, dir.path());
    let tls = Tls::load(&files.cert, &files.key).unwrap();
    let server = spawn_tls_for_tests(
        &dir.path().join("central.db"),
        Limits::default(),
        tls.clone(),
    )
    .unwrap();
    let base = server.base_url();
    assert!(base.starts_with("https://"));
    let (a, b) = (trusting(&ca_a), trusting(&ca_b));
    assert_eq!(healthz(&a, &base).await, Ok(200));
    let refused = healthz(&b, &base).await.unwrap_err();
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");

    // The renewed certificate is put in place, then the hook runs (SIGHUP in the binary).
    cert_for_localhost(&ca_b, dir.path());
    tls.reload().unwrap();
    assert_eq!(healthz(&b, &base).await, Ok(200), "new handshakes see B");
    assert!(healthz(&a, &base).await.is_err(), "and no longer A");

    // A broken file, and a key that is not the certificate's: refused, B stays.
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
    let err = tls.reload().unwrap_err().to_string();
    assert!(err.contains("server.crt"), "{err}");
    let other = ca_b.server_cert(&["localhost", "127.0.0.1"]);
    std::fs::write(&files.cert, &other.cert_pem).unwrap();
    std::fs::write(&files.key, ca_a.server_cert(&["localhost"]).key_pem).unwrap();
    let err = tls.reload().unwrap_err().to_string();
    assert!(err.contains("cannot be used together"), "{err}");
    std::fs::remove_file(&files.key).unwrap();
    let err = tls.reload().unwrap_err().to_string();
    assert!(err.contains("server.key"), "{err}");
    assert_eq!(healthz(&b, &base).await, Ok(200), "still serving B");
}

struct Serving {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serving {
    fn start(args: &[&str]) -> Serving {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let (tx, lines) = mpsc::channel();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Serving { child, lines }
    }

    /// The first line containing `needle`, within 20 s; every line seen on the way if none.
    fn wait_for(&self, needle: &str) -> Result<String, Vec<String>> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok(line),
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        Err(seen)
    }

    fn sighup(&self) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's PID with a valid signal number.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_to_the_real_process_reloads_the_certificate_and_a_bad_one_is_logged_and_kept_out() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_a, ca_b) = (TestCa::new("CA A"), TestCa::new("CA B"));
    let files = cert_for_localhost(&ca_a, dir.path());
    let db = dir.path().join("central.db");
    let serving = Serving::start(&[
        "--listen",
        "127.0.0.1:0",
        "--db",
        db.to_str().unwrap(),
        "--tls-cert",
        files.cert.to_str().unwrap(),
        "--tls-key",
        files.key.to_str().unwrap(),
    ]);
    let addr = serving
        .wait_for("listening on ")
        .expect("serve prints its address")
        .trim_start_matches("listening on ")
        .trim()
        .to_owned();
    let base = format!("https://{addr}");
    let (a, b) = (trusting(&ca_a), trusting(&ca_b));
    assert_eq!(healthz(&a, &base).await, Ok(200));
    assert!(healthz(&b, &base).await.is_err());
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await;
    assert!(plain.is_err(), "the TLS port does not answer plain HTTP");

    cert_for_localhost(&ca_b, dir.path());
    serving.sighup();
    serving
        .wait_for("TLS certificate reloaded")
        .unwrap_or_else(|seen| panic!("no reload logged: {seen:?}"));
    assert_eq!(healthz(&b, &base).await, Ok(200), "new handshakes see B");
    assert!(healthz(&a, &base).await.is_err());

    std::fs::write(&files.cert, "not a certificate").unwrap();
    serving.sighup();
    let line = serving
        .wait_for("still serving the previous one")
        .unwrap_or_else(|seen| panic!("no refusal logged: {seen:?}"));
    assert!(
        line.contains("server.crt"),
        "the log says which file: {line}"
    );
    assert_eq!(healthz(&b, &base).await, Ok(200), "still B");
}

#[test]
fn serve_refuses_a_certificate_it_cannot_use_and_a_cert_without_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("central.db");
    let cert = dir.path().join("missing.crt");
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing.crt"), "{stderr}");
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .arg("--tls-cert")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}

#[rstest]
#[case::compat_anywhere_v4("0.0.0.0:8080", true, false, false)]
#[case::compat_anywhere_v6("[::]:8080", true, false, false)]
#[case::compat_lan_address("192.168.1.20:8080", true, false, false)]
#[case::compat_anywhere_with_the_flag("0.0.0.0:8080", true, true, true)]
#[case::compat_loopback_v4("127.0.0.1:8080", true, false, true)]
#[case::compat_loopback_v6("[::1]:8080", true, false, true)]
#[case::full_mode_anywhere("0.0.0.0:8080", false, false, true)]
fn compat_mode_listens_on_loopback_unless_told(
    #[case] listen: &str,
    #[case] compat: bool,
    #[case] anywhere: bool,
    #[case] allowed: bool,
) {
    let mode = if compat {
        Mode::Compat {
            clinic_id: "C001".into(),
        }
    } else {
        Mode::Full
    };
    let checked = check_compat_listen(&mode, listen.parse().unwrap(), anywhere);
    assert_eq!(checked.is_ok(), allowed, "{checked:?}");
}

#[test]
fn compat_serve_on_every_address_is_refused_without_the_flag_and_runs_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("central.db");
    let out = Command::new(BIN)
        .args(["serve", "--compat", "--listen", "0.0.0.0:0", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(!out.status.success(), "refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("compat mode") && stderr.contains("--compat-listen-anywhere"),
        "{stderr}"
    );
    let serving = Serving::start(&[
        "--compat",
        "--compat-listen-anywhere",
        "--listen",
        "0.0.0.0:0",
        "--db",
        db.to_str().unwrap(),
    ]);
    let line = serving
        .wait_for("listening on ")
        .unwrap_or_else(|seen| panic!("it serves with the flag: {seen:?}"));
    assert!(line.contains("0.0.0.0:"), "{line}");
}
