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

use super::conn::{self, Connection, Failure};
use super::resp::Reply;
use super::{Address, RedisStore};
use crate::config::Settings;
use crate::login::Login;

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

/// The commands the state store runs, in the order the probe tries them.
pub const STORE_COMMANDS: [&str; 7] = ["UNWATCH", "WATCH", "GET", "MULTI", "SET", "EXEC", "DEL"];

/// The key the probe writes and deletes: `<redis_prefix>{#doctor}:state`. It has the shape
/// of a state key (so every ACL key pattern that covers the states covers it) but `#` is no
/// login character, so it is never a login's state.
pub fn probe_key(settings: &Settings) -> String {
    format!("{}{{#doctor}}:state", settings.redis.prefix)
}

/// The ACL line that gives the store's user what it needs (`>PASSWORD` stands for the
/// password of `redis_password_file`; `+select` is there for a database other than 0, `+ttl`
/// for `mailmfa status`, `+info` for the doctor's persistence check).
pub fn acl_line(settings: &Settings) -> String {
    let select = if database(settings) != 0 {
        " +select"
    } else {
        ""
    };
    format!(
        "user {} on >PASSWORD ~{}* +ping{select} +get +set +del +watch +unwatch +multi +exec \
         +ttl +info",
        user(settings),
        glob_escape(&settings.redis.prefix)
    )
}

/// The database number of `redis_url`.
fn database(settings: &Settings) -> u32 {
    Address::parse(&settings.redis.url).map_or(0, |a| a.db)
}

/// The ACL user the store logs in as.
fn user(settings: &Settings) -> &str {
    settings.redis.user.as_deref().unwrap_or("default")
}

/// `prefix` as a literal in an ACL key pattern.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
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

/// `INFO server`: the server's name and version.
fn version(conn: &mut Connection) -> Result<Finding, Failure> {
    Ok(match info(conn, "server")? {
        Ok(text) => {
            let valkey = field(&text, "valkey_version");
            let (name, version) = match valkey {
                Some(v) => ("Valkey", Some(v)),
                None => ("Redis", field(&text, "redis_version")),
            };
            found(
                Level::Info,
                format!("server: {name} {}", version.unwrap_or("(version unknown)")),
                None,
            )
        }
        Err(e) => found(
            Level::Info,
            format!("server: version unknown ({})", refused_because(&e, "INFO")),
            None,
        ),
    })
}

/// `INFO section`: `Ok(Ok(text))`, or `Ok(Err(error))` when the server refused it.
fn info(conn: &mut Connection, section: &str) -> Result<Result<String, String>, Failure> {
    match conn.call(&[b"INFO", section.as_bytes()])? {
        Reply::Bulk(bytes) => Ok(Ok(String::from_utf8_lossy(&bytes).into_owned())),
        Reply::Error(e) => Ok(Err(e)),
        _ => Err("INFO: unexpected reply".to_string()),
    }
}

/// The value of `name:value` in an `INFO` reply.
fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// `CONFIG GET parameter`: `Ok(Ok(value))`, or `Ok(Err(error))` when the server refused it.
fn config_get(conn: &mut Connection, parameter: &str) -> Result<Result<String, String>, Failure> {
    match conn.call(&[b"CONFIG", b"GET", parameter.as_bytes()])? {
        Reply::Array(items) => match items.as_slice() {
            [_, Reply::Bulk(value)] => Ok(Ok(String::from_utf8_lossy(value).into_owned())),
            _ => Ok(Err(format!("no `{parameter}` in the reply"))),
        },
        Reply::Error(e) => Ok(Err(e)),
        _ => Err("CONFIG GET: unexpected reply".to_string()),
    }
}

/// Why a `CONFIG`/`INFO` could not be read, in a few words.
fn refused_because(error: &str, command: &str) -> String {
    if error.contains("NOPERM") {
        format!("{command} not allowed")
    } else {
        format!("{command} refused: {error}")
    }
}

/// What the ACL refused, as the probe ran the store's commands.
#[derive(Default)]
struct Refusals {
    /// Commands the user may not run.
    commands: Vec<&'static str>,
    /// The user may not touch keys under the prefix.
    keys: bool,
    /// Other refusals (out of memory, a read-only replica...), with the command.
    other: Vec<String>,
}

