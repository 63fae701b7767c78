//! Subcommands an installer runs without a window:
//!
//! - `clinic-desk provision <profile.toml | CDP1-… | one-time code>` checks the
//!   server and the credential (trading a one-time enrolment code for this
//!   device's own token first), then saves the profile owner-only and binds the
//!   store to it; a device that already has a credential is re-enrolled only with
//!   `--staff <ID>` and that member's PIN (the app's screen asks for a signed-in
//!   member the same way);
//! - `clinic-desk enrolment-code <profile.toml>` prints the one-line code for the
//!   first-run screen;
//! - `clinic-desk check` tests the connection of the effective profile and says
//!   in plain words what failed.
//!
//! Exit status: 0 done, 1 refused or failed (the message says why), 2 usage
//! (clap prints what was wrong).

use std::path::PathBuf;

use clinic_desk_core::Desk;
use clinic_install::paths::DATABASE_FILE;
use clinic_install::{Profile, ProvisionError, Setup, StoreAt, instance, paths};

const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(clap::Subcommand)]
pub enum Subcommand {
    /// Check the profile's server and credential, then save the profile (readable
    /// by this user only) and bind the local store to it.
    Provision {
        /// A profile file, a provisioning code (CDP1-…), or a one-time enrolment
        /// code from `clinic-central enrol-code` (server and clinic from the installed profile).
        source: String,
        /// Your staff ID. A device that already has a credential is re-enrolled only
        /// by a member of its clinic, who gives her PIN when asked (not echoed; or one
        /// line on standard input when it is not a terminal).
        #[arg(long, value_name = "ID")]
        staff: Option<String>,
        #[command(flatten)]
        dirs: Dirs,
    },
    /// Print a profile file's one-line enrolment code, for the first-run screen.
    EnrolmentCode {
        /// The profile file.
        profile: String,
        #[command(flatten)]
        dirs: Dirs,
    },
    /// Test the connection of the profile the app would use, and say what failed.
    Check {
        #[command(flatten)]
        dirs: Dirs,
    },
}

#[derive(clap::Args)]
pub struct Dirs {
    /// The app's data directory (default: the OS app-data directory; also CLINIC_DESK_DATA_DIR).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Where the provisioned profile is kept (default: the OS config directory;
    /// also CLINIC_DESK_CONFIG_DIR).
    #[arg(long, value_name = "DIR")]
    config_dir: Option<PathBuf>,
}

impl Subcommand {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Provision { .. } => "provision",
            Self::EnrolmentCode { .. } => "enrolment-code",
            Self::Check { .. } => "check",
        }
    }

    /// Runs the subcommand; the exit status.
    pub fn run(self) -> i32 {
        let name = self.name();
        let result = match self {
            Self::Provision {
                source,
                staff,
                dirs,
            } => provision(&source, staff.as_deref(), dirs),
            Self::EnrolmentCode { profile, .. } => enrolment_code(&profile),
            Self::Check { dirs } => check(dirs),
        };
        match result {
            Ok(()) => 0,
            Err(message) => {
                eprintln!("clinic-desk {name}: {message}");
                1
            }
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))
}

