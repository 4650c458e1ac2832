//! `mailmfa disable`: only with a current code, checked like a login code (replay rules,
//! throttle), or `--force`; removes record, state and pending enrolment.

mod cli_support;
mod skip;

use cli_support::*;

#[test]
fn disable_with_a_current_code_turns_mfa_off() {
    let env = Env::new();
    let (record, step) = env.enabled("alice");
    assert!(env.state_path("alice").exists());
    let run = env.run(&[
        "disable",
        "alice",
        "--code",
        &code(&record, step + 1),
        "--json",
    ]);
    run.assert_code(0);
    assert_eq!(run.json()["mfa"], "off");
    assert!(!env.record_path("alice").exists());
    assert!(!env.state_path("alice").exists());
    assert_eq!(env.run(&["status", "alice", "--json"]).json()["mfa"], "off");
}

#[test]
fn disable_with_a_replayed_code_fails() {
    let env = Env::new();
    let (record, step) = env.enabled("alice");
    // The confirming code was used by `enable`: it cannot turn MFA off.
    env.run(&["disable", "alice", "--code", &code(&record, step)])
        .assert_code(3)
        .assert_stderr("already used");
    assert!(env.record("alice").is_some());
    // The next code does.
    env.run(&["disable", "alice", "--code", &code(&record, step + 1)])
        .assert_code(0);
}

#[test]
fn a_code_that_logged_in_cannot_disable() {
    let env = Env::new();
    let (record, step) = env.enabled("alice");
    // A login from a mail client with the next code, as the module records it.
    let next = code(&record, step + 1);
    let store_text = std::fs::read_to_string(env.state_path("alice")).unwrap();
    let mut state = mailmfa::state::State::parse(&store_text).unwrap();
    let attempt = mailmfa::auth::Attempt::totp(next.as_bytes(), "192.0.2.7", now());
    let verdict = mailmfa::auth::decide_verify(
        &record,
        &mut state,
        attempt,
        &mailmfa::config::Settings::default(),
    );
    assert!(verdict.accepted());
    std::fs::write(env.state_path("alice"), state.to_toml()).unwrap();
    env.run(&["disable", "alice", "--code", &next])
        .assert_code(3)
        .assert_stderr("already used");
    assert!(env.record("alice").is_some());
}

#[test]
fn a_wrong_code_says_how_many_tries_are_left() {
    let env = Env::new();
    let (record, _) = env.enabled("alice");
    env.run(&["disable", "alice", "--code", &wrong_code(&record, 1)])
        .assert_code(3)
        .assert_stderr("4 tries left");
    // The same wrong code again counts once.
    env.run(&["disable", "alice", "--code", &wrong_code(&record, 1)])
        .assert_code(3)
        .assert_stderr("4 tries left");
    env.run(&["disable", "alice", "--code", &wrong_code(&record, 2)])
        .assert_code(3)
        .assert_stderr("3 tries left");
    env.run(&["disable", "alice", "--code", "12345"])
        .assert_code(3)
        .assert_stderr("6 digits");
    assert!(env.record("alice").is_some());
}

#[test]
fn the_throttle_stops_disable_even_with_a_right_code() {
    let env = Env::with_settings("max_failures = 2\n");
    let (record, step) = env.enabled("alice");
    for n in 1..=2 {
        env.run(&["disable", "alice", "--code", &wrong_code(&record, n)])
            .assert_code(3);
    }
    env.run(&["disable", "alice", "--code", &code(&record, step + 1)])
        .assert_code(3)
        .assert_stderr("too many wrong codes");
    assert!(env.record("alice").is_some());
    let status = env.run(&["status", "alice", "--json"]).json();
    assert_eq!(status["throttled"], true);
    assert_eq!(status["recent_failures"], 2);
}

#[test]
fn disable_reads_the_code_from_stdin_when_not_given() {
    let env = Env::new();
    let (record, step) = env.enabled("alice");
    env.run_with_input(
        &["disable", "alice"],
        &format!("{}\n", code(&record, step + 1)),
    )
    .assert_code(0);
    assert!(env.record("alice").is_none());

    let (_, _) = env.enabled("bob");
    env.run(&["disable", "bob"])
        .assert_code(3)
        .assert_stderr("no code given");
    assert!(env.record("bob").is_some());
}

#[test]
fn disable_force_needs_no_code_and_removes_everything() {
    let env = Env::new();
    env.enabled("alice");
    env.run(&["enable", "alice", "--begin", "--replace", "--force"])
        .assert_code(0);
    assert!(env.pending("alice").is_some());
    env.run(&["disable", "alice", "--force"]).assert_code(0);
    assert!(env.record("alice").is_none());
    assert!(env.pending("alice").is_none());
    assert!(!env.state_path("alice").exists());
}

#[test]
fn disable_force_removes_a_damaged_record() {
    let env = Env::new();
    std::fs::write(env.record_path("alice"), "version = 1\nsecret = 1\n").unwrap();
    env.run(&["disable", "alice", "--code", "123456"])
        .assert_code(1)
        .assert_stderr("--force");
    env.run(&["disable", "alice", "--force"]).assert_code(0);
    assert!(!env.record_path("alice").exists());
}

#[test]
fn disable_without_mfa_says_so() {
    let env = Env::new();
    env.run(&["disable", "alice", "--code", "123456"])
        .assert_code(4)
        .assert_stderr("not on");
    // A pending enrolment alone is removed.
    env.run(&["enable", "alice", "--begin"]).assert_code(0);
    env.run(&["disable", "alice", "--force"]).assert_code(0);
    assert!(env.pending("alice").is_none());
    env.run(&["disable", "alice", "--code", "1", "--force"])
        .assert_code(2);
}
