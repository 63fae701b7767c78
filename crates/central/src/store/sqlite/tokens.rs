//! Bearer tokens and enrolment codes: only each secret's SHA-256 is stored; a
//! revoked token and a spent code stay as rows.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::super::common::{corrupt, now_unix};
use super::super::{Redeemed, StoreError, TokenInfo, TokenRecord};
use crate::auth::{EnrolmentCodeRecord, Scope, TokenAuth};

fn scope_from_db(raw: &str) -> Result<Scope, StoreError> {
    Scope::parse(raw).ok_or_else(|| corrupt(format!("unknown token scope '{raw}'")))
}

pub(super) fn insert(conn: &Connection, token: &TokenRecord) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO api_tokens (id, clinic_id, token_sha256, label, created_at, scope)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            token.id,
            token.clinic_id,
            token.sha256.as_slice(),
            token.label,
            now_unix(),
            token.scope.as_str()
        ],
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

pub(super) fn for_hash(
    conn: &Connection,
    sha256: &[u8; 32],
) -> Result<Option<TokenAuth>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT id, clinic_id, scope FROM api_tokens
             WHERE token_sha256 = ?1 AND revoked_at IS NULL",
        )?
        .query_row([sha256.as_slice()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .optional()?;
    row.map(|(token_id, clinic_id, scope)| {
        Ok(TokenAuth {
            token_id,
            clinic_id,
            scope: scope_from_db(&scope)?,
        })
    })
    .transpose()
}

pub(super) fn touch(
    conn: &Connection,
    token_id: &str,
    at: i64,
    address: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE api_tokens SET last_seen_at = ?2, last_seen_address = ?3 WHERE id = ?1",
    )?
    .execute(params![token_id, at, address])?;
    Ok(())
}

pub(super) fn list(conn: &Connection, clinic_id: &str) -> Result<Vec<TokenInfo>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, clinic_id, scope, label, created_at, last_seen_at, last_seen_address, revoked_at
         FROM api_tokens WHERE clinic_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([clinic_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, Option<i64>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<i64>>(7)?,
        ))
    })?;
    rows.map(|row| {
        let (id, clinic_id, scope, label, created_at, last_seen_at, last_seen_address, revoked_at) =
            row?;
        Ok(TokenInfo {
            id,
            clinic_id,
            scope: scope_from_db(&scope)?,
            label,
            created_at,
            last_seen_at,
            last_seen_address,
            revoked_at,
        })
    })
    .collect()
}

pub(super) fn insert_code(conn: &Connection, code: &EnrolmentCodeRecord) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO enrolment_codes (id, clinic_id, code_sha256, label, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            code.id,
            code.clinic_id,
            code.sha256.as_slice(),
            code.label,
            now_unix(),
            code.expires_at
        ],
    )?;
    Ok(())
}

pub(super) fn redeem(
    conn: &mut Connection,
    sha256: &[u8; 32],
    now: i64,
    token: &TokenRecord,
) -> Result<Redeemed, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = tx
        .query_row(
            "SELECT id, clinic_id, label, expires_at, used_at FROM enrolment_codes
             WHERE code_sha256 = ?1",
            [sha256.as_slice()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((code_id, clinic_id, label, expires_at, used_at)) = found else {
        return Ok(Redeemed::Unknown);
    };
    let verdict = if used_at.is_some() {
        Redeemed::Used
    } else if now >= expires_at {
        Redeemed::Expired
    } else if clinic_id != token.clinic_id {
        Redeemed::OtherClinic
    } else {
        let label = label.or_else(|| token.label.clone());
        insert(
            &tx,
            &TokenRecord {
                label: label.clone(),
                ..token.clone()
            },
        )?;
        tx.execute(
            "UPDATE enrolment_codes SET used_at = ?2, token_id = ?3 WHERE id = ?1",
            params![code_id, now, token.id],
        )?;
        Redeemed::Enrolled { label }
    };
    tx.commit()?;
    Ok(verdict)
}
