//! What each role may do: one table ([`TABLE`]). Every command of the app names
//! the [`Access`] it needs (`crates/desk/src/ipc.rs`), and the desk asks [`may`]
//! before it runs one, so this table is the only place a permission is written.
//!
//! Nobody signed in and a locked session are the same here ([`Actor::Nobody`]):
//! neither may see patient data, except the schedule board when the clinic opens
//! it without sign-in (its setting `open_schedule_without_sign_in`, off by default:
//! a front-desk PC may keep the day's board up).

use crate::StaffRole;

/// What a command needs, as far as who may run it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// No patient data: the app's own state, the sign-in picker, signing in and
    /// out, sync, diagnostics, enrolment.
    Open,
    /// Finding a patient and seeing who they are (search, details).
    Lookup,
    /// The clinic's schedule (visits of the day, the doctors).
    Schedule,
    /// Pain records: a patient's reports and their trail, the reassessments due,
    /// the ward board, the FHIR export.
    ReadPain,
    /// Recording, correcting, resolving and resending pain records.
    RecordPain,
}

impl Access {
    pub const ALL: [Access; 5] = [
        Access::Open,
        Access::Lookup,
        Access::Schedule,
        Access::ReadPain,
        Access::RecordPain,
    ];
}

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    /// Nobody signed in, or a locked session.
    Nobody,
    Staff(StaffRole),
}

impl Actor {
    pub const ALL: [Actor; 4] = [
        Actor::Nobody,
        Actor::Staff(StaffRole::Clerk),
        Actor::Staff(StaffRole::Nurse),
        Actor::Staff(StaffRole::Doctor),
    ];
}

/// One cell of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    Yes,
    No,
    /// Only where the clinic set `open_schedule_without_sign_in`.
    IfScheduleOpen,
}

use Grant::{IfScheduleOpen, No, Yes};

/// The table: for each access, what nobody (or a locked session), a clerk (the
/// front desk: lookup and schedule, no pain records), a nurse (everything at the
/// bedside) and a doctor (reads) may do.
pub const TABLE: [(Access, [Grant; 4]); 5] = [
    //                  nobody          clerk  nurse  doctor
    (Access::Open, [Yes, Yes, Yes, Yes]),
    (Access::Lookup, [No, Yes, Yes, Yes]),
    (Access::Schedule, [IfScheduleOpen, Yes, Yes, Yes]),
    (Access::ReadPain, [No, No, Yes, Yes]),
    (Access::RecordPain, [No, No, Yes, No]),
];

/// The clinic's settings the table depends on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClinicAccess {
    pub open_schedule_without_sign_in: bool,
}

/// The table's cell for `actor` and `access`.
pub fn grant(actor: Actor, access: Access) -> Grant {
    let column = match actor {
        Actor::Nobody => 0,
        Actor::Staff(StaffRole::Clerk) => 1,
        Actor::Staff(StaffRole::Nurse) => 2,
        Actor::Staff(StaffRole::Doctor) => 3,
    };
    TABLE
        .iter()
        .find(|(a, _)| *a == access)
        .map_or(No, |(_, row)| row[column])
}

/// Whether `actor` may do what `access` names in a clinic with `clinic`'s settings.
pub fn may(actor: Actor, access: Access, clinic: ClinicAccess) -> bool {
    match grant(actor, access) {
        Yes => true,
        No => false,
        IfScheduleOpen => clinic.open_schedule_without_sign_in,
    }
}

/// Everything `actor` may do (for the UI, which shows only what it may use).
pub fn allowed(actor: Actor, clinic: ClinicAccess) -> Vec<Access> {
    Access::ALL
        .into_iter()
        .filter(|a| may(actor, *a, clinic))
        .collect()
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[test]
    fn every_access_has_one_row() {
        for access in Access::ALL {
            assert_eq!(
                TABLE.iter().filter(|(a, _)| *a == access).count(),
                1,
                "{access:?}"
            );
        }
    }

    const OPEN: ClinicAccess = ClinicAccess {
        open_schedule_without_sign_in: true,
    };

    #[rstest]
    #[case::nobody_opens_the_app(Actor::Nobody, Access::Open, false, true)]
    #[case::nobody_finds_nobody(Actor::Nobody, Access::Lookup, true, false)]
    #[case::nobody_no_schedule(Actor::Nobody, Access::Schedule, false, false)]
    #[case::nobody_schedule_if_open(Actor::Nobody, Access::Schedule, true, true)]
    #[case::nobody_no_pain(Actor::Nobody, Access::ReadPain, true, false)]
    #[case::clerk_looks_up(Actor::Staff(StaffRole::Clerk), Access::Lookup, false, true)]
    #[case::clerk_schedules(Actor::Staff(StaffRole::Clerk), Access::Schedule, false, true)]
    #[case::clerk_no_pain_records(Actor::Staff(StaffRole::Clerk), Access::ReadPain, false, false)]
    #[case::clerk_records_nothing(Actor::Staff(StaffRole::Clerk), Access::RecordPain, false, false)]
    #[case::nurse_records(Actor::Staff(StaffRole::Nurse), Access::RecordPain, false, true)]
    #[case::nurse_reads(Actor::Staff(StaffRole::Nurse), Access::ReadPain, false, true)]
    #[case::doctor_reads(Actor::Staff(StaffRole::Doctor), Access::ReadPain, false, true)]
    #[case::doctor_records_nothing(
        Actor::Staff(StaffRole::Doctor),
        Access::RecordPain,
        true,
        false
    )]
    fn the_table(
        #[case] actor: Actor,
        #[case] access: Access,
        #[case] schedule_open: bool,
        #[case] expected: bool,
    ) {
        let clinic = ClinicAccess {
            open_schedule_without_sign_in: schedule_open,
        };
        assert_eq!(may(actor, access, clinic), expected);
    }

    #[test]
    fn the_open_schedule_setting_opens_the_schedule_only_and_only_for_nobody() {
        for actor in Actor::ALL {
            for access in Access::ALL {
                let with = may(actor, access, OPEN);
                let without = may(actor, access, ClinicAccess::default());
                assert_eq!(
                    with != without,
                    actor == Actor::Nobody && access == Access::Schedule,
                    "{actor:?} {access:?}"
                );
            }
        }
        assert_eq!(
            allowed(Actor::Nobody, ClinicAccess::default()),
            [Access::Open]
        );
    }
}
