//! Live latency: a change made on one side shows in device B's store, with B's
//! `GET /v1/changes` long poll (the app's settings) and, as the baseline in the
//! same run, with the long poll off (ticker only). Two devices (two stores in temp
//! dirs, two engines in this process) on one real clinic-central (in-process,
//! durable SQLite) on loopback.
//!
//! Two kinds of change, each timed from the moment it is made until B's store
//! holds it (B's status channel says a pull applied something; the store is then
//! read, so nothing polls):
//!
//! - **a report device A records** (A pushes it at once; B pulls it from the reports
//!   feed into its store; a first report, untimed, warms both devices' connections).
//! - **a record written at the front desk** (`PUT /v1/patients/{id}` with another
//!   token): the path every feed shares.
//!
//! `cargo bench -p clinic-sync --bench live`; knobs: BENCH_SAMPLES (50),
//! BENCH_TICKER_SECS (the baseline's ticker, 5; the app's is 60, so its baseline
//! is 12 times longer), BENCH_GAP_MS (the long-poll run's pause before each change
//! is random up to this, 100; the baseline's up to its ticker interval, so the
//! changes fall at random points of the ticker's cycle).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use clinic_domain::{PainScale, PainScore, Patient, PatientId, Sex};
use clinic_store::{Database, outbox, patients};
use clinic_sync::{SyncConfig, SyncEngine, SyncHandle, SyncStatus};
use serde_json::json;
use tokio::sync::watch;

const PATIENT: &str = "P0000001";

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Device {
    db: Arc<Database>,
    handle: SyncHandle,
    status: watch::Receiver<SyncStatus>,
    _dir: tempfile::TempDir,
}

impl Drop for Device {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

fn device(config: SyncConfig) -> Device {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("desk.sqlite3")).unwrap();
    db.write(|c| {
        patients::upsert(
            c,
            &Patient {
                id: PatientId::parse(PATIENT).unwrap(),
                name: "基准".into(),
                sex: Sex::Female,
                birth_date: chrono::NaiveDate::from_ymd_opt(1980, 1, 1).unwrap(),
                is_insured: true,
                phone: None,
            },
        )
    })
    .unwrap();
    let db = Arc::new(db);
    let handle = SyncEngine::new(db.clone(), config)
        .unwrap()
        .spawn(&tokio::runtime::Handle::current());
    let status = handle.subscribe();
    Device {
        db,
        handle,
        status,
        _dir: dir,
    }
}

#[derive(Clone)]
enum Change {
    Report(String),
    Patient(String),
}

fn holds(db: &Database, change: &Change) -> bool {
    let (sql, id) = match change {
        Change::Report(id) => ("SELECT count(*) FROM pain_reports WHERE id = ?1", id),
        Change::Patient(id) => ("SELECT count(*) FROM patients WHERE id = ?1", id),
    };
    db.read(|c| c.query_row(sql, [id], |r| r.get::<_, i64>(0)))
        .unwrap()
        > 0
}

/// Time from `since` until `b` holds `change`, or `None` after `limit`.
async fn until_held(
    b: &mut Device,
    change: &Change,
    since: Instant,
    limit: Duration,
) -> Option<Duration> {
    loop {
        b.status.borrow_and_update();
        let (db, c) = (b.db.clone(), change.clone());
        if tokio::task::spawn_blocking(move || holds(&db, &c))
            .await
            .unwrap()
        {
            return Some(since.elapsed());
        }
        let left = limit.checked_sub(since.elapsed())?;
        if tokio::time::timeout(left, b.status.changed())
            .await
            .is_err()
        {
            return None;
        }
    }
}

fn record(db: &Database, score: i64) -> String {
    let r = outbox::NewReport::score(
        PatientId::parse(PATIENT).unwrap(),
        PainScore::new(PainScale::Nrs, score).unwrap(),
        Utc::now() - chrono::Duration::minutes(1),
        "N001",
        "bench-a",
    );
    db.write(|c| outbox::record_report(c, &r, Utc::now()))
        .unwrap()
}

struct Run {
    server: clinic_central::TestServer,
    desk_token: String,
    client: reqwest::Client,
    a: Device,
    b: Device,
    next_patient: usize,
}

