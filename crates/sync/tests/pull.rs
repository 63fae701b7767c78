//! Pull against the real server: paging while the server keeps changing misses
//! nothing, and a failure between pages (as a crash would leave it) repeats the
//! page that was not committed rather than skipping it.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use clinic_protocol::{FeedItem, FeedPage, PatientRecord, PatientUpsert, paths};
use clinic_store::{Database, pull};
use clinic_sync::{Client, RawFeedPage, SyncConfig, SyncEngine, Trace};
use support::*;

fn config(url: String, token: String, page: u32) -> SyncConfig {
    let mut c = SyncConfig::new(url, Some(token));
    c.feed_page_limit = page;
    c.reuse_connections = false;
    c
}

/// The server's current patients, read from its feed from the start (last write wins).
async fn server_patients(url: &str, token: &str) -> BTreeMap<String, Option<String>> {
    let client = Client::new(
        url,
        Some(token.into()),
        &Default::default(),
        Duration::from_secs(5),
        Duration::from_secs(30),
        true,
    )
    .unwrap();
    let mut all = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = typed(
            client
                .feed(paths::FEED_PATIENTS, after, 1000, &Trace::new())
                .await
                .unwrap(),
        );
        for item in page.items {
            all.insert(item.id, item.data.map(|d| d.name));
        }
        after = page.next_cursor;
        if !page.has_more {
            return all.into_iter().filter(|(_, v)| v.is_some()).collect();
        }
    }
}

/// The client hands feed items over raw (the engine reads each on its own); these
/// come from the real server, so every one must read.
fn typed(page: RawFeedPage) -> FeedPage<PatientRecord> {
    FeedPage {
        items: page
            .items
            .iter()
            .map(|raw| serde_json::from_str::<FeedItem<PatientRecord>>(raw.get()).unwrap())
            .collect(),
        next_cursor: page.next_cursor,
        has_more: page.has_more,
    }
}

fn local_patients(db: &Database) -> BTreeMap<String, Option<String>> {
    db.read(|c| {
        let mut stmt = c.prepare("SELECT id, name FROM patients WHERE deleted_at IS NULL")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, Some(r.get::<_, String>(1)?)))
        })?;
        rows.collect::<Result<BTreeMap<_, _>, _>>()
    })
    .unwrap()
}

fn empty_store(dir: &std::path::Path) -> Arc<Database> {
    Arc::new(Database::open(&dir.join("pull.sqlite3")).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_under_concurrent_writes_misses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = central(dir.path(), false);
    server.load_demo("C001", 3).unwrap();
    let token = server.issue_token("C001").unwrap();
    let url = server.base_url();
    let db = empty_store(dir.path());
    let engine = SyncEngine::new(db.clone(), config(url.clone(), token.clone(), 37)).unwrap();

    // A front desk elsewhere keeps registering, renaming and deleting patients meanwhile.
    let writer = {
        let (url, token) = (url.clone(), token.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for i in 0..300u32 {
                let (method, id) = match i % 3 {
                    0 => (reqwest::Method::PUT, format!("Q{i:07}")),
                    1 => (reqwest::Method::PUT, format!("P{:07}", 1 + i * 5)),
                    _ => (reqwest::Method::DELETE, format!("P{:07}", 2 + i * 5)),
                };
                let mut req = http
                    .request(method.clone(), format!("{url}/v1/patients/{id}"))
                    .bearer_auth(&token);
                if method == reqwest::Method::PUT {
                    req = req.json(&PatientUpsert {
                        name: format!("改名{i}"),
                        sex: "female".into(),
                        birth_date: chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
                        is_insured: true,
                        phone: None,
                    });
                }
                assert!(req.send().await.unwrap().status().is_success());
                if i % 10 == 0 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        })
    };
    let first = engine.sync_once().await.unwrap();
    assert!(first.pulled > 0);
    writer.await.unwrap();
    engine.sync_once().await.unwrap();
    assert_eq!(
        local_patients(&db),
        server_patients(&url, &token).await,
        "local copy equals the server's"
    );
    let doctors = db
        .read(|c| clinic_store::schedule::doctors(c).map(|d| d.len()))
        .unwrap();
    assert_eq!(doctors, 10, "doctors arrive with the staff stream");
    let appointments: i64 = db
        .read(|c| c.query_row("SELECT count(*) FROM appointments", [], |r| r.get(0)))
        .unwrap();
    assert!(appointments > 0);
    // Search sees pulled patients.
    assert!(
        !db.read(|c| clinic_store::patients::search(c, "改名", 5))
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_between_pages_repeats_the_page_and_never_skips_one() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = central(dir.path(), false);
    server.load_demo("C001", 4).unwrap();
    let token = server.issue_token("C001").unwrap();
    let url = server.base_url();
    let db = empty_store(dir.path());
    // Connection 0 is the (empty) push's batch... no: with an empty outbox no push
    // request is made, so connections 0.. are patient pages. Break the fourth page's
    // answer halfway: it was fetched but must not be applied.
    let proxy = start_proxy(
        server.addr,
        Arc::new(FailNth(vec![3], Fault::ResetMidResponse)),
    )
    .await;
    // Page by page (an empty store would otherwise load the snapshot first).
    let mut paged = config(proxy.url(), token.clone(), 100);
    paged.bootstrap = false;
    let engine = SyncEngine::new(db.clone(), paged).unwrap();
    assert!(
        engine.sync_once().await.is_err(),
        "the broken page fails the run"
    );
    let cursor = db.read(|c| pull::cursor(c, pull::STREAM_PATIENTS)).unwrap();
    let local = local_patients(&db);
    assert_eq!(local.len(), 300, "exactly the three committed pages");
    // Everything up to the cursor is here, nothing past it.
    let client = Client::new(
        &url,
        Some(token.clone()),
        &Default::default(),
        Duration::from_secs(5),
        Duration::from_secs(30),
        true,
    )
    .unwrap();
    let upto = typed(
        client
            .feed(paths::FEED_PATIENTS, 0, 300, &Trace::new())
            .await
            .unwrap(),
    );
    assert_eq!(upto.next_cursor, cursor);
    assert!(upto.items.iter().all(|i| local.contains_key(&i.id)));

    // Rerun (the "restart"): continues at the cursor, repeats the broken page.
    engine.sync_once().await.unwrap();
    assert_eq!(local_patients(&db), server_patients(&url, &token).await);
    assert_eq!(local_patients(&db).len(), 2_000);
}
