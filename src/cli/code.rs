//! Checking a code the user typed, for the command's three uses:
//!
//! - the confirming code of a new secret ([`confirms`]): a pure check against the new record;
//!   the step is then marked used when the record is written (see `enable`);
//! - a current code (or a recovery code) of an active record, for `disable` and `enable --replace`
//!   ([`check_current`]): exactly like a login — `auth::decide_verify` under the state lock,
//!   so replay rules and the throttle apply, with the command's own client name.

use super::exit::{Exit, Failure};
use super::output::utc;
use super::Context;
use mailmfa::auth::{self, Attempt, CodeKind};
use mailmfa::log::Reason;
use mailmfa::login::Login;
use mailmfa::record::Record;
use mailmfa::state::State;
use mailmfa::store::Store;
use zeroize::Zeroizing;

/// The code as typed, without spaces (apps show `189 145`); must be `digits` ASCII digits.
pub fn normalise(typed: &str, digits: u32) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let code: Zeroizing<Vec<u8>> = Zeroizing::new(typed.bytes().filter(|b| *b != b' ').collect());
    if code.len() != digits as usize || !code.iter().all(u8::is_ascii_digit) {
        return Err(Failure::new(
            Exit::CodeRefused,
            format!("a code is {digits} digits, as the authenticator app shows it"),
        ));
    }
    Ok(code)
}

/// Whether `code` is a code of `record` within the window at `now`.
pub fn confirms(ctx: &Context, record: &Record, code: &[u8]) -> bool {
    record
        .params()
        .matching_step(code, ctx.now, ctx.settings.window)
        .is_some()
}

/// Checks a current code (TOTP or recovery, by `kind`) of the user's active record like a
/// login from `client` would be checked, and records its use (or its failure) in the state:
/// a recovery code is used up.
pub fn check_current(
    ctx: &Context,
    store: &dyn Store,
    login: &Login,
    record: &Record,
    (code, kind): (&[u8], CodeKind),
    client: &str,
) -> Result<(), Failure> {
    let attempt = Attempt {
        kind,
        code,
        client,
        now: ctx.now,
    };
    let mut outcome = None;
    store.update_state(login, &mut |state| {
        let verdict = auth::decide_verify(record, state, attempt, &ctx.settings);
        let changed = verdict.state_changed;
        outcome = Some((verdict.reason, state.clone()));
        changed
    })?;
    let Some((reason, state)) = outcome else {
        return Err(Failure::new(Exit::Error, "the state update did not run"));
    };
    match reason {
        Reason::Ok | Reason::RecoveryCode => Ok(()),
        Reason::BadRecoveryCode => Err(Failure::new(
            Exit::CodeRefused,
            format!(
                "not an unused recovery code of {login}: {}",
                tries_left(ctx, &state, client)
            ),
        )),
        Reason::BadCode => Err(Failure::new(
            Exit::CodeRefused,
            format!(
                "wrong code for {login}: {}",
                tries_left(ctx, &state, client)
            ),
        )),
        Reason::Replayed | Reason::Reused => Err(Failure::new(
            Exit::CodeRefused,
            format!(
                "this code of {login} was already used (every code counts once): wait for the \
                 next code and try again"
            ),
        )),
        Reason::Throttled => Err(Failure::new(
            Exit::CodeRefused,
            format!(
                "too many wrong codes for {login}: no code is accepted until {}",
                utc(throttled_until(ctx, &state, client))
            ),
        )),
        other => Err(Failure::new(
            Exit::CodeRefused,
            format!("code refused: {}", other.name()),
        )),
    }
}

/// "N tries left before ..." from the failures still counted in `state`.
pub fn tries_left(ctx: &Context, state: &State, client: &str) -> String {
    let s = &ctx.settings;
    let from_client = state.failures.iter().filter(|f| f.client == client).count() as u32;
    let left_client = s.max_failures.saturating_sub(from_client);
    let left_user = s
        .max_failures_user
        .saturating_sub(state.failures.len() as u32);
    let left = left_client.min(left_user);
    format!(
        "{left} {} left before codes are refused for {} minutes",
        if left == 1 { "try" } else { "tries" },
        s.fail_interval.div_ceil(60)
    )
}

/// When the throttle lets `client` try again: when its oldest counted failure (or the user's,
/// when the per-user limit is reached) stops counting.
fn throttled_until(ctx: &Context, state: &State, client: &str) -> u64 {
    let s = &ctx.settings;
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

/// Whether the throttle refuses the user now, from one client address or from all.
pub fn throttled(ctx: &Context, state: &State) -> bool {
    let s = &ctx.settings;
    let oldest = ctx.now.saturating_sub(s.fail_interval);
    let recent: Vec<&str> = state
        .failures
        .iter()
        .filter(|f| f.at > oldest)
        .map(|f| f.client.as_str())
        .collect();
    recent.len() >= s.max_failures_user as usize
        || recent
            .iter()
            .any(|c| recent.iter().filter(|d| *d == c).count() >= s.max_failures as usize)
}

/// Failures still counted at `now`.
pub fn recent_failures(ctx: &Context, state: &State) -> usize {
    let oldest = ctx.now.saturating_sub(ctx.settings.fail_interval);
    state.failures.iter().filter(|f| f.at > oldest).count()
}
