//! One pass of the notifier (`mailmfa notify`): from the spool to the local MTA.
//!
//! 1. Claim every `new/<login>` and wait until the batches settled ([`SETTLE_SECONDS`]).
//! 2. Split each batch: a `code-wrong` alert goes to `held/<login>`, every other event becomes
//!    one durable `out/` file (one mail). Then the batch is removed. A line that does not
//!    parse is logged and dropped (it is not an event any writer makes).
//! 3. Flush `held/<login>` into one merged mail when the login's last alert mail is at least
//!    `alert_every` old.
//! 4. Send every due `out/` file through sendmail (`-i -f SENDER -- RECIPIENT`, mail on
//!    stdin). Exit 0 removes it; anything else (or no exit within [`SENDMAIL_TIMEOUT`]) is
//!    logged and retried after a back-off that doubles from a minute up to an hour. A mail is
//!    never dropped: it waits until the MTA takes it.
//!
//! At-least-once: a notifier killed between sendmail's exit and the removal of the `out/`
//! file sends that mail again on its next pass; nothing is lost, since every step removes
//! its input only after its output is durable.

use super::message::{self, Mail};
use super::spool::{OutFile, Spool, SpoolError, SETTLE_SECONDS};
use super::{Kind, Notice, NotifySettings};
use crate::config::Settings;
use crate::login::Login;
use crate::store::secure::Owners;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long sendmail may take for one mail before it is killed and the mail retried.
pub const SENDMAIL_TIMEOUT: Duration = Duration::from_secs(60);

/// The first retry's delay; it doubles with each failure.
pub const FIRST_RETRY: u64 = 60;

/// The longest delay between two tries.
pub const MAX_RETRY: u64 = 3600;

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Events read from the spool.
    pub events: usize,
    /// Mails handed to sendmail and accepted.
    pub sent: usize,
    /// Mails that failed now and wait for a retry.
    pub deferred: usize,
    /// Mails not due yet (waiting for a retry).
    pub waiting: usize,
    /// Logins whose alerts are held until their `alert_every` is over.
    pub held: usize,
    /// Lines (or whole files) that were not events, dropped.
    pub dropped: usize,
    /// One line per mail handed to sendmail, for the log.
    pub mails: Vec<String>,
}

/// The notifier's view of the settings and the spool.
pub struct Notifier<'a> {
    settings: &'a NotifySettings,
    spool: Spool,
    owners: Owners,
    sender: String,
    log: &'a mut dyn FnMut(&str),
    seq: u32,
}