fn provision(source: &str, staff: Option<&str>, dirs: Dirs) -> Result<(), String> {
    let profile = Profile::load(source).map_err(|e| e.to_string())?;
    let data_dir = paths::data_dir(dirs.data_dir).ok_or("no data directory")?;
    let config_dir = paths::config_dir(dirs.config_dir).ok_or("no config directory")?;
    let installed = match paths::installed_profile() {
        Some(p) => Profile::from_file(&p).map_err(|e| e.to_string())?,
        None => None,
    };
    // The app must not have the store open while we bind it to another profile.
    let _lock = instance::acquire(&data_dir)
        .map_err(|e| format!("cannot use {}: {e}", data_dir.display()))?
        .ok_or("Clinic Desk is running on this device: close it, then provision again")?;
    let db_path = data_dir.join(DATABASE_FILE);
    let setup = Setup::load(Profile::default(), data_dir, Some(config_dir.clone()));
    // Re-enrolment: the same rule as the app's screen (`Desk::may_reprovision`), with
    // the member signed in here by her PIN, which counts towards her lockout.
    let mut by = None;
    let desk = if setup.profile().server.token.is_some() {
        let Some(staff) = staff else {
            return Err(
                "this device is already enrolled: re-enrolling it needs a member of its clinic \
                 (--staff <your ID>, then your PIN); nothing was saved"
                    .into(),
            );
        };
        let refused = |e: clinic_desk_core::ApiError| format!("nothing was saved: {}", e.message);
        let desk = Desk::open_encrypted(Some(&config_dir), &db_path).map_err(refused)?;
        let pin = read_pin(&format!("PIN for {staff}: "))?;
        desk.sign_in(staff, &pin).map_err(refused)?;
        by = desk.may_reprovision(&setup).map_err(refused)?;
        Some(desk)
    } else {
        None
    };
    let store = desk
        .as_ref()
        .map_or(StoreAt::Path(&db_path), |d| StoreAt::Open(d.database()));
    let done = runtime()?
        .block_on(clinic_install::provision(
            profile,
            installed,
            &config_dir,
            store,
            TIMEOUT,
        ))
        .map_err(|e| match e {
            ProvisionError::Connection(c) => format!("nothing was saved: {c}"),
            ProvisionError::Invalid(i) => format!("nothing was saved: {i}"),
            not_bound @ ProvisionError::NotBound { .. } => {
                format!("{not_bound} (Clinic Desk binds it when it next starts)")
            }
        })?;
    if let Some(by) = by {
        println!("re-enrolled by {by}");
    }
    println!(
        "provisioned for clinic {} with {}\nprofile saved to {} (readable by this user only){}",
        done.clinic_id,
        done.server_url,
        done.profile_path.display(),
        if done.cursors_reset {
            "\nthe new server's data will be pulled from the start"
        } else {
            ""
        }
    );
    Ok(())
}

/// A PIN from the terminal with its echo off, or one line of standard input when
/// that is not a terminal (a script, a test).
fn read_pin(prompt: &str) -> Result<String, String> {
    use std::io::{BufRead as _, Write as _};
    let mut line = String::new();
    #[cfg(unix)]
    let echo_was = {
        use rustix::termios::{LocalModes, OptionalActions, isatty, tcgetattr, tcsetattr};
        let stdin = rustix::stdio::stdin();
        if isatty(stdin) {
            eprint!("{prompt}");
            let _ = std::io::stderr().flush();
            let was = tcgetattr(stdin).map_err(|e| format!("cannot read the PIN: {e}"))?;
            let mut quiet = was.clone();
            quiet.local_modes.remove(LocalModes::ECHO);
            tcsetattr(stdin, OptionalActions::Now, &quiet)
                .map_err(|e| format!("cannot read the PIN: {e}"))?;
            Some(was)
        } else {
            None
        }
    };
    #[cfg(not(unix))]
    {
        // No echo control here: the console shows what is typed.
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
    }
    let read = std::io::stdin().lock().read_line(&mut line);
    #[cfg(unix)]
    if let Some(was) = echo_was {
        let _ = rustix::termios::tcsetattr(
            rustix::stdio::stdin(),
            rustix::termios::OptionalActions::Now,
            &was,
        );
        eprintln!();
    }
    read.map_err(|e| format!("cannot read the PIN: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// A package's profile names the clinic and its server and may carry no credential
/// (each device enrols for its own), so it is checked for what it has.
fn enrolment_code(source: &str) -> Result<(), String> {
    let profile = Profile::load(source).map_err(|e| e.to_string())?;
    profile.validate(false).map_err(|e| e.to_string())?;
    for (missing, name) in [
        (profile.clinic.id.is_none(), "clinic.id"),
        (profile.server.url.is_none(), "server.url"),
    ] {
        if missing {
            return Err(format!("the profile has no {name}"));
        }
    }
    println!("{}", profile.enrolment_code());
    Ok(())
}

/// Tests the profile the app would use (not one given here: that is `provision`'s job).
fn check(dirs: Dirs) -> Result<(), String> {
    let data_dir = paths::data_dir(dirs.data_dir).unwrap_or_default();
    let setup = Setup::load(
        Profile::default(),
        data_dir,
        paths::config_dir(dirs.config_dir),
    );
    for p in &setup.problems {
        eprintln!("warning: {p}");
    }
    let profile = setup.profile();
    println!(
        "server: {} (from {:?})",
        profile.server.url.as_deref().unwrap_or("none"),
        setup.layers.server_source()
    );
    let result = runtime()?.block_on(clinic_desk_core::test_connection(&profile));
    if result.ok {
        println!("ok: {}", result.detail);
        Ok(())
    } else {
        Err(result.detail)
    }
}
