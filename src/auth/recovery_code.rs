//! A recovery code in `verify`: accepted when it is one of the record's recovery codes that the
//! state does not list as used, and then listed, so that each one works once.

use super::verify_decision::note_success;
use crate::credential;
use crate::log::Reason;
use crate::record::Record;
use crate::state::State;

pub(super) fn check_recovery(
    record: &Record,
    state: &mut State,
    code: &[u8],
    client: &str,
    now: u64,
) -> Reason {
    let letters = credential::recovery_letters(code);
    let unused = record
        .recovery_codes
        .iter()
        .find(|h| credential::verify(h, &letters))
        .map(|h| credential::hash_id(h))
        .filter(|id| !state.used_recovery.contains(id));
    match unused {
        Some(id) => {
            state.used_recovery.push(id);
            note_success(state, client, now);
            Reason::RecoveryCode
        }
        None => Reason::BadRecoveryCode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::fixtures::{record, NOW};
    use crate::auth::{decide_verify, Attempt, CodeKind};
    use crate::config::Settings;

    #[test]
    fn a_recovery_code_works_once() {
        let mut r = record();
        r.recovery_codes
            .push(credential::hash(b"abcdefghijkl", &[2; 16]));
        let s = Settings::default();
        let mut state = State::default();
        let attempt = |now| Attempt {
            code: b"abcd-efgh-ijkl",
            kind: CodeKind::Recovery,
            client: "c",
            now,
        };
        assert_eq!(
            decide_verify(&r, &mut state, attempt(NOW), &s).reason,
            Reason::RecoveryCode
        );
        assert_eq!(
            decide_verify(&r, &mut state, attempt(NOW + 1), &s).reason,
            Reason::BadRecoveryCode
        );
        let wrong = Attempt {
            code: b"abcd-efgh-ijkk",
            ..attempt(NOW)
        };
        assert_eq!(
            decide_verify(&r, &mut state, wrong, &s).reason,
            Reason::BadRecoveryCode
        );
        assert!(!state.to_toml().contains("abcd"));
    }
}
