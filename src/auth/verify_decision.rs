// One concept, the `verify` decision and the rules it applies in order; long for its 10 tests.
//! The `verify` decision: whether the code `split` kept is accepted, and what the state keeps
//! of the attempt. The order of the checks lives here, with the throttle (failures per client
//! and per login within `fail_interval`) and the answer to a string refused before; the code
//! itself is checked by `replay.rs` (a TOTP code) or `recovery_code.rs` (a recovery code).

use super::client::client_key;
use super::recovery_code::check_recovery;
use super::repair::repair_rebuilt;
use super::replay::check_totp;
use super::{fingerprint, CodeKind};
use crate::config::Settings;
use crate::log::Reason;
use crate::otp::constant_time_eq;
use crate::record::Record;
use crate::state::{Failure, State, MAX_STEP_CLIENTS};
use std::cell::OnceCell;

/// One code to check, with where and when it came from.
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    /// The code kept by `split`.
    pub code: &'a [u8],
    /// TOTP or recovery code.
    pub kind: CodeKind,
    /// PAM_RHOST ("" when the service sets none: then no reuse is possible).
    pub client: &'a str,
    /// Unix time of the attempt.
    pub now: u64,
}

impl<'a> Attempt<'a> {
    /// A TOTP code from `client` at `now`.
    pub fn totp(code: &'a [u8], client: &'a str, now: u64) -> Self {
        Attempt {
            code,
            kind: CodeKind::Totp,
            client,
            now,
        }
    }
}

/// What `verify` decided, and whether `state` changed and must be written.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `Ok`, `Reused` and `RecoveryCode` accept the login; every other reason denies it.
    pub reason: Reason,
    /// The state was changed and must be written back before the answer is given.
    pub state_changed: bool,
    /// The code was refused and counted as a new failure: it is the last of
    /// `state.failures` (what [`crate::notify::alert`] looks at).
    pub failure_added: bool,
}

impl Verdict {
    /// Whether the login is accepted.
    pub fn accepted(&self) -> bool {
        is_acceptance(self.reason)
    }
}

fn is_acceptance(reason: Reason) -> bool {
    matches!(reason, Reason::Ok | Reason::Reused | Reason::RecoveryCode)
}

/// Decides `verify`: throttle, reuse, refused repeats, code and replay; updates `state` in
/// place (repairing a rebuilt state first, see [`repair_rebuilt`]).
///
/// The order: a throttled client or login is refused outright; a `reuse_for` session's own
/// code is `reused`; a string already refused for this client while its failure counts
/// (`fail_interval`) is refused again without being checked against any step that could
/// still be accepted ([`refused_again`]), so that re-sending refused strings in each new step
/// buys no new guesses; only then is the code checked, and a refusal stored as a failure.
pub fn decide_verify(
    record: &Record,
    state: &mut State,
    attempt: Attempt<'_>,
    settings: &Settings,
) -> Verdict {
    decide_verify_with(record, state, attempt, settings, &AttemptMemo::default())
}

/// What checking one attempt computes from the record and the code alone — the step the code
/// matches, its keyed fingerprint — kept across the runs of one decision: a store decides on
/// an unlocked snapshot first and, when the state must change, again under its lock; the
/// HMACs and the SHA-256 are not computed twice.
#[derive(Debug, Default)]
pub struct AttemptMemo {
    step: OnceCell<Option<u64>>,
    fingerprint: OnceCell<String>,
}

