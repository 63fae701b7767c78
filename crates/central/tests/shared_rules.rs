//! One rule set on both ends: every record the server answers 2xx for, a device
//! can store; every record a device's store refuses, the server refuses.
//!
//! Each case PUTs a record to a real server, pulls the feed as the sync engine
//! does (the record converted with no checks beyond the wire types, so the app's
//! SQLite schema is the judge) and applies it with `clinic_store::pull` to a real
//! temp app store. Independently, the same raw values are applied straight to a
//! fresh app store, to learn whether the device would refuse them.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use clinic_central::{TestServer, spawn_for_tests};
use clinic_domain::pin::PinRefusal;
use clinic_domain::{
    Appointment, AppointmentStatus, ClinicZone, DoctorId, Patient, PatientId, Sex, StaffMember,
    StaffRole,
};
use clinic_protocol::{AppointmentRecord, FeedPage, PatientRecord, StaffRecord, paths};
use clinic_store::Database;
use clinic_store::pull::{self, Applied, PulledItem, PulledStaff};
use rstest::rstest;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tempfile::TempDir;

struct Env {
    server: TestServer,
    client: reqwest::Client,
    token: String,
    _dir: TempDir,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_for_tests(&dir.path().join("central.db"), false).unwrap();
    let token = server.issue_token("C001").unwrap();
    Env {
        server,
        client: reqwest::Client::new(),
        token,
        _dir: dir,
    }
}

impl Env {
    /// `(status, error text)` of a PUT.
    async fn put(&self, path: &str, body: &Value) -> (u16, String) {
        let resp = self
            .client
            .put(format!("{}{path}", self.server.base_url()))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        (
            status,
            body["error"].as_str().unwrap_or_default().to_owned(),
        )
    }

