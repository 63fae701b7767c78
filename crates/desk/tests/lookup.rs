//! Patient lookup through the app core, on a real store file holding the demo clinic.

use chrono::NaiveDate;
use clinic_desk_core::{Desk, ErrorCode, PatientSearch};
use clinic_domain::lookup::MatchKind;
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
            Ok::<_, clinic_store::StoreError>(())
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
#[case::exact_id("Z0001", "Z0001", MatchKind::IdExact)]
#[case::lower_case_id("z0001", "Z0001", MatchKind::IdExact)]
#[case::id_prefix("Z000", "Z0001", MatchKind::IdPrefix)]
#[case::name("曾丽", "Z0001", MatchKind::NameExact)]
#[case::initials_first_reading("zl", "Z0001", MatchKind::Initials)]
#[case::initials_second_reading("cl", "Z0001", MatchKind::Initials)]
#[case::pinyin("zengli", "Z0001", MatchKind::Pinyin)]
#[case::pinyin_other_reading("cengli", "Z0001", MatchKind::Pinyin)]
#[case::pinyin_with_space("ceng li", "Z0001", MatchKind::Pinyin)]
#[case::shan("shanwei", "Z0002", MatchKind::Pinyin)]
#[case::dan("danwei", "Z0002", MatchKind::Pinyin)]
#[case::xie("xieming", "Z0003", MatchKind::Pinyin)]
#[case::jie("jieming", "Z0003", MatchKind::Pinyin)]
#[case::compound_surname_initials("oynn", "Z0004", MatchKind::Initials)]
#[case::substring_two_chars("阳娜", "Z0004", MatchKind::NameSubstring)]
#[case::substring_one_char("娜娜", "Z0004", MatchKind::NameSubstring)]
#[case::phone_tail("0000003", "Z0003", MatchKind::PhoneTail)]
#[case::full_width("ｚｅｎｇｌｉ", "Z0001", MatchKind::Pinyin)]
fn every_handle_finds_the_patient(
    clinic: Clinic,
    #[case] query: &str,
    #[case] id: &str,
    #[case] kind: MatchKind,
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
    assert_eq!(found.patients[0].matched, MatchKind::IdExact);
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

/// Real names a clerk meets: common surnames, surnames read differently as surnames,
/// compound surnames, and given names with characters that have rare readings. The
/// IDs follow this order, so a tie in a key is broken by it.
const NAMES: &[&str] = &[
    "曾丽",
    "张三",
    "张思朝",
    "朱俊",
    "周俊飞",
    "赵丽",
    "王伟",
    "李娜",
    "刘洋",
    "陈静",
    "杨帆",
    "黄磊",
    "孙丽",
    "单伟",
    "解明",
    "谢娜",
    "区嘉怡",
    "仇亮",
    "邱红",
    "朴智勇",
    "查海生",
    "盖军",
    "缪斌",
    "乐嘉",
    "秘红",
    "繁钦",
    "覃海",
    "黑立新",
    "员建",
    "召平",
    "隗嚣",
    "种师道",
    "折可适",
    "翟志刚",
    "冼星海",
    "纪晓岚",
    "卜凡",
    "尉迟恭",
    "万俟卨",
    "长孙无忌",
    "欧阳娜娜",
    "澹台灭明",
    "令狐冲",
    "诸葛亮",
    "李乐",
    "刘行",
    "尚明",
];

#[fixture]
fn directory() -> (tempfile::TempDir, Desk) {
    let dir = tempfile::tempdir().unwrap();
    let desk = Desk::open(&dir.path().join("desk.sqlite3")).unwrap();
    desk.database()
        .write(|c| {
            for (i, name) in NAMES.iter().enumerate() {
                let p = Patient {
                    id: PatientId::parse(&format!("N{:03}", i + 1)).unwrap(),
                    name: (*name).into(),
                    sex: Sex::Male,
                    birth_date: NaiveDate::from_ymd_opt(1960, 3, 3).unwrap(),
                    is_insured: true,
                    phone: None,
                };
                clinic_store::patients::upsert(c, &p)?;
            }
            Ok::<_, clinic_store::StoreError>(())
        })
        .unwrap();
    (dir, desk)
}

/// `query` finds exactly `found`, in this order: the names read the everyday way
/// first, then those that match only through a surname reading, and nothing that
/// matches only through a rare reading of a given name.
#[rstest]
#[case::everyday_initials_not_rare_readings("zs", &["张三", "张思朝", "种师道", "长孙无忌"])]
#[case::rare_reading_of_jun_is_not_indexed("zsf", &[])]
#[case::common_reading_of_zhu_jun("zj", &["朱俊", "周俊飞"])]
#[case::zhou_jun_fei("zjf", &["周俊飞"])]
#[case::zhu_read_shu_is_noise("shujun", &[])]
#[case::jun_read_shun_is_noise("zhushun", &[])]
#[case::common_before_surname_reading("zl", &["赵丽", "曾丽"])]
#[case::zeng_as_surname("zengli", &["曾丽"])]
#[case::zeng_misread_as_ceng("cengli", &["曾丽"])]
#[case::ceng_initials("cl", &["曾丽", "仇亮"])]
#[case::shan_as_surname("shanwei", &["单伟"])]
#[case::dan_misread("danwei", &["单伟"])]
#[case::common_shang_before_surname_shan("shan", &["尚明", "单伟"])]
#[case::xie_common_before_surname("xie", &["谢娜", "解明"])]
#[case::jie_misread("jieming", &["解明"])]
#[case::ou_as_surname("oujiayi", &["区嘉怡"])]
#[case::ou_initials("ojy", &["区嘉怡"])]
#[case::qu_misread("qujiayi", &["区嘉怡"])]
#[case::qiu_common_before_surname("qiu", &["邱红", "仇亮"])]
#[case::chou_misread("chouliang", &["仇亮"])]
#[case::piao("piaozhiyong", &["朴智勇"])]
#[case::zha("zhahaisheng", &["查海生"])]
#[case::cha_misread("chahaisheng", &["查海生"])]
#[case::ge("gejun", &["盖军"])]
#[case::gai_misread("gaijun", &["盖军"])]
#[case::miao("miaobin", &["缪斌"])]
#[case::yue_as_surname("yuejia", &["乐嘉"])]
#[case::yue_only_as_surname("liyue", &[])]
#[case::le_in_a_given_name("lile", &["李乐"])]
#[case::bi("bihong", &["秘红"])]
#[case::po("poqin", &["繁钦"])]
#[case::qin("qinhai", &["覃海"])]
#[case::tan_misread("tanhai", &["覃海"])]
#[case::he("helixin", &["黑立新"])]
#[case::hei_misread("heilixin", &["黑立新"])]
#[case::yun("yunjian", &["员建"])]
#[case::shao("shaoping", &["召平"])]
#[case::wei("weixiao", &["隗嚣"])]
#[case::chong("chongshidao", &["种师道"])]
#[case::she("shekeshi", &["折可适"])]
#[case::zhai("zhaizhigang", &["翟志刚"])]
#[case::xian("xianxinghai", &["冼星海"])]
#[case::ji("jixiaolan", &["纪晓岚"])]
#[case::bu("bufan", &["卜凡"])]
#[case::yuchi("yuchigong", &["尉迟恭"])]
#[case::yuchi_initials("ycg", &["尉迟恭"])]
#[case::moqi("moqixie", &["万俟卨"])]
#[case::moqi_initials("mqx", &["万俟卨"])]
#[case::zhangsun("zhangsunwuji", &["长孙无忌"])]
#[case::ouyang("oynn", &["欧阳娜娜"])]
#[case::tantai("tantaimieming", &["澹台灭明"])]
#[case::linghu("linghuchong", &["令狐冲"])]
#[case::zhuge("zgl", &["诸葛亮"])]
#[case::xing_in_a_given_name("liuxing", &["刘行"])]
#[case::hang_is_a_rare_reading_here("liuhang", &[])]
fn pinyin_reads_names_like_a_clerk(
    directory: (tempfile::TempDir, Desk),
    #[case] query: &str,
    #[case] found: &[&str],
) {
    let (_dir, desk) = directory;
    let names: Vec<_> = desk
        .search_patients(query)
        .unwrap()
        .patients
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, found, "{query}");
}
