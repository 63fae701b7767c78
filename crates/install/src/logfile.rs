//! Log files: JSON lines in `<data dir>/logs/clinic-desk.jsonl`, rotated by size
//! (`clinic-desk.1.jsonl` is the previous file, and so on) so the logs of a busy
//! ward never fill the disk. What is logged is the callers' business; the rule
//! that no patient name or token is logged is kept at the call sites, and the
//! support bundle scrubs again anyway.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const LOG_FILE: &str = "clinic-desk.jsonl";
/// 2 MiB a file, the current one and 4 older: at most 10 MiB of logs.
pub const DEFAULT_MAX_BYTES: u64 = 2 * 1024 * 1024;
pub const DEFAULT_KEEP: usize = 4;

pub struct RotatingFile {
    dir: PathBuf,
    file: File,
    written: u64,
    max_bytes: u64,
    keep: usize,
}

fn rotated(dir: &Path, n: usize) -> PathBuf {
    dir.join(format!("clinic-desk.{n}.jsonl"))
}

/// Opens a log file owner-only (0600): a log names devices, staff and servers.
/// A file from before owner-only modes is narrowed too.
fn private(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let file = options.mode(0o600).open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

impl RotatingFile {
    pub fn open(dir: &Path, max_bytes: u64, keep: usize) -> io::Result<Self> {
        crate::paths::create_private_dir(dir)?;
        let path = dir.join(LOG_FILE);
        let file = private(OpenOptions::new().create(true).append(true), &path)?;
        let written = file.metadata()?.len();
        Ok(Self {
            dir: dir.to_owned(),
            file,
            written,
            max_bytes,
            keep,
        })
    }

    fn rotate(&mut self) -> io::Result<()> {
        let _ = std::fs::remove_file(rotated(&self.dir, self.keep));
        for n in (1..self.keep).rev() {
            let from = rotated(&self.dir, n);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.dir, n + 1))?;
            }
        }
        let current = self.dir.join(LOG_FILE);
        if self.keep > 0 {
            std::fs::rename(&current, rotated(&self.dir, 1))?;
        }
        self.file = private(
            OpenOptions::new().create(true).write(true).truncate(true),
            &current,
        )?;
        self.written = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    // tracing's JSON formatter hands over one whole line per call, so a line is
    // never split across two files.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written > 0 && self.written + buf.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(buf)?;
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// The log files in `dir`, oldest first.
pub fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..=64)
        .rev()
        .map(|n| rotated(dir, n))
        .filter(|p| p.exists())
        .collect();
    let current = dir.join(LOG_FILE);
    if current.exists() {
        files.push(current);
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_rotate_at_the_cap_and_the_oldest_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RotatingFile::open(dir.path(), 1_000, 2).unwrap();
        let line = format!("{{\"n\":\"{}\"}}\n", "x".repeat(90)); // 100 bytes
        for _ in 0..45 {
            log.write_all(line.as_bytes()).unwrap();
        }
        let files = log_files(dir.path());
        assert_eq!(files.len(), 3, "current and two older: {files:?}");
        let total: u64 = files.iter().map(|f| f.metadata().unwrap().len()).sum();
        assert!(total <= 3_000, "capped: {total}");
        for f in &files {
            assert!(f.metadata().unwrap().len() <= 1_000);
            assert!(
                std::fs::read_to_string(f)
                    .unwrap()
                    .lines()
                    .all(|l| l == line.trim_end()),
                "whole lines only"
            );
        }
        // Reopening appends to the current file rather than truncating it.
        drop(log);
        let before = std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len();
        let mut log = RotatingFile::open(dir.path(), 1_000, 2).unwrap();
        log.write_all(b"{}\n").unwrap();
        assert_eq!(
            std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len(),
            before + 3
        );
    }
}
