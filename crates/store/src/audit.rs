//! The append-only audit trail: who did what, when, on which device.
//!
//! Reports' creation, correction, receipt and sync-state changes are written by
//! triggers (migrations 0004 and 0006), so no code path can skip them; this module adds what only the
//! app knows (sign-in, a retry asked for by a person, an export) and reads the trail.

use std::borrow::Cow;

use rusqlite::{Connection, params};

use crate::StoreError;
use crate::column::{self, TextForm};

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
    /// A report recorded on another device, pulled from the server.
    Received,
    /// A record left with more than one live report (concurrent corrections).
    Conflicting,
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
            AuditAction::Received => "received",
            AuditAction::Conflicting => "conflicting",
        }
    }
}

impl TextForm for AuditAction {
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.as_str())
    }
    fn from_text(raw: &str) -> Result<Self, String> {
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
            "received" => AuditAction::Received,
            "conflicting" => AuditAction::Conflicting,
            other => return Err(format!("audit action '{other}'")),
        })
    }
}

column::sql_text!(AuditAction);

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
    .execute(params![e.at, e.actor, e.device_id, e.action, e.report_id, e.detail])?;
    Ok(())
}

/// The trail of one report, oldest first.
pub fn for_report(conn: &Connection, report_id: &str) -> Result<Vec<AuditEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at, actor, device_id, action, report_id, detail FROM audit_log WHERE report_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([report_id], |r| {
        Ok(AuditEntry {
            seq: r.get("seq")?,
            at: r.get("at")?,
            actor: r.get("actor")?,
            device_id: r.get("device_id")?,
            action: r.get("action")?,
            report_id: r.get("report_id")?,
            detail: r.get("detail")?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
