//! The role table (`clinic_domain::roles`) on every command, through `DeskApp` as
//! the shell runs them: for each of nobody signed in, a locked session, a clerk, a
//! nurse and a doctor, every command of the list in `ipc.rs` is called with sample
//! arguments, and is refused exactly when the table says so. A command without
//! sample arguments here fails the test, and so does a command that needs nothing
//! (`Open`) without being on the reviewed list of commands that return no patient
//! data.

use std::collections::BTreeSet;
use std::path::Path;

use clinic_desk_core::{Access, ApiError, DEMO_PIN, DeskApp, ErrorCode, StartOptions, ipc};
use clinic_domain::StaffRole;
use clinic_domain::roles::{self, Actor, ClinicAccess};
use clinic_install::{Profile, Setup};
use clinic_store::settings;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::runtime::Runtime;

/// Sample arguments of every command (by the UI's names), valid enough that an
/// allowed call gets past its access.
fn sample(name: &str) -> Option<Value> {
    let form = json!({"scale": "nrs", "score": 3, "assessedAt": null, "bodySite": null,
        "activity": null, "note": null, "intervention": null});
    let mut assessment = form.clone();
    assessment["patientId"] = json!("P0000001");
    assessment["followsUp"] = Value::Null;
    let mut correction = form;
    correction["reason"] = json!("录入错误");
    let report = "0190f0e0-0000-7000-8000-000000000000";
    Some(match name {
        "app_info"
        | "list_doctors"
        | "pending_reassessments"
        | "ward_board"
        | "list_staff"
        | "sign_out"
        | "lock_session"
        | "sync_status"
        | "sync_now"
        | "subscribe_sync_status"
        | "diagnostics"
        | "test_connection"
        | "export_support_bundle" => json!({}),
        "search_patients" => json!({"query": "P000000"}),
        "get_patient" => json!({"id": "P0000001"}),
        "day_schedule" => json!({"date": null, "doctorId": null}),
        "record_pain_report" => json!({ "input": assessment }),
        "patient_reports" => json!({"patientId": "P0000001"}),
        "retry_rejected_report" | "report_history" => json!({ "reportId": report }),
        "correct_report" | "resolve_conflict" => {
            json!({ "reportId": report, "input": correction })
        }
        "export_fhir" => json!({"patientId": "P0000001"}),
        "staff_session" => json!({"active": false}),
        "sign_in" => json!({"staffId": "X999", "pin": "000000"}),
        "provision_device" => json!({"code": ""}),
        _ => return None,
    })
}

/// The commands that need nobody signed in, reviewed: none returns patient data.
const OPEN: &[&str] = &[
    "app_info",
    "list_staff",
    "staff_session",
    "sign_in",
    "sign_out",
    "lock_session",
    "sync_status",
    "sync_now",
    "subscribe_sync_status",
    "diagnostics",
    "test_connection",
    "export_support_bundle",
    "provision_device",
];

/// Called last, in this order: they change who is signed in.
const SESSION_CHANGING: [&str; 3] = ["sign_in", "sign_out", "lock_session"];

fn arg<T: DeserializeOwned>(args: &Value, name: &str) -> T {
    let mut camel = String::new();
    let mut upper = false;
    for c in name.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                camel.extend(c.to_uppercase());
                upper = false;
            }
            c => camel.push(c),
        }
    }
    let value = args.get(&camel).cloned().unwrap_or(Value::Null);
    serde_json::from_value(value).unwrap_or_else(|e| panic!("sample argument {camel}: {e}"))
}

macro_rules! call_one {
    (blocking $rt:ident $app:ident $args:ident ($($arg:ident: $ty:ty),*) $access:ident $body:expr) => {{
        $( let $arg: $ty = arg($args, stringify!($arg)); )*
        let run = || -> Result<_, ApiError> { clinic_desk_core::gated!($access, $app, $body) };
        run().map(|_| ())
    }};
    (async $rt:ident $app:ident $args:ident ($($arg:ident: $ty:ty),*) $access:ident $body:expr) => {{
        $( let $arg: $ty = arg($args, stringify!($arg)); )*
        $rt.block_on(async {
            let run = async { clinic_desk_core::gated!($access, $app, $body) };
            let result: Result<_, ApiError> = run.await;
            result.map(|_| ())
        })
    }};
    (stream $rt:ident $app:ident $args:ident ($arg:ident: $ty:ty) $access:ident $body:expr) => {{
        let $arg = |_: $ty| false;
        let run = || -> Result<_, ApiError> { clinic_desk_core::gated!($access, $app, $body) };
        run().map(|_| ())
    }};
}

