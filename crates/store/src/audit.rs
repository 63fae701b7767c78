//! The append-only audit trail: who did what, when, on which device.
//!
//! Reports' creation, correction and sync-state changes are written by triggers
//! (migration 0004), so no code path can skip them; this module adds what only the
//! app knows (sign-in, a retry asked for by a person, an export) and reads the trail.

use rusqlite::{Connection, params};

use crate::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    Created,
    Corrected,
    Superseded,
    SyncState,
    Retried,
    SignedIn,
    SignedOut,
    SignInFailed,
    Exported,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Created => "created",
            AuditAction::Corrected => "corrected",
            AuditAction::Superseded => "superseded",
            AuditAction::SyncState => "sync_state",
            AuditAction::Retried => "retried",
            AuditAction::SignedIn => "signed_in",
            AuditAction::SignedOut => "signed_out",
            AuditAction::SignInFailed => "sign_in_failed",
            AuditAction::Exported => "exported",
        }
    }
    fn parse(raw: &str) -> Result<Self, StoreError> {
        Ok(match raw {
            "created" => AuditAction::Created,
            "corrected" => AuditAction::Corrected,
            "superseded" => AuditAction::Superseded,
            "sync_state" => AuditAction::SyncState,
            "retried" => AuditAction::Retried,
            "signed_in" => AuditAction::SignedIn,
            "signed_out" => AuditAction::SignedOut,
            "sign_in_failed" => AuditAction::SignInFailed,
            "exported" => AuditAction::Exported,
            other => return Err(StoreError::CorruptRow(format!("audit action '{other}'"))),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub device_id: String,
    pub action: AuditAction,
    pub report_id: Option<String>,
    /// JSON, or none.
    pub detail: Option<String>,
}

pub struct NewAuditEntry<'a> {
    pub at: i64,
    pub actor: &'a str,
    pub device_id: &'a str,
    pub action: AuditAction,
    pub report_id: Option<&'a str>,
    pub detail: Option<&'a str>,
}

pub fn append(conn: &Connection, e: &NewAuditEntry<'_>) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit_log (at, actor, device_id, action, report_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![e.at, e.actor, e.device_id, e.action.as_str(), e.report_id, e.detail])?;
    Ok(())
}

fn entries(
    conn: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(p, |r| {
        Ok((
            AuditEntry {
                seq: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                device_id: r.get(3)?,
                action: AuditAction::Created,
                report_id: r.get(5)?,
                detail: r.get(6)?,
            },
            r.get::<_, String>(4)?,
        ))
    })?;
    rows.map(|row| {
        let (entry, action) = row?;
        Ok(AuditEntry {
            action: AuditAction::parse(&action)?,
            ..entry
        })
    })
    .collect()
}

/// The trail of one report, oldest first.
pub fn for_report(conn: &Connection, report_id: &str) -> Result<Vec<AuditEntry>, StoreError> {
    entries(
        conn,
        "SELECT seq, at, actor, device_id, action, report_id, detail FROM audit_log WHERE report_id = ?1 ORDER BY seq",
        [report_id],
    )
}

/// The latest `limit` entries, newest first (support and review).
pub fn latest(conn: &Connection, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
    entries(
        conn,
        "SELECT seq, at, actor, device_id, action, report_id, detail FROM audit_log ORDER BY seq DESC LIMIT ?1",
        [limit as i64],
    )
}
