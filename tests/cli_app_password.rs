//! `mailmfa app-password add|list|revoke`: a generated password shown once and kept hashed,
//! that then logs in ALONE through the real libpam and the pam.d examples (split ends the
//! stack), only for its services and until it expires or is revoked; `list` shows its last
//! use and never the password.

mod cli_support;
mod fixture;
mod servers;
mod skip;
mod sql;

use cli_support::*;
use fixture::Fixture;
use mailmfa::pam::client::Response;
use mailmfa::record::Record;
use sql::{Place, Records};

const PW: &str = "T9D3K!px";
const USER: &str = "carol@example.com";

/// A fixture with the Dovecot example as service `imap` and the Postfix/saslauthd example as
/// `smtp` (both: `auth [success=done ignore=ignore auth_err=bad default=die]
/// .../libmailmfa.so split`, then pam_pwdfile, then verify), and MFA on for USER with password
/// PW.
fn world(records: Records) -> Option<(Place, Record)> {
    let f = records.fixture("")?;
    let split = f.install_example("dovecot-virtual", "imap", "");
    assert!(
        split.contains("auth     [success=done ignore=ignore auth_err=bad default=die]  /"),
        "{split}"
    );
    f.install_example("smtp", "smtp", "");
    f.add_password(USER, PW);
    let record = f.enable(USER);
    Some((f, record))
}

// The command's suite, once with the records in files and once in each SQL server (issue
// 15); the tests that read record files themselves stay files only.
for_each_records!(
    the_printed_password_logs_in_alone_for_its_service_only,
    an_app_password_without_services_works_for_every_service,
    a_revoked_app_password_is_refused,
    an_expired_app_password_is_refused,
    list_shows_the_last_use_and_never_the_password,
    disable_removes_the_app_passwords,
);

fn cli(f: &Fixture, args: &[&str]) -> Run {
    run_with_config(&f.config, args)
}

/// `app-password add USER --label NAME ARGS...`, which must succeed.
fn add_run(f: &Fixture, name: &str, args: &[&str]) -> Run {
    let run = cli(
        f,
        &[&["app-password", "add", USER, "--label", name][..], args].concat(),
    );
    run.assert_code(0);
    run
}

/// `app-password add USER --label NAME ARGS... --json`: the printed password.
fn add(f: &Fixture, name: &str, args: &[&str]) -> String {
    let run = add_run(f, name, &[args, &["--json"]].concat());
    assert_no_hash(&run.stdout);
    run.json()["password"].as_str().unwrap().to_string()
}

fn reason(r: &Response) -> &str {
    r.reason.as_deref().unwrap_or("")
}

fn the_printed_password_logs_in_alone_for_its_service_only(records: Records) {
    let Some((f, record)) = world(records) else {
        return;
    };
    let run = add_run(&f, "thunderbird", &["--services", "imap"]);
    let password = run
        .stdout
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 23 && l.matches('-').count() == 3)
        .unwrap_or_else(|| panic!("no password in: {}", run.stdout))
        .to_string();
    run.assert_stdout("services: imap");
    run.assert_stdout("expires:  never");
    // Only a hash is stored.
    assert!(!all_files_text(f.dir.path()).contains(&password.replace('-', "")));
    assert!(!all_files_text(f.dir.path()).contains(&password));

    let r = f.login("imap", USER, &password, Some("192.0.2.7"));
    assert!(r.success(), "{r:?}");
    assert_eq!(reason(&r), "app_password");
    // Without the dashes too (the password module never sees it: it is not the password).
    let r = f.login("imap", USER, &password.replace('-', ""), Some("192.0.2.7"));
    assert!(r.success(), "{r:?}");
    // Another service refuses it.
    let r = f.login("smtp", USER, &password, None);
    assert!(!r.success());
    assert_eq!(reason(&r), "app_password_wrong_service");
    // The mailbox password with a code works as before.
    let code = fixture::code(&record, 0);
    assert!(f
        .login("smtp", USER, &format!("{PW}{code}"), None)
        .success());
}

fn an_app_password_without_services_works_for_every_service(records: Records) {
    let Some((f, _)) = world(records) else {
        return;
    };
    let password = add(&f, "phone", &[]);
    for service in ["imap", "smtp"] {
        let r = f.login(service, USER, &password, Some("192.0.2.8"));
        assert!(r.success(), "{service}: {r:?}");
    }
}

