//! `sql_url`: which database server, where, as whom, and whether over TLS.
//!
//! - `postgresql://user@host[:port]/database[?sslmode=disable|verify-full]` (also
//!   `postgres://`; port 5432), or over the server's Unix socket
//!   `postgresql://user@/database?host=/run/postgresql[&port=5432]` (the socket is
//!   `<dir>/.s.PGSQL.<port>`, as libpq finds it);
//! - `mysql://user@host[:port]/database[?ssl-mode=DISABLED|VERIFY_IDENTITY]` (also
//!   `mariadb://`; port 3306), or `mysql://user@/database?socket=/run/mysqld/mysqld.sock`.
//!
//! TLS is off unless asked for; when asked, the server's certificate is always checked
//! against `sql_tls_ca_file` (or the system's bundle) and the host (libpq's `verify-full`,
//! MySQL's `VERIFY_IDENTITY`): a mode that encrypts without checking is refused. A password in
//! the URL is refused too: the URL may stand on a pam.d line, which every local user can read,
//! so the password comes from `sql_password_file`.

use crate::store::net;
use std::path::PathBuf;

/// Which wire protocol (and SQL dialect).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL (`$1` placeholders).
    Postgres,
    /// MariaDB or MySQL (`?` placeholders).
    Mysql,
}

/// Where to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A TCP host (name or address, without brackets) and port.
    Tcp(String, u16),
    /// A Unix socket (the socket file itself).
    Unix(PathBuf),
}

/// A parsed `sql_url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// The server's kind.
    pub dialect: Dialect,
    /// The user to log in as.
    pub user: String,
    /// Host and port, or socket.
    pub target: Target,
    /// The database to use.
    pub database: String,
    /// TLS with the server's certificate checked (TCP only).
    pub tls: bool,
}

impl Address {
    /// Parses a `sql_url`; the error says what is wrong (it never holds the URL's password).
    pub fn parse(url: &str) -> Result<Address, String> {
        let bad = |why: &str| format!("`sql_url` {why}");
        let (dialect, rest) = if let Some(rest) = url
            .strip_prefix("postgresql://")
            .or_else(|| url.strip_prefix("postgres://"))
        {
            (Dialect::Postgres, rest)
        } else if let Some(rest) = url
            .strip_prefix("mysql://")
            .or_else(|| url.strip_prefix("mariadb://"))
        {
            (Dialect::Mysql, rest)
        } else {
            return Err(bad(
                "must start with `postgresql://`, `postgres://`, `mysql://` or `mariadb://`",
            ));
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, database) = rest
            .split_once('/')
            .ok_or_else(|| bad("needs `/database` after the host"))?;
        let (user, hostport) = authority
            .rsplit_once('@')
            .ok_or_else(|| bad("needs a user: `user@host/database`"))?;
        if user.contains(':') {
            return Err(bad(
                "must not hold a password: put it in the file `sql_password_file` names",
            ));
        }
        if !plain(user) || !plain(database) {
            return Err(bad(
                "needs a user and a database name (letters, digits, `_`, `-`, `.`)",
            ));
        }
        let mut tls = false;
        let mut socket_dir = None;
        let mut socket = None;
        let mut socket_port = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match (dialect, pair.split_once('=')) {
                (Dialect::Postgres, Some(("sslmode", "disable")))
                | (Dialect::Mysql, Some(("ssl-mode", "DISABLED"))) => tls = false,
                (Dialect::Postgres, Some(("sslmode", "verify-full")))
                | (Dialect::Mysql, Some(("ssl-mode", "VERIFY_IDENTITY"))) => tls = true,
                (Dialect::Postgres, Some(("sslmode", _))) => {
                    return Err(bad(
                        "takes `sslmode=disable` or `sslmode=verify-full` (a mode that does not \
                         check the server's certificate is refused)",
                    ))
                }
                (Dialect::Mysql, Some(("ssl-mode", _))) => {
                    return Err(bad(
                        "takes `ssl-mode=DISABLED` or `ssl-mode=VERIFY_IDENTITY` (a mode that \
                         does not check the server's certificate is refused)",
                    ))
                }
                (Dialect::Postgres, Some(("host", dir))) if dir.starts_with('/') => {
                    socket_dir = Some(dir)
                }
                (Dialect::Postgres, Some(("port", port))) => {
                    socket_port = Some(port.parse::<u16>().map_err(|_| bad("has a bad port"))?)
                }
                (Dialect::Mysql, Some(("socket", path))) if path.starts_with('/') => {
                    socket = Some(PathBuf::from(path))
                }
                _ => return Err(bad(&format!("has an unknown or bad option `{pair}`"))),
            }
        }
        let default_port = match dialect {
            Dialect::Postgres => 5432,
            Dialect::Mysql => 3306,
        };
        let socket = socket.or_else(|| {
            socket_dir.map(|dir| {
                PathBuf::from(dir).join(format!(".s.PGSQL.{}", socket_port.unwrap_or(5432)))
            })
        });
        let target = match (socket, hostport.is_empty()) {
            (Some(path), true) if !tls => Target::Unix(path),
            (Some(_), true) => return Err(bad("asks for TLS over a Unix socket")),
            (Some(_), false) => return Err(bad("names both a host and a socket")),
            (None, true) => return Err(bad("needs a host, or a socket in the query")),
            (None, false) => {
                let (host, port) = net::host_port(hostport, default_port).map_err(bad)?;
                Target::Tcp(host, port)
            }
        };
        Ok(Address {
            dialect,
            user: user.to_string(),
            target,
            database: database.to_string(),
            tls,
        })
    }
}

