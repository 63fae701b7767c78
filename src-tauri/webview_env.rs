//! Settings the webview's processes take from the environment. WebKitGTK starts its
//! web and network processes with the app's environment, and JavaScriptCore reads its
//! options (`JSC_<option>`) from it, so they are set here, before Tauri (or any other
//! thread) starts. A variable already set (by the user, a test) is left as it is.

/// `(variable, value)`, each with why and what it costs.
const SETTINGS: &[(&str, &str)] = &[
    // JavaScriptCore's optimising tiers (DFG, and the FTL above it) compile hot
    // functions again with a profile-guided compiler whose code and data stay in the
    // web process. This UI is DOM-bound: its hot paths are small functions that paint
    // at most a screenful of rows, which the interpreter and the baseline JIT run well
    // inside the 50 ms keystroke-to-paint budget. Off, the web process holds about
    // 5 MiB less (the DFG's compiled code and graphs, its compiler's own code paged
    // in); the cost is slower long-running JavaScript, which this UI does not run. The
    // baseline JIT stays: with no JIT at all (`JSC_useJIT=0`) every script, regexp and
    // selector match runs slower, the first screen's included.
    ("JSC_useDFGJIT", "0"),
];

/// Sets each of [`SETTINGS`] the environment does not have yet; returns those it set.
///
/// Call it before anything starts a thread (see `crate::run`): changing the
/// environment while another thread reads it is undefined behaviour.
pub fn apply() -> Vec<&'static str> {
    let mut set = Vec::new();
    for &(name, value) in SETTINGS {
        if std::env::var_os(name).is_none() {
            // SAFETY: `crate::run` calls this first, before the logger, Tauri, GTK or
            // tokio exist, while the process has its main thread only.
            unsafe { std::env::set_var(name, value) };
            set.push(name);
        }
    }
    set
}
