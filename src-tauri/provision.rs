//! Subcommands an installer runs without a window:
//!
//! - `clinic-desk provision <profile.toml | CDP1-…>` checks the server and the
//!   credential, then saves the profile owner-only and binds the store to it;
//! - `clinic-desk enrolment-code <profile.toml>` prints the one-line code for the
//!   first-run screen;
//! - `clinic-desk check` tests the connection of the effective profile and says
//!   in plain words what failed.
//!
//! Exit status: 0 done, 1 refused or failed (the message says why), 2 usage.

use std::path::PathBuf;

use clinic_install::{Profile, ProvisionError, Setup, StoreAt, instance, paths};

use crate::DATABASE_FILE;

const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `Some(exit status)` when `args` name a subcommand.
pub fn run_subcommand(args: &[String]) -> Option<i32> {
    let (command, rest) = args.split_first()?;
    let result = match command.as_str() {
        "provision" => provision(rest),
        "enrolment-code" => enrolment_code(rest),
        "check" => check(rest),
        _ => return None,
    };
    Some(match result {
        Ok(()) => 0,
        Err(Failure::Usage(m)) => {
            eprintln!("clinic-desk {command}: {m}\n\n{}", crate::USAGE);
            2
        }
        Err(Failure::Refused(m)) => {
            eprintln!("clinic-desk {command}: {m}");
            1
        }
    })
}

enum Failure {
    Usage(String),
    Refused(String),
}

struct Args {
    positional: Vec<String>,
    data_dir: Option<PathBuf>,
    config_dir: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Args, Failure> {
    let mut out = Args {
        positional: vec![],
        data_dir: std::env::var_os(crate::DATA_DIR_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        config_dir: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| Failure::Usage(format!("{name} needs a value")))
        };
        match a.as_str() {
            "--data-dir" => out.data_dir = Some(PathBuf::from(value("--data-dir")?)),
            "--config-dir" => out.config_dir = Some(PathBuf::from(value("--config-dir")?)),
            s if s.starts_with("--") => {
                return Err(Failure::Usage(format!("unknown argument '{s}'")));
            }
            s => out.positional.push(s.to_owned()),
        }
    }
    Ok(out)
}

fn one(args: &Args, what: &str) -> Result<String, Failure> {
    match args.positional.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(Failure::Usage(format!("give exactly one {what}"))),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Refused(format!("cannot start: {e}")))
}

fn provision(args: &[String]) -> Result<(), Failure> {
    let args = parse(args)?;
    let source = one(&args, "profile file or enrolment code")?;
    let profile = Profile::load(&source).map_err(|e| Failure::Refused(e.to_string()))?;
    let data_dir = args
        .data_dir
        .or_else(paths::default_data_dir)
        .ok_or_else(|| Failure::Refused("no data directory".into()))?;
    let config_dir = paths::config_dir(args.config_dir)
        .ok_or_else(|| Failure::Refused("no config directory".into()))?;
    let installed = match paths::installed_profile() {
        Some(p) => Profile::from_file(&p).map_err(|e| Failure::Refused(e.to_string()))?,
        None => None,
    };
    // The app must not have the store open while we bind it to another profile.
    let _lock = instance::acquire(&data_dir)
        .map_err(|e| Failure::Refused(format!("cannot use {}: {e}", data_dir.display())))?
        .ok_or_else(|| {
            Failure::Refused(
                "Clinic Desk is running on this device: close it, then provision again".into(),
            )
        })?;
    let db_path = data_dir.join(DATABASE_FILE);
    let done = runtime()?
        .block_on(clinic_install::provision(
            profile,
            installed,
            &config_dir,
            StoreAt::Path(&db_path),
            TIMEOUT,
        ))
        .map_err(|e| match e {
            ProvisionError::Connection(c) => Failure::Refused(format!("nothing was saved: {c}")),
            ProvisionError::Invalid(i) => Failure::Refused(format!("nothing was saved: {i}")),
        })?;
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

fn enrolment_code(args: &[String]) -> Result<(), Failure> {
    let args = parse(args)?;
    let profile =
        Profile::load(&one(&args, "profile file")?).map_err(|e| Failure::Refused(e.to_string()))?;
    profile
        .validate(true)
        .map_err(|e| Failure::Refused(e.to_string()))?;
    println!("{}", profile.enrolment_code());
    Ok(())
}

fn check(args: &[String]) -> Result<(), Failure> {
    let args = parse(args)?;
    if !args.positional.is_empty() {
        return Err(Failure::Usage(
            "check takes no profile; it tests the one the app would use".into(),
        ));
    }
    let data_dir = args
        .data_dir
        .or_else(paths::default_data_dir)
        .unwrap_or_default();
    let setup = Setup::load(
        Profile::default(),
        data_dir,
        paths::config_dir(args.config_dir),
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
        Err(Failure::Refused(result.detail))
    }
}
