//! Bearer tokens: only each secret's SHA-256 is stored; a revoked token stays as a row.

use rusqlite::{Connection, OptionalExtension, params};

use super::super::common::now_unix;
use super::super::{StoreError, TokenRecord};

pub(super) fn insert(conn: &Connection, token: &TokenRecord) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO api_tokens (id, clinic_id, token_sha256, label, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![token.id, token.clinic_id, token.sha256.as_slice(), token.label, now_unix()],
    )?;
    Ok(())
}

pub(super) fn revoke(conn: &Connection, token_id: &str) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![token_id, now_unix()],
    )?;
    Ok(n == 1)
}

pub(super) fn clinic_for(
    conn: &Connection,
    sha256: &[u8; 32],
) -> Result<Option<String>, StoreError> {
    let clinic = conn
        .prepare_cached(
            "SELECT clinic_id FROM api_tokens WHERE token_sha256 = ?1 AND revoked_at IS NULL",
        )?
        .query_row([sha256.as_slice()], |r| r.get(0))
        .optional()?;
    Ok(clinic)
}
