//! Telling mailbox owners what happened to their second factor: every change (MFA on, off,
//! replaced; app passwords made, revoked, expired; recovery codes made or used) and the alert
//! that someone has their password ("password known, code wrong").
//!
//! The path of an event, by file:
//!
//! - [`settings`] — the `[notify]` table of `mailmfa.toml`.
//! - [`event`] — one event ([`Notice`]) and its one-line spool format. Never a secret.
//! - [`alert`] — the rule of when wrong codes after a right password become an alert.
//! - [`spool`] — where events wait: the writers' side (the module, the command and the panel
//!   append one line, never failing or slowing what they do) and the notifier's side (claim,
//!   one durable file per mail, retries, merged alerts).
//! - [`message`] — the mail text of each kind, from `texts/` or the admin's `templates_dir`.
//! - [`deliver`] — one pass of the notifier (`mailmfa notify`): spool to sendmail.
//!
//! The account layer writes the events of changes (`account::audit`), the module those of
//! logins (`module`); neither sends mail. Docs: `docs/notifications.md`.

pub mod alert;
pub mod deliver;
pub mod event;
pub mod message;
pub mod settings;
pub mod spool;

pub use event::Notice;
pub use settings::NotifySettings;

use crate::config::Settings;

/// What happened, as named in the spool, the mail's `X-Mailmfa-Event` header, `events = [...]`
/// and the template file names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// MFA was turned on (an enrolment confirmed).
    MfaEnabled,
    /// A new enrolment replaced the active one (a new phone).
    MfaReplaced,
    /// MFA was turned off (`how`: with a code, a recovery code, or by an admin).
    MfaDisabled,
    /// An app password was made (`name`).
    AppPasswordCreated,
    /// An app password was revoked (`name`).
    AppPasswordRevoked,
    /// An app password reached its expiry and was removed (`name`).
    AppPasswordExpired,
    /// A new set of recovery codes was made; the old ones stopped working (`count`).
    RecoveryCodesCreated,
    /// A recovery code was used to log in (`left` unused).
    RecoveryCodeUsed,
    /// The right password with wrong codes (`count` within `fail_interval`).
    CodeWrong,
}

impl Kind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [Kind; 9] = [
        Kind::MfaEnabled,
        Kind::MfaReplaced,
        Kind::MfaDisabled,
        Kind::AppPasswordCreated,
        Kind::AppPasswordRevoked,
        Kind::AppPasswordExpired,
        Kind::RecoveryCodesCreated,
        Kind::RecoveryCodeUsed,
        Kind::CodeWrong,
    ];

    /// The stable name (`kind=` in the spool, `events = [...]` in the settings).
    pub fn name(self) -> &'static str {
        match self {
            Kind::MfaEnabled => "mfa-enabled",
            Kind::MfaReplaced => "mfa-replaced",
            Kind::MfaDisabled => "mfa-disabled",
            Kind::AppPasswordCreated => "app-password-created",
            Kind::AppPasswordRevoked => "app-password-revoked",
            Kind::AppPasswordExpired => "app-password-expired",
            Kind::RecoveryCodesCreated => "recovery-codes-created",
            Kind::RecoveryCodeUsed => "recovery-code-used",
            Kind::CodeWrong => "code-wrong",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// One bit per kind, for [`NotifySettings`]'s set of wanted kinds.
    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// Puts `notice` into the spool when the settings want its kind; returns why it could not,
/// for the caller's log line. Nothing is done (and nothing is opened) when notifications are
/// off. The caller never fails because of an `Err`: a login or a change goes on.
pub fn tell(settings: &Settings, euid: u32, notice: &Notice) -> Result<(), spool::SpoolError> {
    if !settings.notify.wants(notice.kind) {
        return Ok(());
    }
    spool::Spool::new(settings, euid).append(notice)
}