impl Refusals {
    /// Files an error reply of `command`: a refused command, refused keys, or another error.
    fn note(&mut self, command: &'static str, error: &str) {
        if !error.contains("NOPERM") {
            self.other.push(format!("{command}: {error}"));
        } else if error.contains("key") {
            self.keys = true;
        } else if !self.commands.contains(&command) {
            self.commands.push(command);
        }
    }

    /// Checks a reply that must be `+expected`.
    fn expect(&mut self, command: &'static str, reply: Reply, expected: &str) -> bool {
        match reply {
            Reply::Status(s) if s == expected => true,
            Reply::Error(e) => {
                self.note(command, &e);
                false
            }
            other => {
                self.other
                    .push(format!("{command}: unexpected reply {other:?}"));
                false
            }
        }
    }
}

/// Runs the store's commands on the probe key, as one of its transactions does.
fn acl(conn: &mut Connection, settings: &Settings, out: &mut Vec<Finding>) -> Result<(), Failure> {
    let key = probe_key(settings);
    let k = key.as_bytes();
    let mut r = Refusals::default();
    let unwatch = conn.call(&[b"UNWATCH"])?;
    r.expect("UNWATCH", unwatch, "OK");
    let watch = conn.call(&[b"WATCH", k])?;
    r.expect("WATCH", watch, "OK");
    match conn.call(&[b"GET", k])? {
        Reply::Nil | Reply::Bulk(_) => {}
        Reply::Error(e) if e.starts_with("WRONGTYPE") => {}
        Reply::Error(e) => r.note("GET", &e),
        other => r.other.push(format!("GET: unexpected reply {other:?}")),
    }
    let multi = conn.call(&[b"MULTI"])?;
    let in_multi = r.expect("MULTI", multi, "OK");
    let set = conn.call(&[b"SET", k, b"mailmfa doctor probe", b"EX", b"60"])?;
    r.expect("SET", set, if in_multi { "QUEUED" } else { "OK" });
    if in_multi {
        match conn.call(&[b"EXEC"])? {
            // The watched key changed in between: only another doctor writes it.
            Reply::Nil => {}
            Reply::Array(replies) => match replies.as_slice() {
                [Reply::Status(s)] if s == "OK" => {}
                [Reply::Error(e)] => r.note("SET", e),
                _ => r.other.push("EXEC: unexpected reply".to_string()),
            },
            // The transaction was dropped because SET was refused (already noted), or EXEC
            // itself was (Redis 7 says so in the EXECABORT).
            Reply::Error(e) if e.starts_with("EXECABORT") => {
                if e.contains("NOPERM") {
                    r.note("EXEC", &e);
                }
            }
            Reply::Error(e) => {
                r.note("EXEC", &e);
                // Still inside MULTI: leave it, or drop the connection.
                if !matches!(conn.call(&[b"DISCARD"])?, Reply::Status(s) if s == "OK") {
                    report_acl(settings, &key, &r, out);
                    return Err(RESET.to_string());
                }
            }
            _ => r.other.push("EXEC: unexpected reply".to_string()),
        }
    }
    match conn.call(&[b"DEL", k])? {
        Reply::Integer(_) => {}
        Reply::Error(e) => r.note("DEL", &e),
        other => r.other.push(format!("DEL: unexpected reply {other:?}")),
    }
    // Whatever WATCH is left (MULTI refused): the connection is the store's. Its reply was
    // judged above.
    conn.call(&[b"UNWATCH"])?;
    report_acl(settings, &key, &r, out);
    Ok(())
}

