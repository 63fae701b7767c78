//! `GET /v1/feeds/reports` and a correction's `resolves`, on both stores: every
//! report of the clinic once, in change-number order, with all its fields; paging
//! that misses nothing while reports keep arriving (also across two replicas);
//! duplicates that add nothing; isolation; reports stored before the feed existed.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use clinic_central::store::{
    CentralStore, Durability, IngestOutcome, NewReport, PostgresStore, SqliteStore,
};
use clinic_central::{TestServer, spawn_store_for_tests};
use clinic_domain::assessment::MAX_RESOLVES;
use clinic_domain::{AssessmentDetails, ClinicZone, PainScale, PainScore, PatientId};
use clinic_protocol::{FeedPage, StoredReport, paths};
use common::{Backend, env, postgres_database, postgres_store, report, status_json};
use reqwest::Client;
use rstest::rstest;
use serde_json::{Value, json};
use uuid::Uuid;

/// `base` with `extra`'s fields set on it; the string `"$self"` stands for the report's own ID.
fn with(mut base: Value, extra: Value) -> Value {
    let id = base["reportId"].clone();
    for (k, v) in extra.as_object().unwrap() {
        base[k] = if v == "$self" { id.clone() } else { v.clone() };
    }
    base
}

fn id(n: u128) -> String {
    Uuid::from_u128(n).to_string()
}

