//! What `mailmfa doctor` and `mailmfa status` ask the Redis/Valkey server that holds the state
//! (`state = "redis"`), over the store's own connection ([`conn::with_connection`]: the same
//! URL, `AUTH`, `SELECT`, password file checks and `redis_timeout_ms`).
//!
//! [`probe`] checks, in order, and says what to fix:
//!
//! 1. the connection: connect, `AUTH`, `SELECT`, then `PING` answered `PONG`;
//! 2. the server's name and version (`INFO server`), as information;
//! 3. the ACL: every command the store runs (`UNWATCH`, `WATCH`, `GET`, `MULTI`, `SET ... EX`,
//!    `EXEC`, `DEL`), run for real on [`probe_key`] — a key in the store's key space that no
//!    login can have — which is deleted at the end (and expires within a minute if `DEL` is
//!    refused);
//! 4. `maxmemory-policy` (`CONFIG GET`): only `noeviction` keeps every state;
//! 5. persistence (`INFO persistence`, `CONFIG GET appendfsync`): AOF on, with
//!    `appendfsync always`.
//!
//! [`key_ttl`] reads how long a login's key still lives (`TTL`), for `status`.
//!
//! Nothing here prints or returns the password: the findings hold the URL (which never has
//! a password, see [`super::address`]), the user name, key names and the server's replies.
//!
//! - `acl.rs` — the ACL check: the store's commands run on the probe key, and the ACL line
//!   to fix what was refused.
//! - `server.rs` — what the server says of itself: its version, `maxmemory-policy`,
//!   persistence.
//! - `ttl.rs` — how long a login's key still lives, for `status`.
//!
//! This file holds the findings, the order of the checks and the connection's own finding.

mod acl;
mod server;
mod ttl;

pub use acl::{acl_line, probe_key, STORE_COMMANDS};
pub use ttl::{key_ttl, KeyTtl};

use self::acl::acl;
use self::server::{eviction, persistence, version};
use super::conn::{self, Connection, Failure};
use super::resp::Reply;
use super::Address;
use crate::config::Settings;

/// How a finding of [`probe`] stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// As it should be.
    Ok,
    /// Information only (the server's version).
    Info,
    /// Works, but a restart, a crash or a full memory can lose part of the state, or the
    /// doctor could not look.
    Warn,
    /// Logins with MFA are refused, or the state can be silently lost.
    Fail,
}

/// One thing [`probe`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// How it stands.
    pub level: Level,
    /// What was found, in one line.
    pub what: String,
    /// How to fix it, in one line, when there is something to fix.
    pub fix: Option<String>,
}

fn found(level: Level, what: impl Into<String>, fix: Option<String>) -> Finding {
    Finding {
        level,
        what: what.into(),
        fix,
    }
}

/// The database number of `redis_url`.
fn database(settings: &Settings) -> u32 {
    Address::parse(&settings.redis.url).map_or(0, |a| a.db)
}

/// The ACL user the store logs in as.
fn user(settings: &Settings) -> &str {
    settings.redis.user.as_deref().unwrap_or("default")
}

/// Ends the probe's work with the connection dropped (the server is left in a state the
/// probe cannot undo, such as inside `MULTI`); not a finding of its own.
const RESET: &str = "the probe left the connection unusable";

/// Checks the shared state server for `settings` as the store run by `euid` reaches it, and
/// returns what it found (see the module comment). Every command is bounded by
/// `redis_timeout_ms`.
pub fn probe(settings: &Settings, euid: u32) -> Vec<Finding> {
    let mut out = Vec::new();
    let result =
        conn::with_connection(&settings.redis, settings.record_owners(euid), &mut |conn| {
            out.clear();
            checks(conn, settings, &mut out)
        });
    match result {
        Ok(()) => {}
        Err(why) if why == RESET => {}
        Err(why) if out.is_empty() => out.push(unreachable(settings, &why)),
        Err(why) => out.push(found(
            Level::Fail,
            format!(
                "{} stopped answering during the checks: {why}",
                settings.redis.url
            ),
            Some("check the server's log; run `mailmfa doctor` again".to_string()),
        )),
    }
    out
}

