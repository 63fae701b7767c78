//! Staff PIN verifiers. A ward device signs staff in offline, so it gets a slow,
//! salted hash of each PIN (argon2id, PHC string) and never the PIN.
//!
//! A 4-digit PIN has only 10,000 values: no hash makes a stolen verifier safe
//! against a determined search, argon2id only makes each guess cost ~tens of ms.
//! The device must also rate-limit attempts; the PIN is a convenience lock on
//! an already-enrolled device, not the clinic's authentication.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// The demo clinic's staff all sign in with this PIN.
pub const DEMO_PIN: &str = "1234";

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("a PIN is 4 to 8 digits")]
    Malformed,
    #[error("could not hash the PIN: {0}")]
    Hash(String),
}

pub fn check_pin_format(pin: &str) -> Result<(), PinError> {
    if (4..=8).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(PinError::Malformed)
    }
}

/// `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>` (OWASP's argon2id minimum).
pub fn pin_verifier(pin: &str) -> Result<String, PinError> {
    check_pin_format(pin)?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PinError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PinError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PinError::Hash(e.to_string()))
}

/// What the app does offline; here so tests can prove the verifier works.
pub fn verify_pin(pin: &str, verifier: &str) -> bool {
    PasswordHash::new(verifier)
        .map(|h| {
            Argon2::default()
                .verify_password(pin.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_accepts_the_pin_only() {
        let v = pin_verifier("1234").unwrap();
        assert!(v.starts_with("$argon2id$"));
        assert!(verify_pin("1234", &v));
        assert!(!verify_pin("1235", &v));
        assert_ne!(v, pin_verifier("1234").unwrap(), "salted");
    }

    #[test]
    fn malformed_pins_are_refused() {
        for p in ["", "123", "12a4", "123456789"] {
            assert!(pin_verifier(p).is_err(), "{p}");
        }
    }
}