impl<'a> Notifier<'a> {
    /// A notifier for `settings` running as `euid`; `log` receives one line per problem
    /// (the caller sends it to syslog and stderr).
    pub fn new(settings: &'a Settings, euid: u32, log: &'a mut dyn FnMut(&str)) -> Notifier<'a> {
        Notifier {
            settings: &settings.notify,
            spool: Spool::new(settings, euid),
            owners: settings.record_owners(euid),
            sender: settings
                .notify
                .sender
                .clone()
                .unwrap_or_else(default_sender),
            log,
            seq: 0,
        }
    }

    /// One pass: claim, split, flush held alerts, send what is due (`retry_now`: also the
    /// mails waiting for a retry, like `postqueue -f`).
    pub fn run(&mut self, retry_now: bool) -> Result<Report, SpoolError> {
        let mut report = Report::default();
        self.spool.ensure_all()?;
        let mut strays = Vec::new();
        let batches = self.spool.claim(unix_now(), &mut strays)?;
        for stray in strays {
            report.dropped += 1;
            (self.log)(&format!(
                "{}: not named after a login (no writer makes such a file): removed",
                stray.display()
            ));
        }
        for batch in batches {
            settle(&batch);
            self.split(&batch, &mut report)?;
        }
        self.flush_held(&mut report)?;
        self.send_due(&mut report, retry_now)?;
        Ok(report)
    }

    /// Step 2 for one batch.
    fn split(&mut self, batch: &Path, report: &mut Report) -> Result<(), SpoolError> {
        let text = match self.spool.read(batch) {
            Ok(Some(text)) => text,
            Ok(None) => return Ok(()),
            // Not a file of ours (a symlink, another owner, too big): its events cannot be
            // trusted; it goes, so that `new/` and `cur/` do not keep the notifier busy.
            Err(SpoolError::Unsafe { why, .. }) => {
                report.dropped += 1;
                (self.log)(&format!("{}: {why}: removed unread", batch.display()));
                return self.spool.remove(batch);
            }
            Err(e) => return Err(e),
        };
        let mut alerts: Vec<(Login, String)> = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let notice = match Notice::parse(line) {
                Ok(notice) => notice,
                Err(why) => {
                    report.dropped += 1;
                    (self.log)(&format!(
                        "{}: a line that is not an event was dropped: {why}",
                        batch.display()
                    ));
                    continue;
                }
            };
            report.events += 1;
            if notice.kind == Kind::CodeWrong {
                alerts.push((notice.login.clone(), notice.line()));
            } else {
                self.queue(&notice.login, &notice.line())?;
            }
        }
        for (login, line) in alerts {
            self.hold(&login, &line)?;
        }
        self.spool.remove(batch)
    }

    /// Writes one mail's events to `out/`, due now.
    fn queue(&mut self, login: &Login, lines: &str) -> Result<(), SpoolError> {
        self.seq += 1;
        let now = unix_now();
        let out = OutFile {
            next: now,
            tries: 0,
            id: format!("{now}-{}-{}", std::process::id(), self.seq),
            login: login.clone(),
        };
        self.spool.write("out", &out.name(), lines)
    }

    /// Appends an alert line to `held/<login>`, keeping the newest lines within the bound.
    fn hold(&mut self, login: &Login, line: &str) -> Result<(), SpoolError> {
        let path = self.spool.sub("held").join(login.as_str());
        let mut text = self.spool.read(&path)?.unwrap_or_default();
        text.push_str(line);
        while text.len() as u64 > super::spool::MAX_PENDING_BYTES {
            let cut = text.find('\n').map_or(text.len(), |i| i + 1);
            text.drain(..cut);
        }
        self.spool.write("held", login.as_str(), &text)
    }

    /// Step 3.
    fn flush_held(&mut self, report: &mut Report) -> Result<(), SpoolError> {
        let now = unix_now();
        for name in self.spool.names("held")? {
            let Ok(login) = Login::parse(name.as_bytes()) else {
                continue;
            };
            let sent = self.spool.sub("sent").join(&name);
            let last = self
                .spool
                .read(&sent)?
                .and_then(|t| t.trim().strip_prefix("at=")?.parse::<u64>().ok());
            if last.is_some_and(|at| at.saturating_add(self.settings.alert_every) > now) {
                report.held += 1;
                continue;
            }
            let held = self.spool.sub("held").join(&name);
            let Some(lines) = self.spool.read(&held)? else {
                continue;
            };
            // Out first, then the mark, then the input: a crash sends twice, never never.
            self.queue(&login, &lines)?;
            self.spool.write("sent", &name, &format!("at={now}\n"))?;
            self.spool.remove(&held)?;
        }
        Ok(())
    }

    /// Step 4.
    fn send_due(&mut self, report: &mut Report, retry_now: bool) -> Result<(), SpoolError> {
        for name in self.spool.names("out")? {
            let Some(out) = OutFile::parse(&name) else {
                continue;
            };
            let now = unix_now();
            if out.next > now && !retry_now {
                report.waiting += 1;
                continue;
            }
            let path = self.spool.sub("out").join(&name);
            let Some(text) = self.spool.read(&path)? else {
                continue;
            };
            match self.mail(&out, &text).and_then(|mail| self.sendmail(&mail)) {
                Ok(()) => {
                    self.spool.remove(&path)?;
                    report.sent += 1;
                    report.mails.push(format!(
                        "mail {} to {} handed to sendmail",
                        out.id, out.login
                    ));
                }
                Err(why) => {
                    let delay = retry_delay(out.tries);
                    let retry = OutFile {
                        next: now + delay,
                        tries: out.tries + 1,
                        ..out
                    };
                    (self.log)(&format!(
                        "mail {} to {} not sent (try {}): {why}; next try in {delay} s",
                        retry.id, retry.login, retry.tries
                    ));
                    self.spool.rename(&path, "out", &retry.name())?;
                    report.deferred += 1;
                }
            }
        }
        Ok(())
    }

    /// The mail for an `out/` file's events.
    fn mail(&mut self, out: &OutFile, text: &str) -> Result<Mail, String> {
        let notices = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(Notice::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let kind = notices.first().ok_or("an empty mail file")?.kind;
        let template = message::template(self.settings, self.owners, kind).unwrap_or_else(|why| {
            (self.log)(&format!(
                "{why}: the built-in {} text is sent instead",
                kind.name()
            ));
            message::builtin(kind).to_string()
        });
        message::compose(
            self.settings,
            &self.sender,
            &template,
            &notices,
            &out.id,
            unix_now(),
        )
    }

    /// Hands `mail` to sendmail; `Err` with what went wrong.
    fn sendmail(&self, mail: &Mail) -> Result<(), String> {
        let command = self.settings.sendmail();
        let (program, args) = command.split_first().ok_or("`notify.sendmail` is empty")?;
        let mut child = Command::new(program)
            .args(args)
            .args(["-i", "-f", &self.sender, "--", &mail.to])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        let written = child
            .stdin
            .take()
            .map(|mut stdin| stdin.write_all(mail.text.as_bytes()));
        let deadline = Instant::now() + SENDMAIL_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "{program} did not finish within {} s",
                        SENDMAIL_TIMEOUT.as_secs()
                    ));
                }
                Err(e) => return Err(format!("waiting for {program}: {e}")),
            }
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.by_ref().take(4096).read_to_string(&mut stderr);
        }
        // The MTA's first line, as one line of at most 200 characters.
        let said: String = stderr
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        match (status.success(), written) {
            (true, Some(Ok(()))) => Ok(()),
            (true, _) => Err(format!("{program} did not read the whole mail")),
            (false, _) => Err(format!("{program} failed ({status}): {said}")),
        }
    }
}

