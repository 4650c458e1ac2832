//! `mailmfa notify`: one pass of the notifier. Sweeps expired app passwords (the account
//! layer removes them and spools their events), then runs `mailmfa::notify::deliver` over the
//! spool and says what it did. Every problem is one line on stderr and in syslog. Also the
//! doctor's checks of the notifier's set-up ([`doctor_findings`]).

use super::command::Notify;
use super::doctor::{finding, Finding, Level};
use super::exit::{CliResult, Exit, Failure};
use super::output::print_json;
use super::Context;
use mailmfa::account::expire_app_passwords;
use mailmfa::notify::deliver::{self, Notifier};
use mailmfa::notify::spool::{OutFile, Spool, SpoolError};
use mailmfa::notify::{message, Kind};
use mailmfa::pam::sys::syslog_authpriv;
use mailmfa::store::secure::{self, Refusal};
use mailmfa::store::Store;
use serde_json::json;

/// Runs one pass.
pub fn run(ctx: &Context, p: &Notify) -> CliResult {
    if !ctx.settings.notify.enabled {
        println!("notifications are off: `[notify] enabled = true` in the config turns them on");
        return Ok(());
    }
    let mut log = |line: &str| {
        eprintln!("mailmfa notify: {line}");
        syslog_authpriv("mailmfa", libc::LOG_WARNING, &format!("notify: {line}"));
    };
    let expired = sweep(ctx, &mut log);
    let report = Notifier::new(&ctx.settings, ctx.euid, &mut log)
        .run(p.retry_now)
        .map_err(|e| {
            let exit = match e {
                SpoolError::Unsafe { .. } => Exit::NotPermitted,
                _ => Exit::Error,
            };
            Failure::new(exit, format!("the spool: {e}"))
        })?;
    for line in &report.mails {
        syslog_authpriv("mailmfa", libc::LOG_INFO, &format!("notify: {line}"));
    }
    if p.json {
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
    // A deferred mail is not a failed pass: it waits in the spool, logged, like a mail in
    // the MTA's own queue (`mailmfa doctor` warns while some wait).
    Ok(())
}

/// How often the records are swept for expired app passwords (each sweep reads every record;
/// the module refuses an expired app password by itself, the sweep only removes it and tells
/// the owner).
pub const SWEEP_EVERY: u64 = 3600;

/// The file in the spool's `sent/` that holds when the last sweep ran (`at=<unix>`; `#` is
/// in no login, so no login's mark can take its name).
const SWEEP_MARK: &str = "#sweep";

/// Removes expired app passwords (the account layer spools their events) when the last sweep
/// is [`SWEEP_EVERY`] old; returns how many went.
fn sweep(ctx: &Context, log: &mut dyn FnMut(&str)) -> usize {
    let spool = Spool::new(&ctx.settings, ctx.euid);
    let mark = spool.sub("sent").join(SWEEP_MARK);
    let last = spool
        .read(&mark)
        .ok()
        .flatten()
        .and_then(|t| t.trim().strip_prefix("at=")?.parse::<u64>().ok());
    if last.is_some_and(|at| at + SWEEP_EVERY > ctx.now && at <= ctx.now) {
        return 0;
    }
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
    if let Err(e) = spool
        .ensure_all()
        .and_then(|()| spool.write("sent", SWEEP_MARK, &format!("at={}\n", ctx.now)))
    {
        log(&format!("the time of this sweep not kept: {e}"));
    }
    expired
}

/// How old an event in `new/` may be before the doctor says the notifier is not running.
const STALE_EVENT: u64 = 300;

/// The doctor's findings on notifications: the spool, the MTA, the sender, the texts, and
/// mails that wait (for a retry, or for a notifier that does not run).
pub fn doctor_findings(ctx: &Context) -> Vec<Finding> {
    let n = &ctx.settings.notify;
    if !n.enabled {
        return vec![finding(
            Level::Info,
            "notify: off (owners are not mailed about changes and alerts)",
            Some("`[notify] enabled = true`; see docs/notifications.md"),
        )];
    }
    let spool = Spool::new(&ctx.settings, ctx.euid);
    let shown = spool.dir().display();
    let mut found = Vec::new();
    found.push(
        match secure::check_dir(spool.dir(), ctx.settings.record_owners(ctx.euid)) {
            Ok(()) => finding(Level::Ok, format!("notify: {shown} is usable"), None),
            Err(Refusal::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => finding(
                Level::Warning,
                format!("notify: {shown} does not exist yet (the first event makes it)"),
                Some("run `mailmfa notify` once as root to create it now"),
            ),
            Err(Refusal::Io(e)) => finding(Level::Error, format!("notify: {shown}: {e}"), None),
            Err(Refusal::Unsafe(why)) => finding(
                Level::Error,
                format!("notify: {shown}: {why}: events are dropped (logins go on)"),
                None,
            ),
        },
    );
    let command = n.sendmail();
    let program = command.first().copied().unwrap_or("");
    let runnable = std::fs::metadata(program).is_ok_and(|m| {
        m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
    });
    found.push(if runnable {
        finding(Level::Ok, format!("notify: the MTA is {program}"), None)
    } else {
        finding(
            Level::Error,
            format!("notify: {program} is not an executable file: no mail can be sent"),
            Some("install an MTA (`apt install postfix`) or set `notify.sendmail`"),
        )
    });
    let sender = n.sender.clone().unwrap_or_else(deliver::default_sender);
    found.push(finding(
        Level::Info,
        format!("notify: mails come from {sender}"),
        None,
    ));
    let owners = ctx.settings.record_owners(ctx.euid);
    for kind in Kind::ALL {
        if let Err(e) = message::template(n, owners, kind) {
            found.push(finding(
                Level::Warning,
                format!(
                    "notify: {e}: the built-in {} text is sent instead",
                    kind.name()
                ),
                None,
            ));
        }
    }
    let retrying = spool
        .names("out")
        .unwrap_or_default()
        .iter()
        .filter_map(|name| OutFile::parse(name))
        .filter(|out| out.tries > 0)
        .count();
    if retrying > 0 {
        found.push(finding(
            Level::Warning,
            format!("notify: {retrying} mails wait for a retry: the MTA refused them (see syslog)"),
            Some("fix the MTA, then `mailmfa notify --retry-now`"),
        ));
    }
    let stale = spool
        .names("new")
        .unwrap_or_default()
        .iter()
        .filter_map(|name| std::fs::metadata(spool.sub("new").join(name)).ok())
        .filter_map(|m| m.modified().ok())
        .filter(|t| t.elapsed().is_ok_and(|age| age.as_secs() > STALE_EVENT))
        .count();
    if stale > 0 {
        found.push(finding(
            Level::Warning,
            format!("notify: events of {stale} logins wait for more than 5 minutes: the notifier does not run"),
            Some("`systemctl enable --now mailmfa-notify.path mailmfa-notify.timer`"),
        ));
    }
    found
}
