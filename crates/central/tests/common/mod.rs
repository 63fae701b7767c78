//! A real server on 127.0.0.1:0 over a temp-dir SQLite file or a fresh database on
//! the test process's own PostgreSQL, and a client for it.
#![allow(dead_code)]

use std::sync::Arc;

use clinic_central::store::postgres::cluster::PgCluster;
use clinic_central::store::{PgOptions, PostgresStore};
use clinic_central::{TestServer, spawn_for_tests, spawn_store_for_tests};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::{Value, json};
use tempfile::TempDir;
use uuid::Uuid;

pub struct Env {
    pub server: TestServer,
    pub client: Client,
    _dir: TempDir,
}

/// Which store the server runs on; the HTTP suite runs every test on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A new, empty database on the process's shared PostgreSQL (started on first use).
pub fn postgres_database() -> String {
    PgCluster::shared()
        .expect("PostgreSQL starts (scripts/prepare.sh installs the `postgresql` package)")
        .create_database()
        .expect("create database")
}

pub fn postgres_store(url: &str) -> Arc<PostgresStore> {
    let options = PgOptions {
        pool_size: 8,
        ..PgOptions::default()
    };
    Arc::new(PostgresStore::connect(url, options).expect("connect to PostgreSQL"))
}

pub fn env(backend: Backend, compat: bool) -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = match backend {
        Backend::Sqlite => spawn_for_tests(&dir.path().join("central.db"), compat),
        Backend::Postgres => spawn_store_for_tests(postgres_store(&postgres_database()), compat),
    }
    .expect("server starts");
    Env {
        server,
        client: Client::new(),
        _dir: dir,
    }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }
    pub fn token(&self, clinic: &str) -> String {
        self.server.issue_token(clinic).expect("token")
    }
    pub fn get(&self, path: &str, token: &str) -> RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(token)
    }
    pub fn post(&self, path: &str, token: &str, body: &Value) -> RequestBuilder {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
    }
    pub fn put(&self, path: &str, token: &str, body: &Value) -> RequestBuilder {
        self.client
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
    }
    pub fn count(&self, clinic: &str) -> u64 {
        self.server.report_count(Some(clinic)).expect("count")
    }
}

pub fn report(patient: &str, score: i64) -> Value {
    json!({
        "reportId": Uuid::now_v7().to_string(),
        "patientId": patient,
        "painScore": score,
        "submitTime": 1_764_300_000,
    })
}

/// Status and JSON body; panics with the raw text when the body is not JSON.
pub async fn status_json(resp: Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("status {status}: body is not JSON: {text:?}"));
    (status, body)
}
