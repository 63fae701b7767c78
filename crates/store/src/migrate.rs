//! Schema migrations: the numbered files in the repository's `migrations/` folder,
//! embedded at compile time and applied by `rusqlite_migration` in one transaction,
//! with the version kept in `PRAGMA user_version`.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use include_dir::{Dir, include_dir};
use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{M, Migrations};

use crate::StoreError;
use crate::encryption::{self, StoreKey};

/// Migration backups kept beside the store: the newest this many; older ones are
/// removed after each backup (they hold patient data, and a rollback goes one step).
pub const BACKUPS_KEPT: usize = 2;

static MIGRATION_DIR: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations");

static SQL: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut files: Vec<_> = MIGRATION_DIR
        .files()
        .filter(|f| f.path().extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort_by_key(|f| f.path().to_owned());
    files
        .iter()
        .map(|f| f.contents_utf8().expect("migrations are UTF-8"))
        .collect()
});

/// The embedded migrations in order; index `i` brings the schema to version `i + 1`.
pub fn migrations_sql() -> &'static [&'static str] {
    &SQL
}

/// The schema version this build writes.
pub static SCHEMA_VERSION: LazyLock<u32> = LazyLock::new(|| SQL.len() as u32);

/// Reads `user_version` without writing anything, not even a WAL file's header.
pub fn stored_version(path: &Path, key: Option<&StoreKey>) -> Result<Option<u32>, StoreError> {
    if encryption::file_state(path)? == encryption::FileState::Missing {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    if let Some(key) = key {
        key.apply(&conn)?;
    }
    encryption::check_readable(&conn, path, key)?;
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    Ok(Some(version))
}

/// Refuses a file from a newer build before anything touches it.
pub fn refuse_newer(
    path: &Path,
    sql: &[&str],
    key: Option<&StoreKey>,
) -> Result<Option<u32>, StoreError> {
    let found = stored_version(path, key)?;
    let supported = sql.len() as u32;
    match found {
        Some(found) if found > supported => Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            supported,
        }),
        other => Ok(other),
    }
}

/// Brings `conn` (opened on `path`) to the latest of `sql`. An existing database is
/// copied first with `VACUUM INTO` to `<file>.v<old>.bak`, a consistent snapshot even
/// while WAL holds recent commits, so a failed upgrade can be undone by hand. On an
/// encrypted connection SQLCipher writes the copy encrypted with the same key; the
/// copy is owner-only, and only the [`BACKUPS_KEPT`] newest backups stay.
pub fn migrate(
    conn: &mut Connection,
    path: &Path,
    sql: &[&'static str],
) -> Result<Option<PathBuf>, StoreError> {
    let current: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let target = sql.len() as u32;
    if current > target {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: current,
            supported: target,
        });
    }
    if current == target {
        return Ok(None);
    }
    let backup = if current > 0 {
        let backup = backup_path(path, current);
        encryption::remove_database_files(&backup)?;
        // Empty and 0600 before SQLite writes into it (VACUUM INTO takes an empty file).
        encryption::create_private(&backup)?;
        conn.execute("VACUUM INTO ?1", [backup.to_string_lossy()])
            .map_err(|source| StoreError::Backup {
                path: backup.clone(),
                source,
            })?;
        prune_backups(path)?;
        tracing::info!(from = current, to = target, backup = %backup.display(), "migrating local store");
        Some(backup)
    } else {
        None
    };
    let migrations = Migrations::new(sql.iter().map(|s| M::up(s)).collect());
    migrations.to_latest(conn)?;
    Ok(backup)
}

pub fn backup_path(path: &Path, version: u32) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".v{version}.bak"));
    path.with_file_name(name)
}

/// The migration backups beside `path` (`<file>.v<N>.bak`), oldest first.
pub fn backups(path: &Path) -> Result<Vec<(u32, PathBuf)>, StoreError> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_owned(),
        None => PathBuf::from("."),
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(StoreError::Io { path: dir, source }),
    };
    let prefix = format!("{name}.v");
    let mut found: Vec<(u32, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name();
            let version = file
                .to_str()?
                .strip_prefix(&prefix)?
                .strip_suffix(".bak")?
                .parse()
                .ok()?;
            Some((version, e.path()))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Removes all but the [`BACKUPS_KEPT`] newest backups of `path`.
pub fn prune_backups(path: &Path) -> Result<(), StoreError> {
    let all = backups(path)?;
    let old = all.len().saturating_sub(BACKUPS_KEPT);
    for (version, backup) in &all[..old] {
        encryption::remove_database_files(backup)?;
        tracing::info!(version, backup = %backup.display(), "removed an old migration backup");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_migrations_are_valid_and_ordered() {
        assert!(!migrations_sql().is_empty());
        let migrations = Migrations::new(migrations_sql().iter().map(|s| M::up(s)).collect());
        migrations
            .validate()
            .expect("every migration applies cleanly from empty");
    }

    /// A device upgraded with reports already saved: each gets its trail's first
    /// row (marked backfilled), and from then on the reports cannot be changed.
    #[test]
    fn schema_4_backfills_the_trail_of_existing_reports_and_guards_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite3");
        let mut conn = crate::open_connection(&path).unwrap();
        migrate(&mut conn, &path, &migrations_sql()[..3]).unwrap();
        conn.execute_batch(
            "INSERT INTO patients (id, name, sex, birth_date, is_insured) VALUES ('P1', '张三', 'male', '1970-01-01', 1);
             INSERT INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at, recorded_by, device_id)
                 VALUES ('r1', 'P1', 'nrs', 6, 100, 100, 'N1', 'dev');
             INSERT INTO pain_reports (id, patient_id, scale, score, assessed_at, recorded_at, recorded_by, device_id, supersedes, correction_reason)
                 VALUES ('r2', 'P1', 'nrs', 5, 100, 200, 'N1', 'dev', 'r1', 'typo');",
        )
        .unwrap();
        let backup = migrate(&mut conn, &path, migrations_sql()).unwrap();
        assert!(
            backup.is_some_and(|b| b.exists()),
            "a backup before the upgrade"
        );
        let trail: Vec<(String, String, String)> = conn
            .prepare("SELECT report_id, action, detail FROM audit_log ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            trail,
            [
                (
                    "r1".to_owned(),
                    "created".to_owned(),
                    r#"{"backfilled":true}"#.to_owned()
                ),
                (
                    "r2".to_owned(),
                    "corrected".to_owned(),
                    r#"{"backfilled":true}"#.to_owned()
                ),
            ]
        );
        let err = conn
            .execute("UPDATE pain_reports SET score = 0 WHERE id = 'r1'", [])
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }
}
