//! The owner and mode rules (docs/security.md, "Files trusted like OpenSSH's StrictModes")
//! checked by an UNPRIVILEGED process on files it owns itself (issue 19, item 4): the rows
//! "record: group-writable", "record dir: …", "state: …", "config: …" of `hostile_table` run
//! only as root, where a file owned by the running user is a file owned by root, so that a
//! module that dropped the "running user" half of the owner check, or trusted group-writable
//! files, could pass there unnoticed on a machine where those rows skip.
//!
//! How the login runs:
//! - as an unprivileged user (how a developer runs `cargo test`): in-process, through the real
//!   libpam (`pam_start_confdir`) with the built module, like tests/libpam_module.rs;
//! - as root (CI, scripts/test.sh): the whole fixture is handed to `nobody` (uid/gid 65534)
//!   and the same PAM stack runs in `mailmfa check --confdir DIR --json`, started with
//!   `setpriv --reuid=65534 --regid=65534 --clear-groups`: the module then runs as `nobody`,
//!   on files `nobody` owns.
//!
//! Every test first shows that the same world lets the login in (so a refusal is the rule's,
//! not a broken setup), then breaks one mode and expects the documented reason.
//!
//! Foreign owners need `chown`, hence root: the `owned_by_another_uid` tests hand one file to
//! uid 12345 and run the login as `nobody`. Run unprivileged, they skip loudly (and fail under
//! CI) through `servers::require_prereqs`.

mod fixture;
// This file uses only the skip entry point of the server harness.
#[allow(unused_imports)]
mod servers;
mod skip;

use fixture::{code, wait_for_step_margin, Fixture};
use mailmfa::record::Record;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const PW: &str = "T9D3K!px";
const BOB_PW: &str = "secret123456";
const IP1: &str = "127.0.0.2";

/// The unprivileged user the logins run as when the tests run as root.
const NOBODY: u32 = 65534;
/// A uid that is neither root, nor the running user.
const FOREIGN: u32 = 12345;

fn is_root() -> bool {
    mailmfa::pam::sys::effective_uid() == 0
}

/// A fixture with the virtual-mailbox stack as service `mail`, `alice` (MFA) and `bob` (no
/// MFA); when root, every file in it is handed to `nobody`.
struct World {
    f: Fixture,
    alice: Record,
}

/// The outcome of one login: whether it got in, and mailmfa's reason.
#[derive(Debug)]
struct Outcome {
    success: bool,
    reason: String,
}

impl World {
    fn new() -> World {
        let (f, alice) = fixture::mail_stack((ALICE, PW), (BOB, BOB_PW));
        let w = World { f, alice };
        w.give_to_nobody();
        w
    }

    /// A world in which alice has just logged in with the code of now, at least 3 s before
    /// the step ends.
    fn with_alice_in() -> World {
        wait_for_step_margin(3);
        let w = World::new();
        w.alice_gets_in();
        w
    }

    /// A world in which bob (no MFA) has just logged in with his password.
    fn with_bob_in() -> World {
        let w = World::new();
        let r = w.login(BOB, BOB_PW);
        assert!(r.success, "baseline: {r:?}");
        assert_eq!(r.reason, "no_mfa");
        w
    }

    /// When root: hands every file of the fixture to `nobody` (what the module writes while
    /// running as `nobody` is `nobody`'s anyway).
    fn give_to_nobody(&self) {
        if is_root() {
            chown_tree(self.f.dir.path(), NOBODY);
        }
    }

