// No console window behind the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use clap::Parser as _;

fn main() {
    // Bad flags: clap prints what was wrong and the usage, and exits with status 2.
    let cli = clinic_desk::Cli::parse();
    match cli.command {
        Some(subcommand) => std::process::exit(subcommand.run()),
        None => clinic_desk::run(cli.launch.into()),
    }
}