/// [`decide_verify`], reusing what `memo` holds of an earlier run for the same attempt and
/// record (pass the same memo only for the same attempt and record).
pub fn decide_verify_with(
    record: &Record,
    state: &mut State,
    attempt: Attempt<'_>,
    settings: &Settings,
    memo: &AttemptMemo,
) -> Verdict {
    let before = state.clone();
    let client = client_key(attempt.client, settings);
    let now = attempt.now;
    repair_rebuilt(state, record, now, settings);
    let oldest = now.saturating_sub(settings.fail_interval);
    state.failures.retain(|f| f.at > oldest);
    state
        .sessions
        .retain(|s| settings.reuse_for > 0 && s.at.saturating_add(settings.reuse_for) > now);

    let from_client = state.failures.iter().filter(|f| f.client == client).count();
    if from_client >= settings.max_failures as usize
        || state.failures.len() >= settings.max_failures_user as usize
    {
        return finish(Reason::Throttled, state, &before);
    }

    let code = CodeFingerprint {
        record,
        code: attempt.code,
        memo,
    };
    // `code.is` computes the fingerprint only when this client has a session (or a failure).
    let in_session = attempt.kind == CodeKind::Totp
        && !client.is_empty()
        && state
            .sessions
            .iter()
            .any(|s| s.client == client && code.is(&s.fingerprint));
    if in_session {
        return finish(Reason::Reused, state, &before);
    }
    let refused_before = state
        .failures
        .iter()
        .any(|f| f.client == client && code.is(&f.fingerprint));
    if refused_before {
        let reason = refused_again(record, state, attempt, settings);
        return finish(reason, state, &before);
    }
    let reason = match attempt.kind {
        CodeKind::Totp => check_totp(state, &code, &client, now, settings),
        CodeKind::Recovery => check_recovery(record, state, attempt.code, &client, now),
    };
    let failure_added = !is_acceptance(reason);
    if failure_added {
        // Not refused before (checked above): a new failure of this client.
        state.failures.push(Failure {
            client,
            at: now,
            fingerprint: code.into_string(),
        });
    }
    if state.step_clients.len() > MAX_STEP_CLIENTS {
        state.step_clients.remove(0);
    }
    if state.sessions.len() > MAX_STEP_CLIENTS {
        state.sessions.remove(0);
    }
    Verdict {
        failure_added,
        ..finish(reason, state, &before)
    }
}

/// The attempt's code with its keyed fingerprint, computed at most once (it costs a SHA-256)
/// and only when a rule needs it, and the step it matches (HMACs), likewise.
pub(super) struct CodeFingerprint<'a> {
    record: &'a Record,
    code: &'a [u8],
    memo: &'a AttemptMemo,
}

impl CodeFingerprint<'_> {
    pub(super) fn get(&self) -> &str {
        self.memo
            .fingerprint
            .get_or_init(|| fingerprint(self.record, self.code))
    }

    /// The fingerprint, to store.
    fn into_string(self) -> String {
        self.get().to_string()
    }

    /// The step within `window` steps of `now`'s whose code this is ([`crate::otp`]).
    pub(super) fn matching_step(&self, now: u64, window: u64) -> Option<u64> {
        *self
            .memo
            .step
            .get_or_init(|| self.record.params().matching_step(self.code, now, window))
    }

    /// Whether `stored` is this code's fingerprint (compared in constant time).
    fn is(&self, stored: &str) -> bool {
        constant_time_eq(stored.as_bytes(), self.get().as_bytes())
    }
}

/// The answer to a string that was refused for this client within `fail_interval`, given
/// without checking it against any step that could still be accepted: `replayed` when it is
/// the code of a step of the window already used (as its first refusal said), else `bad_code`
/// (`bad_recovery_code`). The state is not changed: the repeat counted once.
fn refused_again(
    record: &Record,
    state: &State,
    attempt: Attempt<'_>,
    settings: &Settings,
) -> Reason {
    if attempt.kind == CodeKind::Recovery {
        return Reason::BadRecoveryCode;
    }
    let params = record.params();
    let now = params.step_at(attempt.now);
    let used = state.last_step.is_some_and(|last| {
        (now.saturating_sub(settings.window)..=last.min(now.saturating_add(settings.window)))
            .any(|step| constant_time_eq(&params.code(step), attempt.code))
    });
    if used {
        Reason::Replayed
    } else {
        Reason::BadCode
    }
}

/// An accepted code: the last success is this one, and the client's failures are forgiven.
pub(super) fn note_success(state: &mut State, client: &str, now: u64) {
    state.last_success = Some(now);
    state.last_client = Some(client.to_string());
    state.failures.retain(|f| f.client != client);
}

