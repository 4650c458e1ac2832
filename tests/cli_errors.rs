//! Errors that say what to do: missing directories (with the command that creates them),
//! unsafe modes and owners (the command refuses to write where the module would refuse to
//! read), not root, bad config; usage errors and help texts with the exit codes.

mod cli_support;
mod skip;

use cli_support::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn a_missing_directory_is_named_with_the_command_that_creates_it() {
    let env = Env::new();
    fs::remove_dir(&env.state).unwrap();
    let hint = format!("install -d -m 0700 -o root {}", env.state.display());
    for args in [
        &["enable", "alice", "--begin"][..],
        &["status", "alice"],
        &["list"],
        &["disable", "alice", "--force"],
    ] {
        env.run(args).assert_code(1).assert_stderr(&hint);
    }
    assert!(!env.users.join("pending").exists(), "nothing written");
}

#[test]
fn an_unsafe_directory_is_refused() {
    let env = Env::new();
    fs::set_permissions(&env.users, fs::Permissions::from_mode(0o777)).unwrap();
    env.run(&["enable", "alice", "--begin"])
        .assert_code(6)
        .assert_stderr(&format!("{}: mode 0777", env.users.display()))
        .assert_stderr("chmod go-w");
    assert!(!env.users.join("pending").exists(), "nothing written");

    fs::set_permissions(&env.users, fs::Permissions::from_mode(0o700)).unwrap();
    let link = env.dir.path().join("state-link");
    std::os::unix::fs::symlink(&env.state, &link).unwrap();
    let cfg = fs::read_to_string(&env.config).unwrap();
    fs::write(
        &env.config,
        cfg.replace(
            &format!("\"{}\"", env.state.display()),
            &format!("\"{}\"", link.display()),
        ),
    )
    .unwrap();
    env.run(&["enable", "alice", "--begin"])
        .assert_code(6)
        .assert_stderr("symlink");
}

#[test]
fn an_unsafe_pending_file_is_refused() {
    let env = Env::new();
    env.run(&["enable", "alice", "--begin"]).assert_code(0);
    fs::set_permissions(env.pending_path("alice"), fs::Permissions::from_mode(0o666)).unwrap();
    env.run(&["enable", "alice", "--confirm", "123456"])
        .assert_code(6)
        .assert_stderr("chmod go-w");
}

#[test]
fn config_errors_say_what_is_wrong() {
    let env = Env::new();
    let missing = env.dir.path().join("nope.toml");
    Command::new(MAILMFA)
        .args(["--config", missing.to_str().unwrap(), "list"])
        .output()
        .map(Run::from)
        .unwrap()
        .assert_code(1)
        .assert_stderr("does not exist");

    let cfg = fs::read_to_string(&env.config).unwrap();
    fs::write(&env.config, format!("{cfg}windw = 2\n")).unwrap();
    env.run(&["list"])
        .assert_code(1)
        .assert_stderr("unknown option `windw`");

    fs::write(&env.config, &cfg).unwrap();
    fs::set_permissions(&env.config, fs::Permissions::from_mode(0o666)).unwrap();
    env.run(&["list"])
        .assert_code(6)
        .assert_stderr("the module refuses it too");

    // --config after the command works too, but not twice.
    fs::set_permissions(&env.config, fs::Permissions::from_mode(0o644)).unwrap();
    let config = env.config.to_str().unwrap();
    Command::new(MAILMFA)
        .args(["list", "--config", config])
        .output()
        .map(Run::from)
        .unwrap()
        .assert_code(0);
    env.run(&["list", "--config", config])
        .assert_code(2)
        .assert_stderr("twice");
}

#[test]
fn not_root_is_told_to_run_as_root() {
    if !skip::require_root() || !have_tool("setpriv") {
        return;
    }
    let env = Env::new();
    fs::set_permissions(env.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let run = Run::from(
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                MAILMFA,
                "--config",
            ])
            .arg(&env.config)
            .args(["enable", "alice", "--begin"])
            .output()
            .unwrap(),
    );
    run.assert_code(6).assert_stderr("run mailmfa as root");
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    for args in [
        &[][..],
        &["bogus"],
        &["status"],
        &["list", "x"],
        &["status", "a", "--code", "1"],
        &["help", "bogus"],
    ] {
        let run = Run::from(Command::new(MAILMFA).args(args).output().unwrap());
        run.assert_code(2);
    }
    env.run(&["disable", "alice", "--code"])
        .assert_code(2)
        .assert_stderr("needs a value");
}

#[test]
fn help_lists_commands_and_exit_codes() {
    let run = Run::from(Command::new(MAILMFA).arg("--help").output().unwrap());
    run.assert_code(0);
    for command in [
        "enable",
        "disable",
        "status",
        "list",
        "app-password",
        "recovery-codes",
        "check",
        "doctor",
        "notify",
        "serve",
    ] {
        let listed = format!("\n  {command} ");
        assert!(run.stdout.contains(&listed), "{command}: {}", run.stdout);
    }
    run.assert_stdout("Exit codes:");
    for command in ["enable", "disable", "status", "list", "check"] {
        for args in [vec![command, "--help"], vec!["help", command]] {
            let run = Run::from(Command::new(MAILMFA).args(&args).output().unwrap());
            run.assert_code(0);
            run.assert_stdout(&format!("Usage: mailmfa {command}"));
            assert!(
                run.stdout
                    .contains("  7  check: the PAM stack refused the login"),
                "{}",
                run.stdout
            );
        }
    }
    let run = Run::from(Command::new(MAILMFA).arg("--version").output().unwrap());
    run.assert_code(0);
    assert!(run.stdout.starts_with("mailmfa "), "{}", run.stdout);
}
