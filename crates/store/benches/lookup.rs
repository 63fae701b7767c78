//! Patient lookup on a million-patient directory: each kind of query through the
//! store's search, against the naive way (`LIKE '%q%'` over the table, ranked), in
//! the same run on the same file. Everything runs twice, on a plaintext store and
//! on an encrypted one (SQLCipher, as the app opens it), and the two are compared.
//!
//!   cargo bench -p clinic-store --bench lookup            # 1,000,000 patients
//!   BENCH_PATIENTS=100000 cargo bench -p clinic-store --bench lookup
//!   BENCH_STORE=encrypted cargo bench -p clinic-store --bench lookup   # one arm
//!
//! Under `cargo test --benches` it runs on 20,000 patients so it stays a smoke test.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use clinic_domain::lookup::{KeyKind, patient_keys};
use clinic_domain::{Patient, demo};
use clinic_store::{Database, StoreError, StoreKey, patients};
use rusqlite::params;

const SEED: u64 = 2026;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The naive way: every query a full scan, ranked like the real search.
fn naive(conn: &rusqlite::Connection, q: &str) -> usize {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id FROM patients
             WHERE id LIKE '%' || ?1 || '%' OR name LIKE '%' || ?1 || '%' OR phone LIKE '%' || ?1 || '%'
             ORDER BY CASE WHEN id = ?1 THEN 0 WHEN name = ?1 THEN 1 WHEN name LIKE ?1 || '%' THEN 2 ELSE 3 END, name
             LIMIT 51",
        )
        .unwrap();
    stmt.query_map(params![q], |r| r.get::<_, String>(0))
        .unwrap()
        .count()
}

fn timed(samples: &[String], mut f: impl FnMut(&str) -> usize) -> (Vec<Duration>, usize) {
    let mut times = Vec::with_capacity(samples.len());
    let mut hits = 0;
    for q in samples {
        let start = Instant::now();
        hits += f(q);
        times.push(start.elapsed());
    }
    times.sort();
    (times, hits)
}

