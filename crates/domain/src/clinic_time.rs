//! The clinic's wall clock. A clinic's day is its own, whatever zone the machine
//! showing it is set to: a laptop left on UTC still shows Shanghai's Tuesday.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClinicZone(Tz);

impl ClinicZone {
    pub const DEFAULT_NAME: &'static str = "Asia/Shanghai";

    pub fn parse(name: &str) -> Result<Self, DomainError> {
        name.parse::<Tz>()
            .map(Self)
            .map_err(|_| DomainError::UnknownTimeZone(name.to_owned()))
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    pub fn tz(self) -> Tz {
        self.0
    }

    /// RFC 3339 with an offset, or a wall-clock time (`YYYY-MM-DDTHH:MM[:SS]`, what a
    /// form's date-time field gives) read in the clinic's zone, not the machine's. In a
    /// daylight-saving fall-back hour the earlier reading is taken; a time in the
    /// spring-forward gap never happened on the clinic's clock.
    pub fn parse_instant(self, raw: &str) -> Result<DateTime<Utc>, DomainError> {
        if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
            return Ok(t.with_timezone(&Utc));
        }
        let invalid = || DomainError::InvalidTime(raw.to_owned());
        let local = chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S")
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M"))
            .map_err(|_| invalid())?;
        local
            .and_local_timezone(self.0)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(invalid)
    }

    /// The clinic's calendar date at `instant`.
    pub fn date_of(self, instant: DateTime<Utc>) -> NaiveDate {
        instant.with_timezone(&self.0).date_naive()
    }

    pub fn today(self) -> NaiveDate {
        self.date_of(Utc::now())
    }

    /// `[start, end)` of the clinic's `date` as UTC instants. On a daylight-saving
    /// day the span is 23 or 25 hours long; where local midnight does not exist
    /// the day starts at the first instant that does.
    pub fn day_bounds(self, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = self.start_of(date);
        let end = self.start_of(date.succ_opt().unwrap_or(date));
        (start, end)
    }

    fn start_of(self, date: NaiveDate) -> DateTime<Utc> {
        // A zone may skip midnight (e.g. America/Santiago); `at` walks to the first real minute.
        self.at(date, NaiveTime::MIN)
    }

    /// The UTC instant of a local wall-clock time on the clinic's `date`, the
    /// earlier one where the clock repeats and the next valid one where it skips.
    pub fn at(self, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
        let mut local = date.and_time(time);
        for _ in 0..(24 * 60) {
            match self.0.from_local_datetime(&local) {
                LocalResult::Single(t) => return t.with_timezone(&Utc),
                LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
                LocalResult::None => local += chrono::Duration::minutes(1),
            }
        }
        Utc.from_utc_datetime(&local)
    }
}

impl Default for ClinicZone {
    fn default() -> Self {
        Self(chrono_tz::Asia::Shanghai)
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[rstest]
    // Shanghai is UTC+8: 23:30 local on the 27th is 15:30Z, 00:30 on the 28th is 16:30Z the day before.
    #[case("Asia/Shanghai", "2026-11-27T15:30:00Z", "2026-11-27")]
    #[case("Asia/Shanghai", "2026-11-27T16:30:00Z", "2026-11-28")]
    #[case("Asia/Shanghai", "2026-11-27T23:59:59Z", "2026-11-28")]
    #[case("Europe/London", "2026-03-29T00:30:00Z", "2026-03-29")]
    #[case("America/New_York", "2026-11-28T04:30:00Z", "2026-11-27")]
    fn instants_fall_on_the_clinics_date(#[case] zone: &str, #[case] at: &str, #[case] date: &str) {
        let zone = ClinicZone::parse(zone).unwrap();
        assert_eq!(zone.date_of(utc(at)).to_string(), date);
    }

    #[rstest]
    #[case("Asia/Shanghai", "2026-11-28", "2026-11-27T16:00:00Z", 24)]
    // Clocks go forward: a 23-hour day; back: a 25-hour day.
    #[case("Europe/London", "2026-03-29", "2026-03-29T00:00:00Z", 23)]
    #[case("Europe/London", "2026-10-25", "2026-10-24T23:00:00Z", 25)]
    // Santiago skips midnight itself: the day starts at 01:00 local and lasts 23 hours.
    #[case("America/Santiago", "2026-09-06", "2026-09-06T04:00:00Z", 23)]
    fn day_bounds_follow_the_zones_clock(
        #[case] zone: &str,
        #[case] date: &str,
        #[case] start: &str,
        #[case] hours: i64,
    ) {
        let zone = ClinicZone::parse(zone).unwrap();
        let (s, e) = zone.day_bounds(crate::patient::parse_date(date).unwrap());
        assert_eq!(s, utc(start));
        assert_eq!((e - s).num_hours(), hours);
    }

    #[rstest]
    #[case::rfc3339_with_offset(
        "Asia/Shanghai",
        "2026-11-28T10:00:00+08:00",
        Some("2026-11-28T02:00:00Z")
    )]
    #[case::wall_clock_in_the_clinics_zone(
        "Asia/Shanghai",
        "2026-11-28T10:00",
        Some("2026-11-28T02:00:00Z")
    )]
    #[case::wall_clock_with_seconds(
        "Asia/Shanghai",
        "2026-11-28T10:00:30",
        Some("2026-11-28T02:00:30Z")
    )]
    #[case::fall_back_takes_the_earlier(
        "Europe/London",
        "2026-10-25T01:30",
        Some("2026-10-25T00:30:00Z")
    )]
    #[case::spring_forward_gap("Europe/London", "2026-03-29T01:30", None)]
    #[case::not_a_time("Asia/Shanghai", "yesterday", None)]
    fn entered_times_are_read_on_the_clinics_clock(
        #[case] zone: &str,
        #[case] raw: &str,
        #[case] expected: Option<&str>,
    ) {
        let zone = ClinicZone::parse(zone).unwrap();
        assert_eq!(
            zone.parse_instant(raw),
            expected
                .map(utc)
                .ok_or_else(|| DomainError::InvalidTime(raw.to_owned()))
        );
    }

    #[test]
    fn unknown_zone_is_refused() {
        assert_eq!(
            ClinicZone::parse("Mars/Olympus"),
            Err(DomainError::UnknownTimeZone("Mars/Olympus".into()))
        );
    }
}
