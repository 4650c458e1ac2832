// One concept, the mail for one event (text, placeholders, headers); long for its 6 tests.
//! The mail for one event (or for merged `code-wrong` alerts): its text from `texts/<kind>.txt`
//! — or from `<templates_dir>/<kind>.txt`, the admin's translation — with the placeholders
//! filled in, and the headers around it.
//!
//! A text's first line is `Subject: ...`, then an empty line, then the body. Placeholders:
//! [`PLACEHOLDERS`]: `{login}`, `{when}` (UTC), `{client}`, `{face}` (through what, in English
//! words) and `{face_name}` (`command`, `panel`, ..., `login`), `{service}`, `{how}` (how MFA
//! was turned off, in words) and `{how_name}`, `{name}` (app password), `{left}`, `{count}`,
//! `{panel_url}` and, for `code-wrong`, `{list}` (one line per alert). A line with
//! a placeholder that has no value in this mail is left out. Values are never secrets.

use super::event::LOGIN_FACE;
use super::{Kind, Notice, NotifySettings};
use crate::store::secure::{self, Owners, Refusal};
use std::fmt::Write;

/// A mail ready for sendmail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    /// The envelope recipient (and `To:`).
    pub to: String,
    /// The whole message: headers, an empty line, the body; lines end in `\n` (sendmail
    /// converts them).
    pub text: String,
}

/// The built-in text of `kind`.
pub fn builtin(kind: Kind) -> &'static str {
    match kind {
        Kind::MfaEnabled => include_str!("texts/mfa-enabled.txt"),
        Kind::MfaReplaced => include_str!("texts/mfa-replaced.txt"),
        Kind::MfaDisabled => include_str!("texts/mfa-disabled.txt"),
        Kind::AppPasswordCreated => include_str!("texts/app-password-created.txt"),
        Kind::AppPasswordRevoked => include_str!("texts/app-password-revoked.txt"),
        Kind::AppPasswordExpired => include_str!("texts/app-password-expired.txt"),
        Kind::RecoveryCodesCreated => include_str!("texts/recovery-codes-created.txt"),
        Kind::RecoveryCodeUsed => include_str!("texts/recovery-code-used.txt"),
        Kind::CodeWrong => include_str!("texts/code-wrong.txt"),
    }
}

/// The text for `kind`: the admin's `<templates_dir>/<kind>.txt` when there is one (checked
/// like the config file: owned by root or us, not writable by others, and by [`check`]),
/// else the built-in one. `Err` says why the admin's text cannot be used; the notifier then
/// logs it and sends the built-in text, so that no event is lost for a bad template.
pub fn template(settings: &NotifySettings, owners: Owners, kind: Kind) -> Result<String, String> {
    let Some(dir) = &settings.templates_dir else {
        return Ok(builtin(kind).to_string());
    };
    let path = dir.join(format!("{}.txt", kind.name()));
    match secure::read_trusted(&path, owners) {
        Ok(Some(text)) => check(&text)
            .map(|()| text.to_string())
            .map_err(|why| format!("{}: {why}", path.display())),
        Ok(None) => Ok(builtin(kind).to_string()),
        Err(Refusal::Unsafe(why)) => Err(format!("{}: {why}", path.display())),
        Err(Refusal::Io(e)) => Err(format!("{}: {e}", path.display())),
    }
}

/// The recipient for `login`: the login itself when it is an address, else `login@domain`
/// when `domain` is set, else the local user `login`.
pub fn recipient(settings: &NotifySettings, login: &str) -> String {
    match &settings.domain {
        Some(domain) if !login.contains('@') => format!("{login}@{domain}"),
        _ => login.to_string(),
    }
}

