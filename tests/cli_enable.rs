//! `mailmfa enable`: MFA is on only after a right code of the new secret; the panel flow
//! (`--begin --json` / `--confirm`); replacing an active secret; expiry.

mod cli_support;
mod skip;

use cli_support::*;
use mailmfa::auth::{decide_verify, Attempt};
use mailmfa::config::Settings;
use mailmfa::log::Reason;
use mailmfa::state::State;
use std::fs;
use std::os::unix::fs::PermissionsExt;

#[test]
fn interactive_enable_writes_the_record_only_after_a_right_code() {
    let env = Env::new();
    let (run, uri) = env.enable_typing_the_code("Alice@Example.com", &[]);
    run.assert_code(0);
    run.assert_stdout("MFA is on for alice@example.com");
    assert!(
        uri.starts_with("otpauth://totp/Example%20Mail:alice%40example.com?secret="),
        "{uri}"
    );
    assert!(
        uri.ends_with("&issuer=Example%20Mail&algorithm=SHA1&digits=6&period=30"),
        "{uri}"
    );
    assert_eq!(
        secret_of_uri(&uri).len(),
        32,
        "160 bits in base32 without padding"
    );

    let record = env.record("alice@example.com").expect("a record");
    assert_eq!(record.secret_base32().as_str(), secret_of_uri(&uri));
    let mode = fs::metadata(env.record_path("alice@example.com"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(record.created + 60 > now());
}

#[test]
fn the_confirming_code_counts_as_used() {
    let env = Env::new();
    let (record, step) = env.enabled("alice");
    let text = fs::read_to_string(env.state_path("alice")).unwrap();
    let mut state = State::parse(&text).unwrap();
    assert_eq!(state.last_step, Some(step));
    let confirming = code(&record, step);
    let attempt = Attempt::totp(confirming.as_bytes(), "127.0.0.1", now());
    let verdict = decide_verify(&record, &mut state, attempt, &Settings::default());
    assert_eq!(verdict.reason, Reason::Replayed);
}

#[test]
fn a_wrong_confirming_code_leaves_mfa_off_and_no_record() {
    let env = Env::new();
    let (run, _) = env.enable_interactively("alice", &[], |record| {
        format!(
            "{}\n{}\nnot a code\n",
            wrong_code(record, 1),
            wrong_code(record, 2)
        )
    });
    run.assert_code(3)
        .assert_stderr("wrong code")
        .assert_stderr("MFA stays as it was");
    assert!(!env.record_path("alice").exists());
    assert!(!env.state_path("alice").exists());
    env.run(&["status", "alice", "--json"]).assert_code(0);
    assert_eq!(env.run(&["status", "alice", "--json"]).json()["mfa"], "off");

    // No code at all (end of input) leaves it off too.
    let (run, _) = env.enable_interactively("alice", &[], |_| String::new());
    run.assert_code(3).assert_stderr("no code given");
    assert!(!env.record_path("alice").exists());
}

#[test]
fn codes_may_be_typed_with_a_space() {
    let env = Env::new();
    let (run, _) = env.enable_interactively("alice", &[], |record| {
        let c = code(record, current_step(record));
        format!("{} {}\n", &c[..3], &c[3..])
    });
    run.assert_code(0);
    assert!(env.record("alice").is_some());
}

#[test]
fn panel_flow_begin_json_then_confirm() {
    let env = Env::new();
    let begin = env.run(&["enable", "alice", "--begin", "--json"]);
    begin.assert_code(0);
    let json = begin.json();
    let uri = json["uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Example%20Mail:alice?secret="),
        "{uri}"
    );
    assert_eq!(json["secret"].as_str().unwrap(), secret_of_uri(uri));
    assert_eq!(json["login"], "alice");
    let expires_at = json["expires_at"].as_u64().unwrap();
    assert!(
        (now() + 590..=now() + 600).contains(&expires_at),
        "{expires_at}"
    );
    assert!(json["qr_svg"].as_str().unwrap().contains("<svg"));

    // Pending: MFA still off, no record for the module.
    assert!(!env.record_path("alice").exists());
    let pending = env.pending("alice").unwrap();
    assert_eq!(pending.expires_at, expires_at);
    assert_eq!(pending.record.secret_base32().as_str(), secret_of_uri(uri));
    let mode = fs::metadata(env.pending_path("alice"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        env.run(&["status", "alice", "--json"]).json()["mfa"],
        "pending"
    );

    let record = record_of_uri(uri);
    let confirm = env.confirm("alice", &record, &["--json"]);
    confirm.assert_code(0);
    assert_eq!(confirm.json()["mfa"], "on");
    assert_eq!(
        env.record("alice").unwrap().secret_base32().as_str(),
        secret_of_uri(uri)
    );
    assert!(
        env.pending("alice").is_none(),
        "the pending enrolment is gone"
    );
    assert_eq!(env.run(&["status", "alice", "--json"]).json()["mfa"], "on");
}

#[test]
fn a_second_begin_replaces_the_first() {
    let env = Env::new();
    let (first, old) = env.begin("alice", &[]);
    let (second, new) = env.begin("alice", &[]);
    assert_ne!(first["uri"], second["uri"]);
    assert_eq!(second["replaced_pending"], true);
    env.confirm("alice", &old, &[])
        .assert_code(3)
        .assert_stderr("wrong code");
    assert!(env.record("alice").is_none());
    env.confirm_active("alice", &new);
}

#[test]
fn an_active_record_is_replaced_only_with_replace_and_an_old_code_or_force() {
    let env = Env::new();
    let (old, step) = env.enabled("alice");

    // Without --replace: refused, nothing pending.
    env.run(&["enable", "alice", "--begin", "--json"])
        .assert_code(4)
        .assert_stderr("--replace");
    assert!(env.pending("alice").is_none());
    env.run(&["enable", "alice"]).assert_code(4);

    // --replace with a wrong code of the old secret, or with one that was already used (the
    // confirming one): refused, record unchanged.
    for (old_code, why) in [
        (wrong_code(&old, 1), "tries left"),
        (code(&old, step), "already used"),
    ] {
        env.run(&replace_args("alice", &old_code))
            .assert_code(3)
            .assert_stderr(why);
    }
    env.assert_secret("alice", &old);

    // --replace with a current code of the old secret: a pending replacement; the old secret
    // stays active until it is confirmed.
    let (begin, new) = env.begin("alice", &["--replace", "--code", &code(&old, step + 1)]);
    assert_eq!(begin["replace"], true);
    env.assert_secret("alice", &old);
    env.confirm_active("alice", &new);

    // --replace --force (admin): no old code needed.
    let (_, newer) = env.begin("alice", &["--replace", "--force"]);
    env.confirm_active("alice", &newer);
}

#[test]
fn interactive_replace_with_force() {
    let env = Env::new();
    let (old, _) = env.enabled("alice");
    let (run, uri) = env.enable_typing_the_code("alice", &["--replace", "--force"]);
    run.assert_code(0);
    run.assert_stdout("old secret stays active");
    let record = env.record("alice").unwrap();
    assert_ne!(record.secret_base32(), old.secret_base32());
    assert_eq!(record.secret_base32().as_str(), secret_of_uri(&uri));
}

#[test]
fn an_expired_enrolment_is_refused_and_removed() {
    let env = Env::new();
    env.run(&["enable", "alice", "--begin"]).assert_code(0);
    let pending = env.pending("alice").unwrap();
    // Move the expiry into the past, as 10 minutes of waiting would.
    let text = fs::read_to_string(env.pending_path("alice")).unwrap();
    let past = now() - 1;
    fs::write(
        env.pending_path("alice"),
        text.replace(
            &format!("expires_at = {}", pending.expires_at),
            &format!("expires_at = {past}"),
        ),
    )
    .unwrap();
    assert_eq!(env.pending("alice").unwrap().expires_at, past);
    assert_eq!(env.run(&["status", "alice", "--json"]).json()["mfa"], "off");

    let record = pending.record;
    env.confirm("alice", &record, &[])
        .assert_code(5)
        .assert_stderr("expired");
    assert!(env.pending("alice").is_none());
    assert!(env.record("alice").is_none());
}

#[test]
fn too_many_wrong_confirming_codes_cancel_the_enrolment() {
    let env = Env::with_settings("max_failures = 3\n");
    env.run(&["enable", "alice", "--begin"]).assert_code(0);
    let record = env.pending("alice").unwrap().record;
    env.run(&["enable", "alice", "--confirm", &wrong_code(&record, 1)])
        .assert_code(3)
        .assert_stderr("2 tries left");
    env.run(&["enable", "alice", "--confirm", &wrong_code(&record, 2)])
        .assert_code(3)
        .assert_stderr("1 try left");
    env.run(&["enable", "alice", "--confirm", &wrong_code(&record, 3)])
        .assert_code(5)
        .assert_stderr("cancelled");
    assert!(env.pending("alice").is_none());
    env.confirm("alice", &record, &[]).assert_code(4);
    assert!(env.record("alice").is_none());
}

#[test]
fn confirm_without_begin_is_refused() {
    let env = Env::new();
    env.run(&["enable", "alice", "--confirm", "123456"])
        .assert_code(4)
        .assert_stderr("--begin");
}

#[test]
fn enable_refuses_bad_command_lines_and_logins() {
    let env = Env::new();
    for args in [
        &["enable"][..],
        &["enable", "a", "b"],
        &["enable", "../etc/passwd", "--begin"],
        &["enable", "a b", "--begin"],
        &["enable", "alice", "--begin", "--confirm", "123456"],
        &["enable", "alice", "--force"],
        &["enable", "alice", "--code", "123456"],
        &["enable", "alice", "--json"],
        &["enable", "alice", "--confirm", "123456", "--replace"],
        &["enable", "alice", "--bogus"],
    ] {
        env.run(args).assert_code(2);
    }
    assert!(!env.users.join("pending").exists());
}

#[test]
fn replacing_the_secret_keeps_app_passwords_and_used_recovery_codes() {
    use mailmfa::credential;
    use mailmfa::record::AppPassword;
    let env = Env::new();
    let (mut record, _) = env.enabled("alice");
    record.app_passwords.push(AppPassword {
        name: "thunderbird".into(),
        hash: credential::hash(b"abcdefghijklmnopqrst", &[7; 16]),
        services: vec![],
        created: 1,
        expires: None,
        from: Vec::new(),
    });
    let recovery: Vec<String> = ["aaaabbbbcccc", "ddddeeeeffff"]
        .iter()
        .map(|c| credential::hash(c.as_bytes(), &[9; 16]))
        .collect();
    record.recovery_codes = recovery.clone();
    fs::write(env.record_path("alice"), record.to_toml().as_bytes()).unwrap();
    let mut state = State::parse(&fs::read_to_string(env.state_path("alice")).unwrap()).unwrap();
    state.used_recovery.push(credential::hash_id(&recovery[0]));
    fs::write(env.state_path("alice"), state.to_toml()).unwrap();
    let before = env.run(&["status", "alice", "--json"]).json();
    assert_eq!(before["app_passwords"], 1);
    assert_eq!(before["recovery_codes_left"], 1);

    let (_, new) = env.begin("alice", &["--replace", "--force"]);
    env.confirm_active("alice", &new);

    let replaced = env.record("alice").unwrap();
    assert_eq!(replaced.app_passwords, record.app_passwords);
    assert_eq!(replaced.recovery_codes, recovery);
    let state = State::parse(&fs::read_to_string(env.state_path("alice")).unwrap()).unwrap();
    assert_eq!(
        state.used_recovery,
        [credential::hash_id(&recovery[0])],
        "a used recovery code stays used"
    );
    assert_eq!(
        env.run(&["status", "alice", "--json"]).json()["recovery_codes_left"],
        1
    );
}
