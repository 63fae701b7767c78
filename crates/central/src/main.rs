//! `clinic-central` command line: serve, load demo clinics, import files, issue and revoke tokens.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use clinic_central::import::{self, ImportKind};
use clinic_central::store::{CentralStore, Durability, PgOptions};
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
    },
    /// Revoke a token by its ID (`tok_...`).
    Revoke {
        #[command(flatten)]
        db: Db,
        token_id: String,
    },
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
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async move {
                let store = db.open(&mode)?;
                let limits = Limits {
                    max_connections,
                    max_change_waiters,
                    ..Limits::default()
                };
                let server =
                    clinic_central::start_with_limits(store, mode.clone(), listen, limits).await?;
                tracing::info!(
                    addr = %server.addr,
                    compat,
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
            command: TokenCommand::Issue { db, clinic, label },
        } => {
            clinic_domain::record_id(&clinic).context("clinic IDs follow the ID rules")?;
            let store = db.open(&Mode::Full)?;
            store.ensure_clinic(&clinic, ClinicZone::default())?;
            let t = auth::issue_token(store.as_ref(), &clinic, label.as_deref())?;
            println!(
                "token id: {}\nclinic:   {}\ntoken:    {}",
                t.id, t.clinic_id, t.secret
            );
            eprintln!("The token is shown only this once; store it in the clinic's app settings.");
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
    }
    Ok(())
}
