//! Records in a SQL database (`records = "sql"`): PostgreSQL or MariaDB/MySQL, one row per
//! login in `mailmfa_record`, the record's text sealed at rest ([`seal`]); the state stays
//! where `state` says (files, or Redis/Valkey), so the rules of [`Store`] for the state are
//! those backends' own.
//!
//! The wire clients are small blocking ones written for the module ([`postgres`],
//! [`mysql`]; no async runtime, no C library), behind one [`client::Client`] trait, one
//! connection per process ([`connection`]). Every failure denies: the server down or slower
//! than `sql_timeout_ms` (`records_unavailable`), the tables missing or at another version
//! (`records_schema`), a row that does not open (`record_seal_broken`), the key file
//! unusable (`key_file_unusable`). Since the record says whether a mailbox has MFA, while
//! the records cannot be read no login is told apart from one without MFA: every login is
//! denied.

pub mod address;
pub mod client;
pub mod connection;
pub mod mysql;
pub mod postgres;
pub mod schema;
pub mod seal;

use super::backend::Backend;
use super::secure::Owners;
use super::{StateLoad, Store, StoreError};
use crate::config::{Settings, SqlSettings};
use crate::log::Reason;
use crate::login::Login;
use crate::record::Record;
use crate::state::State;
use client::Param;
use connection::{Connection, Fault};
use seal::{Keys, Sealed};

const SELECT: &str = "SELECT key_id, sealed FROM mailmfa_record WHERE login = $1";
const UPSERT_POSTGRES: &str = "INSERT INTO mailmfa_record (login, key_id, sealed, created, \
     updated) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (login) DO UPDATE SET key_id = \
     EXCLUDED.key_id, sealed = EXCLUDED.sealed, created = EXCLUDED.created, updated = \
     EXCLUDED.updated";
const UPSERT_MYSQL: &str = "INSERT INTO mailmfa_record (login, key_id, sealed, created, \
     updated) VALUES ($1, $2, $3, $4, $5) ON DUPLICATE KEY UPDATE key_id = VALUES(key_id), \
     sealed = VALUES(sealed), created = VALUES(created), updated = VALUES(updated)";
const DELETE: &str = "DELETE FROM mailmfa_record WHERE login = $1";
const LOGINS: &str = "SELECT login FROM mailmfa_record ORDER BY login";
/// The next rows `db rekey` re-seals: 500 at a time, in login order after `$2`.
const OLD_KEYS: &str = "SELECT login, key_id, sealed FROM mailmfa_record WHERE key_id <> $1 AND \
     login > $2 ORDER BY login LIMIT 500";
const RESEAL: &str = "UPDATE mailmfa_record SET key_id = $1, sealed = $2 WHERE login = $3 AND \
     key_id = $4 AND sealed = $5";

/// Records in SQL, state in the `state` backend.
#[derive(Clone, Debug)]
pub struct SqlStore {
    sql: SqlSettings,
    owners: Owners,
    state: Box<Backend>,
}

impl SqlStore {
    /// A store for `settings` run by `euid`, keeping the state in `state` (the password and
    /// key files may belong to root, `euid` or the `record_owner`).
    pub fn new(settings: &Settings, euid: u32, state: Backend) -> SqlStore {
        SqlStore {
            sql: settings.sql.clone(),
            owners: settings.record_owners(euid),
            state: Box::new(state),
        }
    }

    /// The backend that keeps the state.
    pub fn state(&self) -> &Backend {
        &self.state
    }

    /// The keys of `sql_key_file`, read now (a rotation is seen at the next use).
    pub fn keys(&self) -> Result<Keys, Fault> {
        let path = self.sql.key_file.as_ref().ok_or_else(|| {
            Fault::new(
                Reason::KeyFileUnusable,
                "`records = \"sql\"` needs `sql_key_file`",
            )
        })?;
        Keys::load(path, self.owners).map_err(|why| Fault::new(Reason::KeyFileUnusable, why))
    }

    /// Runs `work` on the process's connection; a failure becomes a [`StoreError`] naming
    /// the database and, if given, the login.
    fn run<T>(
        &self,
        login: Option<&Login>,
        work: &mut dyn FnMut(&mut Connection) -> Result<T, Fault>,
    ) -> Result<T, StoreError> {
        connection::with_connection(&self.sql, self.owners, work).map_err(|f| self.error(login, f))
    }

    fn error(&self, login: Option<&Login>, fault: Fault) -> StoreError {
        let place = match login {
            Some(login) => format!("{} row {login}", self.sql.url),
            None => self.sql.url.clone(),
        };
        StoreError::Shared {
            place,
            why: fault.why,
            reason: fault.reason,
        }
    }

    /// Opens a sealed row of `login` into its record.
    fn open(&self, keys: &Keys, login: &Login, sealed: &Sealed) -> Result<Record, Fault> {
        let text = keys
            .open(login, sealed)
            .map_err(|why| Fault::new(Reason::RecordSealBroken, why))?;
        let text = std::str::from_utf8(&text)
            .map_err(|_| Fault::new(Reason::RecordSealBroken, "the record is not text"))?;
        Record::parse(text).map_err(|e| Fault::new(Reason::BadRecord, e.to_string()))
    }

