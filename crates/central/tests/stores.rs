//! The store contract below HTTP, on both stores: the same calls give the same answers.

mod common;

use std::sync::Arc;

use clinic_central::auth::{EnrolmentCodeRecord, Scope, TokenAuth};
use clinic_central::store::{
    CentralStore, Durability, ImportRows, IngestOutcome, NewReport, Redeemed, SqliteStore,
    StoreError, TokenRecord,
};
use clinic_domain::{
    AssessmentDetails, ClinicZone, PainScale, PainScore, PatientId, StaffMember, StaffRole,
};
use common::{Backend, postgres_database, postgres_store};
use rstest::rstest;
use uuid::Uuid;

struct Store {
    store: Arc<dyn CentralStore>,
    _dir: tempfile::TempDir,
}

fn store(backend: Backend) -> Store {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn CentralStore> = match backend {
        Backend::Sqlite => {
            Arc::new(SqliteStore::open(&dir.path().join("c.db"), Durability::Full).unwrap())
        }
        Backend::Postgres => postgres_store(&postgres_database()),
    };
    store.ensure_clinic("C1", ClinicZone::default()).unwrap();
    Store { store, _dir: dir }
}

fn report(id: u128, score: i64) -> NewReport {
    NewReport {
        clinic_id: "C1".into(),
        report_id: Uuid::from_u128(id),
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

fn kinds(out: &[IngestOutcome]) -> Vec<&'static str> {
    out.iter()
        .map(|o| match o {
            IngestOutcome::Accepted(_) => "accepted",
            IngestOutcome::Duplicate(r) if r.duplicate => "duplicate",
            IngestOutcome::Duplicate(_) => "duplicate without the flag",
            IngestOutcome::Conflict => "conflict",
        })
        .collect()
}

#[rstest]
fn one_group_sorts_new_duplicate_and_conflict_in_order(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let s = store(backend);
    // Out of key order on purpose: answers follow the request order, not the key order.
    let out = s
        .store
        .ingest(&[
            report(9, 3),
            report(1, 3),
            report(9, 3),
            report(9, 4),
            report(1, 5),
        ])
        .unwrap();
    assert_eq!(
        kinds(&out),
        ["accepted", "accepted", "duplicate", "conflict", "conflict"]
    );
    let later = s
        .store
        .ingest(&[report(1, 5), report(1, 3), report(2, 0), report(1, 3)])
        .unwrap();
    assert_eq!(
        kinds(&later),
        ["conflict", "duplicate", "accepted", "duplicate"]
    );
    let IngestOutcome::Duplicate(replay) = &later[1] else {
        unreachable!()
    };
    let IngestOutcome::Accepted(first) = &out[1] else {
        unreachable!()
    };
    assert_eq!(
        replay.received_at, first.received_at,
        "the first copy's receipt"
    );
    assert_eq!(s.store.report_count(Some("C1")).unwrap(), 3);
    assert_eq!(s.store.report_count(None).unwrap(), 3);
}

#[rstest]
fn reports_of_one_id_in_two_clinics_are_two_reports(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let s = store(backend);
    s.store.ensure_clinic("C2", ClinicZone::default()).unwrap();
    let mut other = report(1, 3);
    other.clinic_id = "C2".into();
    let out = s.store.ingest(&[report(1, 3), other]).unwrap();
    assert_eq!(kinds(&out), ["accepted", "accepted"]);
    assert_eq!(s.store.report_count(Some("C2")).unwrap(), 1);
}

#[rstest]
fn a_group_naming_an_unknown_clinic_stores_nothing(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let s = store(backend);
    let mut stray = report(2, 3);
    stray.clinic_id = "NOPE".into();
    assert!(s.store.ingest(&[report(1, 3), stray]).is_err());
    assert_eq!(s.store.report_count(None).unwrap(), 0);
    // The same group minus the stray report goes in: nothing was left half-written.
    let out = s.store.ingest(&[report(1, 3)]).unwrap();
    assert_eq!(kinds(&out), ["accepted"]);
}

#[rstest]
fn failed_deletes_burn_no_number_and_a_new_member_needs_a_pin(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let s = store(backend);
    let p404 = PatientId::parse("P404").unwrap();
    assert_eq!(s.store.delete_patient("C1", &p404).unwrap(), None);
    assert_eq!(s.store.delete_appointment("C1", "A1").unwrap(), None);
    let member = StaffMember {
        id: "N1".into(),
        name: "李".into(),
        role: StaffRole::Nurse,
        department: "骨科".into(),
    };
    assert!(matches!(
        s.store.upsert_staff("C1", &member, true, None),
        Err(StoreError::PinRequired)
    ));
    assert_eq!(s.store.patients_feed("C1", 0, 10).unwrap().next_cursor, 0);
    assert_eq!(
        s.store
            .upsert_staff("C1", &member, true, Some("v"))
            .unwrap(),
        1
    );
    assert_eq!(
        s.store.upsert_staff("C1", &member, false, None).unwrap(),
        2,
        "an existing member keeps the verifier"
    );
    let staff = s.store.staff_feed("C1", 0, 10).unwrap();
    assert_eq!(staff.items.len(), 1);
    let data = staff.items[0].data.as_ref().unwrap();
    assert_eq!((data.pin_verifier.as_str(), data.active), ("v", false));
}

/// The point read an appointment PUT asks (is this a doctor of the clinic?) agrees
/// with the staff feed, inactive members and other clinics included.
#[rstest]
fn a_staff_members_role_is_read_where_the_feed_has_it(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let s = store(backend);
    s.store.ensure_clinic("C2", ClinicZone::default()).unwrap();
    for (id, role, active) in [
        ("D1", StaffRole::Doctor, true),
        ("N1", StaffRole::Nurse, false),
    ] {
        let member = StaffMember {
            id: id.into(),
            name: "李".into(),
            role,
            department: "骨科".into(),
        };
        s.store
            .upsert_staff("C1", &member, active, Some("v"))
            .unwrap();
    }
    for (clinic, id, expected) in [
        ("C1", "D1", Some(StaffRole::Doctor)),
        ("C1", "N1", Some(StaffRole::Nurse)),
        ("C1", "D404", None),
        ("C2", "D1", None),
    ] {
        assert_eq!(
            s.store.staff_role(clinic, id).unwrap(),
            expected,
            "{clinic} {id}"
        );
        assert_eq!(
            clinic_central::store::staff_role_from_feed(s.store.as_ref(), clinic, id).unwrap(),
            expected,
            "{clinic} {id}"
        );
    }
}

#[rstest]
fn imports_and_tokens_behave_alike(#[values(Backend::Sqlite, Backend::Postgres)] backend: Backend) {
    let s = store(backend);
    let rows = ImportRows::Patients(
        clinic_domain::demo::patients(1, 3, ClinicZone::default().today()).collect(),
    );
    assert!(matches!(
        s.store.import("NOPE", rows.clone()),
        Err(StoreError::UnknownClinic(_))
    ));
    assert_eq!(s.store.import("C1", rows.clone()).unwrap(), 3);
    assert_eq!(
        s.store.import("C1", rows).unwrap(),
        3,
        "a re-import upserts"
    );
    let feed = s.store.patients_feed("C1", 0, 10).unwrap();
    let seqs: Vec<i64> = feed.items.iter().map(|i| i.seq).collect();
    assert_eq!(
        seqs,
        [4, 5, 6],
        "the latest version of each, numbered after the first import"
    );

    let token = TokenRecord {
        id: "tok_1".into(),
        clinic_id: "C1".into(),
        sha256: [7; 32],
        label: None,
        scope: Scope::Device,
    };
    s.store.insert_token(&token).unwrap();
    let auth = |hash: [u8; 32]| s.store.token_for_hash(&hash).unwrap();
    assert_eq!(
        auth([7; 32]),
        Some(TokenAuth {
            token_id: "tok_1".into(),
            clinic_id: "C1".into(),
            scope: Scope::Device,
        })
    );
    assert!(
        s.store.insert_token(&token).is_err(),
        "token IDs are unique"
    );
    let admin = TokenRecord {
        id: "tok_2".into(),
        sha256: [8; 32],
        label: Some("HIS".into()),
        scope: Scope::Admin,
        ..token.clone()
    };
    s.store.insert_token(&admin).unwrap();
    assert_eq!(auth([8; 32]).map(|t| t.scope), Some(Scope::Admin));
    s.store
        .touch_token("tok_1", 1_764_300_000, Some("10.0.0.7"))
        .unwrap();
    assert!(s.store.revoke_token("tok_1").unwrap());
    assert!(!s.store.revoke_token("tok_1").unwrap());
    assert_eq!(auth([7; 32]), None);
    assert_eq!(auth([8; 32]).map(|t| t.token_id).as_deref(), Some("tok_2"));
    let listed = s.store.tokens("C1").unwrap();
    let by_id = |id: &str| listed.iter().find(|t| t.id == id).unwrap().clone();
    assert_eq!(listed.len(), 2);
    let one = by_id("tok_1");
    assert_eq!(
        (
            one.scope,
            one.last_seen_at,
            one.last_seen_address.as_deref(),
            one.revoked_at.is_some()
        ),
        (Scope::Device, Some(1_764_300_000), Some("10.0.0.7"), true)
    );
    let two = by_id("tok_2");
    assert_eq!(
        (
            two.scope,
            two.label.as_deref(),
            two.last_seen_at,
            two.revoked_at
        ),
        (Scope::Admin, Some("HIS"), None, None)
    );
    assert!(s.store.tokens("C2").unwrap().is_empty());
    s.store.check().unwrap();
}

#[rstest]
fn an_enrolment_code_is_spent_once_within_its_time_for_its_clinic(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let s = store(backend);
    s.store.ensure_clinic("C2", ClinicZone::default()).unwrap();
    let code = |id: &str, sha: u8, label: Option<&str>| EnrolmentCodeRecord {
        id: id.into(),
        clinic_id: "C1".into(),
        sha256: [sha; 32],
        label: label.map(str::to_owned),
        expires_at: 1_000,
    };
    s.store
        .insert_enrolment_code(&code("enr_1", 1, Some("ward 3")))
        .unwrap();
    s.store
        .insert_enrolment_code(&code("enr_2", 2, None))
        .unwrap();
    let token = |id: &str, clinic: &str, sha: u8| TokenRecord {
        id: id.into(),
        clinic_id: clinic.into(),
        sha256: [sha; 32],
        label: Some("host-a".into()),
        scope: Scope::Device,
    };
    let redeem = |sha: u8, now: i64, t: &TokenRecord| {
        s.store.redeem_enrolment_code(&[sha; 32], now, t).unwrap()
    };
    // Refusals store nothing and leave the code as it was.
    assert_eq!(redeem(9, 10, &token("tok_a", "C1", 100)), Redeemed::Unknown);
    assert_eq!(
        redeem(1, 10, &token("tok_a", "C2", 100)),
        Redeemed::OtherClinic
    );
    assert_eq!(
        redeem(1, 1_000, &token("tok_a", "C1", 100)),
        Redeemed::Expired
    );
    assert_eq!(s.store.token_for_hash(&[100; 32]).unwrap(), None);
    // The code's label wins over the device's own.
    assert_eq!(
        redeem(1, 999, &token("tok_a", "C1", 100)),
        Redeemed::Enrolled {
            label: Some("ward 3".into())
        }
    );
    assert_eq!(
        s.store.token_for_hash(&[100; 32]).unwrap().map(|t| t.scope),
        Some(Scope::Device)
    );
    assert_eq!(redeem(1, 999, &token("tok_b", "C1", 101)), Redeemed::Used);
    assert_eq!(s.store.token_for_hash(&[101; 32]).unwrap(), None);
    assert_eq!(
        redeem(2, 10, &token("tok_c", "C1", 102)),
        Redeemed::Enrolled {
            label: Some("host-a".into())
        }
    );
    let ids: Vec<String> = s
        .store
        .tokens("C1")
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"tok_a".to_owned()) && ids.contains(&"tok_c".to_owned()));
    assert!(s.store.tokens("C2").unwrap().is_empty());
}
