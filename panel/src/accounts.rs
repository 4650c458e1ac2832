//! The one adapter to the account layer (`mailmfa::account`): every rule of enrolment,
//! disabling, app passwords and recovery codes lives there; this file only builds the
//! context (the panel's Settings copy, who acts, from where, when) and runs the blocking
//! file work off the async threads. A change of the layer's signatures touches this file only.
//!
//! The panel's Settings copy has `state_dir = [panel] state_dir`: codes typed on the panel's
//! pages are replay-checked and throttled in the panel's own namespace, by the same rule as
//! the module's. Codes typed on pages are checked as client [`PAGE_CLIENT`]; the code at the
//! end of a sign-in as [`SIGN_IN_CLIENT`], so the code that signed in cannot be typed again
//! on a page.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mailmfa::config::Settings;
use mailmfa::login::Login;
use zeroize::Zeroizing;

use mailmfa::account as acct;

pub use acct::webmail::is_session_credential;
pub use acct::{
    AccountError, AppPasswordInfo, CodeRefusal, Disabled, Enrolment, NewAppPassword, Status,
};

/// The client name for codes typed on the panel's pages.
pub const PAGE_CLIENT: &str = "mailmfa-panel";
/// The client name for the code at the end of a panel sign-in.
pub const SIGN_IN_CLIENT: &str = "mailmfa-panel-sign-in";

/// Which face acts (for the audit line the account layer writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Face {
    /// The HTML pages.
    Panel,
    /// The JSON API, as the mailbox owner.
    Api,
    /// The JSON API with the admin token.
    Admin,
    /// The webmail plugin (admin token), for the owner signed in to webmail.
    Webmail,
}

/// Who acts on which mailbox, from where.
#[derive(Clone, Debug)]
pub struct Who {
    /// The mailbox.
    pub login: Login,
    /// The face.
    pub face: Face,
    /// The browser's or script's address.
    pub client: IpAddr,
}

/// How a change to an active record is authorised.
pub enum Proof {
    /// A code typed on the page (TOTP or recovery code).
    Code(Zeroizing<String>),
    /// The admin token (no code).
    Force,
}

/// The account layer with the panel's settings.
pub struct Accounts {
    settings: Settings,
    euid: u32,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn face(face: Face) -> acct::Face {
    match face {
        Face::Panel => acct::Face::Panel,
        Face::Api => acct::Face::Api,
        Face::Admin => acct::Face::Admin,
        Face::Webmail => acct::Face::Webmail,
    }
}

impl Accounts {
    /// The account layer over `settings` (already the panel's copy) as `euid`.
    pub fn new(settings: Settings, euid: u32) -> Arc<Accounts> {
        Arc::new(Accounts { settings, euid })
    }

    /// The settings the panel hands the layer.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn with<T>(&self, who: &Who, f: impl FnOnce(&acct::Ctx) -> T) -> T {
        let client = who.client.to_string();
        let ctx = acct::Ctx {
            settings: &self.settings,
            euid: self.euid,
            now: now(),
            actor: acct::Actor {
                face: face(who.face),
                client: Some(&client),
            },
        };
        f(&ctx)
    }

    /// MFA status of the mailbox.
    pub fn status(&self, who: &Who) -> Result<Status, AccountError> {
        self.with(who, |ctx| acct::status(ctx, &who.login))
    }

    /// The code at the end of a sign-in (its step is then used in the panel's state).
    pub fn check_sign_in_code(&self, who: &Who, code: &str) -> Result<(), AccountError> {
        self.with(who, |ctx| {
            acct::check_code(ctx, &who.login, code, SIGN_IN_CLIENT)
        })
    }

    /// Whether a sign-in ended in one of the mailbox's recovery codes (the module has just
    /// accepted and used it up): the way in for an owner who lost the phone.
    pub fn is_sign_in_recovery_code(&self, who: &Who, tail: &str) -> Result<bool, AccountError> {
        self.with(who, |ctx| {
            use mailmfa::store::Store as _;
            Ok(match ctx.store().read_record(&who.login)? {
                Some(record) => acct::is_recovery_code_of(&record, tail),
                None => false,
            })
        })
    }

