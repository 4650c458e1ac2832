//! Every setting: its type, its default, and [`Settings::set`], the one parser of an option by
//! its name (`mailmfa.toml` and the pam.d line both go through it), with the check of each value.

use crate::notify::NotifySettings;
use crate::store::secure::Owners;
use std::net::Ipv6Addr;
use std::path::PathBuf;

/// When a code step that was already accepted may be accepted again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// The same step is accepted again only from the client address that used it first, so
    /// that a mail client's parallel connections all get in (the default).
    SameClient,
    /// A step is accepted once, ever.
    Never,
}

/// Every setting, after the file and the module arguments were applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Directory of the per-user records (`<login>.toml`).
    pub record_dir: PathBuf,
    /// Directory of the per-user state (`<login>.state`).
    pub state_dir: PathBuf,
    /// Steps accepted before and after the current one (RFC 6238 recommends 1).
    pub window: u64,
    /// Replay policy.
    pub reuse: Reuse,
    /// Seconds after its first use during which the exact code that a client address used
    /// is accepted again from that address (IPv6: its /64), past the code's own 30 s; 0: off.
    pub reuse_for: u64,
    /// Deny logins that have no record (MFA mandatory).
    pub require: bool,
    /// Failed codes (after a right password) from one client address within `fail_interval`
    /// after which that client is refused.
    pub max_failures: u32,
    /// Failed codes from all client addresses together within `fail_interval` after which the
    /// login is refused from everywhere.
    pub max_failures_user: u32,
    /// Seconds a failed code counts against the throttle.
    pub fail_interval: u64,
    /// Issuer shown in authenticator apps (the command's `otpauth://` URIs).
    pub issuer: String,
    /// Code length of new enrolments: 6 or 8.
    pub digits: u32,
    /// Step length in seconds of new enrolments.
    pub period: u64,
    /// Network-specific NAT64 prefixes (`/96`, stored with their last 32 bits zero): an
    /// address in one of them is the IPv4 client it carries, like one in the well-known
    /// `64:ff9b::/96`, which always applies (see [`crate::auth::client_key`]).
    pub nat64_prefixes: Vec<Ipv6Addr>,
    /// A uid besides root and the running user that may own the record directory, the
    /// records and the pending enrolments (the web panel's user); never the state.
    pub record_owner: Option<u32>,
    /// The `[panel]` table of `mailmfa.toml`, kept as written: the web panel reads it, the
    /// library does not check it.
    pub panel: Option<toml::Table>,
    /// Where the state lives: files in `state_dir` (the default) or a Redis/Valkey server
    /// shared by several mail servers.
    pub state: StateBackend,
    /// The Redis/Valkey server, used when `state` is [`StateBackend::Redis`].
    pub redis: RedisSettings,
    /// `records`: where the records are kept.
    pub records: RecordsBackend,
    /// The SQL database, used when `records` is [`RecordsBackend::Sql`].
    pub sql: SqlSettings,
    /// The `[notify]` table: mails to the owners about changes and alerts.
    pub notify: NotifySettings,
}

/// `state`: where the login state (last step, throttle, one-time uses) is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateBackend {
    /// `state = "files"`: one file per login in `state_dir` (one server).
    Files,
    /// `state = "redis"`: one key per login on a Redis/Valkey server shared by every mail
    /// server (`state_dir` then holds only the per-login lock files).
    Redis,
}

/// `records`: where the records (secret, app passwords, recovery codes) are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordsBackend {
    /// `records = "files"`: one file per login in `record_dir`.
    Files,
    /// `records = "sql"`: one row per login in PostgreSQL or MariaDB/MySQL, sealed with the
    /// key in `sql_key_file` (docs/sql.md).
    Sql,
}

/// The `sql_*` settings (docs/sql.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlSettings {
    /// `sql_url`: `postgresql://user@host[:port]/database` or `mysql://user@host/database`,
    /// a Unix socket in the query (see [`crate::store::sql::address`]); never a password.
    pub url: String,
    /// `sql_password_file`: a file (mode 0600) holding the database password on its first line.
    pub password_file: Option<PathBuf>,
    /// `sql_key_file`: the keys that seal the records (mode 0600; [`crate::store::sql::seal`]).
    pub key_file: Option<PathBuf>,
    /// `sql_timeout_ms`: the longest the connect, and each statement, may take.
    pub timeout_ms: u64,
    /// `sql_tls_ca_file`: the CA certificates (PEM) a TLS server's certificate must chain to;
    /// none: the system's.
    pub tls_ca_file: Option<PathBuf>,
    /// `sql_tls_cert_file`: a client certificate chain (PEM), with `tls_key_file`.
    pub tls_cert_file: Option<PathBuf>,
    /// `sql_tls_key_file`: the client certificate's private key (PEM, mode 0600).
    pub tls_key_file: Option<PathBuf>,
}

