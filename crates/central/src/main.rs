//! `clinic-central` command line: serve, load demo clinics, import files, issue, list and
//! revoke tokens, make enrolment codes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use clinic_central::import::{self, ImportKind};
use clinic_central::store::{CentralStore, Durability, PgOptions};
use clinic_central::tls::Tls;
use clinic_central::{
    DEFAULT_COMPAT_CLINIC, Limits, Mode, auth, demo, limits, open_store, telemetry,
};
use clinic_domain::ClinicZone;

#[derive(Parser)]
#[command(
    name = "clinic-central",
    about = "Clinic Desk's central server",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which database, for every subcommand.
#[derive(Args, Clone)]
struct Db {
    /// A SQLite file path (one machine), or a `postgres://user@host:port/db` URL
    /// (shared by several replicas).
    #[arg(long = "db", env = "CLINIC_CENTRAL_DB")]
    db: String,
    /// PostgreSQL only: most connections this process keeps open.
    #[arg(long, env = "CLINIC_CENTRAL_DB_POOL", default_value_t = PgOptions::default().pool_size)]
    db_pool_size: usize,
    /// PostgreSQL only: seconds a request waits for the database before it gets a 503.
    #[arg(long, env = "CLINIC_CENTRAL_DB_TIMEOUT", default_value_t = PgOptions::default().timeout.as_secs())]
    db_timeout: u64,
}

impl Db {
    fn open(&self, mode: &Mode) -> anyhow::Result<Arc<dyn CentralStore>> {
        let pg = PgOptions {
            pool_size: self.db_pool_size,
            timeout: Duration::from_secs(self.db_timeout.max(1)),
        };
        open_store(&self.db, mode, Durability::Full, pg).context("opening the database")
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API. Logs `listening` with the bound address (use port 0 for a free port).
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        db: Db,
        /// Serve only the hospital's original contract, without authentication.
        #[arg(long)]
        compat: bool,
        /// Clinic that compat mode's reports and patient look-ups belong to.
        #[arg(long, default_value = DEFAULT_COMPAT_CLINIC)]
        compat_clinic: String,
        /// Compat mode has no authentication, so it listens on loopback only; this
        /// lets it listen on another address (every network reaching it must be trusted).
        #[arg(long, requires = "compat")]
        compat_listen_anywhere: bool,
        /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
        /// Both files are read again on SIGHUP. Without it the server speaks plain
        /// HTTP, for a proxy on this machine that ends TLS.
        #[arg(
            long,
            env = "CLINIC_CENTRAL_TLS_CERT",
            requires = "tls_key",
            value_name = "FILE"
        )]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(
            long,
            env = "CLINIC_CENTRAL_TLS_KEY",
            requires = "tls_cert",
            value_name = "FILE"
        )]
        tls_key: Option<PathBuf>,
        /// Open connections at most (lowered to the open-file limit minus a reserve).
        #[arg(long, default_value_t = limits::MAX_CONNECTIONS)]
        max_connections: usize,
        /// `GET /v1/changes` long polls held at once (at most three quarters of the
        /// connection cap); beyond it they are answered 503 with `Retry-After`.
        #[arg(long, default_value_t = limits::MAX_CHANGE_WAITERS)]
        max_change_waiters: usize,
    },
    /// Load the deterministic demo clinic (the app's) into one or more clinics.
    Demo {
        #[command(flatten)]
        db: Db,
        #[arg(long = "clinic", required = true)]
        clinics: Vec<String>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value = ClinicZone::DEFAULT_NAME)]
        zone: String,
    },
    /// Load one file of patients, appointments or staff (CSV), or a FHIR R4 Bundle of
    /// Patients (JSON), into a clinic: all rows, or none and a report of every refused row.
    Import {
        #[command(flatten)]
        db: Db,
        #[arg(long)]
        clinic: String,
        /// patients | appointments | staff | fhir; by default from the file name
        /// (`patients*.csv`, `appointments*.csv`, `staff*.csv`, `*.json`).
        #[arg(long)]
        kind: Option<String>,
        file: std::path::PathBuf,
    },
    /// Manage per-clinic bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Make a single-use enrolment code: a device trades it (within its lifetime) for
    /// its own device token of this clinic. Only its hash is kept.
    EnrolCode {
        #[command(flatten)]
        db: Db,
        #[arg(long)]
        clinic: String,
        /// How long the code can be used: `90s`, `15m`, `2h` (at most 24h).
        #[arg(long, default_value = "15m", value_parser = parse_ttl)]
        ttl: Duration,
        /// The device's name in `token list` (a ward, a PC).
        #[arg(long)]
        label: Option<String>,
        /// Also draw the code as a QR code in the terminal.
        #[arg(long)]
        qr: bool,
    },
}