fn finish(reason: Reason, state: &State, before: &State) -> Verdict {
    Verdict {
        reason,
        state_changed: state != before,
        failure_added: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::fixtures::{code_at, logged_in, record, reuse_for, verify, NOW};
    use crate::credential;
    use crate::state::Session;

    #[test]
    fn a_memo_carries_the_step_and_fingerprint_into_the_second_run() {
        let r = record();
        let s = Settings::default();
        let right = code_at(&r, NOW);
        for (code, step) in [(&b"000000"[..], None), (&right[..], Some(NOW / 30))] {
            let attempt = Attempt {
                code,
                kind: CodeKind::Totp,
                client: "c1",
                now: NOW,
            };
            let memo = AttemptMemo::default();
            let mut snapshot = State::default();
            let first = decide_verify_with(&r, &mut snapshot, attempt, &s, &memo);
            assert!(first.state_changed);
            assert_eq!(memo.step.get(), Some(&step));
            assert_eq!(
                memo.fingerprint.get().is_some(),
                step.is_none(),
                "a failure's fingerprint"
            );
            let mut locked = State::default();
            assert_eq!(
                decide_verify_with(&r, &mut locked, attempt, &s, &memo),
                first
            );
            assert_eq!(locked, snapshot, "the same decision from the memo");
        }
    }

    #[test]
    fn a_verdict_says_failure_added_for_a_new_failure_only() {
        let r = record();
        let s = Settings::default();
        let mut state = State::default();
        let wrong = Attempt::totp(b"000000", "c1", NOW);
        let first = decide_verify(&r, &mut state, wrong, &s);
        assert!(first.failure_added && first.state_changed, "{first:?}");
        let again = decide_verify(&r, &mut state, wrong, &s);
        assert!(
            !again.failure_added,
            "the same string again counts once: {again:?}"
        );
        let right = code_at(&r, NOW);
        let ok = decide_verify(&r, &mut state, Attempt::totp(&right, "c1", NOW), &s);
        assert!(ok.accepted() && !ok.failure_added, "{ok:?}");
    }

    #[test]
    fn throttle_counts_distinct_failures_per_client() {
        let r = record();
        let s = Settings::default();
        let mut state = State::default();
        for _ in 0..10 {
            assert_eq!(
                verify(&r, &mut state, b"000000", "c1", NOW, &s),
                Reason::BadCode
            );
        }
        assert_eq!(state.failures.len(), 1, "the same wrong string counts once");
        for (i, code) in [b"000001", b"000002", b"000003", b"000004"]
            .iter()
            .enumerate()
        {
            assert_eq!(
                verify(&r, &mut state, *code, "c1", NOW + i as u64, &s),
                Reason::BadCode
            );
        }
        let right = code_at(&r, NOW);
        assert_eq!(
            verify(&r, &mut state, &right, "c1", NOW + 5, &s),
            Reason::Throttled
        );
        assert_eq!(
            verify(&r, &mut state, &right, "c2", NOW + 5, &s),
            Reason::Ok,
            "other clients still get in"
        );
        // Once the failures are older than fail_interval, c1 gets in again.
        let later = NOW + s.fail_interval + 10;
        assert_eq!(
            verify(&r, &mut state, &code_at(&r, later), "c1", later, &s),
            Reason::Ok
        );
    }

    #[test]
    fn throttle_per_user_stops_all_clients() {
        let r = record();
        let s = Settings {
            max_failures_user: 3,
            ..Settings::default()
        };
        let mut state = State::default();
        for i in 0..3u64 {
            verify(&r, &mut state, b"999999", &format!("c{i}"), NOW, &s);
        }
        assert_eq!(
            verify(&r, &mut state, &code_at(&r, NOW), "c9", NOW, &s),
            Reason::Throttled
        );
    }

    #[test]
    fn success_clears_the_clients_failures() {
        let r = record();
        let s = Settings::default();
        let mut state = State::default();
        verify(&r, &mut state, b"000000", "c1", NOW, &s);
        verify(&r, &mut state, b"000000", "c2", NOW, &s);
        assert_eq!(
            verify(&r, &mut state, &code_at(&r, NOW), "c1", NOW, &s),
            Reason::Ok
        );
        assert_eq!(state.failures.len(), 1);
        assert_eq!(state.failures[0].client, "c2");
    }

    #[test]
    fn a_failure_counts_for_exactly_fail_interval_seconds() {
        let r = record();
        let s = Settings {
            max_failures: 1,
            ..Settings::default()
        };
        let later = NOW + s.fail_interval;
        let mut state = State::default();
        assert_eq!(
            verify(&r, &mut state, b"000000", "c1", NOW, &s),
            Reason::BadCode
        );
        let mut still = state.clone();
        assert_eq!(
            verify(&r, &mut still, &code_at(&r, later - 1), "c1", later - 1, &s),
            Reason::Throttled
        );
        assert_eq!(
            verify(&r, &mut state, &code_at(&r, later), "c1", later, &s),
            Reason::Ok,
            "a failure fail_interval seconds old no longer counts"
        );
    }

    #[test]
    fn the_clients_of_a_step_and_the_sessions_are_capped_at_max_step_clients() {
        let r = record();
        let s = reuse_for(3600);
        for n in [MAX_STEP_CLIENTS - 1, MAX_STEP_CLIENTS, MAX_STEP_CLIENTS + 1] {
            let mut state = State {
                step_clients: (0..n).map(|i| format!("10.1.0.{i}")).collect(),
                sessions: (0..n)
                    .map(|i| Session {
                        client: format!("10.2.0.{i}"),
                        at: NOW,
                        fingerprint: "0000000000000000".into(),
                    })
                    .collect(),
                ..State::default()
            };
            // A wrong code goes the whole way through the decision, to the caps.
            assert_eq!(
                verify(&r, &mut state, b"000000", "c9", NOW, &s),
                Reason::BadCode
            );
            let capped = n.min(MAX_STEP_CLIENTS);
            assert_eq!(state.step_clients.len(), capped, "{n} step clients");
            assert_eq!(state.sessions.len(), capped, "{n} sessions");
        }
    }

    #[test]
    fn a_refused_code_stays_refused_for_its_client_while_its_failure_counts() {
        let r = record();
        let s = Settings::default();
        let mut state = State::default();
        // The code of five steps ahead: wrong now, right in 150 s.
        let later = code_at(&r, NOW + 150);
        assert_eq!(
            verify(&r, &mut state, &later, "c1", NOW, &s),
            Reason::BadCode
        );
        let v = decide_verify(
            &r,
            &mut state,
            Attempt {
                code: &later,
                kind: CodeKind::Totp,
                client: "c1",
                now: NOW + 150,
            },
            &s,
        );
        assert_eq!(
            v,
            Verdict {
                reason: Reason::BadCode,
                state_changed: false,
                failure_added: false,
            },
            "not checked against the new step: refused, counted once"
        );
        assert_eq!(
            verify(&r, &mut state, &later, "c2", NOW + 150, &s),
            Reason::Ok,
            "another client's string is its own"
        );
        // Once the failure has aged out, the string is checked again (and counts again).
        let aged = NOW + s.fail_interval + 30;
        let then = code_at(&r, aged);
        assert_eq!(
            verify(&r, &mut state, &then, "c3", aged - s.fail_interval + 1, &s),
            Reason::BadCode
        );
        assert_eq!(
            verify(&r, &mut state, &then, "c3", aged, &s),
            Reason::BadCode
        );
        assert_eq!(
            verify(&r, &mut state, &then, "c3", aged + 2, &s),
            Reason::Ok
        );
    }

    #[test]
    fn a_refused_repeat_of_a_used_code_is_still_replayed() {
        let r = record();
        let s = Settings::default();
        let (mut state, code) = logged_in(&r, "c1", &s);
        assert_eq!(
            verify(&r, &mut state, &code, "c2", NOW, &s),
            Reason::Replayed
        );
        let failures = state.failures.clone();
        assert_eq!(
            verify(&r, &mut state, &code, "c2", NOW + 1, &s),
            Reason::Replayed
        );
        assert_eq!(state.failures, failures, "the repeat counts once");
        // Out of the window the repeat is a bad code, as a first try would be.
        assert_eq!(
            verify(&r, &mut state, &code, "c2", NOW + 90, &s),
            Reason::BadCode
        );
    }

    #[test]
    fn a_refused_recovery_string_is_refused_again_without_a_check() {
        let mut r = record();
        let s = Settings::default();
        let mut state = State::default();
        let attempt = |client, now| Attempt {
            code: b"abcd-efgh-ijkl",
            kind: CodeKind::Recovery,
            client,
            now,
        };
        assert_eq!(
            decide_verify(&r, &mut state, attempt("c1", NOW), &s).reason,
            Reason::BadRecoveryCode
        );
        // The string becomes one of the login's recovery codes: still refused for c1.
        r.recovery_codes
            .push(credential::hash(b"abcdefghijkl", &[2; 16]));
        let v = decide_verify(&r, &mut state, attempt("c1", NOW + 1), &s);
        assert_eq!(v.reason, Reason::BadRecoveryCode);
        assert!(!v.state_changed);
        assert_eq!(
            decide_verify(&r, &mut state, attempt("c2", NOW + 1), &s).reason,
            Reason::RecoveryCode
        );
    }

    #[test]
    fn a_sessions_own_code_is_reused_before_the_refused_repeat_rule() {
        let r = record();
        let s = reuse_for(3600);
        let code = code_at(&r, NOW);
        let fingerprint = fingerprint(&r, &code);
        let mut state = State {
            sessions: vec![Session {
                client: "c1".into(),
                at: NOW,
                fingerprint: fingerprint.clone(),
            }],
            failures: vec![Failure {
                client: "c1".into(),
                at: NOW + 100,
                fingerprint,
            }],
            ..State::default()
        };
        assert_eq!(
            verify(&r, &mut state, &code, "c1", NOW + 200, &s),
            Reason::Reused
        );
    }
}
