//! Staff sign-in PINs: their format, and the argon2id verifier (a PHC string) the
//! server makes from a PIN and a device checks a PIN against offline. A device
//! gets the verifier, never the PIN.
//!
//! A 4-digit PIN has only 10,000 values: no hash makes a stolen verifier safe
//! against a determined search, argon2id only makes each guess cost ~tens of ms.
//! The device must also rate-limit attempts; the PIN is a convenience lock on
//! an already-enrolled device, not the clinic's authentication.
//!
//! The parameters are argon2's defaults (OWASP's argon2id minimum:
//! `m=19456,t=2,p=1`, 16-byte salt, 32-byte hash). Every verifier ever handed out
//! carries its own parameters, so [`verify`] keeps accepting them whatever the
//! defaults become; changing [`verifier`]'s would only change new ones.

use argon2::password_hash::{Output, ParamsString, PasswordHash, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use thiserror::Error;

/// The demo clinic's staff all sign in with this PIN.
pub const DEMO_PIN: &str = "1234";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PinError {
    #[error("a PIN is 4 to 8 digits")]
    Malformed,
    #[error("could not hash the PIN: {0}")]
    Hash(String),
}

/// 4 to 8 ASCII digits.
pub fn check_format(pin: &str) -> Result<(), PinError> {
    if (4..=8).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(PinError::Malformed)
    }
}

fn hash_error(e: impl std::fmt::Display) -> PinError {
    PinError::Hash(e.to_string())
}

/// The working memory of one hash (19 MiB). A server that hashes many PINs keeps
/// and reuses a few: freed buffers this large make glibc raise its mmap threshold
/// and keep them on its heaps.
pub struct HashMemory(Box<[Block]>);

impl HashMemory {
    pub fn new() -> Self {
        Self(vec![Block::default(); Params::default().block_count()].into_boxed_slice())
    }
}

impl Default for HashMemory {
    fn default() -> Self {
        Self::new()
    }
}

/// `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>` for a well-formed `pin`, freshly salted.
pub fn verifier(pin: &str) -> Result<String, PinError> {
    verifier_in(pin, &mut HashMemory::new())
}

/// [`verifier`] computed in `memory`, which the caller may reuse.
pub fn verifier_in(pin: &str, memory: &mut HashMemory) -> Result<String, PinError> {
    check_format(pin)?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(hash_error)?;
    let argon = Argon2::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(pin.as_bytes(), &salt, &mut out, &mut memory.0[..])
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

/// Whether `pin` matches the PHC `verifier`, by the parameters the verifier names
/// (a malformed verifier matches nothing).
pub fn verify(pin: &str, verifier: &str) -> bool {
    PasswordHash::new(verifier).is_ok_and(|h| {
        Argon2::default()
            .verify_password(pin.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    /// Made by the reference implementation (libargon2, through argon2-cffi) with
    /// these parameters: what a verifier handed out before looks like.
    const REFERENCE_1234: &str = "$argon2id$v=19$m=19456,t=2,p=1$ulnt9R1UsEntJgqX0MGQcQ$ftQQZssgtnZaVnZE6Kjp2Gqoxq1gNwzim1JVDuAIP20";
    const REFERENCE_20250917: &str = "$argon2id$v=19$m=19456,t=2,p=1$t/AGMmwsz6fRr8L36rXgUw$GvLJlE3j1JZTzGJWS98dXbWvPfUU7lzLqpXhRG9NmE8";

    #[rstest]
    #[case::reference("1234", REFERENCE_1234, true)]
    #[case::reference_wrong_pin("1235", REFERENCE_1234, false)]
    #[case::reference_eight_digits("20250917", REFERENCE_20250917, true)]
    #[case::reference_prefix_of_pin("2025", REFERENCE_20250917, false)]
    #[case::not_a_verifier("1234", "not a verifier", false)]
    #[case::empty_verifier("1234", "", false)]
    fn verifiers_accept_their_pin_only(
        #[case] pin: &str,
        #[case] verifier: &str,
        #[case] expected: bool,
    ) {
        assert_eq!(verify(pin, verifier), expected);
    }

    #[test]
    fn a_new_verifier_has_the_same_parameters_and_accepts_its_pin_only() {
        let mut memory = HashMemory::new();
        let first = verifier_in("2468", &mut memory).unwrap();
        let second = verifier_in("2468", &mut memory).unwrap();
        for v in [&first, &second, &verifier("2468").unwrap()] {
            assert!(v.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{v}");
            assert!(verify("2468", v));
            assert!(!verify("2469", v));
        }
        assert_ne!(first, second, "salted, in reused memory");
    }

    #[rstest]
    #[case::four_digits("1234", Ok(()))]
    #[case::eight_digits("12345678", Ok(()))]
    #[case::empty("", Err(PinError::Malformed))]
    #[case::three_digits("123", Err(PinError::Malformed))]
    #[case::nine_digits("123456789", Err(PinError::Malformed))]
    #[case::letter("12a4", Err(PinError::Malformed))]
    #[case::fullwidth_digits("１２３４", Err(PinError::Malformed))]
    fn pin_format(#[case] pin: &str, #[case] expected: Result<(), PinError>) {
        assert_eq!(check_format(pin), expected);
        if expected.is_err() {
            assert_eq!(verifier(pin), Err(PinError::Malformed));
        }
    }
}