/// `90s`, `15m`, `2h`, or plain seconds.
fn parse_ttl(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (number, unit) = match raw.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => raw.split_at(i),
        None => (raw, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{raw}' is not a duration like 15m"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(format!("'{raw}': the unit is s, m or h")),
    };
    let ttl = Duration::from_secs(seconds);
    if ttl.is_zero() || ttl > auth::MAX_ENROLMENT_TTL {
        return Err(format!("'{raw}': an enrolment code lives from 1s to 24h"));
    }
    Ok(ttl)
}

/// What a token may do, on the command line.
#[derive(Clone, Copy, clap::ValueEnum)]
enum ScopeArg {
    /// Push reports, read the clinic's feeds: what a ward device needs.
    Device,
    /// Also change patients, staff and appointments: for the hospital's systems, never a device.
    Admin,
}

impl From<ScopeArg> for auth::Scope {
    fn from(s: ScopeArg) -> Self {
        match s {
            ScopeArg::Device => auth::Scope::Device,
            ScopeArg::Admin => auth::Scope::Admin,
        }
    }
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token for a clinic; the token is printed once and only its hash is kept.
    Issue {
        #[command(flatten)]
        db: Db,
        #[arg(long)]
        clinic: String,
        #[arg(long)]
        label: Option<String>,
        /// `device` (the default) for a ward PC; `admin` for an integration.
        #[arg(long, value_enum, default_value = "device")]
        scope: ScopeArg,
    },
    /// List a clinic's tokens: ID, scope, label, last use and its address, revocation.
    List {
        #[command(flatten)]
        db: Db,
        #[arg(long)]
        clinic: String,
    },
    /// Revoke a token by its ID (`tok_...`); the clinic's other tokens keep working.
    Revoke {
        #[command(flatten)]
        db: Db,
        token_id: String,
    },
}

/// Reads the certificate and key again on every SIGHUP: new handshakes use the new
/// ones; when they cannot be used, the old ones stay and the log says why.
fn reload_on_sighup(tls: Arc<Tls>) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                match tls.reload() {
                    Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                    Err(e) => tracing::error!(
                        error = %e,
                        "SIGHUP: the new TLS certificate cannot be used; still serving the previous one"
                    ),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = tls;
    Ok(())
}

