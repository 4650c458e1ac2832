//! Why an account change did not happen: [`AccountError`], with a stable name for APIs and a
//! message that says what happened and what to do, and [`CodeRefusal`], why a code was refused.

use crate::store::StoreError;
use std::fmt;

/// Why a code was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeRefusal {
    /// Not a current code; `tries_left` before the throttle (or the enrolment's end) stops codes.
    Wrong {
        /// Wrong codes still accepted.
        tries_left: u32,
    },
    /// Not an unused recovery code; `tries_left` before the throttle stops codes.
    WrongRecovery {
        /// Wrong codes still accepted.
        tries_left: u32,
    },
    /// The code (or its time step) was already used: every code counts once.
    Used,
    /// Too many wrong codes: none is accepted until `until` (Unix time).
    Throttled {
        /// When codes are accepted again.
        until: u64,
    },
}

/// Why an account change did not happen. [`AccountError::code`] is a stable name for APIs;
/// the Display text says what happened and what to do, never a secret.
#[derive(Debug)]
pub enum AccountError {
    /// MFA is not on for the login.
    NotOn,
    /// MFA is already on, since `since`: replacing it needs a proof.
    AlreadyOn {
        /// When the active record was created.
        since: u64,
    },
    /// No pending enrolment to confirm.
    NoEnrolment,
    /// The pending enrolment expired at `at` and was removed.
    EnrolmentExpired {
        /// When it expired.
        at: u64,
    },
    /// The pending enrolment was cancelled after too many wrong codes.
    EnrolmentCancelled,
    /// MFA was turned on after this enrolment began (without replacing).
    EnabledMeanwhile,
    /// The typed text is not a code: a code is `digits` digits.
    BadCodeFormat {
        /// Digits of a code.
        digits: u32,
    },
    /// The code was refused.
    CodeRefused(CodeRefusal),
    /// Bad input (label, name, services, expiry): the text says which rule.
    Invalid(String),
    /// An app password of this name exists.
    AppPasswordExists(String),
    /// No app password of this name.
    NoSuchAppPassword(String),
    /// The store failed or refused an unsafe file.
    Store(StoreError),
    /// The OS random source failed.
    Random(String),
}

impl AccountError {
    /// The stable name of the error (the JSON API's `error`).
    pub fn code(&self) -> &'static str {
        match self {
            AccountError::NotOn => "mfa_not_on",
            AccountError::AlreadyOn { .. } => "mfa_already_on",
            AccountError::NoEnrolment => "no_enrolment",
            AccountError::EnrolmentExpired { .. } => "enrolment_expired",
            AccountError::EnrolmentCancelled => "enrolment_cancelled",
            AccountError::EnabledMeanwhile => "conflict",
            AccountError::BadCodeFormat { .. } => "bad_code_format",
            AccountError::CodeRefused(CodeRefusal::Throttled { .. }) => "throttled",
            AccountError::CodeRefused(CodeRefusal::Used) => "code_used",
            AccountError::CodeRefused(_) => "code_refused",
            AccountError::Invalid(_) => "invalid_input",
            AccountError::AppPasswordExists(_) => "exists",
            AccountError::NoSuchAppPassword(_) => "not_found",
            AccountError::Store(_) => "storage",
            AccountError::Random(_) => "internal",
        }
    }
}

/// "1 try" or "N tries".
pub fn tries(n: u32) -> String {
    format!("{n} {}", if n == 1 { "try" } else { "tries" })
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountError::NotOn => f.write_str("MFA is not on: turn it on first"),
            AccountError::AlreadyOn { .. } => f.write_str(
                "MFA is already on: replacing the secret (a new phone) needs a current code of \
                 the old one",
            ),
            AccountError::NoEnrolment => {
                f.write_str("no pending enrolment: start one by turning MFA on")
            }
            AccountError::EnrolmentExpired { .. } => {
                f.write_str("the enrolment expired: MFA stays as it was; start again")
            }
            AccountError::EnrolmentCancelled => f.write_str(
                "too many wrong codes: the enrolment is cancelled and MFA stays as it was. \
                 Check the phone's clock, then start again",
            ),
            AccountError::EnabledMeanwhile => f.write_str(
                "MFA was turned on after this enrolment began: start again to replace it",
            ),
            AccountError::BadCodeFormat { digits } => write!(
                f,
                "a code is {digits} digits, as the authenticator app shows it"
            ),
            AccountError::CodeRefused(CodeRefusal::Wrong { tries_left }) => {
                write!(f, "wrong code: {} left", tries(*tries_left))
            }
            AccountError::CodeRefused(CodeRefusal::WrongRecovery { tries_left }) => write!(
                f,
                "not an unused recovery code: {} left",
                tries(*tries_left)
            ),
            AccountError::CodeRefused(CodeRefusal::Used) => f.write_str(
                "this code was already used (every code counts once): wait for the next code \
                 and try again",
            ),
            AccountError::CodeRefused(CodeRefusal::Throttled { .. }) => {
                f.write_str("too many wrong codes: no code is accepted for a while")
            }
            AccountError::Invalid(why) => f.write_str(why),
            AccountError::AppPasswordExists(name) => {
                write!(
                    f,
                    "an app password named `{name}` exists: choose another name"
                )
            }
            AccountError::NoSuchAppPassword(name) => {
                write!(f, "no app password named `{name}`")
            }
            AccountError::Store(e) => write!(f, "{e}"),
            AccountError::Random(why) => write!(f, "the OS random source failed: {why}"),
        }
    }
}

impl std::error::Error for AccountError {}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> AccountError {
        AccountError::Store(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_stable_code_and_a_message() {
        let cases = [
            (AccountError::NotOn, "mfa_not_on"),
            (AccountError::AlreadyOn { since: 1 }, "mfa_already_on"),
            (AccountError::NoEnrolment, "no_enrolment"),
            (
                AccountError::EnrolmentExpired { at: 1 },
                "enrolment_expired",
            ),
            (AccountError::EnrolmentCancelled, "enrolment_cancelled"),
            (AccountError::EnabledMeanwhile, "conflict"),
            (AccountError::BadCodeFormat { digits: 6 }, "bad_code_format"),
            (
                AccountError::CodeRefused(CodeRefusal::Wrong { tries_left: 1 }),
                "code_refused",
            ),
            (AccountError::CodeRefused(CodeRefusal::Used), "code_used"),
            (
                AccountError::CodeRefused(CodeRefusal::Throttled { until: 9 }),
                "throttled",
            ),
            (AccountError::Invalid("x".into()), "invalid_input"),
            (AccountError::AppPasswordExists("a".into()), "exists"),
            (AccountError::NoSuchAppPassword("a".into()), "not_found"),
            (AccountError::Random("r".into()), "internal"),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code);
            assert!(!error.to_string().is_empty());
        }
        assert_eq!(
            AccountError::CodeRefused(CodeRefusal::Wrong { tries_left: 1 }).to_string(),
            "wrong code: 1 try left"
        );
    }
}
