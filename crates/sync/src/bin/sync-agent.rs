//! A headless sync engine over a store file, for the kill-mid-batch test and the
//! drain and pull benchmarks:
//! `sync-agent --db FILE [--key-file KEY] --server URL [--token T] [--until-drained | --until-pulled]`.
//! With `--until-drained` it pushes only, exits 0 once nothing is waiting and prints
//! `drained <delivered> vmhwm_kib <peak RSS>` on stdout. With `--until-pulled` it
//! also pulls (the four feeds, reports last), exits 0 after the first run that
//! ends without an error (every feed read to its end) and prints
//! `pulled <reports in the store> vmhwm_kib <peak RSS>`. An empty store is first
//! loaded from the server's snapshot unless `--no-bootstrap`; with `--progress`
//! each change of the bootstrap's progress is a stdout line
//! `bootstrap <loading|indexing> <done> <total>` (the kill test SIGKILLs on one).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use clinic_store::{Database, StoreKey, outbox};
use clinic_sync::{BootstrapPhase, SyncConfig, SyncEngine};

/// A headless sync engine over a store file: pushes its outbox; pulls too with `--until-pulled`.
#[derive(Parser)]
#[command(name = "sync-agent")]
struct Args {
    /// The store file.
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
    /// A file holding the store's key (64 hex digits): the store is encrypted.
    #[arg(long, value_name = "KEY")]
    key_file: Option<PathBuf>,
    /// The central server, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    server: String,
    /// The clinic's bearer token.
    #[arg(
        long,
        value_name = "T",
        env = "CLINIC_DESK_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// How long one request may take.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    request_timeout_ms: u64,
    /// Batches on the wire at once (the drain bench compares 1 with the default).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=16))]
    batches_in_flight: Option<u16>,
    /// Exit 0 once nothing is waiting, printing `drained <delivered> vmhwm_kib <peak RSS>`.
    #[arg(long, conflicts_with = "until_pulled")]
    until_drained: bool,
    /// Pull as well, and exit 0 after the first run that read every feed to its end,
    /// printing `pulled <reports in the store> vmhwm_kib <peak RSS>`.
    #[arg(long)]
    until_pulled: bool,
    /// Page through the feeds even when the store is empty (the pull bench's
    /// baseline): no snapshot.
    #[arg(long)]
    no_bootstrap: bool,
    /// Print `bootstrap <loading|indexing> <done> <total>` whenever the
    /// bootstrap's progress changes.
    #[arg(long)]
    progress: bool,
    /// Records per feed page asked for (the server caps it).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    feed_page_limit: Option<u32>,
}

