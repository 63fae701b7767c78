fn main() {
    // Capabilities live under src-tauri/ while tauri.conf.json sits at the root.
    println!("cargo:rerun-if-changed=src-tauri/capabilities");
    let commands = &[
        "app_info",
        "search_patients",
        "get_patient",
        "list_doctors",
        "day_schedule",
        "record_pain_report",
        "patient_reports",
        "retry_rejected_report",
        "correct_report",
        "report_history",
        "pending_reassessments",
        "export_fhir",
        "list_staff",
        "staff_session",
        "sign_in",
        "sign_out",
        "sync_status",
        "sync_now",
        "subscribe_sync_status",
        "diagnostics",
        "test_connection",
        "export_support_bundle",
        "provision_device",
    ];
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .capabilities_path_pattern("./src-tauri/capabilities/*.json")
            // Declaring our commands makes Tauri generate one permission per command,
            // so the capability can allow exactly these and nothing else.
            .app_manifest(tauri_build::AppManifest::new().commands(commands)),
    )
    .expect("tauri-build failed");
}