impl Run {
    /// A fresh server and two devices; B with the long poll on or off.
    async fn start(live: bool, ticker: Duration, dir: &std::path::Path) -> Run {
        let server =
            clinic_central::spawn_for_tests(&dir.join(format!("central-{live}.db")), false)
                .unwrap();
        let config = |token: String| {
            let mut c = SyncConfig::new(server.base_url(), Some(token));
            c.live = live;
            if !live {
                c.interval = ticker;
            }
            c
        };
        let a = device(config(server.issue_token("C001").unwrap()));
        let mut b = device(config(server.issue_token("C001").unwrap()));
        let desk_token = server.issue_token("C001").unwrap();
        tokio::time::timeout(
            Duration::from_secs(10),
            b.status
                .wait_for(|s| s.last_success_at.is_some() && !s.running),
        )
        .await
        .expect("B synced once")
        .unwrap();
        Run {
            server,
            desk_token,
            // The server closes a connection idle for 5 s; the baseline's changes are
            // seconds apart, so the desk's client keeps none that long.
            client: reqwest::Client::builder()
                .pool_idle_timeout(Duration::from_secs(1))
                .build()
                .unwrap(),
            a,
            b,
            next_patient: 0,
        }
    }

    async fn report(&mut self, limit: Duration) -> Option<Duration> {
        let db = self.a.db.clone();
        let started = Instant::now();
        let id = tokio::task::spawn_blocking(move || record(&db, 5))
            .await
            .unwrap();
        self.a.handle.report_queued();
        until_held(&mut self.b, &Change::Report(id), started, limit).await
    }

    async fn patient(&mut self, limit: Duration) -> Option<Duration> {
        self.next_patient += 1;
        let id = format!("Q{:07}", self.next_patient);
        let started = Instant::now();
        let resp = self
            .client
            .put(format!("{}/v1/patients/{id}", self.server.base_url()))
            .bearer_auth(&self.desk_token)
            .json(&json!({"name": "李静", "sex": "female", "birthDate": "1990-05-01", "isInsured": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        until_held(&mut self.b, &Change::Patient(id), started, limit).await
    }
}

fn summary(label: &str, mut v: Vec<Duration>) {
    v.sort();
    let n = v.len();
    let pick = |q: f64| v[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    println!(
        "{label:>44}: n={n} p50 {:>8.1} ms  p95 {:>8.1} ms  max {:>8.1} ms",
        pick(0.50).as_secs_f64() * 1e3,
        pick(0.95).as_secs_f64() * 1e3,
        v[n - 1].as_secs_f64() * 1e3,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let samples = knob("BENCH_SAMPLES", 50) as usize;
    let ticker = Duration::from_secs(knob("BENCH_TICKER_SECS", 5));
    let gap = Duration::from_millis(knob("BENCH_GAP_MS", 100));
    let dir = tempfile::tempdir().unwrap();
    // Generous: the baseline waits for B's ticker.
    let limit = ticker * 3 + Duration::from_secs(5);

    let mut live = Run::start(true, ticker, dir.path()).await;
    // The first report also warms both devices' connections.
    live.report(Duration::from_secs(10))
        .await
        .expect("B's store got A's first report");
    measure(
        &mut live,
        "long poll (the app's settings)",
        samples,
        limit,
        gap,
    )
    .await;
    drop(live);
    // The ticker's phase must not line up with the changes: each comes after a
    // random pause within the ticker's interval.
    let gap = ticker;
    let mut baseline = Run::start(false, ticker, dir.path()).await;
    let label = format!("ticker only, every {ticker:?} (baseline)");
    measure(&mut baseline, &label, samples, limit, gap).await;
}

async fn measure(run: &mut Run, label: &str, samples: usize, limit: Duration, gap: Duration) {
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        tokio::time::sleep(gap.mul_f64(fastrand::f64())).await;
        times.push(run.report(limit).await.expect("B got A's report"));
    }
    summary(&format!("A's report in B's store, {label}"), times);
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        tokio::time::sleep(gap.mul_f64(fastrand::f64())).await;
        times.push(run.patient(limit).await.expect("B got the record"));
    }
    summary(&format!("a desk record in B's store, {label}"), times);
}
