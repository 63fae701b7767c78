//! Scoped tokens and enrolment over real HTTP, each test on SQLite and PostgreSQL:
//! the route table walked with both scopes, revoking one device, last use, and
//! one-time enrolment codes (used, expired, unknown, another clinic's, bounded).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use clinic_central::auth::{self, Access, EnrolmentCodeRecord, ROUTES, Scope};
use clinic_central::store::{CentralStore, Durability, SqliteStore};
use clinic_central::{Limits, TestServer, spawn_store_for_tests_with};
use clinic_domain::ClinicZone;
use clinic_protocol::{error_code, paths};
use common::{Backend, env, postgres_database, postgres_store, report, status_json};
use reqwest::Client;
use rstest::rstest;
use serde_json::{Value, json};

/// A concrete path for a route template.
fn concrete(template: &str) -> String {
    let path = template
        .replace("{id}", "X0001")
        .replace("{kind}", "patients");
    if template == paths::CHANGES {
        // The counter is past 0 (a patient was written), so this answers at once.
        format!("{path}?after=0&waitSeconds=1")
    } else {
        path
    }
}

/// A body each route accepts, or at least reads past authentication.
fn body_for(method: &Method, template: &str) -> Option<Value> {
    if *method == Method::GET || *method == Method::DELETE {
        return None;
    }
    Some(if template == paths::REPORTS {
        report("P0000001", 3)
    } else if template == paths::REPORTS_BATCH {
        json!({"reports": [report("P0000001", 4)]})
    } else if template == paths::ENROL {
        json!({"code": "0000-0000-0000-0000", "clinicId": "C001"})
    } else if template.starts_with(paths::PATIENTS) {
        json!({"name": "王芳", "sex": "female", "birthDate": "1980-01-02", "isInsured": true})
    } else if template.starts_with(paths::STAFF) {
        json!({"name": "李静", "role": "nurse", "department": "外科", "pin": "135790"})
    } else {
        json!({"doctorId": "D1", "patientId": "X0001", "startsAt": "2026-01-01T01:00:00Z",
               "endsAt": "2026-01-01T01:30:00Z", "status": "booked"})
    })
}

