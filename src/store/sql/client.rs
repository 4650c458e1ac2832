//! What the SQL records store needs from a database server, whichever it is: run one
//! statement with bound parameters and get its rows back as text, or run a script
//! (migrations). [`super::postgres`] and [`super::mysql`] are the two wire clients behind it;
//! both are small, blocking and bounded by `sql_timeout_ms` (no async runtime in the module).

use crate::store::net::Failure;
use std::fmt;

/// One value bound to a placeholder (`$1`… for PostgreSQL, `?` for MariaDB/MySQL). Values are
/// never spliced into the statement's text as typed: a client sends them apart from the
/// statement, or as literals that cannot end early (hex).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param<'a> {
    /// A text value (UTF-8).
    Text(&'a str),
    /// An integer.
    Int(i64),
}

/// One result row: each column as text (integers in decimal), `None` for SQL `NULL`.
pub type Row = Vec<Option<String>>;

/// What a statement returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The rows of a query (empty for a statement that returns none).
    pub rows: Vec<Row>,
    /// The rows an `INSERT`, `UPDATE` or `DELETE` changed (0 for a query).
    pub affected: u64,
}

/// A failed statement or connection. Never holds a password or a bound value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqlError {
    /// Connecting, logging in, a timeout, a broken or garbled connection: the connection is
    /// no longer usable (the caller drops it and opens a new one next time).
    Connection(Failure),
    /// The server refused the statement; the connection is still usable.
    Server {
        /// The SQLSTATE (five characters, `42P01`/`42S02` for a missing table).
        code: String,
        /// The server's message (its primary text only, without the detail that can echo a
        /// value).
        message: String,
    },
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlError::Connection(why) => f.write_str(why),
            SqlError::Server { code, message } => write!(f, "{message} (SQLSTATE {code})"),
        }
    }
}

impl std::error::Error for SqlError {}

/// An open, logged-in connection to a database.
pub trait Client: Send {
    /// Runs one statement with `params` bound to its placeholders, in autocommit (or in the
    /// transaction a `BEGIN` through [`Client::script`] opened).
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Outcome, SqlError>;

    /// Runs a script of statements separated by `;` without parameters (a migration file).
    fn script(&mut self, sql: &str) -> Result<(), SqlError>;

    /// Whether the last failure was the server closing or resetting the connection (it restarted, or dropped an idle client): worth one retry on a new connection.
    fn went_stale(&self) -> bool;

    /// Forgets the connection without a word to the server: when dropped, the socket is only
    /// closed. For a forked child's copy of its parent's connection, whose goodbye
    /// (`Terminate`, `COM_QUIT`) would end the parent's session.
    fn abandon(&mut self);
}
