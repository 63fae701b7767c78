//! The front desk's day in the clinic's own zone, whatever zone the machine is in:
//! the app never asks the machine for its zone, so these hold on any machine.

use chrono::{Duration, NaiveDate, NaiveTime};
use clinic_desk_core::Desk;
use clinic_domain::{
    Appointment, AppointmentStatus, ClinicZone, Doctor, DoctorId, Patient, PatientId, Sex,
};
use clinic_store::{patients, schedule, settings};
use rstest::rstest;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn t(s: &str) -> NaiveTime {
    NaiveTime::parse_from_str(s, "%H:%M").unwrap()
}

/// A store in `zone` with one visit at `local_time` on `local_date`.
fn clinic_with_visit(zone: &str, local_date: &str, local_time: &str) -> (tempfile::TempDir, Desk) {
    let dir = tempfile::tempdir().unwrap();
    let desk = Desk::open(&dir.path().join("desk.sqlite3")).unwrap();
    let z = ClinicZone::parse(zone).unwrap();
    let starts = z.at(d(local_date), t(local_time));
    desk.database()
        .write(|c| {
            settings::set(c, settings::TIME_ZONE, zone)?;
            let doctor = Doctor {
                id: DoctorId::parse("D1").unwrap(),
                name: "王医生".into(),
                department: "内科".into(),
            };
            schedule::upsert_doctor(c, &doctor)?;
            patients::upsert(
                c,
                &Patient {
                    id: PatientId::parse("P1").unwrap(),
                    name: "张三".into(),
                    sex: Sex::Male,
                    birth_date: d("1980-01-01"),
                    is_insured: true,
                    phone: None,
                },
            )?;
            schedule::upsert_appointment(
                c,
                &Appointment {
                    id: "A1".into(),
                    doctor_id: doctor.id.clone(),
                    patient_id: PatientId::parse("P1").unwrap(),
                    starts_at: starts,
                    ends_at: starts + Duration::minutes(15),
                    status: AppointmentStatus::Booked,
                },
            )
        })
        .unwrap();
    (dir, desk)
}

#[rstest]
// Shanghai (UTC+8, no DST): late evening and just after midnight stay on their own days.
#[case("Asia/Shanghai", "2026-11-27", "23:30", "2026-11-27", true)]
#[case("Asia/Shanghai", "2026-11-27", "23:30", "2026-11-28", false)]
#[case("Asia/Shanghai", "2026-11-28", "00:30", "2026-11-28", true)]
#[case("Asia/Shanghai", "2026-11-28", "00:30", "2026-11-27", false)]
// London's clocks go forward at 01:00 on 29 March: a 23-hour day keeps both ends.
#[case("Europe/London", "2026-03-29", "00:30", "2026-03-29", true)]
#[case("Europe/London", "2026-03-29", "23:30", "2026-03-29", true)]
#[case("Europe/London", "2026-03-29", "23:30", "2026-03-30", false)]
// ...and back at 02:00 on 25 October: 01:30 happens twice, both on the 25th.
#[case("Europe/London", "2026-10-25", "01:30", "2026-10-25", true)]
#[case("Europe/London", "2026-10-24", "23:30", "2026-10-24", true)]
// A clinic west of UTC: its evening is the next UTC day.
#[case("America/New_York", "2026-11-01", "23:30", "2026-11-01", true)]
#[case("America/New_York", "2026-11-01", "23:30", "2026-11-02", false)]
fn a_visit_is_on_the_clinics_day(
    #[case] zone: &str,
    #[case] date: &str,
    #[case] time: &str,
    #[case] shown_on: &str,
    #[case] expected: bool,
) {
    let (_dir, desk) = clinic_with_visit(zone, date, time);
    let day = desk.day_schedule(Some(shown_on), None).unwrap();
    assert_eq!(day.time_zone, zone);
    assert_eq!(
        day.appointments.len(),
        usize::from(expected),
        "{zone} {date} {time} on {shown_on}"
    );
    if expected {
        assert_eq!(
            day.appointments[0].start_local, time,
            "shown in the clinic's wall-clock time"
        );
    }
}

#[rstest]
#[case("2026-13-01")]
#[case("tomorrow")]
#[case("")]
fn a_bad_date_is_refused_clearly(#[case] date: &str) {
    let (_dir, desk) = clinic_with_visit("Asia/Shanghai", "2026-11-28", "09:00");
    let err = desk.day_schedule(Some(date), None).unwrap_err();
    assert_eq!(err.code, clinic_desk_core::ErrorCode::InvalidDate);
}

#[test]
fn the_stale_age_is_the_clinics_setting() {
    let (_dir, desk) = clinic_with_visit("Asia/Shanghai", "2026-11-28", "09:00");
    assert_eq!(
        desk.day_schedule(Some("2026-11-28"), None)
            .unwrap()
            .stale_after_minutes,
        15
    );
    desk.database()
        .write(|c| settings::set(c, settings::SCHEDULE_STALE_AFTER_MINUTES, "5"))
        .unwrap();
    assert_eq!(
        desk.day_schedule(Some("2026-11-28"), None)
            .unwrap()
            .stale_after_minutes,
        5
    );
}