async fn call(
    env: &common::Env,
    method: &Method,
    path: &str,
    body: Option<&Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let mut req = env.client.request(method.clone(), env.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Every route of the table with a device and an admin token: a device token gets
/// 403 `admin_scope_required` on exactly the admin routes; an admin token is never
/// refused for its scope; and no route answers to a method the table does not list
/// (so the table and the router name the same routes).
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_the_scope_the_table_says(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    env.server.load_demo("C001", 1).unwrap();
    let admin = env.token("C001");
    let device = env
        .server
        .issue_scoped_token("C001", Scope::Device)
        .unwrap();
    let mut admin_routes = 0;
    for (method, template, access) in ROUTES.iter() {
        let path = concrete(template);
        let body = body_for(method, template);
        for (scope, token) in [(Scope::Device, &device), (Scope::Admin, &admin)] {
            // Revoking oneself spends the token: that route gets one of its own.
            let own;
            let token = if template == paths::OWN_TOKEN {
                own = env.server.issue_scoped_token("C001", scope).unwrap();
                &own
            } else {
                token
            };
            let (status, answer) = call(&env, method, &path, body.as_ref(), Some(token)).await;
            let refused_for_scope =
                status == 403 && answer["code"] == error_code::ADMIN_SCOPE_REQUIRED;
            let must_refuse = matches!(access, Access::Token(needed) if !scope.allows(*needed));
            assert_eq!(
                refused_for_scope, must_refuse,
                "{method} {path} with a {scope} token: {status} {answer}"
            );
            if must_refuse {
                admin_routes += 1;
                assert!(
                    answer["error"].as_str().unwrap().contains("admin token"),
                    "{answer}"
                );
            } else {
                assert_ne!(
                    status, 401,
                    "{method} {path} with a {scope} token: {answer}"
                );
                assert!(status < 500, "{method} {path}: {status} {answer}");
            }
        }
        if let Access::Token(_) = access {
            let (status, _) = call(&env, method, &path, body.as_ref(), None).await;
            assert_eq!(status, 401, "{method} {path} without a token");
        }
    }
    assert_eq!(
        admin_routes, 5,
        "PUT/DELETE patients, PUT/DELETE appointments, PUT staff"
    );
    // A method the table does not list on a listed path is not routed at all.
    for (_, template, _) in ROUTES.iter() {
        for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            if ROUTES.iter().any(|(m, t, _)| *m == method && t == template) {
                continue;
            }
            let path = concrete(template);
            let (status, answer) = call(&env, &method, &path, None, Some(&device)).await;
            assert_eq!(status, 405, "{method} {path}: {answer}");
        }
    }
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_one_device_leaves_the_others_syncing(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    env.server.load_demo("C001", 1).unwrap();
    let store = env.server.store.as_ref();
    let lost = auth::issue_token(store, "C001", Scope::Device, Some("ward 3 laptop")).unwrap();
    let kept = auth::issue_token(store, "C001", Scope::Device, Some("ward 3 desk")).unwrap();
    for t in [&lost, &kept] {
        let (s, _) = status_json(
            env.post("/v1/reports", &t.secret, &report("P0000001", 2))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(s, 200);
    }
    assert!(store.revoke_token(&lost.id).unwrap());
    let (s, _) = status_json(
        env.post("/v1/reports", &lost.secret, &report("P0000001", 2))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 401, "the lost laptop is out at once");
    let (s, _) = status_json(
        env.post("/v1/reports", &kept.secret, &report("P0000001", 5))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    let (s, page) = status_json(
        env.get("/v1/feeds/reports?after=0", &kept.secret)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, page["items"].as_array().unwrap().len()), (200, 3));
    assert_eq!(env.count("C001"), 3);
}

/// `DELETE /v1/tokens/self` revokes the token it carries and no other: the
/// device's next request is 401, while another device of the clinic and the
/// admin token keep working, and the server's token list shows when.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revokes_itself_and_nothing_else(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    env.server.load_demo("C001", 1).unwrap();
    let store = env.server.store.as_ref();
    let admin = env.token("C001");
    let given_back = auth::issue_token(store, "C001", Scope::Device, Some("new pc")).unwrap();
    let other = auth::issue_token(store, "C001", Scope::Device, Some("ward 3")).unwrap();
    // The second time the token is revoked already: it cannot act, on itself either.
    for want in [204, 401] {
        let give_back = Some(given_back.secret.as_str());
        let (s, answer) = call(&env, &Method::DELETE, paths::OWN_TOKEN, None, give_back).await;
        assert_eq!(s, want, "{answer}");
    }
    for (token, want) in [
        (&given_back.secret, 401),
        (&other.secret, 200),
        (&admin, 200),
    ] {
        let (s, _) = status_json(
            env.post(paths::REPORTS, token, &report("P0000001", 2))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(s, want);
    }
    let listed = store.tokens("C001").unwrap();
    let revoked: Vec<_> = listed
        .iter()
        .filter(|t| t.revoked_at.is_some())
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(revoked, [given_back.id.as_str()]);
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokens_last_use_and_address_are_recorded(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    env.server.load_demo("C001", 1).unwrap();
    let t =
        auth::issue_token(env.server.store.as_ref(), "C001", Scope::Device, Some("pc")).unwrap();
    let before = chrono::Utc::now().timestamp();
    for _ in 0..5 {
        let (s, _) = status_json(
            env.get("/v1/feeds/staff?limit=1", &t.secret)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(s, 200);
    }
    // The write runs beside the request: wait for it to land.
    let deadline = Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let listed = env.server.store.tokens("C001").unwrap();
        let mine = listed.into_iter().find(|i| i.id == t.id).unwrap();
        if mine.last_seen_at.is_some() {
            break mine;
        }
        assert!(Instant::now() < deadline, "last use never recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(seen.last_seen_at.unwrap() >= before);
    assert_eq!(seen.last_seen_address.as_deref(), Some("127.0.0.1"));
    assert_eq!(seen.scope, Scope::Device);
}

// ---- Enrolment ----

async fn enrol(env: &common::Env, code: &str, clinic: &str) -> (u16, Value) {
    status_json(
        env.client
            .post(env.url(paths::ENROL))
            .json(&json!({"code": code, "clinicId": clinic, "label": "host-7"}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolment_code_gives_one_device_token_of_its_clinic(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    env.server.load_demo("C001", 1).unwrap();
    env.server.load_demo("C002", 1).unwrap();
    let store = env.server.store.as_ref();
    let code = auth::issue_enrolment_code(store, "C001", Duration::from_secs(900), Some("ward 3"))
        .unwrap();

    // Another clinic's device cannot use it, and trying does not spend it.
    let (s, body) = enrol(&env, &code.code, "C002").await;
    assert_eq!(
        (s, body["code"].as_str()),
        (403, Some(error_code::ENROLMENT_CODE_REFUSED))
    );
    assert!(
        body["error"].as_str().unwrap().contains("another clinic"),
        "{body}"
    );

    // Typed in lower case with spaces: the same code.
    let typed = code.code.to_lowercase().replace('-', " ");
    let (s, enrolled) = enrol(&env, &typed, "C001").await;
    assert_eq!(s, 200, "{enrolled}");
    assert_eq!(enrolled["scope"], "device");
    assert_eq!(enrolled["clinicId"], "C001");
    let token = enrolled["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("cct_"));

    // The token is a device token of C001: it pushes and reads, it cannot write records.
    let (s, _) = status_json(
        env.post("/v1/reports", &token, &report("P0000001", 6))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!((env.count("C001"), env.count("C002")), (1, 0));
    let (s, body) = status_json(
        env.put(
            "/v1/staff/N001",
            &token,
            &json!({"name": "李静", "role": "nurse", "department": "外科", "pin": "135790"}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (403, Some(error_code::ADMIN_SCOPE_REQUIRED))
    );

    // Used: refused, and no second token.
    let (s, body) = enrol(&env, &code.code, "C001").await;
    assert_eq!(s, 403);
    assert!(
        body["error"].as_str().unwrap().contains("already used"),
        "{body}"
    );
    let listed = store.tokens("C001").unwrap();
    let enrolled_id = enrolled["tokenId"].as_str().unwrap();
    let mine = listed.iter().find(|t| t.id == enrolled_id).unwrap();
    assert_eq!(
        (mine.scope, mine.label.as_deref(), listed.len()),
        (Scope::Device, Some("ward 3"), 1),
        "one device token, named by the code's label"
    );
}

#[rstest]
#[case::expired("expired")]
#[case::unknown("not known")]
#[case::malformed("not an enrolment code")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_unknown_and_malformed_codes_are_refused(
    #[case] reason: &str,
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = env(backend, false);
    env.server
        .store
        .ensure_clinic("C001", ClinicZone::default())
        .unwrap();
    let code = match reason {
        "expired" => {
            // Made 15 minutes ago with a 15-minute life: expired a moment ago.
            let raw = "7Q2M-9KXR-4TBW-H8ND";
            env.server
                .store
                .insert_enrolment_code(&EnrolmentCodeRecord {
                    id: "enr_old".into(),
                    clinic_id: "C001".into(),
                    sha256: auth::code_hash(&auth::normalise_code(raw).unwrap()),
                    label: None,
                    expires_at: chrono::Utc::now().timestamp() - 1,
                })
                .unwrap();
            raw
        }
        "not known" => "7Q2M-9KXR-4TBW-H8ND",
        _ => "CDP1-not-a-code",
    };
    let (s, body) = enrol(&env, code, "C001").await;
    assert_eq!(
        (s, body["code"].as_str()),
        (403, Some(error_code::ENROLMENT_CODE_REFUSED))
    );
    assert!(body["error"].as_str().unwrap().contains(reason), "{body}");
    assert!(env.server.store.tokens("C001").unwrap().is_empty());
}

fn server_with(backend: Backend, limits: Limits) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn CentralStore> = match backend {
        Backend::Sqlite => {
            Arc::new(SqliteStore::open(&dir.path().join("c.db"), Durability::Full).unwrap())
        }
        Backend::Postgres => postgres_store(&postgres_database()),
    };
    (
        spawn_store_for_tests_with(store, false, limits).unwrap(),
        dir,
    )
}

/// Guessing codes is a failed authentication like a bad token: limited per
/// address, 429 with `Retry-After` past the allowance; the body bounds of any
/// unauthenticated request hold.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_codes_is_limited_like_bad_tokens(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let limits = Limits {
        failed_auth_burst: 3,
        failed_auth_per_minute: 1,
        ..Limits::default()
    };
    let (server, _dir) = server_with(backend, limits);
    server
        .store
        .ensure_clinic("C001", ClinicZone::default())
        .unwrap();
    let client = Client::new();
    let url = format!("{}{}", server.base_url(), paths::ENROL);
    let guess = |n: usize| json!({"code": format!("0000-0000-0000-{n:04}"), "clinicId": "C001"});
    for n in 0..3 {
        let r = client.post(&url).json(&guess(n)).send().await.unwrap();
        assert_eq!(r.status(), 403);
    }
    let r = client.post(&url).json(&guess(3)).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // A body past the limit is refused before anything is read into a code.
    let huge = json!({"code": "x".repeat(clinic_central::BODY_LIMIT), "clinicId": "C001"});
    let r = client.post(&url).json(&huge).send().await.unwrap();
    assert_eq!(r.status(), 413);
}

/// A token issued before scopes existed (the clinic's one token) is an admin
/// token after the upgrade: it still writes records, on both stores.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_before_scopes_is_an_admin_token_after_the_upgrade(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    const OLD_SECRET: &str = "cct_from_the_previous_release";
    let hash = auth::token_hash(OLD_SECRET);
    let dir = tempfile::tempdir().unwrap();
    let insert = "INSERT INTO clinics (id, change_seq) VALUES ('C001', 0)";
    let store: Arc<dyn CentralStore> = match backend {
        Backend::Sqlite => {
            let path = dir.path().join("old.db");
            SqliteStore::migrate_for_tests(&path, 3).unwrap();
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute(insert, []).unwrap();
            conn.execute(
                "INSERT INTO api_tokens (id, clinic_id, token_sha256, label, created_at)
                 VALUES ('tok_old', 'C001', ?1, 'clinic', 1)",
                [hash.as_slice()],
            )
            .unwrap();
            drop(conn);
            Arc::new(SqliteStore::open(&path, Durability::Full).unwrap())
        }
        Backend::Postgres => {
            let url = postgres_database();
            let at = url.clone();
            tokio::task::spawn_blocking(move || {
                clinic_central::store::PostgresStore::migrate_for_tests(&at, 4)
            })
            .await
            .unwrap()
            .unwrap();
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            let driver = tokio::spawn(conn);
            client.batch_execute(insert).await.unwrap();
            client
                .execute(
                    "INSERT INTO api_tokens (id, clinic_id, token_sha256, label, created_at)
                     VALUES ('tok_old', 'C001', $1, 'clinic', 1)",
                    &[&hash.as_slice()],
                )
                .await
                .unwrap();
            drop(client);
            let _ = driver.await;
            postgres_store(&url)
        }
    };
    assert_eq!(
        store.token_for_hash(&hash).unwrap().map(|t| t.scope),
        Some(Scope::Admin)
    );
    let server = spawn_store_for_tests_with(store, false, Limits::default()).unwrap();
    let (s, body) = status_json(
        Client::new()
            .put(format!("{}/v1/patients/P1", server.base_url()))
            .bearer_auth(OLD_SECRET)
            .json(&json!({"name": "王芳", "sex": "female", "birthDate": "1980-01-02", "isInsured": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{body}");
}

/// Single use holds under a race: eight devices sending one code at once get one
/// token between them.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_sent_by_eight_devices_at_once_enrols_one(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
) {
    let env = Arc::new(env(backend, false));
    env.server
        .store
        .ensure_clinic("C001", ClinicZone::default())
        .unwrap();
    let code = auth::issue_enrolment_code(
        env.server.store.as_ref(),
        "C001",
        Duration::from_secs(600),
        None,
    )
    .unwrap()
    .code;
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let (env, code) = (env.clone(), code.clone());
            tokio::spawn(async move { enrol(&env, &code, "C001").await.0 })
        })
        .collect();
    let mut statuses = Vec::new();
    for r in racers {
        statuses.push(r.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 403, 403, 403, 403, 403, 403, 403]);
    assert_eq!(env.server.store.tokens("C001").unwrap().len(), 1);
}
