//! The Tauri shell: starts logging, opens the local store, registers the commands.
//! Everything it calls lives in Tauri-free crates (see ARCHITECTURE.md).

mod commands;
mod install_commands;
mod launch;
mod provision;
mod single_instance;

use std::path::PathBuf;

use clinic_desk_core::Desk;
use tauri::Manager;

pub use launch::{DATA_DIR_ENV, LaunchOptions, SERVER_URL_ENV, TOKEN_ENV, USAGE};
pub use provision::run_subcommand;

/// File name of the local database inside the data directory.
pub const DATABASE_FILE: &str = "clinic-desk.sqlite3";

pub fn run(options: LaunchOptions) {
    // The same directory Tauri's app_data_dir gives, known before Tauri starts so
    // the instance lock is taken before anything opens the database.
    let Some(dir) = options
        .data_dir
        .clone()
        .or_else(clinic_install::paths::default_data_dir)
    else {
        eprintln!("clinic-desk: no data directory (no home directory?): pass --data-dir");
        std::process::exit(2);
    };
    let setup = clinic_install::Setup::load(
        options.profile_layer(),
        dir.clone(),
        clinic_install::paths::config_dir(options.config_dir.clone()),
    );
    init_logging(&setup.log_dir);
    // Held until the process ends (`run` below never returns while the app runs).
    let _lock = match clinic_install::instance::acquire(&dir) {
        Ok(Some(lock)) => Some(lock),
        Ok(None) => {
            let heard = single_instance::ask_running_instance_to_focus(&dir);
            tracing::info!(
                heard,
                "Clinic Desk is already running on this data directory; not opening it twice"
            );
            eprintln!(
                "clinic-desk: already running on {}{}",
                dir.display(),
                if heard {
                    "; brought its window forward"
                } else {
                    ""
                }
            );
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, dir = %dir.display(), "cannot create the data directory");
            None
        }
    };
    for problem in &setup.problems {
        tracing::warn!(problem = %problem, "clinic profile");
    }
    tauri::Builder::default()
        .setup(move |app| {
            let mut setup = setup;
            let desk = open_desk(dir.join(DATABASE_FILE), options.demo_seed);
            if let Ok(desk) = &desk {
                let profile = setup.profile();
                match desk.database().write(|c| clinic_install::provision::bind_store(c, &profile)) {
                    Ok(reset) => {
                        if reset {
                            tracing::info!("the server changed: its data will be pulled from the start");
                        }
                        start_sync(desk, &profile);
                    }
                    Err(e) => {
                        let e = clinic_install::InstallError::from(e);
                        tracing::error!(error = %e, "the clinic profile does not fit this device's data: not syncing");
                        setup.problems.push(e.to_string());
                    }
                }
                if !setup.is_provisioned() {
                    tracing::info!("not provisioned: working offline on local data");
                }
            }
            single_instance::listen_for_second_launches(app.handle().clone(), &dir);
            app.manage(commands::DeskState(desk));
            app.manage(install_commands::SetupState(std::sync::RwLock::new(setup)));
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::search_patients,
            commands::get_patient,
            commands::list_doctors,
            commands::day_schedule,
            commands::record_pain_report,
            commands::patient_reports,
            commands::retry_rejected_report,
            commands::correct_report,
            commands::report_history,
            commands::pending_reassessments,
            commands::export_fhir,
            commands::list_staff,
            commands::staff_session,
            commands::sign_in,
            commands::sign_out,
            commands::sync_status,
            commands::sync_now,
            commands::subscribe_sync_status,
            install_commands::diagnostics,
            install_commands::test_connection,
            install_commands::export_support_bundle,
            install_commands::provision_device,
        ])
        .run(tauri::generate_context!())
        .expect("the Tauri runtime failed to start");
}

fn open_desk(path: PathBuf, demo_seed: Option<u64>) -> Result<Desk, clinic_desk_core::ApiError> {
    let desk = Desk::open(&path)
        .inspect_err(|e| tracing::error!(error = %e, "cannot open the local store"))?;
    tracing::info!(path = %path.display(), "local store open");
    if let Some(seed) = demo_seed {
        if desk.load_demo(seed, None)? {
            tracing::info!(seed, "loaded the demo clinic");
        }
    }
    Ok(desk)
}

/// Starts the background sync task when a server is configured; without one the
/// app works offline and reports wait in the outbox.
pub(crate) fn start_sync(desk: &Desk, profile: &clinic_install::Profile) {
    let Some(url) = profile.server.url.clone() else {
        tracing::info!("no central server configured: reports stay queued on this device");
        return;
    };
    let mut config = clinic_sync::SyncConfig::new(url.clone(), profile.server.token.clone());
    config.interval = profile.sync_interval();
    config.probe_interval = profile.probe_interval();
    // A new app version may accept pulled records the old one set aside.
    config.app_version = env!("CARGO_PKG_VERSION").to_owned();
    match clinic_sync::SyncEngine::new(desk.shared_database(), config) {
        Ok(engine) => {
            let handle = engine.spawn(tauri::async_runtime::handle().inner());
            desk.attach_sync(handle);
            // The URL is configuration, not a secret; the token is never logged.
            tracing::info!(server = %url, "sync started");
        }
        Err(e) => tracing::error!(error = %e, "cannot start sync"),
    }
}

/// JSON lines to stderr and to size-capped files in `log_dir` (see
/// `clinic_install::logfile`); `CLINIC_DESK_LOG` sets the filter.
fn init_logging(log_dir: &std::path::Path) {
    use clinic_install::logfile::{DEFAULT_KEEP, DEFAULT_MAX_BYTES, RotatingFile};
    use tracing_subscriber::fmt::writer::MakeWriterExt as _;
    use tracing_subscriber::{EnvFilter, fmt};
    let filter =
        EnvFilter::try_from_env("CLINIC_DESK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    match RotatingFile::open(log_dir, DEFAULT_MAX_BYTES, DEFAULT_KEEP) {
        Ok(file) => {
            let writer = std::io::stderr.and(std::sync::Mutex::new(file));
            let _ = fmt()
                .json()
                .with_env_filter(filter)
                .with_writer(writer)
                .try_init();
        }
        Err(e) => {
            let _ = fmt()
                .json()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .try_init();
            tracing::warn!(error = %e, dir = %log_dir.display(), "cannot write log files; logging to stderr only");
        }
    }
}
