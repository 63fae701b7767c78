//! Patient lookup through the app core, on a real store file holding the demo clinic.

use chrono::NaiveDate;
use clinic_desk_core::{Desk, ErrorCode, MatchKindDto, PatientSearch};
use clinic_domain::{ClinicZone, Patient, PatientId, Sex, demo, lookup};
use rstest::{fixture, rstest};

const TODAY: (i32, u32, u32) = (2026, 11, 28);

struct Clinic {
    _dir: tempfile::TempDir,
    desk: Desk,
    demo: demo::DemoClinic,
}

#[fixture]
fn clinic() -> Clinic {
    let dir = tempfile::tempdir().unwrap();
    let desk = Desk::open(&dir.path().join("desk.sqlite3")).unwrap();
    let today = NaiveDate::from_ymd_opt(TODAY.0, TODAY.1, TODAY.2).unwrap();
    desk.load_demo(clinic_desk_core::DEMO_SEED, Some(today))
        .unwrap();
    let extra = [
        ("Z0001", "曾丽"),
        ("Z0002", "单伟"),
        ("Z0003", "解明"),
        ("Z0004", "欧阳娜娜"),
    ];
    desk.database()
        .write(|c| {
            for (id, name) in extra {
                let p = Patient {
                    id: PatientId::parse(id).unwrap(),
                    name: name.into(),
                    sex: Sex::Female,
                    birth_date: NaiveDate::from_ymd_opt(1970, 5, 5).unwrap(),
                    is_insured: false,
                    phone: Some(format!("1390000{}", &id[1..])),
                };
                clinic_store::patients::upsert(c, &p)?;
            }
            Ok(())
        })
        .unwrap();
    let demo = demo::clinic(
        "DEMO",
        clinic_desk_core::DEMO_SEED,
        ClinicZone::default(),
        today,
    );
    Clinic {
        _dir: dir,
        desk,
        demo,
    }
}

fn ids(found: &PatientSearch) -> Vec<&str> {
    found.patients.iter().map(|p| p.id.as_str()).collect()
}

#[rstest]
#[case::exact_id("Z0001", "Z0001", MatchKindDto::IdExact)]
#[case::lower_case_id("z0001", "Z0001", MatchKindDto::IdExact)]
#[case::id_prefix("Z000", "Z0001", MatchKindDto::IdPrefix)]
#[case::name("曾丽", "Z0001", MatchKindDto::NameExact)]
#[case::initials_first_reading("zl", "Z0001", MatchKindDto::Initials)]
#[case::initials_second_reading("cl", "Z0001", MatchKindDto::Initials)]
#[case::pinyin("zengli", "Z0001", MatchKindDto::Pinyin)]
#[case::pinyin_other_reading("cengli", "Z0001", MatchKindDto::Pinyin)]
#[case::pinyin_with_space("ceng li", "Z0001", MatchKindDto::Pinyin)]
#[case::shan("shanwei", "Z0002", MatchKindDto::Pinyin)]
#[case::dan("danwei", "Z0002", MatchKindDto::Pinyin)]
#[case::xie("xieming", "Z0003", MatchKindDto::Pinyin)]
#[case::jie("jieming", "Z0003", MatchKindDto::Pinyin)]
#[case::compound_surname_initials("oynn", "Z0004", MatchKindDto::Initials)]
#[case::substring_two_chars("阳娜", "Z0004", MatchKindDto::NameSubstring)]
#[case::substring_one_char("娜娜", "Z0004", MatchKindDto::NameSubstring)]
#[case::phone_tail("0000003", "Z0003", MatchKindDto::PhoneTail)]
#[case::full_width("ｚｅｎｇｌｉ", "Z0001", MatchKindDto::Pinyin)]
fn every_handle_finds_the_patient(
    clinic: Clinic,
    #[case] query: &str,
    #[case] id: &str,
    #[case] kind: MatchKindDto,
) {
    let found = clinic.desk.search_patients(query).unwrap();
    let hit = found
        .patients
        .iter()
        .find(|p| p.id == id)
        .unwrap_or_else(|| panic!("{query}: {:?}", ids(&found)));
    assert_eq!(hit.matched, kind, "{query}");
}

#[rstest]
fn demo_patients_are_found_by_name_pinyin_and_phone(clinic: Clinic) {
    for p in clinic.demo.patients.iter().step_by(97) {
        let by_name = clinic.desk.search_patients(&p.name).unwrap();
        assert!(
            by_name.patients.iter().any(|s| s.id == p.id.as_str()) || by_name.truncated,
            "{} by name",
            p.id
        );
        let pinyin = lookup::patient_keys(p)
            .into_iter()
            .find(|(k, _)| *k == lookup::KeyKind::Pinyin)
            .unwrap()
            .1;
        let by_pinyin = clinic.desk.search_patients(&pinyin).unwrap();
        assert!(
            by_pinyin.patients.iter().any(|s| s.id == p.id.as_str()) || by_pinyin.truncated,
            "{pinyin}"
        );
        if let Some(phone) = &p.phone {
            let by_phone = clinic
                .desk
                .search_patients(&phone[phone.len() - 8..])
                .unwrap();
            assert!(
                by_phone.patients.iter().any(|s| s.id == p.id.as_str()),
                "{} by phone",
                p.id
            );
        }
    }
}

#[rstest]
fn results_are_ranked_by_kind_of_match(clinic: Clinic) {
    let found = clinic.desk.search_patients("张").unwrap();
    assert!(found.truncated, "a common surname matches more than a page");
    let kinds: Vec<_> = found.patients.iter().map(|p| p.matched).collect();
    let mut sorted = kinds.clone();
    sorted.sort_by_key(|k| *k as u8);
    assert_eq!(kinds, sorted);
    assert!(
        found.patients.iter().all(|p| p.name.starts_with('张')),
        "surname matches come before substrings"
    );

    // An exact ID beats every prefix of it.
    let id = clinic.demo.patients[9].id.as_str();
    let found = clinic.desk.search_patients(id).unwrap();
    assert_eq!(found.patients[0].id, id);
    assert_eq!(found.patients[0].matched, MatchKindDto::IdExact);
}

#[rstest]
#[case("'")]
#[case("\"")]
#[case("*")]
#[case("%")]
#[case("_")]
#[case("%_%")]
#[case("张%")]
#[case("NEAR(a b)")]
#[case("a OR b")]
#[case("\"zs\" AND name:*")]
#[case("'; DROP TABLE patients; --")]
#[case("1' OR '1'='1")]
#[case("\\")]
#[case("\u{0}")]
#[case("😀")]
#[case("\u{10FFFF}")]
#[case(&"张".repeat(64))]
#[case(&"9".repeat(64))]
fn hostile_queries_are_searched_literally(clinic: Clinic, #[case] query: &str) {
    let found = clinic.desk.search_patients(query).unwrap();
    assert!(found.patients.len() <= clinic_desk_core::SEARCH_LIMIT);
    assert!(
        clinic.desk.search_patients("Z0001").unwrap().patients.len() == 1,
        "the store is intact"
    );
}

#[rstest]
#[case(&"张".repeat(65))]
#[case(&"a".repeat(10_000))]
fn overlong_queries_get_a_clear_error(clinic: Clinic, #[case] query: &str) {
    let err = clinic.desk.search_patients(query).unwrap_err();
    assert_eq!(err.code, ErrorCode::QueryTooLong);
}
