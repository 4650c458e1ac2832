//! The account layer: the rules for changing a user's second factor, shared by every face
//! that changes it — the `mailmfa` command, the web panel and its JSON API. A face parses its
//! input, calls one function here and shows the result; the rules (which state allows which
//! change, how a code is checked, what is written under which lock) and the audit line of
//! every change or refusal live here, once.
//!
//! - [`enrol`] — turning MFA on: a new secret, pending until a code of it is confirmed.
//! - [`disable`] — turning MFA off with a current code, a recovery code, or by force.
//! - [`code`] — a code typed by the user, checked like a login.
//! - [`app_password`] — per-device passwords for mail clients.
//! - [`recovery`] — one-time codes for a lost phone.
//! - [`status`] — what is known about a login, without its secret.
//! - [`uri`] — the `otpauth://` URI an authenticator app scans.
//! - [`webmail`] — session credentials for a webmail login made with password+code.
//! - [`audit`] — the audit line.
//!
//! This file holds what they share: the context of a call ([`Ctx`]), the errors
//! ([`AccountError`]) and [`change_record`], the one way to edit an active record.

pub mod app_password;
pub mod audit;
pub mod code;
pub mod disable;
pub mod enrol;
pub mod recovery;
pub mod status;
pub mod uri;
pub mod webmail;

pub use app_password::{
    add_app_password, expire_app_passwords, list_app_passwords, parse_services,
    revoke_app_password, AppPasswordInfo, NewAppPassword,
};
pub use code::{check_code, is_recovery_code_of};
pub use disable::{disable, Disabled};
pub use enrol::{begin, confirm, confirm_new, pending, Enrolment};
pub use recovery::new_recovery_codes;
pub use status::{status, Status};
pub use uri::otpauth_uri;
pub use webmail::new_session_credential;

use crate::auth;
use crate::config::Settings;
use crate::login::Login;
use crate::record::Record;
use crate::state::State;
use crate::store::backend::Backend;
use crate::store::pending::PendingStore;
use crate::store::{Store, StoreError};
use std::fmt;

/// Which face acts: it is named in the audit line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Face {
    /// The `mailmfa` command.
    Command,
    /// The web panel's pages, used by the mailbox's owner.
    Panel,
    /// The panel's JSON API.
    Api,
    /// An admin acting for the owner (admin token; like `--force`).
    Admin,
    /// The webmail plugin, for the owner signed in to webmail.
    Webmail,
}

impl Face {
    /// The name in the audit line's `face=`.
    pub fn name(self) -> &'static str {
        match self {
            Face::Command => "command",
            Face::Panel => "panel",
            Face::Api => "api",
            Face::Admin => "admin",
            Face::Webmail => "webmail",
        }
    }
}

/// Who acts, for the audit line.
#[derive(Clone, Copy, Debug)]
pub struct Actor<'a> {
    /// The face the change came through.
    pub face: Face,
    /// The browser's or API client's address, when known.
    pub client: Option<&'a str>,
}

/// The context of one call: the settings, who runs it and when.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// The settings (`record_dir`, `state_dir`, `window`, ...) as the caller wants them.
    pub settings: &'a Settings,
    /// The effective uid of this process (files are trusted when root or it owns them).
    pub euid: u32,
    /// Unix time of the call.
    pub now: u64,
    /// Who acts.
    pub actor: Actor<'a>,
}

impl Ctx<'_> {
    /// The store of records and state named in the settings.
    pub fn store(&self) -> Backend {
        Backend::open(self.settings, self.euid)
    }

    /// The store of pending enrolments.
    pub fn pending(&self) -> PendingStore {
        PendingStore::new(self.settings, self.euid)
    }
}

/// How a change to an active record is authorised.
#[derive(Clone, Copy, Debug)]
pub enum Proof<'a> {
    /// A code typed by the user: a current TOTP code (spaces allowed) or a recovery code,
    /// checked like a login.
    Code(&'a str),
    /// No code: an admin's `--force` (or the panel's admin token).
    Force,
}

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

/// Edits the active record of `login`: under the state lock the module takes (so two changes
/// cannot lose each other's, and `edit` sees the state a login would see), reads the record,
/// lets `edit` change it and the state, and writes both back. `edit` returning `Err` changes
/// nothing. A login without a record is refused with [`AccountError::NotOn`]. A rebuilt state
/// is repaired against the record as it was before the edit ([`auth::repair_rebuilt`]), so
/// that a new set of recovery codes does not count as used.
pub fn change_record<T>(
    ctx: &Ctx,
    login: &Login,
    edit: &mut dyn FnMut(&mut Record, &mut State) -> Result<T, AccountError>,
) -> Result<T, AccountError> {
    let store: &dyn Store = &ctx.store();
    let mut result = None;
    let update = store.update_state(login, &mut |state| {
        let mut record = match store.read_record(login) {
            Ok(Some(record)) => record,
            Ok(None) => {
                result = Some(Err(AccountError::NotOn));
                return false;
            }
            Err(e) => {
                result = Some(Err(e.into()));
                return false;
            }
        };
        auth::repair_rebuilt(state, &record, ctx.now, ctx.settings);
        let before = state.clone();
        let outcome = match edit(&mut record, state) {
            Ok(value) => value,
            Err(e) => {
                *state = before;
                result = Some(Err(e));
                return false;
            }
        };
        if let Err(e) = store.write_record(login, &record) {
            *state = before;
            result = Some(Err(e.into()));
            return false;
        }
        result = Some(Ok(outcome));
        *state != before
    });
    update?;
    result.unwrap_or_else(|| Err(no_update()))
}

/// The error of a state update whose closure did not run (a store that broke its contract).
fn no_update() -> AccountError {
    AccountError::Store(StoreError::Write {
        path: std::path::PathBuf::new(),
        why: "the state update did not run".to_string(),
    })
}

