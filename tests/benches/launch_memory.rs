//! Launch time and memory of the app on a million-patient store, beside a bare Tauri
//! window measured in the same run.
//!
//!   cargo bench --bench launch_memory       # 1,000,000 patients, the release app
//!   cargo test --bench launch_memory        # smoke: 5,000 patients, debug build, 2 launches
//!   BENCH_PATIENTS=100000 BENCH_ROUNDS=3 cargo bench --bench launch_memory
//!
//! Launch: from the app process's start (its `starttime` in /proc, so WebDriver's own
//! start-up before it is not counted) to the moment the search box is mounted and
//! takes input, a time the page records itself (`window.__clinicDeskSearchReadyAt`,
//! set by `Patients.svelte`). Nobody signed in sees no search box (the role table),
//! so the page signs the demo clerk in itself, without a person's typing: the launch
//! is process start → first screen (the page's DOMContentLoaded end; the store is
//! opened before the webview runs, in Tauri's setup) plus, from the moment the bench's
//! script starts in the page, the sign-in dialog's staff list, the PIN check and the
//! search screen's mount. The time WebDriver takes between the page's load and the
//! script's start is left out. The first launch runs with the store and the app's
//! binary dropped from the page cache (WebKitGTK's libraries stay cached: they are
//! shared with every GTK app); the rest are warm.
//!
//! Memory: PSS (proportional set size: shared pages split among the processes that
//! map them) summed over the app process and every process under it
//! (WebKitWebProcess, WebKitNetworkProcess, …), from /proc/<pid>/smaps_rollup, once
//! the sum has settled after the search box is ready, and again after one search.
//! Where the difference to the bare window is: PSS by process, and for the app process
//! and the web process the mappings that differ most (smaps: `[anon]` is the heap of
//! JavaScript, DOM and layout, `[heap]` glibc's malloc, files are code and fonts).
//! `BENCH_SMAPS=<dir>` keeps each process's whole smaps there.
//!
//! Baseline: a bare Tauri window, the same Tauri and WebKitGTK with no state, no
//! commands and a blank page (`about:blank`), the same window size, launched the same
//! way through tauri-driver. It is a copy of this bench binary run with `--bare-window`
//! (it is linked against the app package's Tauri already), so the .deb ships no second
//! binary and the app carries no flag that only a benchmark uses. A copy, because the
//! harness itself runs this file: PSS would split the pages of its code between them.
//!
//! Between the two, the same bare window showing the app's screen as a static page:
//! the first launch's DOM after its search, with the UI's style sheets and no script.
//! It tells what drawing that screen costs (fonts, style, layout, WebKit's code for
//! them) apart from what the app adds (its JavaScript, IPC, store and binary).
//!
//! Targets: launch under 1 s; PSS at most 1.2× the bare window's. The bench prints
//! whether they hold; it fails only when its own measurement does not work.

#[path = "../support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow, bail, ensure};
use clinic_desk_core::{DEMO_PIN, DEMO_SEED};
use clinic_domain::{ClinicZone, demo};
use serde_json::{Value, json};

const BARE_FLAG: &str = "--bare-window";
const BLANK: &str = "about:blank";
/// The demo clinic's front-desk clerk.
const CLERK: &str = "C001";
const LAUNCH_TARGET_MS: f64 = 1000.0;
const MEMORY_TARGET_RATIO: f64 = 1.2;

