//! The installer's side of the built app: the `provision`, `enrolment-code` and
//! `check` subcommands against a real `clinic-central`, one instance per data
//! directory, and first-run enrolment and diagnostics through the real webview.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::Result;
use support::{APP, Driver, Reaped, wait_until, xvfb};

struct Central {
    _dir: tempfile::TempDir,
    server: clinic_central::TestServer,
    token: String,
}

fn central() -> Result<Central> {
    let dir = tempfile::tempdir()?;
    let server = clinic_central::spawn_for_tests(&dir.path().join("central.sqlite3"), false)?;
    server.load_demo("C001", 1)?;
    let token = server.issue_token("C001")?;
    Ok(Central {
        _dir: dir,
        server,
        token,
    })
}

fn profile_toml(url: &str, token: &str) -> String {
    format!(
        "[clinic]\nid = \"C001\"\nname = \"和平诊所\"\ntime_zone = \"Asia/Shanghai\"\nlanguage = \"zh-CN\"\n\n[server]\nurl = \"{url}\"\ntoken = \"{token}\"\n\n[sync]\ninterval_seconds = 30\n"
    )
}

/// The app binary with this test's directories and no profile from the machine.
fn app(home: &Path) -> Command {
    let mut c = Command::new(APP);
    c.env("CLINIC_DESK_CONFIG_DIR", home.join("config"))
        .env("CLINIC_DESK_DATA_DIR", home.join("data"))
        .env(
            "CLINIC_DESK_INSTALLED_PROFILE",
            home.join("no-installed-profile.toml"),
        )
        .env_remove("CLINIC_DESK_SERVER_URL")
        .env_remove("CLINIC_DESK_TOKEN")
        .stdin(Stdio::null());
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_provision_subcommand_saves_a_good_profile_and_explains_each_refusal() -> Result<()> {
    let c = central()?;
    let home = tempfile::tempdir()?;
    let url = c.server.base_url();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let cases = [
        (
            format!("{url}/elsewhere"),
            c.token.clone(),
            "not a Clinic Desk central server",
        ),
        (
            url.clone(),
            "cct_wrong".to_owned(),
            "refused this device's credential",
        ),
        (
            format!("http://127.0.0.1:{closed}"),
            c.token.clone(),
            "refused the connection",
        ),
    ];
    for (bad_url, token, says) in cases {
        let file = home.path().join("bad.toml");
        std::fs::write(&file, profile_toml(&bad_url, &token))?;
        let out = app(home.path())
            .args(["provision", file.to_str().unwrap()])
            .output()?;
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(
            said.contains(says) && said.contains("nothing was saved"),
            "{bad_url}: {said}"
        );
        assert!(!said.contains(&c.token), "no token in the message");
        assert!(
            !home.path().join("config/profile.toml").exists()
                && !home.path().join("data/clinic-desk.sqlite3").exists()
        );
    }

    // The good profile, given as the enrolment code the installer would paste.
    let file = home.path().join("good.toml");
    std::fs::write(&file, profile_toml(&url, &c.token))?;
    let out = app(home.path())
        .args(["enrolment-code", file.to_str().unwrap()])
        .output()?;
    assert!(out.status.success(), "{}", text(&out));
    let code = String::from_utf8(out.stdout)?.trim().to_owned();
    assert!(code.starts_with("CDP1-"));
    let out = app(home.path()).args(["provision", &code]).output()?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("provisioned for clinic C001"));
    let saved = home.path().join("config/profile.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&saved)?.permissions().mode() & 0o777,
            0o600
        );
    }

    // Enrolled now: enrolling again takes a member of the clinic and her PIN.
    let again = |staff: Option<&str>, pin: &str| -> Result<Output> {
        let mut cmd = app(home.path());
        cmd.args(["provision", &code]);
        if let Some(s) = staff {
            cmd.args(["--staff", s]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        use std::io::Write as _;
        writeln!(child.stdin.take().unwrap(), "{pin}")?;
        Ok(child.wait_with_output()?)
    };
    let before = std::fs::read(&saved)?;
    let out = again(None, "")?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--staff"), "{}", text(&out));
    let out = again(Some("N001"), "583920")?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no active staff member"),
        "nobody is on this device's staff list yet: {}",
        text(&out)
    );
    // The clinic's staff list reaches a device by sync; here it is put in directly.
    {
        let (db, _) = clinic_install::store_key::open_store(
            Some(&home.path().join("config")),
            &home.path().join("data/clinic-desk.sqlite3"),
        )?;
        let verifier =
            clinic_domain::pin::verifier("583920", clinic_domain::pin::PinPolicy::Clinic)?;
        let member = clinic_store::pull::PulledItem::upsert(
            1,
            "N001",
            clinic_store::pull::PulledStaff {
                id: "N001".into(),
                name: "李静".into(),
                role: clinic_domain::StaffRole::Nurse,
                department: "外科".into(),
                active: true,
                pin_verifier: verifier,
            },
        );
        db.write(|c| clinic_store::pull::apply_staff(c, &[member], 1))?;
    }
    let out = again(Some("N001"), "135799")?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        std::fs::read(&saved)?,
        before,
        "a wrong PIN changes nothing"
    );
    let out = again(Some("N001"), "583920")?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("re-enrolled by N001"), "{}", text(&out));

    // `check` tests what the app would use: the provisioned profile, unless the environment overrides it.
    let out = app(home.path()).arg("check").output()?;
    assert!(
        out.status.success() && text(&out).contains("(from Provisioned)"),
        "{}",
        text(&out)
    );
    let out = app(home.path())
        .arg("check")
        .env("CLINIC_DESK_TOKEN", "cct_overridden")
        .output()?;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("refused this device's credential"),
        "{}",
        text(&out)
    );
    Ok(())
}

