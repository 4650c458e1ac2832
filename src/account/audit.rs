//! Audit lines: every enable, confirm, replace, disable and force, every app-password and
//! recovery-code change, and every refused code goes to syslog (authpriv, ident `mailmfa`) as
//! one `key=value` line: what, which login, through which face and from where, by which Unix
//! user, and how it ended. Never a secret or a code. The account functions write them; the
//! faces do not.
//!
//! `action=enable-begin|enable-confirm|enable|disable|app-password-add|app-password-revoke|
//! webmail-credential|recovery-codes|code-check user=<login> [name=<app password>]
//! face=command|panel|api|admin|webmail
//! [client=<address>] by=<name> uid=<n> [sudo_user=<name>] [replace=yes] [force=yes]
//! result=ok|refused|expired [reason=<why>]`

use super::Ctx;
use crate::log::clean;
use crate::login::Login;
use crate::pam::sys::syslog_authpriv;

/// One audited action.
pub struct Event<'a> {
    /// `enable-begin`, `enable-confirm`, `enable` (interactive), `disable`,
    /// `app-password-add`, `app-password-revoke`, `webmail-credential`, `recovery-codes` or
    /// `code-check`.
    pub action: &'a str,
    /// The login acted on.
    pub login: &'a Login,
    /// The app password acted on, if any (its name, never the password).
    pub name: Option<&'a str>,
    /// An active record is being replaced.
    pub replace: bool,
    /// No code of the old secret was checked (`--force`, an admin).
    pub force: bool,
    /// `ok`, `refused` or `expired`.
    pub result: &'a str,
    /// Why it was refused (a reason name such as `bad_code`), if it was.
    pub reason: Option<&'a str>,
}

impl<'a> Event<'a> {
    /// A plain event: no app password, no replacement, no force.
    pub fn new(action: &'a str, login: &'a Login, result: &'a str) -> Event<'a> {
        Event {
            action,
            login,
            name: None,
            replace: false,
            force: false,
            result,
            reason: None,
        }
    }

    /// The line, without the syslog prefix.
    pub fn line(&self, ctx: &Ctx) -> String {
        let uid = ctx.euid;
        let mut line = format!(
            "action={} user={}",
            clean(self.action),
            clean(self.login.as_str())
        );
        if let Some(name) = self.name {
            line.push_str(&format!(" name={}", clean(name)));
        }
        line.push_str(&format!(" face={}", ctx.actor.face.name()));
        if let Some(client) = ctx.actor.client {
            line.push_str(&format!(" client={}", clean(client)));
        }
        let by = crate::users::name_of(uid).unwrap_or_else(|| uid.to_string());
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
    pub fn send(&self, ctx: &Ctx) {
        syslog_authpriv("mailmfa", libc::LOG_NOTICE, &self.line(ctx));
    }
}