impl Default for SqlSettings {
    fn default() -> Self {
        SqlSettings {
            url: "postgresql://mailmfa@/mail?host=/run/postgresql".to_string(),
            password_file: None,
            key_file: None,
            timeout_ms: 500,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

/// The `redis_*` settings (docs/redis.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisSettings {
    /// `redis_url`: `redis://host:port/db` or `unix:/path/to/socket?db=N`; never with a
    /// password in it (that comes from `password_file`).
    pub url: String,
    /// `redis_prefix`: the start of every key, so that several installations can share a server.
    pub prefix: String,
    /// `redis_user`: the ACL user to log in as (`AUTH user password`); none: `AUTH password`
    /// (the `default` user) when a password file is given.
    pub user: Option<String>,
    /// `redis_password_file`: a file (mode 0600, owned by root or the running user) holding the
    /// password on its first line.
    pub password_file: Option<PathBuf>,
    /// `redis_timeout_ms`: the longest the connect, and each command, may take.
    pub timeout_ms: u64,
    /// `redis_tls_ca_file`: the CA certificates (PEM) a `rediss://` server's certificate must
    /// chain to; none: the system's (`/etc/ssl/certs/ca-certificates.crt`).
    pub tls_ca_file: Option<PathBuf>,
    /// `redis_tls_cert_file`: a client certificate chain (PEM) for servers that ask for one
    /// (`tls-auth-clients`); with `tls_key_file`.
    pub tls_cert_file: Option<PathBuf>,
    /// `redis_tls_key_file`: the client certificate's private key (PEM, mode 0600).
    pub tls_key_file: Option<PathBuf>,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: "redis://127.0.0.1:6379/0".to_string(),
            prefix: "mailmfa:".to_string(),
            user: None,
            password_file: None,
            timeout_ms: 250,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            record_dir: PathBuf::from("/var/lib/mailmfa/users"),
            state_dir: PathBuf::from("/var/lib/mailmfa/state"),
            window: 1,
            reuse: Reuse::SameClient,
            reuse_for: 0,
            require: false,
            max_failures: 5,
            max_failures_user: 20,
            fail_interval: 900,
            issuer: "mailmfa".to_string(),
            digits: 6,
            period: 30,
            nat64_prefixes: Vec::new(),
            record_owner: None,
            panel: None,
            state: StateBackend::Files,
            redis: RedisSettings::default(),
            records: RecordsBackend::Files,
            sql: SqlSettings::default(),
            notify: NotifySettings::default(),
        }
    }
}

