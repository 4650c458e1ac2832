//! One event for the owner ([`Notice`]) and its line in the spool:
//!
//! `v=1 at=<unix> kind=<kind> user=<login> face=<face> [service=<pam service>]
//! [client=<address>] [name=<app password>] [how=code|recovery-code|force] [left=<n>]
//! [count=<n>] [throttled=yes]`
//!
//! Values are percent-encoded outside a plain set, so a line is always one line of
//! `key=value` fields whatever a client address holds. Never a password, code or secret.

use super::Kind;
use crate::login::Login;
use std::fmt::Write;

/// The version of the line format, written first as `v=`.
pub const VERSION: &str = "1";

/// The face named for an event of the module (a login over IMAP, POP3 or SMTP).
pub const LOGIN_FACE: &str = "login";

/// One event for the owner of `login`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// What happened.
    pub kind: Kind,
    /// When (Unix time).
    pub at: u64,
    /// Whose second factor.
    pub login: Login,
    /// Through which face: `command`, `panel`, `api`, `admin`, `webmail` or `login`.
    pub face: String,
    /// The PAM service of a login (`dovecot`, `smtp`, ...).
    pub service: Option<String>,
    /// The client's address, when known.
    pub client: Option<String>,
    /// The app password's name.
    pub name: Option<String>,
    /// How MFA was turned off: `code`, `recovery-code` or `force`.
    pub how: Option<String>,
    /// Unused recovery codes left.
    pub left: Option<u32>,
    /// How many: recovery codes made, or wrong codes within `fail_interval`.
    pub count: Option<u32>,
    /// The throttle now refuses codes from this client (`code-wrong`).
    pub throttled: bool,
}

impl Notice {
    /// An event with only the fields every event has.
    pub fn new(kind: Kind, at: u64, login: &Login, face: &str) -> Notice {
        Notice {
            kind,
            at,
            login: login.clone(),
            face: face.to_string(),
            service: None,
            client: None,
            name: None,
            how: None,
            left: None,
            count: None,
            throttled: false,
        }
    }

    /// The spool line, with its newline.
    pub fn line(&self) -> String {
        let mut line = format!(
            "v={VERSION} at={} kind={} user={}",
            self.at,
            self.kind.name(),
            self.login
        );
        let mut field = |key: &str, value: &str| {
            let _ = write!(line, " {key}={}", encode(value));
        };
        field("face", &self.face);
        let texts = [
            ("service", &self.service),
            ("client", &self.client),
            ("name", &self.name),
            ("how", &self.how),
        ];
        for (key, value) in texts {
            if let Some(value) = value {
                field(key, value);
            }
        }
        for (key, value) in [("left", self.left), ("count", self.count)] {
            if let Some(value) = value {
                field(key, &value.to_string());
            }
        }
        if self.throttled {
            field("throttled", "yes");
        }
        line.push('\n');
        line
    }

    /// Reads a line written by [`Notice::line`] (without its newline). Unknown keys are
    /// skipped (a newer writer); a missing or bad `v`, `at`, `kind`, `user` or `face` is an
    /// error saying which.
    pub fn parse(line: &str) -> Result<Notice, String> {
        let mut notice = Notice::new(Kind::MfaEnabled, 0, &placeholder(), "");
        let (mut version, mut at, mut kind, mut user) = (None, None, None, None);
        for field in line.split(' ').filter(|f| !f.is_empty()) {
            let (key, raw) = field
                .split_once('=')
                .ok_or_else(|| format!("`{}` is not key=value", crate::log::clean(field)))?;
            let value = decode(raw).ok_or_else(|| format!("`{key}` is badly encoded"))?;
            let number = || {
                value
                    .parse::<u32>()
                    .map_err(|_| format!("`{key}` is not a number"))
            };
            match key {
                "v" => version = Some(value.clone()),
                "at" => at = value.parse::<u64>().ok(),
                "kind" => kind = Kind::from_name(&value),
                "user" => user = Login::parse(value.as_bytes()).ok(),
                "face" => notice.face = value.clone(),
                "service" => notice.service = Some(value.clone()),
                "client" => notice.client = Some(value.clone()),
                "name" => notice.name = Some(value.clone()),
                "how" => notice.how = Some(value.clone()),
                "left" => notice.left = Some(number()?),
                "count" => notice.count = Some(number()?),
                "throttled" => notice.throttled = value == "yes",
                _ => {}
            }
        }
        if version.as_deref() != Some(VERSION) {
            return Err("not a version 1 event line".to_string());
        }
        notice.at = at.ok_or("`at` is missing or not a time")?;
        notice.kind = kind.ok_or("`kind` is missing or unknown")?;
        notice.login = user.ok_or("`user` is missing or not a login")?;
        if notice.face.is_empty() {
            return Err("`face` is missing".to_string());
        }
        Ok(notice)
    }
}

fn placeholder() -> Login {
    Login::parse(b"x").expect("`x` is a login")
}

/// Whether `b` stands as itself in a value.
fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._-+@=:/[],".contains(&b)
}

/// Percent-encodes every byte outside the plain set (so `%`, spaces and control characters).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The inverse of [`encode`]; `None` for a bad `%` sequence or a result that is not UTF-8.
fn decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Login {
        Login::parse(b"alice@example.com").unwrap()
    }

    #[test]
    fn a_line_reads_back_as_the_same_event() {
        let mut n = Notice::new(Kind::CodeWrong, 1_765_040_000, &alice(), LOGIN_FACE);
        n.service = Some("dovecot".into());
        n.client = Some("fe80::1%eth0 x=y\nz".into());
        n.count = Some(5);
        n.throttled = true;
        let line = n.line();
        assert_eq!(line.matches('\n').count(), 1, "one line: {line}");
        assert!(line.starts_with(
            "v=1 at=1765040000 kind=code-wrong user=alice@example.com face=login service=dovecot \
             client=fe80::1%25eth0%20x=y%0Az count=5 throttled=yes"
        ));
        assert_eq!(Notice::parse(line.trim_end()).unwrap(), n);

        let mut d = Notice::new(Kind::MfaDisabled, 7, &alice(), "panel");
        d.how = Some("recovery-code".into());
        d.name = Some("phone".into());
        d.left = Some(0);
        assert_eq!(Notice::parse(d.line().trim_end()).unwrap(), d);
    }

    #[test]
    fn broken_lines_say_what_is_wrong() {
        for (line, why) in [
            ("at=1 kind=mfa-enabled user=a face=command", "version"),
            ("v=2 at=1 kind=mfa-enabled user=a face=command", "version"),
            ("v=1 kind=mfa-enabled user=a face=command", "`at`"),
            ("v=1 at=1 kind=mfa-on user=a face=command", "`kind`"),
            ("v=1 at=1 kind=mfa-enabled user=../a face=command", "`user`"),
            ("v=1 at=1 kind=mfa-enabled user=a", "`face`"),
            ("v=1 at=1 kind=mfa-enabled user=a face=x left=-1", "`left`"),
            ("v=1 at=1 kind=mfa-enabled user=a face=%ZZ", "`face`"),
            ("v=1 at=1 junk", "key=value"),
        ] {
            let e = Notice::parse(line).unwrap_err();
            assert!(e.contains(why), "{line}: {e}");
        }
        // A newer writer's extra field is skipped.
        assert!(Notice::parse("v=1 at=1 kind=mfa-enabled user=a face=x colour=red").is_ok());
    }
}
