use clinic_domain::{Patient, PatientId, Sex, patient::parse_date};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::StoreError;

const COLUMNS: &str = "id, name, sex, birth_date, is_insured, phone";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Result<Patient, StoreError>> {
    let id: String = row.get(0)?;
    let sex: String = row.get(2)?;
    let birth: String = row.get(3)?;
    let name: String = row.get(1)?;
    let is_insured: bool = row.get(4)?;
    let phone: Option<String> = row.get(5)?;
    Ok((|| {
        Ok(Patient {
            id: PatientId::parse(&id).map_err(|e| StoreError::CorruptRow(format!("patient id: {e}")))?,
            name,
            sex: Sex::parse(&sex).map_err(|e| StoreError::CorruptRow(e.to_string()))?,
            birth_date: parse_date(&birth).map_err(|e| StoreError::CorruptRow(e.to_string()))?,
            is_insured,
            phone,
        })
    })())
}

pub fn upsert(conn: &Connection, p: &Patient) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO patients (id, name, sex, birth_date, is_insured, phone) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, sex = excluded.sex,
             birth_date = excluded.birth_date, is_insured = excluded.is_insured, phone = excluded.phone",
    )?
    .execute(params![
        p.id.as_str(),
        p.name,
        p.sex.as_str(),
        p.birth_date.format("%Y-%m-%d").to_string(),
        p.is_insured,
        p.phone
    ])?;
    Ok(())
}

pub fn get(conn: &Connection, id: &PatientId) -> Result<Option<Patient>, StoreError> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM patients WHERE id = ?1"))?
        .query_row([id.as_str()], from_row)
        .optional()?
        .transpose()
}

pub fn count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT count(*) FROM patients", [], |r| r.get(0))?)
}

/// Escapes `LIKE` wildcards so the query is matched literally.
fn like_literal(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Patients whose ID starts with `query` (any case) or whose name contains it,
/// best matches first: exact ID, ID prefix, exact name, name prefix, name substring.
/// `query` is data, bound as a parameter and matched literally.
pub fn search(conn: &Connection, query: &str, limit: usize) -> Result<Vec<Patient>, StoreError> {
    let prefix = format!("{}%", like_literal(query));
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM (
             SELECT *, CASE
                 WHEN id = ?1 COLLATE NOCASE THEN 0
                 WHEN id LIKE ?2 ESCAPE '\\' THEN 1
                 WHEN name = ?1 THEN 2
                 WHEN substr(name, 1, length(?1)) = ?1 THEN 3
                 ELSE 4 END AS rank
             FROM patients
             WHERE id LIKE ?2 ESCAPE '\\' OR instr(name, ?1) > 0)
         ORDER BY rank, name, id
         LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![query, prefix, limit as i64], from_row)?;
    rows.map(|r| r?).collect()
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
            for (id, name) in [("P1001", "张三"), ("P1002", "张三丰"), ("P2001", "李张"), ("X100_1", "王%五"), ("P10", "赵六")] {
                upsert(c, &patient(id, name))?;
            }
            Ok(())
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
    #[case("%", &["X100_1"])]
    #[case("_", &[])]
    #[case("X100_", &["X100_1"])]
    #[case("' OR 1=1 --", &[])]
    #[case("王%五", &["X100_1"])]
    #[case("nobody", &[])]
    fn search_ranks_ids_then_names_and_takes_queries_literally(#[case] q: &str, #[case] ids: &[&str]) {
        let (_dir, db) = store();
        let found = db.read(|c| search(c, q, 10)).unwrap();
        let found: Vec<_> = found.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(found, ids);
    }

    #[test]
    fn upsert_replaces_and_get_round_trips() {
        let (_dir, db) = store();
        let mut p = patient("P1001", "张三");
        p.phone = None;
        p.is_insured = false;
        db.write(|c| upsert(c, &p)).unwrap();
        assert_eq!(db.read(|c| get(c, &p.id)).unwrap(), Some(p));
        assert_eq!(db.read(|c| get(c, &PatientId::parse("NOPE").unwrap())).unwrap(), None);
        assert_eq!(db.read(count).unwrap(), 5);
    }
}
