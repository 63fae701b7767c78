//! The Tauri shell: starts logging, opens the local store, registers the commands.
//! Everything it calls lives in Tauri-free crates (see ARCHITECTURE.md).

mod commands;
mod launch;

use std::path::PathBuf;

use clinic_desk_core::Desk;
use tauri::Manager;

pub use launch::{DATA_DIR_ENV, LaunchOptions, SERVER_URL_ENV, TOKEN_ENV, USAGE};

/// File name of the local database inside the data directory.
pub const DATABASE_FILE: &str = "clinic-desk.sqlite3";

pub fn run(options: LaunchOptions) {
    init_logging();
    tauri::Builder::default()
        .setup(move |app| {
            let dir = match &options.data_dir {
                Some(dir) => dir.clone(),
                None => app.path().app_data_dir()?,
            };
            let desk = open_desk(dir.join(DATABASE_FILE), options.demo_seed);
            if let Ok(desk) = &desk {
                start_sync(desk, &options);
            }
            app.manage(commands::DeskState(desk));
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
        ])
        .run(tauri::generate_context!())
        .expect("the Tauri runtime failed to start");
}

fn open_desk(path: PathBuf, demo_seed: Option<u64>) -> Result<Desk, clinic_desk_core::ApiError> {
    let desk = Desk::open(&path).inspect_err(|e| tracing::error!(error = %e, "cannot open the local store"))?;
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
fn start_sync(desk: &Desk, options: &LaunchOptions) {
    let Some(url) = options.server_url.clone() else {
        tracing::info!("no central server configured: reports stay queued on this device");
        return;
    };
    let config = clinic_sync::SyncConfig::new(url, options.token.clone());
    match clinic_sync::SyncEngine::new(desk.shared_database(), config) {
        Ok(engine) => {
            let handle = engine.spawn(tauri::async_runtime::handle().inner());
            desk.attach_sync(handle);
            // The URL is configuration, not a secret; the token is never logged.
            tracing::info!(server = %options.server_url.as_deref().unwrap_or_default(), "sync started");
        }
        Err(e) => tracing::error!(error = %e, "cannot start sync"),
    }
}

fn init_logging() {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter = EnvFilter::try_from_env("CLINIC_DESK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = fmt().json().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