fn main() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLINIC_DESK_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let args = Args::parse();
    let (until_drained, until_pulled) = (args.until_drained, args.until_pulled);
    let db = Arc::new(match &args.key_file {
        Some(file) => {
            let key = StoreKey::from_hex(&std::fs::read_to_string(file)?)
                .ok_or_else(|| anyhow::anyhow!("{} holds no key", file.display()))?;
            Database::open_encrypted(&args.db, &key)?
        }
        None => Database::open(&args.db)?,
    });
    let mut config = SyncConfig::new(args.server, args.token);
    config.pull = until_pulled;
    config.live = false;
    config.bootstrap = !args.no_bootstrap;
    let progress = args.progress;
    if let Some(n) = args.feed_page_limit {
        config.feed_page_limit = n;
    }
    config.backoff_base = Duration::from_millis(10);
    config.backoff_cap = Duration::from_millis(200);
    config.request_timeout = Duration::from_millis(args.request_timeout_ms);
    if let Some(n) = args.batches_in_flight {
        config.batches_in_flight = usize::from(n);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let engine = SyncEngine::new(db.clone(), config)?;
        if progress {
            let mut status = engine.subscribe();
            tokio::spawn(async move {
                let mut last = None;
                while status.changed().await.is_ok() {
                    let now = status.borrow_and_update().bootstrap;
                    if let Some(p) = now.filter(|_| now != last) {
                        let phase = match p.phase {
                            BootstrapPhase::Loading => "loading",
                            BootstrapPhase::Indexing => "indexing",
                        };
                        println!("bootstrap {phase} {} {}", p.done, p.total);
                    }
                    last = now;
                }
            });
        }
        loop {
            let result = engine.sync_once().await;
            let counts = db.read(outbox::counts)?;
            if until_pulled && result.is_ok() {
                let held = db.read(|c| {
                    c.query_row("SELECT count(*) FROM pain_reports", [], |r| {
                        r.get::<_, i64>(0)
                    })
                })?;
                println!("pulled {held} vmhwm_kib {}", peak_rss_kib().unwrap_or(0));
                return Ok(());
            }
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

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use clap::error::ErrorKind;
    use rstest::rstest;

    use super::Args;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("sync-agent").chain(args.iter().copied()))
    }

    #[test]
    fn the_kill_test_and_drain_bench_command_lines_are_understood() {
        let a = parse(&[
            "--db",
            "/tmp/desk.sqlite3",
            "--server",
            "http://127.0.0.1:9",
            "--token",
            "cct_x",
            "--until-drained",
            "--feed-page-limit",
            "1000",
            "--request-timeout-ms",
            "200",
            "--batches-in-flight",
            "1",
        ])
        .unwrap();
        assert_eq!(a.db.to_str(), Some("/tmp/desk.sqlite3"));
        assert_eq!(a.server, "http://127.0.0.1:9");
        assert_eq!(a.token.as_deref(), Some("cct_x"));
        assert!(a.until_drained);
        assert_eq!(a.request_timeout_ms, 200);
        assert_eq!(a.batches_in_flight, Some(1));
        assert_eq!(a.feed_page_limit, Some(1000));
        assert!(!a.until_pulled);
        let a = parse(&["--db", "f", "--server", "http://x", "--until-pulled"]).unwrap();
        assert!(a.until_pulled && !a.until_drained);
        assert!(!a.no_bootstrap && !a.progress);
        let a = parse(&[
            "--db",
            "f",
            "--server",
            "http://x",
            "--until-pulled",
            "--no-bootstrap",
            "--progress",
        ])
        .unwrap();
        assert!(a.no_bootstrap && a.progress);
        assert_eq!(a.feed_page_limit, None);
        let a = parse(&["--db", "f", "--server", "http://x"]).unwrap();
        assert!(!a.until_drained);
        assert_eq!(a.request_timeout_ms, 30_000);
        assert_eq!(a.batches_in_flight, None);
    }

    #[rstest]
    #[case(&["--db", "--server", "http://x"], ErrorKind::InvalidValue)]
    #[case(&["--server", "http://x", "--db"], ErrorKind::InvalidValue)]
    #[case(&["--db", "f"], ErrorKind::MissingRequiredArgument)]
    #[case(&["--db", "f", "--server", "http://x", "--frobnicate"], ErrorKind::UnknownArgument)]
    #[case(&["--db", "f", "--server", "http://x", "--request-timeout-ms", "soon"], ErrorKind::ValueValidation)]
    #[case(&["--db", "f", "--server", "http://x", "--batches-in-flight", "0"], ErrorKind::ValueValidation)]
    #[case(&["--db", "f", "--server", "http://x", "--feed-page-limit", "0"], ErrorKind::ValueValidation)]
    #[case(&["--db", "f", "--server", "http://x", "--until-drained", "--until-pulled"], ErrorKind::ArgumentConflict)]
    fn a_bad_command_line_is_refused(#[case] args: &[&str], #[case] kind: ErrorKind) {
        let e = parse(args)
            .err()
            .unwrap_or_else(|| panic!("{args:?} parsed"));
        assert_eq!(e.kind(), kind, "{args:?}: {e}");
    }
}
