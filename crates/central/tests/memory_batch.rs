//! A batch of a million tiny items fits in the 2 MiB body limit; it must be
//! refused at item 1,001 without ever holding a million parsed values.

mod rss;

use clinic_central::spawn_for_tests;
use serde_json::Value;

/// Parsing the million items whole takes 32–48 MiB for the values alone
/// (`serde_json::Value` is 32 bytes, and the vector doubles as it grows).
const BOUND: u64 = 16 * rss::MIB;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_item_batch_is_refused_without_the_memory_jump() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_for_tests(&dir.path().join("central.db"), false).unwrap();
    let token = server.issue_token("C001").unwrap();
    let mut body = String::with_capacity(2_100_000);
    body.push_str("{\"reports\":[0");
    for _ in 1..1_000_000 {
        body.push_str(",0");
    }
    body.push_str("]}");
    assert!(
        body.len() < clinic_central::BATCH_BODY_LIMIT,
        "fits the byte limit: {}",
        body.len()
    );
    let client = reqwest::Client::new();
    // Warm the connection and the server's paths so the measurement sees only the batch.
    let warm = client
        .post(format!("{}/v1/reports/batch", server.base_url()))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"reports\":[]}")
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);

    let before = rss::rss_bytes();
    let peak = rss::PeakRss::start();
    let resp = client
        .post(format!("{}/v1/reports/batch", server.base_url()))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let answer: Value = resp.json().await.unwrap();
    let grew = peak.finish().saturating_sub(before);
    println!(
        "1,000,000-item batch: {status}, resident memory grew by {:.1} MiB",
        grew as f64 / rss::MIB as f64
    );
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("1000"),
        "{answer}"
    );
    assert!(grew < BOUND, "grew by {grew} bytes");
    assert_eq!(server.report_count(None).unwrap(), 0);
}