/// Runs `cmd` to its end, or kills it and fails after `limit` (a second instance
/// that wrongly opens a window would otherwise hang the test).
fn output_within(cmd: &mut Command, limit: Duration) -> Result<Output> {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let id = child.id();
    let started = Instant::now();
    let waiter = std::thread::spawn(move || child.wait_with_output());
    while !waiter.is_finished() {
        if started.elapsed() > limit {
            let _ = Command::new("kill").arg(id.to_string()).status();
            anyhow::bail!(
                "still running after {limit:?}: a second instance opened instead of deferring to the first"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(waiter.join().expect("waiter thread")?)
}

fn log_says(data: &Path, what: &str) -> bool {
    std::fs::read_to_string(data.join("logs/clinic-desk.jsonl")).is_ok_and(|t| t.contains(what))
}

#[test]
fn a_second_launch_on_the_same_data_directory_focuses_the_first_and_exits() -> Result<()> {
    let (_x, display) = xvfb()?;
    let home = tempfile::tempdir()?;
    let data = home.path().join("data");
    let mut first = Reaped(
        app(home.path())
            .env("DISPLAY", &display)
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_until(Duration::from_secs(60), || {
        Ok(log_says(&data, "local store open"))
    })?;
    assert!(
        log_says(&data, "not provisioned"),
        "an app without a profile says so"
    );

    let second = output_within(
        app(home.path()).env("DISPLAY", &display),
        Duration::from_secs(20),
    )?;
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains("already running")
            && text(&second).contains("brought its window forward"),
        "{}",
        text(&second)
    );
    assert!(
        first.0.try_wait()?.is_none(),
        "the first instance keeps running"
    );
    wait_until(Duration::from_secs(5), || {
        Ok(log_says(
            &data,
            "second launch: bringing the window forward",
        ))
    })?;
    let opened = std::fs::read_to_string(data.join("logs/clinic-desk.jsonl"))?
        .matches("local store open")
        .count();
    assert_eq!(opened, 1, "the database was opened once");
    Ok(())
}

#[test]
fn an_unprovisioned_app_says_so_and_is_enrolled_from_the_diagnostics_screen() -> Result<()> {
    let c = central()?;
    let home = tempfile::tempdir()?;
    let (data, config) = (home.path().join("data"), home.path().join("config"));
    let driver = Driver::start()?;
    let s = driver.launch(&[
        "--data-dir",
        data.to_str().unwrap(),
        "--config-dir",
        config.to_str().unwrap(),
    ])?;

    let badge = s.find("[data-testid=unprovisioned]")?;
    wait_until(Duration::from_secs(10), || {
        Ok(s.attr(&badge, "data-shown")?.as_deref() == Some("true"))
    })?;
    s.click(&badge)?;
    s.find("[data-testid=not-provisioned]")?;
    s.click(&s.find("[data-testid=test-connection]")?)?;
    let result = s.find("[data-testid=connection-result]")?;
    assert_eq!(
        s.attr(&result, "data-failure")?.as_deref(),
        Some("not_configured")
    );

    // A code with a wrong credential: refused in plain words, nothing saved.
    let wrong =
        clinic_install::Profile::from_toml(&profile_toml(&c.server.base_url(), "cct_wrong"))?
            .enrolment_code();
    s.type_text(&s.find("[data-testid=enrolment-code]")?, &wrong)?;
    s.click(&s.find("[data-testid=enrol]")?)?;
    let outcome = s.find("[data-testid=enrol-result]")?;
    wait_until(Duration::from_secs(15), || {
        Ok(s.attr(&outcome, "data-failure")?.as_deref() == Some("credential_rejected"))
    })?;
    assert!(!s.text(&outcome)?.contains("cct_wrong"));
    assert!(!config.join("profile.toml").exists());

    let good = clinic_install::Profile::from_toml(&profile_toml(&c.server.base_url(), &c.token))?
        .enrolment_code();
    let field = s.find("[data-testid=enrolment-code]")?;
    s.clear(&field)?;
    s.type_text(&field, &good)?;
    s.click(&s.find("[data-testid=enrol]")?)?;
    wait_until(Duration::from_secs(15), || {
        Ok(config.join("profile.toml").exists()
            && s.attr(&badge, "data-shown")?.as_deref() == Some("false"))
    })?;
    let clinic = s.find("[data-testid=diag-clinic]")?;
    wait_until(Duration::from_secs(10), || {
        Ok(s.text(&clinic)?.contains("C001"))
    })?;
    // Sync started with the new profile: the clinic's patients arrive.
    wait_until(Duration::from_secs(30), || {
        Ok(log_says(&data, "sync started"))
    })?;
    Ok(())
}
