//! The repair of a state the store had to rebuild ([`State::rebuilt`]), before any decision is
//! taken on it: what the lost state knew of one-time uses is assumed at its worst.

use crate::config::Settings;
use crate::credential;
use crate::record::Record;
use crate::state::State;

/// Repairs a state that the store rebuilt ([`State::rebuilt`]) before anything is decided on
/// it; returns whether it did (a sound state is left alone). Every decision that writes the
/// state calls it first ([`decide_verify`](crate::auth::decide_verify),
/// [`record_app_password_use`](crate::auth::record_app_password_use); the command's record
/// changes too), and the store refuses to write a state still marked rebuilt.
///
/// A rebuilt state has lost what it knew of one-time uses, so the repair assumes the worst of
/// what it cannot know:
/// - every recovery code of `record` counts as used: which of them were used is lost, so all
///   are refused until the owner or the admin issues a new set (`mailmfa recovery-codes`,
///   whose codes have new ids and work at once);
/// - the last accepted step becomes the highest step valid now, `step(now) + window` (or the
///   one already there, if higher), used by no client: no code valid when the state was
///   rebuilt is accepted again, from any client (the owner's next login needs a code of a
///   later step, at most `window + 1` periods away);
/// - `reuse_for` sessions are dropped, for the same reason.
///
/// Failures, app-password uses and the last success are kept as the store found them.
pub fn repair_rebuilt(state: &mut State, record: &Record, now: u64, settings: &Settings) -> bool {
    if !state.rebuilt {
        return false;
    }
    let newest = record.params().step_at(now).saturating_add(settings.window);
    state.last_step = Some(state.last_step.map_or(newest, |last| last.max(newest)));
    state.step_clients.clear();
    state.sessions.clear();
    for id in record.recovery_codes.iter().map(|h| credential::hash_id(h)) {
        if !state.used_recovery.contains(&id) {
            state.used_recovery.push(id);
        }
    }
    state.rebuilt = false;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::fixtures::{code_at, record, verify, NOW};
    use crate::auth::{decide_verify, Attempt, CodeKind};
    use crate::log::Reason;
    use crate::otp::Algorithm;
    use crate::state::{Failure, Session};

    fn with_recovery_codes(codes: &[&[u8]]) -> Record {
        let mut r = record();
        for (salt, code) in (1u8..).zip(codes) {
            r.recovery_codes.push(credential::hash(code, &[salt; 16]));
        }
        r
    }

    fn recovery(code: &[u8], now: u64) -> Attempt<'_> {
        Attempt {
            code,
            kind: CodeKind::Recovery,
            client: "c",
            now,
        }
    }

    #[test]
    fn repair_leaves_a_sound_state_alone() {
        let r = with_recovery_codes(&[b"abcdefghijkl"]);
        let s = Settings::default();
        let mut state = State {
            last_step: Some(3),
            step_clients: vec!["c".into()],
            ..State::default()
        };
        let before = state.clone();
        assert!(!repair_rebuilt(&mut state, &r, NOW, &s));
        assert_eq!(state, before);
    }

    #[test]
    fn a_rebuilt_state_counts_every_recovery_code_of_the_record_as_used() {
        let r = with_recovery_codes(&[b"abcdefghijkl", b"mnopqrstuvwx"]);
        let s = Settings::default();
        let mut state = State::rebuilt_empty();
        let v = decide_verify(&r, &mut state, recovery(b"abcd-efgh-ijkl", NOW), &s);
        assert_eq!(v.reason, Reason::BadRecoveryCode);
        assert!(v.state_changed, "the repair is a change to write");
        assert!(!state.rebuilt);
        let ids: Vec<String> = r
            .recovery_codes
            .iter()
            .map(|h| credential::hash_id(h))
            .collect();
        assert_eq!(state.used_recovery, ids);
        assert_eq!(
            decide_verify(&r, &mut state, recovery(b"mnop-qrst-uvwx", NOW), &s).reason,
            Reason::BadRecoveryCode
        );
        // A new set (new hashes, new ids) works at once, each code once.
        let mut renewed = r.clone();
        renewed.recovery_codes = vec![credential::hash(b"zyxwvutsrqpo", &[7; 16])];
        let code = b"zyxw-vuts-rqpo";
        assert_eq!(
            decide_verify(&renewed, &mut state, recovery(code, NOW + 1), &s).reason,
            Reason::RecoveryCode
        );
        assert_eq!(
            decide_verify(&renewed, &mut state, recovery(code, NOW + 2), &s).reason,
            Reason::BadRecoveryCode
        );
    }

    #[test]
    fn a_rebuilt_state_accepts_no_code_valid_at_the_rebuild_from_any_client() {
        let r = record();
        let s = Settings::default();
        let step = r.params().step_at(NOW);
        let mut state = State::rebuilt_empty();
        let now_code = code_at(&r, NOW);
        assert_eq!(
            verify(&r, &mut state, &now_code, "10.0.0.1", NOW, &s),
            Reason::Replayed
        );
        assert_eq!(state.last_step, Some(step + s.window));
        assert!(state.step_clients.is_empty());
        for (code, client) in [
            (code_at(&r, NOW), "10.0.0.1"),
            (code_at(&r, NOW - 30), "10.0.0.2"),
            (code_at(&r, NOW + 30), "10.0.0.2"),
            (code_at(&r, NOW + 30), ""),
        ] {
            assert_eq!(
                verify(&r, &mut state, &code, client, NOW + 1, &s),
                Reason::Replayed
            );
        }
        // The next period's code was valid at the rebuild too; the one after is new.
        assert_eq!(
            verify(
                &r,
                &mut state,
                &code_at(&r, NOW + 30),
                "10.0.0.1",
                NOW + 30,
                &s
            ),
            Reason::Replayed
        );
        assert_eq!(
            verify(
                &r,
                &mut state,
                &code_at(&r, NOW + 60),
                "10.0.0.1",
                NOW + 60,
                &s
            ),
            Reason::Ok
        );
    }

    #[test]
    fn repair_follows_the_window_and_the_period_and_keeps_a_higher_step() {
        let r = Record::new(b"12345678901234567890".to_vec(), Algorithm::SHA1, 6, 60, 0).unwrap();
        let s = Settings {
            window: 3,
            ..Settings::default()
        };
        let mut state = State::rebuilt_empty();
        assert!(repair_rebuilt(&mut state, &r, NOW, &s));
        assert_eq!(state.last_step, Some(NOW / 60 + 3));
        let mut higher = State {
            last_step: Some(NOW / 60 + 100),
            step_clients: vec!["c".into()],
            sessions: vec![Session {
                client: "c".into(),
                at: NOW,
                fingerprint: "f".into(),
            }],
            failures: vec![Failure {
                client: "c".into(),
                at: NOW,
                fingerprint: "f".into(),
            }],
            rebuilt: true,
            ..State::default()
        };
        assert!(repair_rebuilt(&mut higher, &r, NOW, &s));
        assert_eq!(higher.last_step, Some(NOW / 60 + 100));
        assert!(higher.step_clients.is_empty() && higher.sessions.is_empty());
        assert_eq!(higher.failures.len(), 1, "failures only deny: kept");
        assert!(!repair_rebuilt(&mut higher, &r, NOW, &s), "once is enough");
    }
}
