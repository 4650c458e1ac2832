//! Full disks (issue 7, item 4, second half). Each test re-runs itself in a private mount
//! namespace (`unshare -m`) and mounts a small size-limited tmpfs over one of its own
//! directories, then fills it: the mount exists only inside that child and dies with it.
//! - A full state file system: logins that must write state are denied with
//!   `state_write_failed` (logged, from a private `/dev/log`), the old state stays
//!   byte-identical, no temp file is left, logins that need no write and mailboxes without
//!   MFA still work, and everything recovers once space is freed.
//! - A full record file system: `Store::write_record` (the command's write) fails with an
//!   error, the existing record is byte-identical and still works, no temp file is left, and
//!   a new user's record is not half-created.

mod fixture;
mod hostile;
mod skip;

use fixture::{code, login, wait_for_step_margin, Fixture};
use hostile::{field, fill_up, mailmfa_lines, LogSink, Mount};
use mailmfa::otp::Algorithm;
use mailmfa::record::Record;
use mailmfa::store::Store;
use std::fs;
use std::path::Path;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const PW: &str = "T9D3K!px";
const IP1: Option<&str> = Some("127.0.0.2");
const IP2: Option<&str> = Some("127.0.0.3");

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn last_reason(logs: &LogSink) -> (String, Vec<String>) {
    let lines = mailmfa_lines(&logs.take());
    let last = lines.last().cloned().unwrap_or_default();
    (field(&last, "reason"), lines)
}

fn full_state_disk() {
    let logs = hostile::private_dev_log();
    let f = Fixture::new();
    // Mounted over the state directory; detached before the fixture is removed.
    let mount = Mount::tmpfs(&f.settings.state_dir, 64);
    f.install_example("dovecot-virtual", "mail", "");
    f.add_password(ALICE, PW);
    f.add_password(BOB, "secret123456");
    f.add_password("carol@example.com", PW);
    let rec = f.enable(ALICE);
    let carol = f.enable("carol@example.com");
    wait_for_step_margin(5);
    let right = format!("{PW}{}", code(&rec, 0));
    assert!(f.login("mail", ALICE, &right, IP1).success());
    let state_path = f.state_path(ALICE);
    let before = fs::read(&state_path).unwrap();
    logs.take();

    fill_up(mount.path());

    // A wrong code must be counted, which needs a write: denied, and said why.
    let r = f.login("mail", ALICE, &format!("{PW}000000"), IP1);
    assert!(!r.success());
    assert_eq!(r.reason.as_deref(), Some("state_write_failed"), "{r:?}");
    let (reason, lines) = last_reason(&logs);
    assert_eq!(reason, "state_write_failed", "{lines:#?}");
    assert!(
        lines.last().unwrap().contains("No space left on device"),
        "{lines:#?}"
    );
    // The same step from another client must be recorded as a failure: denied as well.
    let r = f.login("mail", ALICE, &right, IP2);
    assert_eq!(r.reason.as_deref(), Some("state_write_failed"), "{r:?}");
    assert!(!r.success());
    // A mailbox that never logged in: its lock file fits (no data), its first state does not.
    let r = f.login(
        "mail",
        "carol@example.com",
        &format!("{PW}{}", code(&carol, 0)),
        IP1,
    );
    assert_eq!(r.reason.as_deref(), Some("state_write_failed"), "{r:?}");
    assert!(!r.success());
    assert!(!f.state_path("carol@example.com").exists());
    // Nothing half-written, the old state intact.
    assert_eq!(fs::read(&state_path).unwrap(), before);
    assert_eq!(
        names(&f.settings.state_dir),
        [
            "alice@example.com.lock",
            "alice@example.com.state",
            "carol@example.com.lock",
            "filler"
        ]
    );
    // The same client reusing its step needs no write and gets in; no MFA needs no state.
    let r = f.login("mail", ALICE, &right, IP1);
    assert_eq!(r.reason.as_deref(), Some("reused"), "{r:?}");
    assert!(f.login("mail", BOB, "secret123456", IP1).success());

    // Space again: the next failure is written and the state parses.
    fs::remove_file(mount.path().join("filler")).unwrap();
    let r = f.login("mail", ALICE, &format!("{PW}000000"), IP1);
    assert!(matches!(r.reason.as_deref(), Some("bad_code")), "{r:?}");
    assert!(!f.state(ALICE).unwrap().failures.is_empty());
    drop(mount);
}

fn full_record_disk() {
    let f = Fixture::new();
    let mount = Mount::tmpfs(&f.settings.record_dir, 64);
    f.install_example("dovecot-virtual", "mail", "");
    f.add_password(ALICE, PW);
    let rec = f.enable(ALICE);
    let record_path = f.record_path(ALICE);
    let before = fs::read(&record_path).unwrap();

    fill_up(mount.path());

    let store = f.store();
    let replacement = Record::new(vec![7u8; 20], Algorithm::SHA1, 6, 30, 42).unwrap();
    let err = store
        .write_record(&login(ALICE), &replacement)
        .expect_err("a write on a full disk fails");
    assert!(
        err.to_string().contains("No space left on device"),
        "the error says why: {err}"
    );
    assert_eq!(
        fs::read(&record_path).unwrap(),
        before,
        "the old record is intact"
    );
    let err = store
        .write_record(&login("carol@example.com"), &replacement)
        .expect_err("a new record on a full disk fails");
    assert!(err.to_string().contains("No space left on device"), "{err}");
    assert_eq!(
        names(&f.settings.record_dir),
        ["alice@example.com.toml", "filler"],
        "no temp file and no half-created record"
    );
    // The intact record still works.
    wait_for_step_margin(3);
    let r = f.login("mail", ALICE, &format!("{PW}{}", code(&rec, 0)), IP1);
    assert!(r.success(), "{r:?}");
    drop(mount);
}

fn in_namespace(name: &str, body: fn()) {
    match hostile::role().as_deref() {
        Some(hostile::IN_NAMESPACE) => body(),
        Some(other) => panic!("unknown role {other}"),
        None => {
            hostile::rerun_in_namespace(name, &[]);
        }
    }
}

#[test]
fn a_full_state_disk_denies_with_state_write_failed_and_leaves_no_partial_file() {
    in_namespace(
        "a_full_state_disk_denies_with_state_write_failed_and_leaves_no_partial_file",
        full_state_disk,
    );
}

#[test]
fn a_record_write_on_a_full_disk_fails_cleanly_and_keeps_the_old_record() {
    in_namespace(
        "a_record_write_on_a_full_disk_fails_cleanly_and_keeps_the_old_record",
        full_record_disk,
    );
}
