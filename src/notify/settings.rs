//! The `[notify]` table of `mailmfa.toml`: whether events are spooled, where, which kinds,
//! how the notifier sends them and how often an alert may be mailed. File only: a pam.d line
//! cannot set these (the module only needs `enabled`, `spool_dir`, `events` and
//! `alert_after`, and every face must agree on them). Reference: `docs/notifications.md`.

use super::Kind;
use crate::config::{absolute_path, parse_duration};
use std::path::{Path, PathBuf};

/// The default `spool_dir`.
pub const DEFAULT_SPOOL_DIR: &str = "/var/spool/mailmfa";

/// The default `sendmail` command (Postfix, Exim and OpenSMTPD all provide it).
pub const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail";

/// The longest `alert_every`: one week.
pub const MAX_ALERT_EVERY: u64 = 7 * 86400;

/// The settings of the `[notify]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifySettings {
    /// Events are spooled (and so mailed) only when this is on; off by default.
    pub enabled: bool,
    /// Where events wait for the notifier; `None`: [`DEFAULT_SPOOL_DIR`] (see
    /// [`NotifySettings::spool_dir`]). The defaults allocate nothing: the module builds and
    /// clones the settings at every login.
    spool_dir: Option<PathBuf>,
    /// The envelope and `From:` address; `None`: `mailmfa@` the mail name of this host.
    pub sender: Option<String>,
    /// The command that takes a mail on stdin (`sendmail` and its own arguments); empty:
    /// [`DEFAULT_SENDMAIL`] (see [`NotifySettings::sendmail`]).
    sendmail: Vec<String>,
    /// The wanted kinds, one bit each.
    events: u16,
    /// Wrong codes after a right password, within `fail_interval`, per alert; `None`: the
    /// settings' `max_failures`.
    pub alert_after: Option<u32>,
    /// At most one `code-wrong` mail per login per this many seconds; the rest are merged.
    pub alert_every: u64,
    /// The User Panel's address, named in the mails.
    pub panel_url: Option<String>,
    /// A directory of `<kind>.txt` files that replace the built-in texts.
    pub templates_dir: Option<PathBuf>,
    /// Appended as `@domain` to a login without `@` to make the recipient.
    pub domain: Option<String>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            enabled: false,
            spool_dir: None,
            sender: None,
            sendmail: Vec::new(),
            events: Kind::ALL.iter().fold(0, |bits, k| bits | k.bit()),
            alert_after: None,
            alert_every: 3600,
            panel_url: None,
            templates_dir: None,
            domain: None,
        }
    }
}

impl NotifySettings {
    /// Where events wait for the notifier.
    pub fn spool_dir(&self) -> &Path {
        self.spool_dir
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_SPOOL_DIR))
    }

    /// Sets `spool_dir` (tests and tools that build settings by hand).
    pub fn set_spool_dir(&mut self, dir: PathBuf) {
        self.spool_dir = Some(dir);
    }

    /// The sendmail command and its own arguments.
    pub fn sendmail(&self) -> Vec<&str> {
        if self.sendmail.is_empty() {
            vec![DEFAULT_SENDMAIL]
        } else {
            self.sendmail.iter().map(String::as_str).collect()
        }
    }

    /// Whether events of `kind` are spooled.
    pub fn wants(&self, kind: Kind) -> bool {
        self.enabled && self.events & kind.bit() != 0
    }

    /// Reads the `[notify]` table; the error names the key and its rule.
    pub fn from_table(table: &toml::Table) -> Result<NotifySettings, String> {
        let mut s = NotifySettings::default();
        for (key, value) in table {
            let text = || {
                value
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("`notify.{key}` must be a string"))
            };
            match key.as_str() {
                "enabled" => {
                    s.enabled = value
                        .as_bool()
                        .ok_or("`notify.enabled` must be true or false")?
                }
                "spool_dir" => s.spool_dir = Some(absolute_path("notify.spool_dir", &text()?)?),
                "sender" => s.sender = Some(address(&text()?)?),
                "sendmail" => s.sendmail = command(value)?,
                "events" => s.events = events(value)?,
                "alert_after" => {
                    let n = value
                        .as_integer()
                        .filter(|n| (1..=crate::config::MAX_FAILURES_LIMIT as i64).contains(n))
                        .ok_or("`notify.alert_after` must be a number from 1 to 200")?;
                    s.alert_after = Some(n as u32);
                }
                "alert_every" => {
                    let given = match value {
                        toml::Value::Integer(i) => i.to_string(),
                        _ => text()?,
                    };
                    s.alert_every = parse_duration(&given)
                        .filter(|d| *d <= MAX_ALERT_EVERY)
                        .ok_or(
                            "`notify.alert_every` must be a duration up to 7d (0, 30m, 1h, ...)",
                        )?;
                }
                "panel_url" => {
                    let url = text()?;
                    if !(url.starts_with("https://") || url.starts_with("http://"))
                        || url.chars().any(|c| c.is_whitespace() || c.is_control())
                    {
                        return Err("`notify.panel_url` must be an http(s):// address".into());
                    }
                    s.panel_url = Some(url);
                }
                "templates_dir" => {
                    s.templates_dir = Some(absolute_path("notify.templates_dir", &text()?)?)
                }
                "domain" => {
                    let domain = text()?;
                    if !is_domain(&domain) {
                        return Err(format!("`notify.domain` is not a domain name: `{domain}`"));
                    }
                    s.domain = Some(domain);
                }
                _ => return Err(format!("unknown option `notify.{key}`")),
            }
        }
        Ok(s)
    }

    /// How many wrong codes make an alert, under `settings`.
    pub fn alert_after(&self, max_failures: u32) -> u32 {
        self.alert_after.unwrap_or(max_failures).max(1)
    }
}

