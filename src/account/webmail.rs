//! Webmail session credentials. Webmail (Roundcube) logs in to IMAP again on nearly every
//! request with the string the user typed, long after its code has left the window. After a
//! webmail login with password+code, the webmail plugin trades that login for a session
//! credential: an app password named `webmail-…` that works only from the webmail host's
//! addresses, only for the mail services, and only for a bounded lifetime; the plugin revokes
//! it at logout and replaces it before it runs out. Expired ones are removed when the mailbox's
//! next one is made. The typed string is then worth nothing after its code's window.

use super::app_password::{added, check_services, forget_use, generate, NewAppPassword};
use super::{change_record, random, AccountError, Ctx};
use crate::login::{printable, Login};
use crate::record::Record;

/// The name prefix of session credentials (owners cannot use it for their app passwords).
pub const PREFIX: &str = "webmail-";
/// The shortest lifetime, in seconds.
pub const MIN_LIFETIME: u64 = 60;
/// The longest lifetime, in seconds (a day; the plugin replaces it before it runs out).
pub const MAX_LIFETIME: u64 = 86_400;
/// How many addresses a session credential may name.
pub const MAX_FROM: usize = 8;

/// Whether `name` names a webmail session credential.
pub fn is_session_credential(name: &str) -> bool {
    name.starts_with(PREFIX)
}

/// Makes a session credential for `login` (MFA must be on): usable from the addresses in
/// `from` (the webmail host as the mail server sees it; 1 to [`MAX_FROM`] IP addresses), for
/// the PAM `services` (at least one), for `lifetime` seconds ([`MIN_LIFETIME`] to
/// [`MAX_LIFETIME`]). Removes the mailbox's expired session credentials on the way. Audited
/// as `webmail-credential` (the face and client of `ctx` name the webmail and the browser).
pub fn new_session_credential(
    ctx: &Ctx,
    login: &Login,
    from: &[String],
    services: &[String],
    lifetime: u64,
) -> Result<NewAppPassword, AccountError> {
    if !(MIN_LIFETIME..=MAX_LIFETIME).contains(&lifetime) {
        return Err(AccountError::Invalid(format!(
            "a webmail session credential lives {MIN_LIFETIME} s to {MAX_LIFETIME} s, not {lifetime} s"
        )));
    }
    if from.is_empty() || from.len() > MAX_FROM {
        return Err(AccountError::Invalid(format!(
            "name 1 to {MAX_FROM} addresses the webmail host connects from"
        )));
    }
    let mut addresses = Vec::with_capacity(from.len());
    for a in from {
        let ip: std::net::IpAddr = a.trim().parse().map_err(|_| {
            AccountError::Invalid(format!(
                "`{}` is not an IP address",
                printable(a.as_bytes())
            ))
        })?;
        addresses.push(ip.to_canonical().to_string());
    }
    if services.is_empty() {
        return Err(AccountError::Invalid(
            "name the PAM services a webmail session uses (e.g. dovecot, imap, smtp)".into(),
        ));
    }
    check_services(services)?;
    let suffix = crate::credential::random_letters(10, 10).map_err(random)?;
    let name = format!("{PREFIX}{}", suffix.as_str());
    let (app, password) = generate(ctx, &name, services, Some(ctx.now + lifetime), addresses)?;
    change_record(ctx, login, &mut |record, state| {
        for gone in expired(record, ctx.now) {
            record.app_passwords.retain(|a| a.name != gone);
            forget_use(state, &gone);
        }
        record.app_passwords.push(app.clone());
        forget_use(state, &app.name);
        Ok(())
    })?;
    Ok(added(ctx, login, "webmail-credential", app, password))
}

/// The names of `record`'s session credentials that have expired at `now`.
fn expired(record: &Record, now: u64) -> Vec<String> {
    record
        .app_passwords
        .iter()
        .filter(|a| is_session_credential(&a.name) && a.expires.is_some_and(|e| e <= now))
        .map(|a| a.name.clone())
        .collect()
}