/// A user or database name that needs no quoting anywhere: 1 to 63 of letters, digits, `_`,
/// `-`, `.`.
fn plain(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(dialect: Dialect, host: &str, port: u16, tls: bool) -> Address {
        Address {
            dialect,
            user: "mailmfa".to_string(),
            target: Target::Tcp(host.to_string(), port),
            database: "mail".to_string(),
            tls,
        }
    }

    #[test]
    fn tcp_urls_name_the_server_the_user_and_the_database() {
        use Dialect::*;
        for (url, want) in [
            (
                "postgresql://mailmfa@db.example.org/mail",
                tcp(Postgres, "db.example.org", 5432, false),
            ),
            (
                "postgres://mailmfa@127.0.0.1:5433/mail?sslmode=disable",
                tcp(Postgres, "127.0.0.1", 5433, false),
            ),
            (
                "postgresql://mailmfa@[::1]:6000/mail?sslmode=verify-full",
                tcp(Postgres, "::1", 6000, true),
            ),
            ("mysql://mailmfa@db/mail", tcp(Mysql, "db", 3306, false)),
            (
                "mariadb://mailmfa@db:3307/mail?ssl-mode=VERIFY_IDENTITY",
                tcp(Mysql, "db", 3307, true),
            ),
        ] {
            assert_eq!(Address::parse(url), Ok(want), "{url}");
        }
    }

    #[test]
    fn unix_sockets_are_named_in_the_query() {
        let pg = Address::parse("postgresql://mailmfa@/mail?host=/run/postgresql").unwrap();
        assert_eq!(
            pg.target,
            Target::Unix(PathBuf::from("/run/postgresql/.s.PGSQL.5432"))
        );
        let pg = Address::parse("postgresql://mailmfa@/mail?host=/tmp/pg&port=5433").unwrap();
        assert_eq!(
            pg.target,
            Target::Unix(PathBuf::from("/tmp/pg/.s.PGSQL.5433"))
        );
        let my = Address::parse("mysql://mailmfa@/mail?socket=/run/mysqld/mysqld.sock").unwrap();
        assert_eq!(
            my.target,
            Target::Unix(PathBuf::from("/run/mysqld/mysqld.sock"))
        );
    }

    #[test]
    fn passwords_unchecked_tls_and_junk_are_refused_without_echoing_secrets() {
        for url in [
            "postgresql://mailmfa:s3cret@db/mail",
            "mysql://mailmfa:s3cret@db/mail",
        ] {
            let err = Address::parse(url).unwrap_err();
            assert!(err.contains("sql_password_file"), "{err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
        for junk in [
            "",
            "redis://127.0.0.1",
            "postgresql://db/mail",
            "postgresql://mailmfa@db",
            "postgresql://mailmfa@db/",
            "postgresql://mailmfa@db/ma il",
            "postgresql://mail'mfa@db/mail",
            "postgresql://mailmfa@db:0/mail",
            "postgresql://mailmfa@db:99999/mail",
            "postgresql://mailmfa@/mail",
            "postgresql://mailmfa@db/mail?sslmode=require",
            "postgresql://mailmfa@db/mail?sslmode=prefer",
            "postgresql://mailmfa@db/mail?host=relative",
            "postgresql://mailmfa@db/mail?host=/run/postgresql",
            "postgresql://mailmfa@/mail?host=/run/postgresql&sslmode=verify-full",
            "mysql://mailmfa@db/mail?ssl-mode=REQUIRED",
            "mysql://mailmfa@db/mail?sslmode=disable",
            "mysql://mailmfa@db/mail?timeout=1",
            "postgresql://mailmfa@/mail?host=relative",
            "mysql://mailmfa@/mail?socket=relative.sock",
        ] {
            assert!(Address::parse(junk).is_err(), "{junk}");
        }
        for unchecked in [
            "postgresql://mailmfa@db/mail?sslmode=require",
            "mysql://mailmfa@db/mail?ssl-mode=REQUIRED",
        ] {
            let err = Address::parse(unchecked).unwrap_err();
            assert!(err.contains("does not check the server"), "{err}");
        }
    }
}
