use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::text::{self, MAX_DEPARTMENT_CHARS};
use crate::{DoctorId, DomainError, PatientId};

/// The earliest birth date accepted. Nobody alive was born before it, and it keeps
/// every date within the four-digit `YYYY-MM-DD` the device's schema requires
/// (`-0001-01-01` or `+10000-01-01` would not be).
pub const MIN_BIRTH_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => panic!("1900-01-01 is a date"),
};

/// A birth date between [`MIN_BIRTH_DATE`] and `today` (the clinic's date), inclusive.
pub fn birth_date(date: NaiveDate, today: NaiveDate) -> Result<NaiveDate, DomainError> {
    if date < MIN_BIRTH_DATE {
        return Err(DomainError::BirthDateTooEarly(date));
    }
    if date > today {
        return Err(DomainError::BirthDateInFuture(date));
    }
    Ok(date)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
    /// A patient record checked by every rule a device stores it by: the ID rules,
    /// [`text::person_name`], a known sex, [`birth_date`] against the clinic's
    /// `today`, [`text::phone`]. The central server builds what it accepts with the
    /// same functions, field by field.
    pub fn new(
        id: &str,
        name: &str,
        sex: &str,
        birth: NaiveDate,
        is_insured: bool,
        phone: Option<&str>,
        today: NaiveDate,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            id: PatientId::parse(id)?,
            name: text::person_name("name", name)?,
            sex: Sex::parse(sex)?,
            birth_date: birth_date(birth, today)?,
            is_insured,
            phone: text::phone(phone)?,
        })
    }

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
    let birthday_passed = (today.month(), today.day()) >= (birth.month(), birth.day());
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
        assert_eq!(
            parse_date(raw),
            Err(DomainError::InvalidDate(raw.to_owned()))
        );
    }

    #[rstest]
    #[case::ordinary("1980-06-15", Ok(()))]
    #[case::first_accepted("1900-01-01", Ok(()))]
    #[case::born_today("2026-11-28", Ok(()))]
    #[case::day_before_the_first(
        "1899-12-31",
        Err(DomainError::BirthDateTooEarly(d("1899-12-31")))
    )]
    #[case::year_one("0001-01-01", Err(DomainError::BirthDateTooEarly(d("0001-01-01"))))]
    #[case::tomorrow("2026-11-29", Err(DomainError::BirthDateInFuture(d("2026-11-29"))))]
    fn birth_dates_are_in_range(#[case] raw: &str, #[case] expected: Result<(), DomainError>) {
        assert_eq!(birth_date(d(raw), d("2026-11-28")).map(|_| ()), expected);
    }

    #[test]
    fn dates_outside_four_digit_years_are_refused() {
        let before_year_zero = NaiveDate::from_ymd_opt(-1, 1, 1).unwrap();
        assert_eq!(before_year_zero.to_string(), "-0001-01-01");
        assert_eq!(
            birth_date(before_year_zero, d("2026-11-28")),
            Err(DomainError::BirthDateTooEarly(before_year_zero))
        );
        let far = NaiveDate::from_ymd_opt(10_000, 1, 1).unwrap();
        assert_eq!(
            birth_date(far, d("2026-11-28")),
            Err(DomainError::BirthDateInFuture(far))
        );
    }

    #[rstest]
    #[case::valid("P1", "王芳", "female", Some("13800138000"), Ok(()))]
    #[case::bad_id("P 1", "王芳", "female", None, Err(DomainError::IdInvalidCharacter))]
    #[case::long_name("P1", &"王".repeat(65), "female", None, Err(DomainError::TextTooLong { field: "name", max: 64 }))]
    #[case::spoofing_name("P1", "王\u{202E}芳", "female", None, Err(DomainError::InvisibleCharacter { field: "name" }))]
    #[case::bad_sex("P1", "王芳", "f", None, Err(DomainError::UnknownSex("f".into())))]
    #[case::bad_phone("P1", "王芳", "female", Some("n/a"), Err(DomainError::InvalidPhone { max: 32 }))]
    fn patients_are_built_by_the_shared_rules(
        #[case] id: &str,
        #[case] name: &str,
        #[case] sex: &str,
        #[case] phone: Option<&str>,
        #[case] expected: Result<(), DomainError>,
    ) {
        let got = Patient::new(id, name, sex, d("1990-01-01"), true, phone, d("2026-11-28"));
        assert_eq!(got.map(|_| ()), expected);
    }

    #[rstest]
    #[case::nurse("N1", "李静", "nurse", "内科", Ok(()))]
    #[case::unknown_role("N1", "李静", "porter", "内科", Err(DomainError::UnknownRole("porter".into())))]
    #[case::bad_id("N/1", "李静", "nurse", "内科", Err(DomainError::IdInvalidCharacter))]
    #[case::empty_department("N1", "李静", "nurse", " ", Err(DomainError::TextRequired { field: "department" }))]
    #[case::zero_width_name("N1", "李\u{200B}静", "nurse", "内科", Err(DomainError::InvisibleCharacter { field: "name" }))]
    fn staff_are_built_by_the_shared_rules(
        #[case] id: &str,
        #[case] name: &str,
        #[case] role: &str,
        #[case] department: &str,
        #[case] expected: Result<(), DomainError>,
    ) {
        assert_eq!(
            StaffMember::new(id, name, role, department).map(|_| ()),
            expected
        );
    }

    #[rstest]
    #[case("female", Sex::Female)]
    #[case("male", Sex::Male)]
    #[case("unknown", Sex::Unknown)]
    fn sexes_round_trip(#[case] raw: &str, #[case] sex: Sex) {
        assert_eq!(Sex::parse(raw), Ok(sex));
        assert_eq!(sex.as_str(), raw);
    }

    #[rstest]
    #[case::doctor("doctor", Ok(StaffRole::Doctor))]
    #[case::nurse("nurse", Ok(StaffRole::Nurse))]
    #[case::clerk("clerk", Ok(StaffRole::Clerk))]
    #[case::capitalised("Doctor", Err(DomainError::UnknownRole("Doctor".into())))]
    #[case::padded(" nurse", Err(DomainError::UnknownRole(" nurse".into())))]
    #[case::unknown("porter", Err(DomainError::UnknownRole("porter".into())))]
    fn roles_parse_the_same_everywhere(
        #[case] raw: &str,
        #[case] expected: Result<StaffRole, DomainError>,
    ) {
        assert_eq!(StaffRole::parse(raw), expected);
        assert_eq!(raw.parse::<StaffRole>(), expected);
        let from_json = serde_json::from_value::<StaffRole>(serde_json::json!(raw));
        assert_eq!(from_json.ok(), expected.clone().ok(), "serde: {raw:?}");
        if let Ok(role) = expected {
            assert_eq!(role.as_str(), raw);
            assert_eq!(serde_json::to_value(role).unwrap(), serde_json::json!(raw));
        }
    }
}