fn main() -> Result<()> {
    let mut args = std::env::args().skip_while(|a| a != BARE_FLAG);
    if args.next().is_some() {
        return bare_window(args.next().as_deref().unwrap_or(BLANK));
    }
    let bench_mode = support::bench::bench_mode();
    let count: u64 = std::env::var("BENCH_PATIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench_mode { 1_000_000 } else { 5_000 });
    let rounds = support::bench::rounds(5, 2);
    support::bench::print_compositing();

    let dir = tempfile::tempdir()?;
    let database = dir.path().join(clinic_desk::DATABASE_FILE);
    let driver = support::Driver::start()?;
    let start = Instant::now();
    support::app::patient_directory(&driver, &database, count)?;
    println!(
        "directory of {count} patients built in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let today = ClinicZone::default().today();
    let query = demo::patient(DEMO_SEED, count / 2 + 1, today).name;

    let app = std::fs::canonicalize(support::APP)?;
    // The bare window runs from a copy of this binary. Run from the file itself, its
    // code pages would be the same page-cache pages this harness process maps, and PSS
    // would split them between the two: a bare window that counts only part of its
    // own binary (about 2.5 MiB less than when it runs alone, as an app does).
    let bench = dir.path().join("bare-tauri-window");
    std::fs::copy(std::env::current_exe()?, &bench)?;
    let mut launches = Vec::new();
    let mut bare = Vec::new();
    for round in 0..rounds {
        if round == 0 {
            // A cold first launch, as far as the app's own files go.
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.push(app.clone());
            for f in &files {
                drop_from_page_cache(f)?;
            }
        }
        launches.push(launch_app(&driver, &app, dir.path(), &query)?);
        bare.push(launch_bare(&driver, &bench, BLANK)?);
    }
    // What showing the app's screen costs by itself: the first launch's screen after its
    // search, saved as a static page (the same DOM and style sheets, no script), in the
    // bare window. Between about:blank and the app: the fonts, style and layout of a
    // Chinese screen, without the app's JavaScript, IPC and store.
    let screen = static_screen(&launches[0].screen, dir.path())?;
    let mut on_screen = Vec::new();
    for _ in 0..rounds {
        on_screen.push(launch_bare(&driver, &bench, &screen)?);
    }

    println!(
        "{rounds} launches of the app (the first cold) on {count} patients, each beside a bare Tauri window:"
    );
    for (i, l) in launches.iter().enumerate() {
        println!(
            "  #{i}: launch {:6.0} ms = first screen {:5.0} ms (store open at {:5.0} ms) + staff list {:4.0} ms + PIN to search box {:4.0} ms; \
             PSS {:6.1} MiB ready, {:6.1} MiB after a search ({} processes); bare window {:6.1} MiB, blank page at {:5.0} ms",
            l.launch_ms(),
            l.shown_ms,
            l.store_open_ms.unwrap_or(f64::NAN),
            l.listed_ms,
            l.signed_in_ms,
            mib(l.pss_ready),
            mib(l.pss_searched),
            l.processes.len(),
            mib(bare[i].pss),
            bare[i].shown_ms,
        );
    }
    println!(
        "  PSS by process, first launch (after its search): app {}; bare window {}",
        launches[0].processes.join(", "),
        bare[0].processes.join(", ")
    );
    for (label, app, bare) in [
        (
            "app process",
            &launches[0].mappings.main,
            &bare[0].mappings.main,
        ),
        (
            "web process",
            &launches[0].mappings.web,
            &bare[0].mappings.web,
        ),
    ] {
        println!(
            "  {label}, app − bare window by mapping (MiB): {}",
            mapping_diff(app, bare, 8)
        );
    }
    let mut launch_ms: Vec<f64> = launches.iter().map(Launch::launch_ms).collect();
    let mut warm: Vec<f64> = launch_ms[1..].to_vec();
    let cold = launch_ms[0];
    let max = launch_ms.iter().copied().fold(f64::MIN, f64::max);
    let (median, _) =
        support::bench::summary("launch to search box accepting input", &mut launch_ms);
    if !warm.is_empty() {
        support::bench::summary("  warm launches only", &mut warm);
    }
    let med = |v: Vec<u64>| {
        let mut v = v;
        v.sort_unstable();
        v[v.len() / 2]
    };
    let pss_app = med(launches.iter().map(|l| l.pss_ready).collect());
    let pss_searched = med(launches.iter().map(|l| l.pss_searched).collect());
    let pss_bare = med(bare.iter().map(|b| b.pss).collect());
    let ratio = pss_app as f64 / pss_bare as f64;
    let ratio_searched = pss_searched as f64 / pss_bare as f64;
    println!(
        "PSS, median of {rounds}: app {:.1} MiB with the search box ready ({ratio:.2}× the bare window), {:.1} MiB after one search \
         ({ratio_searched:.2}×); bare Tauri window {:.1} MiB",
        mib(pss_app),
        mib(pss_searched),
        mib(pss_bare),
    );
    let pss_screen = med(on_screen.iter().map(|b| b.pss).collect());
    println!(
        "PSS, median of {rounds}: the app's screen as a static page in the bare window {:.1} MiB ({:.2}× the bare window on {BLANK}); \
         the app {:.2}× that page",
        mib(pss_screen),
        pss_screen as f64 / pss_bare as f64,
        pss_searched as f64 / pss_screen as f64,
    );
    println!(
        "  web process, static screen − bare window by mapping (MiB): {}",
        mapping_diff(&on_screen[0].mappings.web, &bare[0].mappings.web, 8)
    );
    let verdict = |ok: bool| if ok { "holds" } else { "MISSED" };
    println!(
        "target launch < {LAUNCH_TARGET_MS:.0} ms: {} (cold {cold:.0} ms, median {median:.0} ms, max {max:.0} ms)",
        verdict(max < LAUNCH_TARGET_MS)
    );
    println!(
        "target PSS ≤ {MEMORY_TARGET_RATIO}× the bare window: {} ({ratio:.2}× ready, {ratio_searched:.2}× after a search)",
        verdict(ratio_searched.max(ratio) <= MEMORY_TARGET_RATIO)
    );
    Ok(())
}

/// The baseline window: Tauri's builder with the app's own config (so the same
/// Tauri, WebKitGTK and window size) but no state, no commands and a blank page
/// (or the page given, for the app's screen drawn without its script).
fn bare_window(page: &str) -> Result<()> {
    let page: tauri::Url = page.parse()?;
    let mut context = tauri::generate_context!();
    let size = context
        .config()
        .app
        .windows
        .first()
        .map_or((1280.0, 820.0), |w| (w.width, w.height));
    // No window from the config: it would load the app's UI.
    context.config_mut().app.windows.clear();
    tauri::Builder::default()
        .setup(move |app| {
            tauri::WebviewWindowBuilder::new(
                app,
                "main",
                tauri::WebviewUrl::External(page.clone()),
            )
            .title("bare")
            .inner_size(size.0, size.1)
            .build()?;
            Ok(())
        })
        .run(context)?;
    Ok(())
}

struct Launch {
    /// Process start to the page's first screen (DOMContentLoaded end).
    shown_ms: f64,
    /// Process start to the log's "local store open", when found.
    store_open_ms: Option<f64>,
    /// The bench's script clicking Sign in to the staff list shown.
    listed_ms: f64,
    /// The PIN submitted to the search box mounted.
    signed_in_ms: f64,
    /// The script's start to the search box mounted (staff list, PIN, mount).
    flow_ms: f64,
    pss_ready: u64,
    pss_searched: u64,
    processes: Vec<String>,
    /// PSS by mapping of the main process and of its web process (KiB), for the diff.
    mappings: Mappings,
    /// The page's HTML after the search.
    screen: String,
}

impl Launch {
    fn launch_ms(&self) -> f64 {
        self.shown_ms + self.flow_ms
    }
}

struct Bare {
    shown_ms: f64,
    pss: u64,
    processes: Vec<String>,
    /// PSS by mapping of the main process and of its web process (KiB), for the diff.
    mappings: Mappings,
}

/// Signs the clerk in from inside the page and waits for the search box; every time
/// is the page's clock (ms since the epoch).
const SIGN_IN: &str = r#"const [staffId, pin, done] = arguments;
    const now = () => performance.timeOrigin + performance.now();
    const flow = now();
    const nav = performance.getEntriesByType('navigation')[0];
    const until = (ok) => new Promise((resolve) => {
      if (ok()) { resolve(now()); return; }
      const obs = new MutationObserver(() => { if (ok()) { obs.disconnect(); resolve(now()); } });
      obs.observe(document, { subtree: true, childList: true, attributes: true });
    });
    (async () => {
      document.querySelector('[data-testid=session-signin]').click();
      const listed = await until(() => document.querySelector(`[data-testid=signin-staff] option[value="${staffId}"]`));
      const select = document.querySelector('[data-testid=signin-staff]');
      select.value = staffId;
      select.dispatchEvent(new Event('change', { bubbles: true }));
      const pinInput = document.querySelector('[data-testid=signin-pin]');
      pinInput.value = pin;
      pinInput.dispatchEvent(new Event('input', { bubbles: true }));
      await new Promise((r) => setTimeout(r, 0)); // Svelte applies the state to the DOM
      const submitted = now();
      document.querySelector('[data-testid=signin-submit]').click();
      // The mark is set in the component's onMount, which may run after the last DOM
      // change: polled each frame (the time read is the mark's own, not this wait's).
      await new Promise((resolve) => {
        const check = () => window.__clinicDeskSearchReadyAt !== undefined ? resolve() : requestAnimationFrame(check);
        check();
      });
      done({ shown: performance.timeOrigin + nav.domContentLoadedEventEnd, flow, listed, submitted,
             ready: window.__clinicDeskSearchReadyAt });
    })().catch((e) => done({ error: String(e) }));"#;

/// Types `q` into the search box and waits for its answer to be painted.
const SEARCH: &str = r#"const [q, done] = arguments;
    const input = document.querySelector('[data-testid=patient-search]');
    const list = document.querySelector('#patient-results');
    input.value = q;
    input.dispatchEvent(new Event('input', { bubbles: true }));
    const check = () => list.dataset.resultsFor === q
      ? requestAnimationFrame(() => done(document.querySelectorAll('[data-testid=patient-result]').length))
      : requestAnimationFrame(check);
    check();"#;

fn launch_app(driver: &support::Driver, app: &Path, data: &Path, query: &str) -> Result<Launch> {
    let session = driver.launch_binary(
        app.to_str().unwrap(),
        &["--data-dir", data.to_str().unwrap()],
    )?;
    let pid = find_process(driver.pid(), app)?;
    let started = process_started_at(pid)?;
    let v = session.script_async(SIGN_IN, json!([CLERK, DEMO_PIN]))?;
    let at = |k: &str| {
        v[k].as_f64()
            .ok_or_else(|| anyhow!("sign-in in the page: no {k} in {v}"))
    };
    let (shown, flow, listed, submitted, ready) = (
        at("shown")?,
        at("flow")?,
        at("listed")?,
        at("submitted")?,
        at("ready")?,
    );
    ensure!(
        started <= shown
            && shown <= flow
            && flow <= listed
            && listed <= submitted
            && submitted <= ready,
        "times out of order: process start {started}, {v}"
    );
    let store_open_ms = store_opened_at(data)?.map(|t| t - started);
    let pss_ready = settled_pss(pid)?;
    let found = session.script_async(SEARCH, json!([query]))?;
    ensure!(
        found.as_u64().unwrap_or(0) > 0,
        "the search for {query} found nothing: {found}"
    );
    let pss_searched = settled_pss(pid)?;
    let screen = session.script_async(
        "arguments[arguments.length - 1](document.documentElement.outerHTML);",
        json!([]),
    )?;
    let screen = screen
        .as_str()
        .ok_or_else(|| anyhow!("the page's HTML: {screen}"))?
        .to_owned();
    keep_smaps(pid, "app")?;
    let processes = names(pid);
    let mappings = Mappings::of(pid);
    ensure!(
        processes.iter().any(|p| p.starts_with("WebKitWebProces")),
        "no WebKit web process under the app: {processes:?}"
    );
    drop(session);
    wait_gone(pid)?;
    Ok(Launch {
        shown_ms: shown - started,
        screen,
        store_open_ms,
        listed_ms: listed - flow,
        signed_in_ms: ready - submitted,
        flow_ms: ready - flow,
        pss_ready,
        pss_searched,
        processes,
        mappings,
    })
}

fn launch_bare(driver: &support::Driver, bench: &Path, page: &str) -> Result<Bare> {
    let session = driver.launch_binary(bench.to_str().unwrap(), &[BARE_FLAG, page])?;
    let pid = find_process(driver.pid(), bench)?;
    let started = process_started_at(pid)?;
    let v = session.script_async(
        "const done = arguments[arguments.length - 1];
         const nav = performance.getEntriesByType('navigation')[0];
         done({ shown: performance.timeOrigin + (nav ? nav.domContentLoadedEventEnd : performance.now()),
                url: location.href });",
        json!([]),
    )?;
    ensure!(v["url"] == page, "the bare window shows {v}, not {page}");
    if page != BLANK {
        let font = session.script_async(
            "arguments[arguments.length - 1](getComputedStyle(document.body).fontFamily);",
            json!([]),
        )?;
        ensure!(
            font.as_str()
                .is_some_and(|f| f.contains("Noto Sans CJK SC")),
            "the static screen is drawn without the UI's style sheet (body font {font})"
        );
    }
    let shown = v["shown"]
        .as_f64()
        .ok_or_else(|| anyhow!("bare window: {v}"))?;
    let pss = settled_pss(pid)?;
    keep_smaps(pid, "bare")?;
    let processes = names(pid);
    let mappings = Mappings::of(pid);
    ensure!(
        processes.iter().any(|p| p.starts_with("WebKitWebProces")),
        "no WebKit web process under the bare window: {processes:?}"
    );
    drop(session);
    wait_gone(pid)?;
    Ok(Bare {
        shown_ms: shown - started,
        pss,
        processes,
        mappings,
    })
}

/// PSS (KiB) by what is mapped: a file's name, `[anon]`, `[heap]`, `[stack]` ….
type ByMapping = std::collections::BTreeMap<String, u64>;

struct Mappings {
    main: ByMapping,
    web: ByMapping,
}

impl Mappings {
    fn of(root: u32) -> Self {
        let web = tree(root)
            .into_iter()
            .find(|s| s.name.starts_with("WebKitWebProces"))
            .map_or_else(ByMapping::new, |s| by_mapping(s.pid));
        Mappings {
            main: by_mapping(root),
            web,
        }
    }
}

/// One process's PSS by mapping, from /proc/<pid>/smaps (empty once it is gone).
fn by_mapping(pid: u32) -> ByMapping {
    let mut out = ByMapping::new();
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    // The app's binary and the bench's are one row, for the diff.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let mut name = String::new();
    for line in text.lines() {
        if let Some(kib) = line.strip_prefix("Pss:") {
            let kib: u64 = kib
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0);
            *out.entry(name.clone()).or_default() += kib;
        } else if line.split_whitespace().next().is_some_and(|f| {
            f.contains('-') && f.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        }) {
            // "start-end perms offset dev inode [path]": the path, else anonymous.
            let path = line.split_whitespace().nth(5).unwrap_or("[anon]");
            name = if Path::new(path) == exe {
                "(own binary)".to_owned()
            } else {
                Path::new(path)
                    .file_name()
                    .map_or(path, |n| n.to_str().unwrap_or(path))
                    .to_owned()
            };
        }
    }
    out
}

/// The `top` largest differences `a − b`, "[anon] +9.2, libwebkit2gtk-4.1.so.0 +8.5, …".
fn mapping_diff(a: &ByMapping, b: &ByMapping, top: usize) -> String {
    let mut diffs: Vec<(&String, i64)> = a
        .keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|k| {
            let (x, y) = (
                a.get(k).copied().unwrap_or(0),
                b.get(k).copied().unwrap_or(0),
            );
            (k, x as i64 - y as i64)
        })
        .collect();
    diffs.sort_by_key(|&(_, d)| std::cmp::Reverse(d.abs()));
    let total = a.values().sum::<u64>() as i64 - b.values().sum::<u64>() as i64;
    let parts: Vec<String> = diffs
        .iter()
        .take(top)
        .map(|(k, d)| format!("{k} {:+.1}", *d as f64 / 1024.0))
        .collect();
    format!("{:+.1} in all: {}", total as f64 / 1024.0, parts.join(", "))
}

