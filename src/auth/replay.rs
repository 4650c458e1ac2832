//! A TOTP code in `verify`: which step of the window it matches ([`crate::otp`]), and whether
//! that step may still be accepted — no step below the last accepted one (replay), the last
//! one again only from the client that used it (`reuse = same-client`) — and the `reuse_for`
//! session an accepted code opens for its client.

use super::verify_decision::{note_success, CodeFingerprint};
use crate::config::{Reuse, Settings};
use crate::log::Reason;
use crate::state::{Session, State};

pub(super) fn check_totp(
    state: &mut State,
    code: &CodeFingerprint<'_>,
    client: &str,
    now: u64,
    settings: &Settings,
) -> Reason {
    let Some(step) = code.matching_step(now, settings.window) else {
        return Reason::BadCode;
    };
    match state.last_step {
        Some(last) if step < last => Reason::Replayed,
        Some(last) if step == last => {
            let same_client = settings.reuse == Reuse::SameClient
                && !client.is_empty()
                && state.step_clients.iter().any(|c| c == client);
            if same_client {
                Reason::Reused
            } else {
                Reason::Replayed
            }
        }
        _ => {
            state.last_step = Some(step);
            state.step_clients = vec![client.to_string()];
            note_success(state, client, now);
            if settings.reuse_for > 0 && !client.is_empty() {
                state.sessions.retain(|s| s.client != client);
                state.sessions.push(Session {
                    client: client.to_string(),
                    at: now,
                    fingerprint: code.get().to_string(),
                });
            }
            Reason::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::fixtures::{code_at, logged_in, record, reuse_for, verify, NOW};
    use crate::auth::{decide_verify, fingerprint, Attempt, Verdict};

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
        let (mut state, code) = logged_in(&r, "10.0.0.1", &s);
        let v = decide_verify(
            &r,
            &mut state,
            Attempt::totp(&code, "10.0.0.1", NOW + 1),
            &s,
        );
        assert_eq!(
            v,
            Verdict {
                reason: Reason::Reused,
                state_changed: false,
                failure_added: false,
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
        let (mut state, code) = logged_in(&r, "10.0.0.1", &s);
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
    fn a_reuse_for_session_lasts_exactly_reuse_for_seconds() {
        let r = record();
        let s = reuse_for(3600);
        let (mut state, code) = logged_in(&r, "10.0.0.1", &s);
        let mut before_end = state.clone();
        assert_eq!(
            verify(&r, &mut before_end, &code, "10.0.0.1", NOW + 3599, &s),
            Reason::Reused
        );
        assert_ne!(
            verify(&r, &mut state, &code, "10.0.0.1", NOW + 3600, &s),
            Reason::Reused,
            "the session ends reuse_for seconds after the first use"
        );
    }

    #[test]
    fn without_reuse_for_no_stored_session_is_honoured_even_one_dated_later() {
        // reuse_for turned off after sessions were stored, and the clock stepped back: the
        // stored session must not let the code in as `reused`.
        let r = record();
        let s = Settings::default();
        assert_eq!(s.reuse_for, 0);
        let code = code_at(&r, NOW);
        let mut state = State {
            sessions: vec![Session {
                client: "10.0.0.1".into(),
                at: NOW + 100,
                fingerprint: fingerprint(&r, &code),
            }],
            ..State::default()
        };
        assert_eq!(
            verify(&r, &mut state, &code, "10.0.0.1", NOW, &s),
            Reason::Ok
        );
        assert!(state.sessions.is_empty());
    }

    #[test]
    fn reuse_for_accepts_the_same_code_from_the_same_client_for_its_duration() {
        let r = record();
        let s = reuse_for(8 * 3600);
        let (mut state, code) = logged_in(&r, "10.0.0.1", &s);
        // Reconnects every 2 minutes for 8 hours, long after the code's 30 s.
        for i in 1..240u64 {
            assert_eq!(
                verify(&r, &mut state, &code, "10.0.0.1", NOW + i * 120, &s),
                Reason::Reused,
                "{i}"
            );
            assert_eq!(
                verify(&r, &mut state, &code, "10.0.0.2", NOW + i * 120, &s),
                Reason::BadCode
            );
        }
        assert_eq!(
            verify(&r, &mut state, &code, "10.0.0.1", NOW + 8 * 3600 + 1, &s),
            Reason::BadCode
        );
    }

    #[test]
    fn reuse_for_treats_an_ipv6_64_as_one_client_and_a_new_code_starts_a_new_period() {
        let r = record();
        let s = reuse_for(3600);
        let (mut state, first) = logged_in(&r, "2001:db8:1:2::10", &s);
        assert_eq!(
            verify(
                &r,
                &mut state,
                &first,
                "2001:db8:1:2:aaaa::1",
                NOW + 600,
                &s
            ),
            Reason::Reused
        );
        assert_eq!(
            verify(&r, &mut state, &first, "2001:db8:1:3::10", NOW + 600, &s),
            Reason::BadCode
        );
        let second = code_at(&r, NOW + 3000);
        assert_eq!(
            verify(&r, &mut state, &second, "2001:db8:1:2::10", NOW + 3000, &s),
            Reason::Ok
        );
        assert_eq!(
            verify(&r, &mut state, &first, "2001:db8:1:2::10", NOW + 3010, &s),
            Reason::BadCode
        );
        assert_eq!(
            verify(&r, &mut state, &second, "2001:db8:1:2::10", NOW + 6500, &s),
            Reason::Reused
        );
    }
}
