//! `GET /v1/snapshot` on both stores: a device token reads its own clinic's live
//! records and nothing of another clinic's; the body is newline-delimited lines
//! from `begin` to `end`; and it is consistent under concurrent writers: taken at
//! its `begin` cursor, so the snapshot plus the feeds after that cursor is the
//! clinic's state, with every change exactly once (none lost, none twice).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{NaiveDate, TimeZone, Utc};
use clinic_central::auth::Scope;
use clinic_central::store::CentralStore;
use clinic_domain::{Appointment, Patient, PatientId, Sex};
use clinic_protocol::{
    FeedItem, PatientRecord, SNAPSHOT_CONTENT_TYPE, SnapshotKind, SnapshotLine, paths,
};
use common::{Backend, env};
use rstest::rstest;
use serde_json::Value;
use serde_json::value::RawValue;

const CLINIC: &str = "C001";
const OTHER: &str = "C002";

fn patient(n: u64, name: &str) -> Patient {
    Patient {
        id: PatientId::parse(&format!("P{n:07}")).unwrap(),
        name: name.into(),
        sex: Sex::Female,
        birth_date: NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
        is_insured: true,
        phone: None,
    }
}

/// The snapshot's lines, checked for shape: `begin` first, `end` last with the
/// number of records, each record's kind in stream order.
async fn snapshot(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> (i64, Vec<(SnapshotKind, FeedItem<Value>)>) {
    let resp = client
        .get(format!("{url}{}", paths::SNAPSHOT))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        SNAPSHOT_CONTENT_TYPE
    );
    let body = resp.text().await.unwrap();
    let mut lines = body.lines();
    let begin: SnapshotLine<Box<RawValue>> =
        serde_json::from_str(lines.next().expect("a begin line")).unwrap();
    assert_eq!(begin.kind, SnapshotKind::Begin);
    let (cursor, counts) = (begin.cursor.unwrap(), begin.counts.unwrap());
    let mut records = Vec::new();
    let mut end = None;
    for line in lines {
        assert!(end.is_none(), "nothing after the end line");
        let line: SnapshotLine<FeedItem<Value>> = serde_json::from_str(line).unwrap();
        match line.kind {
            SnapshotKind::End => end = line.rows,
            SnapshotKind::Begin => panic!("a second begin"),
            kind => records.push((kind, line.item.expect("a record line has its item"))),
        }
    }
    assert_eq!(
        end,
        Some(records.len() as u64),
        "the end line counts the records"
    );
    assert_eq!(counts.total(), records.len() as u64);
    let order = |k: SnapshotKind| k as u8;
    assert!(
        records.windows(2).all(|w| order(w[0].0) <= order(w[1].0)),
        "streams in order"
    );
    (cursor, records)
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_reads_its_own_clinics_live_records_only(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let store = env.server.store.clone();
    env.server.load_demo(CLINIC, 1).unwrap();
    env.server.load_demo(OTHER, 2).unwrap();
    store
        .upsert_patient(OTHER, &patient(9_999_999, "别家"))
        .unwrap();
    let gone = patient(1, "张三");
    store.upsert_patient(CLINIC, &gone).unwrap();
    store.delete_patient(CLINIC, &gone.id).unwrap();
    let device = env
        .server
        .issue_scoped_token(CLINIC, Scope::Device)
        .unwrap();
    let (cursor, records) = snapshot(&env.client, &env.server.base_url(), &device).await;
    assert_eq!(
        cursor,
        store.change_counters(&[CLINIC.into()]).unwrap()[0].1
    );
    let count = |k| records.iter().filter(|(kind, _)| *kind == k).count();
    let demo = clinic_domain::demo::clinic(CLINIC, 1, Default::default(), Utc::now().date_naive());
    assert_eq!(count(SnapshotKind::Staff), demo.staff.len());
    assert_eq!(
        count(SnapshotKind::Patients),
        demo.patients.len() - 1,
        "the deleted patient is not in it"
    );
    assert!(records.iter().all(|(_, i)| !i.deleted && i.data.is_some()));
    assert!(records.iter().all(|(_, i)| i.seq <= cursor));
    // Nothing of the other clinic (its patients share the demo IDs, not this one).
    assert!(
        !records.iter().any(|(_, i)| i.id == "P9999999"),
        "another clinic's patient"
    );
    // No token: refused, as every feed.
    let refused = env
        .client
        .get(env.url(paths::SNAPSHOT))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

/// The clinic's state from its patients feed after `after`, applied over `base`.
fn apply(base: &mut BTreeMap<String, Option<Value>>, items: Vec<FeedItem<Value>>) {
    for item in items {
        base.insert(item.id, if item.deleted { None } else { item.data });
    }
}

async fn feed_after(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    mut after: i64,
) -> Vec<FeedItem<Value>> {
    let mut all = Vec::new();
    loop {
        let page: clinic_protocol::FeedPage<Value> = client
            .get(format!(
                "{url}{}?after={after}&limit=1000",
                paths::FEED_PATIENTS
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all.extend(page.items);
        if !page.has_more {
            return all;
        }
        after = page.next_cursor;
    }
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_taken_while_writers_write_plus_the_feeds_after_it_is_the_clinic(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    const PATIENTS: u64 = 6_000;
    let env = env(backend, false);
    let store: Arc<dyn CentralStore> = env.server.store.clone();
    env.server.load_demo(CLINIC, 1).unwrap();
    let rows: Vec<Patient> = (1..=PATIENTS).map(|n| patient(n, "初始")).collect();
    store
        .import(CLINIC, clinic_central::store::ImportRows::Patients(rows))
        .unwrap();
    let device = env
        .server
        .issue_scoped_token(CLINIC, Scope::Device)
        .unwrap();

    // Writers rename, delete and add patients and move appointments until told
    // to stop, and at least until the snapshot has been read whole.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) || n < 200 {
                n += 1;
                let id = (n * 7919) % PATIENTS + 1;
                match n % 4 {
                    0 => {
                        store
                            .delete_patient(
                                CLINIC,
                                &PatientId::parse(&format!("P{id:07}")).unwrap(),
                            )
                            .unwrap();
                    }
                    1 => {
                        store
                            .upsert_patient(CLINIC, &patient(PATIENTS + n, "新来"))
                            .unwrap();
                    }
                    2 => {
                        let start = Utc
                            .timestamp_opt(1_900_000_000 + n as i64 * 900, 0)
                            .unwrap();
                        let a = Appointment::new(
                            &format!("W{n:06}"),
                            "D001",
                            &format!("P{:07}", PATIENTS + n - 1),
                            start,
                            start + chrono::Duration::minutes(15),
                            "booked",
                        )
                        .unwrap();
                        store.upsert_appointment(CLINIC, &a).unwrap();
                    }
                    _ => {
                        store
                            .upsert_patient(CLINIC, &patient(id, &format!("改名{n}")))
                            .unwrap();
                    }
                }
            }
            n
        })
    };
    let (cursor, records) = snapshot(&env.client, &env.server.base_url(), &device).await;
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes >= 200);

    // Snapshot, then the feed after its cursor: every change once.
    assert!(
        records.iter().all(|(_, i)| i.seq <= cursor),
        "nothing past the cursor"
    );
    let mut device_view: BTreeMap<String, Option<Value>> = records
        .into_iter()
        .filter(|(k, _)| *k == SnapshotKind::Patients)
        .map(|(_, i)| (i.id, i.data))
        .collect();
    let later = feed_after(&env.client, &env.server.base_url(), &device, cursor).await;
    assert!(
        !later.is_empty(),
        "writes landed after the snapshot's cursor"
    );
    assert!(later.iter().all(|i| i.seq > cursor), "never twice");
    apply(&mut device_view, later);
    let mut server_view = BTreeMap::new();
    apply(
        &mut server_view,
        feed_after(&env.client, &env.server.base_url(), &device, 0).await,
    );
    let live = |m: BTreeMap<String, Option<Value>>| -> BTreeMap<String, PatientRecord> {
        m.into_iter()
            .filter_map(|(k, v)| Some((k, serde_json::from_value(v?).unwrap())))
            .collect()
    };
    assert_eq!(live(device_view), live(server_view), "never lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_beyond_the_cap_are_refused_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let limits = clinic_central::Limits {
        max_snapshots: 1,
        ..Default::default()
    };
    let server =
        clinic_central::spawn_for_tests_with(&dir.path().join("c.db"), false, limits).unwrap();
    server.load_demo(CLINIC, 1).unwrap();
    // Larger than what the socket buffers on both ends hold, so the first
    // snapshot, unread, is still being written when the second asks.
    let rows: Vec<Patient> = (1..=100_000)
        .map(|n| patient(n, "一个很长的名字用来占地方"))
        .collect();
    server
        .store
        .import(CLINIC, clinic_central::store::ImportRows::Patients(rows))
        .unwrap();
    let token = server.issue_scoped_token(CLINIC, Scope::Device).unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}{}", server.base_url(), paths::SNAPSHOT);
    // The first is held open, unread, while the second asks.
    let mut first = client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let second = client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(second.status(), 503);
    assert!(second.headers().contains_key("retry-after"));
    while first.chunk().await.unwrap().is_some() {}
    drop(first);
    // The slot is back once the first snapshot is written.
    let mut third = None;
    for _ in 0..100 {
        let r = client.get(&url).bearer_auth(&token).send().await.unwrap();
        if r.status() == 200 {
            third = Some(r);
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(third.is_some(), "a slot again after the first finished");
}