/// With `BENCH_SMAPS=<dir>`, copies each process's /proc/<pid>/smaps there
/// (`<label>-<name>-<pid>.smaps`), to see by mapping where the memory is.
fn keep_smaps(root: u32, label: &str) -> Result<()> {
    let Some(dir) = std::env::var_os("BENCH_SMAPS") else {
        return Ok(());
    };
    std::fs::create_dir_all(&dir)?;
    for s in tree(root) {
        if let Ok(text) = std::fs::read(format!("/proc/{}/smaps", s.pid)) {
            let file = Path::new(&dir).join(format!("{label}-{}-{}.smaps", s.name, s.pid));
            std::fs::write(file, text)?;
        }
    }
    Ok(())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// One line of /proc/<pid>/stat: the name, the parent and the start (clock ticks after boot).
struct Stat {
    pid: u32,
    ppid: u32,
    /// R, S, D, Z (exited, not yet reaped) …
    state: String,
    name: String,
    start_ticks: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = s.rsplit_once(") ")?;
    let name = head.split_once(" (")?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); ppid is field 4, starttime field 22.
    Some(Stat {
        pid,
        state: (*fields.first()?).to_owned(),
        ppid: fields.get(1)?.parse().ok()?,
        name,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// `root` and every process under it.
fn tree(root: u32) -> Vec<Stat> {
    let all: Vec<Stat> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(stat)
        .collect();
    let mut found: Vec<u32> = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|s| s.ppid == parent).map(|s| s.pid));
        i += 1;
    }
    all.into_iter().filter(|s| found.contains(&s.pid)).collect()
}

