//! A headless sync engine over a store file, for the kill-mid-batch test and the
//! drain benchmark: `sync-agent --db FILE --server URL [--token T] [--until-drained]`.
//! With `--until-drained` it exits 0 once nothing is waiting and prints
//! `drained <delivered> vmhwm_kib <peak RSS>` on stdout.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clinic_store::{Database, outbox};
use clinic_sync::{SyncConfig, SyncEngine};

fn main() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLINIC_DESK_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let mut args = std::env::args().skip(1);
    let (mut db, mut server, mut token, mut until_drained) = (None, None, None, false);
    let mut timeout_ms = 30_000u64;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--db" => db = args.next(),
            "--server" => server = args.next(),
            "--token" => token = args.next(),
            "--request-timeout-ms" => timeout_ms = args.next().context("value")?.parse()?,
            "--until-drained" => until_drained = true,
            other => bail!("unknown argument {other}"),
        }
    }
    let db = Arc::new(Database::open(db.context("--db is required")?.as_ref())?);
    let mut config = SyncConfig::new(
        server.context("--server is required")?,
        token.or_else(|| std::env::var("CLINIC_DESK_TOKEN").ok()),
    );
    config.pull = false;
    config.backoff_base = Duration::from_millis(10);
    config.backoff_cap = Duration::from_millis(200);
    config.request_timeout = Duration::from_millis(timeout_ms);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let engine = SyncEngine::new(db.clone(), config)?;
        loop {
            let result = engine.sync_once().await;
            let counts = db.read(outbox::counts)?;
            if until_drained && counts.waiting() == 0 {
                println!(
                    "drained {} vmhwm_kib {}",
                    counts.delivered,
                    peak_rss_kib().unwrap_or(0)
                );
                return Ok(());
            }
            if let Err(e) = result {
                eprintln!("sync failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    })
}

/// VmHWM: the peak resident set size of this process, in KiB (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