/// Builds the mail for `notices` (one event, or several `code-wrong` alerts of one login,
/// oldest first) from `template`. `id` makes the Message-ID; `now` is the `Date:`.
pub fn compose(
    settings: &NotifySettings,
    sender: &str,
    template: &str,
    notices: &[Notice],
    id: &str,
    now: u64,
) -> Result<Mail, String> {
    let last = notices.last().ok_or("no event to send")?;
    let filled = fill(template, settings, notices);
    let (first, body) = filled.split_once('\n').unwrap_or((filled.as_str(), ""));
    let subject = first
        .strip_prefix("Subject:")
        .ok_or("the text does not start with `Subject:`")?
        .trim();
    let body = body.strip_prefix('\n').unwrap_or(body);
    let to = recipient(settings, last.login.as_str());
    let domain = sender.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let mut text = String::new();
    let headers = [
        ("From", format!("mailmfa <{sender}>")),
        ("To", format!("<{to}>")),
        ("Subject", encode_header(subject)),
        ("Date", rfc5322_date(now)),
        ("Message-ID", format!("<mailmfa.{id}@{domain}>")),
        ("Auto-Submitted", "auto-generated".to_string()),
        ("X-Auto-Response-Suppress", "All".to_string()),
        ("X-Mailmfa-Event", last.kind.name().to_string()),
        ("MIME-Version", "1.0".to_string()),
        ("Content-Type", "text/plain; charset=utf-8".to_string()),
        ("Content-Transfer-Encoding", "8bit".to_string()),
    ];
    for (name, value) in headers {
        let _ = writeln!(text, "{name}: {value}");
    }
    text.push('\n');
    text.push_str(body);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(Mail { to, text })
}

/// Every placeholder a text may use.
pub const PLACEHOLDERS: [&str; 13] = [
    "login",
    "when",
    "client",
    "face",
    "face_name",
    "service",
    "how",
    "how_name",
    "name",
    "left",
    "count",
    "panel_url",
    "list",
];

