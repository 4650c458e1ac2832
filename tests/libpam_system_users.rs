//! The `pam.d-examples/dovecot` stack (system users, pam_unix) through the real libpam.
//!
//! pam_unix checks /etc/shadow, and the machine's own accounts must not change, so each login
//! runs `mailmfa check` in a private mount namespace (`unshare -m`) where copies of
//! /etc/passwd and /etc/shadow with one extra test account are bind-mounted over the real
//! ones; the mounts die with the process.

mod fixture;
mod skip;

use fixture::{code, Fixture};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const USER: &str = "mfatest";
const PW: &str = "T9D3K!px";

/// Whether this machine can run the test (root, unshare, /etc/shadow); see `skip`.
fn prerequisites() -> bool {
    let missing: Vec<&str> = [
        (skip::is_root(), skip::ROOT),
        (Path::new("/usr/bin/unshare").exists(), "/usr/bin/unshare"),
        (Path::new("/etc/shadow").exists(), "/etc/shadow"),
    ]
    .into_iter()
    .filter(|(ok, _)| !ok)
    .map(|(_, what)| what)
    .collect();
    skip::require_all(&missing)
}

/// Copies of passwd and shadow with the test account, in the fixture's directory.
fn accounts(f: &Fixture) -> (String, String) {
    accounts_with(f, "", "")
}

/// Like [`accounts`], the test account's shadow entry with `lock` before its hash (`!` is what
/// `usermod -L` writes) and `expire` as its expiration day ("" for none).
fn accounts_with(f: &Fixture, lock: &str, expire: &str) -> (String, String) {
    let hash = Command::new("openssl")
        .args(["passwd", "-6", PW])
        .output()
        .unwrap();
    let hash = String::from_utf8(hash.stdout).unwrap();
    let passwd = f.dir.path().join("passwd");
    let shadow = f.dir.path().join("shadow");
    let mut p = fs::read_to_string("/etc/passwd").unwrap();
    p.push_str(&format!(
        "{USER}:x:5001:5001::/nonexistent:/usr/sbin/nologin\n"
    ));
    let mut s = fs::read_to_string("/etc/shadow").unwrap();
    s.push_str(&format!(
        "{USER}:{lock}{}:19000:0:99999:7::{expire}:\n",
        hash.trim()
    ));
    fs::write(&passwd, p).unwrap();
    fs::write(&shadow, s).unwrap();
    (passwd.display().to_string(), shadow.display().to_string())
}

/// One login through `mailmfa check` with the test account visible; returns (success, reason).
fn login(f: &Fixture, files: &(String, String), password: &str) -> (bool, String) {
    let mut child = Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            "mount --bind \"$0\" /etc/passwd && mount --bind \"$1\" /etc/shadow && shift && exec \"$@\"",
        ])
        .arg(&files.0)
        .arg(&files.1)
        .arg(env!("CARGO_BIN_EXE_mailmfa"))
        .args(["check", "--service", "dovecot", "--rhost", "127.0.0.2", "--confdir"])
        .arg(&f.confdir)
        .arg(USER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reason = stdout
        .lines()
        .find_map(|l| l.strip_prefix("reason: "))
        .unwrap_or("")
        .to_string();
    (out.status.success(), reason)
}

#[test]
fn the_system_user_stack_checks_the_unix_password_then_the_code() {
    if !prerequisites() {
        return;
    }
    let f = Fixture::new();
    f.install_example("dovecot", "dovecot", "");
    let files = accounts(&f);
    // Without MFA: pam_unix alone decides.
    assert_eq!(login(&f, &files, PW), (true, "no_mfa".to_string()));
    assert!(!login(&f, &files, "wrong").0);
    // With MFA: password + code; the code alone or a wrong password never gets in.
    let record = f.enable(USER);
    fixture::wait_for_step_margin(3);
    let c = code(&record, 0);
    assert!(!login(&f, &files, &format!("WRONG{c}")).0);
    assert_eq!(login(&f, &files, PW), (false, "no_code".to_string()));
    assert_eq!(
        login(&f, &files, &format!("{PW}{c}")),
        (true, "ok".to_string())
    );
    let wrong = if c == "000000" { "111111" } else { "000000" };
    assert_eq!(
        login(&f, &files, &format!("{PW}{wrong}")),
        (false, "bad_code".to_string())
    );
}

/// An app password skips pam_unix's password check, but not the account lines (Dovecot calls
/// pam_acct_mgmt after every login): once the account is locked (`usermod -L`: pam_mailmfa's
/// account line reads /etc/shadow), expired (pam_unix) or deleted, the app password stops
/// working.
#[test]
fn an_app_password_stops_when_the_system_account_is_locked_expired_or_deleted() {
    if !prerequisites() {
        return;
    }
    let f = Fixture::new();
    f.install_example("dovecot", "dovecot", "");
    let mut record = f.enable(USER);
    let app = "qwert-yuiop-asdfg-hjklz";
    let letters = mailmfa::credential::app_password_letters(app.as_bytes()).unwrap();
    record.app_passwords.push(mailmfa::record::AppPassword {
        name: "phone".into(),
        hash: mailmfa::credential::hash(&letters, &mailmfa::credential::random_salt().unwrap()),
        services: Vec::new(),
        created: fixture::now(),
        expires: None,
        from: Vec::new(),
    });
    use mailmfa::store::Store;
    f.store()
        .write_record(&fixture::login(USER), &record)
        .unwrap();
    let alive = accounts(&f);
    assert_eq!(login(&f, &alive, app), (true, "app_password".to_string()));
    let locked = accounts_with(&f, "!", "");
    assert_eq!(
        login(&f, &locked, app),
        (false, "mailbox_locked".to_string())
    );
    let expired = accounts_with(&f, "", "1");
    assert_eq!(
        login(&f, &expired, app),
        (false, "app_password".to_string())
    );
    let deleted = (
        fs::read_to_string("/etc/passwd").unwrap(),
        fs::read_to_string("/etc/shadow").unwrap(),
    );
    fs::write(f.dir.path().join("passwd"), deleted.0).unwrap();
    fs::write(f.dir.path().join("shadow"), deleted.1).unwrap();
    let r = login(&f, &alive, app);
    assert!(!r.0, "deleted account: {r:?}");
}