    /// Seals every record not sealed with the current key again with it; returns how many
    /// were re-sealed. The rows are read 500 at a time in login order (a table of
    /// a million rows is never held in memory); each is opened, sealed and written back only
    /// if unchanged since it was read (a record written meanwhile was sealed by its writer).
    /// A row that does not open stops the walk with its error.
    pub fn rekey(&self) -> Result<usize, StoreError> {
        let keys = self.keys().map_err(|f| self.error(None, f))?;
        let current = i64::from(keys.current());
        let mut after = String::new();
        let mut done = 0;
        loop {
            let rows = self.run(None, &mut |conn| {
                Ok(conn
                    .execute(OLD_KEYS, &[Param::Int(current), Param::Text(&after)])?
                    .rows)
            })?;
            if rows.is_empty() {
                return Ok(done);
            }
            for row in rows {
                let (login, sealed) = row_sealed(&row[..], 0).map_err(|f| self.error(None, f))?;
                done += usize::from(self.reseal(&keys, &login, &sealed)?);
                after = login.as_str().to_string();
            }
        }
    }

    /// Seals `login`'s row again with the current key if it still holds `sealed`; whether it
    /// did.
    fn reseal(&self, keys: &Keys, login: &Login, sealed: &Sealed) -> Result<bool, StoreError> {
        let record = self
            .open(keys, login, sealed)
            .map_err(|f| self.error(Some(login), f))?;
        let fresh = keys
            .seal(login, record.to_toml().as_bytes())
            .map_err(|why| self.error(Some(login), Fault::new(Reason::KeyFileUnusable, why)))?;
        let changed = self.run(Some(login), &mut |conn| {
            Ok(conn
                .execute(
                    RESEAL,
                    &[
                        Param::Int(i64::from(fresh.key_id)),
                        Param::Text(&fresh.text),
                        Param::Text(login.as_str()),
                        Param::Int(i64::from(sealed.key_id)),
                        Param::Text(&sealed.text),
                    ],
                )?
                .affected)
        })?;
        Ok(changed > 0)
    }
}

/// The login (column `at`) and sealed value (the two columns after it) of a row.
fn row_sealed(row: &[Option<String>], at: usize) -> Result<(Login, Sealed), Fault> {
    let login = login_at(row, at)?;
    let sealed = sealed_at(row, at + 1).ok_or_else(|| {
        Fault::new(
            Reason::RecordsUnavailable,
            "a row has no key id or sealed value",
        )
    })?;
    Ok((login, sealed))
}

/// The login in column `at` of a row.
fn login_at(row: &[Option<String>], at: usize) -> Result<Login, Fault> {
    row.get(at)
        .and_then(|v| v.as_deref())
        .and_then(|v| Login::parse(v.as_bytes()).ok())
        .ok_or_else(|| {
            Fault::new(
                Reason::RecordsUnavailable,
                "a row has a login that is not one",
            )
        })
}

/// The key id and sealed text in columns `at` and `at + 1`.
fn sealed_at(row: &[Option<String>], at: usize) -> Option<Sealed> {
    let key_id = row.get(at)?.as_deref()?.parse().ok()?;
    let text = row.get(at + 1)?.clone()?;
    Some(Sealed { key_id, text })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Store for SqlStore {
    fn read_record(&self, login: &Login) -> Result<Option<Record>, StoreError> {
        let row = self.run(Some(login), &mut |conn| {
            Ok(conn
                .execute(SELECT, &[Param::Text(login.as_str())])?
                .rows
                .pop())
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let fail = |f| self.error(Some(login), f);
        let sealed = sealed_at(&row, 0).ok_or_else(|| {
            fail(Fault::new(
                Reason::RecordSealBroken,
                "the row has no key id or sealed value",
            ))
        })?;
        let keys = self.keys().map_err(fail)?;
        self.open(&keys, login, &sealed).map(Some).map_err(fail)
    }

    fn update_state(
        &self,
        login: &Login,
        decide: &mut dyn FnMut(&mut State) -> bool,
    ) -> Result<StateLoad, StoreError> {
        self.state.update_state(login, decide)
    }

    fn decide_state(
        &self,
        login: &Login,
        decide: &mut dyn FnMut(&mut State) -> bool,
    ) -> Result<StateLoad, StoreError> {
        self.state.decide_state(login, decide)
    }

    fn read_state(&self, login: &Login) -> Result<Option<State>, StoreError> {
        self.state.read_state(login)
    }

    fn write_record(&self, login: &Login, record: &Record) -> Result<(), StoreError> {
        let sealed = self
            .keys()
            .and_then(|keys| {
                keys.seal(login, record.to_toml().as_bytes())
                    .map_err(|why| Fault::new(Reason::KeyFileUnusable, why))
            })
            .map_err(|f| self.error(Some(login), f))?;
        let created = i64::try_from(record.created).unwrap_or(i64::MAX);
        let updated = now();
        self.run(Some(login), &mut |conn| {
            let upsert = match conn.dialect {
                address::Dialect::Postgres => UPSERT_POSTGRES,
                address::Dialect::Mysql => UPSERT_MYSQL,
            };
            conn.execute(
                upsert,
                &[
                    Param::Text(login.as_str()),
                    Param::Int(i64::from(sealed.key_id)),
                    Param::Text(&sealed.text),
                    Param::Int(created),
                    Param::Int(updated),
                ],
            )?;
            Ok(())
        })
    }

    fn remove_user(&self, login: &Login) -> Result<bool, StoreError> {
        // The record goes first: a state removed while its record stays would forget the
        // used recovery codes.
        let removed = self.run(Some(login), &mut |conn| {
            Ok(conn
                .execute(DELETE, &[Param::Text(login.as_str())])?
                .affected)
        })?;
        self.state.remove_state(login)?;
        Ok(removed > 0)
    }

    fn list_logins(&self) -> Result<Vec<Login>, StoreError> {
        let rows = self.run(None, &mut |conn| Ok(conn.execute(LOGINS, &[])?.rows))?;
        rows.iter()
            .map(|row| login_at(row, 0).map_err(|f| self.error(None, f)))
            .collect()
    }
}
