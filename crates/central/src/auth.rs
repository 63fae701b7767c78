//! Per-clinic bearer tokens. A token is 256 random bits; the server keeps only
//! its SHA-256, so a copy of the database does not let anyone in.

use sha2::{Digest, Sha256};

use crate::store::{CentralStore, StoreError, TokenRecord};

const TOKEN_PREFIX: &str = "cct_";

/// A freshly issued token: `secret` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub id: String,
    pub clinic_id: String,
    pub secret: String,
}

pub fn token_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn random_hex(bytes: usize) -> Result<String, StoreError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
    Ok(hex::encode(buf))
}

pub fn issue_token(
    store: &dyn CentralStore,
    clinic_id: &str,
    label: Option<&str>,
) -> Result<IssuedToken, StoreError> {
    if store.clinic_zone(clinic_id)?.is_none() {
        return Err(StoreError::UnknownClinic(clinic_id.to_owned()));
    }
    let secret = format!("{TOKEN_PREFIX}{}", random_hex(32)?);
    let id = format!("tok_{}", random_hex(8)?);
    store.insert_token(&TokenRecord {
        id: id.clone(),
        clinic_id: clinic_id.to_owned(),
        sha256: token_hash(&secret),
        label: label.map(str::to_owned),
    })?;
    Ok(IssuedToken {
        id,
        clinic_id: clinic_id.to_owned(),
        secret,
    })
}

/// The token from an `Authorization` header value, if it is a well-formed bearer.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
