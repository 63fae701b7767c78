use chrono::NaiveDate;
use clinic_domain::lookup::{self, KeyKind, MatchKind};
use clinic_domain::{Patient, PatientId, Sex};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::column::Text;
use crate::{StoreError, settings};

const COLUMNS: &str = "id, name, sex, birth_date, is_insured, phone";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Patient> {
    Ok(Patient {
        id: row.get::<_, Text<PatientId>>("id")?.0,
        name: row.get("name")?,
        sex: row.get::<_, Text<Sex>>("sex")?.0,
        birth_date: row.get::<_, Text<NaiveDate>>("birth_date")?.0,
        is_insured: row.get("is_insured")?,
        phone: row.get("phone")?,
    })
}

/// Writes `p` and its lookup keys; call inside the caller's transaction so the
/// patient is findable exactly when its row is committed.
pub fn upsert(conn: &Connection, p: &Patient) -> Result<(), StoreError> {
    let old = get(conn, &p.id)?;
    upsert_row(conn, p)?;
    if let Some(old) = old {
        remove_keys(conn, &old)?;
    }
    add_keys(conn, p)
}

/// Writes `p`'s row only, without its lookup keys: the bootstrap's bulk load,
/// which builds every patient's keys after the load ([`add_keys_sorted`]) and
/// answers lookups by ID from this table meanwhile (see [`search`]).
pub(crate) fn upsert_row(conn: &Connection, p: &Patient) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO patients (id, name, sex, birth_date, is_insured, phone) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, sex = excluded.sex,
             birth_date = excluded.birth_date, is_insured = excluded.is_insured, phone = excluded.phone,
             deleted_at = NULL",
    )?
    .execute(params![
        p.id.as_str(),
        p.name,
        Text(p.sex),
        Text(p.birth_date),
        p.is_insured,
        p.phone
    ])?;
    Ok(())
}

/// Up to `limit` live patients with IDs after `after`, in ID order.
pub(crate) fn live_after(
    conn: &Connection,
    after: &str,
    limit: usize,
) -> Result<Vec<Patient>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM patients WHERE id > ?1 AND deleted_at IS NULL ORDER BY id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![after, limit as i64], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The lookup keys of `batch` (patients without keys yet), inserted in key
/// order: the index's pages are then written in order, not at random.
pub(crate) fn add_keys_sorted(conn: &Connection, batch: &[Patient]) -> Result<(), StoreError> {
    let mut keys: Vec<(KeyKind, String, &str)> = batch
        .iter()
        .flat_map(|p| {
            lookup::patient_keys(p)
                .into_iter()
                .map(move |(kind, key)| (kind, key, p.id.as_str()))
        })
        .collect();
    keys.sort_unstable();
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO patient_search_keys (kind, key, patient_id) VALUES (?1, ?2, ?3)",
    )?;
    for (kind, key, id) in keys {
        insert.execute(params![kind as i64, key, id])?;
    }
    Ok(())
}

/// Removes `id` from lookup and from the directory. A patient that reports (which
/// are never deleted) still refer to keeps a row, hidden and without contact data.
/// Returns whether there was such a patient.
pub fn delete(conn: &Connection, id: &PatientId) -> Result<bool, StoreError> {
    let Some(old) = get(conn, id)? else {
        return Ok(false);
    };
    remove_keys(conn, &old)?;
    let has_reports: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM pain_reports WHERE patient_id = ?1)")?
        .query_row([id.as_str()], |r| r.get(0))?;
    if has_reports {
        conn.prepare_cached(
            "UPDATE patients SET deleted_at = unixepoch(), phone = NULL WHERE id = ?1",
        )?
        .execute([id.as_str()])?;
    } else {
        conn.prepare_cached("DELETE FROM patients WHERE id = ?1")?
            .execute([id.as_str()])?;
    }
    Ok(true)
}

fn add_keys(conn: &Connection, p: &Patient) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO patient_search_keys (kind, key, patient_id) VALUES (?1, ?2, ?3)",
    )?;
    for (kind, key) in lookup::patient_keys(p) {
        insert.execute(params![kind as i64, key, p.id.as_str()])?;
    }
    Ok(())
}

// The keys are a pure function of the stored row, so recomputing them finds exactly
// the rows to delete; this spares a second index on patient_id over millions of keys.
fn remove_keys(conn: &Connection, p: &Patient) -> Result<(), StoreError> {
    let mut delete = conn.prepare_cached(
        "DELETE FROM patient_search_keys WHERE kind = ?1 AND key = ?2 AND patient_id = ?3",
    )?;
    for (kind, key) in lookup::patient_keys(p) {
        delete.execute(params![kind as i64, key, p.id.as_str()])?;
    }
    Ok(())
}