/// One arm's figures: each query kind's median and p99, the two pages' times.
struct Arm {
    label: &'static str,
    load: Duration,
    kinds: Vec<(&'static str, Duration, Duration)>,
    pages: Vec<(&'static str, Duration)>,
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let count: u64 = std::env::var("BENCH_PATIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench_mode { 1_000_000 } else { 20_000 });
    let samples = if bench_mode { (400, 25) } else { (40, 3) };
    let stores = std::env::var("BENCH_STORE").unwrap_or_else(|_| "plain,encrypted".into());
    let mut arms = Vec::new();
    for store in stores.split(',') {
        let (label, key) = match store.trim() {
            "plain" => ("plaintext", None),
            "encrypted" => ("encrypted", Some(StoreKey::generate())),
            other => panic!("BENCH_STORE: unknown store {other:?} (plain, encrypted)"),
        };
        arms.push(arm(label, key.as_ref(), count, samples));
    }
    if let [plain, enc] = &arms[..] {
        println!(
            "\n{:<16} {:>12} {:>12} {:>7} {:>12} {:>12} {:>7}",
            "side by side", "plain med", "enc med", "ratio", "plain p99", "enc p99", "ratio"
        );
        let mut worst: f64 = 0.0;
        for ((name, pm, pp), (_, em, ep)) in plain.kinds.iter().zip(&enc.kinds) {
            let (rm, rp) = (ms(*em) / ms(*pm), ms(*ep) / ms(*pp));
            worst = worst.max(rm);
            println!(
                "{:<16} {:>12.3} {:>12.3} {:>6.2}x {:>12.3} {:>12.3} {:>6.2}x",
                name,
                ms(*pm),
                ms(*em),
                rm,
                ms(*pp),
                ms(*ep),
                rp
            );
        }
        for ((name, p), (_, e)) in plain.pages.iter().zip(&enc.pages) {
            println!(
                "page of 1,000 {:<8} {:>9.1} ms {:>9.1} ms {:>6.2}x",
                name,
                ms(*p),
                ms(*e),
                ms(*e) / ms(*p)
            );
        }
        println!(
            "load: {:.1} s {} vs {:.1} s {}; slowest median ratio {worst:.2}x (goal <= 1.10x)",
            plain.load.as_secs_f64(),
            plain.label,
            enc.load.as_secs_f64(),
            enc.label
        );
    }
}

fn arm(
    label: &'static str,
    key: Option<&StoreKey>,
    count: u64,
    (fast_samples, naive_samples): (usize, usize),
) -> Arm {
    let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookup.sqlite3");
    let db = match key {
        Some(key) => Database::open_encrypted(&path, key).unwrap(),
        None => Database::open(&path).unwrap(),
    };

    println!(
        "\n== {label} store: patient lookup benchmark: {count} patients, {fast_samples} queries per kind (naive: {naive_samples})"
    );
    let start = Instant::now();
    db.write(|c| {
        let tx = c.transaction()?;
        for p in demo::patients(SEED, count, today) {
            patients::upsert(&tx, &p)?;
        }
        tx.commit()?;
        Ok::<_, StoreError>(())
    })
    .unwrap();
    let load = start.elapsed();

    // Rebuilding the index alone, as a store does once after an upgrade.
    db.write(|c| {
        c.execute(
            "DELETE FROM clinic_settings WHERE key = 'search_index_version'",
            [],
        )
    })
    .unwrap();
    let start = Instant::now();
    db.write(patients::ensure_search_index).unwrap();
    let rebuild = start.elapsed();
    db.write(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;"))
        .unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    let keys: i64 = db
        .read(|c| c.query_row("SELECT count(*) FROM patient_search_keys", [], |r| r.get(0)))
        .unwrap();
    println!(
        "load with index: {:.1} s; index rebuild alone: {:.1} s; database: {:.0} MiB, {keys} keys ({:.1} per patient)",
        load.as_secs_f64(),
        rebuild.as_secs_f64(),
        size as f64 / (1 << 20) as f64,
        keys as f64 / count as f64
    );

    // Queries a clerk would type, drawn from the directory itself.
    let mut rng = demo::DemoRng::new(7);
    let sample: Vec<Patient> = (0..fast_samples)
        .map(|_| demo::patient(SEED, 1 + rng.below(count), today))
        .collect();
    let key = |p: &Patient, kind| {
        patient_keys(p)
            .into_iter()
            .find(|(k, _)| *k == kind)
            .unwrap()
            .1
    };
    let chars = |p: &Patient, n: usize| p.name.chars().take(n).collect::<String>();
    type Make<'a> = Box<dyn Fn(&Patient) -> String + 'a>;
    let kinds: Vec<(&'static str, Make)> = vec![
        (
            "ID prefix",
            Box::new(|p: &Patient| p.id.as_str()[..6].to_owned()),
        ),
        ("exact ID (scan)", Box::new(|p: &Patient| p.id.to_string())),
        ("1-char name", Box::new(move |p: &Patient| chars(p, 1))),
        ("2-char name", Box::new(move |p: &Patient| chars(p, 2))),
        ("3-char name", Box::new(move |p: &Patient| chars(p, 3))),
        (
            "name substring",
            Box::new(|p: &Patient| p.name.chars().skip(1).collect()),
        ),
        (
            "initials",
            Box::new(move |p: &Patient| key(p, KeyKind::Initials)),
        ),
        (
            "full pinyin",
            Box::new(move |p: &Patient| key(p, KeyKind::Pinyin)),
        ),
        // The patient's own surname reading when it has one, else a surname-reading
        // query from a fixed list: either way the plan runs all four pinyin probes.
        (
            "surname reading",
            Box::new(move |p: &Patient| {
                const READ_AS_SURNAME: [&str; 8] = [
                    "zengl", "shanw", "xiem", "qiul", "piaoz", "zhah", "miaob", "gej",
                ];
                patient_keys(p)
                    .into_iter()
                    .find(|(k, _)| *k == KeyKind::SurnamePinyin)
                    .map(|(_, v)| v)
                    .unwrap_or_else(|| {
                        READ_AS_SURNAME[p.name.len() % READ_AS_SURNAME.len()].to_owned()
                    })
            }),
        ),
        (
            "phone tail",
            Box::new(|p: &Patient| {
                p.phone
                    .as_deref()
                    .map(|ph| ph[ph.len() - 4..].to_owned())
                    .unwrap_or("0000".into())
            }),
        ),
        (
            "no match",
            Box::new(|p: &Patient| format!("龘{}", &p.id.as_str()[1..])),
        ),
    ];

    println!(
        "\n{:<16} {:>10} {:>10} {:>12} {:>12} {:>9} {:>10}",
        "query kind", "median ms", "p99 ms", "naive med", "naive p99", "speed-up", "avg hits"
    );
    let mut figures = Vec::new();
    let mut worst_ratio = f64::INFINITY;
    let mut worst_p99 = Duration::ZERO;
    for (name, make) in &kinds {
        let queries: Vec<String> = sample.iter().map(make).collect();
        let (fast, hits) = db
            .read(|c| {
                Ok::<_, StoreError>(timed(&queries, |q| {
                    patients::search(c, q, 51).unwrap().len()
                }))
            })
            .unwrap();
        let (slow, _) = db
            .read(|c| Ok::<_, StoreError>(timed(&queries[..naive_samples], |q| naive(c, q))))
            .unwrap();
        let ratio = ms(percentile(&slow, 0.5)) / ms(percentile(&fast, 0.5));
        worst_ratio = worst_ratio.min(ratio);
        worst_p99 = worst_p99.max(percentile(&fast, 0.99));
        figures.push((*name, percentile(&fast, 0.5), percentile(&fast, 0.99)));
        println!(
            "{:<16} {:>10.3} {:>10.3} {:>12.1} {:>12.1} {:>8.0}x {:>10.1}",
            name,
            ms(percentile(&fast, 0.5)),
            ms(percentile(&fast, 0.99)),
            ms(percentile(&slow, 0.5)),
            ms(percentile(&slow, 0.99)),
            ratio,
            hits as f64 / queries.len() as f64
        );
    }
    println!(
        "worst p99: {:.3} ms (goal < 2 ms); smallest speed-up: {worst_ratio:.0}x (goal >= 100x)",
        ms(worst_p99)
    );

    // A pulled page: 1,000 new patients and 1,000 changed ones, each page one durable transaction.
    let page_new: Vec<Patient> = demo::patients(SEED ^ 1, 1_000, today)
        .map(|mut p| {
            p.id = clinic_domain::PatientId::parse(&format!("N{}", p.id.as_str())).unwrap();
            p
        })
        .collect();
    let page_changed: Vec<Patient> = demo::patients(SEED, 1_000, today)
        .map(|mut p| {
            p.phone = Some("13912345678".into());
            p
        })
        .collect();
    let mut pages = Vec::new();
    for (kind, page) in [("new", &page_new), ("changed", &page_changed)] {
        let start = Instant::now();
        db.write(|c| {
            let tx = c.transaction()?;
            for p in page.iter() {
                patients::upsert(&tx, p)?;
            }
            tx.commit()?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
        let took = start.elapsed();
        pages.push((kind, took));
        println!(
            "apply a pulled page of 1,000 {kind} patients: {:.1} ms",
            ms(took)
        );
    }
    Arm {
        label,
        load,
        kinds: figures,
        pages,
    }
}
