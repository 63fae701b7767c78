//! One app per data directory: the first instance holds an OS file lock on
//! `<data dir>/clinic-desk.lock` for as long as it runs; a second finds it held
//! and must not open the database. The OS drops the lock when the process dies,
//! however it dies, so a crash never leaves the device locked out.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "clinic-desk.lock";
/// Where the running instance listens for "show your window" (Unix socket).
pub const FOCUS_SOCKET: &str = "clinic-desk.sock";

#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    pub path: PathBuf,
}

/// `Ok(None)` when another process holds the lock.
pub fn acquire(data_dir: &Path) -> std::io::Result<Option<InstanceLock>> {
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(InstanceLock { _file: file, path })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = super::acquire(dir.path())
            .unwrap()
            .expect("first instance gets the lock");
        assert!(
            super::acquire(dir.path()).unwrap().is_none(),
            "second instance is refused"
        );
        drop(first);
        assert!(
            super::acquire(dir.path()).unwrap().is_some(),
            "free again once the first is gone"
        );
    }
}
