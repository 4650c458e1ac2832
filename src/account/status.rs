//! What is known about one login, without its secret: on, off or pending; since when; the
//! code parameters; app passwords and recovery codes left; the last login; the throttle.

use super::code::throttled;
use super::{AccountError, Ctx};
use crate::credential;
use crate::login::Login;
use crate::record::Record;
use crate::state::State;
use crate::store::Store;

/// The status of one login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// MFA is on (an active record).
    pub on: bool,
    /// When the active record was created.
    pub created: Option<u64>,
    /// The active record's label.
    pub label: Option<String>,
    /// Digits of a code (the record's, else the settings' for a new one).
    pub digits: u32,
    /// Seconds a code lasts (the record's, else the settings').
    pub period: u64,
    /// When the pending enrolment expires, if one is pending and not expired.
    pub pending_expires: Option<u64>,
    /// Number of app passwords.
    pub app_passwords: usize,
    /// Recovery codes not used yet.
    pub recovery_left: usize,
    /// Recovery codes in the current set.
    pub recovery_total: usize,
    /// The last successful code.
    pub last_login: Option<u64>,
    /// The throttle refuses codes now.
    pub throttled: bool,
}

/// The status of `login`.
pub fn status(ctx: &Ctx, login: &Login) -> Result<Status, AccountError> {
    let record = ctx.store().read_record(login)?;
    let state = ctx.store().read_state(login)?.unwrap_or_default();
    let pending = ctx.pending().read(login)?;
    Ok(Status {
        on: record.is_some(),
        created: record.as_ref().map(|r| r.created),
        label: record.as_ref().and_then(|r| r.label.clone()),
        digits: record.as_ref().map_or(ctx.settings.digits, |r| r.digits),
        period: record.as_ref().map_or(ctx.settings.period, |r| r.period),
        pending_expires: pending
            .filter(|p| !p.expired(ctx.now))
            .map(|p| p.expires_at),
        app_passwords: record.as_ref().map_or(0, |r| r.app_passwords.len()),
        recovery_left: record.as_ref().map_or(0, |r| recovery_left(r, &state)),
        recovery_total: record.as_ref().map_or(0, |r| r.recovery_codes.len()),
        last_login: state.last_success,
        throttled: throttled(ctx.settings, ctx.now, &state),
    })
}

/// Recovery codes of `record` that `state` does not mark as used.
pub fn recovery_left(record: &Record, state: &State) -> usize {
    record
        .recovery_codes
        .iter()
        .filter(|h| !state.used_recovery.contains(&credential::hash_id(h)))
        .count()
}
