//! The clinic's staff as this device knows them (pulled, or from the demo), for
//! the sign-in picker and for naming who recorded what.

use clinic_domain::StaffRole;
use rusqlite::{Connection, OptionalExtension};

use crate::StoreError;
use crate::column::Text;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffRow {
    pub id: String,
    pub name: String,
    pub role: StaffRole,
    pub department: String,
    pub active: bool,
    /// The argon2id PHC string of the PIN; without one the member cannot sign in here.
    pub pin_verifier: Option<String>,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StaffRow> {
    Ok(StaffRow {
        id: r.get("id")?,
        name: r.get("name")?,
        role: r.get::<_, Text<StaffRole>>("role")?.0,
        department: r.get("department")?,
        active: r.get("active")?,
        pin_verifier: r.get("pin_verifier")?,
    })
}

/// Everyone who may sign in: active, nurses first (it is their device), then the
/// front desk's clerks, then doctors, each by department and name.
pub fn active(conn: &Connection) -> Result<Vec<StaffRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, role, department, active, pin_verifier FROM staff
         WHERE active = 1
         ORDER BY CASE role WHEN 'nurse' THEN 0 WHEN 'clerk' THEN 1 ELSE 2 END,
             department, name, id",
    )?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<StaffRow>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, name, role, department, active, pin_verifier FROM staff WHERE id = ?1",
        )?
        .query_row([id], row)
        .optional()?)
}

/// Demo only: the demo clinic's staff all share one PIN (real verifiers come from the server).
pub fn set_pin_verifier_where_missing(
    conn: &Connection,
    verifier: &str,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE staff SET pin_verifier = ?1 WHERE pin_verifier IS NULL",
        [verifier],
    )?)
}
