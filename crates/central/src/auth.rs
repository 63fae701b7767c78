//! Per-clinic bearer tokens with a scope, the one table of which scope each route
//! needs, and one-time enrolment codes a device trades for its own token.
//!
//! A token is 256 random bits and an enrolment code 80; the server keeps only
//! their SHA-256, so a copy of the database lets no one in.
//!
//! - **device**: push reports (single and batch), read the clinic's feeds, the
//!   patient summary and `/v1/changes`. What a ward PC needs, and no more: it
//!   cannot change a patient, an appointment or a colleague's PIN.
//! - **admin**: also upsert and delete patients, staff and appointments. For the
//!   hospital's systems and IT; never given to a device. Every token issued before
//!   scopes existed is an admin token (migration `0004`/`postgres/0005`).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::http::Method;
use clinic_protocol::paths;
use sha2::{Digest, Sha256};

use crate::store::{CentralStore, StoreError, TokenRecord};

const TOKEN_PREFIX: &str = "cct_";

/// What a token may do. Ordered: a scope allows what every lower one does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Device,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::Device, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Device => "device",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// True when a token of this scope may call a route that needs `needed`.
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token: `/healthz`, `/metrics`, `POST /v1/enrol`.
    Public,
    /// A token of at least this scope.
    Token(Scope),
}

/// A route template as the router registers it: a `paths` prefix ending in `/`
/// and the name of the one segment it takes.
pub fn with_segment(prefix: &str, name: &str) -> String {
    format!("{prefix}{{{name}}}")
}

/// The one table of which scope each route of the full server needs: (method,
/// route template as routed, access). The `Clinic` extractor checks every
/// authenticated request against it, and a route missing here needs `admin`
/// (fail closed). `tests/scopes.rs` walks every entry with both scopes.
pub static ROUTES: LazyLock<Vec<(Method, String, Access)>> = LazyLock::new(|| {
    use Access::{Public, Token};
    use Scope::{Admin, Device};
    vec![
        (Method::GET, paths::HEALTH.into(), Public),
        (Method::GET, paths::METRICS.into(), Public),
        (Method::POST, paths::ENROL.into(), Public),
        (
            Method::GET,
            with_segment(paths::PATIENT_SUMMARY, "id"),
            Token(Device),
        ),
        (Method::POST, paths::REPORTS.into(), Token(Device)),
        (Method::POST, paths::REPORTS_BATCH.into(), Token(Device)),
        (
            Method::GET,
            with_segment(paths::FEEDS, "kind"),
            Token(Device),
        ),
        (Method::GET, paths::CHANGES.into(), Token(Device)),
        (Method::GET, paths::SNAPSHOT.into(), Token(Device)),
        // Any token may give itself up; it reaches no other token.
        (Method::DELETE, paths::OWN_TOKEN.into(), Token(Device)),
        (
            Method::PUT,
            with_segment(paths::PATIENTS, "id"),
            Token(Admin),
        ),
        (
            Method::DELETE,
            with_segment(paths::PATIENTS, "id"),
            Token(Admin),
        ),
        (
            Method::PUT,
            with_segment(paths::APPOINTMENTS, "id"),
            Token(Admin),
        ),
        (
            Method::DELETE,
            with_segment(paths::APPOINTMENTS, "id"),
            Token(Admin),
        ),
        (Method::PUT, with_segment(paths::STAFF, "id"), Token(Admin)),
    ]
});

static SCOPE_BY_ROUTE: LazyLock<HashMap<(Method, &'static str), Scope>> = LazyLock::new(|| {
    ROUTES
        .iter()
        .filter_map(|(method, path, access)| match access {
            Access::Token(scope) => Some(((method.clone(), path.as_str()), *scope)),
            Access::Public => None,
        })
        .collect()
});

/// The scope a token needs for `method` on the route template `route`: the
/// table's, or `admin` for anything the table does not list.
pub fn required_scope(method: &Method, route: &str) -> Scope {
    SCOPE_BY_ROUTE
        .get(&(method.clone(), route))
        .copied()
        .unwrap_or(Scope::Admin)
}

