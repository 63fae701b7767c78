//! Clinic Desk's domain: the things a clinic talks about and the rules they obey.
//!
//! Everything here is plain data and pure functions: no I/O, no SQLite, no Tauri
//! (`pin` draws each verifier's salt from the OS's random source, nothing more).
//! The store, the app and the central server all build on these types so a rule
//! (what an ID may look like, how old a patient is, which day an appointment falls
//! on) is written once. The records the central server hands out are built with
//! the same validating constructors ([`Patient::new`], [`StaffMember::new`],
//! [`Appointment::new`]) on both ends, so the server never accepts what a device
//! cannot store.

pub mod appointment;
pub mod assessment;
pub mod clinic_time;
pub mod corrections;
pub mod demo;
pub mod error;
pub mod id;
pub mod lookup;
pub mod pain;
pub mod patient;
pub mod pin;
pub mod report;
pub mod roles;
pub mod text;
pub mod ward;

pub use appointment::{Appointment, AppointmentStatus};
pub use assessment::{Activity, AssessmentDetails, Reassessment, TimeWindow};
pub use clinic_time::ClinicZone;
pub use error::DomainError;
pub use id::{DoctorId, PatientId, record_id};
pub use pain::{PainBand, PainScale, PainScore};
pub use patient::{Doctor, Patient, Sex, StaffMember, StaffRole};
pub use report::{AssessmentForm, EntryClock, PainReport};