/// Version of the key scheme in `clinic_domain::lookup`; bump it when the keys
/// change and every store rebuilds its index once, on open.
pub const SEARCH_INDEX_VERSION: u32 = 2;
pub(crate) const SEARCH_INDEX_SETTING: &str = "search_index_version";

/// Rebuilds the lookup keys of every patient, in one transaction, when they were
/// made by another key scheme (or not at all, right after the migration that
/// added them). Returns whether it rebuilt.
pub fn ensure_search_index(conn: &mut Connection) -> Result<bool, StoreError> {
    let current = settings::get(conn, SEARCH_INDEX_SETTING)?;
    if current.as_deref() == Some(&SEARCH_INDEX_VERSION.to_string()) {
        return Ok(false);
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute("DELETE FROM patient_search_keys", [])?;
    {
        let mut stmt = tx.prepare(&format!(
            "SELECT {COLUMNS} FROM patients WHERE deleted_at IS NULL"
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            add_keys(&tx, &from_row(row)?)?;
        }
    }
    settings::set(&tx, SEARCH_INDEX_SETTING, &SEARCH_INDEX_VERSION.to_string())?;
    tx.commit()?;
    Ok(true)
}

pub fn get(conn: &Connection, id: &PatientId) -> Result<Option<Patient>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM patients WHERE id = ?1 AND deleted_at IS NULL"
        ))?
        .query_row([id.as_str()], from_row)
        .optional()?)
}

pub fn count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM patients WHERE deleted_at IS NULL",
        [],
        |r| r.get(0),
    )?)
}

/// A patient found by a search, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub patient: Patient,
    pub matched: MatchKind,
}

/// The smallest string greater than every string starting with `prefix`.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// Up to `limit` patients for `query`, best kind of match first (see
/// `clinic_domain::lookup::plan`); each kind is one range scan of the key index,
/// so the cost does not grow with the directory. `query` is only ever a bound value.
pub fn search(conn: &Connection, query: &str, limit: usize) -> Result<Vec<Found>, StoreError> {
    let probes = lookup::plan(query).map_err(StoreError::InvalidQuery)?;
    if crate::bootstrap::under_way(conn)? {
        return search_ids(conn, &probes, limit);
    }
    let mut exact = conn.prepare_cached(
        "SELECT patient_id FROM patient_search_keys WHERE kind = ?1 AND key = ?2 ORDER BY patient_id LIMIT ?3",
    )?;
    let mut range = conn.prepare_cached(
        "SELECT patient_id FROM patient_search_keys WHERE kind = ?1 AND key >= ?2 AND key < ?3
         ORDER BY key, patient_id LIMIT ?4",
    )?;
    let mut seen = std::collections::HashSet::new();
    let mut ids: Vec<(String, MatchKind)> = Vec::new();
    for probe in probes {
        if ids.len() >= limit {
            break;
        }
        // Enough rows to fill the page even if every earlier match comes again.
        let want = limit as i64;
        let rows: Vec<String> = if probe.prefix {
            range
                .query_map(
                    params![probe.kind as i64, probe.key, prefix_end(&probe.key), want],
                    |r| r.get(0),
                )?
                .collect::<Result<_, _>>()?
        } else {
            exact
                .query_map(params![probe.kind as i64, probe.key, want], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        for id in rows {
            if ids.len() < limit && seen.insert(id.clone()) {
                ids.push((id, probe.matched));
            }
        }
    }
    let mut by_id = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM patients WHERE id = ?1 AND deleted_at IS NULL"
    ))?;
    let mut found = Vec::with_capacity(ids.len());
    for (id, matched) in ids {
        if let Some(patient) = by_id.query_row([&id], from_row).optional()? {
            found.push(Found { patient, matched });
        }
    }
    Ok(found)
}