fn a_revoked_app_password_is_refused(records: Records) {
    let Some((f, _)) = world(records) else {
        return;
    };
    let password = add(&f, "phone", &[]);
    let kept = add(&f, "laptop", &[]);
    assert!(f
        .login("imap", USER, &password, Some("192.0.2.8"))
        .success());
    let run = cli(&f, &["app-password", "revoke", USER, "phone", "--json"]);
    run.assert_code(0);
    assert_eq!(run.json()["revoked"], true);
    let r = f.login("imap", USER, &password, Some("192.0.2.8"));
    assert!(!r.success());
    assert_eq!(reason(&r), "bad_app_password");
    // The other one is untouched.
    assert!(f.login("imap", USER, &kept, Some("192.0.2.8")).success());
}

fn an_expired_app_password_is_refused(records: Records) {
    let Some((f, _)) = world(records) else {
        return;
    };
    let password = add(&f, "short-lived", &["--expires", "1"]);
    // The event: the clock has reached the expiry the command stored.
    let list = cli(&f, &["app-password", "list", USER, "--json"]).json();
    let expires = list["app_passwords"][0]["expires"]
        .as_u64()
        .expect("expires");
    fixture::wait_for_unix_time(expires);
    let r = f.login("imap", USER, &password, Some("192.0.2.8"));
    assert!(!r.success());
    assert_eq!(reason(&r), "app_password_expired");
    let list = cli(&f, &["app-password", "list", USER, "--json"]).json();
    assert_eq!(list["app_passwords"][0]["expired"], true);
    let text = cli(&f, &["app-password", "list", USER]);
    text.assert_stdout("(expired)");
}

fn list_shows_the_last_use_and_never_the_password(records: Records) {
    let Some((f, _)) = world(records) else {
        return;
    };
    let password = add(
        &f,
        "thunderbird",
        &["--services", "imap,smtp", "--expires", "90d"],
    );
    add(&f, "phone", &[]);
    assert!(f
        .login("imap", USER, &password, Some("192.0.2.7"))
        .success());

    let run = cli(&f, &["app-password", "list", USER]);
    run.assert_code(0);
    assert!(!run.stdout.contains(&password) && !run.stdout.contains(&password.replace('-', "")));
    assert_no_hash(&run.stdout);
    let line = |name: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {}", run.stdout))
            .to_string()
    };
    let used = line("thunderbird");
    assert!(
        used.contains("imap,smtp") && used.ends_with("192.0.2.7"),
        "{used}"
    );
    let unused = line("phone");
    assert!(unused.contains(" all ") && unused.contains(" never ") && unused.ends_with(" -"));

    let run = cli(&f, &["app-password", "list", USER, "--json"]);
    run.assert_code(0);
    assert!(!run.stdout.contains(&password));
    assert_no_hash(&run.stdout);
    let json = run.json();
    let apps = json["app_passwords"].as_array().unwrap();
    assert_eq!(apps.len(), 2);
    assert_eq!(apps[0]["name"], "thunderbird");
    assert_eq!(apps[0]["services"], serde_json::json!(["imap", "smtp"]));
    assert_eq!(apps[0]["last_client"], "192.0.2.7");
    assert!(apps[0]["last_used"].as_u64().unwrap() >= apps[0]["created"].as_u64().unwrap());
    let created = apps[0]["created"].as_u64().unwrap();
    assert_eq!(apps[0]["expires"].as_u64().unwrap(), created + 90 * 86400);
    assert_eq!(apps[1]["services"], serde_json::json!([]));
    assert_eq!(apps[1]["last_used"], serde_json::Value::Null);

    // `status` counts them.
    let status = cli(&f, &["status", USER, "--json"]).json();
    assert_eq!(status["app_passwords"], 2);
}

