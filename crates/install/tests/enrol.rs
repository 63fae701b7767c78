//! Enrolment against a real `clinic-central`: a provisioning code carrying a
//! one-time enrolment code gets this device its own device token, saved 0600 in
//! place of the code; a spent code is refused and saves nothing; and a code that
//! names another server never takes the installed credential there (a recording
//! server at the new URL keeps every byte it receives).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clinic_central::auth::{self, Scope};
use clinic_install::check::Failure;
use clinic_install::profile::{ClinicSection, ServerSection};
use clinic_install::{InstallError, Profile, ProvisionError, StoreAt, provision};
use rstest::rstest;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const TIMEOUT: Duration = Duration::from_secs(3);

struct Fixture {
    _server_dir: tempfile::TempDir,
    server: clinic_central::TestServer,
    dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let server_dir = tempfile::tempdir().unwrap();
    let server =
        clinic_central::spawn_for_tests(&server_dir.path().join("central.db"), false).unwrap();
    server.load_demo("C001", 1).unwrap();
    server.load_demo("C002", 1).unwrap();
    Fixture {
        _server_dir: server_dir,
        server,
        dir: tempfile::tempdir().unwrap(),
    }
}

/// The package's profile: the server and the clinic, no credential.
fn installed(url: &str) -> Profile {
    Profile {
        clinic: ClinicSection {
            id: Some("C001".into()),
            name: Some("和平诊所".into()),
            ..Default::default()
        },
        server: ServerSection {
            url: Some(url.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// What an installer pastes: only the enrolment code (and a server URL, if given).
fn code_profile(url: Option<&str>, code: &str) -> Profile {
    Profile {
        server: ServerSection {
            url: url.map(str::to_owned),
            token: None,
            enrolment_code: Some(code.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn run(
    f: &Fixture,
    p: Profile,
    installed: Profile,
) -> Result<clinic_install::provision::Provisioned, ProvisionError> {
    provision(
        p,
        Some(installed),
        &f.dir.path().join("config"),
        StoreAt::Path(&f.dir.path().join("data/desk.sqlite3")),
        TIMEOUT,
    )
    .await
}

fn code(f: &Fixture, clinic: &str) -> String {
    auth::issue_enrolment_code(
        f.server.store.as_ref(),
        clinic,
        Duration::from_secs(600),
        None,
    )
    .unwrap()
    .code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolment_code_becomes_this_devices_own_token_saved_owner_only() {
    let f = fixture();
    let url = f.server.base_url();
    let code = code(&f, "C001");
    let done = run(&f, code_profile(None, &code), installed(&url))
        .await
        .unwrap();
    assert_eq!(done.clinic_id, "C001");
    let text = std::fs::read_to_string(&done.profile_path).unwrap();
    assert!(!text.contains(&code), "the code is not kept");
    let saved = Profile::from_toml(&text).unwrap();
    assert_eq!(saved.server.url.as_deref(), Some(url.as_str()));
    assert_eq!(saved.clinic.id.as_deref(), Some("C001"));
    let token = saved.server.token.expect("a token saved");
    let held = f
        .server
        .store
        .token_for_hash(&auth::token_hash(&token))
        .unwrap()
        .expect("the server knows the token");
    assert_eq!(
        (held.clinic_id.as_str(), held.scope),
        ("C001", Scope::Device)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&done.profile_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The code is spent: a second device with it is refused, and nothing is saved.
    let f2 = Fixture {
        dir: tempfile::tempdir().unwrap(),
        ..f
    };
    let Err(ProvisionError::Connection(e)) =
        run(&f2, code_profile(None, &code), installed(&url)).await
    else {
        panic!("a used code is refused");
    };
    assert_eq!(e.failure, Failure::EnrolmentRefused);
    assert!(e.detail.contains("already used"), "{e}");
    assert!(!f2.dir.path().join("config/profile.toml").exists());
    assert!(!f2.dir.path().join("data/desk.sqlite3").exists());
}

/// The enrolment succeeds but the device cannot keep its set-up (here its config
/// directory cannot be made: a file stands where it should be). The token the
/// server issued is given back, so the clinic's token list holds no live token
/// that no device holds, and nothing is saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_cannot_keep_its_set_up_gives_its_new_token_back() {
    let f = fixture();
    let url = f.server.base_url();
    let code = code(&f, "C001");
    std::fs::write(f.dir.path().join("not-a-dir"), b"").unwrap();
    let config = f.dir.path().join("not-a-dir/config");
    let result = provision(
        code_profile(None, &code),
        Some(installed(&url)),
        &config,
        StoreAt::Path(&f.dir.path().join("data/desk.sqlite3")),
        TIMEOUT,
    )
    .await;
    assert!(result.is_err(), "the set-up cannot be saved: {result:?}");
    let tokens = f.server.store.tokens("C001").unwrap();
    assert_eq!(
        tokens.len(),
        1,
        "the enrolment issued one token: {tokens:?}"
    );
    assert!(
        tokens[0].revoked_at.is_some(),
        "and it was given back: {tokens:?}"
    );
    assert!(!config.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clinics_code_is_refused_and_stays_unspent() {
    let f = fixture();
    let url = f.server.base_url();
    let other = code(&f, "C002");
    let Err(ProvisionError::Connection(e)) =
        run(&f, code_profile(None, &other), installed(&url)).await
    else {
        panic!("a code of another clinic is refused");
    };
    assert_eq!(e.failure, Failure::EnrolmentRefused);
    assert!(e.detail.contains("another clinic"), "{e}");
    assert!(!f.dir.path().join("config/profile.toml").exists());
    assert!(f.server.store.tokens("C001").unwrap().is_empty());
}

/// A plain-TCP server that keeps every byte it is sent; it answers `/healthz` as a
/// clinic-central would and everything else 404, closing.
struct Recorder {
    url: String,
    received: Arc<Mutex<Vec<u8>>>,
}

async fn recorder() -> Recorder {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let keep = received.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let keep = keep.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut got = Vec::new();
                // Read until the head is complete and what it announces has arrived.
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                    if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if got.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                // It passes for a clinic-central's health check, so a client that
                // holds a credential would go on to send it.
                let answer: &[u8] = if got.starts_with(b"GET /healthz ") {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                } else {
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                };
                keep.lock().unwrap().extend_from_slice(&got);
                let _ = conn.write_all(answer).await;
            });
        }
    });
    Recorder { url, received }
}

/// The installed profile holds an old clinic token for the real server; the
/// pasted code names another URL. Whatever the code carries, the old token never
/// reaches the new URL: without a credential of its own the code is refused before
/// any connection, and with an enrolment code only the code is sent there.
#[rstest]
#[case::only_a_new_url(false)]
#[case::a_new_url_and_an_enrolment_code(true)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_naming_another_server_never_takes_the_installed_token_there(
    #[case] with_code: bool,
) {
    let f = fixture();
    let old_token = f.server.issue_token("C001").unwrap();
    let mut package = installed(&f.server.base_url());
    package.server.token = Some(old_token.clone());
    let rec = recorder().await;
    let pasted = if with_code {
        code_profile(Some(&rec.url), "7Q2M-9KXR-4TBW-H8ND")
    } else {
        Profile {
            server: ServerSection {
                url: Some(rec.url.clone()),
                ..Default::default()
            },
            ..Default::default()
        }
    };
    let result = run(&f, pasted, package).await;
    let received = String::from_utf8_lossy(&rec.received.lock().unwrap()).into_owned();
    if with_code {
        let Err(ProvisionError::Connection(e)) = result else {
            panic!("the recorder is no clinic-central: {result:?}");
        };
        assert_eq!(e.failure, Failure::NotClinicCentral);
        assert!(received.contains("POST /v1/enrol"), "{received}");
        assert!(received.contains("7Q2M-9KXR-4TBW-H8ND"));
    } else {
        let Err(ProvisionError::Invalid(InstallError::InvalidProfile(why))) = result else {
            panic!("a new URL without a credential is refused: {result:?}");
        };
        assert!(why.contains("server.token"), "{why}");
        assert!(received.is_empty(), "nothing was sent: {received}");
    }
    assert!(!received.contains(&old_token), "{received}");
    assert!(
        !received.to_lowercase().contains("authorization"),
        "no credential header at all: {received}"
    );
    assert!(!f.dir.path().join("config/profile.toml").exists());
}
