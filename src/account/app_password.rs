//! App passwords: per-device passwords for mail clients that store the password and
//! reconnect all day.
//!
//! An app password is 20 generated letters (`abcde-fghij-klmno-pqrst`, 94 bits), shown once
//! and kept in the record only as a salted hash (see [`crate::credential`] for why a fast
//! hash). The module accepts it alone, in `split`, for its PAM services and until it expires;
//! its last use is in the state. Turning MFA off removes them all.

use super::audit::Event;
use super::{change_record, random, AccountError, Ctx};
use crate::credential::{self, APP_PASSWORD_LETTERS};
use crate::login::{printable, Login};
use crate::record::{is_valid_app_password_name, AppPassword};
use crate::state::State;
use crate::store::Store;
use zeroize::Zeroizing;

/// The rule for an app password's name, as said in messages.
pub const NAME_RULE: &str = "1 to 64 letters, digits, `.`, `_` or `-` (e.g. thunderbird-laptop)";

/// A new app password, shown once.
pub struct NewAppPassword {
    /// Its name (the device).
    pub name: String,
    /// The password (only its hash is kept).
    pub password: Zeroizing<String>,
    /// The PAM services it works for; empty for all.
    pub services: Vec<String>,
    /// When it was made.
    pub created: u64,
    /// When it stops working, if ever.
    pub expires: Option<u64>,
}

/// An app password as listed: never its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppPasswordInfo {
    /// Its name (the device).
    pub name: String,
    /// The PAM services it works for; empty for all.
    pub services: Vec<String>,
    /// When it was made.
    pub created: u64,
    /// When it stops working, if ever.
    pub expires: Option<u64>,
    /// Its last use.
    pub last_used: Option<u64>,
    /// The client address of its last use.
    pub last_client: Option<String>,
    /// The client addresses it works from; empty for any.
    pub from: Vec<String>,
}

/// Checks an app password's name against [`NAME_RULE`].
pub fn check_name(name: &str) -> Result<(), AccountError> {
    if is_valid_app_password_name(name) {
        return Ok(());
    }
    Err(AccountError::Invalid(format!(
        "an app password's name is {NAME_RULE}, not `{}`",
        printable(name.as_bytes())
    )))
}

/// `imap,smtp` → the PAM service names, without repeats. A PAM service is the name of the
/// pam.d file the server uses (Dovecot: `dovecot` by default, or `imap`/`pop3` with
/// `args = %s`; Postfix through saslauthd: `smtp`).
pub fn parse_services(list: &str) -> Result<Vec<String>, AccountError> {
    let mut services: Vec<String> = Vec::new();
    for service in list.split(',').map(str::trim) {
        check_service(service).map_err(|()| {
            AccountError::Invalid(format!(
                "services are a comma-separated list of PAM service names (the pam.d file \
                 names, e.g. dovecot,smtp), not `{}`; leave it out for all services",
                printable(list.as_bytes())
            ))
        })?;
        if !services.iter().any(|s| s == service) {
            services.push(service.to_string());
        }
    }
    Ok(services)
}

/// Checks each of `services` with [`check_service`].
pub(super) fn check_services(services: &[String]) -> Result<(), AccountError> {
    for service in services {
        check_service(service).map_err(|()| {
            AccountError::Invalid(format!(
                "`{}` is not a PAM service name",
                printable(service.as_bytes())
            ))
        })?;
    }
    Ok(())
}

/// A PAM service name: 1 to 64 letters, digits, `.`, `_` or `-`.
fn check_service(service: &str) -> Result<(), ()> {
    let valid = !service.is_empty()
        && service.len() <= 64
        && service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(())
    }
}

/// Adds an app password named `name` for `services` (empty: all), until `expires` (Unix time)
/// or for ever. MFA must be on. Audited as `app-password-add`.
pub fn add_app_password(
    ctx: &Ctx,
    login: &Login,
    name: &str,
    services: &[String],
    expires: Option<u64>,
) -> Result<NewAppPassword, AccountError> {
    check_name(name)?;
    check_services(services)?;
    if expires.is_some_and(|e| e <= ctx.now) {
        return Err(AccountError::Invalid(
            "an app password's expiry is in the future".to_string(),
        ));
    }
    if super::webmail::is_session_credential(name) {
        return Err(AccountError::Invalid(format!(
            "names starting with `{}` are kept for webmail sessions",
            super::webmail::PREFIX
        )));
    }
    let (app, password) = generate(ctx, name, services, expires, Vec::new())?;
    change_record(ctx, login, &mut |record, state| {
        if record.app_passwords.iter().any(|a| a.name == app.name) {
            return Err(AccountError::AppPasswordExists(app.name.clone()));
        }
        record.app_passwords.push(app.clone());
        forget_use(state, &app.name);
        Ok(())
    })?;
    Ok(added(ctx, login, "app-password-add", app, password))
}

