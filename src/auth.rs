//! The decisions of `split` and `verify`, as pure functions of (request, record, state, now).
//!
//! Nothing here touches PAM, files or the clock: the PAM layer gathers the inputs, calls these
//! functions and carries out what they return. That keeps every rule testable with plain
//! values and a fake clock.

use crate::config::{Reuse, Settings};
use crate::log::Reason;
use crate::otp::constant_time_eq;
use crate::record::Record;
use crate::split::split;
use crate::state::{Failure, State, MAX_STEP_CLIENTS};
use sha2::{Digest, Sha256};

/// What `split` does with the supplied string.
#[derive(Debug, PartialEq, Eq)]
pub enum SplitDecision {
    /// No record: hand the whole string on untouched (PAM_IGNORE).
    NoMfa,
    /// The first `password_len` bytes are the password, the rest is the code to keep.
    Code {
        /// Length of the password part.
        password_len: usize,
    },
    /// Refuse the login.
    Deny(Reason),
}

/// Decides `split` for a login whose record lookup gave `record` (`None`: no record).
pub fn decide_split(
    record: Option<&Record>,
    supplied: &[u8],
    settings: &Settings,
) -> SplitDecision {
    match record {
        None if settings.require => SplitDecision::Deny(Reason::MfaRequired),
        None => SplitDecision::NoMfa,
        Some(record) => match split(supplied, record.digits as usize) {
            Some(parts) => SplitDecision::Code {
                password_len: parts.password.len(),
            },
            None => SplitDecision::Deny(Reason::NoCode),
        },
    }
}

/// One code to check, with where and when it came from.
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    /// The code kept by `split`.
    pub code: &'a [u8],
    /// PAM_RHOST ("" when the service sets none: then no reuse is possible).
    pub client: &'a str,
    /// Unix time of the attempt.
    pub now: u64,
}

/// What `verify` decided, and whether `state` changed and must be written.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `Ok` or `Reused` accept the login; every other reason denies it.
    pub reason: Reason,
    /// The state was changed and must be written back before the answer is given.
    pub state_changed: bool,
}

impl Verdict {
    /// Whether the login is accepted.
    pub fn accepted(&self) -> bool {
        matches!(self.reason, Reason::Ok | Reason::Reused)
    }
}

/// Decides `verify`: throttle, code, replay; updates `state` in place.
pub fn decide_verify(
    record: &Record,
    state: &mut State,
    attempt: Attempt<'_>,
    settings: &Settings,
) -> Verdict {
    let before = state.clone();
    let oldest = attempt.now.saturating_sub(settings.fail_interval);
    state.failures.retain(|f| f.at > oldest);

    let from_client = state
        .failures
        .iter()
        .filter(|f| f.client == attempt.client)
        .count();
    if from_client >= settings.max_failures as usize
        || state.failures.len() >= settings.max_failures_user as usize
    {
        return finish(Reason::Throttled, state, &before);
    }

    let params = record.params();
    let reason = match params.matching_step(attempt.code, attempt.now, settings.window) {
        None => Reason::BadCode,
        Some(step) => match state.last_step {
            Some(last) if step < last => Reason::Replayed,
            Some(last) if step == last => {
                let same_client = settings.reuse == Reuse::SameClient
                    && !attempt.client.is_empty()
                    && state.step_clients.iter().any(|c| c == attempt.client);
                if same_client {
                    Reason::Reused
                } else {
                    Reason::Replayed
                }
            }
            _ => {
                state.last_step = Some(step);
                state.step_clients = vec![attempt.client.to_string()];
                state.last_success = Some(attempt.now);
                state.last_client = Some(attempt.client.to_string());
                state.failures.retain(|f| f.client != attempt.client);
                Reason::Ok
            }
        },
    };
    if reason != Reason::Ok && reason != Reason::Reused {
        record_failure(state, record, attempt);
    }
    if state.step_clients.len() > MAX_STEP_CLIENTS {
        state.step_clients.remove(0);
    }
    finish(reason, state, &before)
}

fn finish(reason: Reason, state: &State, before: &State) -> Verdict {
    Verdict {
        reason,
        state_changed: state != before,
    }
}

/// Counts a failed code, once per distinct code and client within the interval.
fn record_failure(state: &mut State, record: &Record, attempt: Attempt<'_>) {
    let fingerprint = fingerprint(record, attempt.code);
    let repeat = state.failures.iter().any(|f| {
        f.client == attempt.client
            && constant_time_eq(f.fingerprint.as_bytes(), fingerprint.as_bytes())
    });
    if !repeat {
        state.failures.push(Failure {
            client: attempt.client.to_string(),
            at: attempt.now,
            fingerprint,
        });
    }
}

