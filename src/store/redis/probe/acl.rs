//! The ACL check of [`probe`](super::probe): every command the state store runs (`UNWATCH`,
//! `WATCH`, `GET`, `MULTI`, `SET ... EX`, `EXEC`, `DEL`), run for real on [`probe_key`], and
//! what to fix for each refusal, with the ACL line that gives the store's user what it needs.

use super::{database, found, user, Finding, Level, RESET};
use crate::config::Settings;
use crate::store::redis::conn::{Connection, Failure};
use crate::store::redis::resp::Reply;

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
pub(super) fn acl(
    conn: &mut Connection,
    settings: &Settings,
    out: &mut Vec<Finding>,
) -> Result<(), Failure> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::login::Login;

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
}
