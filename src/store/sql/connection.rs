//! The SQL connection of a process: opened from the `sql_*` settings (the password read from
//! `sql_password_file` at each connect, zeroed after the login), the schema version checked
//! before its first statement, kept in the process's slot ([`crate::store::net::slot`]), and
//! failures mapped to the log reasons of the SQL records.

use super::address::{Address, Dialect};
use super::client::{Client, SqlError};
use super::{mysql, postgres, schema};
use crate::config::SqlSettings;
use crate::log::Reason;
use crate::store::net::refused;
use crate::store::net::slot::{self, Reusable, Shared};
use crate::store::net::tls::TlsFiles;
use crate::store::secure::{self, Owners};
use std::sync::Mutex;
use std::time::Duration;
use zeroize::Zeroizing;

/// The setting that bounds the connect and every statement.
pub const TIMEOUT: &str = "sql_timeout_ms";

/// A failure of the SQL records, with the log reason it maps to (no secret in `why`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// What went wrong.
    pub why: String,
    /// `RecordsUnavailable`, `RecordsSchema`, `RecordSealBroken` or `KeyFileUnusable`.
    pub reason: Reason,
}

impl Fault {
    /// A fault of `reason`.
    pub fn new(reason: Reason, why: impl Into<String>) -> Fault {
        Fault {
            why: why.into(),
            reason,
        }
    }
}

impl From<SqlError> for Fault {
    fn from(e: SqlError) -> Fault {
        let reason = if schema::missing_table(&e) {
            Reason::RecordsSchema
        } else {
            Reason::RecordsUnavailable
        };
        Fault::new(reason, e.to_string())
    }
}

/// An open connection and the dialect it speaks.
pub struct Connection {
    /// The wire client.
    pub client: Box<dyn Client>,
    /// PostgreSQL or MariaDB/MySQL.
    pub dialect: Dialect,
}

impl Reusable for Connection {
    fn went_stale(&self) -> bool {
        self.client.went_stale()
    }

    fn abandon(&mut self) {
        self.client.abandon();
    }
}

impl Connection {
    /// Connects and logs in as `settings` say; `owners` may own the password file besides
    /// root. The schema is not checked ([`Connection::checked`] does).
    pub fn open(settings: &SqlSettings, owners: Owners) -> Result<Connection, Fault> {
        let address = Address::parse(&settings.url)
            .map_err(|why| Fault::new(Reason::RecordsUnavailable, why))?;
        let password = match &settings.password_file {
            Some(path) => {
                let text = secure::read_secret(path, owners)
                    .map_err(|r| Fault::new(Reason::RecordsUnavailable, refused(path, r)))?;
                Some(Zeroizing::new(
                    text.lines().next().unwrap_or("").to_string(),
                ))
            }
            None => None,
        };
        let password = password.as_ref().map(|p| p.as_str());
        let timeout = Duration::from_millis(settings.timeout_ms);
        let tls = TlsFiles {
            ca_file: settings.tls_ca_file.as_deref(),
            cert_file: settings.tls_cert_file.as_deref(),
            key_file: settings.tls_key_file.as_deref(),
            prefix: "sql_",
            timeout_name: TIMEOUT,
        };
        let client: Box<dyn Client> = match address.dialect {
            Dialect::Postgres => Box::new(postgres::connect(
                &address, password, timeout, &tls, owners,
            )?),
            Dialect::Mysql => Box::new(mysql::connect(&address, password, timeout, &tls, owners)?),
        };
        Ok(Connection {
            client,
            dialect: address.dialect,
        })
    }

    /// [`Connection::open`], then the schema version checked: the connection the store uses.
    fn checked(settings: &SqlSettings, owners: Owners) -> Result<Connection, Fault> {
        let mut conn = Connection::open(settings, owners)?;
        schema::check(&mut *conn.client)?.map_err(|why| Fault::new(Reason::RecordsSchema, why))?;
        Ok(conn)
    }

    /// Runs `sql` (written with `$1`, `$2`… in order) with `params`, in this dialect.
    pub fn execute(
        &mut self,
        sql: &str,
        params: &[super::client::Param<'_>],
    ) -> Result<super::client::Outcome, SqlError> {
        match self.dialect {
            Dialect::Postgres => self.client.execute(sql, params),
            Dialect::Mysql => self.client.execute(&question_marks(sql), params),
        }
    }
}

/// `$1`, `$2`… as MySQL's `?` (the statements are the store's own, numbered in order).
fn question_marks(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

static SLOT: Shared<SqlSettings, Connection> = Mutex::new(None);

/// Runs `work` on this process's checked connection for `settings` (see
/// [`slot::with_connection`]).
pub fn with_connection<T>(
    settings: &SqlSettings,
    owners: Owners,
    work: &mut dyn FnMut(&mut Connection) -> Result<T, Fault>,
) -> Result<T, Fault> {
    slot::with_connection(&SLOT, settings, owners, &Connection::checked, work)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_placeholders_become_question_marks() {
        assert_eq!(
            question_marks("UPDATE t SET a = $1, b = $2 WHERE c = $10 AND d = '$'"),
            "UPDATE t SET a = ?, b = ? WHERE c = ? AND d = '$'"
        );
    }
}
