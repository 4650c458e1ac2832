//! What the server says of itself, for [`probe`](super::probe): its name and version (`INFO
//! server`), `maxmemory-policy` (only `noeviction` keeps every state) and persistence (AOF on,
//! with `appendfsync always`).

use super::{found, Finding, Level};
use crate::store::redis::conn::{Connection, Failure};
use crate::store::redis::resp::Reply;

/// `INFO server`: the server's name and version.
pub(super) fn version(conn: &mut Connection) -> Result<Finding, Failure> {
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

/// `maxmemory-policy`: only `noeviction` never drops a state.
pub(super) fn eviction(conn: &mut Connection) -> Result<Finding, Failure> {
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
pub(super) fn persistence(conn: &mut Connection) -> Result<Vec<Finding>, Failure> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_are_read_by_name() {
        let text = "# Server\r\nredis_version:7.0.15\r\nvalkey_version:8.0.1\r\naof_enabled:1\r\n";
        assert_eq!(field(text, "redis_version"), Some("7.0.15"));
        assert_eq!(field(text, "valkey_version"), Some("8.0.1"));
        assert_eq!(field(text, "aof_enabled"), Some("1"));
        assert_eq!(field(text, "aof"), None);
    }
}