/// The value of placeholder `key` for `notices` (one event, or merged alerts: then `when`
/// is the last one's, `client` every address, `count` the highest); `None` when this mail
/// has no value for it (no client address known, no `panel_url`, ...).
fn value(key: &str, settings: &NotifySettings, notices: &[Notice]) -> Option<String> {
    let last = notices.last()?;
    let text = match key {
        "login" => last.login.to_string(),
        "when" => when(last.at),
        "client" => {
            let mut seen: Vec<String> = Vec::new();
            for c in notices.iter().filter_map(|n| n.client.as_deref()) {
                if !c.is_empty() && !seen.iter().any(|s| s == c) {
                    seen.push(c.to_string());
                }
            }
            (!seen.is_empty()).then(|| seen.join(", "))?
        }
        "face" => face(last),
        "face_name" => last.face.clone(),
        "service" => last.service.clone()?,
        "how" => how(last.how.as_deref())?.to_string(),
        "how_name" => last.how.clone()?,
        "name" => last.name.clone()?,
        "left" => last.left?.to_string(),
        "count" => notices.iter().filter_map(|n| n.count).max()?.to_string(),
        "panel_url" => settings.panel_url.clone()?,
        // Lines made of cleaned values.
        "list" => {
            return Some(
                notices
                    .iter()
                    .map(alert_line)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        }
        _ => return None,
    };
    Some(plain(&text))
}

/// Checks a text: a `Subject:` first line and only known placeholders. `Err` says what is
/// wrong (the notifier then logs it and sends the built-in text).
pub fn check(template: &str) -> Result<(), String> {
    if !template.starts_with("Subject:") {
        return Err("does not start with `Subject:`".to_string());
    }
    for (_, key) in placeholders(template) {
        if !PLACEHOLDERS.contains(&key) {
            return Err(format!("`{{{key}}}` is not a placeholder"));
        }
    }
    Ok(())
}

/// The `{word}` placeholders of `line`, with their byte offsets (`word`: letters and `_`).
fn placeholders(line: &str) -> impl Iterator<Item = (usize, &str)> {
    line.match_indices('{').filter_map(move |(open, _)| {
        let after = &line[open + 1..];
        let close = after.find('}')?;
        let key = &after[..close];
        (!key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .then_some((open, key))
    })
}

/// The template with its placeholders replaced; a line holding a placeholder without a
/// value in this mail is left out.
fn fill(template: &str, settings: &NotifySettings, notices: &[Notice]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    'lines: for line in template.split_inclusive('\n') {
        let mut filled = String::with_capacity(line.len() + 64);
        let mut done = 0;
        for (open, key) in placeholders(line) {
            if open < done {
                continue;
            }
            let Some(v) = value(key, settings, notices) else {
                continue 'lines;
            };
            filled.push_str(&line[done..open]);
            filled.push_str(&v);
            done = open + key.len() + 2;
        }
        filled.push_str(&line[done..]);
        out.push_str(&filled);
    }
    out
}

/// A value as it may stand in a mail: no control characters (a client name cannot start a
/// header or a fake paragraph).
fn plain(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// One line of a `code-wrong` mail's `{list}`.
fn alert_line(n: &Notice) -> String {
    let count = n
        .count
        .map_or("Wrong codes".into(), |c| format!("{c} wrong codes"));
    let mut line = format!("- {}: {count} from {} ({})", when(n.at), client(n), face(n));
    if n.throttled {
        line.push_str("; further codes from there are refused for a while");
    }
    line
}

fn client(n: &Notice) -> String {
    n.client
        .as_deref()
        .filter(|c| !c.is_empty())
        .map_or_else(|| "an unknown address".into(), plain)
}

/// How a face reads in a sentence.
fn face(n: &Notice) -> String {
    match n.face.as_str() {
        "command" => "the mailmfa command, by an administrator".into(),
        "panel" => "the User Panel".into(),
        "api" => "the User Panel's API".into(),
        "admin" => "the User Panel, by an administrator".into(),
        "webmail" => "webmail".into(),
        LOGIN_FACE => match &n.service {
            Some(service) => format!("a mail login (service {})", plain(service)),
            None => "a mail login".into(),
        },
        other => plain(other),
    }
}

fn how(how: Option<&str>) -> Option<&'static str> {
    Some(match how? {
        "code" => "with a code from the authenticator app",
        "recovery-code" => "with a recovery code",
        "force" => "by an administrator, without a code",
        _ => return None,
    })
}

/// `2026-12-06 16:20:00 UTC`.
pub fn when(at: u64) -> String {
    let (y, m, d) = crate::calendar::civil_from_days((at / 86400) as i64);
    let s = at % 86400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// `Sun, 06 Dec 2026 16:20:00 +0000`.
fn rfc5322_date(at: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = at / 86400;
    let (y, m, d) = crate::calendar::civil_from_days(days as i64);
    let s = at % 86400;
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A header value: as it is when it is printable ASCII, else RFC 2047 `Q` encoded words
/// (a translated subject).
fn encode_header(value: &str) -> String {
    let value = plain(value);
    if value.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return value;
    }
    let mut words = Vec::new();
    let mut word = String::new();
    for c in value.chars() {
        let mut piece = String::new();
        let mut buf = [0; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            match b {
                b' ' => piece.push('_'),
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'!' | b'*' | b'+' | b'-' | b'/' => {
                    piece.push(char::from(b))
                }
                _ => {
                    let _ = write!(piece, "={b:02X}");
                }
            }
        }
        // An encoded word is at most 75 characters; a character is never split.
        if word.len() + piece.len() > 75 - "=?UTF-8?Q??=".len() {
            words.push(std::mem::take(&mut word));
        }
        word.push_str(&piece);
    }
    words.push(word);
    words
        .iter()
        .map(|w| format!("=?UTF-8?Q?{w}?="))
        .collect::<Vec<_>>()
        .join("\r\n ")
        .replace("\r\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::login::Login;

    fn notice(kind: Kind) -> Notice {
        let mut n = Notice::new(
            kind,
            1_796_573_200,
            &Login::parse(b"alice@example.com").unwrap(),
            "panel",
        );
        n.client = Some("203.0.113.7".into());
        n
    }

    #[test]
    fn every_builtin_text_has_a_subject_and_known_placeholders_only() {
        let settings = NotifySettings::default();
        for kind in Kind::ALL {
            let mail = compose(
                &settings,
                "mfa@mail.example.com",
                builtin(kind),
                &[notice(kind)],
                "1-2-3",
                1_796_573_200,
            )
            .unwrap();
            assert!(!mail.text.contains('{'), "{kind:?}: {}", mail.text);
            assert!(mail.text.contains("alice@example.com"), "{kind:?}");
            assert!(mail.text.contains("\nAuto-Submitted: auto-generated\n"));
            assert!(mail
                .text
                .contains(&format!("\nX-Mailmfa-Event: {}\n", kind.name())));
        }
    }

    #[test]
    fn a_mail_has_its_facts_and_its_headers() {
        let mut settings = NotifySettings::default();
        settings.panel_url = Some("https://mail.example.com/mfa/".into());
        let mut n = notice(Kind::AppPasswordCreated);
        n.name = Some("thunderbird".into());
        let mail = compose(
            &settings,
            "mfa@mail.example.com",
            builtin(Kind::AppPasswordCreated),
            &[n],
            "1796573200-7-1",
            1_796_573_200,
        )
        .unwrap();
        assert_eq!(mail.to, "alice@example.com");
        for fact in [
            "From: mailmfa <mfa@mail.example.com>\n",
            "To: <alice@example.com>\n",
            "Subject: A new app password was made for alice@example.com\n",
            "Date: Sun, 06 Dec 2026 16:06:40 +0000\n",
            "Message-ID: <mailmfa.1796573200-7-1@mail.example.com>\n",
            "\"thunderbird\"",
            "When:     2026-12-06 16:06:40 UTC",
            "Address:  203.0.113.7",
            "Through:  the User Panel",
            "https://mail.example.com/mfa/",
        ] {
            assert!(mail.text.contains(fact), "{fact}\n{}", mail.text);
        }
        let (head, _) = mail.text.split_once("\n\n").unwrap();
        assert_eq!(head.lines().count(), 11);
    }

    #[test]
    fn alerts_merge_into_one_list() {
        let mut a = notice(Kind::CodeWrong);
        a.face = LOGIN_FACE.into();
        a.service = Some("dovecot".into());
        a.count = Some(5);
        a.throttled = true;
        let mut b = a.clone();
        b.at += 600;
        b.client = Some("198.51.100.9\r\nBcc: x".into());
        b.count = Some(10);
        b.throttled = false;
        let mail = compose(
            &NotifySettings::default(),
            "m@example.com",
            builtin(Kind::CodeWrong),
            &[a, b],
            "1",
            0,
        )
        .unwrap();
        assert!(mail.text.contains(
            "- 2026-12-06 16:06:40 UTC: 5 wrong codes from 203.0.113.7 (a mail login (service \
             dovecot)); further codes from there are refused for a while\n- 2026-12-06 \
             16:16:40 UTC: 10 wrong codes from 198.51.100.9??Bcc: x"
        ));
        assert!(!mail.text.contains("\nBcc:"));
    }

    #[test]
    fn a_line_without_a_value_is_left_out_and_unknown_placeholders_are_refused() {
        let text =
            "Subject: {login}\n\nA {login}\nFrom {client}.\nAt {panel_url}\nEnd {how_name}\n";
        assert_eq!(check(text), Ok(()));
        let mut n = Notice::new(Kind::MfaDisabled, 0, &Login::parse(b"bob").unwrap(), "api");
        n.how = Some("force".into());
        let mail = compose(&NotifySettings::default(), "m@x.org", text, &[n], "1", 0).unwrap();
        assert!(
            mail.text.ends_with("\n\nA bob\nEnd force\n"),
            "{}",
            mail.text
        );
        assert!(check("Subject: x\n{colour}\n")
            .unwrap_err()
            .contains("{colour}"));
        assert!(check("Hi {login}\n").is_err());
        // Braces that are not placeholders are text.
        assert_eq!(check("Subject: a {} b {Big} c {\n"), Ok(()));
    }

    #[test]
    fn a_merged_alert_names_every_address_once_and_the_highest_count() {
        let mut a = notice(Kind::CodeWrong);
        a.count = Some(5);
        let mut b = a.clone();
        b.count = Some(10);
        let mut c = a.clone();
        c.client = Some("198.51.100.9".into());
        c.count = Some(15);
        let mail = compose(
            &NotifySettings::default(),
            "m@x.org",
            "Subject: {count} from {client}\n\n",
            &[a, b, c],
            "1",
            0,
        )
        .unwrap();
        assert!(
            mail.text
                .contains("Subject: 15 from 203.0.113.7, 198.51.100.9\n"),
            "{}",
            mail.text
        );
    }

    #[test]
    fn a_translated_subject_is_encoded_and_a_login_without_domain_gets_one() {
        let mut settings = NotifySettings::default();
        let text = "Subject: Zwei-Faktor-Anmeldung für {login} ausgeschaltet\n\nHallo {login}\n";
        let n = Notice::new(
            Kind::MfaDisabled,
            0,
            &Login::parse(b"bob").unwrap(),
            "command",
        );
        let mail = compose(
            &settings,
            "m@example.com",
            text,
            std::slice::from_ref(&n),
            "1",
            0,
        )
        .unwrap();
        assert!(mail
            .text
            .contains("Subject: =?UTF-8?Q?Zwei-Faktor-Anmeldung_f=C3=BCr_bob_ausgeschaltet?=\n"));
        assert_eq!(mail.to, "bob");
        settings.domain = Some("example.com".into());
        assert_eq!(recipient(&settings, "bob"), "bob@example.com");
        assert!(compose(&settings, "m@example.com", "Hi\n", &[n], "1", 0).is_err());
    }
}
