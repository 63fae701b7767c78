//! A second launch on the same data directory must not open the database again:
//! it asks the running instance to show its window and exits. The lock itself is
//! `clinic_install::instance`; this is the "show your window" half, over a Unix
//! socket beside the lock (no D-Bus needed, so it works under Xvfb and in kiosk
//! sessions). On other systems the second launch exits with a message instead.

use std::path::Path;

#[cfg(unix)]
use clinic_install::instance::FOCUS_SOCKET;

/// Tells the running instance to come to the front; `true` if it heard.
#[cfg(unix)]
pub fn ask_running_instance_to_focus(data_dir: &Path) -> bool {
    use std::io::Write as _;
    match std::os::unix::net::UnixStream::connect(data_dir.join(FOCUS_SOCKET)) {
        Ok(mut s) => s.write_all(b"focus\n").is_ok(),
        Err(_) => false,
    }
}

#[cfg(not(unix))]
pub fn ask_running_instance_to_focus(_data_dir: &Path) -> bool {
    false
}

/// Listens for second launches while this instance runs (we hold the lock, so a
/// socket file left by a crashed instance is stale and replaced).
#[cfg(unix)]
pub fn listen_for_second_launches(app: tauri::AppHandle, data_dir: &Path) {
    use std::io::Read as _;
    use tauri::Manager as _;
    let path = data_dir.join(FOCUS_SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener = match std::os::unix::net::UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "a second launch will not be able to bring this window forward");
            return;
        }
    };
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut buf = [0u8; 16];
            let _ = (&stream).take(16).read(&mut buf);
            tracing::info!("second launch: bringing the window forward");
            if let Some(w) = app.get_webview_window("main") {
                let _ = w.unminimize();
                let _ = w.show();
                let _ = w.set_focus();
            }
        }
    });
}

#[cfg(not(unix))]
pub fn listen_for_second_launches(_app: tauri::AppHandle, _data_dir: &Path) {}
