//! The one list of the commands the UI may call. The shell expands it into its
//! Tauri commands and their registration; [`typescript`] expands it into the UI's
//! typed callers (`ui/src/lib/commands.ts`) and [`capability`] into the window's
//! permissions (`src-tauri/capabilities/default.json`, which the shell's build
//! script also reads to declare the commands). A test fails while either file is
//! stale; `UPDATE_BINDINGS=1 cargo test -p clinic-desk-core bindings` rewrites them.
//!
//! Each entry: its doc (shown on the TypeScript caller), how it runs, its name and
//! arguments (the UI passes them by these names, camelCased as Tauri expects),
//! its result, and its body over the running [`DeskApp`](crate::DeskApp) `app`:
//! - `blocking fn`: off the async runtime (store work, argon2);
//! - `async fn`: awaited on the runtime (network);
//! - `stream fn`: its one argument is a channel the body receives as
//!   `FnMut(message) -> bool` (false once the window went away); the UI passes a callback.
//!
//! and, before the body, the [`Access`](crate::Access) it needs: the role table
//! (`clinic_domain::roles`) decides who may run it, asked by [`gated!`] before
//! the body runs. A command that returns patient data needs more than `Open`.

/// Calls the macro `$then` with the command list (see the module's doc for its shape).
#[macro_export]
macro_rules! with_commands {
    ($then:ident) => {
        $then! {
            blocking fn app_info() -> $crate::AppInfo = Open |app| app.desk()?.app_info();
            /// ID prefix or name substring; a blank query gives an empty list.
            blocking fn search_patients(query: String) -> $crate::PatientSearch =
                Lookup |app| app.desk()?.search_patients(&query);
            blocking fn get_patient(id: String) -> $crate::PatientDetail =
                Lookup |app| app.desk()?.patient(&id);
            blocking fn list_doctors() -> Vec<$crate::DoctorDto> =
                Schedule |app| app.desk()?.doctors();
            /// `date` is `YYYY-MM-DD` in the clinic's zone, null for the clinic's today.
            blocking fn day_schedule(date: Option<String>, doctor_id: Option<String>) -> $crate::DaySchedule =
                Schedule |app| app.desk()?.day_schedule(date.as_deref(), doctor_id.as_deref());
            /// Saves an assessment locally at once, as the signed-in member; sync delivers it.
            blocking fn record_pain_report(input: $crate::AssessmentInput) -> $crate::PainReportDto =
                RecordPain |app| app.desk()?.record_assessment(&input);
            /// A patient's assessments, newest first, superseded ones included.
            blocking fn patient_reports(patient_id: String) -> Vec<$crate::PainReportDto> =
                ReadPain |app| app.desk()?.patient_reports(&patient_id);
            blocking fn retry_rejected_report(report_id: String) -> $crate::PainReportDto =
                RecordPain |app| app.desk()?.retry_rejected_report(&report_id);
            /// Supersedes a record by a corrected one; the original stays on record, marked.
            blocking fn correct_report(report_id: String, input: $crate::CorrectionInput) -> $crate::PainReportDto =
                RecordPain |app| app.desk()?.correct_report(&report_id, &input);
            /// Settles a conflicting record: corrects its shown current report and resolves the other live ones.
            blocking fn resolve_conflict(report_id: String, input: $crate::CorrectionInput) -> $crate::PainReportDto =
                RecordPain |app| app.desk()?.resolve_conflict(&report_id, &input);
            blocking fn report_history(report_id: String) -> Vec<$crate::AuditEntryDto> =
                ReadPain |app| app.desk()?.report_history(&report_id);
            blocking fn pending_reassessments() -> Vec<$crate::PendingReassessmentDto> =
                ReadPain |app| app.desk()?.pending_reassessments();
            /// The ward pain board now: patients assessed in the clinic's window, most urgent first.
            blocking fn ward_board() -> $crate::WardBoardDto =
                ReadPain |app| app.desk()?.ward_board_now();
            /// Writes a FHIR R4 Bundle (one patient, or all when null) beside the database.
            blocking fn export_fhir(patient_id: Option<String>) -> $crate::ExportDto =
                ReadPain |app| app.desk()?.export_fhir(patient_id.as_deref());
            blocking fn list_staff() -> Vec<$crate::StaffDto> = Open |app| app.desk()?.staff();
            /// Who is signed in; `active` tells Rust the user just did something.
            blocking fn staff_session(active: bool) -> $crate::SessionDto =
                Open |app| app.desk()?.staff_session(active);
            blocking fn sign_in(staff_id: String, pin: String) -> $crate::SessionDto =
                Open |app| app.desk()?.sign_in(&staff_id, &pin);
            /// Refused (`session_held`) while the session is locked: its member's PIN unlocks it first.
            blocking fn sign_out() -> $crate::SessionDto = Open |app| app.desk()?.sign_out();
            /// Locks the session now; the member's PIN unlocks it.
            blocking fn lock_session() -> $crate::SessionDto =
                Open |app| app.desk()?.lock_session();
            blocking fn sync_status() -> $crate::SyncStatusDto =
                Open |app| app.desk()?.sync_status();
            blocking fn sync_now() -> () = Open |app| app.desk()?.sync_now();
            /// Calls `onMessage` now and whenever the sync status changes (pushed by Rust, not polled).
            stream fn subscribe_sync_status(channel: $crate::SyncStatusDto) -> () =
                Open |app| app.subscribe_sync_status(channel);
            blocking fn diagnostics() -> $crate::DiagnosticsDto = Open |app| app.diagnostics();
            /// Never rejects for a network failure: the result says what failed.
            async fn test_connection() -> $crate::ConnectionTestDto =
                Open |app| Ok(app.test_connection().await);
            blocking fn export_support_bundle() -> $crate::SupportBundleDto =
                Open |app| app.export_support_bundle();
            /// `code`: an enrolment code (CDP1-…) or a profile's TOML; checked against the server before saving.
            async fn provision_device(code: String) -> $crate::ProvisionOutcomeDto =
                Open |app| app.provision(&code).await;
        }
    };
}