    async fn feed<T: DeserializeOwned>(&self, path: &str) -> FeedPage<T> {
        self.client
            .get(format!(
                "{}{path}?after=0&limit=1000",
                self.server.base_url()
            ))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

struct Device {
    db: Database,
    _dir: TempDir,
}

fn device() -> Device {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("app.sqlite3")).unwrap();
    Device { db, _dir: dir }
}

/// As the sync engine converts a pulled patient: the wire types only.
fn wire_patient(id: &str, r: PatientRecord) -> Option<Patient> {
    Some(Patient {
        id: PatientId::parse(id).ok()?,
        name: r.name,
        sex: Sex::parse(&r.sex).ok()?,
        birth_date: r.birth_date,
        is_insured: r.is_insured,
        phone: r.phone,
    })
}

fn wire_staff(id: &str, r: StaffRecord) -> Option<PulledStaff> {
    let role = StaffRole::parse(&r.role).ok()?;
    if role == StaffRole::Doctor {
        DoctorId::parse(id).ok()?;
    }
    Some(PulledStaff {
        id: id.to_owned(),
        name: r.name,
        role,
        department: r.department,
        active: r.active,
        pin_verifier: r.pin_verifier,
    })
}

fn wire_appointment(id: &str, r: AppointmentRecord) -> Option<Appointment> {
    Some(Appointment {
        id: id.to_owned(),
        doctor_id: DoctorId::parse(&r.doctor_id).ok()?,
        patient_id: PatientId::parse(&r.patient_id).ok()?,
        starts_at: r.starts_at,
        ends_at: r.ends_at,
        status: AppointmentStatus::parse(&r.status).ok()?,
    })
}

fn shanghai_today() -> NaiveDate {
    ClinicZone::default().today()
}

/// Whether the app store takes `p` as it is.
fn device_stores_patient(p: Patient) -> bool {
    let d = device();
    let id = p.id.as_str().to_owned();
    // The store sets aside (never errors on) an item it refuses: refused = set aside.
    d.db.write(|c| pull::apply_patients(c, &[PulledItem::upsert(1, id, p)], 1))
        .is_ok_and(|set_aside| set_aside == 0)
}

fn patient_body(name: &str, sex: &str, birth: &str, phone: Option<&str>) -> Value {
    let mut body = json!({"name": name, "sex": sex, "birthDate": birth, "isInsured": true});
    if let Some(p) = phone {
        body["phone"] = json!(p);
    }
    body
}

/// The server accepted: the pulled feed goes into a real app store, and the
/// domain's own constructor (what a device may check a pulled record with) agrees.
/// The server refused: the error names the field.
fn check_refusal(status: u16, error: &str, expected: Result<(), &str>) {
    match expected {
        Ok(()) => assert_eq!(status, 200, "{error}"),
        Err(field) => {
            assert_eq!(status, 400, "expected a refusal naming {field}");
            assert!(error.starts_with(field), "names {field}: {error}");
        }
    }
}

#[rstest]
#[case::han("王芳", "female", "1980-06-15", Some("138-0013-8000"), Ok(()))]
#[case::trimmed("  王芳 ", "female", "1980-06-15", None, Ok(()))]
#[case::sixty_four_hanzi(&"张".repeat(64), "male", "1980-06-15", None, Ok(()))]
#[case::sixty_five_hanzi(&"张".repeat(65), "male", "1980-06-15", None, Err("name"))]
#[case::eighty_characters(&"a".repeat(80), "male", "1980-06-15", None, Err("name"))]
#[case::a_hundred_characters(&"a".repeat(100), "male", "1980-06-15", None, Err("name"))]
#[case::blank_name("  ", "male", "1980-06-15", None, Err("name"))]
#[case::right_to_left_override("王\u{202E}芳", "female", "1980-06-15", None, Err("name"))]
#[case::zero_width_space("王\u{200B}芳", "female", "1980-06-15", None, Err("name"))]
#[case::byte_order_mark("\u{FEFF}王芳", "female", "1980-06-15", None, Err("name"))]
#[case::markup("<img src=x>", "female", "1980-06-15", None, Err("name"))]
#[case::transcribed_name("阿沛·阿旺晋美", "male", "1950-02-01", None, Ok(()))]
#[case::impossible_date("王芳", "female", "2000-02-30", None, Err("birthDate"))]
#[case::not_a_date("王芳", "female", "28/11/1990", None, Err("birthDate"))]
#[case::year_before_zero("王芳", "female", "-0001-01-01", None, Err("birthDate"))]
#[case::before_1900("王芳", "female", "1899-12-31", None, Err("birthDate"))]
#[case::first_of_1900("王芳", "female", "1900-01-01", None, Ok(()))]
#[case::born_today("王芳", "female", &shanghai_today().to_string(), None, Ok(()))]
#[case::born_tomorrow("王芳", "female", &(shanghai_today() + Duration::days(2)).to_string(), None, Err("birthDate"))]
#[case::far_future("王芳", "female", "2999-01-01", None, Err("birthDate"))]
#[case::unknown_sex("王芳", "other", "1980-06-15", None, Err("sex"))]
#[case::phone_words("王芳", "female", "1980-06-15", Some("call me"), Err("phone"))]
#[case::phone_zero_width("王芳", "female", "1980-06-15", Some("138\u{200B}0013"), Err("phone"))]
#[case::phone_too_long("王芳", "female", "1980-06-15", Some(&*"1".repeat(33)), Err("phone"))]
#[case::phone_blank("王芳", "female", "1980-06-15", Some("  "), Ok(()))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_patient_the_server_accepts_a_device_stores(
    #[case] name: &str,
    #[case] sex: &str,
    #[case] birth: &str,
    #[case] phone: Option<&str>,
    #[case] expected: Result<(), &str>,
) {
    let env = env();
    let (status, error) = env
        .put("/v1/patients/P1", &patient_body(name, sex, birth, phone))
        .await;
    check_refusal(status, &error, expected);

    // What a device's store makes of the raw values, without any server in between.
    let raw_birth = birth.parse::<NaiveDate>().ok();
    let device_takes_raw = match (raw_birth, Sex::parse(sex)) {
        (Some(birth_date), Ok(sex)) => device_stores_patient(Patient {
            id: PatientId::parse("P1").unwrap(),
            name: name.trim().to_owned(),
            sex,
            birth_date,
            is_insured: true,
            phone: phone.map(str::to_owned),
        }),
        _ => false,
    };
    if !device_takes_raw {
        assert_ne!(status, 200, "the device refuses it, so the server must");
    }

    if status == 200 {
        let page = env.feed::<PatientRecord>(paths::FEED_PATIENTS).await;
        assert_eq!(page.items.len(), 1);
        let item = page.items.into_iter().next().unwrap();
        let record = item.data.unwrap();
        let checked = Patient::new(
            &item.id,
            &record.name,
            &record.sex,
            record.birth_date,
            record.is_insured,
            record.phone.as_deref(),
            shanghai_today(),
        );
        assert!(
            checked.is_ok(),
            "the domain accepts what the server served: {checked:?}"
        );
        let patient = wire_patient(&item.id, record).expect("wire types convert");
        let d = device();
        let set_aside =
            d.db.write(|c| {
                pull::apply_patients(
                    c,
                    &[PulledItem::upsert(
                        item.seq,
                        item.id.clone(),
                        patient.clone(),
                    )],
                    item.seq,
                )
            })
            .expect("the device stores what the server accepted");
        assert_eq!(set_aside, 0, "the device stores what the server accepted");
        let stored =
            d.db.read(|c| clinic_store::patients::get(c, &patient.id))
                .unwrap();
        assert_eq!(stored, Some(patient));
    }
}

