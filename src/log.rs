//! Log lines: one `key=value` line per decision, with a reason from a fixed list.
//!
//! The module sends them to syslog (authpriv) through `pam_syslog`; the command prints its own
//! to stderr and sends audit lines to syslog. Values are reduced to a safe character set so a
//! line is always one line and `key=value` parses; nothing here ever receives a password, code
//! or secret. The reasons are documented in `docs/configuration.md` (section "Log lines").

use std::fmt;

/// Why the module decided what it decided. `name()` is the stable `reason=` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The login has no record: the password went on untouched.
    NoMfa,
    /// `split` took a code off the password and kept it for `verify`.
    CodeSplit,
    /// The code was right and its step new.
    Ok,
    /// The code's step was already accepted from this same client address (`reuse=same-client`).
    Reused,
    /// An app password was accepted (in `split`; the password module is skipped).
    AppPassword,
    /// A recovery code was accepted and used up.
    RecoveryCode,
    /// The supplied string does not end in a code.
    NoCode,
    /// The string has the shape of an app password but matches none of the login's.
    BadAppPassword,
    /// The app password has expired.
    AppPasswordExpired,
    /// The app password is not valid for this PAM service.
    AppPasswordWrongService,
    /// The app password is not valid from this client address.
    AppPasswordWrongClient,
    /// The recovery code is not one of the login's, or was used already.
    BadRecoveryCode,
    /// The code matches no step in the window.
    BadCode,
    /// The code's step was already used (from another client, or an older step).
    Replayed,
    /// Too many failed codes recently, from this client or from everywhere.
    Throttled,
    /// The login name cannot be mapped to a file safely.
    InvalidLogin,
    /// `require` is set and the login has no record.
    MfaRequired,
    /// `account`: the mailbox has no line in the password file any more.
    MailboxGone,
    /// `account`: the mailbox's line in the password file is locked (`!`, `*` or empty).
    MailboxLocked,
    /// The record does not parse or validate.
    BadRecord,
    /// The record exists but cannot be read (I/O error, not a regular file).
    RecordUnreadable,
    /// The record (or its directory) is a symlink, group/world-writable or foreign-owned.
    UnsafeRecord,
    /// The record directory is missing or unsafe.
    RecordDirUnusable,
    /// The state directory is missing or unsafe.
    StateDirUnusable,
    /// The state file was damaged and was rebuilt (logged in addition to the decision).
    StateRebuilt,
    /// The state file could not be locked.
    StateLockFailed,
    /// The new state could not be written (full disk, read-only directory...).
    StateWriteFailed,
    /// The shared state server (Redis/Valkey) is down, slow, full or answers garbage.
    StateUnavailable,
    /// The SQL records database is down, slow, refuses the statement or answers garbage
    /// (`records = "sql"`); no login can be told apart from one without MFA.
    RecordsUnavailable,
    /// The SQL records tables are missing or at another schema version than this build's
    /// (`mailmfa db init` / `mailmfa db migrate`).
    RecordsSchema,
    /// A sealed SQL record does not open: changed, copied from another login, or sealed with a
    /// key the key file does not hold.
    RecordSealBroken,
    /// The key file that seals SQL records is missing, unsafe or malformed.
    KeyFileUnusable,
    /// A module argument or the config file is wrong.
    BadConfig,
    /// `verify` ran without a `split` before it in the stack.
    NoSplit,
    /// PAM did not give the user name or the password.
    PamError,
    /// The module panicked (a bug); the login was denied.
    InternalError,
    /// An event for the owner could not be spooled (logged in addition to the decision,
    /// which it does not change).
    NotifySpoolFailed,
}