/// A staff member's role. Its names are written once, in [`StaffRole::as_str`]:
/// parsing, `FromStr` and serde all go through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum StaffRole {
    Doctor,
    Nurse,
    /// The front desk: finds patients and keeps the schedule (see `roles`).
    Clerk,
}

impl StaffRole {
    pub const ALL: [StaffRole; 3] = [StaffRole::Doctor, StaffRole::Nurse, StaffRole::Clerk];

    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Doctor => "doctor",
            StaffRole::Nurse => "nurse",
            StaffRole::Clerk => "clerk",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == raw)
            .ok_or_else(|| DomainError::UnknownRole(raw.to_owned()))
    }
}

impl std::str::FromStr for StaffRole {
    type Err = DomainError;
    fn from_str(raw: &str) -> Result<Self, DomainError> {
        Self::parse(raw)
    }
}

impl TryFrom<String> for StaffRole {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, DomainError> {
        Self::parse(&raw)
    }
}

impl From<StaffRole> for &'static str {
    fn from(role: StaffRole) -> Self {
        role.as_str()
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

impl StaffMember {
    /// A staff record checked by the rules both ends share: the ID rules (a doctor's
    /// ID is also a [`DoctorId`], the same rule), [`text::person_name`], a known role,
    /// and a department label.
    pub fn new(id: &str, name: &str, role: &str, department: &str) -> Result<Self, DomainError> {
        Ok(Self {
            id: crate::record_id(id)?,
            name: text::person_name("name", name)?,
            role: StaffRole::parse(role)?,
            department: text::label("department", department, MAX_DEPARTMENT_CHARS)?,
        })
    }
}
