//! Per-device clinic settings (which clinic, its zone), as key/value rows.

use clinic_domain::ClinicZone;
use rusqlite::{Connection, OptionalExtension};

use crate::StoreError;

pub const CLINIC_ID: &str = "clinic_id";
/// This device's ID, made once at first start; it marks what the device recorded.
pub const DEVICE_ID: &str = "device_id";
pub const CLINIC_NAME: &str = "clinic_name";
pub const TIME_ZONE: &str = "time_zone";
/// Minutes without a successful sync before the schedule warns it may be out of date.
pub const SCHEDULE_STALE_AFTER_MINUTES: &str = "schedule_stale_after_minutes";
/// Minutes after an assessment with an intervention when the reassessment falls due.
pub const REASSESS_INTERVAL_MINUTES: &str = "reassess_interval_minutes";
/// How far back (minutes) a nurse may date an assessment she records late.
pub const BACKDATE_WINDOW_MINUTES: &str = "backdate_window_minutes";
/// Minutes without activity after which the signed-in staff member must re-enter the PIN.
pub const LOCK_AFTER_MINUTES: &str = "lock_after_minutes";
/// Hours back the ward pain board looks for assessments (`clinic_domain::ward`'s default unless set).
pub const WARD_BOARD_HOURS: &str = "ward_board_hours";
/// "true" lets nobody signed in see the schedule board (a front-desk PC keeps it
/// up); unset or anything else keeps it behind sign-in (`clinic_domain::roles`).
pub const OPEN_SCHEDULE_WITHOUT_SIGN_IN: &str = "open_schedule_without_sign_in";
/// The clinic's UI language ("zh-CN" or "en"); the user's own choice still wins.
pub const LANGUAGE: &str = "language";

pub fn get(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT value FROM clinic_settings WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn set(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO clinic_settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

/// Whether a yes/no setting's value says yes ("true", "1", "yes", "on").
pub fn is_on(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "on"
    )
}

/// The clinic's zone, or Shanghai's until the clinic's data says otherwise.
pub fn clinic_zone(conn: &Connection) -> Result<ClinicZone, StoreError> {
    match get(conn, TIME_ZONE)? {
        Some(name) => ClinicZone::parse(&name).map_err(|e| StoreError::CorruptRow(e.to_string())),
        None => Ok(ClinicZone::default()),
    }
}

/// The clinic's reassessment interval (minutes), or the domain's default when unset
/// or not a positive number. A received intervention's due time is fixed with it
/// when the report is pulled (`pull::apply_reports`).
pub fn reassess_interval_minutes(conn: &Connection) -> Result<u32, StoreError> {
    Ok(get(conn, REASSESS_INTERVAL_MINUTES)?
        .and_then(|v| v.trim().parse().ok())
        .filter(|m| *m > 0)
        .unwrap_or(clinic_domain::assessment::DEFAULT_REASSESS_INTERVAL_MINUTES))
}