/// An entry's body behind its access: the role table is asked first
/// ([`DeskApp::authorize`](crate::DeskApp::authorize)), so no command answers
/// what whoever is at the device may not see. The shell expands every body
/// through this.
#[macro_export]
macro_rules! gated {
    ($access:ident, $app:ident, $body:expr) => {{
        $app.authorize($crate::Access::$access)?;
        $body
    }};
}

/// One entry of the list, as the generators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    pub name: &'static str,
    pub kind: &'static str,
    pub doc: Vec<&'static str>,
    /// Rust name and TypeScript type of each argument.
    pub args: Vec<(&'static str, String)>,
    /// TypeScript type of the result (`void` for none).
    pub result: String,
    /// What it needs in the role table (`clinic_domain::roles`).
    pub access: crate::Access,
}

fn ts_type<T: ts_rs::TS + 'static>() -> String {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<()>() {
        "void".to_owned()
    } else {
        T::name(&ts_rs::Config::new())
    }
}

macro_rules! specs {
    ($( $(#[doc = $doc:literal])* $kind:ident fn $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty = $access:ident |$app:ident| $body:expr ; )*) => {
        vec![$( CommandSpec {
            name: stringify!($name),
            kind: stringify!($kind),
            doc: vec![$($doc),*],
            args: vec![$( (stringify!($arg), ts_type::<$ty>()) ),*],
            result: ts_type::<$ret>(),
            access: $crate::Access::$access,
        } ),*]
    };
}

/// Every command, in the list's order.
pub fn commands() -> Vec<CommandSpec> {
    with_commands!(specs)
}

/// `doctor_id` → `doctorId`: how Tauri names an argument on the JavaScript side.
fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The declared types a TypeScript type names (`Array<DoctorDto>` → `DoctorDto`).
fn named_types(ts: &str) -> impl Iterator<Item = &str> {
    ts.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| w.starts_with(|c: char| c.is_ascii_uppercase()) && *w != "Array")
}

const GENERATED: &str = "Generated from the command list in crates/desk/src/ipc.rs by `UPDATE_BINDINGS=1 cargo test -p clinic-desk-core bindings`. Do not edit.";

/// `ui/src/lib/commands.ts`: one typed caller per command, re-exported by `api.ts`;
/// each rejects with a `UiError` (`call` turns every failure into one).
pub fn typescript() -> String {
    let commands = commands();
    let mut types: Vec<&str> = commands
        .iter()
        .flat_map(|c| {
            c.args
                .iter()
                .map(|(_, t)| t.as_str())
                .chain([c.result.as_str()])
        })
        .flat_map(named_types)
        .collect();
    types.sort_unstable();
    types.dedup();
    let mut out = format!(
        "// {GENERATED}\n// Every caller rejects with a `UiError` (see `call` in api.ts).\n\n"
    );
    if commands.iter().any(|c| c.kind == "stream") {
        out.push_str("import { Channel } from '@tauri-apps/api/core';\n");
    }
    out.push_str("import { call } from './api';\n");
    out.push_str(&format!(
        "import type {{ {} }} from './bindings';\n",
        types.join(", ")
    ));
    for c in &commands {
        out.push('\n');
        let doc: Vec<&str> = c.doc.iter().map(|d| d.trim()).collect();
        if !doc.is_empty() {
            out.push_str(&format!("/** {} */\n", doc.join(" ")));
        }
        let function = camel(c.name);
        let (name, result) = (c.name, &c.result);
        if c.kind == "stream" {
            let [(arg, message)] = c.args.as_slice() else {
                panic!("stream command {name} takes exactly one channel");
            };
            out.push_str(&format!(
                "export async function {function}(onMessage: (message: {message}) => void): Promise<void> {{\n  \
                 const {arg} = new Channel<{message}>();\n  \
                 {arg}.onmessage = onMessage;\n  \
                 await call<void>('{name}', {{ {arg} }});\n}}\n",
                arg = camel(arg),
            ));
            continue;
        }
        let params: Vec<String> = c
            .args
            .iter()
            .map(|(a, t)| format!("{}: {t}", camel(a)))
            .collect();
        let names: Vec<String> = c.args.iter().map(|(a, _)| camel(a)).collect();
        let args = if names.is_empty() {
            String::new()
        } else {
            format!(", {{ {} }}", names.join(", "))
        };
        out.push_str(&format!(
            "export function {function}({}): Promise<{result}> {{\n  return call<{result}>('{name}'{args});\n}}\n",
            params.join(", "),
        ));
    }
    out
}

/// `src-tauri/capabilities/default.json`: the main window may call exactly these commands.
/// Written by hand rather than through a JSON map, whose key order depends on
/// serde_json's features in the build.
pub fn capability() -> String {
    let permissions: Vec<String> = commands()
        .iter()
        .map(|c| format!("    \"allow-{}\"", c.name.replace('_', "-")))
        .collect();
    format!(
        "{{\n  \"$schema\": \"../../gen/schemas/desktop-schema.json\",\n  \"identifier\": \"default\",\n  \
         \"description\": \"The main window may call Clinic Desk's own commands and nothing else: no plugins, no shell, no file system. Generated from crates/desk/src/ipc.rs.\",\n  \
         \"windows\": [\"main\"],\n  \"permissions\": [\n{}\n  ]\n}}\n",
        permissions.join(",\n")
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::{ApiError, DeskApp};

    /// Compiles each entry's body against `DeskApp` here, without Tauri, so a
    /// changed method breaks this crate and not only the shell.
    macro_rules! bodies {
        ($( $(#[doc = $doc:literal])* $kind:ident fn $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty = $access:ident |$app:ident| $body:expr ; )*) => {
            $( body!($kind $name ($($arg: $ty),*) -> $ret = |$app| $crate::gated!($access, $app, $body)); )*
        };
    }
    macro_rules! body {
        (blocking $name:ident ($($arg:ident: $ty:ty),*) -> $ret:ty = |$app:ident| $body:expr) => {
            #[allow(dead_code)]
            fn $name($app: &DeskApp, $($arg: $ty),*) -> Result<$ret, ApiError> { $body }
        };
        (async $name:ident ($($arg:ident: $ty:ty),*) -> $ret:ty = |$app:ident| $body:expr) => {
            #[allow(dead_code)]
            async fn $name($app: &DeskApp, $($arg: $ty),*) -> Result<$ret, ApiError> { $body }
        };
        (stream $name:ident ($arg:ident: $ty:ty) -> $ret:ty = |$app:ident| $body:expr) => {
            #[allow(dead_code)]
            fn $name(
                $app: &DeskApp,
                $arg: impl FnMut($ty) -> bool + Send + 'static,
            ) -> Result<$ret, ApiError> { $body }
        };
    }
    with_commands!(bodies);

    #[test]
    fn names_are_unique_and_arguments_camel_cased_as_tauri_does() {
        let commands = commands();
        let mut names: Vec<&str> = commands.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), commands.len());
        assert_eq!(camel("doctor_id"), "doctorId");
        assert_eq!(camel("query"), "query");
        let day = commands.iter().find(|c| c.name == "day_schedule").unwrap();
        assert_eq!(
            day.args,
            [
                ("date", "string | null".to_owned()),
                ("doctor_id", "string | null".to_owned())
            ]
        );
        assert_eq!(
            commands
                .iter()
                .find(|c| c.name == "sync_now")
                .unwrap()
                .result,
            "void"
        );
    }

    /// The shell's build script reads the commands back from the permissions.
    #[test]
    fn the_capability_allows_each_command_and_nothing_else() {
        let v: serde_json::Value = serde_json::from_str(&capability()).unwrap();
        let read_back: Vec<String> = v["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let p = p.as_str().unwrap();
                p.strip_prefix("allow-").unwrap().replace('-', "_")
            })
            .collect();
        let names: Vec<&str> = commands().iter().map(|c| c.name).collect();
        assert_eq!(read_back, names);
        assert_eq!(v["windows"], serde_json::json!(["main"]));
    }

    fn check_generated(relative: &str, fresh: &str) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            std::fs::write(&path, fresh).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "{relative} is stale: run `UPDATE_BINDINGS=1 cargo test -p clinic-desk-core bindings` and commit it"
        );
    }

    #[test]
    fn command_bindings_in_the_ui_and_the_capability_are_current() {
        check_generated("../../ui/src/lib/commands.ts", &typescript());
        check_generated("../../src-tauri/capabilities/default.json", &capability());
    }
}
