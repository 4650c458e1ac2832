//! Exit codes of the `mailmfa` command and the one error type every subcommand returns.
//!
//! The codes are part of the interface (panels and scripts branch on them); they are listed in
//! `mailmfa --help` and in the man page, and must not change meaning.

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

/// What every subcommand returns.
pub type CliResult = Result<(), Failure>;
