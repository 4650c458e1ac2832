// The SQL records' test support (issue 15): one type over a REAL PostgreSQL or MariaDB started
// for the test (tests/servers/postgres.rs, tests/servers/mariadb.rs), a key file made by
// `mailmfa db keygen`, and fixtures whose config keeps the records there (`records = "sql"`)
// with the tables made by `mailmfa db init`. The same tests run against both servers through
// `for_each_backend!`, and the module's and the command's suites against files and both
// servers through `for_each_records!` ([`Records`]). Used by tests/sql_records.rs,
// tests/integration_sql.rs and the suites parameterised by records backend.
#![allow(dead_code)]

use crate::fixture::Fixture;
use crate::servers::mariadb::{MariaDb, MARIADB_PREREQS};
use crate::servers::postgres::{have_postgres, Postgres};
use crate::servers::{require_prereqs, TestDir};
use std::ops::Deref;
use std::path::PathBuf;
use std::process::Command;

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// PostgreSQL (initdb, postgres).
    Postgres,
    /// MariaDB (mariadb-install-db, mariadbd).
    Mariadb,
}

enum Server {
    Pg(Postgres),
    My(MariaDb),
}

/// A running database server with the `mail` database, its user's password file, and a key
/// file for sealing records.
pub struct Db {
    /// Which server it is.
    pub kind: Kind,
    server: Server,
    /// The key file (`sql_key_file`).
    pub key_file: PathBuf,
    _keys: TestDir,
}

impl Db {
    /// Starts a `kind` server; `None` (a loud skip, a failure under CI) when its programs are
    /// missing.
    pub fn start(kind: Kind) -> Option<Db> {
        let server = match kind {
            Kind::Postgres if have_postgres() => Server::Pg(Postgres::start()),
            Kind::Mariadb if require_prereqs(MARIADB_PREREQS) => Server::My(MariaDb::start()),
            _ => return None,
        };
        let keys = TestDir::new("sql-keys");
        let key_file = keys.join("records.key");
        mailmfa(&["db", "keygen", key_file.to_str().unwrap()]);
        Some(Db {
            kind,
            server,
            key_file,
            _keys: keys,
        })
    }

    /// The config lines that keep records in this database.
    pub fn config(&self) -> String {
        let url = match &self.server {
            Server::Pg(s) => s.url(),
            Server::My(s) => s.url(),
        };
        let password = self.password_file();
        format!(
            "records = \"sql\"\nsql_url = \"{url}\"\nsql_password_file = \"{}\"\n\
             sql_key_file = \"{}\"\nsql_timeout_ms = 1000\n",
            password.display(),
            self.key_file.display()
        )
    }

    /// The database password's file (`sql_password_file`).
    pub fn password_file(&self) -> PathBuf {
        match &self.server {
            Server::Pg(s) => s.password_file(),
            Server::My(s) => s.password_file(),
        }
    }

    /// Runs `sql` as the server's superuser; its output, one row per line, tab-separated.
    pub fn query(&self, sql: &str) -> String {
        match &self.server {
            Server::Pg(s) => s.psql(sql),
            Server::My(s) => s.sql(sql),
        }
    }

