//! Identifiers that come from outside: typed by staff, scanned from a wristband,
//! or sent by the central server. They are validated once, at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// Longest ID accepted. Hospital MRNs and trial subject IDs are far shorter;
/// the cap keeps a stuck scanner or a pasted paragraph from becoming a key.
pub const MAX_ID_LEN: usize = 32;

fn validate_id(raw: &str) -> Result<String, DomainError> {
    let id = raw.trim();
    if id.is_empty() {
        return Err(DomainError::EmptyId);
    }
    if id.chars().count() > MAX_ID_LEN {
        return Err(DomainError::IdTooLong { max: MAX_ID_LEN });
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(DomainError::IdInvalidCharacter);
    }
    Ok(id.to_owned())
}

/// The ID of an appointment or a staff member: the same rules as every external ID.
pub fn record_id(raw: &str) -> Result<String, DomainError> {
    validate_id(raw)
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Trims surrounding white space (scanners often append some) and validates.
            pub fn parse(raw: &str) -> Result<Self, DomainError> {
                validate_id(raw).map(Self)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(&raw)
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A patient's ID or MRN as printed on the wristband.
    PatientId
);
string_id!(
    /// A doctor's staff ID.
    DoctorId
);

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("P1001", Ok("P1001"))]
    #[case("  P1001\n", Ok("P1001"))]
    #[case("subj-01_a", Ok("subj-01_a"))]
    #[case("", Err(DomainError::EmptyId))]
    #[case("   ", Err(DomainError::EmptyId))]
    #[case("P 1001", Err(DomainError::IdInvalidCharacter))]
    #[case("P1001'; DROP TABLE patients;--", Err(DomainError::IdInvalidCharacter))]
    #[case("张三", Err(DomainError::IdInvalidCharacter))]
    #[case("%", Err(DomainError::IdInvalidCharacter))]
    #[case(&"9".repeat(33), Err(DomainError::IdTooLong { max: 32 }))]
    fn patient_ids_are_validated(#[case] raw: &str, #[case] expected: Result<&str, DomainError>) {
        assert_eq!(
            PatientId::parse(raw).as_ref().map(PatientId::as_str),
            expected.as_deref()
        );
    }

    #[test]
    fn ids_deserialize_through_validation() {
        let ok: PatientId = serde_json::from_str("\"P2024\"").unwrap();
        assert_eq!(ok.as_str(), "P2024");
        assert!(serde_json::from_str::<PatientId>("\"\"").is_err());
    }
}
