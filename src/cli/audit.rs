//! Audit lines: every enable, confirm, replace, disable and force, and every app-password and
//! recovery-code change goes to syslog (authpriv, ident `mailmfa`) as one `key=value` line:
//! what, which login, by which Unix user, and how it ended. Never a secret or a code.
//!
//! `action=enable-begin|enable-confirm|enable|disable|app-password-add|app-password-revoke|
//! recovery-codes user=<login> [name=<app password>] by=<name> uid=<n> [sudo_user=<name>]
//! [replace=yes] [force=yes] result=ok|refused|expired [reason=<why>]`

use mailmfa::log::clean;
use mailmfa::login::Login;
use mailmfa::pam::sys::{effective_uid, syslog_authpriv};

/// One audited action.
pub struct Event<'a> {
    /// `enable-begin`, `enable-confirm`, `enable` (interactive), `disable`,
    /// `app-password-add`, `app-password-revoke` or `recovery-codes`.
    pub action: &'a str,
    /// The login acted on.
    pub login: &'a Login,
    /// The app password acted on, if any (its name, never the password).
    pub name: Option<&'a str>,
    /// An active record is being replaced.
    pub replace: bool,
    /// `--force`: no code of the old secret was checked.
    pub force: bool,
    /// `ok`, `refused` or `expired`.
    pub result: &'a str,
    /// Why it was refused (a reason name such as `bad_code`), if it was.
    pub reason: Option<&'a str>,
}

impl Event<'_> {
    /// The line, without the syslog prefix.
    pub fn line(&self) -> String {
        let uid = effective_uid();
        let mut line = format!(
            "action={} user={}",
            clean(self.action),
            clean(self.login.as_str())
        );
        if let Some(name) = self.name {
            line.push_str(&format!(" name={}", clean(name)));
        }
        let by = user_name(uid).unwrap_or_else(|| uid.to_string());
        line.push_str(&format!(" by={} uid={uid}", clean(&by)));
        if let Ok(sudo) = std::env::var("SUDO_USER") {
            line.push_str(&format!(" sudo_user={}", clean(&sudo)));
        }
        if self.replace {
            line.push_str(" replace=yes");
        }
        if self.force {
            line.push_str(" force=yes");
        }
        line.push_str(&format!(" result={}", clean(self.result)));
        if let Some(reason) = self.reason {
            line.push_str(&format!(" reason={}", clean(reason)));
        }
        line
    }

    /// Sends the line to syslog (authpriv.notice).
    pub fn send(&self) {
        syslog_authpriv("mailmfa", libc::LOG_NOTICE, &self.line());
    }
}

/// The name of `uid` from /etc/passwd, without NSS (no unsafe code in the command).
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        (fields.next()?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}
