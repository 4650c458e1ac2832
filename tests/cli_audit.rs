//! Audit lines: every enable, confirm, replace, disable and force is sent to syslog
//! (authpriv.notice, ident `mailmfa`) with the login and the Unix user, never a secret or a
//! code. The command runs in a private mount namespace whose /dev holds only a `log` socket
//! that the test reads (the machine has no syslog daemon).

mod cli_support;
mod skip;

use cli_support::*;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

struct Syslog {
    dev: tempfile::TempDir,
    socket: UnixDatagram,
}

impl Syslog {
    fn new() -> Syslog {
        let dev = tempfile::tempdir().unwrap();
        let socket = UnixDatagram::bind(dev.path().join("log")).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        Syslog { dev, socket }
    }

    /// Runs `mailmfa --config CFG ARGS...` with /dev/log going to this socket.
    fn run(&self, env: &Env, args: &[&str]) -> Run {
        let out = Command::new("unshare")
            .args(["-m", "sh", "-c", "mount --bind \"$0\" /dev && exec \"$@\""])
            .arg(self.dev.path())
            .env_remove("SUDO_USER")
            .arg(MAILMFA)
            .arg("--config")
            .arg(&env.config)
            .args(args)
            .output()
            .unwrap();
        Run::from(out)
    }

    /// The lines received so far.
    fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.socket.recv(&mut buf) {
            lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        lines
    }
}

#[test]
fn every_change_is_audited_without_secrets() {
    if !skip::require_root() || !have_tool("unshare") {
        return;
    }
    let env = Env::new();
    let log = Syslog::new();

    log.run(&env, &["enable", "alice", "--begin"])
        .assert_code(0);
    let first = env.pending("alice").unwrap().record;
    let wrong = wrong_code(&first, 1);
    log.run(&env, &["enable", "alice", "--confirm", &wrong])
        .assert_code(3);
    let step = current_step(&first);
    let confirming = code(&first, step);
    log.run(&env, &["enable", "alice", "--confirm", &confirming])
        .assert_code(0);
    let old_code = code(&first, step + 1);
    log.run(&env, &replace_args("alice", &old_code))
        .assert_code(0);
    let second = env.pending("alice").unwrap().record;
    log.run(
        &env,
        &[
            "enable",
            "alice",
            "--confirm",
            &code(&second, current_step(&second)),
        ],
    )
    .assert_code(0);
    log.run(
        &env,
        &["enable", "alice", "--begin", "--replace", "--force"],
    )
    .assert_code(0);
    let third = env.pending("alice").unwrap().record;
    log.run(
        &env,
        &["disable", "alice", "--code", &wrong_code(&second, 2)],
    )
    .assert_code(3);
    log.run(&env, &["disable", "alice", "--force"])
        .assert_code(0);

    let lines = log.lines();
    let expected = [
        "action=enable-begin user=alice face=command by=root uid=0 result=ok",
        "action=enable-confirm user=alice face=command by=root uid=0 result=refused reason=bad_code",
        "action=enable-confirm user=alice face=command by=root uid=0 result=ok",
        "action=enable-begin user=alice face=command by=root uid=0 replace=yes result=ok",
        "action=enable-confirm user=alice face=command by=root uid=0 replace=yes result=ok",
        "action=enable-begin user=alice face=command by=root uid=0 replace=yes force=yes result=ok",
        "action=disable user=alice face=command by=root uid=0 result=refused reason=code_refused",
        "action=disable user=alice face=command by=root uid=0 force=yes result=ok",
    ];
    assert_eq!(lines.len(), expected.len(), "{lines:#?}");
    for (line, want) in lines.iter().zip(expected) {
        // authpriv (10) * 8 + notice (5) = 85
        assert!(line.starts_with("<85>"), "{line}");
        assert!(line.contains("mailmfa["), "{line}");
        assert!(line.ends_with(want), "{line}\nwanted: {want}");
    }
    let all = lines.join("\n");
    for record in [&first, &second, &third] {
        assert!(
            !all.contains(&record.secret_base32()[..8]),
            "a secret was logged"
        );
    }
    for code in [&wrong, &confirming, &old_code] {
        assert!(!all.contains(code.as_str()), "a code was logged");
    }
}

#[test]
fn app_password_and_recovery_code_changes_are_audited_with_the_name_only() {
    if !skip::require_root() || !have_tool("unshare") {
        return;
    }
    let env = Env::new();
    env.enabled("alice");
    let log = Syslog::new();
    let added = log.run(
        &env,
        &[
            "app-password",
            "add",
            "alice",
            "--label",
            "laptop",
            "--json",
        ],
    );
    added.assert_code(0);
    let password = added.json()["password"].as_str().unwrap().to_string();
    let codes = log.run(&env, &["recovery-codes", "alice", "--json"]);
    codes.assert_code(0);
    log.run(&env, &["app-password", "revoke", "alice", "laptop"])
        .assert_code(0);

    let lines = log.lines();
    let expected = [
        "action=app-password-add user=alice name=laptop face=command by=root uid=0 result=ok",
        "action=recovery-codes user=alice face=command by=root uid=0 result=ok",
        "action=app-password-revoke user=alice name=laptop face=command by=root uid=0 result=ok",
    ];
    assert_eq!(lines.len(), expected.len(), "{lines:#?}");
    for (line, want) in lines.iter().zip(expected) {
        assert!(line.ends_with(want), "{line}\nwanted: {want}");
    }
    let all = lines.join("\n");
    assert!(!all.contains(&password) && !all.contains(&password.replace('-', "")));
    for code in codes.json()["codes"].as_array().unwrap() {
        assert!(
            !all.contains(code.as_str().unwrap()),
            "a recovery code was logged"
        );
    }
}