/// Audits the app password `app` just added (as `action`) and hands it out, shown once.
pub(super) fn added(
    ctx: &Ctx,
    login: &Login,
    action: &str,
    app: AppPassword,
    password: Zeroizing<String>,
) -> NewAppPassword {
    let mut event = Event::new(action, login, "ok");
    event.name = Some(&app.name);
    event.send(ctx);
    NewAppPassword {
        name: app.name,
        password,
        services: app.services,
        created: app.created,
        expires: app.expires,
    }
}

/// A new app password `name` and its letters: only the salted hash goes into the record.
pub(super) fn generate(
    ctx: &Ctx,
    name: &str,
    services: &[String],
    expires: Option<u64>,
    from: Vec<String>,
) -> Result<(AppPassword, Zeroizing<String>), AccountError> {
    let password = credential::random_letters(APP_PASSWORD_LETTERS, 5).map_err(random)?;
    let salt = credential::random_salt().map_err(random)?;
    // The module hashes the letters alone (dashes are optional when typed).
    let letters = credential::app_password_letters(password.as_bytes())
        .ok_or_else(|| AccountError::Random("a generated app password has a wrong shape".into()))?;
    let app = AppPassword {
        name: name.to_string(),
        hash: credential::hash(&letters, &salt),
        services: services.to_vec(),
        created: ctx.now,
        expires,
        from,
    };
    Ok((app, password))
}

/// The app passwords of `login`, with their last uses. MFA must be on.
pub fn list_app_passwords(ctx: &Ctx, login: &Login) -> Result<Vec<AppPasswordInfo>, AccountError> {
    let store = ctx.store();
    let record = store.read_record(login)?.ok_or(AccountError::NotOn)?;
    let state = store.read_state(login)?.unwrap_or_default();
    Ok(record
        .app_passwords
        .into_iter()
        .map(|app| {
            let used = state.app_password_uses.iter().find(|u| u.name == app.name);
            AppPasswordInfo {
                last_used: used.map(|u| u.at),
                last_client: used.map(|u| u.client.clone()),
                name: app.name,
                services: app.services,
                created: app.created,
                expires: app.expires,
                from: app.from,
            }
        })
        .collect())
}

/// Revokes the app password `name` of `login`: it stops working at once. Audited as
/// `app-password-revoke`.
pub fn revoke_app_password(ctx: &Ctx, login: &Login, name: &str) -> Result<(), AccountError> {
    check_name(name)?;
    change_record(ctx, login, &mut |record, state| {
        let before = record.app_passwords.len();
        record.app_passwords.retain(|a| a.name != name);
        if record.app_passwords.len() == before {
            return Err(AccountError::NoSuchAppPassword(name.to_string()));
        }
        forget_use(state, name);
        Ok(())
    })?;
    let mut event = Event::new("app-password-revoke", login, "ok");
    event.name = Some(name);
    event.send(ctx);
    Ok(())
}

/// Removes the app passwords of `login` whose expiry has come (not the webmail plugin's
/// session credentials: they go when the next one is made) and returns their names. Each is
/// audited as `app-password-expire`, which tells the owner. The record is only rewritten
/// when one expired. Run for every login by the notifier (`mailmfa notify`).
pub fn expire_app_passwords(ctx: &Ctx, login: &Login) -> Result<Vec<String>, AccountError> {
    let expired = |app: &AppPassword| {
        app.expires.is_some_and(|e| e <= ctx.now)
            && !super::webmail::is_session_credential(&app.name)
    };
    let Some(record) = ctx.store().read_record(login)? else {
        return Ok(Vec::new());
    };
    if !record.app_passwords.iter().any(expired) {
        return Ok(Vec::new());
    }
    let gone = change_record(ctx, login, &mut |record, state| {
        let (gone, kept): (Vec<AppPassword>, Vec<AppPassword>) =
            record.app_passwords.drain(..).partition(|a| expired(a));
        record.app_passwords = kept;
        for app in &gone {
            forget_use(state, &app.name);
        }
        Ok(gone.into_iter().map(|a| a.name).collect::<Vec<_>>())
    })?;
    for name in &gone {
        let mut event = Event::new("app-password-expire", login, "ok");
        event.name = Some(name);
        event.send(ctx);
    }
    Ok(gone)
}

/// Drops the last use recorded under `name`: a new or revoked app password has none.
pub(super) fn forget_use(state: &mut State, name: &str) {
    state.app_password_uses.retain(|u| u.name != name);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_pam_service_names_without_repeats() {
        assert_eq!(parse_services("imap, smtp,imap").unwrap(), ["imap", "smtp"]);
        for bad in ["", "imap,", "../x", "im ap", "a/b"] {
            assert!(parse_services(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_follow_the_rule() {
        assert!(check_name("thunderbird-laptop").is_ok());
        assert!(check_name("a b").is_err());
        assert!(check_name("").is_err());
    }
}
