use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{DoctorId, DomainError, PatientId, record_id};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    Booked,
    CheckedIn,
    Completed,
    Cancelled,
    NoShow,
}

impl AppointmentStatus {
    pub const ALL: [AppointmentStatus; 5] = [
        AppointmentStatus::Booked,
        AppointmentStatus::CheckedIn,
        AppointmentStatus::Completed,
        AppointmentStatus::Cancelled,
        AppointmentStatus::NoShow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AppointmentStatus::Booked => "booked",
            AppointmentStatus::CheckedIn => "checked_in",
            AppointmentStatus::Completed => "completed",
            AppointmentStatus::Cancelled => "cancelled",
            AppointmentStatus::NoShow => "no_show",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| DomainError::UnknownAppointmentStatus(raw.to_owned()))
    }
}

/// Times are instants (UTC); which clinic day they fall on is decided by
/// [`crate::ClinicZone`], never by the machine's own zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appointment {
    pub id: String,
    pub doctor_id: DoctorId,
    pub patient_id: PatientId,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub status: AppointmentStatus,
}

/// An appointment ends after it starts (the device's `CHECK (ends_at > starts_at)`).
pub fn check_times(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> Result<(), DomainError> {
    if ends_at <= starts_at {
        return Err(DomainError::AppointmentEndsBeforeStart);
    }
    Ok(())
}

impl Appointment {
    /// An appointment checked by the rules both ends share: IDs, a known status,
    /// and an end after the start (the device's `CHECK (ends_at > starts_at)`).
    pub fn new(
        id: &str,
        doctor_id: &str,
        patient_id: &str,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        status: &str,
    ) -> Result<Self, DomainError> {
        check_times(starts_at, ends_at)?;
        Ok(Self {
            id: record_id(id)?,
            doctor_id: DoctorId::parse(doctor_id)?,
            patient_id: PatientId::parse(patient_id)?,
            starts_at,
            ends_at,
            status: AppointmentStatus::parse(status)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rstest::rstest]
    #[case::half_an_hour(0, 30, "booked", Ok(()))]
    #[case::ends_as_it_starts(0, 0, "booked", Err(DomainError::AppointmentEndsBeforeStart))]
    #[case::ends_before_it_starts(30, 0, "booked", Err(DomainError::AppointmentEndsBeforeStart))]
    #[case::unknown_status(0, 30, "maybe", Err(DomainError::UnknownAppointmentStatus("maybe".into())))]
    fn appointments_end_after_they_start(
        #[case] start_min: i64,
        #[case] end_min: i64,
        #[case] status: &str,
        #[case] expected: Result<(), DomainError>,
    ) {
        let at = |m| DateTime::from_timestamp(1_764_300_000 + m * 60, 0).unwrap();
        let got = Appointment::new("A1", "D1", "P1", at(start_min), at(end_min), status);
        assert_eq!(got.map(|_| ()), expected);
    }

    #[test]
    fn every_status_round_trips_and_unknown_is_refused() {
        for s in AppointmentStatus::ALL {
            assert_eq!(AppointmentStatus::parse(s.as_str()), Ok(s));
        }
        assert_eq!(
            AppointmentStatus::parse("maybe"),
            Err(DomainError::UnknownAppointmentStatus("maybe".into()))
        );
    }
}
