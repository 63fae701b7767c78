//! What the UI receives. Field names are camelCase on the wire; the TypeScript
//! declarations in `ui/src/lib/bindings.ts` are generated from these.

use chrono::NaiveDate;
use clinic_domain::lookup::MatchKind;
use clinic_domain::{AppointmentStatus, ClinicZone, Doctor, Patient, Sex, patient::age_on};
use clinic_store::schedule::ScheduledVisit;
use serde::Serialize;
use ts_rs::TS;

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    pub version: String,
    pub clinic_id: Option<String>,
    pub clinic_name: Option<String>,
    pub time_zone: String,
    /// The clinic's date now, `YYYY-MM-DD`.
    pub today: String,
    pub database_path: String,
    pub schema_version: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum SexDto {
    Female,
    Male,
    Unknown,
}

impl From<Sex> for SexDto {
    fn from(s: Sex) -> Self {
        match s {
            Sex::Female => SexDto::Female,
            Sex::Male => SexDto::Male,
            Sex::Unknown => SexDto::Unknown,
        }
    }
}

/// Why a search result matched, so the UI can highlight the part that did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum MatchKindDto {
    IdExact,
    IdPrefix,
    NameExact,
    NamePrefix,
    Initials,
    Pinyin,
    NameSubstring,
    PhoneTail,
}

impl From<MatchKind> for MatchKindDto {
    fn from(m: MatchKind) -> Self {
        match m {
            MatchKind::IdExact => Self::IdExact,
            MatchKind::IdPrefix => Self::IdPrefix,
            MatchKind::NameExact => Self::NameExact,
            MatchKind::NamePrefix => Self::NamePrefix,
            MatchKind::Initials => Self::Initials,
            MatchKind::Pinyin => Self::Pinyin,
            MatchKind::NameSubstring => Self::NameSubstring,
            MatchKind::PhoneTail => Self::PhoneTail,
        }
    }
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PatientSummary {
    pub id: String,
    pub name: String,
    pub sex: SexDto,
    pub age: u32,
    pub is_insured: bool,
    /// Last four digits only: enough to confirm identity over the counter.
    pub phone_tail: Option<String>,
    pub matched: MatchKindDto,
}

impl PatientSummary {
    pub fn new(p: &Patient, matched: MatchKind, today: NaiveDate) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name.clone(),
            sex: p.sex.into(),
            age: p.age_on(today),
            is_insured: p.is_insured,
            phone_tail: p.phone.as_deref().map(phone_tail),
            matched: matched.into(),
        }
    }
}

fn phone_tail(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len().saturating_sub(4)..].iter().collect()
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PatientSearch {
    pub patients: Vec<PatientSummary>,
    /// More patients matched than were returned: the user should refine the query.
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PatientDetail {
    pub id: String,
    pub name: String,
    pub sex: SexDto,
    pub birth_date: String,
    pub age: u32,
    pub is_insured: bool,
    pub phone: Option<String>,
}

impl PatientDetail {
    pub fn new(p: &Patient, today: NaiveDate) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name.clone(),
            sex: p.sex.into(),
            birth_date: p.birth_date.to_string(),
            age: p.age_on(today),
            is_insured: p.is_insured,
            phone: p.phone.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DoctorDto {
    pub id: String,
    pub name: String,
    pub department: String,
}

impl From<&Doctor> for DoctorDto {
    fn from(d: &Doctor) -> Self {
        Self { id: d.id.to_string(), name: d.name.clone(), department: d.department.clone() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatusDto {
    Booked,
    CheckedIn,
    Completed,
    Cancelled,
    NoShow,
}

impl From<AppointmentStatus> for AppointmentStatusDto {
    fn from(s: AppointmentStatus) -> Self {
        match s {
            AppointmentStatus::Booked => Self::Booked,
            AppointmentStatus::CheckedIn => Self::CheckedIn,
            AppointmentStatus::Completed => Self::Completed,
            AppointmentStatus::Cancelled => Self::Cancelled,
            AppointmentStatus::NoShow => Self::NoShow,
        }
    }
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct AppointmentDto {
    pub id: String,
    pub doctor_id: String,
    pub patient_id: String,
    pub patient_name: String,
    pub patient_age: u32,
    pub patient_insured: bool,
    /// Wall-clock times in the clinic's zone, `HH:MM`, whatever the machine's zone.
    pub start_local: String,
    pub end_local: String,
    pub status: AppointmentStatusDto,
}

impl AppointmentDto {
    pub fn new(v: &ScheduledVisit, zone: ClinicZone, day: NaiveDate) -> Self {
        let a = &v.appointment;
        let local = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&zone.tz()).format("%H:%M").to_string();
        Self {
            id: a.id.clone(),
            doctor_id: a.doctor_id.to_string(),
            patient_id: a.patient_id.to_string(),
            patient_name: v.patient_name.clone(),
            patient_age: age_on(v.patient_birth_date, day),
            patient_insured: v.patient_insured,
            start_local: local(a.starts_at),
            end_local: local(a.ends_at),
            status: a.status.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DaySchedule {
    /// The clinic day shown, `YYYY-MM-DD`.
    pub date: String,
    pub time_zone: String,
    pub is_today: bool,
    pub doctors: Vec<DoctorDto>,
    pub appointments: Vec<AppointmentDto>,
}
