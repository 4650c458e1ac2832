//! Clock (issue 7, item 5): the system clock stepping back never makes an already-used code
//! step acceptable again. The pure decision (`auth::decide_verify`, which takes `now`) is
//! driven with a fake clock that jumps back by a step, ten minutes and a day, and by a
//! property test over random forward and backward jumps, clients and codes; one libpam case
//! shows the same through the built module with the real clock (the state says a later step
//! was used).

mod fixture;

use fixture::{code, wait_for_step_margin, Fixture};
use mailmfa::auth::{decide_verify, Attempt};
use mailmfa::config::{Reuse, Settings};
use mailmfa::log::Reason;
use mailmfa::otp::Algorithm;
use mailmfa::record::Record;
use mailmfa::state::State;
use proptest::prelude::*;
use std::collections::BTreeMap;

const T0: u64 = 1_800_000_010;

fn record() -> Record {
    Record::new(b"hostile-clock-secret".to_vec(), Algorithm::SHA1, 6, 30, 0).unwrap()
}

fn code_at(r: &Record, t: u64) -> Vec<u8> {
    r.params().code(r.params().step_at(t)).to_vec()
}

#[test]
fn stepping_the_clock_back_replays_nothing() {
    let r = record();
    for reuse in [Reuse::SameClient, Reuse::Never] {
        let set = Settings {
            reuse,
            ..Settings::default()
        };
        let mut s = State::default();
        let used = code_at(&r, T0);
        assert_eq!(
            decide_verify(&r, &mut s, Attempt::totp(&used, "192.0.2.1", T0), &set).reason,
            Reason::Ok
        );
        for back in [30, 31, 600, 86_400, T0] {
            let now = T0 - back;
            // The code that was used, sent again from another client at the earlier time.
            assert_eq!(
                decide_verify(&r, &mut s, Attempt::totp(&used, "192.0.2.2", now), &set).reason,
                if r.params().step_at(T0) - r.params().step_at(now) <= set.window {
                    Reason::Replayed
                } else {
                    Reason::BadCode
                },
                "used code from another client, clock {back} s back"
            );
            // The code the clock now shows: an older step than the one used.
            let shown = code_at(&r, now);
            assert_eq!(
                decide_verify(&r, &mut s, Attempt::totp(&shown, "192.0.2.3", now), &set).reason,
                Reason::Replayed,
                "the code of the earlier time, clock {back} s back"
            );
            assert_eq!(
                decide_verify(&r, &mut s, Attempt::totp(&shown, "192.0.2.1", now), &set).reason,
                Reason::Replayed,
                "even from the client that used the later step"
            );
        }
        assert_eq!(
            s.last_step,
            Some(r.params().step_at(T0)),
            "last_step never moves back"
        );
    }
}

#[test]
fn after_the_clock_returns_only_new_steps_are_accepted() {
    let r = record();
    let set = Settings::default();
    let mut s = State::default();
    assert_eq!(
        decide_verify(&r, &mut s, Attempt::totp(&code_at(&r, T0), "c1", T0), &set).reason,
        Reason::Ok
    );
    // Clock back a day, codes of that day refused; clock forward again: the next step works,
    // the used one still does not (except the same client's bounded reuse).
    let day_ago = T0 - 86_400;
    for (code_of, now, want) in [
        (day_ago, day_ago, Reason::Replayed),
        (T0, T0 + 5, Reason::Replayed),
        (T0 + 30, T0 + 30, Reason::Ok),
    ] {
        let code = code_at(&r, code_of);
        assert_eq!(
            decide_verify(&r, &mut s, Attempt::totp(&code, "c2", now), &set).reason,
            want,
            "the code of {code_of} sent at {now}"
        );
    }
}

/// Time, step offset of the code sent, client.
fn event() -> impl Strategy<Value = (i64, i64, usize)> {
    (
        prop_oneof![-90_000i64..=-1, 0i64..=90, -45i64..=45, 1i64..=90_000],
        -2i64..=2,
        0usize..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Over any sequence of clock jumps (back and forth), codes and clients: every `ok` is a
    /// step above every step accepted before, and a code is only ever accepted again
    /// (`reused`) by a client that itself got `ok` with that very code.
    #[test]
    fn no_step_is_accepted_twice_whatever_the_clock_does(
        events in proptest::collection::vec(event(), 1..60),
        reuse_same_client in any::<bool>(),
        reuse_for in prop_oneof![Just(0u64), Just(900u64)],
    ) {
        let r = record();
        let set = Settings {
            reuse: if reuse_same_client { Reuse::SameClient } else { Reuse::Never },
            reuse_for,
            max_failures: 1000,
            max_failures_user: 10_000,
            ..Settings::default()
        };
        let mut s = State::default();
        let mut now = T0;
        let mut highest: Option<u64> = None;
        let mut ok_codes: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
        for (jump, offset, c) in events {
            now = now.saturating_add_signed(jump);
            let step = (r.params().step_at(now) as i64 + offset).max(0) as u64;
            let code = r.params().code(step).to_vec();
            let client = format!("198.51.100.{c}");
            let before = s.last_step;
            match decide_verify(&r, &mut s, Attempt::totp(&code, &client, now), &set).reason {
                Reason::Ok => {
                    let accepted = s.last_step.unwrap();
                    prop_assert!(highest.is_none_or(|h| accepted > h), "ok for step {accepted} after {highest:?}");
                    highest = Some(accepted);
                    ok_codes.entry(client).or_default().push(code);
                }
                Reason::Reused => {
                    prop_assert!(
                        ok_codes.get(&client).is_some_and(|codes| codes.contains(&code)),
                        "reused by {client}, which never got ok with this code"
                    );
                }
                _ => {}
            }
            prop_assert!(s.last_step >= before, "last_step moved back");
        }
    }
}

/// Through the module: a code of the current step is refused when the state says a later
/// step was already used (as after the clock stepped back by a step), from any client.
#[test]
fn through_libpam_a_later_used_step_refuses_the_current_code() {
    let f = Fixture::new();
    f.install_example("dovecot-virtual", "mail", "");
    f.add_password("alice@example.com", "T9D3K!px");
    let rec = f.enable("alice@example.com");
    wait_for_step_margin(3);
    // The next step's code (inside the window) is used first...
    let next = f.login(
        "mail",
        "alice@example.com",
        &format!("T9D3K!px{}", code(&rec, 1)),
        Some("127.0.0.2"),
    );
    assert_eq!(next.reason.as_deref(), Some("ok"), "{next:?}");
    // ...then the clock "steps back" to the current step: its code is older, refused.
    for client in ["127.0.0.2", "127.0.0.3"] {
        let r = f.login(
            "mail",
            "alice@example.com",
            &format!("T9D3K!px{}", code(&rec, 0)),
            Some(client),
        );
        assert!(!r.success());
        assert_eq!(r.reason.as_deref(), Some("replayed"), "{client}: {r:?}");
    }
}
