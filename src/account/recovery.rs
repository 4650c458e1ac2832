//! Recovery codes: one-time codes for an owner who lost the phone.
//!
//! Ten codes `abcd-efgh-ijkl` (56 bits each) are shown once; the record keeps only their
//! salted hashes ([`crate::credential`]), and a new set replaces the old one. A code is typed
//! after the password in place of the six-digit code, works once, and is checked like a login
//! code: under the state lock, under the throttle, marked used in the state.

use super::audit::Event;
use super::{change_record, random, AccountError, Ctx};
use crate::credential::{self, RECOVERY_CODE_COUNT, RECOVERY_LETTERS};
use crate::login::Login;
use zeroize::Zeroizing;

/// Most used-recovery-code marks a new set keeps from the sets before it (a state grows by
/// at most one set's worth of ids per regeneration, and never past this).
const KEPT_USED_RECOVERY: usize = 40;

/// A new set of recovery codes for `login` (MFA must be on); the old set stops working.
/// Audited as `recovery-codes`.
pub fn new_recovery_codes(
    ctx: &Ctx,
    login: &Login,
) -> Result<Vec<Zeroizing<String>>, AccountError> {
    replace_recovery_codes(ctx, login).map(|(codes, _)| codes)
}

/// Like [`new_recovery_codes`], and says how many codes the old set had.
pub fn replace_recovery_codes(
    ctx: &Ctx,
    login: &Login,
) -> Result<(Vec<Zeroizing<String>>, usize), AccountError> {
    let mut codes: Vec<Zeroizing<String>> = Vec::with_capacity(RECOVERY_CODE_COUNT);
    let mut hashes = Vec::with_capacity(RECOVERY_CODE_COUNT);
    while codes.len() < RECOVERY_CODE_COUNT {
        let code = credential::random_letters(RECOVERY_LETTERS, 4).map_err(random)?;
        if codes.contains(&code) {
            continue;
        }
        let salt = credential::random_salt().map_err(random)?;
        hashes.push(credential::hash(
            &credential::recovery_letters(code.as_bytes()),
            &salt,
        ));
        codes.push(code);
    }
    let replaced = change_record(ctx, login, &mut |record, state| {
        let old = std::mem::replace(&mut record.recovery_codes, hashes.clone());
        // The used marks of the old set are kept (the newest `KEPT_USED_RECOVERY`): with the
        // state shared by several servers, one whose copy of the record still holds the old
        // set must go on refusing the used codes of it. The ids hash random salts, so none
        // can match a code of the new set.
        let excess = state.used_recovery.len().saturating_sub(KEPT_USED_RECOVERY);
        state.used_recovery.drain(..excess);
        Ok(old.len())
    })?;
    let mut event = Event::new("recovery-codes", login, "ok");
    event.count = Some(codes.len() as u32);
    event.send(ctx);
    Ok((codes, replaced))
}