/// A fingerprint of a failed code, keyed with the user's secret so that the state file (which
/// holds no secret) cannot be searched for the code: 64 bits of SHA-256(secret, label, code).
pub fn fingerprint(record: &Record, code: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(record.params().secret);
    hash.update(b"\0mailmfa failed code\0");
    hash.update(code);
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::Algorithm;

    const NOW: u64 = 1_800_000_015;

    fn record() -> Record {
        Record::new(b"12345678901234567890".to_vec(), Algorithm::SHA1, 6, 30, 0).unwrap()
    }

    fn code_at(r: &Record, t: u64) -> Vec<u8> {
        r.params().code(t / 30).to_vec()
    }

    fn verify(
        r: &Record,
        state: &mut State,
        code: &[u8],
        client: &str,
        now: u64,
        s: &Settings,
    ) -> Reason {
        decide_verify(r, state, Attempt { code, client, now }, s).reason
    }

    #[test]
    fn split_passes_logins_without_mfa_untouched() {
        let s = Settings::default();
        assert_eq!(
            decide_split(None, b"password123456", &s),
            SplitDecision::NoMfa
        );
        let required = Settings {
            require: true,
            ..Settings::default()
        };
        assert_eq!(
            decide_split(None, b"pw", &required),
            SplitDecision::Deny(Reason::MfaRequired)
        );
    }

    #[test]
    fn split_needs_a_code_for_mfa_logins() {
        let r = record();
        let s = Settings::default();
        assert_eq!(
            decide_split(Some(&r), b"pw123456", &s),
            SplitDecision::Code { password_len: 2 }
        );
        assert_eq!(
            decide_split(Some(&r), b"pw", &s),
            SplitDecision::Deny(Reason::NoCode)
        );
        assert_eq!(
            decide_split(Some(&r), b"123456", &s),
            SplitDecision::Deny(Reason::NoCode)
        );
    }

    #[test]
    fn right_code_previous_and_next_steps_are_accepted_within_the_window() {
        let r = record();
        let s = Settings::default();
        for delta in [-30i64, 0, 30] {
            let mut state = State::default();
            let code = code_at(&r, (NOW as i64 + delta) as u64);
            assert_eq!(
                verify(&r, &mut state, &code, "10.0.0.1", NOW, &s),
                Reason::Ok,
                "{delta}"
            );
        }
        let mut state = State::default();
        let late = code_at(&r, NOW - 60);
        assert_eq!(
            verify(&r, &mut state, &late, "10.0.0.1", NOW, &s),
            Reason::BadCode
        );
    }

    #[test]
    fn a_step_is_reused_only_by_the_same_client() {
        let r = record();
        let s = Settings::default();
        let mut state = State::default();
        let code = code_at(&r, NOW);
        assert_eq!(
            verify(&r, &mut state, &code, "10.0.0.1", NOW, &s),
            Reason::Ok
        );
        let v = decide_verify(
            &r,
            &mut state,
            Attempt {
                code: &code,
                client: "10.0.0.1",
                now: NOW + 1,
            },
            &s,
        );
        assert_eq!(
            v,
            Verdict {
                reason: Reason::Reused,
                state_changed: false
            }
        );
        assert_eq!(
            verify(&r, &mut state, &code, "10.0.0.2", NOW + 2, &s),
            Reason::Replayed
        );
        assert_eq!(
            verify(&r, &mut state, &code, "", NOW + 2, &s),
            Reason::Replayed
        );
    }

    #[test]
    fn reuse_never_accepts_a_step_once() {
        let r = record();
        let s = Settings {
            reuse: Reuse::Never,
            ..Settings::default()
        };
        let mut state = State::default();
        let code = code_at(&r, NOW);
        assert_eq!(
            verify(&r, &mut state, &code, "10.0.0.1", NOW, &s),
            Reason::Ok
        );
        assert_eq!(
            verify(&r, &mut state, &code, "10.0.0.1", NOW, &s),
            Reason::Replayed
        );
    }

    #[test]
    fn an_older_step_is_never_accepted_after_a_newer_one_even_if_the_clock_steps_back() {
        let r = record();
        let s = Settings::default();
        let mut state = State::default();
        assert_eq!(
            verify(&r, &mut state, &code_at(&r, NOW + 30), "c", NOW, &s),
            Reason::Ok
        );
        assert_eq!(
            verify(&r, &mut state, &code_at(&r, NOW), "c", NOW, &s),
            Reason::Replayed
        );
        // Clock set back ten minutes: the codes of that time are old steps.
        assert_eq!(
            verify(&r, &mut state, &code_at(&r, NOW - 600), "c", NOW - 600, &s),
            Reason::Replayed
        );
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
    fn state_never_holds_the_code() {
        let r = record();
        let s = Settings::default();
        let mut state = State::default();
        verify(&r, &mut state, b"123456", "c1", NOW, &s);
        assert!(!state.to_toml().contains("123456"));
    }
}
