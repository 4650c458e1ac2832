//! `record_owner`: the record directory, records and pending enrolments may belong to the
//! panel's account (here `nobody`, uid 65534) only when mailmfa.toml names it; the state
//! directory never. Records the command writes as root are given to that account, so that the
//! panel can read them. Needs root (to chown); CI runs as root.

mod cli_support;
mod skip;

use cli_support::*;
use std::fs;
use std::os::unix::fs::{chown, MetadataExt};
use std::path::Path;

const NOBODY: u32 = 65534;

fn give(path: &Path, uid: u32) {
    chown(path, Some(uid), None).unwrap();
}

/// Appends `record_owner = VALUE` to the installation's config.
fn name_owner(env: &Env, value: &str) {
    let mut text = fs::read_to_string(&env.config).unwrap();
    text.push_str(&format!("record_owner = {value}\n"));
    fs::write(&env.config, text).unwrap();
}

#[test]
fn records_of_another_account_are_trusted_only_when_record_owner_names_it() {
    if !skip::require_root() {
        return;
    }
    let env = Env::new();
    env.enabled("alice");
    give(&env.users, NOBODY);
    give(&env.record_path("alice"), NOBODY);

    // Not named: refused for safety, as the module refuses it.
    env.run(&["status", "alice"])
        .assert_code(6)
        .assert_stderr("owned by uid 65534");

    // Named by uid: accepted.
    name_owner(&env, &NOBODY.to_string());
    env.run(&["status", "alice"])
        .assert_code(0)
        .assert_stderr("");
    // A record the command (root) writes is given to record_owner.
    env.run(&["app-password", "add", "alice", "--label", "laptop"])
        .assert_code(0);
    assert_eq!(
        fs::metadata(env.record_path("alice")).unwrap().uid(),
        NOBODY
    );
    // A pending enrolment too, and the pending directory it makes.
    fs::remove_dir_all(env.users.join("pending")).unwrap();
    env.run(&["enable", "bob", "--begin", "--json"])
        .assert_code(0);
    for path in [env.users.join("pending"), env.pending_path("bob")] {
        assert_eq!(fs::metadata(&path).unwrap().uid(), NOBODY, "{path:?}");
    }
    env.run(&["status", "bob"]).assert_code(0);

    // Never for the state directory.
    give(&env.state, NOBODY);
    env.run(&["status", "alice"])
        .assert_code(6)
        .assert_stderr("owned by uid 65534");
    give(&env.state, 0);

    // Another account than the one named: refused.
    give(&env.record_path("alice"), NOBODY - 1);
    env.run(&["status", "alice"]).assert_code(6);
}

#[test]
fn record_owner_is_an_existing_account_and_doctor_checks_the_record_dir() {
    if !skip::require_root() {
        return;
    }
    let env = Env::new();
    name_owner(&env, "\"no-such-account-here\"");
    env.run(&["status", "alice"])
        .assert_code(1)
        .assert_stderr("there is no user `no-such-account-here`");

    let env = Env::new();
    name_owner(&env, "\"nobody\"");
    let doctor = |env: &Env| {
        env.run(&[
            "doctor",
            "--pam-dir",
            env.dir.path().to_str().unwrap(),
            "--json",
        ])
        .json()
    };
    let findings = doctor(&env).to_string();
    assert!(
        findings.contains("chown -R nobody: ") && findings.contains("chmod 0700"),
        "{findings}"
    );
    give(&env.users, NOBODY);
    let findings = doctor(&env).to_string();
    assert!(
        findings.contains("belong to the record owner nobody"),
        "{findings}"
    );
}
