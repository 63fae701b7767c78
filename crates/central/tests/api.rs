//! The server over real HTTP: the hospital contract, our extensions, isolation and bad input.
//! Every test runs twice, on the SQLite store and on PostgreSQL (`Backend`).

mod common;

use std::collections::{BTreeSet, HashSet};

use clinic_domain::ClinicZone;
use clinic_domain::pin::{DEMO_PIN, verify as verify_pin};
use common::{Backend, env, report, status_json};
use rstest::rstest;
use serde_json::{Value, json};

const SEED: u64 = 7;

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_lookup_keeps_the_contract_field_by_field(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    env.server.load_demo("C001", SEED).unwrap();
    let token = env.token("C001");
    let zone = ClinicZone::default();
    let today = zone.today();
    let expected = clinic_domain::demo::patients(SEED, 3, today)
        .nth(2)
        .unwrap();

    let (status, body) = status_json(
        env.get("/api/v1/patients/P0000003", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["id", "name", "age", "isInsured"]));
    assert_eq!(body["id"], "P0000003");
    assert_eq!(body["name"], expected.name.as_str());
    assert_eq!(body["age"], expected.age_on(today));
    assert_eq!(body["isInsured"], expected.is_insured);

    // Scanners append white space; the domain's ID rules trim it.
    let (status, _) = status_json(
        env.get("/api/v1/patients/%20P0000003%20", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);

    let (status, body) = status_json(
        env.get("/api/v1/patients/P9999999", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn age_is_counted_on_the_clinics_date(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let today = ClinicZone::default().today();
    // Born exactly 30 years before the clinic's today: the birthday has come, so 30, not 29.
    let birth = today.with_year_checked(30);
    let (s, _) = status_json(
        env.put(
            "/v1/patients/BDAY1",
            &token,
            &json!({"name": "王芳", "sex": "female", "birthDate": birth.to_string(), "isInsured": true}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    let (_, body) = status_json(
        env.get("/api/v1/patients/BDAY1", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["age"], 30);
}

trait YearsBefore {
    fn with_year_checked(self, years: i32) -> chrono::NaiveDate;
}
impl YearsBefore for chrono::NaiveDate {
    fn with_year_checked(self, years: i32) -> chrono::NaiveDate {
        use chrono::Datelike;
        // 29 February has no twin in most years; step to 28th so the test stays exact.
        let d = if self.month() == 2 && self.day() == 29 {
            self.pred_opt().unwrap()
        } else {
            self
        };
        d.with_year(d.year() - years).unwrap()
    }
}

#[rstest]
#[case::empty("/api/v1/patients/", 400)]
#[case::space("/api/v1/patients/%20", 400)]
#[case::inner_space("/api/v1/patients/P%201", 400)]
#[case::quote("/api/v1/patients/P1'%3B--", 400)]
#[case::bang("/api/v1/patients/P1!", 400)]
#[case::han("/api/v1/patients/%E5%BC%A0%E4%B8%89", 400)]
#[case::too_long("/api/v1/patients/P12345678901234567890123456789012", 400)]
#[case::bad_percent("/api/v1/patients/%FF%FE", 400)]
#[case::dots("/api/v1/patients/P..1", 400)]
#[case::unknown("/api/v1/patients/P0000404", 404)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_patient_ids_get_json_4xx(
    #[case] path: &str,
    #[case] expected: u16,
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let (status, body) = status_json(env.get(path, &token).send().await.unwrap()).await;
    assert_eq!(status, expected, "{path}: {body}");
    assert!(body["error"].is_string());
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_is_stored_and_echoed_in_camel_case(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let sent = report("P0000001", 7);
    let resp = env.post("/v1/reports", &token, &sent).send().await.unwrap();
    assert!(
        resp.headers()
            .get(clinic_protocol::DUPLICATE_HEADER)
            .is_none()
    );
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 200);
    for key in ["reportId", "patientId", "painScore", "submitTime"] {
        assert_eq!(body[key], sent[key], "{key}");
    }
    assert_eq!(body["scale"], "nrs");
    assert_eq!(body["duplicate"], false);
    assert!(body["receivedAt"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(env.count("C001"), 1);
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_fields_are_validated_with_the_domain_rules(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let mut faces = report("P0000001", 6);
    faces["scale"] = json!("wong_baker_faces");
    faces["recordedBy"] = json!("N001");
    faces["deviceId"] = json!("ward-3-tablet");
    faces["assessedAt"] = json!(1_764_299_000);
    let (s, body) = status_json(
        env.post("/v1/reports", &token, &faces)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["scale"], "wong_baker_faces");
    assert_eq!(body["recordedBy"], "N001");

    let mut correction = report("P0000001", 4);
    correction["scale"] = json!("wong_baker_faces");
    correction["supersedes"] = faces["reportId"].clone();
    correction["reason"] = json!("wrong patient face chosen");
    let (s, body) = status_json(
        env.post("/v1/reports", &token, &correction)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["supersedes"], faces["reportId"]);

    // FACES has only even scores.
    let mut odd = report("P0000001", 5);
    odd["scale"] = json!("wong_baker_faces");
    let (s, body) = status_json(env.post("/v1/reports", &token, &odd).send().await.unwrap()).await;
    assert_eq!(s, 400);
    assert!(
        body["error"].as_str().unwrap().contains("wong_baker_faces"),
        "{body}"
    );
    assert_eq!(env.count("C001"), 2);
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_report_twice_is_a_duplicate_and_other_content_a_conflict(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let first = report("P0000001", 7);
    let (s, _) = status_json(
        env.post("/v1/reports", &token, &first)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);

    let again = env
        .post("/v1/reports", &token, &first)
        .send()
        .await
        .unwrap();
    assert_eq!(
        again
            .headers()
            .get(clinic_protocol::DUPLICATE_HEADER)
            .unwrap(),
        "true"
    );
    let (s, body) = status_json(again).await;
    assert_eq!((s, body["duplicate"].clone()), (200, json!(true)));

    let mut changed = first.clone();
    changed["painScore"] = json!(3);
    let (s, body) = status_json(
        env.post("/v1/reports", &token, &changed)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 409);
    assert!(body["error"].is_string());

    // The first one is kept: replaying it still matches and still says 7.
    let (_, body) = status_json(
        env.post("/v1/reports", &token, &first)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["painScore"], 7);
    assert_eq!(body["duplicate"], true);
    assert_eq!(env.count("C001"), 1);
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_identical_posts_store_exactly_one(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let body = report("P0000001", 5);
    let sends = (0..50).map(|_| env.post("/v1/reports", &token, &body).send());
    let answers = futures_join_all(sends).await;
    let mut fresh = 0;
    for resp in answers {
        let (s, b) = status_json(resp.unwrap()).await;
        assert_eq!(s, 200);
        if b["duplicate"] == false {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1, "exactly one answer says it stored the report");
    assert_eq!(env.count("C001"), 1);
}

/// Polls every future concurrently on the current task (no extra dependency for join_all).
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answers_each_item_in_order(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let stored = report("P0000001", 2);
    env.post("/v1/reports", &token, &stored)
        .send()
        .await
        .unwrap();
    let mut conflicting = stored.clone();
    conflicting["painScore"] = json!(9);
    let fresh = report("P0000002", 8);
    let mut missing = report("P0000003", 1);
    missing.as_object_mut().unwrap().remove("submitTime");
    let batch = json!({"reports": [
        fresh,
        stored,
        report("P0000004", 11),
        "not an object",
        conflicting,
        missing,
        {"reportId": "not-a-uuid", "patientId": "P1", "painScore": 1, "submitTime": 1},
        fresh,
        report("P0000005", 0),
    ]});
    let (s, body) = status_json(
        env.post("/v1/reports/batch", &token, &batch)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "accepted",
            "duplicate",
            "rejected",
            "rejected",
            "rejected",
            "rejected",
            "rejected",
            "duplicate",
            "accepted"
        ]
    );
    assert_eq!(results[0]["reportId"], batch["reports"][0]["reportId"]);
    assert_eq!(results[3]["reportId"], Value::Null);
    assert_eq!(results[6]["reportId"], "not-a-uuid");
    for i in [2, 3, 4, 5, 6] {
        assert!(
            results[i]["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "item {i} says why"
        );
    }
    assert!(results[0].get("reason").is_none());
    assert_eq!(env.count("C001"), 3);
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_capped(#[values(Backend::Sqlite, Backend::Postgres)] backend: Backend) {
    let env = env(backend, false);
    let token = env.token("C001");
    let too_many: Vec<Value> = (0..1_001).map(|_| report("P1", 1)).collect();
    let (s, body) = status_json(
        env.post("/v1/reports/batch", &token, &json!({"reports": too_many}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 413);
    assert!(body["error"].as_str().unwrap().contains("1000"));
    let (s, _) = status_json(
        env.post("/v1/reports/batch", &token, &json!({"reports": []}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(env.count("C001"), 0);
}

#[rstest]
#[case::missing(None)]
#[case::unknown(Some("cct_0000000000000000000000000000000000000000000000000000000000000000"))]
#[case::not_bearer(Some("Basic dXNlcjpwYXNz"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_get_401(
    #[case] auth: Option<&str>,
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let _ = env.token("C001");
    for (method, path) in [
        ("GET", "/api/v1/patients/P0000001"),
        ("POST", "/v1/reports"),
        ("GET", "/v1/feeds/patients"),
    ] {
        let mut req = env
            .client
            .request(method.parse().unwrap(), env.url(path))
            .json(&report("P1", 1));
        if let Some(a) = auth {
            let header = if a.starts_with("Basic") {
                a.to_owned()
            } else {
                format!("Bearer {a}")
            };
            req = req.header("authorization", header);
        }
        let (s, body) = status_json(req.send().await.unwrap()).await;
        assert_eq!(s, 401, "{method} {path}");
        assert!(body["error"].is_string());
    }
    assert_eq!(env.count("C001"), 0);
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_stops_working(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    env.server
        .store
        .ensure_clinic("C001", ClinicZone::default())
        .unwrap();
    let issued = clinic_central::auth::issue_token(
        env.server.store.as_ref(),
        "C001",
        clinic_central::auth::Scope::Device,
        None,
    )
    .unwrap();
    let (s, _) = status_json(
        env.get("/v1/feeds/staff", &issued.secret)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert!(env.server.store.revoke_token(&issued.id).unwrap());
    let (s, _) = status_json(
        env.get("/v1/feeds/staff", &issued.secret)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 401);
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinic_sees_and_writes_only_its_own_data(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let a = env.token("C001");
    let b = env.token("C002");
    let patient =
        json!({"name": "李静", "sex": "female", "birthDate": "1990-05-01", "isInsured": true});
    let (s, _) = status_json(
        env.put("/v1/patients/PB0001", &b, &patient)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);

    // Not 403: A must not even learn that B has such a patient.
    let (s, body) = status_json(env.get("/api/v1/patients/PB0001", &a).send().await.unwrap()).await;
    assert_eq!(s, 404, "{body}");
    assert!(!body.to_string().contains("李静"));
    let (s, _) = status_json(env.get("/api/v1/patients/PB0001", &b).send().await.unwrap()).await;
    assert_eq!(s, 200);

    let (_, feed) = status_json(env.get("/v1/feeds/patients", &a).send().await.unwrap()).await;
    assert_eq!(feed["items"], json!([]));
    let (s, _) = status_json(
        env.client
            .delete(env.url("/v1/patients/PB0001"))
            .bearer_auth(&a)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 404);

    // One report ID in two clinics: two separate reports, neither a duplicate of the other.
    let r = report("P0000001", 3);
    let (_, ra) = status_json(env.post("/v1/reports", &a, &r).send().await.unwrap()).await;
    let (_, rb) = status_json(env.post("/v1/reports", &b, &r).send().await.unwrap()).await;
    assert_eq!(
        (ra["duplicate"].clone(), rb["duplicate"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!((env.count("C001"), env.count("C002")), (1, 1));
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_carry_tombstones_cancellations_and_pin_verifiers(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let summary = env.server.load_demo("C001", SEED).unwrap();
    let token = env.token("C001");

    let (s, staff) = status_json(
        env.get("/v1/feeds/staff?limit=1000", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    let items = staff["items"].as_array().unwrap();
    assert_eq!(items.len(), summary.staff);
    let nurse = items.iter().find(|i| i["id"] == "N001").unwrap();
    assert_eq!(nurse["data"]["role"], "nurse");
    assert_eq!(nurse["data"]["active"], true);
    let verifier = nurse["data"]["pinVerifier"].as_str().unwrap();
    assert!(verify_pin(DEMO_PIN, verifier) && !verify_pin("0000", verifier));
    let cursor = staff["nextCursor"].as_i64().unwrap();

    // Deactivate N001 and give N002 a new PIN; both travel as changes after the cursor.
    let (s, ack) = status_json(
        env.put(
            "/v1/staff/N001",
            &token,
            &json!({"name": "x", "role": "nurse", "department": "内科", "active": false}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    let (_, changes) = status_json(
        env.get(&format!("/v1/feeds/staff?after={cursor}"), &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(changes["items"][0]["id"], "N001");
    assert_eq!(changes["items"][0]["data"]["active"], false);
    assert!(
        verify_pin(
            DEMO_PIN,
            changes["items"][0]["data"]["pinVerifier"].as_str().unwrap()
        ),
        "kept"
    );

    // Appointments: cancel one, delete another.
    let (_, appts) = status_json(
        env.get("/v1/feeds/appointments?limit=2", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(appts["hasMore"], true);
    let first = &appts["items"][0];
    let mut cancelled = first["data"].clone();
    cancelled["status"] = json!("cancelled");
    let id0 = first["id"].as_str().unwrap();
    let id1 = appts["items"][1]["id"].as_str().unwrap();
    // Every change after the staff edit: the edit's own sequence number is the cursor.
    let tail = ack["seq"].as_i64().unwrap();
    assert!(tail > cursor);
    env.put(&format!("/v1/appointments/{id0}"), &token, &cancelled)
        .send()
        .await
        .unwrap();
    let (s, _) = status_json(
        env.client
            .delete(env.url(&format!("/v1/appointments/{id1}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    env.client
        .delete(env.url("/v1/patients/P0000002"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    let (_, after) = status_json(
        env.get(&format!("/v1/feeds/appointments?after={tail}"), &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let items = after["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{after}");
    assert_eq!(items[0]["data"]["status"], "cancelled");
    assert_eq!(
        (
            items[1]["id"].as_str().unwrap(),
            items[1]["deleted"].clone()
        ),
        (id1, json!(true))
    );
    assert!(items[1].get("data").is_none());

    let (_, patients) = status_json(
        env.get(&format!("/v1/feeds/patients?after={tail}"), &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(patients["items"][0]["id"], "P0000002");
    assert_eq!(patients["items"][0]["deleted"], true);
    assert!(
        !patients.to_string().contains("name"),
        "a tombstone carries no personal data"
    );
    let (s, _) = status_json(
        env.get("/api/v1/patients/P0000002", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 404);
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_misses_nothing_while_writes_continue(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    const WRITES: usize = 300;
    let writer = {
        let (client, url, token) = (env.client.clone(), env.server.base_url(), token.clone());
        tokio::spawn(async move {
            for i in 0..WRITES {
                // Two kinds of change interleave: new patients and rewrites of earlier ones.
                let id = if i % 3 == 2 {
                    format!("W{:05}", i / 2)
                } else {
                    format!("W{i:05}")
                };
                let body = json!({"name": format!("n{i}"), "sex": "unknown", "birthDate": "2000-01-01", "isInsured": false});
                let resp = client
                    .put(format!("{url}/v1/patients/{id}"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
            }
        })
    };
    let mut seen: HashSet<String> = HashSet::new();
    let mut names: std::collections::HashMap<String, String> = Default::default();
    let mut cursor = 0i64;
    let mut pages = 0;
    loop {
        let done = writer.is_finished();
        let (s, page) = status_json(
            env.get(
                &format!("/v1/feeds/patients?after={cursor}&limit=7"),
                &token,
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(s, 200);
        pages += 1;
        let mut last = cursor;
        for item in page["items"].as_array().unwrap() {
            let seq = item["seq"].as_i64().unwrap();
            assert!(seq > last, "sequence increases within and across pages");
            last = seq;
            let id = item["id"].as_str().unwrap().to_owned();
            names.insert(
                id.clone(),
                item["data"]["name"].as_str().unwrap().to_owned(),
            );
            seen.insert(id);
        }
        cursor = page["nextCursor"].as_i64().unwrap();
        if done && page["hasMore"] == false {
            break;
        }
        assert!(pages < 10_000, "paging terminates");
    }
    writer.await.unwrap();
    let (_, truth) = status_json(
        env.get("/v1/feeds/patients?limit=1000", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let truth: std::collections::HashMap<String, String> = truth["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_owned(),
                i["data"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(pages > 5, "the reader paged while the writer wrote");
    assert_eq!(
        names, truth,
        "the paged copy ends equal to the server's, latest versions included"
    );
}

#[rstest]
#[case::empty_body("application/json", b"".to_vec(), 400)]
#[case::whitespace_body("application/json", b"  \n".to_vec(), 400)]
#[case::no_content_type("", br#"{"a":1}"#.to_vec(), 415)]
#[case::text_plain("text/plain", report_bytes(7), 415)]
#[case::form("application/x-www-form-urlencoded", b"reportId=1".to_vec(), 415)]
#[case::invalid_json("application/json", b"{\"reportId\":".to_vec(), 400)]
#[case::not_an_object("application/json", b"[1,2,3]".to_vec(), 400)]
#[case::invalid_utf8("application/json", invalid_utf8(), 400)]
#[case::score_11("application/json", with_score("11"), 400)]
#[case::score_minus_1("application/json", with_score("-1"), 400)]
#[case::score_1e30("application/json", with_score("1e30"), 400)]
#[case::score_huge_int("application/json", with_score("123456789012345678901234567890"), 400)]
#[case::score_string("application/json", with_score("\"7\""), 400)]
#[case::score_float("application/json", with_score("7.5"), 400)]
#[case::score_null("application/json", with_score("null"), 400)]
#[case::missing_patient("application/json", br#"{"reportId":"0190f7a4-1c2b-7d3e-8f00-000000000001","painScore":1,"submitTime":1}"#.to_vec(), 400)]
#[case::missing_report_id("application/json", br#"{"patientId":"P1","painScore":1,"submitTime":1}"#.to_vec(), 400)]
#[case::bad_patient_id("application/json", br#"{"reportId":"0190f7a4-1c2b-7d3e-8f00-000000000001","patientId":"P 1","painScore":1,"submitTime":1}"#.to_vec(), 400)]
#[case::negative_time("application/json", br#"{"reportId":"0190f7a4-1c2b-7d3e-8f00-000000000001","patientId":"P1","painScore":1,"submitTime":-5}"#.to_vec(), 400)]
#[case::millis_time("application/json", br#"{"reportId":"0190f7a4-1c2b-7d3e-8f00-000000000001","patientId":"P1","painScore":1,"submitTime":1764300000000000}"#.to_vec(), 400)]
#[case::unknown_scale("application/json", br#"{"reportId":"0190f7a4-1c2b-7d3e-8f00-000000000001","patientId":"P1","painScore":1,"submitTime":1,"scale":"vas"}"#.to_vec(), 400)]
#[case::oversized("application/json", oversized(), 413)]
#[case::unknown_fields_are_ignored("application/json", br#"{"reportId":"0190f7a4-1c2b-7d3e-8f00-000000000009","patientId":"P1","painScore":1,"submitTime":1,"futureField":{"x":1}}"#.to_vec(), 200)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_json_4xx_never_a_500(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
    #[case] content_type: &str,
    #[case] body: Vec<u8>,
    #[case] expected: u16,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let mut req = env
        .client
        .post(env.url("/v1/reports"))
        .bearer_auth(&token)
        .body(body);
    if !content_type.is_empty() {
        req = req.header("content-type", content_type);
    }
    let (status, body) = status_json(req.send().await.unwrap()).await;
    assert_eq!(status, expected, "{body}");
    if expected != 200 {
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
        assert_eq!(env.count("C001"), 0);
    }
}

fn report_bytes(score: i64) -> Vec<u8> {
    serde_json::to_vec(&report("P1", score)).unwrap()
}
fn with_score(raw: &str) -> Vec<u8> {
    format!(r#"{{"reportId":"0190f7a4-1c2b-7d3e-8f00-000000000001","patientId":"P1","painScore":{raw},"submitTime":1}}"#)
        .into_bytes()
}
fn invalid_utf8() -> Vec<u8> {
    let mut b = br#"{"reportId":"0190f7a4-1c2b-7d3e-8f00-000000000001","patientId":"P"#.to_vec();
    b.extend_from_slice(&[0xff, 0xfe]);
    b.extend_from_slice(br#"","painScore":1,"submitTime":1}"#);
    b
}
fn oversized() -> Vec<u8> {
    let mut v = report("P1", 1);
    v["reason"] = json!("x".repeat(clinic_central::BODY_LIMIT + 1));
    serde_json::to_vec(&v).unwrap()
}

#[rstest]
#[case::unknown_route("GET", "/v2/nothing", 404)]
#[case::wrong_method("DELETE", "/v1/reports", 405)]
#[case::unknown_feed("GET", "/v1/feeds/doctors", 404)]
#[case::negative_cursor("GET", "/v1/feeds/patients?after=-1", 400)]
#[case::bad_cursor("GET", "/v1/feeds/patients?after=abc", 400)]
#[case::limit_beyond_u32("GET", "/v1/feeds/patients?limit=99999999999", 400)]
#[case::bad_appointment_id("DELETE", "/v1/appointments/A%00B", 400)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_and_query_errors_are_json_too(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
    #[case] method: &str,
    #[case] path: &str,
    #[case] expected: u16,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let req = env
        .client
        .request(method.parse().unwrap(), env.url(path))
        .bearer_auth(&token);
    let (status, body) = status_json(req.send().await.unwrap()).await;
    assert_eq!(status, expected, "{body}");
    assert!(body["error"].is_string());
}

#[rstest]
#[case::future_birth(json!({"name": "a", "sex": "male", "birthDate": "2999-01-01", "isInsured": true}))]
#[case::bad_sex(json!({"name": "a", "sex": "x", "birthDate": "2000-01-01", "isInsured": true}))]
#[case::bad_date(json!({"name": "a", "sex": "male", "birthDate": "2000-02-30", "isInsured": true}))]
#[case::empty_name(json!({"name": " ", "sex": "male", "birthDate": "2000-01-01", "isInsured": true}))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_upserts_follow_the_domain_rules(
    #[case] body: Value,
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let (s, b) = status_json(
        env.put("/v1/patients/P1", &token, &body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400, "{b}");
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compat_mode_serves_only_the_hospital_contract(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, true);
    env.server
        .load_demo(clinic_central::DEFAULT_COMPAT_CLINIC, SEED)
        .unwrap();
    let body = report("P0000001", 4);
    let mut ids = HashSet::new();
    for _ in 0..2 {
        // No token: the original API had none.
        let (s, stored) = status_json(
            env.client
                .post(env.url("/v1/reports"))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(s, 200);
        assert_ne!(
            stored["reportId"], body["reportId"],
            "the server assigns its own ID"
        );
        assert_eq!(stored["painScore"], 4);
        ids.insert(stored["reportId"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 2);
    assert_eq!(env.count(clinic_central::DEFAULT_COMPAT_CLINIC), 2);

    let (s, p) = status_json(
        env.client
            .get(env.url("/api/v1/patients/P0000001"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(p["id"], "P0000001");
    let (s, _) = status_json(
        env.client
            .post(env.url("/v1/reports"))
            .json(&report("P1", 11))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);

    for (method, path) in [
        ("POST", "/v1/reports/batch"),
        ("GET", "/v1/feeds/patients"),
        ("GET", "/v1/feeds/staff"),
        ("PUT", "/v1/patients/P1"),
    ] {
        let req = env
            .client
            .request(method.parse().unwrap(), env.url(path))
            .json(&json!({"reports": []}));
        let (s, body) = status_json(req.send().await.unwrap()).await;
        assert_eq!(s, 404, "{method} {path}: {body}");
    }
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_and_reports(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let metric = |text: &str, name: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .unwrap_or(0)
    };
    let before = env
        .client
        .get(env.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = report("P1", 3);
    env.post("/v1/reports", &token, &r).send().await.unwrap();
    env.post("/v1/reports", &token, &r).send().await.unwrap();
    env.post("/v1/reports", &token, &report("P1", 12))
        .send()
        .await
        .unwrap();
    let after = env
        .client
        .get(env.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ok = "clinic_http_requests_total{route=\"/v1/reports\",status=\"200\"}";
    let bad = "clinic_http_requests_total{route=\"/v1/reports\",status=\"400\"}";
    assert_eq!(metric(&after, ok) - metric(&before, ok), 2, "{after}");
    assert_eq!(metric(&after, bad) - metric(&before, bad), 1);
    assert_eq!(
        metric(&after, "clinic_reports_ingested_total")
            - metric(&before, "clinic_reports_ingested_total"),
        1
    );
    assert_eq!(
        metric(&after, "clinic_reports_duplicate_total")
            - metric(&before, "clinic_reports_duplicate_total"),
        1
    );
    assert!(after.contains(
        "clinic_http_request_duration_seconds_bucket{route=\"/v1/reports\",le=\"+Inf\"} 3"
    ));

    let health = env.client.get(env.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
}

// ---- Assessment details (bodySite, activity, note, intervention, followsUp) ----

const EARLIER: &str = "0190f7a4-1c2b-7d3e-8f00-0000000000aa";

/// `base` with `extra`'s fields set on it; the string `"$self"` stands for the report's own ID.
fn with(mut base: Value, extra: Value) -> Value {
    let id = base["reportId"].clone();
    for (k, v) in extra.as_object().unwrap() {
        base[k] = if v == "$self" { id.clone() } else { v.clone() };
    }
    base
}

fn all_details() -> Value {
    json!({
        "bodySite": "左膝 (left knee)",
        "activity": "movement",
        "note": "疼痛在上楼时加重\nworse on stairs",
        "intervention": "paracetamol 1 g PO",
        "followsUp": EARLIER,
    })
}

#[rstest]
#[case::body_site(json!({"bodySite": "左膝"}))]
#[case::activity_rest(json!({"activity": "rest"}))]
#[case::activity_movement(json!({"activity": "movement"}))]
#[case::note(json!({"note": "第一行\n第二行"}))]
#[case::intervention(json!({"intervention": "ice pack, 20 min"}))]
#[case::follows_up(json!({"followsUp": EARLIER}))]
#[case::all(all_details())]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn details_round_trip_in_the_answer_and_its_replay(
    #[case] details: Value,
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let sent = with(report("P0000001", 6), details.clone());
    let (s, body) = status_json(env.post("/v1/reports", &token, &sent).send().await.unwrap()).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["duplicate"], false);
    let mut expected = details.as_object().unwrap().clone();
    for key in ["bodySite", "activity", "note", "intervention", "followsUp"] {
        assert_eq!(body.get(key), expected.remove(key).as_ref(), "{key}");
    }

    // The replay is answered from the database, so this proves the details were persisted.
    let again = env.post("/v1/reports", &token, &sent).send().await.unwrap();
    assert_eq!(
        again
            .headers()
            .get(clinic_protocol::DUPLICATE_HEADER)
            .unwrap(),
        "true"
    );
    let (s, replayed) = status_json(again).await;
    assert_eq!(s, 200);
    assert_eq!(replayed["duplicate"], true);
    for key in ["bodySite", "activity", "note", "intervention", "followsUp"] {
        assert_eq!(replayed.get(key), body.get(key), "{key}");
    }
    assert_eq!(env.count("C001"), 1);
}

#[rstest]
#[case::body_site_at_limit(json!({"bodySite": "汉".repeat(40)}), None)]
#[case::body_site_one_over(json!({"bodySite": "汉".repeat(41)}), Some("bodySite"))]
#[case::note_at_limit(json!({"note": "汉".repeat(500)}), None)]
#[case::note_one_over(json!({"note": "汉".repeat(501)}), Some("note"))]
#[case::intervention_at_limit(json!({"intervention": "汉".repeat(200)}), None)]
#[case::intervention_one_over(json!({"intervention": "汉".repeat(201)}), Some("intervention"))]
#[case::note_newline(json!({"note": "a\nb"}), None)]
#[case::note_carriage_return(json!({"note": "a\r\nb"}), Some("note"))]
#[case::note_tab(json!({"note": "a\tb"}), Some("note"))]
#[case::note_nul(json!({"note": "a\u{0}b"}), Some("note"))]
#[case::note_delete(json!({"note": "a\u{7f}b"}), Some("note"))]
#[case::note_c1(json!({"note": "a\u{9b}b"}), Some("note"))]
#[case::body_site_newline(json!({"bodySite": "left\nknee"}), Some("bodySite"))]
#[case::intervention_newline(json!({"intervention": "ice\npack"}), Some("intervention"))]
#[case::intervention_escape(json!({"intervention": "\u{1b}[31mice"}), Some("intervention"))]
#[case::self_follow_up(json!({"followsUp": "$self"}), Some("followsUp"))]
#[case::follow_up_not_a_uuid(json!({"followsUp": "yesterday"}), Some("followsUp"))]
#[case::unknown_activity(json!({"activity": "running"}), Some("activity"))]
#[case::activity_wrong_case(json!({"activity": "Rest"}), Some("activity"))]
#[case::activity_not_a_string(json!({"activity": 1}), Some("activity"))]
#[case::note_not_a_string(json!({"note": ["a"]}), Some("note"))]
#[case::nulls_are_absent(json!({"bodySite": null, "activity": null, "note": null, "intervention": null, "followsUp": null}), None)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn details_are_validated_alone_and_in_a_batch(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
    #[case] details: Value,
    #[case] bad_field: Option<&str>,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let sent = with(report("P0000001", 5), details);
    let (s, body) = status_json(env.post("/v1/reports", &token, &sent).send().await.unwrap()).await;
    let (_, batch) = status_json(
        env.post("/v1/reports/batch", &token, &json!({"reports": [sent]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let item = &batch["results"][0];
    match bad_field {
        Some(field) => {
            assert_eq!(s, 400, "{body}");
            let error = body["error"].as_str().unwrap();
            assert!(error.contains(field), "names {field}: {error}");
            assert_eq!(item["status"], "rejected", "{batch}");
            assert!(item["reason"].as_str().unwrap().contains(field), "{batch}");
            assert_eq!(env.count("C001"), 0, "nothing stored");
        }
        None => {
            assert_eq!(s, 200, "{body}");
            assert_eq!(item["status"], "duplicate", "{batch}");
            assert_eq!(env.count("C001"), 1);
        }
    }
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blank_detail_text_is_stored_as_absent(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let sent = with(
        report("P0000001", 4),
        // U+3000 is the ideographic space a Chinese keyboard types.
        json!({"bodySite": "", "note": " \n\t ", "intervention": "\u{3000}", "activity": "rest"}),
    );
    let (s, body) = status_json(env.post("/v1/reports", &token, &sent).send().await.unwrap()).await;
    assert_eq!(s, 200, "{body}");
    for key in ["bodySite", "note", "intervention"] {
        assert!(body.get(key).is_none(), "{key}: {body}");
    }
    assert_eq!(body["activity"], "rest");

    // So the same report without the blank fields is the same content.
    let mut trimmed = sent.clone();
    for key in ["bodySite", "note", "intervention"] {
        trimmed.as_object_mut().unwrap().remove(key);
    }
    let (s, body) = status_json(
        env.post("/v1/reports", &token, &trimmed)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, body["duplicate"].clone()), (200, json!(true)));
    assert_eq!(env.count("C001"), 1);
}

#[rstest]
#[case::identical(json!({}), 200)]
#[case::other_body_site(json!({"bodySite": "右膝"}), 409)]
#[case::other_activity(json!({"activity": "rest"}), 409)]
#[case::other_note(json!({"note": "疼痛在上楼时加重"}), 409)]
#[case::other_intervention(json!({"intervention": "ibuprofen 400 mg"}), 409)]
#[case::other_follow_up(json!({"followsUp": "0190f7a4-1c2b-7d3e-8f00-0000000000bb"}), 409)]
#[case::a_detail_dropped(json!({"note": null}), 409)]
#[case::a_detail_blanked(json!({"note": " \n "}), 409)]
#[case::a_detail_longer_by_a_space(json!({"intervention": "paracetamol 1 g PO "}), 409)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_id_with_other_details_is_a_conflict_and_the_first_is_kept(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
    #[case] change: Value,
    #[case] expected: u16,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let first = with(report("P0000001", 7), all_details());
    let (s, _) = status_json(
        env.post("/v1/reports", &token, &first)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);

    let mut resent = with(first.clone(), change);
    resent.as_object_mut().unwrap().retain(|_, v| !v.is_null());
    let resp = env
        .post("/v1/reports", &token, &resent)
        .send()
        .await
        .unwrap();
    let replayed = resp
        .headers()
        .get(clinic_protocol::DUPLICATE_HEADER)
        .is_some();
    let (s, body) = status_json(resp).await;
    assert_eq!(s, expected, "{body}");
    assert_eq!(replayed, expected == 200);
    if expected == 409 {
        assert!(body["error"].as_str().unwrap().contains("already stored"));
    }

    let (_, kept) = status_json(
        env.post("/v1/reports", &token, &first)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(kept["duplicate"], true);
    for key in ["bodySite", "activity", "note", "intervention", "followsUp"] {
        assert_eq!(kept[key], first[key], "{key}");
    }
    assert_eq!(env.count("C001"), 1);
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_four_field_client_is_served_as_before(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let old = report("P0000001", 3);
    let hospital = ["reportId", "patientId", "painScore", "submitTime"];
    assert_eq!(
        old.as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        BTreeSet::from(hospital)
    );
    for replay in [false, true] {
        let resp = env.post("/v1/reports", &token, &old).send().await.unwrap();
        assert_eq!(
            resp.headers()
                .get(clinic_protocol::DUPLICATE_HEADER)
                .is_some(),
            replay
        );
        let (s, body) = status_json(resp).await;
        assert_eq!(s, 200, "{body}");
        let keys: BTreeSet<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "reportId",
                "patientId",
                "painScore",
                "submitTime",
                "scale",
                "receivedAt",
                "duplicate"
            ]),
            "no detail keys appear in the answer"
        );
        assert_eq!(body["duplicate"], replay);
    }
    // Resending it with a detail is other content.
    let (s, _) = status_json(
        env.post(
            "/v1/reports",
            &token,
            &with(old, json!({"activity": "rest"})),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(env.count("C001"), 1);
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compat_mode_still_ignores_every_extension_including_details(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, true);
    // Even invalid details: the original API never knew them, so they cannot fail a report.
    let body = with(
        report("P0000001", 4),
        json!({"bodySite": "汉".repeat(41), "activity": "running", "followsUp": "$self"}),
    );
    let (s, stored) = status_json(
        env.client
            .post(env.url("/v1/reports"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{stored}");
    assert_ne!(stored["reportId"], body["reportId"]);
    for key in ["bodySite", "activity", "note", "intervention", "followsUp"] {
        assert!(stored.get(key).is_none(), "{key}: {stored}");
    }
    assert_eq!(env.count(clinic_central::DEFAULT_COMPAT_CLINIC), 1);
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_mixes_details_outcomes_item_by_item(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    let token = env.token("C001");
    let stored = with(report("P0000001", 2), all_details());
    env.post("/v1/reports", &token, &stored)
        .send()
        .await
        .unwrap();
    let fresh = with(
        report("P0000002", 8),
        json!({"activity": "rest", "note": "汉".repeat(500)}),
    );
    let batch = json!({"reports": [
        fresh,
        stored,
        with(stored.clone(), json!({"activity": "rest"})),
        with(report("P0000003", 1), json!({"bodySite": "汉".repeat(41)})),
        with(report("P0000004", 1), json!({"followsUp": "$self"})),
        with(report("P0000005", 1), json!({"activity": "walking"})),
        with(report("P0000006", 1), json!({"intervention": "a\u{7}b"})),
        report("P0000007", 0),
    ]});
    let (s, body) = status_json(
        env.post("/v1/reports/batch", &token, &batch)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    let got: Vec<(&str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap(),
                r["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let expected = [
        ("accepted", ""),
        ("duplicate", ""),
        ("rejected", "already stored"),
        ("rejected", "bodySite"),
        ("rejected", "followsUp"),
        ("rejected", "activity"),
        ("rejected", "intervention"),
        ("accepted", ""),
    ];
    assert_eq!(got.len(), expected.len(), "{body}");
    for (i, ((status, reason), (want, mention))) in got.iter().zip(expected).enumerate() {
        assert_eq!(*status, want, "item {i}: {body}");
        assert!(
            reason.contains(mention),
            "item {i} reason {reason:?} mentions {mention}"
        );
        assert_eq!(results[i]["reportId"], batch["reports"][i]["reportId"]);
    }
    assert_eq!(env.count("C001"), 3);

    // The accepted item's details were stored: its replay answers them.
    let (_, replayed) = status_json(
        env.post("/v1/reports", &token, &batch["reports"][0])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(replayed["duplicate"], true);
    assert_eq!(replayed["note"], batch["reports"][0]["note"]);
    assert_eq!(replayed["activity"], "rest");
}