/// Each process of `root`'s tree, named with its PSS ("WebKitWebProces 127.5 MiB"):
/// where the memory is, app against bare window.
fn names(root: u32) -> Vec<String> {
    tree(root)
        .into_iter()
        .map(|s| format!("{} {:.1} MiB", s.name, mib(process_pss(s.pid).unwrap_or(0))))
        .collect()
}

/// The process running `exe` that tauri-driver (`driver`) started.
fn find_process(driver: u32, exe: &Path) -> Result<u32> {
    let mut pid = None;
    support::wait_until(Duration::from_secs(10), || {
        pid = tree(driver)
            .into_iter()
            .find(|s| std::fs::read_link(format!("/proc/{}/exe", s.pid)).is_ok_and(|p| p == exe))
            .map(|s| s.pid);
        Ok(pid.is_some())
    })
    .with_context(|| format!("no {} under tauri-driver", exe.display()))?;
    Ok(pid.unwrap())
}

/// When `pid` started, in ms since the epoch (to the kernel's clock tick, 10 ms).
fn process_started_at(pid: u32) -> Result<f64> {
    let ticks_per_s: f64 =
        String::from_utf8(Command::new("getconf").arg("CLK_TCK").output()?.stdout)?
            .trim()
            .parse()?;
    let start = stat(pid)
        .ok_or_else(|| anyhow!("process {pid} is gone"))?
        .start_ticks;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")?
        .split_whitespace()
        .next()
        .ok_or_else(|| anyhow!("empty /proc/uptime"))?
        .parse()?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs_f64();
    Ok((now - (uptime - start as f64 / ticks_per_s)) * 1000.0)
}