impl Settings {
    /// Sets one option by its name, as written in `mailmfa.toml` and on the pam.d line.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "record_dir" => self.record_dir = absolute_path(key, value)?,
            "state_dir" => self.state_dir = absolute_path(key, value)?,
            "window" => self.window = number(key, value, 0, 10)?,
            "reuse" => {
                self.reuse = match value {
                    "same-client" => Reuse::SameClient,
                    "never" => Reuse::Never,
                    _ => {
                        return Err(format!(
                            "`reuse` must be `same-client` or `never`, not `{value}`"
                        ))
                    }
                }
            }
            "reuse_for" => {
                self.reuse_for = parse_duration(value)
                    .filter(|d| *d <= MAX_REUSE_FOR)
                    .ok_or_else(|| format!("`reuse_for` must be a duration up to 30d (e.g. 0, 900, 15m, 8h), not `{value}`"))?
            }
            "require" => self.require = boolean(key, value)?,
            "max_failures" => self.max_failures = number(key, value, 1, MAX_FAILURES_LIMIT)? as u32,
            "max_failures_user" => {
                self.max_failures_user = number(key, value, 1, MAX_FAILURES_LIMIT)? as u32
            }
            "fail_interval" => self.fail_interval = number(key, value, 30, 86400)?,
            "issuer" => {
                if value.is_empty() || value.contains(':') || value.chars().any(char::is_control) {
                    return Err("`issuer` must be non-empty text without `:`".to_string());
                }
                self.issuer = value.to_string();
            }
            "digits" => {
                self.digits = match value {
                    "6" => 6,
                    "8" => 8,
                    _ => return Err(format!("`digits` must be 6 or 8, not `{value}`")),
                }
            }
            "period" => self.period = number(key, value, 15, 300)?,
            "nat64_prefixes" => self.nat64_prefixes = nat64_prefixes(value)?,
            "record_owner" => self.record_owner = Some(record_owner(value)?),
            "state" => {
                self.state = match value {
                    "files" => StateBackend::Files,
                    "redis" => StateBackend::Redis,
                    _ => return Err(format!("`state` must be `files` or `redis`, not `{value}`")),
                }
            }
            "redis_url" => {
                crate::store::redis::Address::parse(value)?;
                self.redis.url = value.to_string();
            }
            "redis_prefix" => {
                if value.is_empty()
                    || value.len() > 64
                    || !value.bytes().all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}')
                {
                    return Err(
                        "`redis_prefix` must be 1 to 64 printable characters without spaces, `{` or `}`"
                            .to_string(),
                    );
                }
                self.redis.prefix = value.to_string();
            }
            "redis_user" => {
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err("`redis_user` must be a user name without spaces".to_string());
                }
                self.redis.user = Some(value.to_string());
            }
            "redis_password_file" => {
                self.redis.password_file = Some(absolute_path(key, value)?)
            }
            "redis_timeout_ms" => self.redis.timeout_ms = number(key, value, 10, 5000)?,
            "redis_tls_ca_file" => self.redis.tls_ca_file = Some(absolute_path(key, value)?),
            "redis_tls_cert_file" => self.redis.tls_cert_file = Some(absolute_path(key, value)?),
            "redis_tls_key_file" => self.redis.tls_key_file = Some(absolute_path(key, value)?),
            "records" => {
                self.records = match value {
                    "files" => RecordsBackend::Files,
                    "sql" => RecordsBackend::Sql,
                    _ => return Err(format!("`records` must be `files` or `sql`, not `{value}`")),
                }
            }
            "sql_url" => {
                crate::store::sql::address::Address::parse(value)?;
                self.sql.url = value.to_string();
            }
            "sql_password_file" => self.sql.password_file = Some(absolute_path(key, value)?),
            "sql_key_file" => self.sql.key_file = Some(absolute_path(key, value)?),
            "sql_timeout_ms" => self.sql.timeout_ms = number(key, value, 10, 10000)?,
            "sql_tls_ca_file" => self.sql.tls_ca_file = Some(absolute_path(key, value)?),
            "sql_tls_cert_file" => self.sql.tls_cert_file = Some(absolute_path(key, value)?),
            "sql_tls_key_file" => self.sql.tls_key_file = Some(absolute_path(key, value)?),
            _ => return Err(format!("unknown option `{key}`")),
        }
        Ok(())
    }
}

impl Settings {
    /// Who may own the record directory, records and pending enrolments for a process
    /// running as `euid`: root, `euid` and the `record_owner`.
    pub fn record_owners(&self, euid: u32) -> Owners {
        Owners {
            euid,
            extra: self.record_owner,
        }
    }
}

/// `record_owner`: a uid, or a user name looked up in /etc/passwd (without NSS).
fn record_owner(value: &str) -> Result<u32, String> {
    if let Ok(uid) = value.parse::<u32>() {
        return Ok(uid);
    }
    crate::users::uid_of(value).ok_or_else(|| {
        format!("`record_owner` must be a uid or a user in /etc/passwd; there is no user `{value}`")
    })
}

/// Highest `max_failures` and `max_failures_user`: each counted failure is one entry in the
/// state file, which must stay well under the 64 KiB the module reads.
pub const MAX_FAILURES_LIMIT: u64 = 200;

/// Longest `reuse_for`: 30 days.
pub const MAX_REUSE_FOR: u64 = 30 * 86400;

/// Parses a duration: whole seconds (`900`) or a number with one unit `s`, `m`, `h`, `d`
/// (`15m`, `8h`, `90d`). `None` when it is not one.
pub fn parse_duration(text: &str) -> Option<u64> {
    let (number, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(scale)
}

/// Parses `nat64_prefixes`: IPv6 `/96` prefixes separated by commas (the pam.d form; a list
/// in `mailmfa.toml` arrives joined), each with its last 32 bits zero; empty: none.
fn nat64_prefixes(value: &str) -> Result<Vec<Ipv6Addr>, String> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(|item| {
            let item = item.trim();
            item.strip_suffix("/96")
                .and_then(|address| address.parse::<Ipv6Addr>().ok())
                .filter(|prefix| prefix.segments()[6..] == [0, 0])
                .ok_or_else(|| {
                    format!("`nat64_prefixes` must be IPv6 /96 prefixes such as `2001:db8:64::/96`, not `{item}`")
                })
        })
        .collect()
}

