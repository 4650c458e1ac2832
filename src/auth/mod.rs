//! The decisions of `split` and `verify`, as pure functions of (request, record, state, now).
//!
//! Nothing here touches PAM, files or the clock: the PAM layer gathers the inputs, calls these
//! functions and carries out what they return. That keeps every rule testable with plain
//! values and a fake clock.
//!
//! One decision a file:
//!
//! - `split_decision.rs` — what the `split` phase does with the string a client sent: hand it
//!   on (no record), keep a TOTP or recovery code for `verify`, accept an app password valid
//!   here and now, or deny; and the record of an app password's use. Not to be confused with
//!   `src/split.rs` ([`crate::split`]), the split *rule*: how `password + code` text is cut,
//!   which this decision calls.
//! - `verify_decision.rs` — the `verify` decision: the order of its checks, the throttle,
//!   strings refused before.
//! - `replay.rs` — a TOTP code in `verify`: the window, replay, same-client reuse and
//!   `reuse_for` sessions.
//! - `recovery_code.rs` — a recovery code in `verify`: each one works once.
//! - `client.rs` — the key a client address is known by (IPv6 /64, NAT64, host names).
//! - `repair.rs` — the repair of a state the store had to rebuild.
//!
//! This file holds what they share: the kind of code `split` keeps ([`CodeKind`]) and the
//! keyed fingerprint a code is stored as ([`fingerprint`]). Every public item is used as
//! `crate::auth::<name>`.

mod client;
mod recovery_code;
mod repair;
mod replay;
mod split_decision;
mod verify_decision;

pub use client::{client_key, MAX_CLIENT_KEY};
pub use repair::repair_rebuilt;
pub use split_decision::{decide_split, record_app_password_use, SplitDecision, SplitRequest};
pub use verify_decision::{decide_verify, decide_verify_with, Attempt, AttemptMemo, Verdict};

use crate::record::Record;
use sha2::{Digest, Sha256};

/// The kind of code `split` kept for `verify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeKind {
    /// A TOTP code.
    Totp,
    /// A one-time recovery code.
    Recovery,
}

/// A fingerprint of a code, keyed with the user's secret so that the state file (which
/// holds no secret) cannot be searched for the code: 64 bits of SHA-256(secret, label, code).
pub fn fingerprint(record: &Record, code: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(record.params().secret);
    hash.update(b"\0mailmfa code\0");
    hash.update(code);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    hash.finalize()[..8]
        .iter()
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0x0f)]])
        .map(char::from)
        .collect()
}

/// What the tests of every decision share: a record, a fake clock, its codes, one `verify`.
#[cfg(test)]
mod fixtures {
    use super::{decide_verify, Attempt};
    use crate::config::Settings;
    use crate::log::Reason;
    use crate::otp::Algorithm;
    use crate::record::Record;
    use crate::state::State;

    pub(super) const NOW: u64 = 1_800_000_015;

    pub(super) fn record() -> Record {
        Record::new(b"12345678901234567890".to_vec(), Algorithm::SHA1, 6, 30, 0).unwrap()
    }

    pub(super) fn code_at(r: &Record, t: u64) -> Vec<u8> {
        r.params().code(t / 30).to_vec()
    }

    pub(super) fn verify(
        r: &Record,
        state: &mut State,
        code: &[u8],
        client: &str,
        now: u64,
        s: &Settings,
    ) -> Reason {
        decide_verify(r, state, Attempt::totp(code, client, now), s).reason
    }

    /// The default settings with `reuse_for` seconds.
    pub(super) fn reuse_for(seconds: u64) -> Settings {
        Settings {
            reuse_for: seconds,
            ..Settings::default()
        }
    }

    /// A state in which `client` has just logged in at NOW with the code of NOW, and that code.
    pub(super) fn logged_in(r: &Record, client: &str, s: &Settings) -> (State, Vec<u8>) {
        let mut state = State::default();
        let code = code_at(r, NOW);
        assert_eq!(verify(r, &mut state, &code, client, NOW, s), Reason::Ok);
        (state, code)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{record, verify, NOW};
    use crate::config::Settings;
    use crate::state::State;

    #[test]
    fn state_never_holds_the_code() {
        let r = record();
        let s = Settings::default();
        let mut state = State::default();
        verify(&r, &mut state, b"123456", "c1", NOW, &s);
        assert!(!state.to_toml().contains("123456"));
    }
}