/// Ctrl-C, or SIGTERM from a service manager: both stop accepting and let in-flight requests finish.
async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            listen,
            db,
            compat,
            compat_clinic,
            compat_listen_anywhere,
            tls_cert,
            tls_key,
            max_connections,
            max_change_waiters,
        } => {
            telemetry::init_logging();
            // The connection cap is set below the open-file limit; let that be the hard one.
            if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
                tracing::warn!(error = %e, "could not raise the open-file limit");
            }
            let mode = if compat {
                Mode::Compat {
                    clinic_id: compat_clinic,
                }
            } else {
                Mode::Full
            };
            clinic_central::check_compat_listen(&mode, listen, compat_listen_anywhere)?;
            let tls = match (&tls_cert, &tls_key) {
                (Some(cert), Some(key)) => {
                    Some(Tls::load(cert, key).context("--tls-cert/--tls-key")?)
                }
                _ => None,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async move {
                let store = db.open(&mode)?;
                let limits = Limits {
                    max_connections,
                    max_change_waiters,
                    ..Limits::default()
                };
                let server =
                    clinic_central::start_serving(store, mode.clone(), listen, limits, tls.clone())
                        .await?;
                if let Some(tls) = tls {
                    reload_on_sighup(tls)?;
                }
                tracing::info!(
                    addr = %server.addr,
                    compat,
                    https = tls_cert.is_some(),
                    max_connections = server.state.limits.connection_cap(),
                    max_change_waiters = server.state.limits.change_waiter_cap(),
                    "listening"
                );
                println!("listening on {}", server.addr);
                shutdown_signal().await?;
                tracing::info!("shutting down");
                server.shutdown().await?;
                anyhow::Ok(())
            })?;
        }
        Command::Demo {
            db,
            clinics,
            seed,
            zone,
        } => {
            let zone = ClinicZone::parse(&zone)?;
            let store = db.open(&Mode::Full)?;
            for clinic in clinics {
                clinic_domain::record_id(&clinic).context("clinic IDs follow the ID rules")?;
                let s = demo::load_demo(store.as_ref(), &clinic, seed, zone)?;
                println!(
                    "{clinic}: {} patients, {} staff (PIN {}), {} appointments",
                    s.patients,
                    s.staff,
                    clinic_domain::pin::DEMO_PIN,
                    s.appointments
                );
            }
        }
        Command::Import {
            db,
            clinic,
            kind,
            file,
        } => {
            clinic_domain::record_id(&clinic).context("clinic IDs follow the ID rules")?;
            let kind = match kind {
                Some(k) => ImportKind::parse(&k).with_context(|| {
                    format!("unknown kind '{k}': patients, appointments, staff or fhir")
                })?,
                None => ImportKind::from_file_name(&file)
                    .context("cannot tell the kind from the file name: pass --kind")?,
            };
            let store = db.open(&Mode::Full)?;
            let started = std::time::Instant::now();
            match import::import_file(store.as_ref(), &clinic, kind, &file) {
                Ok(n) => println!(
                    "{clinic}: imported {n} rows from {} in {:.1} s",
                    file.display(),
                    started.elapsed().as_secs_f64()
                ),
                Err(import::ImportError::Refused(rows)) => {
                    for row in &rows {
                        println!("{row}");
                    }
                    anyhow::bail!(
                        "{} row(s) refused in {}; nothing was imported",
                        rows.len(),
                        file.display()
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
        Command::Token {
            command:
                TokenCommand::Issue {
                    db,
                    clinic,
                    label,
                    scope,
                },
        } => {
            clinic_domain::record_id(&clinic).context("clinic IDs follow the ID rules")?;
            let label = checked_label(label)?;
            let store = db.open(&Mode::Full)?;
            store.ensure_clinic(&clinic, ClinicZone::default())?;
            let t = auth::issue_token(store.as_ref(), &clinic, scope.into(), label.as_deref())?;
            println!(
                "token id: {}\nclinic:   {}\nscope:    {}\ntoken:    {}",
                t.id, t.clinic_id, t.scope, t.secret
            );
            eprintln!("The token is shown only this once; only its hash is kept.");
        }
        Command::Token {
            command: TokenCommand::List { db, clinic },
        } => {
            let store = db.open(&Mode::Full)?;
            let tokens = store.tokens(&clinic)?;
            println!(
                "{:<20}  {:<6}  {:<24}  {:<20}  {:<39}  REVOKED",
                "ID", "SCOPE", "LABEL", "LAST SEEN (UTC)", "ADDRESS"
            );
            for t in &tokens {
                println!(
                    "{:<20}  {:<6}  {:<24}  {:<20}  {:<39}  {}",
                    t.id,
                    t.scope,
                    t.label.as_deref().unwrap_or("-"),
                    t.last_seen_at.map_or_else(|| "never".into(), instant),
                    t.last_seen_address.as_deref().unwrap_or("-"),
                    t.revoked_at.map_or_else(|| "-".into(), instant),
                );
            }
            if tokens.is_empty() {
                eprintln!("clinic {clinic} has no tokens");
            }
        }
        Command::Token {
            command: TokenCommand::Revoke { db, token_id },
        } => {
            let store = db.open(&Mode::Full)?;
            anyhow::ensure!(
                store.revoke_token(&token_id)?,
                "no active token with ID {token_id}"
            );
            println!("revoked {token_id}");
        }
        Command::EnrolCode {
            db,
            clinic,
            ttl,
            label,
            qr,
        } => {
            clinic_domain::record_id(&clinic).context("clinic IDs follow the ID rules")?;
            let label = checked_label(label)?;
            let store = db.open(&Mode::Full)?;
            let code = auth::issue_enrolment_code(store.as_ref(), &clinic, ttl, label.as_deref())
                .with_context(|| format!("making an enrolment code for clinic {clinic}"))?;
            println!(
                "code:     {}\nclinic:   {}\nexpires:  {} UTC",
                code.code,
                code.clinic_id,
                instant(code.expires_at)
            );
            if qr {
                print!("{}", qr_text(&code.code)?);
            }
            eprintln!(
                "Single use, for clinic {clinic} only; enter it in the device's enrolment form before it expires."
            );
        }
    }
    Ok(())
}

/// A token label as the server checks one (`POST /v1/enrol` does the same).
fn checked_label(label: Option<String>) -> anyhow::Result<Option<String>> {
    label
        .map(|l| {
            clinic_domain::text::label("label", &l, clinic_central::api::MAX_TOKEN_LABEL_CHARS)
                .context("the label")
        })
        .transpose()
}

/// Unix seconds as `2026-11-30 02:10:00`.
fn instant(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0).map_or_else(
        || unix.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

/// The code as a QR code drawn with Unicode half blocks (two modules a character).
fn qr_text(code: &str) -> anyhow::Result<String> {
    let qr = qrcode::QrCode::new(code.as_bytes()).context("drawing the QR code")?;
    Ok(qr
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build()
        + "\n")
}
