//! The bedside save: `Desk::record_assessment`, the whole command a nurse's
//! "Save" runs (the signed-in check, the patient and the form checked, the report,
//! its outbox entry and its trail row in one durable transaction, the saved
//! report read back), on a directory of many patients with a long history of
//! reports. It runs on a plaintext store and on an encrypted one (SQLCipher, as
//! the app opens it: `Desk::open_encrypted`, the key in a 0600 file) in the same
//! run, their timed saves taking turns, and compares the two.
//!
//!   cargo bench -p clinic-desk-core --bench save                 # 1,000,000 patients
//!   BENCH_PATIENTS=100000 BENCH_SAVES=500 cargo bench -p clinic-desk-core --bench save
//!   BENCH_STORE=encrypted cargo bench -p clinic-desk-core --bench save   # one arm
//!
//! Under `cargo test --benches` it runs on 2,000 patients and a few saves, a smoke test.

use std::path::Path;
use std::time::{Duration, Instant};

use clinic_desk_core::{AssessmentInput, DEMO_PIN, DEMO_SEED, Desk};
use clinic_domain::{AssessmentForm, ClinicZone, demo};
use clinic_store::{StoreError, patients};

const NURSE: &str = "N001";

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Arm {
    label: &'static str,
    median: Duration,
    p95: Duration,
    p99: Duration,
}

/// An assessment of patient number `n`, with a note so the row has the size of a real one.
fn assessment(n: u64, score: i64) -> AssessmentInput {
    AssessmentInput {
        patient_id: demo::patient_id(n).to_string(),
        values: AssessmentForm {
            scale: "nrs".into(),
            score,
            body_site: Some("腰背部 lower back".into()),
            note: Some("夜间加重，翻身时明显 worse at night, when turning".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn open(label: &str, dir: &Path) -> Desk {
    let db = dir.join("desk.sqlite3");
    match label {
        "plaintext" => Desk::open(&db).unwrap(),
        _ => Desk::open_encrypted(Some(&dir.join("config")), &db).unwrap(),
    }
}

/// A store of `label`'s kind with `patients_count` patients and `history` saves
/// already made, its nurse signed in.
struct Prepared {
    label: &'static str,
    desk: Desk,
    rng: demo::DemoRng,
    times: Vec<Duration>,
    _dir: tempfile::TempDir,
}

impl Prepared {
    fn new(label: &'static str, patients_count: u64, history: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let desk = open(label, dir.path());
        desk.load_demo(DEMO_SEED, None).unwrap();
        let today = ClinicZone::default().today();
        let start = Instant::now();
        desk.database()
            .write(|c| {
                let tx = c.transaction()?;
                for p in demo::patients(DEMO_SEED, patients_count, today) {
                    patients::upsert(&tx, &p)?;
                }
                tx.commit()?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        desk.sign_in(NURSE, DEMO_PIN).unwrap();
        println!(
            "== {label} store: {patients_count} patients loaded in {:.1} s; {history} saves of history",
            start.elapsed().as_secs_f64()
        );
        let mut prepared = Self {
            label,
            desk,
            // Patients spread over the directory, as a ward's are.
            rng: demo::DemoRng::new(11),
            times: Vec::new(),
            _dir: dir,
        };
        for i in 0..history {
            prepared.save(patients_count, i);
        }
        prepared
    }

    fn save(&mut self, patients_count: u64, i: u64) -> Duration {
        let input = assessment(1 + self.rng.below(patients_count), (i % 11) as i64);
        let started = Instant::now();
        self.desk.record_assessment(&input).unwrap();
        started.elapsed()
    }

    fn summary(mut self) -> Arm {
        self.times.sort();
        let arm = Arm {
            label: self.label,
            median: percentile(&self.times, 0.5),
            p95: percentile(&self.times, 0.95),
            p99: percentile(&self.times, 0.99),
        };
        println!(
            "{} save: median {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, slowest {:.2} ms",
            arm.label,
            ms(arm.median),
            ms(arm.p95),
            ms(arm.p99),
            ms(*self.times.last().unwrap())
        );
        arm
    }
}

fn main() {
    // The bench's keys go to a file in its temp dir, never to the user's keyring.
    // SAFETY: set before any thread is started.
    unsafe { std::env::set_var(clinic_install::paths::KEYRING_ENV, "off") };
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let patients_count = knob("BENCH_PATIENTS", if bench_mode { 1_000_000 } else { 2_000 });
    let history = knob("BENCH_HISTORY", if bench_mode { 5_000 } else { 20 });
    let saves = knob("BENCH_SAVES", if bench_mode { 2_000 } else { 20 });
    let stores = std::env::var("BENCH_STORE").unwrap_or_else(|_| "plain,encrypted".into());
    let mut prepared: Vec<Prepared> = stores
        .split(',')
        .map(|s| match s.trim() {
            "plain" => Prepared::new("plaintext", patients_count, history),
            "encrypted" => Prepared::new("encrypted", patients_count, history),
            other => panic!("BENCH_STORE: unknown store {other:?} (plain, encrypted)"),
        })
        .collect();
    // The arms take turns, one save each, so whatever changes on the machine
    // while they run (a flush that gets slower, another process) falls on both
    // alike and the ratio compares like with like.
    println!("\n{saves} timed saves on each store, the stores taking turns");
    for i in 0..saves {
        for arm in &mut prepared {
            let took = arm.save(patients_count, history + i);
            arm.times.push(took);
        }
    }
    let arms: Vec<Arm> = prepared.into_iter().map(Prepared::summary).collect();
    if let [plain, enc] = &arms[..] {
        println!(
            "\nside by side      {:>10} {:>10} {:>7}",
            plain.label, enc.label, "ratio"
        );
        for (name, p, e) in [
            ("save median", plain.median, enc.median),
            ("save p95", plain.p95, enc.p95),
            ("save p99", plain.p99, enc.p99),
        ] {
            println!(
                "{name:<16} {:>8.2} ms {:>8.2} ms {:>6.2}x",
                ms(p),
                ms(e),
                ms(e) / ms(p)
            );
        }
        println!("goal: the encrypted median within 1.10x of the plaintext one");
    }
}