/// The error of the OS random source.
fn random(e: getrandom::Error) -> AccountError {
    AccountError::Random(e.to_string())
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

    /// A whole life through the layer, on real directories: enrol (a wrong code, then a right
    /// one), status, app passwords, recovery codes, then off by a recovery code.
    #[test]
    fn an_account_from_enrolment_to_disable() {
        use std::os::unix::fs::PermissionsExt;
        let top = tempfile::tempdir().unwrap();
        let mut settings = Settings::default();
        for (name, dir) in [
            ("users", &mut settings.record_dir),
            ("state", &mut settings.state_dir),
        ] {
            let path = top.path().join(name);
            std::fs::create_dir(&path).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
            *dir = path;
        }
        std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let ctx = Ctx {
            settings: &settings,
            euid: crate::pam::sys::effective_uid(),
            now: 1_800_000_000,
            actor: Actor {
                face: Face::Api,
                client: Some("192.0.2.7"),
            },
        };
        let login = Login::parse(b"alice").unwrap();
        assert!(matches!(status(&ctx, &login), Ok(Status { on: false, .. })));
        assert!(matches!(
            confirm(&ctx, &login, "123456"),
            Err(AccountError::NoEnrolment)
        ));

        let enrolment = begin(&ctx, &login, Some("phone"), None, "test").unwrap();
        assert!(enrolment
            .uri
            .starts_with("otpauth://totp/mailmfa:alice?secret="));
        assert_eq!(pending(&ctx, &login).unwrap().unwrap().key, enrolment.key);
        let params = enrolment.record.params();
        let step = params.step_at(ctx.now);
        let right = String::from_utf8(params.code(step).to_vec()).unwrap();
        let wrong = String::from_utf8(params.code(step + 5).to_vec()).unwrap();
        assert!(matches!(
            confirm(&ctx, &login, &wrong),
            Err(AccountError::CodeRefused(CodeRefusal::Wrong {
                tries_left: 4
            }))
        ));
        assert!(matches!(
            confirm(&ctx, &login, "12 34"),
            Err(AccountError::BadCodeFormat { digits: 6 })
        ));
        confirm(&ctx, &login, &right).unwrap();
        let on = status(&ctx, &login).unwrap();
        assert!(on.on && on.label.as_deref() == Some("phone") && on.pending_expires.is_none());
        assert!(matches!(
            begin(&ctx, &login, None, None, "test"),
            Err(AccountError::AlreadyOn { .. })
        ));
        // The confirming code counts as used.
        assert!(matches!(
            check_code(&ctx, &login, &right, "test"),
            Err(AccountError::CodeRefused(CodeRefusal::Used))
        ));

        let services = parse_services("imap,smtp").unwrap();
        let app = add_app_password(&ctx, &login, "laptop", &services, None).unwrap();
        assert_eq!(app.password.len(), 23);
        assert!(matches!(
            add_app_password(&ctx, &login, "laptop", &[], None),
            Err(AccountError::AppPasswordExists(_))
        ));
        assert!(matches!(
            add_app_password(&ctx, &login, "x", &[], Some(ctx.now)),
            Err(AccountError::Invalid(_))
        ));
        let listed = list_app_passwords(&ctx, &login).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].services, services);
        revoke_app_password(&ctx, &login, "laptop").unwrap();

        // Webmail session credentials: bound to addresses, bounded lifetimes, expired ones
        // removed when the next is made; owners cannot take the name prefix.
        let web = ["127.0.0.1".to_string()];
        let mail = ["dovecot".to_string()];
        let first = new_session_credential(&ctx, &login, &web, &mail, 3600).unwrap();
        assert!(first.name.starts_with(webmail::PREFIX));
        assert_eq!(first.expires, Some(ctx.now + 3600));
        for (from, services, lifetime) in [
            (&[][..], &mail[..], 3600),
            (&web[..], &[][..], 3600),
            (&web[..], &mail[..], 59),
            (&web[..], &mail[..], 86_401),
            (&["webmail.example".to_string()][..], &mail[..], 3600),
        ] {
            assert!(matches!(
                new_session_credential(&ctx, &login, from, services, lifetime),
                Err(AccountError::Invalid(_))
            ));
        }
        let later = Ctx {
            now: ctx.now + 3600,
            ..ctx
        };
        let second = new_session_credential(&later, &login, &web, &mail, 3600).unwrap();
        let listed = list_app_passwords(&later, &login).unwrap();
        assert_eq!(listed.len(), 1, "the expired first one is gone");
        assert_eq!(
            (listed[0].name.as_str(), &listed[0].from[..]),
            (second.name.as_str(), &web[..])
        );
        assert!(matches!(
            add_app_password(&ctx, &login, "webmail-mine", &[], None),
            Err(AccountError::Invalid(_))
        ));
        revoke_app_password(&ctx, &login, &second.name).unwrap();
        assert!(matches!(
            revoke_app_password(&ctx, &login, "laptop"),
            Err(AccountError::NoSuchAppPassword(_))
        ));

        let codes = new_recovery_codes(&ctx, &login).unwrap();
        let counted = status(&ctx, &login).unwrap();
        assert_eq!((counted.recovery_left, counted.recovery_total), (10, 10));
        assert_eq!(
            disable(&ctx, &login, Proof::Code(&codes[0]), "test").unwrap(),
            Disabled::Off
        );
        assert!(matches!(
            disable(&ctx, &login, Proof::Force, "test"),
            Err(AccountError::NotOn)
        ));
        assert!(matches!(
            new_recovery_codes(&ctx, &login),
            Err(AccountError::NotOn)
        ));
    }
}
