//! End to end: MFA turned on by the command, then logins through the real libpam with the
//! built module (the two share the record and state formats for real), and `mailmfa check`
//! running the same PAM stack.

mod cli_support;
mod skip;

use cli_support::*;
use mailmfa::pam::client::{self, Request};
use std::fs;
use std::path::{Path, PathBuf};

const SERVICE: &str = "mailmfa-cli-test";
const PASSWORD: &str = "T9D3K!px";

/// The module built by `cargo test` (in `deps/`, beside the test executable; else one up).
fn module_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    [deps.join("libmailmfa.so"), deps.join("../libmailmfa.so")]
        .into_iter()
        .find(|p| p.exists())
        .expect("cargo test builds target/<profile>/deps/libmailmfa.so")
}

/// A PAM confdir with the recommended stack around pam_permit (any password is right), and an
/// `other` that denies.
fn confdir(env: &Env) -> PathBuf {
    let dir = env.dir.path().join("pam.d");
    fs::create_dir(&dir).unwrap();
    let module = module_path();
    let (module, config) = (module.display(), env.config.display());
    fs::write(
        dir.join(SERVICE),
        format!(
            "auth requisite {module} split config={config}\n\
             auth requisite pam_permit.so\n\
             auth required {module} verify config={config}\n\
             account required pam_permit.so\n"
        ),
    )
    .unwrap();
    fs::write(
        dir.join("other"),
        "auth required pam_deny.so\naccount required pam_deny.so\n",
    )
    .unwrap();
    dir
}

fn login(confdir: &Path, user: &str, password: &str, rhost: &str) -> client::Response {
    client::login(&Request {
        service: SERVICE,
        user: user.as_bytes(),
        password: password.as_bytes(),
        confdir: Some(confdir),
        rhost: Some(rhost),
    })
    .unwrap()
}

#[test]
fn enabled_by_the_command_then_logged_in_through_libpam() {
    let env = Env::new();
    let pam = confdir(&env);
    let (record, step) = env.enabled("alice@example.com");

    // The confirming code cannot log in.
    let r = login(
        &pam,
        "alice@example.com",
        &format!("{PASSWORD}{}", code(&record, step)),
        "127.0.0.1",
    );
    assert!(!r.success());
    assert_eq!(r.reason.as_deref(), Some("replayed"));

    // The password alone is refused now.
    let r = login(&pam, "alice@example.com", PASSWORD, "127.0.0.1");
    assert!(!r.success());
    assert_eq!(r.reason.as_deref(), Some("no_code"));

    // The next code logs in, whatever the case of the login.
    let next = code(&record, step + 1);
    let r = login(
        &pam,
        "Alice@Example.COM",
        &format!("{PASSWORD}{next}"),
        "127.0.0.1",
    );
    assert!(r.success(), "{r:?}");
    assert_eq!(r.reason.as_deref(), Some("ok"));

    // `status` shows that login.
    let status = env.run(&["status", "alice@example.com", "--json"]).json();
    assert_eq!(status["last_client"], "127.0.0.1");

    // A code that logged in cannot turn MFA off.
    env.run(&["disable", "alice@example.com", "--code", &next])
        .assert_code(3)
        .assert_stderr("already used");

    // After `disable --force`, the password alone logs in again (no MFA).
    env.run(&["disable", "alice@example.com", "--force"])
        .assert_code(0);
    let r = login(&pam, "alice@example.com", PASSWORD, "127.0.0.1");
    assert!(r.success(), "{r:?}");
    assert_eq!(r.reason.as_deref(), Some("no_mfa"));
}

#[test]
fn check_runs_the_stack_and_prints_the_reason() {
    let env = Env::new();
    let pam = confdir(&env);
    let pam_dir = pam.to_str().unwrap();
    let (record, step) = env.enabled("alice");
    let next = code(&record, step + 1);
    let args = |rhost: &'static str| {
        [
            "check",
            "--service",
            SERVICE,
            "--confdir",
            pam_dir,
            "--rhost",
            rhost,
            "alice",
        ]
    };

    let run = env.run_with_input(&args("127.0.0.1"), &format!("{PASSWORD}{next}\n"));
    run.assert_code(0);
    run.assert_stdout("result: success (Success)");
    run.assert_stdout("reason: ok");
    assert!(
        !run.stdout.contains(&next) && !run.stderr.contains(PASSWORD),
        "the password is never echoed"
    );

    // The same string from the same client again: reused (a client's parallel connections).
    let run = env.run_with_input(&args("127.0.0.1"), &format!("{PASSWORD}{next}\n"));
    run.assert_code(0);
    run.assert_stdout("reason: reused");

    // From another client: replayed.
    let run = env.run_with_input(&args("127.0.0.2"), &format!("{PASSWORD}{next}\n"));
    run.assert_code(7);
    run.assert_stdout("result: failure (");
    run.assert_stdout("reason: replayed");

    // Without a code.
    let run = env.run_with_input(&args("127.0.0.3"), &format!("{PASSWORD}\n"));
    run.assert_code(7);
    run.assert_stdout("reason: no_code");

    // JSON.
    let mut json_args = args("127.0.0.1").to_vec();
    json_args.insert(1, "--json");
    let run = env.run_with_input(&json_args, &format!("{PASSWORD}{next}\n"));
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["result"], "success");
    assert_eq!(json["reason"], "reused");
}

#[test]
fn check_refuses_a_missing_service() {
    let env = Env::new();
    let pam = confdir(&env);
    env.run(&["check", "alice"])
        .assert_code(2)
        .assert_stderr("--service");
    env.run_with_input(
        &[
            "check",
            "--service",
            "nope",
            "--confdir",
            pam.to_str().unwrap(),
            "alice",
        ],
        "pw\n",
    )
    .assert_code(1)
    .assert_stderr("no such service file");
    env.run(&["check", "--service", "../x", "alice"])
        .assert_code(2);
}