/// An absolute path, rebuilt from its components: `/var/lib/mailmfa/users/` becomes
/// `/var/lib/mailmfa/users`, so that the `lstat` of the directory itself sees a symlink there
/// instead of following it (a trailing slash makes the kernel follow).
pub(crate) fn absolute_path(key: &str, value: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(value);
    if !path.is_absolute() {
        return Err(format!("`{key}` must be an absolute path"));
    }
    Ok(path.components().collect())
}

fn number(key: &str, value: &str, min: u64, max: u64) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{key}` must be a whole number from {min} to {max}, not `{value}`"
        )),
    }
}

fn boolean(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("`{key}` must be true or false, not `{value}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::args;
    use std::path::Path;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("900"), Some(900));
        assert_eq!(parse_duration("15m"), Some(900));
        assert_eq!(parse_duration("8h"), Some(28800));
        assert_eq!(parse_duration("90d"), Some(90 * 86400));
        for bad in ["", "h", "1.5h", "-1", "10w", "1 h", "99999999999999999999d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert!(args("verify reuse_for=31d").is_err());
        assert_eq!(
            args("verify reuse_for=8h")
                .unwrap()
                .settings("")
                .unwrap()
                .reuse_for,
            28800
        );
    }

    #[test]
    fn trailing_slashes_are_dropped_from_paths() {
        let s = args("split record_dir=/srv/users/ state_dir=/srv//state")
            .unwrap()
            .settings("")
            .unwrap();
        assert_eq!(s.record_dir, PathBuf::from("/srv/users"));
        assert_eq!(s.state_dir, PathBuf::from("/srv/state"));
    }

    #[test]
    fn nat64_prefixes_are_a_list_in_the_file_and_comma_separated_on_the_pam_d_line() {
        let prefix = |text: &str| text.parse::<Ipv6Addr>().unwrap();
        let file = "nat64_prefixes = [\"2001:db8:64::/96\", \"64:ff9b:1:2::/96\"]\n";
        let both = vec![prefix("2001:db8:64::"), prefix("64:ff9b:1:2::")];
        let path = Path::new("/x");
        assert_eq!(
            Settings::from_toml(file, path).unwrap().nat64_prefixes,
            both
        );
        let line = "verify nat64_prefixes=2001:db8:64::/96,64:ff9b:1:2::/96";
        assert_eq!(
            args(line).unwrap().settings("").unwrap().nat64_prefixes,
            both
        );
        assert_eq!(
            args("verify nat64_prefixes=")
                .unwrap()
                .settings(file)
                .unwrap(),
            Settings::default(),
            "an empty value on the pam.d line turns the file's prefixes off"
        );
        assert!(Settings::from_toml("nat64_prefixes = []", path)
            .unwrap()
            .nat64_prefixes
            .is_empty());
        for bad in [
            "2001:db8:64::/64",
            "2001:db8:64::1/96",
            "2001:db8:64::",
            "192.0.2.0/24",
            "2001:db8:64::/96,",
            "2001:db8:64::/96,,64:ff9b::/96",
        ] {
            assert!(
                args(&format!("verify nat64_prefixes={bad}")).is_err(),
                "{bad}"
            );
        }
        for bad in [
            "nat64_prefixes = [1]",
            "nat64_prefixes = [[\"x\"]]",
            "window = [\"1\"]",
        ] {
            assert!(Settings::from_toml(bad, path).is_err(), "{bad}");
        }
    }

    #[test]
    fn record_owner_is_a_uid_or_a_user_name() {
        let path = Path::new("/etc/mailmfa.toml");
        let settings = Settings::from_toml("record_owner = 998", path).unwrap();
        assert_eq!(settings.record_owner, Some(998));
        assert_eq!(settings.record_owners(0).extra, Some(998));
        let settings = Settings::from_toml("record_owner = \"root\"", path).unwrap();
        assert_eq!(settings.record_owner, Some(0));
        let err = Settings::from_toml("record_owner = \"no-such-user-mailmfa\"", path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no user `no-such-user-mailmfa`"), "{err}");
        assert_eq!(Settings::default().record_owner, None);
    }
}