/// A freshly issued token: `secret` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub id: String,
    pub clinic_id: String,
    pub scope: Scope,
    pub secret: String,
}

/// What an authenticated request's token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAuth {
    pub token_id: String,
    pub clinic_id: String,
    pub scope: Scope,
}

pub fn token_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
    Ok(buf)
}

/// A new token record and its secret (not yet stored).
pub fn new_token(
    clinic_id: &str,
    scope: Scope,
    label: Option<&str>,
) -> Result<(TokenRecord, String), StoreError> {
    let secret = format!("{TOKEN_PREFIX}{}", hex::encode(random_bytes::<32>()?));
    let record = TokenRecord {
        id: format!("tok_{}", hex::encode(random_bytes::<8>()?)),
        clinic_id: clinic_id.to_owned(),
        sha256: token_hash(&secret),
        label: label.map(str::to_owned),
        scope,
    };
    Ok((record, secret))
}

pub fn issue_token(
    store: &dyn CentralStore,
    clinic_id: &str,
    scope: Scope,
    label: Option<&str>,
) -> Result<IssuedToken, StoreError> {
    if store.clinic_zone(clinic_id)?.is_none() {
        return Err(StoreError::UnknownClinic(clinic_id.to_owned()));
    }
    let (record, secret) = new_token(clinic_id, scope, label)?;
    store.insert_token(&record)?;
    Ok(IssuedToken {
        id: record.id,
        clinic_id: clinic_id.to_owned(),
        scope,
        secret,
    })
}

/// The token from an `Authorization` header value, if it is a well-formed bearer.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Which tokens' last-seen time and address are due to be written: each at most
/// once per [`crate::limits::TOKEN_TOUCH_INTERVAL`] per replica, so a device's
/// requests cost no write of their own.
pub struct TokenTouches {
    interval: Duration,
    last: Mutex<HashMap<String, Instant>>,
}

/// Tokens remembered before the ones not seen for an interval are forgotten.
const MAX_REMEMBERED_TOUCHES: usize = 100_000;

impl TokenTouches {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: Mutex::default(),
        }
    }

    /// True (and remembered) when `token_id` was not touched within the interval.
    pub fn due(&self, token_id: &str) -> bool {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match last.get_mut(token_id) {
            Some(at) if now.duration_since(*at) < self.interval => false,
            Some(at) => {
                *at = now;
                true
            }
            None => {
                if last.len() >= MAX_REMEMBERED_TOUCHES {
                    let interval = self.interval;
                    last.retain(|_, at| now.duration_since(*at) < interval);
                }
                last.insert(token_id.to_owned(), now);
                true
            }
        }
    }
}

// ---- Enrolment codes ----

/// Crockford's base32: no I, L, O or U, so a code read aloud or typed is not misread.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 80 random bits: 16 characters, shown as four groups of four.
const CODE_BYTES: usize = 10;
pub const CODE_CHARS: usize = CODE_BYTES * 8 / 5;
/// How long an enrolment code lives unless the CLI says otherwise.
pub const DEFAULT_ENROLMENT_TTL: Duration = Duration::from_secs(15 * 60);
/// "Short-lived": no code lives longer than a day.
pub const MAX_ENROLMENT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