/// The clinic's PIN policy (`clinic_domain::pin::PinPolicy::Clinic`) on the way
/// in: a refused PIN is a 400 naming its reason in English and Chinese, and
/// nothing is stored.
#[rstest]
#[case::six_digits("402817", None)]
#[case::twelve_digits("402817593016", None)]
#[case::the_demo_pin(clinic_domain::pin::DEMO_PIN, Some(PinRefusal::DemoPin))]
#[case::five_digits("40281", Some(PinRefusal::TooShort))]
#[case::repeated("111111", Some(PinRefusal::Repeated))]
#[case::ascending("123456", Some(PinRefusal::Sequential))]
#[case::descending("654321", Some(PinRefusal::Sequential))]
#[case::letters("40a817", Some(PinRefusal::NotDigits))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_sets_only_pins_the_clinic_policy_accepts(
    #[case] pin: &str,
    #[case] refusal: Option<PinRefusal>,
) {
    let env = env();
    let body = json!({"name": "李静", "role": "nurse", "department": "内科", "pin": pin});
    let (status, error) = env.put("/v1/staff/N1", &body).await;
    let stored = env.feed::<StaffRecord>(paths::FEED_STAFF).await.items;
    match refusal {
        None => {
            assert_eq!(status, 200, "{error}");
            let verifier = &stored[0].data.as_ref().unwrap().pin_verifier;
            assert!(clinic_domain::pin::verify(pin, verifier));
        }
        Some(refusal) => {
            assert_eq!(status, 400);
            assert!(error.starts_with("pin"), "{error}");
            assert!(
                error.contains(&refusal.to_string()) && error.contains(refusal.zh_cn()),
                "both languages: {error}"
            );
            assert!(stored.is_empty(), "nothing stored");
        }
    }
}

#[rstest]
#[case::nurse("N1", "李静", "nurse", "内科", Ok(()))]
#[case::doctor("D1", "张伟", "doctor", "疼痛科", Ok(()))]
#[case::clerk("C1", "赵敏", "clerk", "门诊", Ok(()))]
#[case::name_at_limit("N1", &"静".repeat(64), "nurse", "内科", Ok(()))]
#[case::name_over_limit("N1", &"静".repeat(65), "nurse", "内科", Err("name"))]
#[case::name_with_override("N1", "李\u{202E}静", "nurse", "内科", Err("name"))]
#[case::name_with_zero_width_joiner("N1", "李\u{200D}静", "nurse", "内科", Err("name"))]
#[case::blank_department("N1", "李静", "nurse", "  ", Err("department"))]
#[case::department_with_isolate("N1", "李静", "nurse", "内\u{2066}科", Err("department"))]
#[case::department_over_limit("N1", "李静", "nurse", &"科".repeat(65), Err("department"))]
#[case::unknown_role("N1", "李静", "porter", "内科", Err("role"))]
#[case::id_with_a_space("N%201", "李静", "nurse", "内科", Err("id"))]
#[case::id_too_long(&"N".repeat(33), "李静", "nurse", "内科", Err("id"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_staff_member_the_server_accepts_a_device_stores(
    #[case] id: &str,
    #[case] name: &str,
    #[case] role: &str,
    #[case] department: &str,
    #[case] expected: Result<(), &str>,
) {
    let env = env();
    let body = json!({"name": name, "role": role, "department": department, "pin": "402817"});
    let (status, error) = env.put(&format!("/v1/staff/{id}"), &body).await;
    check_refusal(status, &error, expected);

    let raw_id = id.replace("%20", " ");
    let device_takes_raw = StaffRole::parse(role).is_ok_and(|role| {
        let staff = PulledStaff {
            id: raw_id.clone(),
            name: name.to_owned(),
            role,
            department: department.to_owned(),
            active: true,
            pin_verifier: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        };
        let d = device();
        d.db.write(|c| pull::apply_staff(c, &[PulledItem::upsert(1, raw_id.clone(), staff)], 1))
            .is_ok_and(|set_aside| set_aside == 0)
    });
    if !device_takes_raw {
        assert_ne!(status, 200, "the device refuses it, so the server must");
    }

    if status == 200 {
        let page = env.feed::<StaffRecord>(paths::FEED_STAFF).await;
        let item = page.items.into_iter().next().unwrap();
        let record = item.data.unwrap();
        assert!(StaffMember::new(&item.id, &record.name, &record.role, &record.department).is_ok());
        let staff = wire_staff(&item.id, record).expect("wire types convert");
        let d = device();
        let set_aside =
            d.db.write(|c| {
                pull::apply_staff(
                    c,
                    &[PulledItem::upsert(item.seq, item.id.clone(), staff.clone())],
                    item.seq,
                )
            })
            .expect("the device stores what the server accepted");
        assert_eq!(set_aside, 0, "the device stores what the server accepted");
        let stored =
            d.db.read(|c| clinic_store::staff::get(c, &staff.id))
                .unwrap()
                .unwrap();
        assert_eq!(
            (stored.name, stored.department),
            (staff.name, staff.department)
        );
    }
}

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_764_300_000 + minutes * 60, 0).unwrap()
}

