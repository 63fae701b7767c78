//! Save on A → painted on B, in two real app instances (two `clinic-desk` processes,
//! each under its own tauri-driver and Xvfb with its own data and XDG directories)
//! syncing with one real `clinic-central` on loopback: from device A's click on
//! *Record* (A's page clock) to the frame after device B's open patient page lists
//! the new report (B's page clock; one system clock). B does nothing: A pushes the
//! report at once, B's `GET /v1/changes` long poll wakes its pull, the pull stores
//! the report and the page reloads on the pull's signal.
//!
//! The baseline, measured on the same saves in the same run: the same click to the
//! frame after A's own page lists the report (the save, IPC and A's repaint, no
//! network). What B adds over it is the push, the wake, the pull and B's repaint.
//! (The ticker fallback is not timed here: its figure is its interval; the store-
//! to-store latency with and without the long poll is `cargo bench -p clinic-sync
//! --bench live`.)
//!
//!   WEBKIT_DISABLE_COMPOSITING_MODE=1 WEBKIT_DISABLE_DMABUF_RENDERER=1 cargo bench --bench live_webview
//!
//! 50 saves (one untimed first); under `cargo test --benches` 5; `BENCH_ROUNDS` sets it.

#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use anyhow::{Result, ensure};
use clinic_desk_core::{DEMO_PIN, DEMO_SEED};
use support::app::{
    Watch, count, demo_clinic, fill_assessment, launch_synced, open_patient, save_at, sign_in,
};
use support::bench::{print_compositing, rounds, summary};

const WATCH: Duration = Duration::from_secs(20);

fn main() -> Result<()> {
    let saves = rounds(50, 5);
    print_compositing();
    let clinic = demo_clinic();
    let patient = clinic.patients[31].id.as_str().to_owned();
    let central_dir = tempfile::tempdir()?;
    let server =
        clinic_central::spawn_for_tests(&central_dir.path().join("central.sqlite3"), false)?;
    server.load_demo("C001", DEMO_SEED)?;
    let url = server.base_url();

    let (driver_a, driver_b) = (support::Driver::start()?, support::Driver::start()?);
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = launch_synced(&driver_a, dir_a.path(), &url, &server.issue_token("C001")?)?;
    let b = launch_synced(&driver_b, dir_b.path(), &url, &server.issue_token("C001")?)?;
    // Patients are seen signed in (the role table): each device's nurse first.
    sign_in(&a, "N001", DEMO_PIN)?;
    open_patient(&a, &patient)?;
    sign_in(&b, "N002", DEMO_PIN)?;
    open_patient(&b, &patient)?;

    // The patient's list says how many records it holds (it draws the latest page of them).
    let mut on_a = Vec::new();
    let mut on_b = Vec::new();
    for round in 0..=saves {
        ensure!(
            count(&a, "[data-testid=report-list]")? == usize::from(round > 0),
            "A's list is shown once it has a record"
        );
        let listed = format!(
            "[data-testid=screen-patients] [data-testid=report-list][data-total=\"{}\"]",
            round + 1
        );
        let watch_a = Watch::arm(&a, &format!("a{round}"), &[(&listed, 1)])?;
        let watch_b = Watch::arm(&b, &format!("b{round}"), &[(&listed, 1)])?;
        fill_assessment(&a, clinic.zone, (round % 11) as u8, 0, None)?;
        let saved = save_at(&a)?;
        let (self_at, other_at) = (watch_a.painted_at(WATCH)?, watch_b.painted_at(WATCH)?);
        if round > 0 {
            on_a.push(self_at - saved);
            on_b.push(other_at - saved);
        }
    }
    summary("save on A -> painted on A (baseline)", &mut on_a);
    summary("save on A -> painted on B's open patient page", &mut on_b);
    Ok(())
}
