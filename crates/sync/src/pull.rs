//! Pull: the clinic's patients, staff and appointments, one cursor per stream,
//! each page applied with its cursor in one transaction (see `clinic_store::pull`).

use clinic_domain::{Appointment, AppointmentStatus, DoctorId, Patient, PatientId, Sex, StaffRole};
use clinic_protocol::{AppointmentRecord, FeedItem, PatientRecord, StaffRecord, paths};
use clinic_store::pull::{self, Applied, Change, PulledStaff};
use serde::de::DeserializeOwned;

use crate::engine::SyncEngine;
use crate::{SyncError, Trace};

/// Rounds of patients → staff → appointments per run: an appointment may send us
/// back once for a patient or doctor created after we pulled those streams; in the
/// second round they are current, so one still unknown was deleted and is left out.
const REFERENCE_ROUNDS: usize = 2;

fn change<T, U>(item: FeedItem<T>, convert: impl FnOnce(&str, T) -> Result<U, String>) -> Option<(i64, Change<U>)> {
    let seq = item.seq;
    if item.deleted {
        return Some((seq, Change::Delete(item.id)));
    }
    let data = item.data?;
    match convert(&item.id, data) {
        Ok(u) => Some((seq, Change::Upsert(u))),
        Err(e) => {
            // One malformed record must not stall the stream; the seq (not the data) is logged.
            tracing::warn!(seq, error = %e, "skipping a pulled record this device cannot use");
            None
        }
    }
}

fn patient(id: &str, r: PatientRecord) -> Result<Patient, String> {
    Ok(Patient {
        id: PatientId::parse(id).map_err(|e| e.to_string())?,
        name: r.name,
        sex: Sex::parse(&r.sex).map_err(|e| e.to_string())?,
        birth_date: r.birth_date,
        is_insured: r.is_insured,
        phone: r.phone,
    })
}

fn staff(id: &str, r: StaffRecord) -> Result<PulledStaff, String> {
    let role = match r.role.as_str() {
        "doctor" => StaffRole::Doctor,
        "nurse" => StaffRole::Nurse,
        other => return Err(format!("unknown role '{other}'")),
    };
    if role == StaffRole::Doctor {
        DoctorId::parse(id).map_err(|e| e.to_string())?;
    }
    Ok(PulledStaff {
        id: id.to_owned(),
        name: r.name,
        role,
        department: r.department,
        active: r.active,
        pin_verifier: r.pin_verifier,
    })
}

fn appointment(id: &str, r: AppointmentRecord) -> Result<Appointment, String> {
    if r.ends_at <= r.starts_at {
        return Err("appointment ends before it starts".into());
    }
    Ok(Appointment {
        id: id.to_owned(),
        doctor_id: DoctorId::parse(&r.doctor_id).map_err(|e| e.to_string())?,
        patient_id: PatientId::parse(&r.patient_id).map_err(|e| e.to_string())?,
        starts_at: r.starts_at,
        ends_at: r.ends_at,
        status: AppointmentStatus::parse(&r.status).map_err(|e| e.to_string())?,
    })
}

impl SyncEngine {
    /// Pulls every stream to its end. Pages already applied stay applied if a later
    /// one fails; the next run continues from the last committed cursor.
    pub(crate) async fn pull(&self, trace: &Trace) -> Result<u64, SyncError> {
        let mut applied = 0;
        for round in 0..REFERENCE_ROUNDS {
            let last_round = round + 1 == REFERENCE_ROUNDS;
            applied += self.pull_stream(pull::STREAM_PATIENTS, paths::FEED_PATIENTS, trace, patient, |c, p, n| {
                pull::apply_patients(c, p, n).map(|_| Applied::All)
            })
            .await?
            .0;
            applied += self.pull_stream(pull::STREAM_STAFF, paths::FEED_STAFF, trace, staff, |c, p, n| {
                pull::apply_staff(c, p, n).map(|_| Applied::All)
            })
            .await?
            .0;
            let (n, outcome) = self
                .pull_stream(pull::STREAM_APPOINTMENTS, paths::FEED_APPOINTMENTS, trace, appointment, move |c, p, n| {
                    pull::apply_appointments(c, p, n, last_round)
                })
                .await?;
            applied += n;
            if outcome == Applied::All {
                return Ok(applied);
            }
        }
        Err(SyncError::Protocol("an appointment refers to a patient or doctor the server has not sent".into()))
    }

    async fn pull_stream<T, U>(
        &self,
        stream: &'static str,
        path: &'static str,
        trace: &Trace,
        convert: fn(&str, T) -> Result<U, String>,
        apply: impl Fn(&mut clinic_store::Connection, &[(i64, Change<U>)], i64) -> Result<Applied, clinic_store::StoreError>
        + Send
        + Sync
        + Copy
        + 'static,
    ) -> Result<(u64, Applied), SyncError>
    where
        T: DeserializeOwned + Send + 'static,
        U: Send + 'static,
    {
        let mut applied = 0u64;
        loop {
            let after = self.store(move |db| db.read(|c| pull::cursor(c, stream))).await?;
            let page = self.client.feed::<T>(path, after, self.config.feed_page_limit, trace).await?;
            let has_more = page.has_more;
            let next = page.next_cursor;
            let items: Vec<(i64, Change<U>)> = page.items.into_iter().filter_map(|i| change(i, convert)).collect();
            applied += items.len() as u64;
            let outcome = self.store(move |db| db.write(|c| apply(c, &items, next))).await?;
            if outcome != Applied::All {
                return Ok((applied, outcome));
            }
            if !has_more || next <= after {
                return Ok((applied, Applied::All));
            }
        }
    }
}
