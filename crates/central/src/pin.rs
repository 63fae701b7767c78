//! Staff PIN verifiers. A ward device signs staff in offline, so it gets a slow,
//! salted hash of each PIN (argon2id, PHC string) and never the PIN.
//!
//! A 4-digit PIN has only 10,000 values: no hash makes a stolen verifier safe
//! against a determined search, argon2id only makes each guess cost ~tens of ms.
//! The device must also rate-limit attempts; the PIN is a convenience lock on
//! an already-enrolled device, not the clinic's authentication.

use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, ParamsString, PasswordHash, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

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

fn hash_error(e: impl std::fmt::Display) -> PinError {
    PinError::Hash(e.to_string())
}

/// The working memory of one argon2id hash with the default parameters (19 MiB).
fn hash_memory() -> Box<[Block]> {
    vec![Block::default(); Params::default().block_count()].into_boxed_slice()
}

/// `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>` (OWASP's argon2id minimum).
pub fn pin_verifier(pin: &str) -> Result<String, PinError> {
    pin_verifier_in(pin, &mut hash_memory())
}

/// [`pin_verifier`] computed in `memory` (from `hash_memory`), which the caller may reuse.
fn pin_verifier_in(pin: &str, memory: &mut [Block]) -> Result<String, PinError> {
    check_pin_format(pin)?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(hash_error)?;
    let argon = Argon2::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(pin.as_bytes(), &salt, &mut out, memory)
        .map_err(hash_error)?;
    let salt = SaltString::encode_b64(&salt).map_err(hash_error)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params()).map_err(hash_error)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(hash_error)?),
    };
    Ok(phc.to_string())
}

/// Hashes PINs for the server: at most `concurrency` at once (further callers
/// wait), each in one of at most `concurrency` reused 19 MiB work areas. Reusing
/// them matters as much as the limit: freed 19 MiB buffers make glibc raise its
/// mmap threshold and keep them on its heaps, so 48 PIN PUTs in a row grew a
/// server by 420 MiB even two at a time; with the work areas kept, by ~40 MiB.
pub struct PinHasher {
    permits: Arc<Semaphore>,
    memory: Arc<Mutex<Vec<Box<[Block]>>>>,
}

impl PinHasher {
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            memory: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The verifier of `pin`, computed on the blocking pool once a permit is free.
    pub async fn verifier(&self, pin: String) -> Result<String, PinError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PinError::Hash("the PIN hasher is closed".into()))?;
        let pool = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let taken = pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let mut memory = taken.unwrap_or_else(hash_memory);
            let verifier = pin_verifier_in(&pin, &mut memory);
            pool.lock().unwrap_or_else(|e| e.into_inner()).push(memory);
            verifier
        })
        .await
        .map_err(hash_error)?
    }
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

    #[tokio::test]
    async fn the_server_hasher_makes_the_same_kind_of_verifier() {
        let hasher = PinHasher::new(1);
        let first = hasher.verifier("2468".into()).await.unwrap();
        let second = hasher.verifier("2468".into()).await.unwrap();
        for v in [&first, &second] {
            assert!(v.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{v}");
            assert!(verify_pin("2468", v));
            assert!(!verify_pin("2469", v));
        }
        assert_ne!(first, second, "salted, in reused memory");
    }

    #[test]
    fn malformed_pins_are_refused() {
        for p in ["", "123", "12a4", "123456789"] {
            assert!(pin_verifier(p).is_err(), "{p}");
        }
    }
}
