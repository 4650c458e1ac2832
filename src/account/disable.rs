//! Turning MFA off. Needs a current code, checked like a login code (replay rules and
//! throttle, as the caller's client), or an unused recovery code (which it uses up), or force
//! for admins. Removes the record, with its app passwords and recovery codes, the state and
//! any pending enrolment.

use super::audit::Event;
use super::code;
use super::{AccountError, Ctx, Proof};
use crate::login::Login;
use crate::store::{Store, StoreError};

/// What [`disable`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disabled {
    /// MFA was on and is off now.
    Off,
    /// MFA was not on; a pending enrolment was removed.
    PendingOnly,
}

/// Turns MFA off for `login` with `proof` (a code is checked like a login from `client`). A
/// damaged record can only be removed by force: no code can be checked against it (the error
/// is then [`AccountError::Store`] with [`StoreError::BadRecord`]). Audited as `disable`.
pub fn disable(
    ctx: &Ctx,
    login: &Login,
    proof: Proof,
    client: &str,
) -> Result<Disabled, AccountError> {
    let force = matches!(proof, Proof::Force);
    let mut how = None;
    let audit = |result, reason, force, how| {
        let mut event = Event::new("disable", login, result);
        event.force = force;
        event.reason = reason;
        event.how = how;
        event.send(ctx);
    };
    let store = ctx.store();
    let pending_store = ctx.pending();
    let record = match store.read_record(login) {
        Ok(record) => record,
        Err(StoreError::BadRecord { .. }) if force => None,
        Err(e) => return Err(e.into()),
    };
    let damaged = record.is_none() && store.files().record_path(login).exists();
    if record.is_none() && !damaged {
        if pending_store.remove(login)? {
            audit("ok", Some("pending_only"), force, None);
            return Ok(Disabled::PendingOnly);
        }
        return Err(AccountError::NotOn);
    }
    if let (Some(record), Proof::Code(typed)) = (&record, proof) {
        if let Err(e) = code::verify(ctx, &store, login, record, typed, client) {
            audit("refused", Some("code_refused"), false, None);
            return Err(e);
        }
        how = Some(if code::is_recovery_code_of(record, typed) {
            "recovery-code"
        } else {
            "code"
        });
    }
    store.remove_user(login)?;
    pending_store.remove(login)?;
    audit("ok", None, force, how);
    Ok(Disabled::Off)
}
