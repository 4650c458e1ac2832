//! `mailmfa recovery-codes`: ten one-time codes shown once and kept hashed; each logs in once
//! through the real libpam after the right password, in place of the six-digit code; a new
//! set replaces the old; `mailmfa disable` takes one too and uses it up.

mod cli_support;
mod fixture;
mod servers;
mod skip;
mod sql;

use cli_support::*;
use sql::{Place, Records};

const PW: &str = "T9D3K!px";
const USER: &str = "dave@example.com";

/// A fixture with the Dovecot example as service `imap` and MFA on for USER.
fn world(records: Records) -> Option<Place> {
    let f = records.fixture("")?;
    f.install_example("dovecot-virtual", "imap", "");
    f.add_password(USER, PW);
    f.enable(USER);
    Some(f)
}

// The command's suite, once with the records in files and once in each SQL server (issue
// 15); the tests that read record files themselves stay files only.
for_each_records!(
    a_code_logs_in_once_after_the_right_password,
    a_new_set_replaces_the_old_one,
    disable_takes_an_unused_recovery_code_and_uses_it_up,
);

/// `recovery-codes LOGIN --json` run against `config`: the codes.
fn codes(config: &std::path::Path, login: &str) -> Vec<String> {
    let run = run_with_config(config, &["recovery-codes", login, "--json"]);
    run.assert_code(0);
    assert_no_hash(&run.stdout);
    run.json()["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

fn left(config: &std::path::Path, login: &str) -> serde_json::Value {
    run_with_config(config, &["status", login, "--json"]).json()["recovery_codes_left"].clone()
}

#[test]
fn ten_codes_are_printed_once_and_only_their_hashes_kept() {
    let env = Env::new();
    env.enabled("alice");
    let run = env.run(&["recovery-codes", "alice"]);
    run.assert_code(0);
    let printed: Vec<&str> = run
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| mailmfa::credential::is_recovery_code(l.as_bytes()))
        .collect();
    assert_eq!(printed.len(), 10, "{}", run.stdout);
    let mut unique = printed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10);
    assert!(printed
        .iter()
        .all(|c| c.bytes().all(|b| b == b'-' || b.is_ascii_lowercase())));
    let stored = all_files_text(env.dir.path());
    for code in &printed {
        assert!(!stored.contains(code) && !stored.contains(&code.replace('-', "")));
    }
    assert_eq!(env.record("alice").unwrap().recovery_codes.len(), 10);
    assert_eq!(left(&env.config, "alice"), 10);

    let json = env.run(&["recovery-codes", "alice", "--json"]);
    json.assert_code(0);
    assert_no_hash(&json.stdout);
    let json = json.json();
    assert_eq!(json["login"], "alice");
    assert_eq!(json["codes"].as_array().unwrap().len(), 10);
    assert_eq!(json["replaced"], 10);
}

fn a_code_logs_in_once_after_the_right_password(records: Records) {
    let Some(f) = world(records) else {
        return;
    };
    let codes = codes(&f.config, USER);
    // A wrong password: the password module stops the stack, the code is not used.
    let r = f.login(
        "imap",
        USER,
        &format!("nope{}", codes[0]),
        Some("192.0.2.9"),
    );
    assert!(!r.success());
    let r = f.login(
        "imap",
        USER,
        &format!("{PW}{}", codes[0]),
        Some("192.0.2.9"),
    );
    assert!(r.success(), "{r:?}");
    assert_eq!(r.reason.as_deref(), Some("recovery_code"));
    assert_eq!(left(&f.config, USER), 9);
    // Only once.
    let r = f.login(
        "imap",
        USER,
        &format!("{PW}{}", codes[0]),
        Some("192.0.2.9"),
    );
    assert!(!r.success());
    assert_eq!(r.reason.as_deref(), Some("bad_recovery_code"));
    // Upper case works too.
    let upper = codes[1].to_uppercase();
    assert!(f
        .login("imap", USER, &format!("{PW}{upper}"), Some("192.0.2.9"))
        .success());
    assert_eq!(left(&f.config, USER), 8);
}

fn a_new_set_replaces_the_old_one(records: Records) {
    let Some(f) = world(records) else {
        return;
    };
    let old = codes(&f.config, USER);
    assert!(f
        .login("imap", USER, &format!("{PW}{}", old[0]), Some("192.0.2.9"))
        .success());
    let new = codes(&f.config, USER);
    assert_eq!(
        left(&f.config, USER),
        10,
        "used marks of the old set are gone"
    );
    let r = f.login("imap", USER, &format!("{PW}{}", old[1]), Some("192.0.2.9"));
    assert!(!r.success());
    assert_eq!(r.reason.as_deref(), Some("bad_recovery_code"));
    assert!(f
        .login("imap", USER, &format!("{PW}{}", new[1]), Some("192.0.2.9"))
        .success());
}

fn disable_takes_an_unused_recovery_code_and_uses_it_up(records: Records) {
    let Some(f) = world(records) else {
        return;
    };
    let codes = codes(&f.config, USER);
    // Used at a login: it cannot turn MFA off.
    assert!(f
        .login(
            "imap",
            USER,
            &format!("{PW}{}", codes[0]),
            Some("192.0.2.9")
        )
        .success());
    run_with_config(&f.config, &["disable", USER, "--code", &codes[0]])
        .assert_code(3)
        .assert_stderr("not an unused recovery code")
        .assert_stderr("4 tries left");
    assert!(f.has_record(USER));
    // A code that was never printed counts as a wrong code.
    run_with_config(&f.config, &["disable", USER, "--code", "abcd-efgh-ijkl"])
        .assert_code(3)
        .assert_stderr("3 tries left");
    let run = run_with_config(&f.config, &["disable", USER, "--code", &codes[1], "--json"]);
    run.assert_code(0);
    assert_eq!(run.json()["mfa"], "off");
    assert!(!f.has_record(USER));
    // The password alone logs in again.
    assert!(f.login("imap", USER, PW, Some("192.0.2.9")).success());
}

#[test]
fn disable_reads_a_recovery_code_from_stdin() {
    let env = Env::new();
    env.enabled("alice");
    let codes = codes(&env.config, "alice");
    env.run_with_input(&["disable", "alice"], &format!(" {}\n", codes[3]))
        .assert_code(0);
    assert!(env.record("alice").is_none());
}

#[test]
fn the_throttle_stops_a_recovery_code_too() {
    let env = Env::with_settings("max_failures = 2\n");
    let (record, _) = env.enabled("alice");
    let codes = codes(&env.config, "alice");
    for n in 1..=2 {
        env.run(&["disable", "alice", "--code", &wrong_code(&record, n)])
            .assert_code(3);
    }
    env.run(&["disable", "alice", "--code", &codes[0]])
        .assert_code(3)
        .assert_stderr("too many wrong codes");
    assert!(env.record("alice").is_some());
    assert_eq!(
        left(&env.config, "alice"),
        10,
        "a throttled code is not used up"
    );
}

#[test]
fn recovery_codes_need_mfa_on() {
    let env = Env::new();
    env.run(&["recovery-codes", "alice"])
        .assert_code(4)
        .assert_stderr("MFA is not on");
    env.run(&["recovery-codes"]).assert_code(2);
    assert!(env.record("alice").is_none());
    let help = env.run(&["recovery-codes", "--help"]);
    help.assert_code(0);
    assert!(help
        .stdout
        .contains("Usage: mailmfa recovery-codes [OPTIONS] <LOGIN>"));
}
