//! Declares the app's commands to Tauri, which generates one permission per
//! command, so the capability can allow exactly these and nothing else. The
//! commands are read from that capability, which `clinic_desk_core::ipc`
//! generates from the command list (a test there fails while it is stale).

const CAPABILITY: &str = "src-tauri/capabilities/default.json";

fn main() {
    // Capabilities live under src-tauri/ while tauri.conf.json sits at the root.
    println!("cargo:rerun-if-changed=src-tauri/capabilities");
    let text = std::fs::read_to_string(CAPABILITY).expect("read the capability");
    let capability: serde_json::Value = serde_json::from_str(&text).expect("capability JSON");
    // Tauri keeps the names for the whole build; a build script may leak them.
    let commands: &'static [&'static str] = capability["permissions"]
        .as_array()
        .expect("the capability lists permissions")
        .iter()
        .map(|p| {
            let p = p.as_str().expect("a permission is a string");
            let command = p
                .strip_prefix("allow-")
                .unwrap_or_else(|| panic!("only allow-<command> permissions, not {p}"));
            &*command.replace('-', "_").leak()
        })
        .collect::<Vec<_>>()
        .leak();
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .capabilities_path_pattern("./src-tauri/capabilities/*.json")
            .app_manifest(tauri_build::AppManifest::new().commands(commands)),
    )
    .expect("tauri-build failed");
}
