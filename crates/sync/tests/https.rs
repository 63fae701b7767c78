//! The engine over HTTPS: a real `clinic-central` serving TLS on 127.0.0.1 with a
//! certificate from a CA made in the test. Trusting that CA (the profile's
//! `server.ca_file`), a sync pushes and pulls as over plain HTTP; without it the
//! handshake fails and nothing is delivered. A plain `http://` server on another
//! machine is refused before anything is sent.

mod support;

use std::time::Duration;

use clinic_central::test_pki::TestCa;
use clinic_central::tls::Tls;
use clinic_central::{Limits, spawn_tls_for_tests};
use clinic_protocol::transport::Transport;
use clinic_store::outbox;
use clinic_sync::{SyncConfig, SyncEngine, SyncError};
use support::*;

struct Https {
    _dir: tempfile::TempDir,
    server: clinic_central::TestServer,
    ca_file: std::path::PathBuf,
    token: String,
}

fn https_server(dir: tempfile::TempDir) -> Https {
    let ca = TestCa::new("Clinic Test CA");
    let files = ca
        .server_cert(&["localhost", "127.0.0.1"])
        .write(dir.path(), "server");
    let tls = Tls::load(&files.cert, &files.key).unwrap();
    let server =
        spawn_tls_for_tests(&dir.path().join("central.db"), Limits::default(), tls).unwrap();
    server.load_demo("C001", 3).unwrap();
    let token = server.issue_token("C001").unwrap();
    Https {
        ca_file: ca.write(&dir.path().join("ca.pem")),
        _dir: dir,
        server,
        token,
    }
}

fn config(url: String, token: &str, ca_file: Option<std::path::PathBuf>) -> SyncConfig {
    let mut c = SyncConfig::new(url, Some(token.to_owned()));
    c.transport = Transport {
        allow_insecure_http: false,
        ca_file,
    };
    c.connect_timeout = Duration::from_secs(5);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_syncs_over_https_with_the_clinics_own_ca() {
    let https = https_server(tempfile::tempdir().unwrap());
    let url = https.server.base_url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let local = tempfile::tempdir().unwrap();
    let db = local_store(local.path());
    let ids = record(&db, 3);

    let engine = SyncEngine::new(
        db.clone(),
        config(url, &https.token, Some(https.ca_file.clone())),
    )
    .unwrap();
    let run = engine.sync_once().await.unwrap();
    assert_eq!(run.delivered, 3, "{run:?}");
    assert!(run.pulled >= 2_000, "the demo clinic's patients: {run:?}");
    assert_eq!(
        https.server.report_count(Some("C001")).unwrap(),
        3,
        "stored on the server"
    );
    let delivered = db
        .read(|c| outbox::in_state(c, outbox::OutboxState::Delivered))
        .unwrap();
    assert_eq!(delivered.len(), ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_ca_the_handshake_fails_and_nothing_is_delivered() {
    let https = https_server(tempfile::tempdir().unwrap());
    let local = tempfile::tempdir().unwrap();
    let db = local_store(local.path());
    record(&db, 1);
    let engine = SyncEngine::new(
        db.clone(),
        config(https.server.base_url(), &https.token, None),
    )
    .unwrap();
    let err = engine.sync_once().await.unwrap_err();
    assert!(err.is_offline(), "a failed handshake: {err}");
    assert_eq!(https.server.report_count(Some("C001")).unwrap(), 0);
}

#[test]
fn plain_http_to_another_machine_is_refused_before_anything_is_sent() {
    let local = tempfile::tempdir().unwrap();
    let db = local_store(local.path());
    let refused = SyncEngine::new(
        db.clone(),
        config("http://10.0.0.5:8080".into(), "cct_x", None),
    );
    match refused {
        Err(SyncError::Transport(e)) => {
            let message = e.to_string();
            assert!(
                message.contains("plain http://") && message.contains("allow_insecure_http"),
                "{message}"
            );
        }
        Err(other) => panic!("expected the transport refusal, got {other}"),
        Ok(_) => panic!("http://10.0.0.5 must be refused"),
    }
    let mut allowed = config("http://10.0.0.5:8080".into(), "cct_x", None);
    allowed.transport.allow_insecure_http = true;
    assert!(SyncEngine::new(db, allowed).is_ok());
}
