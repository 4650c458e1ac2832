//! Turning MFA on. A new secret is shown once (its URI and key), and MFA is on only after a
//! right code of it was typed: in two steps through a pending enrolment that expires
//! ([`begin`], then [`confirm`]), or in one sitting without a pending file ([`prepare`], then
//! [`confirm_new`]).
//!
//! An active record is replaced only with a proof: a current code of the old secret (checked
//! like a login) or force. Confirming writes the record and marks the confirming code's step
//! as used in a fresh state, under the state lock the module takes, so the confirming code
//! cannot log in afterwards.

use super::audit::Event;
use super::code::{self, normalise};
use super::uri::otpauth_uri;
use super::{no_update, random, AccountError, CodeRefusal, Ctx, Proof};
use crate::auth::{self, Attempt};
use crate::login::Login;
use crate::otp::Algorithm;
use crate::record::Record;
use crate::state::State;
use crate::store::backend::Backend;
use crate::store::pending::{Pending, PENDING_LIFETIME};
use crate::store::{Store, StoreError};
use zeroize::Zeroizing;

/// The client name the confirming code is recorded under in the state.
pub const ENABLE_CLIENT: &str = "mailmfa-enable";

/// The client name a code of the old secret is checked as, when the command replaces a secret.
pub const REPLACE_CLIENT: &str = "mailmfa-replace";

/// Bytes of a new secret: 160 bits, the size RFC 4226 recommends for HMAC-SHA-1.
pub const SECRET_BYTES: usize = 20;

/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 100;

/// A new secret waiting for its confirming code.
pub struct Enrolment {
    /// The record that confirming turns on (holds the new secret).
    pub record: Record,
    /// The `otpauth://` URI for the QR code (holds the secret).
    pub uri: Zeroizing<String>,
    /// The secret in base32, in groups of four, for typing in by hand.
    pub key: Zeroizing<String>,
    /// Unix time after which the enrolment is refused.
    pub expires_at: u64,
    /// Confirming replaces an active record.
    pub replace: bool,
    /// An earlier pending enrolment was replaced by this one.
    pub replaced_pending: bool,
    /// The replacement was forced (for the audit line).
    forced: bool,
}

impl Enrolment {
    fn new(ctx: &Ctx, login: &Login, record: Record, replace: bool) -> Enrolment {
        let uri = otpauth_uri(&ctx.settings.issuer, login, &record);
        let key = grouped(&record.secret_base32());
        Enrolment {
            record,
            uri,
            key,
            expires_at: ctx.now + PENDING_LIFETIME,
            replace,
            replaced_pending: false,
            forced: false,
        }
    }
}

/// The key in groups of four, as apps show it.
fn grouped(key: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(key.len() + key.len() / 4));
    for (i, c) in key.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// Starts an enrolment: a new secret for `login`, kept as a pending enrolment that
/// [`confirm`] turns on before it expires (it replaces any earlier pending one). Without an
/// active record, `replace` is not needed; with one, it must be `Some(proof)`:
/// [`Proof::Code`] is checked as a current code of the old secret like a login from `client`,
/// [`Proof::Force`] is not (and also replaces a damaged record). Audited as `enable-begin`.
pub fn begin(
    ctx: &Ctx,
    login: &Login,
    label: Option<&str>,
    replace: Option<Proof>,
    client: &str,
) -> Result<Enrolment, AccountError> {
    let mut enrolment = prepare(ctx, login, label, replace, client, Flow::Pending)?;
    keep(ctx, login, &mut enrolment)?;
    Ok(enrolment)
}

/// Which way a new secret will be confirmed, for the audit line of a refused proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Through a pending enrolment ([`keep`], then [`confirm`]): `enable-begin`.
    Pending,
    /// In one sitting ([`confirm_new`]): `enable`.
    Interactive,
}

/// The first half of [`begin`]: checks the label and the proof and makes the new secret, and
/// stores nothing, so the caller may first write what shows it (the command's QR image
/// files). For [`Flow::Pending`], [`keep`] then stores it; for [`Flow::Interactive`] the
/// secret lives only in the caller, which shows it and calls [`confirm_new`].
pub fn prepare(
    ctx: &Ctx,
    login: &Login,
    label: Option<&str>,
    replace: Option<Proof>,
    client: &str,
    flow: Flow,
) -> Result<Enrolment, AccountError> {
    let action = match flow {
        Flow::Pending => "enable-begin",
        Flow::Interactive => "enable",
    };
    check_label(label)?;
    let forced = matches!(replace, Some(Proof::Force));
    let replace = authorise_replace(ctx, login, replace, client, action)?;
    let record = new_record(ctx, label)?;
    let mut enrolment = Enrolment::new(ctx, login, record, replace);
    enrolment.forced = forced;
    Ok(enrolment)
}