/// The last "local store open" in the app's log, in ms since the epoch.
fn store_opened_at(data: &Path) -> Result<Option<f64>> {
    let log = clinic_install::paths::log_dir(data).join(clinic_install::logfile::LOG_FILE);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    Ok(text
        .lines()
        .rfind(|l| l.contains("\"local store open\""))
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str()?).ok())
        .map(|t| t.timestamp_micros() as f64 / 1000.0))
}

/// PSS of `root` and every process under it, in KiB.
fn pss(root: u32) -> u64 {
    tree(root).iter().filter_map(|s| process_pss(s.pid)).sum()
}

/// One process's PSS in KiB (`None` once it is gone).
fn process_pss(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()
}

/// The PSS sum once it has settled: samples 250 ms apart until two in a row differ
/// by under 1% (at least 1 s in; at most 15 s, then the last sample).
fn settled_pss(root: u32) -> Result<u64> {
    let start = Instant::now();
    let mut last = pss(root);
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let now = pss(root);
        ensure!(now > 0, "no PSS readable for process {root}");
        let calm = now.abs_diff(last) * 100 < now;
        if (calm && start.elapsed() >= Duration::from_secs(1))
            || start.elapsed() > Duration::from_secs(15)
        {
            return Ok(now);
        }
        last = now;
    }
}

