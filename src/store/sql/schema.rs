//! The SQL records' schema: the migrations shipped in `sql/<dialect>/NNN_*.sql` (built into
//! the binaries), the version this build reads and writes, and how a database is brought to
//! it (`mailmfa db init`, `mailmfa db migrate`). Every migration file sets the version it
//! reaches in `mailmfa_schema`; a connection checks that version before its first statement.

use super::address::Dialect;
use super::client::{Client, SqlError};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// One migration: the version it reaches and its script for each dialect.
struct Migration {
    to: u32,
    postgres: &'static str,
    mysql: &'static str,
}

/// Every migration, oldest first (versions 1, 2, … without a gap).
const MIGRATIONS: &[Migration] = &[Migration {
    to: 1,
    postgres: include_str!("../../../sql/postgresql/001_records.sql"),
    mysql: include_str!("../../../sql/mysql/001_records.sql"),
}];

/// Whether a server error says a table is missing (PostgreSQL `42P01`, MySQL `42S02`).
pub fn missing_table(e: &SqlError) -> bool {
    matches!(e, SqlError::Server { code, .. } if code == "42P01" || code == "42S02")
}

/// The version the database is at; `None` when it has no mailmfa tables.
pub fn version(client: &mut dyn Client) -> Result<Option<u32>, SqlError> {
    match client.execute("SELECT version FROM mailmfa_schema", &[]) {
        // A table without a row, or with junk in it, is no version this build knows.
        Ok(out) => Ok(Some(
            out.rows
                .first()
                .and_then(|row| row.first())
                .and_then(|v| v.as_deref())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        )),
        Err(e) if missing_table(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Why the database cannot be used by this build, if it cannot (the log's detail).
pub fn check(client: &mut dyn Client) -> Result<Result<(), String>, SqlError> {
    Ok(match version(client)? {
        Some(SCHEMA_VERSION) => Ok(()),
        None => Err("the mailmfa tables are missing: run `mailmfa db init`".to_string()),
        Some(v) if v < SCHEMA_VERSION => Err(format!(
            "the tables are at schema version {v}, this build needs {SCHEMA_VERSION}: run \
             `mailmfa db migrate`"
        )),
        Some(v) => Err(format!(
            "the tables are at schema version {v}, newer than this build's {SCHEMA_VERSION}: \
             upgrade mailmfa on this server"
        )),
    })
}

/// Applies the migrations after `from` (0: none yet) up to [`SCHEMA_VERSION`]; returns the
/// versions applied. PostgreSQL runs each script in one transaction (a multi-statement
/// query is one); MariaDB/MySQL commit each DDL statement by themselves.
pub fn migrate(client: &mut dyn Client, dialect: Dialect, from: u32) -> Result<Vec<u32>, SqlError> {
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.to > from) {
        client.script(match dialect {
            Dialect::Postgres => m.postgres,
            Dialect::Mysql => m.mysql,
        })?;
        applied.push(m.to);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migrations_reach_this_builds_version_in_order_and_set_it() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.to as usize, i + 1);
            for script in [m.postgres, m.mysql] {
                assert!(
                    script.contains("mailmfa_schema"),
                    "migration {} sets no version",
                    m.to
                );
            }
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.to), Some(SCHEMA_VERSION));
    }
}
