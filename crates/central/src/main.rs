//! `clinic-central` command line: serve, load demo clinics, issue and revoke tokens.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use clinic_central::store::{CentralStore, Durability};
use clinic_central::{DEFAULT_COMPAT_CLINIC, Mode, auth, demo, open_store, telemetry};
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

#[derive(Subcommand)]
enum Command {
    /// Serve the API. Logs `listening` with the bound address (use port 0 for a free port).
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[arg(long)]
        db: PathBuf,
        /// Serve only the hospital's original contract, without authentication.
        #[arg(long)]
        compat: bool,
        /// Clinic that compat mode's reports and patient look-ups belong to.
        #[arg(long, default_value = DEFAULT_COMPAT_CLINIC)]
        compat_clinic: String,
    },
    /// Load the deterministic demo clinic (the app's) into one or more clinics.
    Demo {
        #[arg(long)]
        db: PathBuf,
        #[arg(long = "clinic", required = true)]
        clinics: Vec<String>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value = ClinicZone::DEFAULT_NAME)]
        zone: String,
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
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        clinic: String,
        #[arg(long)]
        label: Option<String>,
    },
    /// Revoke a token by its ID (`tok_...`).
    Revoke {
        #[arg(long)]
        db: PathBuf,
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
                let store =
                    open_store(&db, &mode, Durability::Full).context("opening the database")?;
                let server = clinic_central::start(store, mode.clone(), listen).await?;
                tracing::info!(addr = %server.addr, compat, "listening");
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
            let store = open_store(&db, &Mode::Full, Durability::Full)?;
            for clinic in clinics {
                clinic_domain::PatientId::parse(&clinic)
                    .context("clinic IDs follow the ID rules")?;
                let s = demo::load_demo(store.as_ref(), &clinic, seed, zone)?;
                println!(
                    "{clinic}: {} patients, {} staff (PIN {}), {} appointments",
                    s.patients,
                    s.staff,
                    clinic_central::pin::DEMO_PIN,
                    s.appointments
                );
            }
        }
        Command::Token {
            command: TokenCommand::Issue { db, clinic, label },
        } => {
            clinic_domain::PatientId::parse(&clinic).context("clinic IDs follow the ID rules")?;
            let store = open_store(&db, &Mode::Full, Durability::Full)?;
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
            let store = open_store(&db, &Mode::Full, Durability::Full)?;
            anyhow::ensure!(
                store.revoke_token(&token_id)?,
                "no active token with ID {token_id}"
            );
            println!("revoked {token_id}");
        }
    }
    Ok(())
}