/// `call(rt, app, name, args)`: runs command `name` as the shell does (its
/// access first), `None` for a name not on the list.
macro_rules! dispatch {
    ($( $(#[doc = $doc:literal])* $kind:ident fn $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty = $access:ident |$app:ident| $body:expr ; )*) => {
        fn call(rt: &Runtime, app: &DeskApp, name: &str, args: &Value) -> Option<Result<(), ApiError>> {
            $(
                if name == stringify!($name) {
                    let $app = app;
                    return Some(call_one!($kind rt $app args ($($arg: $ty),*) $access $body));
                }
            )*
            None
        }
    };
}

clinic_desk_core::with_commands!(dispatch);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    Locked,
    Staff(StaffRole, &'static str),
}

fn start(rt: &Runtime, dir: &Path) -> DeskApp {
    let setup = Setup::load(Profile::default(), dir.to_owned(), Some(dir.join("config")));
    DeskApp::start(
        StartOptions {
            setup,
            database: dir.join("desk.sqlite3"),
            demo_seed: Some(clinic_desk_core::DEMO_SEED),
            app_version: "9.9.9-test".into(),
        },
        rt.handle().clone(),
    )
}

fn become_(app: &DeskApp, who: Who) {
    let desk = app.desk().unwrap();
    match who {
        Who::Nobody => {
            // A locked session left from before: its member unlocks it and signs out.
            if desk.sign_out().is_err() {
                desk.sign_in("N001", DEMO_PIN).unwrap();
                desk.sign_out().unwrap();
            }
        }
        Who::Locked => {
            become_(app, Who::Nobody);
            desk.sign_in("N001", DEMO_PIN).unwrap();
            desk.lock_session().unwrap();
        }
        Who::Staff(_, id) => {
            become_(app, Who::Nobody);
            desk.sign_in(id, DEMO_PIN).unwrap();
        }
    }
}

fn walk(rt: &Runtime, app: &DeskApp, who: Who, clinic: ClinicAccess) {
    let actor = match who {
        Who::Nobody | Who::Locked => Actor::Nobody,
        Who::Staff(role, _) => Actor::Staff(role),
    };
    let mut commands = ipc::commands();
    commands.sort_by_key(|c| SESSION_CHANGING.iter().position(|n| *n == c.name));
    for c in &commands {
        let args = sample(c.name)
            .unwrap_or_else(|| panic!("{}: no sample arguments in this table", c.name));
        let result = call(rt, app, c.name, &args).expect("on the list");
        let code = result.as_ref().err().map(|e| e.code);
        if roles::may(actor, c.access, clinic) {
            assert!(
                !matches!(
                    code,
                    Some(
                        ErrorCode::NotSignedIn | ErrorCode::SessionLocked | ErrorCode::NotPermitted
                    )
                ),
                "{who:?} may {} ({:?}) but got {result:?}",
                c.name,
                c.access
            );
        } else {
            let expected = match who {
                Who::Nobody => ErrorCode::NotSignedIn,
                Who::Locked => ErrorCode::SessionLocked,
                Who::Staff(..) => ErrorCode::NotPermitted,
            };
            assert_eq!(
                code,
                Some(expected),
                "{who:?} may not {}: {result:?}",
                c.name
            );
        }
    }
}

#[test]
fn every_command_for_every_role_follows_the_role_table() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = start(&rt, dir.path());

    let open: BTreeSet<&str> = ipc::commands()
        .iter()
        .filter(|c| c.access == Access::Open)
        .map(|c| c.name)
        .collect();
    assert_eq!(
        open,
        OPEN.iter().copied().collect(),
        "a command that needs nobody signed in returns no patient data: review it, then list it"
    );

    for who in [
        Who::Nobody,
        Who::Locked,
        Who::Staff(StaffRole::Clerk, "C001"),
        Who::Staff(StaffRole::Nurse, "N001"),
        Who::Staff(StaffRole::Doctor, "D001"),
    ] {
        become_(&app, who);
        walk(&rt, &app, who, ClinicAccess::default());
    }

    // A front-desk PC that keeps the schedule open: nobody (and a locked
    // session) sees the schedule, and still nothing else.
    app.desk()
        .unwrap()
        .database()
        .write(|c| settings::set(c, settings::OPEN_SCHEDULE_WITHOUT_SIGN_IN, "true"))
        .unwrap();
    let open_schedule = ClinicAccess {
        open_schedule_without_sign_in: true,
    };
    for who in [Who::Nobody, Who::Locked] {
        become_(&app, who);
        walk(&rt, &app, who, open_schedule);
    }
    become_(&app, Who::Nobody);
    let desk = app.desk().unwrap();
    assert!(desk.day_schedule(None, None).is_ok());
    assert_eq!(
        desk.authorize(Access::Lookup).unwrap_err().code,
        ErrorCode::NotSignedIn
    );
    assert_eq!(
        desk.staff_session(false).unwrap().allowed,
        [Access::Open, Access::Schedule]
    );
}
