//! A damaged state forgets no one-time use (security issue 11, finding 7). For every way the
//! suite knows to damage a state file (the hostile table's "state:" rows: NUL appended, cut
//! inside a line, garbage, a wrong version, over 64 KiB, group- or world-writable, a foreign
//! owner, a symlink, a FIFO or a directory in its place), through the real libpam with the
//! shipped `dovecot-virtual` stack: (a) a recovery code used before the damage stays refused,
//! (b) a password+code accepted from client A is accepted neither from client B nor again from
//! A (`replayed`: the rebuilt state starts its last step at "now + window"), and (c) the owner
//! gets back in with a fresh recovery code set (issued by the command or the library) and with
//! the code of a later step. The other writers of a rebuilt state repair it the same way: an
//! app-password login, `mailmfa recovery-codes` and a re-enrolment; and the store itself
//! never writes a rebuilt state that was not repaired. A recovery-code use is fsynced (file
//! and directory) while a TOTP login is not, proved with `strace`.
//!
//! The damage table runs in a child inside a private mount namespace (like `hostile_table`),
//! for a `/dev/log` of its own: the `state_rebuilt` line must tell the admin what to do.

mod fixture;
mod hostile;
mod skip;

use fixture::{login, now, Fixture};
use hostile::{contains, field, mailmfa_lines, LogSink};
use mailmfa::credential;
use mailmfa::record::Record;
use mailmfa::store::{StateLoad, Store};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const ALICE: &str = "alice@example.com";
const PW: &str = "T9D3K!px";
/// The client that logged in before the damage.
const A: &str = "127.0.0.2";
/// Another client, after the damage.
const B: &str = "127.0.0.3";
/// Alice's recovery code used before the damage.
const USED: &str = "mnbv-cxzl-kjhg";
/// Alice's recovery code never used: after the damage its history is unknown, so it is
/// refused too until a new set is issued.
const UNUSED: &str = "qwer-tyui-opas";
/// Alice's app password.
const APP: &str = "qwxzv-kjhgf-dsapo-iuytr";
const MAILMFA: &str = env!("CARGO_BIN_EXE_mailmfa");

/// Reasons that let the login in.
const ACCEPTED: &[&str] = &["ok", "reused", "recovery_code", "app_password"];

/// Alice with MFA, two recovery codes and an app password, in a fixture of her own.
struct Alice {
    f: Fixture,
    record: Record,
}

impl Alice {
    fn new() -> Alice {
        let f = Fixture::new();
        f.install_example("dovecot-virtual", "mail", "");
        f.add_password(ALICE, PW);
        let mut record = f.enable(ALICE);
        record.recovery_codes = [USED, UNUSED]
            .iter()
            .zip(1u8..)
            .map(|(c, salt)| {
                credential::hash(&credential::recovery_letters(c.as_bytes()), &[salt; 16])
            })
            .collect();
        record
            .app_passwords
            .push(fixture::app_password("phone", APP));
        f.store().write_record(&login(ALICE), &record).unwrap();
        Alice { f, record }
    }

    fn state_path(&self) -> std::path::PathBuf {
        self.f.state_path(ALICE)
    }

    /// Logs in with `password` from `rhost` and checks the reason mailmfa gave (and that the
    /// login got in exactly when that reason accepts).
    fn expect(&self, password: &str, rhost: &str, want: &str, why: &str) {
        let r = self.f.login("mail", ALICE, password, Some(rhost));
        assert_eq!(r.reason.as_deref(), Some(want), "{why}: {r:?}");
        assert_eq!(r.success(), ACCEPTED.contains(&want), "{why}: {r:?}");
    }

    /// Uses `USED` and a TOTP code from client A; returns the password+code string accepted.
    fn use_codes(&self) -> String {
        self.expect(
            &format!("{PW}{USED}"),
            A,
            "recovery_code",
            "before the damage",
        );
        let accepted = format!("{PW}{}", fixture::code(&self.record, 0));
        self.expect(&accepted, A, "ok", "before the damage");
        let state = self.f.state(ALICE).expect("a state");
        assert_eq!(state.used_recovery.len(), 1);
        accepted
    }

    /// A fresh set of recovery codes: by `mailmfa recovery-codes --json`, or written with the
    /// library. Returns one code of it.
    fn new_recovery_code(&mut self, by_command: bool) -> String {
        if by_command {
            let out = Command::new(MAILMFA)
                .arg("--config")
                .arg(&self.f.config)
                .args(["recovery-codes", ALICE, "--json"])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(out.status.success(), "recovery-codes: {out:?}");
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            self.record =
                Record::parse(&fs::read_to_string(self.f.record_path(ALICE)).unwrap()).unwrap();
            return json["codes"][0].as_str().unwrap().to_string();
        }
        let code = credential::random_letters(credential::RECOVERY_LETTERS, 4).unwrap();
        let salt = credential::random_salt().unwrap();
        self.record.recovery_codes = vec![credential::hash(
            &credential::recovery_letters(code.as_bytes()),
            &salt,
        )];
        self.f
            .store()
            .write_record(&login(ALICE), &self.record)
            .unwrap();
        code.to_string()
    }

