//! 48 staff PUTs with a PIN at once: each argon2id hash takes 19 MiB, so without
//! a limit they would take about 900 MiB together. At most
//! `MAX_CONCURRENT_PIN_HASHES` (2) run at once; the rest wait.

mod rss;

use clinic_central::spawn_for_tests;
use serde_json::json;

/// The stated bound on what 48 concurrent PIN PUTs may add to resident memory.
const BOUND: u64 = 64 * rss::MIB;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_eight_concurrent_pin_puts_stay_under_the_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_for_tests(&dir.path().join("central.db"), false).unwrap();
    let token = server.issue_token("C001").unwrap();
    let client = reqwest::Client::new();
    let url = server.base_url();
    // One PUT first, so the measurement sees the concurrency, not first-use set-up.
    let warm = client
        .put(format!("{url}/v1/staff/N0"))
        .bearer_auth(&token)
        .json(&json!({"name": "李静", "role": "nurse", "department": "内科", "pin": "402817"}))
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);

    let before = rss::rss_bytes();
    let peak = rss::PeakRss::start();
    let started = std::time::Instant::now();
    let puts: Vec<_> = (1..=48)
        .map(|i| {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            tokio::spawn(async move {
                client
                    .put(format!("{url}/v1/staff/N{i}"))
                    .bearer_auth(token)
                    .json(&json!({"name": "李静", "role": "nurse", "department": "内科", "pin": "517093"}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for put in puts {
        assert_eq!(put.await.unwrap(), 200);
    }
    let took = started.elapsed();
    let grew = peak.finish().saturating_sub(before);
    println!(
        "48 concurrent PIN PUTs in {took:?}: resident memory grew by {:.1} MiB (bound {} MiB)",
        grew as f64 / rss::MIB as f64,
        BOUND / rss::MIB
    );
    assert!(grew < BOUND, "grew by {grew} bytes");
    assert!(took < std::time::Duration::from_secs(60));
}