fn crockford(bytes: &[u8; CODE_BYTES]) -> String {
    let mut bits: u128 = 0;
    for b in bytes {
        bits = (bits << 8) | u128::from(*b);
    }
    (0..CODE_CHARS)
        .rev()
        .map(|i| CROCKFORD[((bits >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// The code as the server hashes it: upper case, without dashes and white space,
/// and with the letters Crockford reads as digits (O → 0, I and L → 1) mapped.
/// `None` when it cannot be a code (wrong length or a character outside the alphabet).
pub fn normalise_code(raw: &str) -> Option<String> {
    let code: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    (code.len() == CODE_CHARS && code.bytes().all(|b| CROCKFORD.contains(&b))).then_some(code)
}

/// `ABCD-EFGH-JKMN-PQRS`.
fn grouped(code: &str) -> String {
    code.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("-")
}

pub fn code_hash(normalised: &str) -> [u8; 32] {
    Sha256::digest(normalised.as_bytes()).into()
}

/// An enrolment code as stored: only the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentCodeRecord {
    pub id: String,
    pub clinic_id: String,
    pub sha256: [u8; 32],
    pub label: Option<String>,
    pub expires_at: i64,
}

/// A freshly made enrolment code: `code` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct IssuedCode {
    pub id: String,
    pub clinic_id: String,
    /// Grouped for reading: `ABCD-EFGH-JKMN-PQRS`.
    pub code: String,
    pub expires_at: i64,
}

/// Makes and stores a single-use code that enrols one device into `clinic_id`
/// within `ttl` (at most [`MAX_ENROLMENT_TTL`]).
pub fn issue_enrolment_code(
    store: &dyn CentralStore,
    clinic_id: &str,
    ttl: Duration,
    label: Option<&str>,
) -> Result<IssuedCode, StoreError> {
    if store.clinic_zone(clinic_id)?.is_none() {
        return Err(StoreError::UnknownClinic(clinic_id.to_owned()));
    }
    if ttl.is_zero() || ttl > MAX_ENROLMENT_TTL {
        return Err(StoreError::Config(format!(
            "an enrolment code lives from 1 second to {} hours",
            MAX_ENROLMENT_TTL.as_secs() / 3600
        )));
    }
    let code = crockford(&random_bytes::<CODE_BYTES>()?);
    let expires_at = chrono::Utc::now().timestamp() + ttl.as_secs() as i64;
    let record = EnrolmentCodeRecord {
        id: format!("enr_{}", hex::encode(random_bytes::<8>()?)),
        clinic_id: clinic_id.to_owned(),
        sha256: code_hash(&code),
        label: label.map(str::to_owned),
        expires_at,
    };
    store.insert_enrolment_code(&record)?;
    Ok(IssuedCode {
        id: record.id,
        clinic_id: clinic_id.to_owned(),
        code: grouped(&code),
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sixteen_crockford_characters_read_forgivingly() {
        let code = crockford(&[0xff; CODE_BYTES]);
        assert_eq!(code, "ZZZZZZZZZZZZZZZZ");
        let code = crockford(&random_bytes::<CODE_BYTES>().unwrap());
        let shown = grouped(&code);
        assert_eq!(shown.len(), CODE_CHARS + 3);
        assert_eq!(normalise_code(&shown).as_deref(), Some(code.as_str()));
        assert_eq!(
            normalise_code(&format!(" {} ", shown.to_lowercase())).as_deref(),
            Some(code.as_str())
        );
        assert_eq!(
            normalise_code("abcd-efgh-ijkl-mnop").as_deref(),
            Some("ABCDEFGH1JK1MN0P")
        );
        assert_eq!(normalise_code("ABCD-EFGH-JKMN-PQR"), None);
        assert_eq!(normalise_code("ABCD-EFGH-JKMN-PQRU"), None);
        assert_eq!(normalise_code("ÄBCD-EFGH-JKMN-PQRS"), None);
    }

    #[test]
    fn admin_allows_what_device_does_and_not_the_other_way() {
        assert!(Scope::Admin.allows(Scope::Device));
        assert!(!Scope::Device.allows(Scope::Admin));
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn a_route_missing_from_the_table_needs_admin() {
        assert_eq!(required_scope(&Method::GET, "/v1/new-thing"), Scope::Admin);
        assert_eq!(required_scope(&Method::POST, paths::REPORTS), Scope::Device);
        assert_eq!(
            required_scope(&Method::PUT, &with_segment(paths::STAFF, "id")),
            Scope::Admin
        );
    }

    #[test]
    fn a_token_is_touched_at_most_once_per_interval() {
        let t = TokenTouches::new(Duration::from_secs(60));
        assert!(t.due("tok_a"));
        assert!(!t.due("tok_a"));
        assert!(t.due("tok_b"));
        let quick = TokenTouches::new(Duration::ZERO);
        assert!(quick.due("tok_a") && quick.due("tok_a"));
    }
}
