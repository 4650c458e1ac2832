//! The panel's settings: the `[panel]` table of `mailmfa.toml`, plus the library's own
//! settings (record_dir, issuer, digits, ...) read from the same file.
//!
//! The library keeps `[panel]` raw; this file parses it strictly (`deny_unknown_fields`): a
//! typo is an error at start, never a silently dropped protection. Durations are written as
//! the library writes them (`900`, `15m`, `8h`), parsed by `mailmfa::config::parse_duration`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use mailmfa::config::{parse_duration, Settings};
use serde::Deserialize;

/// Default listen address: loopback, behind the admin's reverse proxy.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";
/// Default Dovecot auth-client socket.
pub const DEFAULT_AUTH_SOCKET: &str = "/run/dovecot/auth-mailmfa";
/// Default Dovecot service name sent in AUTH (the PAM service when `args = %s`).
pub const DEFAULT_AUTH_SERVICE: &str = "mailmfa-panel";
/// Default service of the webmail plugin's password precheck (a password-only PAM stack).
pub const DEFAULT_PRECHECK_SERVICE: &str = "mailmfa-precheck";
/// Default directory of the panel's own state (codes typed on its pages).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/mailmfa/panel";

/// The `[panel]` table, after defaults and checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanelConfig {
    /// Address to listen on (`--listen` overrides it; port 0 picks a free port).
    pub listen: SocketAddr,
    /// Dovecot's auth-client UNIX socket.
    pub auth_socket: PathBuf,
    /// The `service=` Dovecot (and so PAM) sees.
    pub auth_service: String,
    /// The `service=` of the webmail plugin's password precheck: a PAM stack with only the
    /// password module (docs/webmail.md).
    pub precheck_service: String,
    /// The panel's own state directory (replay and throttle of codes typed on its pages).
    pub state_dir: PathBuf,
    /// Seconds of inactivity after which a session ends.
    pub idle_timeout: u64,
    /// Seconds after sign-in after which a session ends, active or not.
    pub session_lifetime: u64,
    /// Peers whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Failed sign-ins per client address per `sign_in_interval` before refusing it.
    pub sign_in_failures: u32,
    /// Seconds a failed sign-in counts.
    pub sign_in_interval: u64,
    /// File holding the admin token of the API (none: no admin access).
    pub admin_token_file: Option<PathBuf>,
    /// Largest request body, bytes.
    pub max_body: usize,
}

impl Default for PanelConfig {
    fn default() -> Self {
        PanelConfig {
            listen: DEFAULT_LISTEN.parse().expect("a valid address"),
            auth_socket: PathBuf::from(DEFAULT_AUTH_SOCKET),
            auth_service: DEFAULT_AUTH_SERVICE.to_string(),
            precheck_service: DEFAULT_PRECHECK_SERVICE.to_string(),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            idle_timeout: 15 * 60,
            session_lifetime: 8 * 3600,
            trusted_proxies: Vec::new(),
            sign_in_failures: 10,
            sign_in_interval: 15 * 60,
            admin_token_file: None,
            max_body: 16384,
        }
    }
}

/// A duration as written in the file: `"15m"` or a number of seconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum Duration {
    Text(String),
    Seconds(u64),
}

/// The table as written; every key optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    listen: Option<String>,
    auth_socket: Option<String>,
    auth_service: Option<String>,
    precheck_service: Option<String>,
    state_dir: Option<String>,
    idle_timeout: Option<Duration>,
    session_lifetime: Option<Duration>,
    trusted_proxies: Option<Vec<String>>,
    sign_in_failures: Option<u32>,
    sign_in_interval: Option<Duration>,
    admin_token_file: Option<String>,
    max_body: Option<usize>,
}

/// A config problem, with the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Everything the panel reads from `mailmfa.toml`.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The library's settings as the module sees them (record_dir, state_dir, issuer, ...).
    pub settings: Settings,
    /// The `[panel]` table.
    pub panel: PanelConfig,
}

/// Reads and checks `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    parse(&text, path)
}

/// Parses the text of `mailmfa.toml` found at `path` (named in errors).
pub fn parse(text: &str, path: &Path) -> Result<Loaded, ConfigError> {
    let (settings, table) = split(text, path)?;
    let panel = match table {
        Some(table) => panel_from_table(table)
            .map_err(|m| ConfigError(format!("{}: [panel]: {m}", path.display())))?,
        None => PanelConfig::default(),
    };
    Ok(Loaded { settings, panel })
}

/// The library's settings and the raw `[panel]` table: the one place that knows how the
/// library hands the table over.
fn split(text: &str, path: &Path) -> Result<(Settings, Option<toml::Table>), ConfigError> {
    let mut settings = Settings::from_toml(text, path).map_err(|e| ConfigError(e.to_string()))?;
    let table = settings.panel.take();
    Ok((settings, table))
}