/// The findings of [`acl`].
fn report_acl(settings: &Settings, key: &str, r: &Refusals, out: &mut Vec<Finding>) {
    let as_user = user(settings);
    let prefix = &settings.redis.prefix;
    let mut clean = true;
    if !r.commands.is_empty() {
        clean = false;
        let names = r.commands.join(", ");
        let plus: Vec<String> = r
            .commands
            .iter()
            .map(|c| format!("+{}", c.to_lowercase()))
            .collect();
        out.push(found(
            Level::Fail,
            format!(
                "the ACL of user {as_user} refuses {names}, which the state store runs: every \
                 login with MFA is refused (state_unavailable)"
            ),
            Some(format!(
                "`ACL SETUSER {as_user} {}`, and in the ACL file or redis.conf: `{}`",
                plus.join(" "),
                acl_line(settings)
            )),
        ));
    }
    if r.keys {
        clean = false;
        out.push(found(
            Level::Fail,
            format!(
                "the ACL of user {as_user} refuses the keys {prefix}* (tried {key}): every \
                 login with MFA is refused (state_unavailable)"
            ),
            Some(format!(
                "`ACL SETUSER {as_user} ~{}*`, and in the ACL file or redis.conf: `{}`",
                glob_escape(prefix),
                acl_line(settings)
            )),
        ));
    }
    for other in &r.other {
        clean = false;
        let fix = if other.contains("READONLY") {
            "redis_url names a read-only replica: point it at the primary"
        } else if other.contains("OOM") {
            "the server is out of memory (maxmemory): raise maxmemory or free memory"
        } else if other.contains("MISCONF") {
            "the server refuses writes after a failed RDB save: fix its disk or `dir`, see its log"
        } else {
            "see the server's log"
        };
        out.push(found(
            Level::Fail,
            format!("the server refused a state write ({other}): logins with MFA are refused"),
            Some(fix.to_string()),
        ));
    }
    if clean {
        out.push(found(
            Level::Ok,
            format!(
                "user {as_user} may run {} on {prefix}* (tried on {key}, deleted)",
                STORE_COMMANDS.join(", ")
            ),
            None,
        ));
    }
}

/// `maxmemory-policy`: only `noeviction` never drops a state.
fn eviction(conn: &mut Connection) -> Result<Finding, Failure> {
    Ok(match config_get(conn, "maxmemory-policy")? {
        Ok(policy) if policy == "noeviction" => found(
            Level::Ok,
            "maxmemory-policy is noeviction: no state is ever evicted",
            None,
        ),
        Ok(policy) => found(
            Level::Fail,
            format!(
                "maxmemory-policy is {policy}: when memory runs short the server evicts keys, \
                 and an evicted state forgets used codes and used recovery codes (they work \
                 again) and resets the throttle"
            ),
            Some(
                "`CONFIG SET maxmemory-policy noeviction` and `maxmemory-policy noeviction` in \
                 redis.conf (or a server of its own for mailmfa)"
                    .to_string(),
            ),
        ),
        Err(e) => found(
            Level::Warn,
            format!(
                "cannot read maxmemory-policy ({}): make sure it is noeviction",
                refused_because(&e, "CONFIG")
            ),
            Some("`maxmemory-policy noeviction` in redis.conf".to_string()),
        ),
    })
}

/// AOF on (`aof_enabled:1`) with `appendfsync always`.
fn persistence(conn: &mut Connection) -> Result<Vec<Finding>, Failure> {
    let text = match info(conn, "persistence")? {
        Ok(text) => text,
        Err(e) => {
            return Ok(vec![found(
                Level::Warn,
                format!(
                    "cannot read the persistence settings ({}): make sure appendonly is yes \
                     and appendfsync always",
                    refused_because(&e, "INFO")
                ),
                Some("`appendonly yes` and `appendfsync always` in redis.conf".to_string()),
            )])
        }
    };
    if field(&text, "aof_enabled") != Some("1") {
        return Ok(vec![found(
            Level::Warn,
            "AOF is off (appendonly no): a restart of the server forgets the throttle and the \
             last used steps, and the used recovery codes unless an RDB snapshot saved them",
            Some(
                "`appendonly yes` and `appendfsync always` in redis.conf (live: `CONFIG SET \
                 appendonly yes`)"
                    .to_string(),
            ),
        )]);
    }
    Ok(vec![match config_get(conn, "appendfsync")? {
        Ok(fsync) if fsync == "always" => found(
            Level::Ok,
            "AOF is on with appendfsync always: every state change is on disk before the server answers",
            None,
        ),
        Ok(fsync) => found(
            Level::Warn,
            format!(
                "AOF is on, but appendfsync is {fsync}: a recovery code used in the last second \
                 before a crash of the server's machine can be used again"
            ),
            Some(
                "`appendfsync always` in redis.conf (live: `CONFIG SET appendfsync always`)"
                    .to_string(),
            ),
        ),
        Err(e) => found(
            Level::Warn,
            format!(
                "AOF is on; cannot read appendfsync ({}): make sure it is always",
                refused_because(&e, "CONFIG")
            ),
            Some("`appendfsync always` in redis.conf".to_string()),
        ),
    }])
}