/// Waits until `pid` has exited (the next launch takes the same instance lock).
fn wait_gone(pid: u32) -> Result<()> {
    support::wait_until(Duration::from_secs(15), || {
        Ok(stat(pid).is_none_or(|s| s.state == "Z"))
    })
    .with_context(|| format!("process {pid} did not exit"))
}

/// Writes `path` out and drops it from the page cache (`dd iflag=nocache count=0`
/// asks the kernel to drop the whole file), so the next read comes from the disk.
fn drop_from_page_cache(path: &Path) -> Result<()> {
    let sync = Command::new("sync").arg(path).status()?;
    let dd = Command::new("dd")
        .arg(format!("if={}", path.display()))
        .args(["iflag=nocache", "count=0", "status=none"])
        .status()?;
    if !sync.success() || !dd.success() {
        bail!("cannot drop {} from the page cache", path.display());
    }
    Ok(())
}

/// Writes a page's DOM (`html`, its `outerHTML`) as a static page beside a copy of
/// the UI's built assets, with every script and module preload taken out, and returns
/// its `file://` URL: the same elements and style sheets, drawn with no JavaScript.
fn static_screen(html: &str, dir: &Path) -> Result<String> {
    let out = dir.join("screen");
    let assets = out.join("assets");
    std::fs::create_dir_all(&assets)?;
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/dist/assets");
    for entry in std::fs::read_dir(&dist).with_context(|| format!("{}", dist.display()))? {
        let entry = entry?;
        std::fs::copy(entry.path(), assets.join(entry.file_name()))?;
    }
    let mut page = String::from("<!doctype html>\n");
    let mut rest = html;
    loop {
        let script = rest.find("<script");
        let preload = rest.find("<link rel=\"modulepreload\"");
        let Some(start) = script.into_iter().chain(preload).min() else {
            break;
        };
        page.push_str(&rest[..start]);
        let close = if Some(start) == script {
            "</script>"
        } else {
            ">"
        };
        let end = rest[start..]
            .find(close)
            .ok_or_else(|| anyhow!("an unclosed element in the page at {start}"))?;
        rest = &rest[start + end + close.len()..];
    }
    page.push_str(rest);
    // `crossorigin` asks for a CORS load, which a file:// page is refused: its style
    // sheet would not apply, and the page would be drawn unstyled.
    let page = page
        .replace("tauri://localhost/", "./")
        .replace(" crossorigin=\"\"", "")
        .replace(" crossorigin", "");
    let file = out.join("index.html");
    std::fs::write(&file, page)?;
    Ok(format!("file://{}", file.display()))
}