/// The second half of [`begin`]: keeps `enrolment` as the pending enrolment of `login` (and
/// sets its `replaced_pending`). Audited as `enable-begin`.
pub fn keep(ctx: &Ctx, login: &Login, enrolment: &mut Enrolment) -> Result<(), AccountError> {
    let pending_store = ctx.pending();
    enrolment.replaced_pending = pending_store
        .read(login)
        .map(|p| p.is_some())
        .unwrap_or(true);
    let pending = Pending {
        record: enrolment.record.clone(),
        expires_at: enrolment.expires_at,
        replace: enrolment.replace,
        failed: 0,
    };
    pending_store.write(login, &pending)?;
    let mut event = Event::new("enable-begin", login, "ok");
    event.replace = enrolment.replace;
    event.force = enrolment.forced;
    event.send(ctx);
    Ok(())
}

/// A label is at most [`MAX_LABEL_CHARS`] characters of text.
pub fn check_label(label: Option<&str>) -> Result<(), AccountError> {
    match label {
        Some(label)
            if label.chars().count() > MAX_LABEL_CHARS || label.chars().any(char::is_control) =>
        {
            Err(AccountError::Invalid(format!(
                "a label is at most {MAX_LABEL_CHARS} characters of text, no control characters"
            )))
        }
        _ => Ok(()),
    }
}

/// A record with a fresh 160-bit secret from the OS random source and the settings' digits
/// and period.
fn new_record(ctx: &Ctx, label: Option<&str>) -> Result<Record, AccountError> {
    let mut secret = vec![0u8; SECRET_BYTES];
    getrandom::fill(&mut secret).map_err(random)?;
    let mut record = Record::new(
        secret,
        Algorithm::SHA1,
        ctx.settings.digits,
        ctx.settings.period,
        ctx.now,
    )
    .map_err(|e| AccountError::Random(format!("cannot make a record: {e}")))?;
    record.label = label.map(str::to_string);
    Ok(record)
}

/// Decides whether an active record may be replaced: `Ok(false)` when there is none,
/// `Ok(true)` with a right code of the old secret or force (also for a damaged record). Its
/// app passwords and recovery codes carry over when the new secret is confirmed (see
/// [`activate`]).
fn authorise_replace(
    ctx: &Ctx,
    login: &Login,
    replace: Option<Proof>,
    client: &str,
    action: &str,
) -> Result<bool, AccountError> {
    let store = ctx.store();
    let old = match (store.read_record(login), &replace) {
        (Ok(None), _) => return Ok(false),
        (Ok(Some(old)), _) => old,
        // A damaged record can only be replaced by force: no code of it can be checked.
        (Err(StoreError::BadRecord { .. }), Some(Proof::Force)) => return Ok(true),
        (Err(e), _) => return Err(e.into()),
    };
    match replace {
        None => Err(AccountError::AlreadyOn { since: old.created }),
        Some(Proof::Force) => Ok(true),
        Some(Proof::Code(typed)) => {
            let used = code::verify(ctx, &store, login, &old, typed, client).inspect_err(|_| {
                let mut event = Event::new(action, login, "refused");
                event.replace = true;
                event.reason = Some("old_code_refused");
                event.send(ctx);
            })?;
            if let Some(notice) = used {
                super::audit::spool(ctx, &notice);
            }
            Ok(true)
        }
    }
}

/// Confirms the pending enrolment of `login` with `typed`, a code of its new secret: a right
/// code turns MFA on (the record is written and the code's step marked used) and returns the
/// record; a wrong one is counted, and after `max_failures` of them the enrolment is
/// cancelled. Audited as `enable-confirm` (not a code of the wrong shape).
pub fn confirm(ctx: &Ctx, login: &Login, typed: &str) -> Result<Record, AccountError> {
    let action = "enable-confirm";
    let pending_store = ctx.pending();
    let Some(mut pending) = pending_store.read(login)? else {
        return Err(AccountError::NoEnrolment);
    };
    let replace = pending.replace;
    let audit = |result, reason| {
        let mut event = Event::new(action, login, result);
        event.replace = replace;
        event.reason = reason;
        event.send(ctx);
    };
    if pending.expired(ctx.now) {
        pending_store.remove(login)?;
        audit("expired", Some("expired"));
        return Err(AccountError::EnrolmentExpired {
            at: pending.expires_at,
        });
    }
    let store = ctx.store();
    let active = match store.read_record(login) {
        Ok(record) => record.is_some(),
        Err(StoreError::BadRecord { .. }) if pending.replace => true,
        Err(e) => return Err(e.into()),
    };
    if active && !pending.replace {
        return Err(AccountError::EnabledMeanwhile);
    }
    let code = normalise(typed, pending.record.digits)?;
    if !code::confirms(ctx, &pending.record, &code) {
        let failed = pending.failed + 1;
        let max = ctx.settings.max_failures;
        if failed >= max {
            pending_store.remove(login)?;
            audit("expired", Some("too_many_codes"));
            return Err(AccountError::EnrolmentCancelled);
        }
        pending.failed = failed;
        pending_store.write(login, &pending)?;
        audit("refused", Some("bad_code"));
        return Err(AccountError::CodeRefused(CodeRefusal::Wrong {
            tries_left: max - failed,
        }));
    }
    let mut record = pending.record.clone();
    record.created = ctx.now;
    activate(ctx, &store, login, &record, &code)?;
    pending_store.remove(login)?;
    audit("ok", None);
    Ok(record)
}