/// Checks the `[panel]` table and fills in the defaults.
pub fn panel_from_table(table: toml::Table) -> Result<PanelConfig, String> {
    let raw: Raw = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())?;
    let mut c = PanelConfig::default();
    if let Some(listen) = raw.listen {
        c.listen = listen.parse().map_err(|_| {
            format!("`listen` must be an address and port such as 127.0.0.1:8470, not `{listen}`")
        })?;
    }
    if let Some(p) = raw.auth_socket {
        c.auth_socket = absolute("auth_socket", &p)?;
    }
    if let Some(s) = raw.auth_service {
        c.auth_service = service("auth_service", s)?;
    }
    if let Some(s) = raw.precheck_service {
        c.precheck_service = service("precheck_service", s)?;
    }
    if c.precheck_service == c.auth_service {
        return Err(format!(
            "`precheck_service` must differ from `auth_service` (`{}`): it names a stack with the \
             password alone",
            c.auth_service
        ));
    }
    if let Some(p) = raw.state_dir {
        c.state_dir = absolute("state_dir", &p)?;
    }
    if let Some(d) = raw.idle_timeout {
        c.idle_timeout = duration("idle_timeout", d, 60, 86400)?;
    }
    if let Some(d) = raw.session_lifetime {
        c.session_lifetime = duration("session_lifetime", d, 60, 30 * 86400)?;
    }
    if let Some(list) = raw.trusted_proxies {
        c.trusted_proxies = list
            .iter()
            .map(|s| {
                s.parse::<IpAddr>()
                    .map_err(|_| format!("`trusted_proxies` must list IP addresses, not `{s}`"))
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(n) = raw.sign_in_failures {
        if !(1..=10_000).contains(&n) {
            return Err(format!("`sign_in_failures` must be 1 to 10000, not {n}"));
        }
        c.sign_in_failures = n;
    }
    if let Some(d) = raw.sign_in_interval {
        c.sign_in_interval = duration("sign_in_interval", d, 1, 86400)?;
    }
    if let Some(p) = raw.admin_token_file {
        c.admin_token_file = if p.is_empty() {
            None
        } else {
            Some(absolute("admin_token_file", &p)?)
        };
    }
    if let Some(n) = raw.max_body {
        if !(1024..=1_048_576).contains(&n) {
            return Err(format!("`max_body` must be 1024 to 1048576 bytes, not {n}"));
        }
        c.max_body = n;
    }
    if c.idle_timeout > c.session_lifetime {
        return Err("`idle_timeout` must not be longer than `session_lifetime`".to_string());
    }
    Ok(c)
}

fn absolute(key: &str, value: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(value);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(format!("`{key}` must be an absolute path, not `{value}`"))
    }
}

fn duration(key: &str, value: Duration, min: u64, max: u64) -> Result<u64, String> {
    let seconds = match &value {
        Duration::Seconds(s) => Some(*s),
        Duration::Text(t) => parse_duration(t),
    };
    seconds.filter(|s| (min..=max).contains(s)).ok_or_else(|| {
        let shown = match value {
            Duration::Seconds(s) => s.to_string(),
            Duration::Text(t) => t,
        };
        format!(
            "`{key}` must be a duration from {min} s to {max} s (e.g. 900, 15m, 8h), not `{shown}`"
        )
    })
}

/// A Dovecot/PAM service name from key `key`: 1 to 64 letters, digits, `-`, `_` or `.`.
fn service(key: &str, s: String) -> Result<String, String> {
    if s.is_empty()
        || s.len() > 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "`{key}` must be letters, digits, `-`, `_` or `.`, not `{s}`"
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn an_empty_table_gives_the_defaults() {
        assert_eq!(panel_from_table(table("")).unwrap(), PanelConfig::default());
        let d = PanelConfig::default();
        assert_eq!(d.listen.to_string(), "127.0.0.1:8470");
        assert_eq!((d.idle_timeout, d.session_lifetime), (900, 28800));
        assert_eq!(
            (d.sign_in_failures, d.sign_in_interval, d.max_body),
            (10, 900, 16384)
        );
    }

    #[test]
    fn every_key_is_read() {
        let c = panel_from_table(table(
            r#"
            listen = "[::1]:0"
            auth_socket = "/run/x/auth"
            auth_service = "panel"
            precheck_service = "panel-precheck"
            state_dir = "/tmp/panel"
            idle_timeout = "5m"
            session_lifetime = 3600
            trusted_proxies = ["127.0.0.1", "::1"]
            sign_in_failures = 3
            sign_in_interval = "1h"
            admin_token_file = "/etc/mailmfa/token"
            max_body = 4096
            "#,
        ))
        .unwrap();
        assert_eq!(c.listen.to_string(), "[::1]:0");
        assert_eq!(c.auth_socket, PathBuf::from("/run/x/auth"));
        assert_eq!(c.auth_service, "panel");
        assert_eq!(c.precheck_service, "panel-precheck");
        assert_eq!((c.idle_timeout, c.session_lifetime), (300, 3600));
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!((c.sign_in_failures, c.sign_in_interval), (3, 3600));
        assert_eq!(
            c.admin_token_file,
            Some(PathBuf::from("/etc/mailmfa/token"))
        );
        assert_eq!(c.max_body, 4096);
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let e = panel_from_table(table("lisen = \"127.0.0.1:1\"")).unwrap_err();
        assert!(e.contains("lisen"), "{e}");
    }

    #[test]
    fn bad_values_are_refused() {
        for text in [
            "listen = \"localhost\"",
            "auth_socket = \"run/x\"",
            "auth_service = \"a b\"",
            "precheck_service = \"\"",
            "precheck_service = \"mailmfa-panel\"",
            "idle_timeout = \"15x\"",
            "idle_timeout = 5",
            "trusted_proxies = [\"proxy\"]",
            "sign_in_failures = 0",
            "max_body = 10",
            "idle_timeout = \"9h\"",
        ] {
            assert!(panel_from_table(table(text)).is_err(), "{text}");
        }
    }

    #[test]
    fn an_empty_admin_token_file_means_none() {
        let c = panel_from_table(table("admin_token_file = \"\"")).unwrap();
        assert_eq!(c.admin_token_file, None);
    }
}
