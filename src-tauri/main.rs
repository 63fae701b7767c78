// No console window behind the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    let options = match clinic_desk::LaunchOptions::from_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("clinic-desk: {message}\n\n{}", clinic_desk::USAGE);
            std::process::exit(2);
        }
    };
    clinic_desk::run(options);
}
