//! Several stateless replicas on one PostgreSQL behave as one server: idempotency,
//! conflicts and feed order hold across them; an outage of the database gives quick
//! 503s (JSON, `Retry-After`) and the replicas recover without a restart.
//!
//! Each replica is a real server with its own store (own pool, own group-commit
//! writer), exactly what a second `clinic-central serve` process has.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clinic_central::store::postgres::cluster::PgCluster;
use clinic_central::store::{CentralStore, PgOptions, PostgresStore};
use clinic_central::{TestServer, spawn_store_for_tests};
use common::{postgres_database, postgres_store, report, status_json};
use reqwest::Client;
use serde_json::{Value, json};

struct Replicas {
    servers: Vec<TestServer>,
    client: Client,
    token: String,
}

impl Replicas {
    fn on(url: &str, n: usize, options: PgOptions) -> Self {
        let servers: Vec<TestServer> = (0..n)
            .map(|_| {
                let store = Arc::new(PostgresStore::connect(url, options).expect("connect"));
                spawn_store_for_tests(store, false).expect("replica starts")
            })
            .collect();
        let token = servers[0].issue_token("C001").expect("token");
        Self {
            servers,
            client: Client::new(),
            token,
        }
    }

    fn new(n: usize) -> Self {
        Self::on(&postgres_database(), n, PgOptions::default())
    }

    fn url(&self, replica: usize, path: &str) -> String {
        format!(
            "{}{path}",
            self.servers[replica % self.servers.len()].base_url()
        )
    }