    /// A current code typed on a page.
    pub fn check_code(&self, who: &Who, typed: &str) -> Result<(), AccountError> {
        self.with(who, |ctx| {
            acct::check_code(ctx, &who.login, typed, PAGE_CLIENT)
        })
    }

    /// Starts an enrolment (a new pending secret); `replace` when MFA is on.
    pub fn begin(&self, who: &Who, replace: Option<&Proof>) -> Result<Enrolment, AccountError> {
        self.with(who, |ctx| {
            let proof = replace.map(|p| match p {
                Proof::Code(c) => acct::Proof::Code(c.as_str()),
                Proof::Force => acct::Proof::Force,
            });
            acct::begin(ctx, &who.login, None, proof, PAGE_CLIENT)
        })
    }

    /// The pending enrolment as it stands.
    pub fn pending(&self, who: &Who) -> Result<Option<Enrolment>, AccountError> {
        self.with(who, |ctx| acct::pending(ctx, &who.login))
    }

    /// Confirms the pending enrolment with a code from the new secret.
    pub fn confirm(&self, who: &Who, typed: &str) -> Result<(), AccountError> {
        self.with(who, |ctx| acct::confirm(ctx, &who.login, typed).map(|_| ()))
    }

    /// Turns MFA off.
    pub fn disable(&self, who: &Who, proof: &Proof) -> Result<Disabled, AccountError> {
        self.with(who, |ctx| {
            let proof = match proof {
                Proof::Code(c) => acct::Proof::Code(c.as_str()),
                Proof::Force => acct::Proof::Force,
            };
            acct::disable(ctx, &who.login, proof, PAGE_CLIENT)
        })
    }

    /// Adds an app password (the caller checked a code first).
    pub fn add_app_password(
        &self,
        who: &Who,
        name: &str,
        services: &[String],
        expires: Option<u64>,
    ) -> Result<NewAppPassword, AccountError> {
        self.with(who, |ctx| {
            acct::add_app_password(ctx, &who.login, name, services, expires)
        })
    }

    /// A webmail session credential (the webmail's login with password+code came first).
    pub fn new_session_credential(
        &self,
        who: &Who,
        from: &[String],
        services: &[String],
        lifetime: u64,
    ) -> Result<NewAppPassword, AccountError> {
        self.with(who, |ctx| {
            acct::new_session_credential(ctx, &who.login, from, services, lifetime)
        })
    }

    /// The mailbox's app passwords.
    pub fn list_app_passwords(&self, who: &Who) -> Result<Vec<AppPasswordInfo>, AccountError> {
        self.with(who, |ctx| acct::list_app_passwords(ctx, &who.login))
    }

    /// Revokes one app password.
    pub fn revoke_app_password(&self, who: &Who, name: &str) -> Result<(), AccountError> {
        self.with(who, |ctx| acct::revoke_app_password(ctx, &who.login, name))
    }

    /// A new set of recovery codes (the caller checked a code first).
    pub fn new_recovery_codes(&self, who: &Who) -> Result<Vec<Zeroizing<String>>, AccountError> {
        self.with(who, |ctx| acct::new_recovery_codes(ctx, &who.login))
    }
}

/// `"imap,smtp"` → the services list (empty: all).
pub fn parse_services(list: &str) -> Result<Vec<String>, AccountError> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    acct::parse_services(list)
}

/// Runs blocking account work off the async threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The HTTP status of an account error's stable code (the contract's table).
pub fn http_status(error: &AccountError) -> u16 {
    match error.code() {
        "invalid_input" => 400,
        "not_found" => 404,
        "mfa_not_on" | "mfa_already_on" | "no_enrolment" | "exists" | "conflict" => 409,
        "enrolment_expired" | "enrolment_cancelled" => 410,
        "code_refused" | "bad_code_format" | "code_used" => 422,
        "throttled" => 429,
        "storage" => 503,
        _ => 500,
    }
}
