//! Codes the user types, for every face:
//!
//! - the confirming code of a new secret ([`confirms`]): a pure check against the new record;
//!   the step is then marked used when the record is written (see [`super::enrol`]);
//! - a current code (or a recovery code) of an active record ([`check_code`], and [`verify`]
//!   for `disable` and replacing a secret): exactly like a login — `auth::decide_verify` under
//!   the state lock, so replay rules and the throttle apply, with the caller's client name.
//!
//! And what the throttle says about a state ([`throttled`], [`recent_failures`]).

use super::audit::Event;
use super::{no_update, AccountError, CodeRefusal, Ctx};
use crate::auth::{self, Attempt, CodeKind};
use crate::config::Settings;
use crate::credential;
use crate::log::Reason;
use crate::login::Login;
use crate::notify::{alert, Notice};
use crate::record::Record;
use crate::state::State;
use crate::store::Store;
use zeroize::Zeroizing;

/// The code as typed, without spaces (apps show `189 145`); must be `digits` ASCII digits.
pub fn normalise(typed: &str, digits: u32) -> Result<Zeroizing<Vec<u8>>, AccountError> {
    let code: Zeroizing<Vec<u8>> = Zeroizing::new(typed.bytes().filter(|b| *b != b' ').collect());
    if code.len() != digits as usize || !code.iter().all(u8::is_ascii_digit) {
        return Err(AccountError::BadCodeFormat { digits });
    }
    Ok(code)
}

/// Whether `typed` is one of the record's recovery codes, used or not: a pure check of its
/// shape and hash, no state. How the panel tells a sign-in the module accepted with a
/// recovery code (the owner who lost the phone) from one it accepted with an app password.
pub fn is_recovery_code_of(record: &Record, typed: &str) -> bool {
    credential::is_recovery_code(typed.as_bytes()) && {
        let letters = credential::recovery_letters(typed.as_bytes());
        record
            .recovery_codes
            .iter()
            .any(|h| credential::verify(h, &letters))
    }
}

/// Whether `code` is a code of `record` within the window at `now`.
pub fn confirms(ctx: &Ctx, record: &Record, code: &[u8]) -> bool {
    record
        .params()
        .matching_step(code, ctx.now, ctx.settings.window)
        .is_some()
}

/// Checks a code typed on a page (a TOTP code, spaces allowed, or a recovery code) of the
/// user's active record like a login from `client`: a recovery code is used up, a wrong code
/// counts towards the throttle. A refusal is audited (`action=code-check`).
pub fn check_code(ctx: &Ctx, login: &Login, typed: &str, client: &str) -> Result<(), AccountError> {
    let store = ctx.store();
    let record = store.read_record(login)?.ok_or(AccountError::NotOn)?;
    let used = verify(ctx, &store, login, &record, typed, client).inspect_err(|_| {
        let mut event = Event::new("code-check", login, "refused");
        event.reason = Some("code_refused");
        event.send(ctx);
    })?;
    if let Some(notice) = used {
        super::audit::spool(ctx, &notice);
    }
    Ok(())
}

/// Checks `typed` (a TOTP code, spaces allowed, or a recovery code) against `record`, the
/// user's active record, like a login from `client`, and records its use (or its failure) in
/// the state: a recovery code is used up. Not audited: the caller says what it was for.
/// Wrong codes that make an alert are spooled for the owner here
/// ([`alert::notice_of_verdict`], as for a login); the notice of a recovery code used is
/// returned (`Ok(Some)`) for the caller to spool — `disable` does not, since its own notice
/// says that a recovery code turned MFA off.
pub fn verify(
    ctx: &Ctx,
    store: &dyn Store,
    login: &Login,
    record: &Record,
    typed: &str,
    client: &str,
) -> Result<Option<Notice>, AccountError> {
    let typed = typed.trim();
    let (code, kind) = if credential::is_recovery_code(typed.as_bytes()) {
        (
            Zeroizing::new(typed.as_bytes().to_vec()),
            CodeKind::Recovery,
        )
    } else {
        (normalise(typed, record.digits)?, CodeKind::Totp)
    };
    let attempt = Attempt {
        kind,
        code: &code,
        client,
        now: ctx.now,
    };
    let mut outcome = None;
    let source = alert::Source {
        face: ctx.actor.face.name(),
        service: None,
        client,
        now: ctx.now,
    };
    store.update_state(login, &mut |state| {
        let verdict = auth::decide_verify(record, state, attempt, ctx.settings);
        let changed = verdict.state_changed;
        let notice = alert::notice_of_verdict(ctx.settings, login, record, state, &verdict, source);
        outcome = Some((verdict.reason, state.clone(), notice));
        changed
    })?;
    let Some((reason, state, notice)) = outcome else {
        return Err(no_update());
    };
    let refusal = match reason {
        Reason::Ok | Reason::RecoveryCode => return Ok(notice),
        Reason::BadRecoveryCode => CodeRefusal::WrongRecovery {
            tries_left: tries_left(ctx.settings, &state, client),
        },
        Reason::Replayed | Reason::Reused => CodeRefusal::Used,
        Reason::Throttled => CodeRefusal::Throttled {
            until: throttled_until(ctx, &state, client),
        },
        _ => CodeRefusal::Wrong {
            tries_left: tries_left(ctx.settings, &state, client),
        },
    };
    if let Some(alert) = notice {
        super::audit::spool(ctx, &alert);
    }
    Err(AccountError::CodeRefused(refusal))
}

/// Wrong codes `client` may still try before the throttle refuses codes, from the failures
/// counted in `state`.
pub fn tries_left(settings: &Settings, state: &State, client: &str) -> u32 {
    let from_client = state.failures.iter().filter(|f| f.client == client).count() as u32;
    let left_client = settings.max_failures.saturating_sub(from_client);
    let left_user = settings
        .max_failures_user
        .saturating_sub(state.failures.len() as u32);
    left_client.min(left_user)
}

/// When the throttle lets `client` try again: when its oldest counted failure (or the user's,
/// when the per-user limit is reached) stops counting.
fn throttled_until(ctx: &Ctx, state: &State, client: &str) -> u64 {
    let s = ctx.settings;
    let from_client: Vec<u64> = state
        .failures
        .iter()
        .filter(|f| f.client == client)
        .map(|f| f.at)
        .collect();
    let oldest = if from_client.len() >= s.max_failures as usize {
        from_client.iter().min().copied()
    } else {
        state.failures.iter().map(|f| f.at).min()
    };
    oldest.unwrap_or(ctx.now) + s.fail_interval
}

/// Whether the throttle refuses the user at `now`, from one client address or from all.
pub fn throttled(settings: &Settings, now: u64, state: &State) -> bool {
    let oldest = now.saturating_sub(settings.fail_interval);
    let recent: Vec<&str> = state
        .failures
        .iter()
        .filter(|f| f.at > oldest)
        .map(|f| f.client.as_str())
        .collect();
    recent.len() >= settings.max_failures_user as usize
        || recent
            .iter()
            .any(|c| recent.iter().filter(|d| *d == c).count() >= settings.max_failures as usize)
}

/// Failures still counted at `now`.
pub fn recent_failures(settings: &Settings, now: u64, state: &State) -> usize {
    let oldest = now.saturating_sub(settings.fail_interval);
    state.failures.iter().filter(|f| f.at > oldest).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_digits_with_spaces_allowed() {
        assert_eq!(normalise("189 145", 6).unwrap().as_slice(), b"189145");
        assert!(matches!(
            normalise("18914", 6),
            Err(AccountError::BadCodeFormat { digits: 6 })
        ));
        assert!(normalise("18914x", 6).is_err());
    }
}
