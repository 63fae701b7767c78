//! A throwaway PostgreSQL server for tests and benchmarks: `initdb` in a fresh temp
//! dir, `pg_ctl start` on a free loopback port, stopped and deleted on drop. No
//! Docker, no network: Debian's `postgresql` package (installed by
//! `scripts/prepare.sh`) is all it needs.
//!
//! PostgreSQL refuses to run as root, so under root every server command runs as the
//! `postgres` system user the package creates (`runuser`), in a directory it owns.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The newest `/usr/lib/postgresql/<version>/bin` (Debian's layout), or `$PG_BIN`.
fn bin_dir() -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "PostgreSQL server binaries not found: install the `postgresql` package (scripts/prepare.sh does)",
        )
    })
}

fn checked(what: &str, out: Output) -> io::Result<Output> {
    if out.status.success() {
        Ok(out)
    } else {
        Err(io::Error::other(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

impl PgCluster {
    /// Creates and starts a new cluster. Takes about three seconds (mostly `initdb`).
    pub fn start() -> io::Result<Self> {
        let bin = bin_dir()?;
        let as_postgres_user = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")?;
        let dir = std::env::temp_dir().join(unique("clinic-pg"));
        std::fs::create_dir(&dir)?;
        let mut cluster = Self {
            dir,
            bin,
            port: 0,
            as_postgres_user,
        };
        if as_postgres_user {
            checked(
                "chown",
                Command::new("chown")
                    .arg("postgres:")
                    .arg(&cluster.dir)
                    .output()?,
            )?;
        }
        let data = cluster.data_dir();
        checked(
            "initdb",
            cluster
                .command("initdb")
                .args(["--no-sync", "--auth=trust", "--username=postgres"])
                .args(["--encoding=UTF8", "--locale=C.UTF-8", "-D"])
                .arg(&data)
                .output()?,
        )?;
        // A free port can be taken between looking and binding: try a few.
        let mut last = None;
        for _ in 0..5 {
            cluster.port = free_port()?;
            match cluster.start_again() {
                Ok(()) => return Ok(cluster),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("could not start PostgreSQL")))
    }

    /// One cluster for the whole test process, started on first use and stopped when
    /// the process exits. Tests share it and each takes its own database.
    pub fn shared() -> io::Result<&'static PgCluster> {
        static SHARED: OnceLock<Mutex<Option<&'static PgCluster>>> = OnceLock::new();
        let slot = SHARED.get_or_init(|| Mutex::new(None));
        let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = *guard {
            return Ok(c);
        }
        let cluster: &'static PgCluster = Box::leak(Box::new(PgCluster::start()?));
        *guard = Some(cluster);
        extern "C" fn stop_shared() {
            if let Some(slot) = SHARED.get()
                && let Some(c) = *slot.lock().unwrap_or_else(|e| e.into_inner())
            {
                c.destroy();
            }
        }
        // SAFETY: registers a plain function with no arguments; it runs at process exit.
        unsafe {
            libc::atexit(stop_shared);
        }
        Ok(cluster)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A fresh, empty database; returns its URL.
    pub fn create_database(&self) -> io::Result<String> {
        let name = unique("t");
        checked(
            "createdb",
            self.command("createdb")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .arg(&name)
                .output()?,
        )?;
        Ok(self.url(&name))
    }

    /// Stops the server (connections are cut) but keeps its data: see [`Self::start_again`].
    pub fn stop(&self) -> io::Result<()> {
        checked(
            "pg_ctl stop",
            self.command("pg_ctl")
                .args(["stop", "-w", "-m", "fast", "-D"])
                .arg(self.data_dir())
                .output()?,
        )?;
        Ok(())
    }

    /// Starts the server again on the same port with the same data.
    pub fn start_again(&self) -> io::Result<()> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=300",
            self.port,
            self.dir.display()
        );
        checked(
            "pg_ctl start",
            self.command("pg_ctl")
                .args(["start", "-w", "-t", "30", "-D"])
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.dir.join("server.log"))
                .arg("-o")
                .arg(options)
                .output()?,
        )?;
        Ok(())
    }

    fn destroy(&self) {
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-w", "-m", "immediate", "-D"])
            .arg(self.data_dir())
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.destroy();
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
