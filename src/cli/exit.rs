//! Exit codes of the `mailmfa` command and the one error type every subcommand returns.
//!
//! The codes are part of the interface (panels and scripts branch on them); they are listed in
//! `mailmfa --help` and in the man page, and must not change meaning.

use super::output::utc;
use mailmfa::account::{tries, AccountError, CodeRefusal};
use mailmfa::config::Settings;
use mailmfa::login::Login;
use mailmfa::store::StoreError;
use std::fmt;

/// What the command exits with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: done.
    Ok = 0,
    /// 1: configuration, storage or I/O error (the message names the path and the fix).
    Error = 1,
    /// 2: wrong command line.
    Usage = 2,
    /// 3: a code was refused (wrong, already used, throttled, or none given).
    CodeRefused = 3,
    /// 4: nothing to do in this state: MFA already on (no `--replace`), not on, or no pending
    /// enrolment.
    Conflict = 4,
    /// 5: the enrolment expired, or was cancelled after too many wrong codes; MFA stays off.
    Expired = 5,
    /// 6: refused for safety: not root, or a directory or file with an unsafe mode or owner.
    NotPermitted = 6,
    /// 7: `check`: the PAM stack refused the login.
    LoginRefused = 7,
}

/// The table printed by `--help` and mirrored in the man page.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  done
  1  configuration, storage or I/O error (the message names the path and the fix)
  2  wrong command line
  3  code refused: wrong, already used, throttled, or none given
  4  nothing to do: MFA already on (no --replace), MFA not on, no pending enrolment,
     or app-password: name taken / no such name
  5  enrolment expired or cancelled after too many wrong codes; MFA stays off
  6  refused for safety: not root, or a directory or file with an unsafe mode or owner
  7  check: the PAM stack refused the login
";

/// Why a subcommand stopped: the exit code and the message for stderr (never a secret).
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// What went wrong and what to do about it.
    pub message: String,
}

impl Failure {
    /// A failure with this exit code and message.
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
        }
    }

    /// A command-line mistake.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Usage, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<StoreError> for Failure {
    /// Storage errors: unsafe files and directories are refusals (6), the rest errors (1).
    fn from(e: StoreError) -> Failure {
        let exit = match &e {
            StoreError::Unsafe { .. } => Exit::NotPermitted,
            StoreError::Dir { why, .. } if !why.starts_with("does not exist") => Exit::NotPermitted,
            _ => Exit::Error,
        };
        Failure::new(exit, e.to_string())
    }
}

/// An account layer's refusal of a change to `login` as the command says it: its exit code,
/// and a message that names the login and the command that helps.
pub fn account_failure(e: AccountError, login: &Login, settings: &Settings) -> Failure {
    let refused = |message: String| Failure::new(Exit::CodeRefused, message);
    match e {
        AccountError::NotOn => Failure::new(
            Exit::Conflict,
            format!("MFA is not on for {login}: turn it on first with `mailmfa enable {login}`"),
        ),
        AccountError::AlreadyOn { since } => Failure::new(
            Exit::Conflict,
            format!(
                "MFA is already on for {login} (since {}). To replace the secret (a new phone), \
                 add --replace and a current code of the old secret (--code CODE), or --replace \
                 --force",
                utc(since)
            ),
        ),
        AccountError::NoEnrolment => Failure::new(
            Exit::Conflict,
            format!(
                "no pending enrolment for {login}: start one with `mailmfa enable {login} --begin`"
            ),
        ),
        AccountError::EnrolmentExpired { at } => Failure::new(
            Exit::Expired,
            format!(
                "the enrolment of {login} expired at {}: MFA stays as it was. Start again with \
                 `mailmfa enable {login} --begin`",
                utc(at)
            ),
        ),
        AccountError::EnrolmentCancelled => Failure::new(
            Exit::Expired,
            format!(
                "wrong code for {login}, the {}th: the enrolment is cancelled and MFA stays as it \
                 was. Check the phone's clock, then start again with --begin",
                settings.max_failures
            ),
        ),
        AccountError::EnabledMeanwhile => Failure::new(
            Exit::Conflict,
            format!(
                "MFA was turned on for {login} after this enrolment began: start again with \
                 `mailmfa enable {login} --begin --replace`"
            ),
        ),
        AccountError::CodeRefused(CodeRefusal::Wrong { tries_left }) => refused(format!(
            "wrong code for {login}: {}",
            tries_before_throttle(tries_left, settings)
        )),
        AccountError::CodeRefused(CodeRefusal::WrongRecovery { tries_left }) => refused(format!(
            "not an unused recovery code of {login}: {}",
            tries_before_throttle(tries_left, settings)
        )),
        AccountError::CodeRefused(CodeRefusal::Used) => refused(format!(
            "this code of {login} was already used (every code counts once): wait for the next \
             code and try again"
        )),
        AccountError::CodeRefused(CodeRefusal::Throttled { until }) => refused(format!(
            "too many wrong codes for {login}: no code is accepted until {}",
            utc(until)
        )),
        AccountError::AppPasswordExists(name) => Failure::new(
            Exit::Conflict,
            format!(
                "{login} already has an app password named `{name}`: choose another --label, or \
                 revoke it first (mailmfa app-password revoke {login} {name})"
            ),
        ),
        AccountError::NoSuchAppPassword(name) => Failure::new(
            Exit::Conflict,
            format!(
                "{login} has no app password named `{name}` (see mailmfa app-password list {login})"
            ),
        ),
        AccountError::Store(e) => Failure::from(e),
        e @ AccountError::BadCodeFormat { .. } => refused(e.to_string()),
        e @ AccountError::Invalid(_) => Failure::usage(e.to_string()),
        e @ AccountError::Random(_) => Failure::new(Exit::Error, e.to_string()),
    }
}

/// "N tries left before codes are refused for M minutes".
fn tries_before_throttle(left: u32, settings: &Settings) -> String {
    format!(
        "{} left before codes are refused for {} minutes",
        tries(left),
        settings.fail_interval.div_ceil(60)
    )
}

/// What every subcommand returns.
pub type CliResult = Result<(), Failure>;