/// Pages `kind`'s feed from `after` to its end with pages of `limit`, checking the
/// page invariants on the way; returns every item.
async fn page_through(
    client: &Client,
    base_url: &str,
    token: &str,
    mut after: i64,
    limit: u32,
) -> Vec<Value> {
    let mut items = Vec::new();
    for _ in 0..100_000 {
        let (s, page) = status_json(
            client
                .get(format!(
                    "{base_url}{}?after={after}&limit={limit}",
                    paths::FEED_REPORTS
                ))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(s, 200, "{page}");
        let page_items = page["items"].as_array().unwrap();
        assert!(page_items.len() <= limit as usize);
        for item in page_items {
            let seq = item["seq"].as_i64().unwrap();
            assert!(seq > after, "numbers increase within and across pages");
            after = seq;
            items.push(item.clone());
        }
        assert_eq!(page["nextCursor"].as_i64().unwrap(), after);
        if page["hasMore"] == false {
            return items;
        }
    }
    panic!("paging terminates");
}

// ---- Over HTTP, each test on SQLite and on PostgreSQL ----

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_carries_every_field_of_every_report_once(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let first = with(
        report("P0000001", 7),
        json!({"reportId": id(1), "scale": "wong_baker_faces", "painScore": 6,
               "recordedBy": "N001", "deviceId": "ward-3-cart", "assessedAt": 1_764_299_000,
               "bodySite": "左膝", "activity": "movement", "note": "两行\n备注",
               "intervention": "paracetamol 1 g"}),
    );
    let follow_up = with(
        report("P0000001", 3),
        json!({"reportId": id(2), "followsUp": id(1), "recordedBy": "N002"}),
    );
    let correction_a = with(
        report("P0000001", 4),
        json!({"reportId": id(3), "supersedes": id(1), "reason": "看错了"}),
    );
    let correction_b = with(
        report("P0000001", 5),
        json!({"reportId": id(4), "supersedes": id(1), "reason": "wrong patient row"}),
    );
    let settling = with(
        report("P0000001", 5),
        json!({"reportId": id(5), "supersedes": id(4), "reason": "两个更正", "resolves": [id(3)]}),
    );
    let mut answers = Vec::new();
    for sent in [&first, &follow_up] {
        let (s, body) =
            status_json(env.post("/v1/reports", &token, sent).send().await.unwrap()).await;
        assert_eq!(s, 200, "{body}");
        answers.push(body);
    }
    let (s, batch) = status_json(
        env.post(
            "/v1/reports/batch",
            &token,
            &json!({"reports": [correction_a, correction_b, settling]}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        batch["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "accepted"),
        "{batch}"
    );
    // Delivered again, one way and the other: duplicates add no item.
    for sent in [&first, &settling] {
        let (s, body) =
            status_json(env.post("/v1/reports", &token, sent).send().await.unwrap()).await;
        assert_eq!((s, body["duplicate"].clone()), (200, json!(true)), "{body}");
        if sent == &settling {
            answers.push(body);
        }
    }

    let items = page_through(&env.client, &env.server.base_url(), &token, 0, 2).await;
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [id(1), id(2), id(3), id(4), id(5)],
        "each report once, in the order stored"
    );
    let seqs: Vec<i64> = items.iter().map(|i| i["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        [1, 2, 3, 4, 5],
        "the clinic's change numbers, no gaps"
    );
    for item in &items {
        assert_eq!(item["deleted"], false, "reports are never tombstones");
        assert_eq!(item["data"]["reportId"], item["id"]);
        assert_eq!(item["data"]["duplicate"], false);
        assert!(item["data"]["receivedAt"].as_i64().unwrap() > 1_700_000_000);
    }
    // Every field as the POST answered it (which the replay read from the database).
    let mut stored_first = answers[0].clone();
    stored_first["duplicate"] = json!(false);
    assert_eq!(items[0]["data"], stored_first);
    assert_eq!(items[1]["data"], answers[1]);
    for (key, value) in [
        ("scale", json!("wong_baker_faces")),
        ("painScore", json!(6)),
        ("recordedBy", json!("N001")),
        ("deviceId", json!("ward-3-cart")),
        ("assessedAt", json!(1_764_299_000)),
        ("bodySite", json!("左膝")),
        ("activity", json!("movement")),
        ("note", json!("两行\n备注")),
        ("intervention", json!("paracetamol 1 g")),
    ] {
        assert_eq!(items[0]["data"][key], value, "{key}");
    }
    assert_eq!(items[1]["data"]["followsUp"], json!(id(1)));
    assert_eq!(items[2]["data"]["supersedes"], json!(id(1)));
    assert_eq!(items[2]["data"]["reason"], json!("看错了"));
    assert_eq!(items[4]["data"]["resolves"], json!([id(3)]));
    let mut replay = answers[2].clone();
    replay["duplicate"] = json!(false);
    assert_eq!(
        items[4]["data"], replay,
        "the settling correction as stored"
    );
    assert!(
        items[0]["data"].get("resolves").is_none(),
        "absent when it names none"
    );

    // A patient change takes the next number of the same counter: the feeds share it.
    let (s, ack) = status_json(
        env.put(
            "/v1/patients/P0000001",
            &token,
            &json!({"name": "李静", "sex": "female", "birthDate": "1990-05-01", "isInsured": true}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((s, ack["seq"].clone()), (200, json!(6)));
    let (_, tail) = status_json(
        env.get(&format!("{}?after=5", paths::FEED_REPORTS), &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        tail,
        json!({"items": [], "nextCursor": 5, "hasMore": false})
    );
}

/// Writers post single reports and batches (some delivered twice, some twice in one
/// batch) while a reader pages with small pages: the reader ends with every stored
/// report exactly once, in increasing numbers, equal to a fresh read of the feed.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_misses_no_report_while_reports_keep_arriving(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let base = env.server.base_url();
    const WRITERS: usize = 4;
    const ROUNDS: usize = 40;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (client, base, token) = (env.client.clone(), base.clone(), token.clone());
            tokio::spawn(async move {
                let mut sent = HashSet::new();
                for i in 0..ROUNDS {
                    let one = report(&format!("P{w:03}{i:04}"), (i % 11) as i64);
                    let pair = [report("P0000001", 1), report("P0000002", 2)];
                    let requests = [
                        (paths::REPORTS, one.clone()),
                        // Twice in one batch: one stored, one duplicate.
                        (
                            paths::REPORTS_BATCH,
                            json!({"reports": [pair[0], pair[1], pair[0]]}),
                        ),
                        // A retry of an earlier delivery.
                        (paths::REPORTS, one.clone()),
                    ];
                    for (path, body) in requests {
                        let resp = client
                            .post(format!("{base}{path}"))
                            .bearer_auth(&token)
                            .json(&body)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(resp.status(), 200);
                    }
                    sent.insert(one["reportId"].as_str().unwrap().to_owned());
                    for r in &pair {
                        sent.insert(r["reportId"].as_str().unwrap().to_owned());
                    }
                }
                sent
            })
        })
        .collect();

    let mut seen: Vec<String> = Vec::new();
    let mut cursor = 0i64;
    let mut pages = 0;
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        let (s, page) = status_json(
            env.get(
                &format!("{}?after={cursor}&limit=7", paths::FEED_REPORTS),
                &token,
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(s, 200);
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            let seq = item["seq"].as_i64().unwrap();
            assert!(seq > cursor, "numbers increase within and across pages");
            cursor = seq;
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        assert_eq!(page["nextCursor"].as_i64().unwrap(), cursor);
        if done && page["hasMore"] == false {
            break;
        }
        assert!(pages < 100_000, "paging terminates");
    }
    let mut sent = HashSet::new();
    for w in writers {
        sent.extend(w.await.unwrap());
    }
    assert!(pages > 5, "the reader paged while the writers wrote");
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no report twice");
    assert_eq!(unique, sent, "every stored report, nothing else");
    assert_eq!(env.count("C001"), sent.len() as u64);
    let again = page_through(&env.client, &base, &token, 0, 1000).await;
    let again: Vec<String> = again
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(again, seen, "the paged copy is the feed, in the same order");
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinic_reads_only_its_own_reports(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let a = env.token("C001");
    let b = env.token("C002");
    // One report ID in both clinics, and one report in each only.
    let shared = report("P0000001", 3);
    let only_a = report("P0000002", 4);
    let only_b = with(report("P0000003", 8), json!({"note": "B 的备注"}));
    for (token, body) in [(&a, &shared), (&b, &shared), (&a, &only_a), (&b, &only_b)] {
        let (s, out) =
            status_json(env.post("/v1/reports", token, body).send().await.unwrap()).await;
        assert_eq!((s, out["duplicate"].clone()), (200, json!(false)), "{out}");
    }
    let feed_a = page_through(&env.client, &env.server.base_url(), &a, 0, 10).await;
    let feed_b = page_through(&env.client, &env.server.base_url(), &b, 0, 10).await;
    let ids = |feed: &[Value]| -> Vec<String> {
        feed.iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&feed_a),
        [&shared, &only_a].map(|r| r["reportId"].as_str().unwrap().to_owned())
    );
    assert_eq!(
        ids(&feed_b),
        [&shared, &only_b].map(|r| r["reportId"].as_str().unwrap().to_owned())
    );
    assert!(!serde_json::to_string(&feed_a).unwrap().contains("B 的备注"));
    // Each clinic numbers its own changes.
    let seqs =
        |feed: &[Value]| -> Vec<i64> { feed.iter().map(|i| i["seq"].as_i64().unwrap()).collect() };
    assert_eq!((seqs(&feed_a), seqs(&feed_b)), (vec![1, 2], vec![1, 2]));
    // Without a token, nothing.
    let resp = env
        .client
        .get(env.url(paths::FEED_REPORTS))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[rstest]
#[case::two(json!([id(7), id(8)]))]
#[case::at_the_limit(json!((0..MAX_RESOLVES as u128).map(|i| id(100 + i)).collect::<Vec<_>>()))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolves_round_trip_and_are_part_of_the_content(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
    #[case] resolves: Value,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let sent = with(
        report("P0000001", 4),
        json!({"supersedes": id(1), "reason": "settle", "resolves": resolves}),
    );
    let (s, body) = status_json(env.post("/v1/reports", &token, &sent).send().await.unwrap()).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["resolves"], resolves);
    let (s, replay) =
        status_json(env.post("/v1/reports", &token, &sent).send().await.unwrap()).await;
    assert_eq!((s, replay["duplicate"].clone()), (200, json!(true)));
    assert_eq!(replay["resolves"], resolves, "read back from the database");

    // Other content under the same ID: fewer, more, or the same IDs in another order.
    let list = resolves.as_array().unwrap().clone();
    let mut reversed = list.clone();
    reversed.reverse();
    let mut more = list.clone();
    more.push(json!(id(99)));
    let others = [
        json!(list[..list.len() - 1].to_vec()),
        json!(reversed),
        json!(more),
    ];
    for other in others {
        let other = with(sent.clone(), json!({"resolves": other}));
        let (s, out) = status_json(
            env.post("/v1/reports", &token, &other)
                .send()
                .await
                .unwrap(),
        )
        .await;
        if other["resolves"].as_array().unwrap().len() > MAX_RESOLVES {
            assert_eq!(s, 400, "{out}");
        } else {
            assert_eq!(s, 409, "{out}");
        }
    }
    let (s, out) = status_json(
        env.post(
            "/v1/reports",
            &token,
            &with(sent.clone(), json!({"resolves": []})),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, 409, "dropping resolves is other content: {out}");
    assert_eq!(env.count("C001"), 1);
    let items = page_through(&env.client, &env.server.base_url(), &token, 0, 10).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["data"]["resolves"], resolves, "the first is kept");
}

#[rstest]
#[case::without_supersedes(json!({"resolves": [id(7)]}))]
#[case::itself(json!({"supersedes": id(1), "resolves": ["$self"]}))]
#[case::the_superseded_one(json!({"supersedes": id(1), "resolves": [id(1)]}))]
#[case::twice(json!({"supersedes": id(1), "resolves": [id(7), id(8), id(7)]}))]
#[case::over_the_limit(json!({"supersedes": id(1), "resolves": (0..=MAX_RESOLVES as u128).map(|i| id(100 + i)).collect::<Vec<_>>()}))]
#[case::not_uuids(json!({"supersedes": id(1), "resolves": ["yesterday"]}))]
#[case::not_a_list(json!({"supersedes": id(1), "resolves": id(7)}))]
#[case::null(json!({"supersedes": id(1), "resolves": null}))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_resolves_are_refused_naming_the_field(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
    #[case] fields: Value,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let mut sent = with(report("P0000001", 5), fields);
    if sent["resolves"][0] == "$self" {
        sent["resolves"][0] = sent["reportId"].clone();
    }
    let (s, body) = status_json(env.post("/v1/reports", &token, &sent).send().await.unwrap()).await;
    assert_eq!(s, 400, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.starts_with("resolves: "), "{error}");
    let fine = report("P0000002", 1);
    let (_, batch) = status_json(
        env.post(
            "/v1/reports/batch",
            &token,
            &json!({"reports": [sent, fine]}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(batch["results"][0]["status"], "rejected", "{batch}");
    assert!(
        batch["results"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("resolves: "),
        "{batch}"
    );
    assert_eq!(batch["results"][1]["status"], "accepted", "item by item");
    assert_eq!(env.count("C001"), 1, "only the valid one");
}

// ---- Two replicas on one PostgreSQL ----

/// Writers on both replicas while a reader pages, alternating replicas too: every
/// report once, in increasing numbers, and numbers with no gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_across_replicas_misses_no_report_under_concurrent_writers() {
    let url = postgres_database();
    let replicas: Arc<Vec<TestServer>> = Arc::new(
        (0..2)
            .map(|_| spawn_store_for_tests(postgres_store(&url), false).expect("replica"))
            .collect(),
    );
    let token = replicas[0].issue_token("C001").unwrap();
    // Every third writer writes for another clinic, so groups mix clinics too.
    let other = replicas[0].issue_token("C002").unwrap();
    let client = Client::new();
    const WRITERS: usize = 6;
    const ROUNDS: usize = 30;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let token = if w % 3 == 2 { &other } else { &token }.clone();
            let (client, replicas) = (client.clone(), replicas.clone());
            tokio::spawn(async move {
                let mut sent = HashSet::new();
                for i in 0..ROUNDS {
                    let batch: Vec<Value> = (0..3).map(|k| report(&format!("P{k}"), 2)).collect();
                    let single = report("P9", 9);
                    // Every delivery goes to one replica and its retry to the other.
                    for (n, (path, body)) in [
                        (paths::REPORTS_BATCH, json!({"reports": batch})),
                        (paths::REPORTS, single.clone()),
                        (paths::REPORTS, single.clone()),
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        let server = &replicas[(w + i + n) % 2];
                        let resp = client
                            .post(format!("{}{path}", server.base_url()))
                            .bearer_auth(&token)
                            .json(&body)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(resp.status(), 200);
                    }
                    for r in batch.iter().chain([&single]) {
                        sent.insert(r["reportId"].as_str().unwrap().to_owned());
                    }
                }
                (w % 3 == 2, sent)
            })
        })
        .collect();
    let mut seen = Vec::new();
    let mut cursor = 0i64;
    let mut pages = 0usize;
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        let server = &replicas[pages % 2];
        let (s, page) = status_json(
            client
                .get(format!(
                    "{}{}?after={cursor}&limit=5",
                    server.base_url(),
                    paths::FEED_REPORTS
                ))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(s, 200);
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            let seq = item["seq"].as_i64().unwrap();
            assert!(seq > cursor, "numbers increase within and across pages");
            cursor = seq;
            seen.push((seq, item["id"].as_str().unwrap().to_owned()));
        }
        if done && page["hasMore"] == false {
            break;
        }
        assert!(pages < 100_000, "paging terminates");
    }
    let (mut sent, mut sent_other) = (HashSet::new(), HashSet::new());
    for w in writers {
        let (for_other, ids) = w.await.unwrap();
        if for_other {
            &mut sent_other
        } else {
            &mut sent
        }
        .extend(ids);
    }
    assert!(pages > 5, "the reader paged while the writers wrote");
    let other_feed = page_through(&client, &replicas[1].base_url(), &other, 0, 1000).await;
    assert_eq!(
        other_feed
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect::<HashSet<_>>(),
        sent_other
    );
    assert_eq!(other_feed.last().unwrap()["seq"], sent_other.len());
    let ids: HashSet<String> = seen.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(ids.len(), seen.len(), "no report twice");
    assert_eq!(ids, sent, "every stored report, nothing else");
    let seqs: Vec<i64> = seen.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(
        seqs,
        (1..=sent.len() as i64).collect::<Vec<_>>(),
        "one number per stored report, none for a duplicate"
    );
}

// ---- The store contract below HTTP, and the upgrade of an existing database ----

fn new_report(clinic: &str, n: u128) -> NewReport {
    NewReport {
        clinic_id: clinic.into(),
        report_id: Uuid::from_u128(n),
        patient_id: PatientId::parse("P1").unwrap(),
        score: PainScore::new(PainScale::Nrs, 3).unwrap(),
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

fn feed_ids(page: &FeedPage<StoredReport>) -> Vec<(i64, u128)> {
    page.items
        .iter()
        .map(|i| {
            (
                i.seq,
                i.data.as_ref().unwrap().submission.report_id.as_u128(),
            )
        })
        .collect()
}

/// A group mixing clinics, duplicates and a conflict numbers only what it stored,
/// per clinic, gap-free; a group that fails takes no number.
#[rstest]
fn a_group_numbers_only_the_reports_it_stores(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn CentralStore> = match backend {
        Backend::Sqlite => {
            Arc::new(SqliteStore::open(&dir.path().join("c.db"), Durability::Full).unwrap())
        }
        Backend::Postgres => postgres_store(&postgres_database()),
    };
    for c in ["C1", "C2"] {
        store.ensure_clinic(c, ClinicZone::default()).unwrap();
    }
    let mut conflicting = new_report("C1", 1);
    conflicting.resolves = vec![Uuid::from_u128(5)];
    conflicting.supersedes = Some(Uuid::from_u128(6));
    let out = store
        .ingest(&[
            new_report("C2", 3),
            new_report("C1", 2),
            new_report("C1", 1),
            new_report("C1", 2),
            conflicting.clone(),
        ])
        .unwrap();
    assert!(matches!(out[3], IngestOutcome::Duplicate(_)));
    assert_eq!(out[4], IngestOutcome::Conflict);
    // A retried group: stored ones replay, the new one takes the next number.
    let out = store
        .ingest(&[new_report("C1", 1), new_report("C1", 4), conflicting])
        .unwrap();
    assert!(matches!(out[0], IngestOutcome::Duplicate(_)));
    assert!(matches!(out[1], IngestOutcome::Accepted(_)));
    assert_eq!(out[2], IngestOutcome::Conflict);
    // A group naming an unknown clinic fails whole and takes no number.
    assert!(
        store
            .ingest(&[new_report("C1", 9), new_report("NOPE", 9)])
            .is_err()
    );
    let c1 = store.reports_feed("C1", 0, 100).unwrap();
    let c1_ids = feed_ids(&c1);
    assert_eq!(c1_ids.len(), 3);
    assert_eq!(
        c1_ids.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(c1_ids[2], (3, 4), "the retried group's new report last");
    let firsts: HashSet<u128> = c1_ids[..2].iter().map(|(_, id)| *id).collect();
    assert_eq!(firsts, HashSet::from([1, 2]));
    assert_eq!(
        feed_ids(&store.reports_feed("C2", 0, 100).unwrap()),
        [(1, 3)]
    );
    let page = store.reports_feed("C1", 1, 1).unwrap();
    assert_eq!((page.next_cursor, page.has_more), (2, true));
    assert_eq!(
        store
            .upsert_patient(
                "C1",
                &clinic_domain::demo::patients(1, 1, ClinicZone::default().today())
                    .next()
                    .unwrap()
            )
            .unwrap(),
        4,
        "the counter the reports moved is the clinic's one"
    );
}

/// Reports stored by the previous release (no `seq`, no `resolves`) are numbered by
/// the migration after the clinic's counter, in the order received, so a device
/// pulling from 0 gets them all; the counter moves past them; their replays are
/// still duplicates.
#[rstest]
fn reports_stored_before_the_feed_are_in_it_after_the_upgrade(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    // received_at out of ID order on purpose: the numbers follow the receipt.
    let old_rows: [(&str, u128, i64); 4] = [
        ("C1", 1, 300),
        ("C1", 2, 100),
        ("C2", 3, 50),
        ("C1", 4, 200),
    ];
    let insert_sql = |placeholders: &str| {
        format!(
            "INSERT INTO reports (clinic_id, report_id, patient_id, pain_score, scale, submit_time, received_at, note)
             VALUES ({placeholders})"
        )
    };
    let store: Arc<dyn CentralStore> = match backend {
        Backend::Sqlite => {
            let path = dir.path().join("old.db");
            SqliteStore::migrate_for_tests(&path, 2).unwrap();
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "INSERT INTO clinics (id, change_seq) VALUES ('C1', 7), ('C2', 0);
                 INSERT INTO patients (clinic_id, id, name, sex, birth_date, is_insured, seq)
                 VALUES ('C1', 'P1', '李静', 'female', '1990-05-01', 1, 7);",
            )
            .unwrap();
            for (clinic, id, received) in old_rows {
                conn.execute(
                    &insert_sql("?1, ?2, 'P1', 3, 'nrs', 100, ?3, '旧'"),
                    rusqlite::params![clinic, Uuid::from_u128(id).to_string(), received],
                )
                .unwrap();
            }
            drop(conn);
            Arc::new(SqliteStore::open(&path, Durability::Full).unwrap())
        }
        Backend::Postgres => {
            let url = postgres_database();
            PostgresStore::migrate_for_tests(&url, 2).unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                let driver = tokio::spawn(conn);
                client
                    .batch_execute(
                        "INSERT INTO clinics (id, change_seq) VALUES ('C1', 7), ('C2', 0);
                         INSERT INTO patients (clinic_id, id, name, sex, birth_date, is_insured, seq)
                         VALUES ('C1', 'P1', '李静', 'female', '1990-05-01', TRUE, 7);",
                    )
                    .await
                    .unwrap();
                for (clinic, id, received) in old_rows {
                    client
                        .execute(
                            &insert_sql("$1, $2, 'P1', 3, 'nrs', 100, $3, '旧'"),
                            &[&clinic, &Uuid::from_u128(id), &received],
                        )
                        .await
                        .unwrap();
                }
                drop(client);
                let _ = driver.await;
            });
            postgres_store(&url)
        }
    };
    let c1 = store.reports_feed("C1", 0, 100).unwrap();
    assert_eq!(feed_ids(&c1), [(8, 2), (9, 4), (10, 1)]);
    let first = c1.items[0].data.as_ref().unwrap();
    assert_eq!(first.received_at, 100);
    assert_eq!(first.submission.details.note.as_deref(), Some("旧"));
    assert!(first.submission.resolves.is_empty());
    assert_eq!(
        feed_ids(&store.reports_feed("C2", 0, 100).unwrap()),
        [(1, 3)]
    );
    let patients = store.patients_feed("C1", 0, 100).unwrap();
    assert_eq!(
        patients.items.iter().map(|i| i.seq).collect::<Vec<_>>(),
        [7],
        "other feeds keep their numbers"
    );
    // The counter is past the numbered reports; an old report's replay is a duplicate.
    let mut replay = new_report("C1", 1);
    replay.details.note = Some("旧".into());
    let out = store.ingest(&[replay, new_report("C1", 5)]).unwrap();
    assert!(
        matches!(&out[0], IngestOutcome::Duplicate(r) if r.received_at == 300),
        "{:?}",
        out[0]
    );
    assert!(matches!(out[1], IngestOutcome::Accepted(_)));
    let tail = store.reports_feed("C1", 10, 100).unwrap();
    assert_eq!(feed_ids(&tail), [(11, 5)]);
    let by_seq: BTreeMap<i64, u128> = feed_ids(&store.reports_feed("C1", 0, 100).unwrap())
        .into_iter()
        .collect();
    assert_eq!(by_seq.len(), 4);
}