#[test]
fn add_keeps_the_rest_of_the_record_and_a_new_name_starts_unused() {
    let env = Env::new();
    env.run(&["enable", "alice", "--begin", "--label", "alice's phone"])
        .assert_code(0);
    let pending = env.pending("alice").unwrap().record;
    env.confirm("alice", &pending, &[]).assert_code(0);
    env.run(&["recovery-codes", "alice"]).assert_code(0);
    let before = env.record("alice").unwrap();
    let run = env.run(&[
        "app-password",
        "add",
        "alice",
        "--label",
        "tb",
        "--services",
        "dovecot, smtp,dovecot",
        "--json",
    ]);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["login"], "alice");
    assert_eq!(json["name"], "tb");
    assert_eq!(json["services"], serde_json::json!(["dovecot", "smtp"]));
    assert_eq!(json["expires"], serde_json::Value::Null);
    let password = json["password"].as_str().unwrap();
    assert!(mailmfa::credential::app_password_letters(password.as_bytes()).is_some());

    let mut after = env.record("alice").unwrap();
    assert_eq!(after.app_passwords.len(), 1);
    assert_eq!(after.app_passwords[0].services, ["dovecot", "smtp"]);
    after.app_passwords.clear();
    assert_eq!(after, before, "everything else stays as it was");
    assert_eq!(after.label.as_deref(), Some("alice's phone"));
}

#[test]
fn add_refuses_a_taken_or_bad_name_and_mfa_off() {
    let env = Env::new();
    env.run(&["app-password", "add", "alice", "--label", "tb"])
        .assert_code(4)
        .assert_stderr("MFA is not on");
    env.run(&["app-password", "list", "alice"])
        .assert_code(4)
        .assert_stderr("MFA is not on");
    env.run(&["app-password", "revoke", "alice", "tb"])
        .assert_code(4)
        .assert_stderr("MFA is not on");
    assert!(env.record("alice").is_none());

    env.enabled("alice");
    env.run(&["app-password", "add", "alice", "--label", "tb"])
        .assert_code(0);
    env.run(&["app-password", "add", "alice", "--label", "tb"])
        .assert_code(4)
        .assert_stderr("already has an app password named `tb`");
    // `app-password add alice ARGS...` refused as a usage error that says `why`.
    let refused = |args: &[&str], why: &str| {
        env.run(&[&["app-password", "add", "alice"][..], args].concat())
            .assert_code(2)
            .assert_stderr(why);
    };
    for bad in ["", "a b", "tb/x", "ünï", &"x".repeat(65)] {
        refused(&["--label", bad], "--label is 1 to 64 letters");
    }
    refused(&[], "--label NAME is required");
    for bad in ["", "imap,", "../etc", "im ap"] {
        refused(&["--label", "x", "--services", bad], "PAM service names");
    }
    for bad in ["soon", "0", "-1d", "90y", "99999999999999999999d"] {
        refused(
            &["--label", "x", &format!("--expires={bad}")],
            "--expires is a duration",
        );
    }
    assert_eq!(env.record("alice").unwrap().app_passwords.len(), 1);
}

#[test]
fn revoke_refuses_an_unknown_name() {
    let env = Env::new();
    env.enabled("alice");
    env.run(&["app-password", "add", "alice", "--label", "tb"])
        .assert_code(0);
    env.run(&["app-password", "revoke", "alice", "phone"])
        .assert_code(4)
        .assert_stderr("no app password named `phone`");
    env.run(&["app-password", "revoke", "alice", "tb"])
        .assert_code(0);
    env.run(&["app-password", "revoke", "alice", "tb"])
        .assert_code(4);
    env.run(&["app-password", "revoke", "alice"]).assert_code(2);
    let list = env.run(&["app-password", "list", "alice"]);
    list.assert_code(0);
    list.assert_stdout("no app passwords");
}

fn disable_removes_the_app_passwords(records: Records) {
    let Some((f, _)) = world(records) else {
        return;
    };
    let password = add(&f, "phone", &[]);
    cli(&f, &["disable", USER, "--force"]).assert_code(0);
    let r = f.login("imap", USER, &password, Some("192.0.2.8"));
    assert!(!r.success(), "{r:?}");
    // Back on: the old app password is gone with the old record.
    f.enable(USER);
    let r = f.login("imap", USER, &password, Some("192.0.2.8"));
    assert_eq!(reason(&r), "bad_app_password");
}

#[test]
fn actions_and_help() {
    let env = Env::new();
    env.run(&["app-password"])
        .assert_code(2)
        .assert_stderr("add, list or revoke");
    env.run(&["app-password", "remove", "alice", "x"])
        .assert_code(2);
    for args in [
        &["app-password", "--help"][..],
        &["app-password", "add", "--help"],
        &["help", "app-password"],
    ] {
        let run = env.run(args);
        run.assert_code(0);
        run.assert_stdout("Usage: mailmfa app-password");
        run.assert_stdout("PAM service name");
    }
}