impl Reason {
    /// The stable name written as `reason=`.
    pub fn name(self) -> &'static str {
        match self {
            Reason::NoMfa => "no_mfa",
            Reason::CodeSplit => "code_split",
            Reason::Ok => "ok",
            Reason::Reused => "reused",
            Reason::AppPassword => "app_password",
            Reason::RecoveryCode => "recovery_code",
            Reason::NoCode => "no_code",
            Reason::BadAppPassword => "bad_app_password",
            Reason::AppPasswordExpired => "app_password_expired",
            Reason::AppPasswordWrongService => "app_password_wrong_service",
            Reason::AppPasswordWrongClient => "app_password_wrong_client",
            Reason::BadRecoveryCode => "bad_recovery_code",
            Reason::BadCode => "bad_code",
            Reason::Replayed => "replayed",
            Reason::Throttled => "throttled",
            Reason::InvalidLogin => "invalid_login",
            Reason::MfaRequired => "mfa_required",
            Reason::MailboxGone => "mailbox_gone",
            Reason::MailboxLocked => "mailbox_locked",
            Reason::BadRecord => "bad_record",
            Reason::RecordUnreadable => "record_unreadable",
            Reason::UnsafeRecord => "unsafe_record",
            Reason::RecordDirUnusable => "record_dir_unusable",
            Reason::StateDirUnusable => "state_dir_unusable",
            Reason::StateRebuilt => "state_rebuilt",
            Reason::StateLockFailed => "state_lock_failed",
            Reason::StateWriteFailed => "state_write_failed",
            Reason::StateUnavailable => "state_unavailable",
            Reason::RecordsUnavailable => "records_unavailable",
            Reason::RecordsSchema => "records_schema",
            Reason::RecordSealBroken => "record_seal_broken",
            Reason::KeyFileUnusable => "key_file_unusable",
            Reason::BadConfig => "bad_config",
            Reason::NoSplit => "no_split",
            Reason::PamError => "pam_error",
            Reason::InternalError => "internal_error",
            Reason::NotifySpoolFailed => "notify_spool_failed",
        }
    }
}

/// What the module answers PAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// PAM_IGNORE: this module has no say (login without MFA).
    Pass,
    /// PAM_IGNORE from `split`: a code was taken off; the stack goes on to the password module.
    Continue,
    /// PAM_SUCCESS: the code (`verify`) or app password (`split`) was accepted.
    Accept,
    /// PAM_AUTH_ERR (or PAM_SYSTEM_ERR for faults): the login is refused.
    Deny,
}

impl Outcome {
    /// The stable name written as `result=`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Continue => "continue",
            Outcome::Accept => "accept",
            Outcome::Deny => "deny",
        }
    }
}

/// One decision, ready to be written as a log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// `split` or `verify` (or `-` when the phase is unknown).
    pub phase: &'a str,
    /// The login as normalised, or a printable form of a refused name.
    pub user: &'a str,
    /// PAM_SERVICE.
    pub service: &'a str,
    /// PAM_RHOST, empty when the service sets none.
    pub rhost: &'a str,
    /// The answer.
    pub result: Outcome,
    /// Why.
    pub reason: Reason,
    /// Extra detail for the admin (a path, a rule); never a secret.
    pub detail: Option<&'a str>,
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "phase={} user={} service={} rhost={} result={} reason={}",
            Clean(self.phase),
            Clean(self.user),
            Clean(self.service),
            Clean(self.rhost),
            self.result.name(),
            self.reason.name()
        )?;
        if let Some(detail) = self.detail {
            // A detail may quote a config key, a path or an OS message: it stays one line, its
            // quotes cannot end the field, and no control character (terminal escape
            // sequences, tabs, NUL) reaches the log.
            let detail: String = detail
                .chars()
                .map(|c| match c {
                    '"' | '\n' | '\r' => '\'',
                    c if c.is_control() => '?',
                    c => c,
                })
                .collect();
            write!(f, " detail=\"{detail}\"")?;
        }
        Ok(())
    }
}

/// A value as written in a line: `-` when empty, every character outside a safe set as `?`,
/// cut to 128 characters.
pub fn clean(value: &str) -> String {
    Clean(value).to_string()
}

/// [`clean`] without the allocation, for writing straight into a line.
struct Clean<'a>(&'a str);

impl fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        if self.0.is_empty() {
            return f.write_char('-');
        }
        for c in self.0.chars().take(128) {
            let safe = c.is_ascii_alphanumeric() || "._-+@=:/[]".contains(c);
            f.write_char(if safe { c } else { '?' })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_key_value() {
        let line = Line {
            phase: "verify",
            user: "alice@example.com",
            service: "dovecot",
            rhost: "",
            result: Outcome::Deny,
            reason: Reason::BadCode,
            detail: None,
        };
        assert_eq!(
            line.to_string(),
            "phase=verify user=alice@example.com service=dovecot rhost=- result=deny reason=bad_code"
        );
    }

    #[test]
    fn values_cannot_break_the_line() {
        assert_eq!(clean("a b\nc=d"), "a?b?c=d");
    }

    #[test]
    fn details_hold_no_control_characters() {
        let line = Line {
            phase: "split",
            user: "-",
            service: "mail",
            rhost: "",
            result: Outcome::Deny,
            reason: Reason::BadConfig,
            detail: Some("unknown option `\u{1b}[2J\n\t\"x`"),
        };
        assert!(line
            .to_string()
            .ends_with("detail=\"unknown option `?[2J'?'x`\""));
    }
}