/// [`search`] while a bootstrap is under way: the search keys are not all built
/// yet, so only the ID probes are answered, from the patients table itself (its
/// primary key), which has every patient as soon as the row is in.
fn search_ids(
    conn: &Connection,
    probes: &[lookup::Probe],
    limit: usize,
) -> Result<Vec<Found>, StoreError> {
    let mut exact = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM patients WHERE id = ?1 AND deleted_at IS NULL"
    ))?;
    let mut range = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM patients WHERE id >= ?1 AND id < ?2 AND deleted_at IS NULL
         ORDER BY id LIMIT ?3"
    ))?;
    let mut found: Vec<Found> = Vec::new();
    for probe in probes.iter().filter(|p| p.kind == KeyKind::Id) {
        let rows: Vec<Patient> = if probe.prefix {
            range
                .query_map(
                    params![probe.key, prefix_end(&probe.key), limit as i64],
                    from_row,
                )?
                .collect::<Result<_, _>>()?
        } else {
            exact
                .query_map([&probe.key], from_row)?
                .collect::<Result<_, _>>()?
        };
        for patient in rows {
            if found.len() < limit && !found.iter().any(|f| f.patient.id == patient.id) {
                found.push(Found {
                    patient,
                    matched: probe.matched,
                });
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use rstest::rstest;

    use super::*;
    use crate::Database;

    fn patient(id: &str, name: &str) -> Patient {
        Patient {
            id: PatientId::parse(id).unwrap(),
            name: name.into(),
            sex: Sex::Female,
            birth_date: NaiveDate::from_ymd_opt(1980, 1, 2).unwrap(),
            is_insured: true,
            phone: Some("13800001234".into()),
        }
    }

    fn store() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("s.sqlite3")).unwrap();
        db.write(|c| {
            for (id, name) in [
                ("P1001", "张三"),
                ("P1002", "张三丰"),
                ("P2001", "李张"),
                ("X100_1", "王%五"),
                ("P10", "赵六"),
            ] {
                upsert(c, &patient(id, name))?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
        (dir, db)
    }

    #[rstest]
    #[case("P1001", &["P1001"])]
    #[case("p100", &["P1001", "P1002"])]
    #[case("P10", &["P10", "P1001", "P1002"])]
    #[case("张三", &["P1001", "P1002"])]
    #[case("张", &["P1001", "P1002", "P2001"])]
    #[case("%", &[])]
    #[case("_", &[])]
    #[case("X100_", &["X100_1"])]
    #[case("' OR 1=1 --", &[])]
    #[case("王%五", &["X100_1"])]
    #[case("%五", &["X100_1"])]
    #[case("nobody", &[])]
    #[case("zs", &["P1001", "P1002"])]
    #[case("zhangsanf", &["P1002"])]
    #[case("1234", &["P10", "P1001", "P1002", "P2001", "X100_1"])]
    fn search_ranks_ids_then_names_and_takes_queries_literally(
        #[case] q: &str,
        #[case] ids: &[&str],
    ) {
        let (_dir, db) = store();
        let found = db.read(|c| search(c, q, 10)).unwrap();
        let found: Vec<_> = found.iter().map(|f| f.patient.id.as_str()).collect();
        assert_eq!(found, ids);
    }

    #[test]
    fn a_store_indexed_by_an_older_scheme_rebuilds_its_keys_once() {
        let (_dir, db) = store();
        // What the previous scheme indexed: every reading, so 张三 (zhang/chang) was
        // also `cs`. The rebuild must leave exactly the current scheme's keys.
        db.write(|c| {
            c.execute(
                "INSERT INTO patient_search_keys (kind, key, patient_id) VALUES (4, 'cs', 'P1001')",
                [],
            )?;
            settings::set(c, SEARCH_INDEX_SETTING, "1")
        })
        .unwrap();
        let ids = |q: &str| {
            db.read(|c| search(c, q, 10))
                .unwrap()
                .into_iter()
                .map(|f| f.patient.id.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("cs"), ["P1001"]);
        assert!(db.write(ensure_search_index).unwrap());
        assert!(ids("cs").is_empty());
        assert_eq!(ids("zs"), ["P1001", "P1002"]);
        assert!(!db.write(ensure_search_index).unwrap(), "once");
    }

    #[test]
    fn upsert_replaces_and_get_round_trips() {
        let (_dir, db) = store();
        let mut p = patient("P1001", "张三");
        p.phone = None;
        p.is_insured = false;
        db.write(|c| upsert(c, &p)).unwrap();
        assert_eq!(db.read(|c| get(c, &p.id)).unwrap(), Some(p.clone()));
        // The old phone no longer finds the patient; the new name does.
        p.name = "李四".into();
        db.write(|c| upsert(c, &p)).unwrap();
        let ids = |q: &str| {
            db.read(|c| search(c, q, 10))
                .unwrap()
                .into_iter()
                .map(|f| f.patient.id.to_string())
                .collect::<Vec<_>>()
        };
        assert!(!ids("zs").contains(&"P1001".to_owned()));
        assert_eq!(ids("ls"), ["P1001"]);
        assert!(db.write(|c| delete(c, &p.id)).unwrap());
        assert!(ids("ls").is_empty());
        assert_eq!(db.read(count).unwrap(), 4);
        assert_eq!(
            db.read(|c| get(c, &PatientId::parse("NOPE").unwrap()))
                .unwrap(),
            None
        );
    }
}
