//! The demo clinic: a deterministic, realistic clinic for demos, tests and benchmarks.
//!
//! The same seed and anchor date always give the same clinic, on every machine and
//! every version of our dependencies: the generator uses its own SplitMix64 rather
//! than a library RNG whose stream may change between releases, so tests can name
//! demo patients and the central server and the app can load the same clinic.

use chrono::{Duration, NaiveDate, NaiveTime};

use crate::{
    Appointment, AppointmentStatus, ClinicZone, Doctor, DoctorId, Patient, PatientId, Sex,
    StaffMember, StaffRole,
};

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever.
#[derive(Debug, Clone)]
pub struct DemoRng(u64);

impl DemoRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant at these sizes.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Surnames weighted roughly by frequency (the first ones are the commonest), with the
/// polyphonic ones a lookup must find by either reading (曾 zeng/ceng, 单 shan/dan, 解 xie/jie).
pub const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "高", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "潘", "袁", "蔡", "蒋", "余", "于", "杜", "叶", "程", "魏", "苏", "吕", "丁",
    "任", "卢", "姚", "沈", "钟", "姜", "崔", "谭", "陆", "范", "汪", "廖", "石", "金", "韦", "贾",
    "夏", "付", "方", "邹", "熊", "白", "孟", "秦", "邱", "侯", "江", "尹", "薛", "闫", "段", "雷",
    "龙", "黎", "史", "陶", "贺", "毛", "郝", "顾", "龚", "邵", "万", "覃", "武", "钱", "戴", "严",
    "欧阳", "单", "解", "查", "区", "诸葛", "司马",
];

/// Characters common in given names.
pub const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "桂", "英", "华", "玉", "萍", "红", "建", "文", "辉", "力", "鹏",
    "宇", "浩", "凯", "婷", "雪", "琳", "晨", "欣", "佳", "怡", "子", "涵", "梓", "轩", "博", "思",
    "雨", "梦", "俊", "志", "国", "海", "峰", "兰", "凤", "春", "燕", "玲", "龙", "林", "波", "斌",
    "飞", "亮", "东", "晓", "倩", "颖", "慧", "嘉", "一", "诺", "悦", "安", "乐", "瑞", "泽", "宁",
    "航", "天", "昊", "然", "彤", "薇", "蕾", "荣", "德", "成", "长", "重", "朝", "行", "乐", "和",
];

pub const DEPARTMENTS: &[&str] = &["内科", "外科", "儿科", "骨科", "疼痛科"];

pub fn random_name(rng: &mut DemoRng) -> String {
    // Skew towards common surnames: half the draws come from the top twenty.
    let surname = if rng.chance(50) {
        SURNAMES[rng.below(20) as usize]
    } else {
        *rng.pick(SURNAMES)
    };
    let mut name = String::from(surname);
    name.push_str(rng.pick::<&str>(GIVEN));
    if rng.chance(70) {
        name.push_str(rng.pick::<&str>(GIVEN));
    }
    name
}

pub fn random_phone(rng: &mut DemoRng) -> String {
    const PREFIXES: &[&str] = &[
        "130", "131", "135", "136", "138", "139", "150", "152", "158", "159", "176", "180", "186",
        "188", "199",
    ];
    format!("{}{:08}", *rng.pick(PREFIXES), rng.below(100_000_000))
}

/// The `n`-th patient of a directory: IDs are `P` and seven digits, so `P0000001`..
pub fn patient_id(n: u64) -> PatientId {
    PatientId::parse(&format!("P{n:07}")).expect("generated IDs are valid")
}

/// The `n`-th patient (from 1) of the directory for `seed`: a function of `n` alone,
/// so a 2,000-patient clinic is the start of a million-patient one and a benchmark
/// can draw any patient without generating the ones before it.
pub fn patient(seed: u64, n: u64, today: NaiveDate) -> Patient {
    let mut rng = DemoRng::new(seed ^ n.wrapping_mul(0xA24B_AED4_963E_E407));
    let name = random_name(&mut rng);
    let sex = if rng.chance(50) {
        Sex::Female
    } else {
        Sex::Male
    };
    let age_days = rng.below(95 * 365) as i64;
    let birth_date = today - Duration::days(age_days + 1);
    Patient {
        id: patient_id(n),
        name,
        sex,
        birth_date,
        is_insured: rng.chance(85),
        phone: rng.chance(95).then(|| random_phone(&mut rng)),
    }
}

/// Patients 1 to `count`, the same for the same seed.
pub fn patients(seed: u64, count: u64, today: NaiveDate) -> impl Iterator<Item = Patient> {
    (1..=count).map(move |n| patient(seed, n, today))
}

pub struct DemoClinic {
    pub clinic_id: String,
    pub clinic_name: String,
    pub zone: ClinicZone,
    pub patients: Vec<Patient>,
    pub doctors: Vec<Doctor>,
    /// Everyone who signs in on a ward device: the doctors, [`DEMO_NURSES`] nurses
    /// and [`DEMO_CLERKS`] front-desk clerks.
    pub staff: Vec<StaffMember>,
    pub appointments: Vec<Appointment>,
}

pub const DEMO_PATIENTS: u64 = 2_000;
pub const DEMO_DOCTORS: usize = 10;
pub const DEMO_DAYS: i64 = 8;
pub const DEMO_NURSES: usize = 6;
/// Front-desk clerks (`C001`…), named from their own random stream so adding them
/// changed nothing else of the demo clinic.
pub const DEMO_CLERKS: usize = 2;