#[rstest]
#[case::half_an_hour("A1", "D1", 0, 30, "booked", Ok(()))]
#[case::cancelled("A1", "D1", 0, 30, "cancelled", Ok(()))]
#[case::ends_as_it_starts("A1", "D1", 0, 0, "booked", Err("endsAt"))]
#[case::ends_before_it_starts("A1", "D1", 30, 0, "booked", Err("endsAt"))]
#[case::unknown_status("A1", "D1", 0, 30, "maybe", Err("status"))]
#[case::bad_doctor_id("A1", "D 1", 0, 30, "booked", Err("doctorId"))]
#[case::bad_appointment_id("A%3B1", "D1", 0, 30, "booked", Err("id"))]
#[case::unknown_doctor("A1", "D404", 0, 30, "booked", Err("doctorId"))]
#[case::a_nurse_is_not_a_doctor("A1", "N1", 0, 30, "booked", Err("doctorId"))]
#[case::unknown_patient("A1", "D1", 0, 30, "booked", Err("patientId"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_appointment_the_server_accepts_a_device_stores(
    #[case] id: &str,
    #[case] doctor: &str,
    #[case] start_min: i64,
    #[case] end_min: i64,
    #[case] status_name: &str,
    #[case] expected: Result<(), &str>,
) {
    let env = env();
    let patient_id = if expected == Err("patientId") {
        "P404"
    } else {
        "P1"
    };
    let (s, e) = env
        .put(
            "/v1/patients/P1",
            &patient_body("王芳", "female", "1980-06-15", None),
        )
        .await;
    assert_eq!(s, 200, "{e}");
    let (s, e) = env
        .put(
            "/v1/staff/D1",
            &json!({"name": "张伟", "role": "doctor", "department": "内科", "pin": "402817"}),
        )
        .await;
    assert_eq!(s, 200, "{e}");
    let (s, e) = env
        .put(
            "/v1/staff/N1",
            &json!({"name": "李静", "role": "nurse", "department": "内科", "pin": "402817"}),
        )
        .await;
    assert_eq!(s, 200, "{e}");
    let body = json!({"doctorId": doctor, "patientId": patient_id, "startsAt": at(start_min),
        "endsAt": at(end_min), "status": status_name});
    let (status, error) = env.put(&format!("/v1/appointments/{id}"), &body).await;
    check_refusal(status, &error, expected);

    // A device that already has the patient and the doctor.
    let d = device();
    let patients = env.feed::<PatientRecord>(paths::FEED_PATIENTS).await;
    let staff = env.feed::<StaffRecord>(paths::FEED_STAFF).await;
    let patient_changes: Vec<_> = patients
        .items
        .into_iter()
        .map(|i| {
            PulledItem::upsert(
                i.seq,
                i.id.clone(),
                wire_patient(&i.id, i.data.unwrap()).unwrap(),
            )
        })
        .collect();
    let staff_changes: Vec<_> = staff
        .items
        .into_iter()
        .map(|i| {
            PulledItem::upsert(
                i.seq,
                i.id.clone(),
                wire_staff(&i.id, i.data.unwrap()).unwrap(),
            )
        })
        .collect();
    d.db.write(|c| pull::apply_patients(c, &patient_changes, patients.next_cursor))
        .unwrap();
    d.db.write(|c| pull::apply_staff(c, &staff_changes, staff.next_cursor))
        .unwrap();

    let raw = match (
        DoctorId::parse(doctor),
        AppointmentStatus::parse(status_name),
    ) {
        (Ok(doctor_id), Ok(status)) => Some(Appointment {
            id: id.replace("%3B", ";"),
            doctor_id,
            patient_id: PatientId::parse(patient_id).unwrap(),
            starts_at: at(start_min),
            ends_at: at(end_min),
            status,
        }),
        _ => None,
    };
    let device_takes_raw = raw.is_some_and(|a| {
        let scratch = device();
        scratch
            .db
            .write(|c| {
                pull::apply_patients(c, &patient_changes, 0)?;
                pull::apply_staff(c, &staff_changes, 0)?;
                let id = a.id.clone();
                pull::apply_appointments(c, &[PulledItem::upsert(1, id, a)], 1, false)
            })
            .is_ok_and(|applied| applied.applied == Applied::All && applied.set_aside == 0)
    });
    if !device_takes_raw {
        assert_ne!(status, 200, "the device refuses it, so the server must");
    }

    if status == 200 {
        let page = env
            .feed::<AppointmentRecord>(paths::FEED_APPOINTMENTS)
            .await;
        let item = page.items.into_iter().next().unwrap();
        let record = item.data.unwrap();
        assert!(
            Appointment::new(
                &item.id,
                &record.doctor_id,
                &record.patient_id,
                record.starts_at,
                record.ends_at,
                &record.status
            )
            .is_ok()
        );
        let appointment = wire_appointment(&item.id, record).expect("wire types convert");
        let applied =
            d.db.write(|c| {
                pull::apply_appointments(
                    c,
                    &[PulledItem::upsert(
                        item.seq,
                        item.id.clone(),
                        appointment.clone(),
                    )],
                    item.seq,
                    false,
                )
            })
            .expect("the device stores what the server accepted");
        assert_eq!((applied.applied, applied.set_aside), (Applied::All, 0));
        let stored: i64 =
            d.db.read(|c| {
                c.query_row(
                    "SELECT count(*) FROM appointments WHERE id = ?1 AND status = ?2",
                    [&appointment.id, &appointment.status.as_str().to_owned()],
                    |r| r.get(0),
                )
            })
            .unwrap();
        assert_eq!(stored, 1);
    }
}

