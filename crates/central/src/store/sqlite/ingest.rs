//! Reports: one group's ingest transaction, and counting what is stored.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use rusqlite::{Connection, OptionalExtension, params};

use super::super::common::{RawReport, accepted, activity_to_db, now_unix, resolves_to_db};
use super::super::{IngestOutcome, NewReport, StoreError};

/// Columns of [`read_report`], in its order.
pub(super) const REPORT_COLUMNS: &str =
    "report_id, patient_id, pain_score, scale, submit_time, assessed_at,
    recorded_by, device_id, supersedes, reason, received_at,
    body_site, activity, note, intervention, follows_up, resolves";

pub(super) fn read_report(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawReport> {
    read_report_from(row, 0)
}

/// [`REPORT_COLUMNS`] starting at column `first` of `row`.
pub(super) fn read_report_from(
    row: &rusqlite::Row<'_>,
    first: usize,
) -> rusqlite::Result<RawReport> {
    let at = |i: usize| first + i;
    Ok(RawReport {
        report_id: row.get(at(0))?,
        patient_id: row.get(at(1))?,
        pain_score: row.get(at(2))?,
        scale: row.get(at(3))?,
        submit_time: row.get(at(4))?,
        assessed_at: row.get(at(5))?,
        recorded_by: row.get(at(6))?,
        device_id: row.get(at(7))?,
        supersedes: row.get(at(8))?,
        reason: row.get(at(9))?,
        received_at: row.get(at(10))?,
        body_site: row.get(at(11))?,
        activity: row.get(at(12))?,
        note: row.get(at(13))?,
        intervention: row.get(at(14))?,
        follows_up: row.get(at(15))?,
        resolves: row.get(at(16))?,
    })
}

/// Stores `reports` in one transaction and answers each in order.
///
/// Each new report takes the next number of its clinic's change counter (the feeds'
/// `seq`) in this transaction, like every other change. The store's one write
/// connection is the only writer, so the group reads each clinic's counter once,
/// numbers its new reports in memory (a duplicate or conflict takes no number) and
/// writes the counter back before the commit: numbers commit in order, gap-free.
pub(super) fn ingest(
    conn: &mut Connection,
    reports: &[NewReport],
) -> Result<Vec<IngestOutcome>, StoreError> {
    let tx = conn.transaction()?;
    let received_at = now_unix();
    let mut outcomes = Vec::with_capacity(reports.len());
    // Each clinic of the group: (counter as read, last number given).
    let mut counters: HashMap<&str, (i64, i64)> = HashMap::new();
    {
        let mut counter = tx.prepare_cached("SELECT change_seq FROM clinics WHERE id = ?1")?;
        // ON CONFLICT DO NOTHING, then look: the primary key decides, not a prior check,
        // so two deliveries of one report can never both be stored.
        let mut insert = tx.prepare_cached(
            "INSERT INTO reports (clinic_id, report_id, patient_id, pain_score, scale, submit_time,
                 assessed_at, recorded_by, device_id, supersedes, reason, received_at,
                 body_site, activity, note, intervention, follows_up, resolves, seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19)
             ON CONFLICT (clinic_id, report_id) DO NOTHING",
        )?;
        let mut existing = tx.prepare_cached(&format!(
            "SELECT {REPORT_COLUMNS} FROM reports WHERE clinic_id = ?1 AND report_id = ?2"
        ))?;
        for r in reports {
            let id = r.report_id.to_string();
            let (_, last) = match counters.entry(r.clinic_id.as_str()) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(new) => {
                    let read: i64 = counter
                        .query_row([&r.clinic_id], |row| row.get(0))
                        .optional()?
                        .ok_or_else(|| StoreError::UnknownClinic(r.clinic_id.clone()))?;
                    new.insert((read, read))
                }
            };
            let seq = *last + 1;
            let inserted = insert.execute(params![
                r.clinic_id,
                id,
                r.patient_id.as_str(),
                i64::from(r.score.value()),
                r.score.scale().as_str(),
                r.submit_time,
                r.assessed_at,
                r.recorded_by,
                r.device_id,
                r.supersedes.map(|u| u.to_string()),
                r.reason,
                received_at,
                r.details.body_site,
                r.details.activity.map(activity_to_db),
                r.details.note,
                r.details.intervention,
                r.follows_up.map(|u| u.to_string()),
                resolves_to_db(&r.resolves),
                seq,
            ])?;
            if inserted == 1 {
                *last = seq;
                outcomes.push(IngestOutcome::Accepted(accepted(r, received_at)));
                continue;
            }
            let first = existing.query_row(params![r.clinic_id, id], read_report)?;
            outcomes.push(if first.same_content(r) {
                IngestOutcome::Duplicate(first.into_wire(true)?)
            } else {
                IngestOutcome::Conflict
            });
        }
        let mut advance = tx.prepare_cached("UPDATE clinics SET change_seq = ?2 WHERE id = ?1")?;
        for (clinic, (read, last)) in &counters {
            if last > read {
                advance.execute(params![clinic, last])?;
            }
        }
    }
    tx.commit()?;
    Ok(outcomes)
}

