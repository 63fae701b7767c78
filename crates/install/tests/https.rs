//! Provisioning (enrolment and the connection check) over HTTPS with a clinic's
//! own CA, named in the profile as `server.ca_file`, against a real
//! `clinic-central` serving a certificate for 127.0.0.1 and `localhost`; and the
//! rule that plain `http://` goes to this machine only, unless the profile says
//! `allow_insecure_http = true`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clinic_central::auth;
use clinic_central::test_pki::TestCa;
use clinic_central::tls::Tls;
use clinic_central::{Limits, TestServer, spawn_for_tests, spawn_tls_for_tests};
use clinic_install::check::Failure;
use clinic_install::profile::{ClinicSection, ServerSection};
use clinic_install::{Profile, ProvisionError, StoreAt, check_connection, provision};
use rstest::rstest;

const TIMEOUT: Duration = Duration::from_secs(3);

struct Https {
    server: TestServer,
    ca_file: PathBuf,
    dir: tempfile::TempDir,
}

fn https() -> Https {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Clinic CA");
    let files = ca
        .server_cert(&["localhost", "127.0.0.1"])
        .write(dir.path(), "server");
    let server = spawn_tls_for_tests(
        &dir.path().join("central.db"),
        Limits::default(),
        Tls::load(&files.cert, &files.key).unwrap(),
    )
    .unwrap();
    server.load_demo("C001", 1).unwrap();
    Https {
        ca_file: ca.write(&dir.path().join("clinic-ca.pem")),
        server,
        dir,
    }
}

/// The package's profile: server, clinic and (when given) the clinic's CA.
fn installed(url: &str, ca_file: Option<&Path>) -> Profile {
    Profile {
        clinic: ClinicSection {
            id: Some("C001".into()),
            ..Default::default()
        },
        server: ServerSection {
            url: Some(url.into()),
            ca_file: ca_file.map(|p| p.display().to_string()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn enrolment(server: &TestServer) -> Profile {
    let code = auth::issue_enrolment_code(
        server.store.as_ref(),
        "C001",
        Duration::from_secs(600),
        None,
    )
    .unwrap()
    .code;
    Profile {
        server: ServerSection {
            enrolment_code: Some(code),
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn provision_in(
    dir: &Path,
    pasted: Profile,
    installed: Profile,
) -> Result<clinic_install::provision::Provisioned, ProvisionError> {
    provision(
        pasted,
        Some(installed),
        &dir.join("config"),
        StoreAt::Path(&dir.join("data/desk.sqlite3")),
        TIMEOUT,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_enrols_and_checks_its_connection_over_https_trusting_the_profiles_ca() {
    let h = https();
    let url = h.server.base_url();
    assert!(url.starts_with("https://"), "{url}");
    let device = tempfile::tempdir().unwrap();
    let done = provision_in(
        device.path(),
        enrolment(&h.server),
        installed(&url, Some(&h.ca_file)),
    )
    .await
    .unwrap();
    let saved = Profile::from_file(&done.profile_path).unwrap().unwrap();
    assert_eq!(
        saved.server.ca_file.as_deref(),
        Some(h.ca_file.display().to_string().as_str()),
        "the saved profile keeps trusting the clinic's CA"
    );
    let token = saved.server.token.clone().expect("a device token");
    check_connection(&url, &token, &saved.transport(), TIMEOUT)
        .await
        .unwrap();
    // By name as well as by address: the certificate carries both.
    let by_name = url.replace("127.0.0.1", "localhost");
    check_connection(&by_name, &token, &saved.transport(), TIMEOUT)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_clinics_ca_the_certificate_is_not_trusted_and_nothing_is_saved() {
    let h = https();
    let device = tempfile::tempdir().unwrap();
    let err = provision_in(
        device.path(),
        enrolment(&h.server),
        installed(&h.server.base_url(), None),
    )
    .await
    .unwrap_err();
    let ProvisionError::Connection(e) = &err else {
        panic!("expected a connection failure, got {err}");
    };
    assert_eq!(e.failure, Failure::Tls, "{e}");
    assert!(!device.path().join("config/profile.toml").exists());
    // A CA file that is not one names itself.
    let bogus = h.dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let err = provision_in(
        device.path(),
        enrolment(&h.server),
        installed(&h.server.base_url(), Some(&bogus)),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("bogus.pem"), "{err}");
}

/// What provisioning with a URL comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Refused as plain HTTP to another machine, before any connection.
    RefusedAsInsecure,
    /// Enrolled and checked against the test server.
    Provisioned,
    /// The URL was allowed; the network then failed (nothing there, no DNS here).
    AllowedThenUnreachable,
}

/// Plain HTTP only to this machine. A refused URL fails as `insecure_http` before
/// any connection; an allowed one gets as far as the server, or as the network goes.
#[rstest]
#[case::private_address("http://10.0.0.5", false, Outcome::RefusedAsInsecure)]
#[case::a_name("http://clinic.example", false, Outcome::RefusedAsInsecure)]
#[case::loopback_address("http://127.0.0.1:{port}", false, Outcome::Provisioned)]
#[case::localhost("http://localhost:{port}", false, Outcome::Provisioned)]
// The test server listens on 127.0.0.1 only: [::1] is allowed, then finds nobody.
#[case::loopback_v6("http://[::1]:{port}", false, Outcome::AllowedThenUnreachable)]
#[case::https_anything("https://anything.invalid", false, Outcome::AllowedThenUnreachable)]
#[case::insecure_allowed("http://x.invalid", true, Outcome::AllowedThenUnreachable)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_for_this_machine_only_unless_the_profile_allows_it(
    #[case] url: &str,
    #[case] allow_insecure_http: bool,
    #[case] want: Outcome,
) {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_for_tests(&dir.path().join("central.db"), false).unwrap();
    server.load_demo("C001", 1).unwrap();
    let url = url.replace("{port}", &server.addr.port().to_string());
    let mut package = installed(&url, None);
    package.server.allow_insecure_http = Some(allow_insecure_http);
    let device = tempfile::tempdir().unwrap();
    let result = provision_in(device.path(), enrolment(&server), package).await;
    let got = match &result {
        Ok(done) => {
            assert_eq!(done.clinic_id, "C001");
            Outcome::Provisioned
        }
        Err(ProvisionError::Connection(e)) if e.failure == Failure::InsecureHttp => {
            let message = e.to_string();
            assert!(
                message.contains("plain http://") && message.contains("https://"),
                "a clear message: {message}"
            );
            Outcome::RefusedAsInsecure
        }
        Err(ProvisionError::Connection(_)) => Outcome::AllowedThenUnreachable,
        Err(other) => panic!("{url}: {other}"),
    };
    assert_eq!(got, want, "{url}: {:?}", result.err());
    if want != Outcome::Provisioned {
        assert!(!device.path().join("config/profile.toml").exists());
    }
}
