//! `redis_url`: where the Redis/Valkey server is, as its own clients write it.
//!
//! `redis://host[:port][/db]` (port 6379, database 0 by default; an IPv6 host in brackets),
//! `rediss://` the same over TLS (the host is the name the server's certificate must carry),
//! and `unix:/path/to/redis.sock[?db=N]` (also `unix:///path` and `redis+unix:///path`). A
//! user or password in the URL is refused: the URL may stand on a pam.d line, which every
//! local user can read, so the password comes from `redis_password_file` and the user from
//! `redis_user`.

use crate::store::net;
use std::path::PathBuf;

/// Where to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A TCP host (name or address, without brackets) and port.
    Tcp(String, u16),
    /// A Unix socket.
    Unix(PathBuf),
}

/// A parsed `redis_url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// Host and port, or socket path.
    pub target: Target,
    /// The database number (`SELECT`), 0 by default.
    pub db: u32,
    /// `rediss://`: TLS over the TCP connection.
    pub tls: bool,
}

impl Address {
    /// Parses a `redis_url`; the error says what is wrong (it never holds the URL's userinfo).
    pub fn parse(url: &str) -> Result<Address, String> {
        let bad = |why: &str| format!("`redis_url` {why}");
        if let Some(rest) = url
            .strip_prefix("unix:")
            .or_else(|| url.strip_prefix("redis+unix:"))
        {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            if !path.starts_with('/') {
                return Err(bad("`unix:` needs an absolute socket path"));
            }
            let mut db = 0;
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("db", n)) => db = database(n).ok_or_else(|| bad("has a bad `db=`"))?,
                    _ => return Err(bad("takes only `?db=N` after a socket path")),
                }
            }
            return Ok(Address {
                target: Target::Unix(PathBuf::from(path)),
                db,
                tls: false,
            });
        }
        let (rest, tls) = match (url.strip_prefix("redis://"), url.strip_prefix("rediss://")) {
            (Some(rest), _) => (rest, false),
            (_, Some(rest)) => (rest, true),
            _ => return Err(bad("must start with `redis://`, `rediss://` or `unix:`")),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.contains('@') {
            return Err(bad(
                "must not hold a user or password: use `redis_user` and `redis_password_file`",
            ));
        }
        let (host, port) = net::host_port(authority, 6379).map_err(bad)?;
        let db = match path {
            "" => 0,
            n => database(n).ok_or_else(|| bad("has a bad database number after `/`"))?,
        };
        Ok(Address {
            target: Target::Tcp(host, port),
            db,
            tls,
        })
    }
}

/// A database number: 0 to 65535 (Redis's own limit is set by `databases`, 16 by default).
fn database(text: &str) -> Option<u32> {
    text.parse::<u16>().ok().map(u32::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16, db: u32) -> Address {
        Address {
            target: Target::Tcp(host.to_string(), port),
            db,
            tls: false,
        }
    }

    #[test]
    fn tcp_urls_name_host_port_and_database() {
        assert_eq!(
            Address::parse("redis://127.0.0.1:6379/0"),
            Ok(tcp("127.0.0.1", 6379, 0))
        );
        assert_eq!(
            Address::parse("redis://redis.example.org"),
            Ok(tcp("redis.example.org", 6379, 0))
        );
        assert_eq!(
            Address::parse("redis://[::1]:7000/3"),
            Ok(tcp("::1", 7000, 3))
        );
        let tls = Address {
            tls: true,
            ..tcp("redis.example.org", 6380, 1)
        };
        assert_eq!(Address::parse("rediss://redis.example.org:6380/1"), Ok(tls));
    }

    #[test]
    fn unix_sockets_take_a_database_in_the_query() {
        let unix = |db| Address {
            target: Target::Unix(PathBuf::from("/run/redis/redis.sock")),
            db,
            tls: false,
        };
        assert_eq!(Address::parse("unix:/run/redis/redis.sock"), Ok(unix(0)));
        assert_eq!(
            Address::parse("unix:///run/redis/redis.sock?db=2"),
            Ok(unix(2))
        );
        assert_eq!(
            Address::parse("redis+unix:///run/redis/redis.sock?db=5"),
            Ok(unix(5))
        );
    }

    #[test]
    fn passwords_and_junk_are_refused_without_echoing_secrets() {
        for url in [
            "redis://mailmfa:s3cret@127.0.0.1/0",
            "rediss://:s3cret@127.0.0.1/0",
        ] {
            let err = Address::parse(url).unwrap_err();
            assert!(err.contains("redis_password_file"), "{err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
        for junk in [
            "",
            "http://127.0.0.1",
            "redis://",
            "redis://:6379",
            "redis://host:0",
            "redis://host:99999",
            "redis://host/x",
            "redis://[::1",
            "redis://a b:6379/0",
            "redis://a\tb/0",
            "unix:relative.sock",
            "unix:/run/r.sock?timeout=1",
        ] {
            assert!(Address::parse(junk).is_err(), "{junk}");
        }
    }
}
