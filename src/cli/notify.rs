//! `mailmfa notify`: one pass of the notifier. Sweeps expired app passwords (the account
//! layer removes them and spools their events), then runs `mailmfa::notify::deliver` over the
//! spool and says what it did. Every problem is one line on stderr and in syslog.

use super::args::{Parsed, Spec};
use super::exit::{CliResult, Exit, Failure};
use super::output::print_json;
use super::Context;
use mailmfa::account::expire_app_passwords;
use mailmfa::notify::deliver::Notifier;
use mailmfa::pam::sys::syslog_authpriv;
use mailmfa::store::Store;
use serde_json::json;

/// What `notify` accepts.
pub const SPEC: Spec = Spec {
    command: "notify",
    flags: &["json", "retry-now"],
    values: &[],
    positionals: &[],
};

/// Runs one pass.
pub fn run(ctx: &Context, p: &Parsed) -> CliResult {
    if !ctx.settings.notify.enabled {
        println!("notifications are off: `[notify] enabled = true` in the config turns them on");
        return Ok(());
    }
    let mut log = |line: &str| {
        eprintln!("mailmfa notify: {line}");
        syslog_authpriv("mailmfa", libc::LOG_WARNING, &format!("notify: {line}"));
    };
    let acct = ctx.acct();
    let mut expired = 0;
    match ctx.store().list_logins() {
        Ok(logins) => {
            for login in logins {
                match expire_app_passwords(&acct, &login) {
                    Ok(gone) => expired += gone.len(),
                    Err(e) => log(&format!("{login}: expired app passwords not removed: {e}")),
                }
            }
        }
        Err(e) => log(&format!("expired app passwords not looked for: {e}")),
    }
    let report = Notifier::new(&ctx.settings, ctx.euid, &mut log)
        .run(p.flag("retry-now"))
        .map_err(|e| Failure::new(Exit::Error, format!("the spool: {e}")))?;
    if p.flag("json") {
        print_json(&json!({
            "events": report.events,
            "sent": report.sent,
            "deferred": report.deferred,
            "waiting": report.waiting,
            "held": report.held,
            "dropped": report.dropped,
            "expired": expired,
        }));
    } else {
        println!(
            "{} events, {} mails sent, {} deferred, {} waiting for a retry, alerts held for {} \
             logins, {} expired app passwords removed",
            report.events, report.sent, report.deferred, report.waiting, report.held, expired
        );
    }
    if report.deferred > 0 {
        return Err(Failure::new(
            Exit::Error,
            format!(
                "{} mails could not be sent now and will be retried",
                report.deferred
            ),
        ));
    }
    Ok(())
}