/// How long a login's key lives, as `TTL` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyTtl {
    /// No key: the server remembers nothing of the login.
    Missing,
    /// No expiry: the state remembers used recovery codes.
    Kept,
    /// Expires in this many seconds.
    Seconds(u64),
    /// The server refused `TTL` (not in the ACL): the error.
    Refused(String),
}

/// The key of `login`'s state and how long it lives. `Err`: the server could not be used
/// (down, slow, `AUTH` refused...), with why.
pub fn key_ttl(settings: &Settings, euid: u32, login: &Login) -> Result<(String, KeyTtl), Failure> {
    let key = RedisStore::new(settings, euid).key(login);
    let ttl =
        conn::with_connection(
            &settings.redis,
            settings.record_owners(euid),
            &mut |conn| match conn.call(&[b"TTL", key.as_bytes()])? {
                Reply::Integer(-2) => Ok(KeyTtl::Missing),
                Reply::Integer(-1) => Ok(KeyTtl::Kept),
                Reply::Integer(n) if n >= 0 => Ok(KeyTtl::Seconds(n as u64)),
                Reply::Error(e) => Ok(KeyTtl::Refused(e)),
                _ => Err("TTL: unexpected reply".to_string()),
            },
        )?;
    Ok((key, ttl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_key_is_a_state_key_no_login_has() {
        let settings = Settings::default();
        let key = probe_key(&settings);
        assert_eq!(key, "mailmfa:{#doctor}:state");
        assert!(key.ends_with("}:state"));
        assert!(Login::parse(b"#doctor").is_err());
    }

    #[test]
    fn the_acl_line_names_the_user_the_prefix_and_no_password() {
        let mut settings = Settings::default();
        settings.redis.user = Some("mailmfa".to_string());
        settings.redis.prefix = "mf*a:".to_string();
        let line = acl_line(&settings);
        assert!(
            line.starts_with("user mailmfa on >PASSWORD ~mf\\*a:* "),
            "{line}"
        );
        for c in STORE_COMMANDS {
            assert!(line.contains(&format!("+{}", c.to_lowercase())), "{c}");
        }
    }

    #[test]
    fn refusals_name_commands_keys_and_other_errors() {
        let mut r = Refusals::default();
        r.note(
            "WATCH",
            "NOPERM this user has no permissions to run the 'watch' command",
        );
        r.note(
            "GET",
            "NOPERM this user has no permissions to access one of the keys used as arguments",
        );
        r.note(
            "SET",
            "OOM command not allowed when used memory > 'maxmemory'.",
        );
        assert_eq!(r.commands, ["WATCH"]);
        assert!(r.keys);
        assert_eq!(r.other.len(), 1);
        let mut out = Vec::new();
        report_acl(&Settings::default(), "k", &r, &mut out);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|f| f.level == Level::Fail));
        assert!(out[0].what.contains("refuses WATCH"), "{}", out[0].what);
        assert!(out[0].fix.as_deref().unwrap().contains("+watch"));
        assert!(out[2].fix.as_deref().unwrap().contains("maxmemory"));
    }

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

    #[test]
    fn info_fields_are_read_by_name() {
        let text = "# Server\r\nredis_version:7.0.15\r\nvalkey_version:8.0.1\r\naof_enabled:1\r\n";
        assert_eq!(field(text, "redis_version"), Some("7.0.15"));
        assert_eq!(field(text, "valkey_version"), Some("8.0.1"));
        assert_eq!(field(text, "aof_enabled"), Some("1"));
        assert_eq!(field(text, "aof"), None);
    }
}
