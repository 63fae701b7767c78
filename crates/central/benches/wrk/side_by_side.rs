//! clinic-central's single-POST ingest side by side with the hospital's original
//! server (the article's Gin code, `benches/gin_article/main.go`), both loaded by
//! one external load generator, wrk, with one script (`benches/wrk/post_report.lua`)
//! in the same run, alternating, so both meet the same machine.
//!
//! Gin is built from Debian's packaged Gin (`golang-github-gin-gonic-gin-dev`; the
//! Go module proxy is not reachable here), `scripts/test` installs it with Go and
//! wrk. clinic-central runs in this process on its own two-worker runtime (as the
//! rest of this benchmark) while wrk and Gin are their own processes.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BENCH_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches");

/// What wrk measured (its `done` hook prints one `WRK_RESULT` line).
#[derive(Debug, Clone, Copy)]
pub struct WrkRun {
    pub requests: u64,
    pub seconds: f64,
    pub p99: Duration,
    pub non_2xx: u64,
    pub socket_errors: u64,
}

impl WrkRun {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    fn parse(stdout: &str) -> Option<Self> {
        let line = stdout.lines().find(|l| l.starts_with("WRK_RESULT "))?;
        let field = |name: &str| -> Option<&str> {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        };
        Some(WrkRun {
            requests: field("requests")?.parse().ok()?,
            seconds: field("seconds")?.parse().ok()?,
            p99: Duration::from_micros(field("p99_us")?.parse().ok()?),
            non_2xx: field("non2xx")?.parse().ok()?,
            socket_errors: field("errors")?.parse().ok()?,
        })
    }
}

/// Loads `url` with wrk: two threads (the machine's cores), `connections`
/// keep-alive connections, for `duration`; `token` is sent as a bearer if given.
pub fn wrk(url: &str, token: Option<&str>, connections: u64, duration: Duration) -> WrkRun {
    let output = Command::new("wrk")
        .args(["-t2", &format!("-c{connections}")])
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("-s")
        .arg(format!("{BENCH_DIR}/wrk/post_report.lua"))
        .arg(url)
        .env("WRK_TOKEN", token.unwrap_or(""))
        .output()
        .expect("wrk runs (scripts/test installs the wrk package)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "wrk failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    WrkRun::parse(&stdout).unwrap_or_else(|| panic!("no WRK_RESULT in wrk's output: {stdout}"))
}

/// Builds the article's server with Debian's Go and Gin (GOPATH mode, offline).
pub fn build_gin(out_dir: &Path) -> PathBuf {
    let binary = out_dir.join("gin-article");
    let status = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&binary)
        .arg(format!("{BENCH_DIR}/gin_article/main.go"))
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", out_dir.join("go-build-cache"))
        .status()
        .expect("go runs (scripts/test installs golang-go and golang-github-gin-gonic-gin-dev)");
    assert!(status.success(), "building the article's Gin server failed");
    binary
}

/// The article's Gin server on a free loopback port; killed when dropped.
pub struct Gin {
    child: Child,
    pub addr: SocketAddr,
}

impl Gin {
    pub fn start(binary: &Path) -> Gin {
        // Gin takes an address, not a listener: find a free port, then give it away.
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        let child = Command::new(binary)
            .arg(addr.to_string())
            // It prints a line per report and gin.Default() logs every request:
            // kept, as the article has them, into the void rather than a terminal.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the Gin server");
        let gin = Gin { child, addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "the Gin server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        gin
    }
}

impl Drop for Gin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