    async fn post(&self, replica: usize, path: &str, body: &Value) -> (u16, Value) {
        status_json(
            self.client
                .post(self.url(replica, path))
                .bearer_auth(&self.token)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn put(&self, replica: usize, path: &str, body: &Value) -> (u16, Value) {
        status_json(
            self.client
                .put(self.url(replica, path))
                .bearer_auth(&self.token)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn get(&self, replica: usize, path: &str) -> (u16, Value) {
        status_json(
            self.client
                .get(self.url(replica, path))
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_on_the_other_replica_is_a_duplicate_and_other_content_a_conflict() {
    let r = Replicas::new(2);
    let sent = report("P0000001", 6);
    let (s, first) = r.post(0, "/v1/reports", &sent).await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(first["duplicate"], false);

    let (s, again) = r.post(1, "/v1/reports", &sent).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["receivedAt"], first["receivedAt"]);

    let mut other = sent.clone();
    other["painScore"] = json!(2);
    let (s, body) = r.post(1, "/v1/reports", &other).await;
    assert_eq!(s, 409, "{body}");
    assert_eq!(r.servers[1].report_count(Some("C001")).unwrap(), 1);

    let metrics = r
        .client
        .get(r.url(1, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("clinic_db_pool_max 16"), "{metrics}");
    let calls: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("clinic_db_call_duration_seconds_count "))
        .and_then(|v| v.parse().ok())
        .expect("database call histogram");
    assert!(
        calls >= 3,
        "the replica's database calls are counted: {calls}"
    );
    assert!(metrics.contains("clinic_db_unavailable_total 0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_spread_over_replicas_store_each_report_once() {
    let r = Arc::new(Replicas::new(2));
    const REPORTS: usize = 60;
    const COPIES: usize = 4;
    let reports: Vec<Value> = (0..REPORTS)
        .map(|i| report(&format!("P{i:07}"), (i % 11) as i64))
        .collect();
    let mut tasks = Vec::new();
    for copy in 0..COPIES {
        for (i, body) in reports.iter().enumerate() {
            let (r, body) = (r.clone(), body.clone());
            // Batches and single posts, each copy to the other replica than the last.
            tasks.push(tokio::spawn(async move {
                let replica = copy + i;
                if copy % 2 == 0 {
                    let (s, b) = r.post(replica, "/v1/reports", &body).await;
                    assert_eq!(s, 200, "{b}");
                    b["duplicate"] == false
                } else {
                    let (s, b) = r
                        .post(replica, "/v1/reports/batch", &json!({"reports": [body]}))
                        .await;
                    assert_eq!(s, 200, "{b}");
                    let status = &b["results"][0]["status"];
                    assert!(status == "accepted" || status == "duplicate", "{b}");
                    status == "accepted"
                }
            }));
        }
    }
    let mut fresh = 0;
    for t in tasks {
        if t.await.unwrap() {
            fresh += 1;
        }
    }
    assert_eq!(
        fresh, REPORTS,
        "exactly one delivery of each says it stored it"
    );
    assert_eq!(
        r.servers[0].report_count(Some("C001")).unwrap(),
        REPORTS as u64
    );
}

/// Writers on both replicas while a reader pages, alternating replicas too: the
/// reader's copy ends equal to the database, every change seen in number order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_across_replicas_misses_nothing_under_concurrent_writers() {
    let r = Arc::new(Replicas::new(2));
    const WRITERS: usize = 6;
    const WRITES: usize = 60;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let r = r.clone();
            tokio::spawn(async move {
                for i in 0..WRITES {
                    // New patients and rewrites of other writers' ones interleave.
                    let id = format!("W{:02}{:03}", (w + i) % WRITERS, i / 2);
                    let body = json!({"name": format!("w{w}-{i}"), "sex": "unknown",
                                      "birthDate": "2000-01-01", "isInsured": false});
                    let (s, b) = r.put(w + i, &format!("/v1/patients/{id}"), &body).await;
                    assert_eq!(s, 200, "{b}");
                }
            })
        })
        .collect();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut cursor = 0i64;
    let mut pages = 0usize;
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        let (s, page) = r
            .get(pages, &format!("/v1/feeds/patients?after={cursor}&limit=5"))
            .await;
        assert_eq!(s, 200);
        pages += 1;
        let mut last = cursor;
        for item in page["items"].as_array().unwrap() {
            let seq = item["seq"].as_i64().unwrap();
            assert!(seq > last, "numbers increase within and across pages");
            last = seq;
            names.insert(
                item["id"].as_str().unwrap().to_owned(),
                item["data"]["name"].as_str().unwrap().to_owned(),
            );
        }
        cursor = page["nextCursor"].as_i64().unwrap();
        if done && page["hasMore"] == false {
            break;
        }
        assert!(pages < 20_000, "paging terminates");
    }
    for w in writers {
        w.await.unwrap();
    }
    let (_, truth) = r.get(0, "/v1/feeds/patients?limit=1000").await;
    let truth: HashMap<String, String> = truth["items"]
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
    assert!(pages > 5, "the reader paged while the writers wrote");
    assert_eq!(truth.len(), names.len());
    assert_eq!(names, truth, "the paged copy ends equal to the database");
    let seqs: HashSet<i64> = (1..=(WRITERS * WRITES) as i64).collect();
    let (_, all) = r.get(1, "/v1/feeds/patients?limit=1000").await;
    let latest: HashSet<i64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["seq"].as_i64().unwrap())
        .collect();
    assert!(
        latest.is_subset(&seqs),
        "one change number per write, no gaps beyond them"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_gives_quick_503s_and_the_replicas_recover_by_themselves() {
    // Its own cluster: this test stops and starts it.
    let cluster = PgCluster::start().expect("PostgreSQL starts");
    let url = cluster.create_database().unwrap();
    let options = PgOptions {
        pool_size: 4,
        timeout: Duration::from_secs(2),
    };
    let r = Replicas::on(&url, 2, options);
    let (s, _) = r.post(0, "/v1/reports", &report("P0000001", 3)).await;
    assert_eq!(s, 200);

    cluster.stop().unwrap();
    for replica in 0..2 {
        let started = Instant::now();
        let resp = r
            .client
            .post(r.url(replica, "/v1/reports"))
            .bearer_auth(&r.token)
            .json(&report("P0000002", 4))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503);
        assert!(
            resp.headers().get("retry-after").is_some(),
            "Retry-After is set"
        );
        let (_, body) = status_json(resp).await;
        assert!(body["error"].is_string(), "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "answered in {:?}, not hung",
            started.elapsed()
        );
        let health = r
            .client
            .get(r.url(replica, "/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 503);
    }

    cluster.start_again().unwrap();
    // The same report the outage refused, retried as the app's outbox would.
    let retried = report("P0000002", 4);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answers = Vec::new();
    for replica in 0..2 {
        loop {
            let health = r
                .client
                .get(r.url(replica, "/healthz"))
                .send()
                .await
                .unwrap();
            if health.status() == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "replica {replica} recovers");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (s, body) = r.post(replica, "/v1/reports", &retried).await;
        assert_eq!(s, 200, "replica {replica}: {body}");
        answers.push(body["duplicate"].clone());
    }
    assert_eq!(answers, [json!(false), json!(true)]);
    assert_eq!(r.servers[0].report_count(Some("C001")).unwrap(), 2);
}

#[test]
fn a_database_migrated_by_a_newer_binary_is_refused() {
    let url = postgres_database();
    drop(postgres_store(&url)); // migrates to this binary's latest
    let mut client = postgres::raw_client(&url);
    client.execute_newer_version();
    match PostgresStore::connect(&url, PgOptions::default()) {
        Ok(_) => panic!("a database newer than the binary must be refused"),
        Err(e) => assert!(e.to_string().contains("migration"), "{e}"),
    }
}

/// A plain connection beside the store, to tamper with the schema history.
mod postgres {
    pub struct Raw {
        runtime: tokio::runtime::Runtime,
        client: tokio_postgres::Client,
    }

    pub fn raw_client(url: &str) -> Raw {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = runtime.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
        });
        Raw { runtime, client }
    }

    impl Raw {
        pub fn execute_newer_version(&mut self) {
            self.runtime.block_on(async {
                self.client
                    .execute(
                        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
                         VALUES (999, 'from_the_future', '2030-01-01T00:00:00Z', '0')",
                        &[],
                    )
                    .await
                    .unwrap();
            });
        }
    }
}

/// A `clinic-central serve` child process; killed on drop.
struct Serving {
    child: std::process::Child,
    addr: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const BIN: &str = env!("CARGO_BIN_EXE_clinic-central");

fn serve(db: &str) -> Serving {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db", db])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("listening on ") {
                let _ = tx.send(a.trim().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("serve prints its address");
    Serving { child, addr }
}

/// The real thing: two `serve` processes on one database URL, as behind a load balancer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_on_one_database_answer_as_one_server() {
    let url = postgres_database();
    let out = std::process::Command::new(BIN)
        // Admin: the test also writes a patient record, which a device token may not.
        .args(["token", "issue", "--clinic", "C001", "--scope", "admin"])
        .env("CLINIC_CENTRAL_DB", &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("token:"))
        .unwrap()
        .trim()
        .to_owned();
    let (a, b) = (serve(&url), serve(&url));
    let client = Client::new();
    let post = |addr: &str, body: &Value| {
        client
            .post(format!("http://{addr}/v1/reports"))
            .bearer_auth(&token)
            .json(body)
            .send()
    };
    let sent = report("P0000001", 5);
    let (s, first) = status_json(post(&a.addr, &sent).await.unwrap()).await;
    assert_eq!((s, &first["duplicate"]), (200, &json!(false)), "{first}");
    let (s, again) = status_json(post(&b.addr, &sent).await.unwrap()).await;
    assert_eq!((s, &again["duplicate"]), (200, &json!(true)), "{again}");
    let mut other = sent.clone();
    other["painScore"] = json!(1);
    let (s, _) = status_json(post(&b.addr, &other).await.unwrap()).await;
    assert_eq!(s, 409);

    // A record written through one process is in the other's feed, in order.
    let put = client
        .put(format!("http://{}/v1/patients/P0000001", b.addr))
        .bearer_auth(&token)
        .json(
            &json!({"name": "王芳", "sex": "female", "birthDate": "1980-01-01", "isInsured": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let (s, page) = status_json(
        client
            .get(format!("http://{}/v1/feeds/patients", a.addr))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(page["items"][0]["data"]["name"], "王芳");
    assert_eq!(postgres_store(&url).report_count(Some("C001")).unwrap(), 1);
}

/// A TCP relay in front of PostgreSQL that can turn into a black hole: connections
/// stay open but nothing passes (a dead network path, worse than a refused port).
struct Relay {
    port: u16,
    blackhole: Arc<std::sync::atomic::AtomicBool>,
}

/// Copies `from` to `to`; while the black hole is on, bytes wait instead of passing.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    blackhole: Arc<std::sync::atomic::AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while blackhole.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn relay_to(upstream_port: u16) -> Relay {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let blackhole = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = blackhole.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let flag = flag.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream_port)).await
                else {
                    return;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let up = tokio::spawn(pipe(cr, sw, flag.clone()));
                pipe(sr, cw, flag).await;
                up.abort();
            });
        }
    });
    Relay { port, blackhole }
}

/// The database stops answering without closing anything: requests still get a 503
/// within the configured time, requests that need no database are not held up
/// meanwhile, and the replica recovers once the path is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_database_gives_503s_in_bounded_time_and_stalls_nothing_else() {
    let cluster = PgCluster::shared().unwrap();
    let direct = cluster.create_database().unwrap();
    let relay = relay_to(cluster.port()).await;
    let url = direct.replace(
        &format!("127.0.0.1:{}/", cluster.port()),
        &format!("127.0.0.1:{}/", relay.port),
    );
    let options = PgOptions {
        pool_size: 4,
        timeout: Duration::from_secs(1),
    };
    let r = Arc::new(Replicas::on(&url, 1, options));
    let (s, _) = r.post(0, "/v1/reports", &report("P0000001", 3)).await;
    assert_eq!(s, 200);

    relay
        .blackhole
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let started = Instant::now();
    let stuck: Vec<_> = (0..6)
        .map(|i| {
            let r = r.clone();
            tokio::spawn(async move {
                let resp = r
                    .client
                    .post(r.url(0, "/v1/reports"))
                    .bearer_auth(&r.token)
                    .json(&report(&format!("P{i:07}"), 4))
                    .send()
                    .await
                    .unwrap();
                (
                    resp.status().as_u16(),
                    resp.headers().contains_key("retry-after"),
                )
            })
        })
        .collect();
    // While those wait on the database, a request that needs none answers at once.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let quick = Instant::now();
    let metrics = r.client.get(r.url(0, "/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        quick.elapsed() < Duration::from_secs(1),
        "/metrics took {:?}",
        quick.elapsed()
    );
    for t in stuck {
        assert_eq!(t.await.unwrap(), (503, true));
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "bounded: {:?}",
        started.elapsed()
    );
    let health = r.client.get(r.url(0, "/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 503);

    relay
        .blackhole
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, _) = r.post(0, "/v1/reports", &report("P0000009", 2)).await;
        if s == 200 {
            break;
        }
        assert_eq!(s, 503);
        assert!(Instant::now() < deadline, "the replica recovers");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