/// A clinic with [`DEMO_PATIENTS`] patients, [`DEMO_DOCTORS`] doctors and appointments
/// from `today` through the coming week, in `zone`'s working hours.
pub fn clinic(clinic_id: &str, seed: u64, zone: ClinicZone, today: NaiveDate) -> DemoClinic {
    let patients: Vec<Patient> = patients(seed, DEMO_PATIENTS, today).collect();
    let mut rng = DemoRng::new(seed.rotate_left(17) ^ 0xD0C7_0125);
    let doctors: Vec<Doctor> = (1..=DEMO_DOCTORS)
        .map(|n| Doctor {
            id: DoctorId::parse(&format!("D{n:03}")).expect("generated IDs are valid"),
            name: random_name(&mut rng),
            department: DEPARTMENTS[(n - 1) % DEPARTMENTS.len()].to_owned(),
        })
        .collect();

    let nurses = (1..=DEMO_NURSES).map(|n| StaffMember {
        id: format!("N{n:03}"),
        name: random_name(&mut rng),
        role: StaffRole::Nurse,
        department: DEPARTMENTS[(n - 1) % DEPARTMENTS.len()].to_owned(),
    });
    let mut clerk_rng = DemoRng::new(seed.rotate_left(29) ^ 0xC1E2_0C5A);
    let clerks: Vec<StaffMember> = (1..=DEMO_CLERKS)
        .map(|n| StaffMember {
            id: format!("C{n:03}"),
            name: random_name(&mut clerk_rng),
            role: StaffRole::Clerk,
            department: "门诊".to_owned(),
        })
        .collect();
    let staff: Vec<StaffMember> = doctors
        .iter()
        .map(|d| StaffMember {
            id: d.id.to_string(),
            name: d.name.clone(),
            role: StaffRole::Doctor,
            department: d.department.clone(),
        })
        .chain(nurses)
        .chain(clerks)
        .collect();

    let mut appointments = Vec::new();
    for day in 0..DEMO_DAYS {
        let date = today + Duration::days(day);
        for doctor in &doctors {
            // Morning 08:00–12:00 and afternoon 13:30–17:00 in 15-minute slots, most of them booked.
            let slots = (0..16)
                .map(|i| (8 * 60) + i * 15)
                .chain((0..14).map(|i| (13 * 60 + 30) + i * 15));
            for minute in slots {
                if !rng.chance(55) {
                    continue;
                }
                let start = zone.at(
                    date,
                    NaiveTime::from_hms_opt(minute / 60, minute % 60, 0).unwrap(),
                );
                let patient = rng.pick(&patients);
                let status = demo_status(&mut rng, day);
                appointments.push(Appointment {
                    id: format!("A{}-{}-{:04}", date.format("%Y%m%d"), doctor.id, minute),
                    doctor_id: doctor.id.clone(),
                    patient_id: patient.id.clone(),
                    starts_at: start,
                    ends_at: start + Duration::minutes(15),
                    status,
                });
            }
        }
    }
    DemoClinic {
        clinic_id: clinic_id.to_owned(),
        clinic_name: format!("演示诊所 {clinic_id}"),
        zone,
        patients,
        doctors,
        staff,
        appointments,
    }
}

fn demo_status(rng: &mut DemoRng, day: i64) -> AppointmentStatus {
    let roll = rng.below(100);
    match (day, roll) {
        (_, 0..=5) => AppointmentStatus::Cancelled,
        (0, 6..=30) => AppointmentStatus::Completed,
        (0, 31..=35) => AppointmentStatus::NoShow,
        (0, 36..=50) => AppointmentStatus::CheckedIn,
        _ => AppointmentStatus::Booked,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
    }

    #[test]
    fn same_seed_same_clinic_other_seed_other_clinic() {
        let a = clinic("C1", 7, ClinicZone::default(), today());
        let b = clinic("C1", 7, ClinicZone::default(), today());
        let c = clinic("C1", 8, ClinicZone::default(), today());
        assert_eq!(a.patients, b.patients);
        assert_eq!(a.appointments, b.appointments);
        assert_ne!(a.patients, c.patients);
    }

    #[test]
    fn demo_clinic_is_realistic() {
        let c = clinic("C1", 1, ClinicZone::default(), today());
        assert_eq!(c.patients.len(), 2_000);
        assert_eq!(c.doctors.len(), 10);
        let ids: HashSet<_> = c.patients.iter().map(|p| &p.id).collect();
        assert_eq!(ids.len(), c.patients.len(), "patient IDs are unique");
        let appt_ids: HashSet<_> = c.appointments.iter().map(|a| &a.id).collect();
        assert_eq!(
            appt_ids.len(),
            c.appointments.len(),
            "appointment IDs are unique"
        );
        assert!(
            c.patients
                .iter()
                .all(|p| (2..=4).contains(&p.name.chars().count()))
        );
        assert!(c.patients.iter().all(|p| p.age_on(today()) < 96));
        let today_count = c
            .appointments
            .iter()
            .filter(|a| c.zone.date_of(a.starts_at) == today())
            .count();
        assert!(today_count > 100, "a busy clinic day, got {today_count}");
        let departments: HashSet<_> = c.doctors.iter().map(|d| &d.department).collect();
        assert!(departments.len() >= 3);
        assert_eq!(
            c.staff
                .iter()
                .filter(|s| s.role == StaffRole::Nurse)
                .count(),
            DEMO_NURSES
        );
        assert_eq!(
            c.staff
                .iter()
                .filter(|s| s.role == StaffRole::Clerk)
                .count(),
            DEMO_CLERKS
        );
    }

    #[test]
    fn a_small_directory_is_the_start_of_a_large_one() {
        let small: Vec<_> = patients(3, 50, today()).collect();
        let large: Vec<_> = patients(3, 500, today()).take(50).collect();
        assert_eq!(small, large);
    }
}