/// Turns `record` (made by [`prepare`] for [`Flow::Interactive`]) on when `typed` is one of its codes. A wrong code
/// changes nothing (the caller decides how often to ask). Audited as `enable`.
pub fn confirm_new(
    ctx: &Ctx,
    login: &Login,
    record: &Record,
    typed: &str,
) -> Result<(), AccountError> {
    let code = normalise(typed, record.digits)?;
    if !code::confirms(ctx, record, &code) {
        let mut event = Event::new("enable", login, "refused");
        event.reason = Some("bad_code");
        event.send(ctx);
        return Err(AccountError::CodeRefused(CodeRefusal::Wrong {
            tries_left: 0,
        }));
    }
    let mut record = record.clone();
    record.created = ctx.now;
    let replaced = activate(ctx, &ctx.store(), login, &record, &code)?;
    let mut event = Event::new("enable", login, "ok");
    event.replace = replaced;
    event.send(ctx);
    Ok(())
}

/// The pending enrolment of `login` as it stands, `None` when there is none or it expired
/// (a face shows its QR code again after a wrong code).
pub fn pending(ctx: &Ctx, login: &Login) -> Result<Option<Enrolment>, AccountError> {
    let Some(pending) = ctx.pending().read(login)? else {
        return Ok(None);
    };
    if pending.expired(ctx.now) {
        return Ok(None);
    }
    let mut enrolment = Enrolment::new(ctx, login, pending.record, pending.replace);
    enrolment.expires_at = pending.expires_at;
    Ok(Some(enrolment))
}

/// Writes the record and marks the confirming code's step as used, in one critical section
/// under the state lock: what the state knows of codes starts afresh (its steps, sessions and
/// failures belonged to no secret or to the old one), the code is recorded like a login from
/// [`ENABLE_CLIENT`], then the record is written. A login of this user waits for the lock, so
/// it sees both or neither. When the record carries recovery codes over from the old one, the
/// state keeps which of them were used (all of them when the state was rebuilt), and the app
/// passwords' last uses. Returns whether an active record was replaced.
fn activate(
    ctx: &Ctx,
    store: &Backend,
    login: &Login,
    record: &Record,
    code: &[u8],
) -> Result<bool, AccountError> {
    let mut result = None;
    store.update_state(login, &mut |state| {
        // A new phone does not change the mail clients' app passwords or the printed recovery
        // codes: they carry over from the record being replaced, read now, under the lock.
        let mut record = record.clone();
        let current = store.read_record(login).ok().flatten();
        if let Some(current) = &current {
            record.app_passwords = current.app_passwords.clone();
            record.recovery_codes = current.recovery_codes.clone();
        }
        let record = &record;
        // A rebuilt state is repaired against the record in force (its recovery codes are the
        // ones carried over), and stays so if the new record is not written.
        auth::repair_rebuilt(
            state,
            current.as_ref().unwrap_or(record),
            ctx.now,
            ctx.settings,
        );
        let in_force = state.clone();
        let mut fresh = State::default();
        if !record.recovery_codes.is_empty() || !record.app_passwords.is_empty() {
            fresh.used_recovery = std::mem::take(&mut state.used_recovery);
            fresh.app_password_uses = std::mem::take(&mut state.app_password_uses);
        }
        *state = fresh;
        let attempt = Attempt::totp(code, ENABLE_CLIENT, ctx.now);
        let verdict = auth::decide_verify(record, state, attempt, ctx.settings);
        if !verdict.accepted() {
            result = Some(Err(AccountError::CodeRefused(CodeRefusal::Used)));
            *state = in_force;
            return false;
        }
        match store.write_record(login, record) {
            Ok(()) => {
                result = Some(Ok(current.is_some()));
                true
            }
            Err(e) => {
                result = Some(Err(e.into()));
                *state = in_force;
                false
            }
        }
    })?;
    result.unwrap_or_else(|| Err(no_update()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_grouped_by_four() {
        assert_eq!(grouped("ABCDEFGHIJ").as_str(), "ABCD EFGH IJ");
        assert_eq!(grouped("ABCD").as_str(), "ABCD");
    }

    #[test]
    fn labels_are_short_text() {
        assert!(check_label(None).is_ok());
        assert!(check_label(Some("phone")).is_ok());
        assert!(check_label(Some("a\nb")).is_err());
        assert!(check_label(Some(&"x".repeat(101))).is_err());
    }
}