    /// One login of `user` with `password` from `IP1`, run by the unprivileged user.
    fn login(&self, user: &str, password: &str) -> Outcome {
        if !is_root() {
            let r = self.f.login("mail", user, password, Some(IP1));
            return Outcome {
                success: r.success(),
                reason: r.reason.clone().unwrap_or_default(),
            };
        }
        let mut child = Command::new("setpriv")
            .arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .arg("--clear-groups")
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_mailmfa"))
            .args(["check", "--json", "--service", "mail", "--rhost", IP1])
            .arg("--confdir")
            .arg(&self.f.confdir)
            .arg(user)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run setpriv");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{password}\n").as_bytes()).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "`mailmfa check` as nobody gave no JSON ({e}): status {}, stdout {stdout:?}, \
                 stderr {:?}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let success = json["result"] == "success";
        assert_eq!(
            out.status.success(),
            success,
            "exit status and result agree: {json}"
        );
        Outcome {
            success,
            reason: json["reason"].as_str().unwrap_or("").to_string(),
        }
    }

    /// alice's password with her code `steps` steps from now.
    fn alice_with(&self, steps: i64) -> String {
        format!("{PW}{}", code(&self.alice, steps))
    }

    /// alice logs in with her current code (`ok`), or again with the same string (`reused`):
    /// the world as it is trusts her files.
    fn alice_gets_in(&self) {
        let r = self.login(ALICE, &self.alice_with(0));
        assert!(r.success, "the baseline login was refused: {r:?}");
        assert!(
            ["ok", "reused"].contains(&r.reason.as_str()),
            "baseline: {r:?}"
        );
        if is_root() {
            use std::os::unix::fs::MetadataExt;
            let owner = fs::symlink_metadata(self.state()).unwrap().uid();
            assert_eq!(
                owner, NOBODY,
                "the module ran as nobody and wrote the state"
            );
        }
    }

    fn record(&self) -> std::path::PathBuf {
        self.f.record_path(ALICE)
    }

    fn state(&self) -> std::path::PathBuf {
        self.f.state_path(ALICE)
    }
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Hands `path` to the FOREIGN uid with `mode`.
fn give_to_foreign(path: &Path, mode: u32) {
    lchown(path, Some(FOREIGN), Some(FOREIGN)).unwrap();
    chmod(path, mode);
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// `lchown -R path uid:uid`.
fn chown_tree(path: &Path, uid: u32) {
    lchown(path, Some(uid), Some(uid)).unwrap();
    if fs::symlink_metadata(path).unwrap().is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

/// When root, `setpriv` must be there to drop to `nobody`; unprivileged, nothing is needed.
fn can_run() -> bool {
    !is_root() || servers::require_prereqs(&["setpriv", "pam_pwdfile.so"])
}

/// The login is refused with `reason`.
fn assert_denied(r: &Outcome, reason: &str) {
    assert!(!r.success, "let in: {r:?}");
    assert_eq!(r.reason, reason, "{r:?}");
}

// ---- files owned by the running user, with modes that let others write ----

#[test]
fn a_group_writable_record_0620_owned_by_the_running_user_denies_as_unsafe_record() {
    if !can_run() {
        return;
    }
    let w = World::with_alice_in();
    chmod(&w.record(), 0o620);
    // The same string from the same client would be `reused` with a trusted record.
    assert_denied(&w.login(ALICE, &w.alice_with(0)), "unsafe_record");
}

#[test]
fn a_world_writable_record_0602_owned_by_the_running_user_denies_as_unsafe_record() {
    if !can_run() {
        return;
    }
    let w = World::with_alice_in();
    chmod(&w.record(), 0o602);
    assert_denied(&w.login(ALICE, &w.alice_with(0)), "unsafe_record");
}

#[test]
fn a_group_writable_record_dir_owned_by_the_running_user_denies_as_record_dir_unusable() {
    if !can_run() {
        return;
    }
    let w = World::with_alice_in();
    chmod(&w.f.settings.record_dir, 0o770);
    assert_denied(&w.login(ALICE, &w.alice_with(0)), "record_dir_unusable");
    // Without a trusted record dir nobody's MFA can be known: a mailbox without MFA is
    // refused too, never waved through as "no MFA".
    assert_denied(&w.login(BOB, BOB_PW), "record_dir_unusable");
}

#[test]
fn a_group_writable_state_dir_owned_by_the_running_user_denies_as_state_dir_unusable() {
    if !can_run() {
        return;
    }
    let w = World::with_alice_in();
    chmod(&w.f.settings.state_dir, 0o770);
    assert_denied(&w.login(ALICE, &w.alice_with(1)), "state_dir_unusable");
}

#[test]
fn a_group_writable_state_file_owned_by_the_running_user_is_rebuilt_and_refuses_the_codes_valid_now(
) {
    if !can_run() {
        return;
    }
    let w = World::with_alice_in();
    assert!(w.state().exists(), "the baseline login wrote a state");
    chmod(&w.state(), 0o620);
    // A trusted state would let the next step's code in (`ok`); an untrusted one is rebuilt
    // assuming the worst: every code valid now counts as used.
    assert_denied(&w.login(ALICE, &w.alice_with(1)), "replayed");
    assert_eq!(mode_of(&w.state()), 0o600, "the rebuilt state replaced it");
}

#[test]
fn a_group_writable_config_owned_by_the_running_user_denies_every_login_as_bad_config() {
    if !can_run() {
        return;
    }
    let w = World::with_bob_in();
    chmod(&w.f.config, 0o620);
    assert_denied(&w.login(BOB, BOB_PW), "bad_config");
    assert_denied(&w.login(ALICE, &w.alice_with(0)), "bad_config");
}

#[test]
fn a_world_writable_config_owned_by_the_running_user_denies_every_login_as_bad_config() {
    if !can_run() {
        return;
    }
    let w = World::with_bob_in();
    chmod(&w.f.config, 0o602);
    assert_denied(&w.login(BOB, BOB_PW), "bad_config");
}

// ---- files owned by another non-root uid (needs root for chown; the login runs as nobody) ----

/// Root is needed to hand a file to another uid; the login itself still runs as `nobody`.
fn can_chown() -> bool {
    servers::require_prereqs(&["setpriv", "pam_pwdfile.so"])
}

#[test]
fn a_record_owned_by_another_uid_denies_as_unsafe_record_for_an_unprivileged_module() {
    if !can_chown() {
        return;
    }
    let w = World::with_alice_in();
    // Readable by nobody still (0644), so only the owner rule can refuse it.
    give_to_foreign(&w.record(), 0o644);
    let r = w.login(ALICE, &w.alice_with(0));
    assert_denied(&r, "unsafe_record");
}

#[test]
fn a_record_dir_owned_by_another_uid_denies_as_record_dir_unusable_for_an_unprivileged_module() {
    if !can_chown() {
        return;
    }
    let w = World::with_alice_in();
    give_to_foreign(&w.f.settings.record_dir, 0o755);
    chmod(&w.record(), 0o644);
    let r = w.login(ALICE, &w.alice_with(0));
    assert_denied(&r, "record_dir_unusable");
}

#[test]
fn a_config_owned_by_another_uid_denies_as_bad_config_for_an_unprivileged_module() {
    if !can_chown() {
        return;
    }
    let w = World::with_bob_in();
    give_to_foreign(&w.f.config, 0o644);
    let r = w.login(BOB, BOB_PW);
    assert_denied(&r, "bad_config");
}

#[test]
fn a_state_owned_by_another_uid_is_rebuilt_for_an_unprivileged_module() {
    if !can_chown() {
        return;
    }
    let w = World::with_alice_in();
    give_to_foreign(&w.state(), 0o644);
    let r = w.login(ALICE, &w.alice_with(1));
    assert_denied(&r, "replayed");
    let meta = fs::symlink_metadata(w.state()).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        meta.uid(),
        NOBODY,
        "the rebuilt state is the running user's"
    );
}
