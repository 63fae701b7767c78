//! What the system tests share: a real X server (Xvfb), a real tauri-driver with
//! WebKitWebDriver behind it, and a small W3C WebDriver client. Nothing is mocked:
//! the app under test is the binary cargo just built, on its own temporary data dir.
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod app;
pub mod bench;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

pub const APP: &str = env!("CARGO_BIN_EXE_clinic-desk");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process that is killed when the test ends, pass or fail.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// tauri-driver and the WebKitWebDriver it starts, in a process group of their own:
/// killing tauri-driver alone would leave a WebKitWebDriver behind after every test.
pub struct ReapedGroup(pub Child);

impl Drop for ReapedGroup {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Xvfb on a display it picks itself (`-displayfd`), so parallel tests never collide.
pub fn xvfb() -> Result<(Reaped, String)> {
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1366x900x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("Xvfb not found: run the README's test command, which installs it")?;
    let mut out = child.stdout.take().unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while out.read(&mut byte)? == 1 && byte[0] != b'\n' {
        buf.push(byte[0]);
    }
    let display = format!(":{}", String::from_utf8(buf)?.trim());
    Ok((Reaped(child), display))
}

pub struct Driver {
    _xvfb: Reaped,
    _config: tempfile::TempDir,
    _driver: ReapedGroup,
    base: String,
    http: reqwest::blocking::Client,
}

impl Driver {
    pub fn start() -> Result<Self> {
        let (xvfb, display) = xvfb()?;
        let (port, native) = (free_port(), free_port());
        // The apps it starts must not find this machine's clinic profiles (a
        // developer's provisioned one, or one an installed package put in /etc),
        // nor what an earlier test left in the webview's storage (its language
        // choice lives in localStorage under XDG_DATA_HOME: a test that switched to
        // English made the next test binary start in English).
        let config = tempfile::tempdir()?;
        let driver = Command::new(tauri_driver())
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native.to_string(),
            ])
            .env("DISPLAY", &display)
            .process_group(0)
            .env("CLINIC_DESK_CONFIG_DIR", config.path())
            // The store's key goes in the config directory's key file, never into
            // the developer's own keyring.
            .env("CLINIC_DESK_KEYRING", "off")
            .env("XDG_DATA_HOME", config.path().join("data"))
            .env(
                "CLINIC_DESK_INSTALLED_PROFILE",
                config.path().join("none.toml"),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("tauri-driver not found: run the README's test command, which installs it")?;
        let d = Driver {
            _xvfb: xvfb,
            _config: config,
            _driver: ReapedGroup(driver),
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
        };
        wait_until(Duration::from_secs(20), || {
            Ok(d.http.get(format!("{}/status", d.base)).send().is_ok())
        })?;
        Ok(d)
    }

    /// The config directory the apps it starts use: their profile and store key.
    pub fn config_dir(&self) -> &std::path::Path {
        self._config.path()
    }

    /// The process id of tauri-driver: the apps it starts are its descendants.
    pub fn pid(&self) -> u32 {
        self._driver.0.id()
    }

    /// Launches the app with `args` in a new WebDriver session.
    pub fn launch(&self, args: &[&str]) -> Result<Session<'_>> {
        self.launch_binary(APP, args)
    }

    /// Launches `application` (a Tauri app binary) with `args` in a new WebDriver session.
    pub fn launch_binary(&self, application: &str, args: &[&str]) -> Result<Session<'_>> {
        let body = json!({"capabilities": {"alwaysMatch": {
            "tauri:options": {"application": application, "args": args},
            "browserName": "wry",
        }}});
        let resp: Value = self
            .http
            .post(format!("{}/session", self.base))
            .json(&body)
            .send()?
            .json()?;
        let id = resp["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no session: {resp}"))?
            .to_owned();
        Ok(Session {
            driver: self,
            url: format!("{}/session/{id}", self.base),
        })
    }
}

fn tauri_driver() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let installed = home.join(".cargo/bin/tauri-driver");
    if installed.exists() {
        installed
    } else {
        PathBuf::from("tauri-driver")
    }
}

pub fn wait_until(limit: Duration, mut ok: impl FnMut() -> Result<bool>) -> Result<()> {
    let start = Instant::now();
    let mut last_err = None;
    while start.elapsed() < limit {
        match ok() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = Some(e),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!(
        "gave up after {limit:?}{}",
        last_err.map(|e| format!(": {e:#}")).unwrap_or_default()
    )
}

pub struct Session<'d> {
    driver: &'d Driver,
    url: String,
}

#[derive(Clone, Debug)]
pub struct Element(String);

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Session<'_> {
    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut req = self
            .driver
            .http
            .request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp: Value = req.send()?.json()?;
        if let Some(err) = resp["value"].get("error") {
            bail!("webdriver {path}: {err} {}", resp["value"]["message"]);
        }
        Ok(resp["value"].clone())
    }

    pub fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let v = self.call(
            reqwest::Method::POST,
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str().map(|s| Element(s.to_owned())))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Waits up to 15 s for `css` to match, as a person waits for a screen to show.
    pub fn find(&self, css: &str) -> Result<Element> {
        let mut found = None;
        wait_until(Duration::from_secs(15), || {
            found = self.find_all(css)?.into_iter().next();
            Ok(found.is_some())
        })
        .with_context(|| format!("waiting for {css}"))?;
        Ok(found.unwrap())
    }

    pub fn click(&self, e: &Element) -> Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.0),
            Some(json!({})),
        )
        .map(drop)
    }

    pub fn type_text(&self, e: &Element, text: &str) -> Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({"text": text})),
        )
        .map(drop)
    }

    pub fn clear(&self, e: &Element) -> Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/clear", e.0),
            Some(json!({})),
        )
        .map(drop)
    }

    pub fn text(&self, e: &Element) -> Result<String> {
        Ok(self
            .call(
                reqwest::Method::GET,
                &format!("/element/{}/text", e.0),
                None,
            )?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    pub fn attr(&self, e: &Element, name: &str) -> Result<Option<String>> {
        Ok(self
            .call(
                reqwest::Method::GET,
                &format!("/element/{}/attribute/{name}", e.0),
                None,
            )?
            .as_str()
            .map(str::to_owned))
    }

    pub fn select_value(&self, select_css: &str, value: &str) -> Result<()> {
        let option = self.find(&format!("{select_css} option[value=\"{value}\"]"))?;
        self.click(&option)
    }

    /// Sets the window's outer size, as a clinic PC's screen would.
    pub fn set_window_size(&self, width: u32, height: u32) -> Result<()> {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .map(drop)
    }

    /// Runs an async script; it finishes by calling its last argument with the result.
    pub fn script_async(&self, js: &str, args: Value) -> Result<Value> {
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({"script": js, "args": args})),
        )
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = self.driver.http.delete(&self.url).send();
    }
}
