//! What the webview benches share: smoke or full mode, and the summary line.

/// `cargo bench` passes `--bench`; `cargo test --benches` does not, and then a bench
/// runs a few samples only, as a smoke test.
pub fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Samples to take: `full` under `cargo bench`, `smoke` under `cargo test --benches`,
/// or `BENCH_ROUNDS` when set.
pub fn rounds(full: usize, smoke: usize) -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench_mode() { full } else { smoke })
}

/// Prints the median and p95 (nearest rank) of `times`, in ms; returns them.
pub fn summary(label: &str, times: &mut [f64]) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    let (median, p95) = (pct(0.5), pct(0.95));
    println!(
        "{label:<60} median {median:>6.1} ms, p95 {p95:>6.1} ms, max {:>6.1} ms ({} runs)",
        times[times.len() - 1],
        times.len()
    );
    (median, p95)
}

/// Whether WebKitGTK composites with GL (under Xvfb: llvmpipe on the CPU) or paints
/// in software, as `scripts/test` runs it; benches print it with their figures.
pub fn print_compositing() {
    let compositing = std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE")
        .is_none_or(|v| v.is_empty() || v == "0");
    println!(
        "WebKitGTK compositing: {}",
        if compositing {
            "on (GL; under Xvfb that is llvmpipe on the CPU)"
        } else {
            "off (software painting, as scripts/test runs it)"
        }
    );
}