pub(super) fn report_count(conn: &Connection, clinic_id: Option<&str>) -> Result<u64, StoreError> {
    let n: i64 = match clinic_id {
        Some(c) => conn.query_row(
            "SELECT count(*) FROM reports WHERE clinic_id = ?1",
            [c],
            |r| r.get(0),
        )?,
        None => conn.query_row("SELECT count(*) FROM reports", [], |r| r.get(0))?,
    };
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use clinic_domain::{Activity, AssessmentDetails, PainScale, PainScore, PatientId};
    use rusqlite_migration::Migrations;
    use uuid::Uuid;

    use super::super::tests::store;
    use super::super::{Durability, MIGRATION_LIST, SqliteStore};
    use super::*;
    use crate::store::CentralStore;

    fn report(score: i64) -> NewReport {
        NewReport {
            clinic_id: "C1".into(),
            report_id: Uuid::from_u128(1),
            patient_id: PatientId::parse("P1").unwrap(),
            score: PainScore::new(PainScale::Nrs, score).unwrap(),
            submit_time: 100,
            assessed_at: None,
            recorded_by: None,
            device_id: None,
            supersedes: None,
            reason: None,
            details: AssessmentDetails::default(),
            follows_up: None,
            resolves: Vec::new(),
        }
    }

    fn detailed(score: i64) -> NewReport {
        NewReport {
            details: AssessmentDetails {
                body_site: Some("左膝".into()),
                activity: Some(Activity::Movement),
                note: Some("两行\n备注".into()),
                intervention: Some("paracetamol 1 g".into()),
            },
            follows_up: Some(Uuid::from_u128(9)),
            ..report(score)
        }
    }

    #[test]
    fn one_transaction_sorts_new_duplicate_and_conflict() {
        let (_d, s) = store();
        let out = s.ingest(&[report(3), report(3), report(4)]).unwrap();
        assert!(matches!(out[0], IngestOutcome::Accepted(_)));
        assert!(
            matches!(&out[1], IngestOutcome::Duplicate(r) if r.duplicate && r.submission.pain_score == 3)
        );
        assert_eq!(out[2], IngestOutcome::Conflict);
        assert_eq!(s.report_count(Some("C1")).unwrap(), 1);
    }

    #[test]
    fn details_are_stored_read_back_and_part_of_the_content() {
        let (_d, s) = store();
        let mut other_note = detailed(3);
        other_note.details.note = Some("其他".into());
        let out = s
            .ingest(&[detailed(3), detailed(3), other_note, report(3)])
            .unwrap();
        let IngestOutcome::Duplicate(replayed) = &out[1] else {
            panic!("{:?}", out[1]);
        };
        assert_eq!(replayed.submission.details, detailed(3).details);
        assert_eq!(replayed.submission.follows_up, detailed(3).follows_up);
        assert_eq!(out[2], IngestOutcome::Conflict);
        assert_eq!(
            out[3],
            IngestOutcome::Conflict,
            "dropping the details is other content too"
        );
    }

    #[test]
    fn a_report_stored_before_the_details_migration_still_replays_as_a_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            Migrations::from_slice(&MIGRATION_LIST[..1])
                .to_latest(&mut conn)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO clinics (id) VALUES ('C1');
                 INSERT INTO reports (clinic_id, report_id, patient_id, pain_score, scale, submit_time, received_at)
                 VALUES ('C1', '00000000-0000-0000-0000-000000000001', 'P1', 3, 'nrs', 100, 50);",
            )
            .unwrap();
        }
        let s = SqliteStore::open(&path, Durability::Full).unwrap();
        let out = s.ingest(&[report(3), detailed(3)]).unwrap();
        assert!(
            matches!(&out[0], IngestOutcome::Duplicate(r) if r.received_at == 50 && r.submission.details == AssessmentDetails::default()),
            "{:?}",
            out[0]
        );
        assert_eq!(out[1], IngestOutcome::Conflict);
    }
}
