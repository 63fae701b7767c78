use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::{DoctorId, DomainError, PatientId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
    Unknown,
}

impl Sex {
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Unknown => "unknown",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "female" => Ok(Sex::Female),
            "male" => Ok(Sex::Male),
            "unknown" => Ok(Sex::Unknown),
            other => Err(DomainError::UnknownSex(other.to_owned())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    pub id: PatientId,
    pub name: String,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub is_insured: bool,
    pub phone: Option<String>,
}

impl Patient {
    pub fn age_on(&self, today: NaiveDate) -> u32 {
        age_on(self.birth_date, today)
    }
}

/// Completed years between `birth` and `today`; a birthday counts on its day.
/// A child born on 29 February has their birthday on 1 March in common years,
/// as Chinese and most civil law count it. A birth date after `today` is 0.
pub fn age_on(birth: NaiveDate, today: NaiveDate) -> u32 {
    if today <= birth {
        return 0;
    }
    let mut years = today.year() - birth.year();
    let birthday_passed =
        (today.month(), today.day()) >= (birth.month(), birth.day());
    if !birthday_passed {
        years -= 1;
    }
    years.max(0) as u32
}

/// Parses a `YYYY-MM-DD` date as typed into a form or sent by a server.
pub fn parse_date(raw: &str) -> Result<NaiveDate, DomainError> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| DomainError::InvalidDate(raw.to_owned()))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doctor {
    pub id: DoctorId,
    pub name: String,
    pub department: String,
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    #[rstest]
    #[case("1980-06-15", "2026-06-14", 45)]
    #[case("1980-06-15", "2026-06-15", 46)]
    #[case("1980-06-15", "2026-12-31", 46)]
    #[case("2000-02-29", "2025-02-28", 24)]
    #[case("2000-02-29", "2025-03-01", 25)]
    #[case("2000-02-29", "2028-02-29", 28)]
    #[case("2026-11-28", "2026-11-28", 0)]
    #[case("2026-11-29", "2026-11-28", 0)]
    fn age_counts_completed_years(#[case] birth: &str, #[case] today: &str, #[case] age: u32) {
        assert_eq!(age_on(d(birth), d(today)), age);
    }

    #[rstest]
    #[case("2026-13-01")]
    #[case("2026-02-30")]
    #[case("28/11/2026")]
    #[case("")]
    fn bad_dates_are_refused(#[case] raw: &str) {
        assert_eq!(parse_date(raw), Err(DomainError::InvalidDate(raw.to_owned())));
    }

    #[rstest]
    #[case("female", Sex::Female)]
    #[case("male", Sex::Male)]
    #[case("unknown", Sex::Unknown)]
    fn sexes_round_trip(#[case] raw: &str, #[case] sex: Sex) {
        assert_eq!(Sex::parse(raw), Ok(sex));
        assert_eq!(sex.as_str(), raw);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    Doctor,
    Nurse,
}

impl StaffRole {
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Doctor => "doctor",
            StaffRole::Nurse => "nurse",
        }
    }
}

/// Someone who signs in on a ward device. Doctors are also staff; the schedule
/// uses [`Doctor`], the sign-in picker uses this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffMember {
    pub id: String,
    pub name: String,
    pub role: StaffRole,
    pub department: String,
}
