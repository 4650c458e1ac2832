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
//! - [`error`] — why a change did not happen: the errors and their stable names.
//!
//! This file holds what they share: the context of a call ([`Ctx`]), how a change is
//! authorised ([`Proof`]) and [`change_record`], the one way to edit an active record.

pub mod app_password;
pub mod audit;
pub mod code;
pub mod disable;
pub mod enrol;
pub mod error;
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
pub use error::{tries, AccountError, CodeRefusal};
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
