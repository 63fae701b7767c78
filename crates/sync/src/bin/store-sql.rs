//! One SQL statement on an encrypted device store, for `scripts/test-deb`, which
//! checks what the installed app stored (the store is SQLCipher with a raw key, and
//! Debian's `sqlcipher` shell is 3.x, which cannot read a SQLCipher 4 file):
//! `store-sql --db FILE --key-file KEY "SQL"`. Rows are printed one a line, columns
//! joined by `|`, as the `sqlite3` shell does; a statement without rows runs.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use clinic_store::StoreKey;
use rusqlite::types::ValueRef;

#[derive(Parser)]
#[command(name = "store-sql")]
struct Args {
    /// The store file.
    #[arg(long, value_name = "FILE")]
    db: PathBuf,
    /// The file holding the store's key (64 hex digits).
    #[arg(long, value_name = "KEY")]
    key_file: PathBuf,
    /// The statement.
    sql: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let key = StoreKey::from_hex(&std::fs::read_to_string(&args.key_file)?)
        .ok_or_else(|| anyhow::anyhow!("{} holds no key", args.key_file.display()))?;
    let conn = rusqlite::Connection::open(&args.db)?;
    key.apply(&conn)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mut stmt = conn.prepare(&args.sql)?;
    if stmt.column_count() == 0 {
        stmt.raw_execute()?;
        return Ok(());
    }
    let columns = stmt.column_count();
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let cells = (0..columns)
            .map(|i| {
                Ok(match row.get_ref(i)? {
                    ValueRef::Null => String::new(),
                    ValueRef::Integer(n) => n.to_string(),
                    ValueRef::Real(x) => x.to_string(),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        String::from_utf8_lossy(t).into_owned()
                    }
                })
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        println!("{}", cells.join("|"));
    }
    Ok(())
}