/// Waits until `batch` was last written [`SETTLE_SECONDS`] ago (a writer that opened it
/// before the claim has then finished its one `write`).
fn settle(batch: &PathBuf) {
    let Ok(modified) = std::fs::metadata(batch).and_then(|m| m.modified()) else {
        return;
    };
    let ready = modified + Duration::from_secs(SETTLE_SECONDS);
    if let Ok(wait) = ready.duration_since(SystemTime::now()) {
        std::thread::sleep(wait);
    }
}

/// The delay before the try after `tries` failed ones: 1 min, 2, 4, ... up to an hour.
pub fn retry_delay(tries: u32) -> u64 {
    FIRST_RETRY
        .saturating_mul(1u64 << tries.min(16))
        .min(MAX_RETRY)
}

/// `mailmfa@` this host's mail name: the first word of /etc/mailname (Debian's MTA
/// convention), else the kernel's host name.
pub fn default_sender() -> String {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.split_whitespace().next().map(str::to_string))
            .filter(|name| super::settings::is_domain(name))
    };
    let host = read("/etc/mailname")
        .or_else(|| read("/proc/sys/kernel/hostname"))
        .unwrap_or_else(|| "localhost".to_string());
    format!("mailmfa@{host}")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_a_minute_to_an_hour() {
        let delays: Vec<u64> = (0..8).map(retry_delay).collect();
        assert_eq!(delays, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(retry_delay(u32::MAX), 3600);
    }
}