/// The server refuses, naming the field, every text of a report the device would
/// refuse to write: `free_text` for the details, `correction_reason` for a reason.
#[rstest]
#[case::right_to_left_override('\u{202E}')]
#[case::left_to_right_isolate('\u{2066}')]
#[case::zero_width_space('\u{200B}')]
#[case::right_to_left_mark('\u{200F}')]
#[case::word_joiner('\u{2060}')]
#[case::byte_order_mark('\u{FEFF}')]
#[case::soft_hyphen('\u{00AD}')]
#[case::nul('\u{0}')]
#[case::escape('\u{1b}')]
#[case::carriage_return('\r')]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_texts_refuse_what_the_device_refuses(#[case] bad: char) {
    use clinic_domain::assessment::{
        self, MAX_BODY_SITE_CHARS, MAX_INTERVENTION_CHARS, MAX_NOTE_CHARS,
    };
    let env = env();
    let text = format!("ice{bad}pack");
    let device_refuses: [(&str, bool); 4] = [
        (
            "bodySite",
            assessment::free_text("body site", Some(&text), MAX_BODY_SITE_CHARS, false).is_err(),
        ),
        (
            "note",
            assessment::free_text("note", Some(&text), MAX_NOTE_CHARS, true).is_err(),
        ),
        (
            "intervention",
            assessment::free_text("intervention", Some(&text), MAX_INTERVENTION_CHARS, false)
                .is_err(),
        ),
        ("reason", assessment::correction_reason(&text).is_err()),
    ];
    for (field, refused_by_device) in device_refuses {
        assert!(refused_by_device, "the device refuses {bad:?} in {field}");
        let mut report = json!({"reportId": uuid::Uuid::now_v7(), "patientId": "P1", "painScore": 3,
            "submitTime": 1_764_300_000});
        report[field] = json!(text);
        if field == "reason" {
            report["supersedes"] = json!(uuid::Uuid::now_v7());
        }
        let resp = env
            .client
            .post(format!("{}/v1/reports", env.server.base_url()))
            .bearer_auth(&env.token)
            .json(&report)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 400, "{field}: {body}");
        assert!(body["error"].as_str().unwrap().starts_with(field), "{body}");
    }
    assert_eq!(env.server.report_count(None).unwrap(), 0);
}