    /// The state's load as the next login would see it.
    fn load(&self) -> StateLoad {
        self.f
            .store()
            .update_state(&login(ALICE), &mut |_| false)
            .unwrap()
    }

    /// Waits until the code of a step after the last accepted one is valid, and returns
    /// password+that code.
    fn later_code(&self) -> String {
        let params = self.record.params();
        let last = self.f.state(ALICE).and_then(|s| s.last_step);
        let step = || params.step_at(now());
        if let Some(last) = last {
            while step() < last {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        let later = last.map_or(step(), |l| (l + 1).max(step()));
        format!(
            "{PW}{}",
            String::from_utf8(params.code(later).to_vec()).unwrap()
        )
    }
}

/// One way to damage a state file.
struct Damage {
    name: &'static str,
    /// Damages the state at the path (the second path is a scratch directory).
    apply: fn(&Path, &Path),
    /// `false` when the module cannot replace the damaged state: a directory in its place
    /// makes every login fail (`state_write_failed`) until the admin removes it.
    replaceable: bool,
}

fn append(path: &Path, bytes: &[u8]) {
    fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

/// Cuts the file in the middle of the value of its line starting with `key`.
fn cut_inside(path: &Path, key: &str) {
    let text = fs::read_to_string(path).unwrap();
    let start = text
        .find(&format!("{key} = "))
        .unwrap_or_else(|| panic!("no `{key}` in {text:?}"));
    let end = start + text[start..].find('\n').unwrap();
    let value = start + key.len() + 3;
    fs::write(path, &text[..value + (end - value) / 2]).unwrap();
}

fn damages() -> Vec<Damage> {
    let d = |name, apply, replaceable| Damage {
        name,
        apply,
        replaceable,
    };
    vec![
        d("NUL appended", |p, _| append(p, b"\0"), true),
        d(
            "cut inside a number",
            |p, _| cut_inside(p, "last_step"),
            true,
        ),
        d(
            "cut inside a list",
            |p, _| cut_inside(p, "used_recovery"),
            true,
        ),
        d(
            "garbage",
            |p, _| fs::write(p, "garbage = [\x01\x02").unwrap(),
            true,
        ),
        d(
            "wrong version",
            |p, _| {
                let text = fs::read_to_string(p).unwrap();
                fs::write(p, text.replace("version = 1", "version = 2")).unwrap()
            },
            true,
        ),
        d(
            "over 64 KiB",
            |p, _| append(p, format!("# {}\n", "x".repeat(70_000)).as_bytes()),
            true,
        ),
        d(
            "group-writable",
            |p, _| fs::set_permissions(p, fs::Permissions::from_mode(0o620)).unwrap(),
            true,
        ),
        d(
            "world-writable",
            |p, _| fs::set_permissions(p, fs::Permissions::from_mode(0o602)).unwrap(),
            true,
        ),
        d(
            "owned by uid 12345",
            |p, _| std::os::unix::fs::lchown(p, Some(12345), Some(12345)).unwrap(),
            true,
        ),
        d(
            "a symlink to the real state",
            |p, scratch| {
                let elsewhere = scratch.join("elsewhere.state");
                fs::rename(p, &elsewhere).unwrap();
                symlink(&elsewhere, p).unwrap();
            },
            true,
        ),
        d(
            "a FIFO in its place",
            |p, _| {
                fs::remove_file(p).unwrap();
                hostile::mkfifo(p);
            },
            true,
        ),
        d(
            "a directory in its place",
            |p, _| {
                fs::remove_file(p).unwrap();
                fs::create_dir(p).unwrap();
            },
            false,
        ),
    ]
}

/// Checks that no log line holds the password or a recovery code, and returns the mailmfa
/// lines.
fn lines(logs: &LogSink) -> Vec<String> {
    let taken = logs.take();
    for line in &taken {
        for secret in [PW, USED, UNUSED, APP] {
            assert!(!contains(line, secret.as_bytes()), "a secret in {line:?}");
        }
    }
    mailmfa_lines(&taken)
}

/// (a) and (b) for one kind of damage; returns the world for (c).
fn damage_and_replay(d: &Damage, logs: &LogSink) -> Alice {
    let alice = Alice::new();
    let accepted = alice.use_codes();
    let _ = lines(logs);
    (d.apply)(&alice.state_path(), alice.f.dir.path());
    let (replayed, used) = if d.replaceable {
        ("replayed", "bad_recovery_code")
    } else {
        ("state_write_failed", "state_write_failed")
    };
    // (b) The first login after the damage: client B with the string accepted from A.
    alice.expect(&accepted, B, replayed, "the string of A from B");
    if d.replaceable {
        let rebuilt: Vec<String> = lines(logs)
            .into_iter()
            .filter(|l| field(l, "reason") == "state_rebuilt")
            .collect();
        assert_eq!(rebuilt.len(), 1, "one state_rebuilt line: {rebuilt:?}");
        assert!(
            field(&rebuilt[0], "detail").contains("mailmfa recovery-codes"),
            "the state_rebuilt line tells the admin what to do: {rebuilt:?}"
        );
    }
    // From A itself the step is gone too: the rebuilt state cannot know A used it.
    alice.expect(&accepted, A, replayed, "the string of A from A");
    // (a) The used recovery code stays refused; so does the unused one, whose history is lost.
    alice.expect(&format!("{PW}{USED}"), A, used, "the used recovery code");
    alice.expect(
        &format!("{PW}{UNUSED}"),
        B,
        used,
        "the unused recovery code",
    );
    if d.replaceable {
        assert_eq!(
            alice.load(),
            StateLoad::Read,
            "the repaired state was written"
        );
        let meta = fs::symlink_metadata(alice.state_path()).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    }
    let _ = lines(logs);
    alice
}

/// (c) After the rebuild: a fresh recovery code set works, and so does a later step's code.
fn back_in(d: &Damage, alice: &mut Alice, by_command: bool) {
    if !d.replaceable {
        // The admin's fix for a directory in place of the state.
        fs::remove_dir(alice.state_path()).unwrap();
    }
    let code = alice.new_recovery_code(by_command);
    alice.expect(
        &format!("{PW}{code}"),
        B,
        "recovery_code",
        "a new recovery code",
    );
    alice.expect(&format!("{PW}{code}"), B, "bad_recovery_code", "used once");
    let later = alice.later_code();
    alice.expect(&later, B, "ok", "the code of a later step");
}

fn run_damage_table() {
    let logs = hostile::private_dev_log();
    let root = mailmfa::pam::sys::effective_uid() == 0;
    let kinds: Vec<Damage> = damages()
        .into_iter()
        .filter(|d| root || !d.name.starts_with("owned by"))
        .collect();
    // Each kind on its own (a failure names the kind and the others still run); (c) for all
    // of them after one wait for a later step.
    let mut failed = Vec::new();
    let mut worlds = Vec::new();
    for d in &kinds {
        match catch_unwind(AssertUnwindSafe(|| damage_and_replay(d, &logs))) {
            Ok(alice) => worlds.push((d, alice)),
            Err(e) => failed.push(format!("{}: {}", d.name, panic_text(&e))),
        }
    }
    for (i, (d, alice)) in worlds.iter_mut().enumerate() {
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| back_in(d, alice, i % 2 == 0))) {
            failed.push(format!("{} (back in): {}", d.name, panic_text(&e)));
        }
    }
    assert!(failed.is_empty(), "failed: {failed:#?}");
}

fn panic_text(e: &Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn a_damaged_state_forgets_no_used_recovery_code_and_no_used_step() {
    match hostile::role().as_deref() {
        Some(hostile::IN_NAMESPACE) => run_damage_table(),
        Some(other) => panic!("unknown role {other}"),
        None => {
            hostile::rerun_in_namespace(
                "a_damaged_state_forgets_no_used_recovery_code_and_no_used_step",
                &[],
            );
        }
    }
}

#[test]
fn an_app_password_login_on_a_damaged_state_repairs_it() {
    let alice = Alice::new();
    let accepted = alice.use_codes();
    append(&alice.state_path(), b"\0");
    // The first writer of the rebuilt state is split, recording the app password's use.
    alice.expect(APP, B, "app_password", "the app password");
    assert_eq!(alice.load(), StateLoad::Read);
    alice.expect(&accepted, B, "replayed", "the string of A from B");
    alice.expect(
        &format!("{PW}{USED}"),
        A,
        "bad_recovery_code",
        "the used code",
    );
}

#[test]
fn recovery_codes_issued_on_a_damaged_state_keep_the_used_step() {
    let mut alice = Alice::new();
    let accepted = alice.use_codes();
    append(&alice.state_path(), b"\0");
    // The first writer of the rebuilt state is the command, before any login.
    let code = alice.new_recovery_code(true);
    assert_eq!(alice.load(), StateLoad::Read);
    alice.expect(&accepted, B, "replayed", "the string of A from B");
    alice.expect(&format!("{PW}{code}"), B, "recovery_code", "a new code");
}

#[test]
fn re_enrolling_on_a_damaged_state_keeps_the_carried_recovery_codes_used() {
    let alice = Alice::new();
    alice.use_codes();
    append(&alice.state_path(), b"\0");
    // A new phone (`enable --replace --force`, then `--confirm`): the first writer of the
    // rebuilt state; the recovery codes carry over to the new record.
    let run = |args: &[&str]| {
        let out = Command::new(MAILMFA)
            .arg("--config")
            .arg(&alice.f.config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    run(&["enable", ALICE, "--begin", "--replace", "--force", "--json"]);
    let pending = alice
        .f
        .settings
        .record_dir
        .join("pending")
        .join(format!("{ALICE}.toml"));
    let new = mailmfa::store::pending::Pending::parse(&fs::read_to_string(pending).unwrap())
        .unwrap()
        .record;
    run(&["enable", ALICE, "--confirm", &fixture::code(&new, 0)]);
    assert_eq!(alice.load(), StateLoad::Read);
    alice.expect(
        &format!("{PW}{USED}"),
        A,
        "bad_recovery_code",
        "the used code",
    );
}

#[test]
fn the_store_never_writes_a_rebuilt_state_that_was_not_repaired() {
    let alice = Alice::new();
    alice.use_codes();
    append(&alice.state_path(), b"\0");
    let damaged = fs::read(alice.state_path()).unwrap();
    let store = alice.f.store();
    // A decision that forgets the repair: its change is refused, nothing is written.
    let changed = store.update_state(&login(ALICE), &mut |state| {
        state.last_success = Some(now());
        true
    });
    assert!(
        matches!(changed, Err(mailmfa::store::StoreError::Write { .. })),
        "{changed:?}"
    );
    assert_eq!(fs::read(alice.state_path()).unwrap(), damaged);
    // No change: the damaged file stays for the next reader, which rebuilds it again.
    let unchanged = store.update_state(&login(ALICE), &mut |_| false).unwrap();
    assert!(matches!(unchanged, StateLoad::Rebuilt(_)), "{unchanged:?}");
    assert_eq!(fs::read(alice.state_path()).unwrap(), damaged);
    alice.expect(
        &format!("{PW}{USED}"),
        A,
        "bad_recovery_code",
        "the used code",
    );
}

/// The `fsync` calls of one `mailmfa check` login (`strace -f -y`), as lines naming the files
/// they synced.
fn fsyncs(alice: &Alice, password: &str) -> Vec<String> {
    let trace = alice.f.dir.path().join("strace.out");
    let mut child = Command::new("strace")
        .args([
            "-f",
            "-y",
            "-qq",
            "-e",
            "trace=fsync,fdatasync,sync,syncfs",
            "-o",
        ])
        .arg(&trace)
        .arg(MAILMFA)
        .arg("--config")
        .arg(&alice.f.config)
        .args(["check", "--service", "mail", "--rhost", A, "--confdir"])
        .arg(&alice.f.confdir)
        .arg(ALICE)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    assert!(child.wait().unwrap().success(), "the login got in");
    let text = fs::read_to_string(&trace).unwrap();
    fs::remove_file(&trace).unwrap();
    text.lines()
        .filter(|l| l.contains("sync"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_recovery_code_use_is_fsynced_and_a_totp_login_is_not() {
    let strace = Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !hostile::prerequisite(strace, "strace (apt-get install strace)") {
        return;
    }
    let alice = Alice::new();
    let state_dir = alice.f.settings.state_dir.display().to_string();
    let tmp = format!("{state_dir}/.{ALICE}.state.tmp>");
    let totp = fsyncs(&alice, &format!("{PW}{}", fixture::code(&alice.record, 0)));
    assert!(
        totp.iter().all(|l| !l.contains(&state_dir)),
        "a TOTP login fsyncs nothing of the state: {totp:#?}"
    );
    let recovery = fsyncs(&alice, &format!("{PW}{USED}"));
    assert!(
        recovery
            .iter()
            .any(|l| is_call(l, "fsync(") && l.contains(&tmp)),
        "the new state is fsynced before the rename: {recovery:#?}"
    );
    assert!(
        recovery
            .iter()
            .any(|l| is_call(l, "fsync(") && l.contains(&format!("<{state_dir}>"))),
        "the state directory is fsynced after the rename: {recovery:#?}"
    );
    assert_eq!(alice.f.state(ALICE).unwrap().used_recovery.len(), 1);
}

/// Whether a strace line (`PID call(...) = result`, the PID padded with spaces) is a call of
/// `call`.
fn is_call(line: &str, call: &str) -> bool {
    line.trim_start()
        .split_once(' ')
        .is_some_and(|(pid, rest)| {
            pid.bytes().all(|b| b.is_ascii_digit()) && rest.trim_start().starts_with(call)
        })
}