/// A sender address: `local@domain`, printable ASCII without spaces, quotes or brackets (it
/// goes into a header and onto sendmail's command line).
fn address(value: &str) -> Result<String, String> {
    let ok = value.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !local.starts_with('-')
            && local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._+-=".contains(&b))
            && is_domain(domain)
    });
    if ok {
        Ok(value.to_string())
    } else {
        Err(format!(
            "`notify.sender` must be a plain address like mailmfa@mail.example.com, not `{value}`"
        ))
    }
}

/// Letters, digits, `-` and dots between labels.
pub fn is_domain(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `sendmail`: a string (one absolute path) or a list (the path and its own arguments).
fn command(value: &toml::Value) -> Result<Vec<String>, String> {
    let words: Vec<String> = match value {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or("`notify.sendmail` must be a list of strings")?,
        _ => return Err("`notify.sendmail` must be a path or a list of strings".into()),
    };
    match words.first() {
        Some(first) if Path::new(first).is_absolute() => Ok(words),
        _ => Err("`notify.sendmail` must start with an absolute path".into()),
    }
}

fn events(value: &toml::Value) -> Result<u16, String> {
    let items = value
        .as_array()
        .ok_or("`notify.events` must be a list of event names")?;
    items.iter().try_fold(0, |bits, item| {
        let kind = item.as_str().and_then(Kind::from_name).ok_or_else(|| {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            format!("`notify.events`: {item} is not one of {}", names.join(", "))
        })?;
        Ok(bits | kind.bit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NotifySettings, String> {
        NotifySettings::from_table(&text.parse::<toml::Table>().unwrap())
    }

    #[test]
    fn off_by_default_and_every_kind_when_on() {
        let off = parse("").unwrap();
        assert!(Kind::ALL.iter().all(|k| !off.wants(*k)));
        let on = parse("enabled = true").unwrap();
        assert!(Kind::ALL.iter().all(|k| on.wants(*k)));
        assert_eq!(on.spool_dir(), Path::new(DEFAULT_SPOOL_DIR));
        assert_eq!(on.sendmail(), [DEFAULT_SENDMAIL]);
        assert_eq!((on.alert_every, on.alert_after(5)), (3600, 5));
    }

    #[test]
    fn every_key_is_read() {
        let s = parse(
            r#"enabled = true
spool_dir = "/srv/spool"
sender = "mfa@mail.example.com"
sendmail = ["/usr/sbin/sendmail", "-C", "/etc/postfix-out"]
events = ["code-wrong", "mfa-disabled"]
alert_after = 3
alert_every = "30m"
panel_url = "https://mail.example.com/mfa/"
templates_dir = "/etc/mailmfa/notify"
domain = "example.com""#,
        )
        .unwrap();
        assert!(s.wants(Kind::CodeWrong) && s.wants(Kind::MfaDisabled));
        assert!(!s.wants(Kind::MfaEnabled));
        assert_eq!(s.sender.as_deref(), Some("mfa@mail.example.com"));
        assert_eq!(s.sendmail().len(), 3);
        assert_eq!(s.spool_dir(), Path::new("/srv/spool"));
        assert_eq!((s.alert_after(5), s.alert_every), (3, 1800));
        assert_eq!(s.domain.as_deref(), Some("example.com"));
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("enabled = 1", "notify.enabled"),
            ("spool_dir = \"spool\"", "notify.spool_dir"),
            ("sender = \"a b@example.com\"", "notify.sender"),
            ("sender = \"-oQ@example.com\"", "notify.sender"),
            ("sender = \"x@exa mple.com\"", "notify.sender"),
            ("sendmail = \"sendmail\"", "notify.sendmail"),
            ("sendmail = [1]", "notify.sendmail"),
            ("events = [\"mfa-on\"]", "notify.events"),
            ("alert_after = 0", "notify.alert_after"),
            ("alert_every = \"8d\"", "notify.alert_every"),
            ("panel_url = \"javascript:x\"", "notify.panel_url"),
            ("domain = \"a..b\"", "notify.domain"),
            ("colour = \"red\"", "notify.colour"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