/// The finding for a connection that could not be opened (or did not answer `PING`).
fn unreachable(settings: &Settings, why: &str) -> Finding {
    let redis = &settings.redis;
    let fix = if why.contains("AUTH refused") || why.contains("redis_password_file") {
        format!(
            "check redis_user ({}) and the password on the first line of redis_password_file \
             (mode 0600, owned by root or this user) against the server's ACL",
            user(settings)
        )
    } else if why.contains("NOAUTH") {
        "the server wants a password: set redis_password_file (and redis_user for an ACL user)"
            .to_string()
    } else if why.contains("SELECT refused: NOPERM") {
        format!(
            "`ACL SETUSER {} +select` (redis_url names database {}), or use database 0",
            user(settings),
            database(settings)
        )
    } else if why.contains("SELECT refused") {
        "use a database number the server has (`databases` in redis.conf) in redis_url".to_string()
    } else if why.contains("within redis_timeout_ms") {
        format!(
            "check that the server runs and the network lets this host reach it, or raise \
             redis_timeout_ms ({} ms now)",
            redis.timeout_ms
        )
    } else {
        "start the Redis/Valkey server, or correct redis_url".to_string()
    };
    found(
        Level::Fail,
        format!(
            "cannot use the shared state at {}: {why}: every login with MFA is refused \
             (state_unavailable)",
            redis.url
        ),
        Some(fix),
    )
}

/// Every check on an open connection; `Err` only when the connection failed (or must be
/// dropped: [`RESET`]).
fn checks(
    conn: &mut Connection,
    settings: &Settings,
    out: &mut Vec<Finding>,
) -> Result<(), Failure> {
    let url = &settings.redis.url;
    let as_user = user(settings);
    match conn.call(&[b"PING"])? {
        Reply::Status(s) if s == "PONG" => out.push(found(
            Level::Ok,
            format!("{url} answers (connect, AUTH as {as_user}, SELECT, PING)"),
            None,
        )),
        Reply::Error(e) if e.starts_with("NOPERM") => out.push(found(
            Level::Warn,
            format!("{url} accepts the login of {as_user}, but PING is not allowed to it"),
            Some(format!("ACL SETUSER {as_user} +ping")),
        )),
        Reply::Error(e) => return Err(format!("PING refused: {e}")),
        _ => return Err("PING: unexpected reply".to_string()),
    }
    out.push(version(conn)?);
    acl(conn, settings, out)?;
    out.push(eviction(conn)?);
    out.extend(persistence(conn)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unusable_server_is_a_failure_with_the_fix_for_its_cause() {
        let mut settings = Settings::default();
        settings.redis.url = "redis://127.0.0.1:6379/4".to_string();
        let fix = |why: &str| {
            let f = unreachable(&settings, why);
            assert_eq!(f.level, Level::Fail);
            assert!(f.what.contains("state_unavailable"), "{}", f.what);
            f.fix.unwrap()
        };
        assert!(fix("cannot connect to 127.0.0.1:6379: Connection refused").contains("start"));
        assert!(
            fix("AUTH refused: WRONGPASS invalid username-password pair")
                .contains("redis_password_file")
        );
        assert!(fix("PING refused: NOAUTH Authentication required.")
            .contains("set redis_password_file"));
        assert!(fix(
            "SELECT refused: NOPERM this user has no permissions to run the 'select' \
                     command"
        )
        .contains("ACL SETUSER default +select` (redis_url names database 4)"));
        assert!(fix("SELECT refused: ERR DB index is out of range").contains("databases"));
        assert!(fix("no answer within redis_timeout_ms").contains("250 ms"));
    }
}