    /// How many sessions the `mailmfa` user has open on the server now (the superuser's own,
    /// which counts them, is not one).
    pub fn sessions(&self) -> usize {
        let count = match &self.server {
            Server::Pg(s) => {
                s.psql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'mailmfa'")
            }
            Server::My(s) => {
                s.sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'mailmfa'")
            }
        };
        count
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("a count: {count}"))
    }

    /// A dump of the `mail` database (schema and rows), as an admin's backup would hold it.
    pub fn dump(&self) -> String {
        match &self.server {
            Server::Pg(s) => s.dump(),
            Server::My(s) => s.dump(),
        }
    }

    /// Stops the server (its data kept).
    pub fn stop(&mut self) {
        match &mut self.server {
            Server::Pg(s) => s.stop(),
            Server::My(s) => s.stop(),
        }
    }

    /// Stops the server's processes (SIGSTOP): connections hang until [`Db::resume`].
    pub fn pause(&mut self) {
        match &mut self.server {
            Server::Pg(s) => s.pause(),
            Server::My(s) => s.pause(),
        }
    }

    /// Lets a paused server run again.
    pub fn resume(&mut self) {
        match &mut self.server {
            Server::Pg(s) => s.resume(),
            Server::My(s) => s.resume(),
        }
    }

    /// Starts it again on the same port and data.
    pub fn start_again(&mut self) {
        match &mut self.server {
            Server::Pg(s) => s.start_again(),
            Server::My(s) => s.start_again(),
        }
    }

    /// A fixture with `extra` config whose records are in this database, the tables made by
    /// `mailmfa db init`.
    pub fn fixture(&self, extra: &str) -> Fixture {
        let f = Fixture::with_config(&format!("{}{extra}", self.config()));
        let out = mailmfa_with(&f, &["db", "init"]);
        assert!(out.contains("schema version 0 -> 1"), "{out}");
        f
    }
}

/// Where a parameterised test keeps its records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Records {
    /// `records = "files"` (the default).
    #[default]
    Files,
    /// `records = "sql"` on a server of this kind, started for the test.
    Sql(Kind),
}

/// A fixture and the database its records are in (kept running as long as the fixture).
pub struct Place {
    f: Fixture,
    db: Option<Db>,
}

impl Deref for Place {
    type Target = Fixture;
    fn deref(&self) -> &Fixture {
        &self.f
    }
}

impl Place {
    /// The database, when the records are in SQL.
    pub fn db(&self) -> Option<&Db> {
        self.db.as_ref()
    }
}

impl Records {
    /// A fixture with `extra` config keeping its records here; `None` (a loud skip, a
    /// failure under CI) when the database's programs are missing.
    pub fn fixture(self, extra: &str) -> Option<Place> {
        match self {
            Records::Files => Some(Place {
                f: Fixture::with_config(extra),
                db: None,
            }),
            Records::Sql(kind) => {
                let db = Db::start(kind)?;
                Some(Place {
                    f: db.fixture(extra),
                    db: Some(db),
                })
            }
        }
    }
}

/// Runs the `mailmfa` command, which must succeed; its stdout.
pub fn mailmfa(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mailmfa"))
        .args(args)
        .output()
        .expect("run mailmfa");
    assert!(
        out.status.success(),
        "mailmfa {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `mailmfa --config <f's config> ARGS`, which must succeed; its stdout.
pub fn mailmfa_with(f: &Fixture, args: &[&str]) -> String {
    let config = f.config.to_str().unwrap().to_string();
    let mut all = vec!["--config", &config];
    all.extend_from_slice(args);
    mailmfa(&all)
}

/// Defines each named test once per server: `postgres::NAME` and `mariadb::NAME`, each
/// calling `NAME(Kind)` (the same test, parameterised, not a copy).
#[macro_export]
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        $crate::tests_in!(postgres, $crate::sql::Kind::Postgres, $($name),*);
        $crate::tests_in!(mariadb, $crate::sql::Kind::Mariadb, $($name),*);
    };
}

/// Defines each named test once per records backend: `files::NAME`, `postgres::NAME` and
/// `mariadb::NAME`, each calling `NAME(Records)`.
#[macro_export]
macro_rules! for_each_records {
    ($($name:ident),* $(,)?) => {
        $crate::tests_in!(files, $crate::sql::Records::Files, $($name),*);
        $crate::tests_in!(
            postgres,
            $crate::sql::Records::Sql($crate::sql::Kind::Postgres),
            $($name),*
        );
        $crate::tests_in!(
            mariadb,
            $crate::sql::Records::Sql($crate::sql::Kind::Mariadb),
            $($name),*
        );
    };
}

/// `mod MODULE { #[test] fn NAME() { super::NAME(ARG) } ... }`.
#[macro_export]
macro_rules! tests_in {
    ($module:ident, $arg:expr, $($name:ident),*) => {
        mod $module {
            $(#[test]
            fn $name() {
                super::$name($arg)
            })*
        }
    };
}
