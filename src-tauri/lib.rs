//! The Tauri shell: parses the command line, starts logging, takes the instance
//! lock, hands `clinic_desk_core::DeskApp` the runtime and registers the commands.
//! Everything it calls lives in Tauri-free crates (see ARCHITECTURE.md).

mod commands;
mod launch;
mod provision;
mod single_instance;
mod webview_env;

use clinic_desk_core::{DeskApp, StartOptions};
use tauri::Manager;

pub use clinic_install::paths::DATABASE_FILE;
pub use launch::{Cli, DATA_DIR_ENV, LaunchOptions};
pub use provision::Subcommand;

pub fn run(options: LaunchOptions) {
    // First, while this is the only thread: the webview processes inherit it.
    let webview_settings = webview_env::apply();
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
    tracing::debug!(settings = ?webview_settings, "webview environment");
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
    let options = StartOptions {
        setup,
        database: dir.join(DATABASE_FILE),
        demo_seed: options.demo_seed,
        app_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let builder = tauri::Builder::default().setup(move |app| {
        let runtime = tauri::async_runtime::handle().inner().clone();
        app.manage(DeskApp::start(options, runtime));
        single_instance::listen_for_second_launches(app.handle().clone(), &dir);
        Ok(())
    });
    commands::register(builder)
        .run(tauri::generate_context!())
        .expect("the Tauri runtime failed to start");
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
