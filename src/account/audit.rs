//! Audit lines: every enable, confirm, replace, disable and force, every app-password and
//! recovery-code change, and every refused code goes to syslog (authpriv, ident `mailmfa`) as
//! one `key=value` line: what, which login, through which face and from where, by which Unix
//! user, and how it ended. Never a secret or a code. The account functions write them; the
//! faces do not.
//!
//! `action=enable-begin|enable-confirm|enable|disable|app-password-add|app-password-revoke|
//! app-password-expire|webmail-credential|recovery-codes|code-check user=<login>
//! [name=<app password>] face=command|panel|api|admin|webmail
//! [client=<address>] by=<name> uid=<n> [sudo_user=<name>] [replace=yes] [force=yes]
//! [how=code|recovery-code] result=ok|refused|expired [reason=<why>]`
//!
//! A change that the owner is told about (`notify`) is spooled here too, from the same
//! event: [`Event::notice`] says which.

use super::Ctx;
use crate::log::clean;
use crate::login::Login;
use crate::notify::{self, Kind, Notice};
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
    /// How a code-proved `disable` was proved: `code` or `recovery-code`.
    pub how: Option<&'a str>,
    /// How many recovery codes were made.
    pub count: Option<u32>,
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
            how: None,
            count: None,
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
        if let Some(how) = self.how {
            line.push_str(&format!(" how={}", clean(how)));
        }
        line.push_str(&format!(" result={}", clean(self.result)));
        if let Some(reason) = self.reason {
            line.push_str(&format!(" reason={}", clean(reason)));
        }
        line
    }

    /// Sends the line to syslog (authpriv.notice), and spools the owner's notice of a
    /// change (a spool that cannot take it is logged; the change stands).
    pub fn send(&self, ctx: &Ctx) {
        syslog_authpriv("mailmfa", libc::LOG_NOTICE, &self.line(ctx));
        if let Some(notice) = self.notice(ctx) {
            spool(ctx, &notice);
        }
    }

    /// The owner's notice of this event: for each change that went through (`result=ok`),
    /// except the webmail plugin's own session credentials (made and revoked at every
    /// webmail login and logout) and a `disable` that only removed a pending enrolment.
    pub fn notice(&self, ctx: &Ctx) -> Option<Notice> {
        if self.result != "ok" || self.name.is_some_and(super::webmail::is_session_credential) {
            return None;
        }
        let kind = match self.action {
            "enable-confirm" | "enable" if self.replace => Kind::MfaReplaced,
            "enable-confirm" | "enable" => Kind::MfaEnabled,
            "disable" if self.reason.is_none() => Kind::MfaDisabled,
            "app-password-add" => Kind::AppPasswordCreated,
            "app-password-revoke" => Kind::AppPasswordRevoked,
            "app-password-expire" => Kind::AppPasswordExpired,
            "recovery-codes" => Kind::RecoveryCodesCreated,
            _ => return None,
        };
        let mut notice = Notice::new(kind, ctx.now, self.login, ctx.actor.face.name());
        notice.client = ctx.actor.client.map(str::to_string);
        notice.name = self.name.map(str::to_string);
        notice.count = self.count;
        if kind == Kind::MfaDisabled {
            notice.how = Some(
                if self.force {
                    "force"
                } else {
                    self.how.unwrap_or("code")
                }
                .into(),
            );
        }
        Some(notice)
    }
}

/// Spools `notice` for the owner; a failure is logged (authpriv.warning) and goes no further.
pub fn spool(ctx: &Ctx, notice: &Notice) {
    if let Err(e) = notify::tell(ctx.settings, ctx.euid, notice) {
        let line = format!(
            "action=notify user={} kind={} result=failed reason=notify_spool_failed detail=\"{}\"",
            clean(notice.login.as_str()),
            notice.kind.name(),
            e.to_string().replace(['"', '\n', '\r'], "'")
        );
        syslog_authpriv("mailmfa", libc::LOG_WARNING, &line);
    }
}
