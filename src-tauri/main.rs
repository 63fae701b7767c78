// No console window behind the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(status) = clinic_desk::run_subcommand(&args) {
        std::process::exit(status);
    }
    let options = match clinic_desk::LaunchOptions::from_args(args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("clinic-desk: {message}\n\n{}", clinic_desk::USAGE);
            std::process::exit(2);
        }
    };
    clinic_desk::run(options);
}
