//! Mail clients that store the password, through the real libpam with the module: app
//! passwords (ending the stack in `split`), bounded same-client reuse (`reuse_for`) and
//! one-time recovery codes.

mod fixture;

use fixture::{code, now, Fixture};
use mailmfa::credential;
use mailmfa::record::{AppPassword, Record};

const PW: &str = "T9D3K!px";
const USER: &str = "carol@example.com";
const APP: &str = "qwert-yuiop-asdfg-hjklz";

fn world(args: &str) -> (Fixture, Record) {
    let f = Fixture::new();
    f.install_example("dovecot-virtual", "imap", args);
    f.install_example("smtp", "smtp", args);
    f.add_password(USER, PW);
    let record = f.enable(USER);
    (f, record)
}

fn add_app_password(f: &Fixture, record: &mut Record, services: &[&str], expires: Option<u64>) {
    let letters = credential::app_password_letters(APP.as_bytes()).unwrap();
    record.app_passwords.push(AppPassword {
        name: "thunderbird".into(),
        hash: credential::hash(&letters, &credential::random_salt().unwrap()),
        services: services.iter().map(|s| s.to_string()).collect(),
        created: now(),
        expires,
        from: Vec::new(),
    });
    f.save(USER, record);
}

fn reason(r: &mailmfa::pam::client::Response) -> String {
    r.reason.clone().unwrap_or_default()
}

#[test]
fn an_app_password_logs_in_alone_for_its_services_and_records_its_last_use() {
    let (f, mut rec) = world("");
    add_app_password(&f, &mut rec, &["imap"], None);
    let r = f.login("imap", USER, APP, Some("127.0.0.5"));
    assert!(r.success(), "{r:?}");
    assert_eq!(reason(&r), "app_password");
    let used = f.state(USER).unwrap().app_password_uses;
    assert_eq!(
        (used[0].name.as_str(), used[0].client.as_str()),
        ("thunderbird", "127.0.0.5")
    );
    // The password module was not asked: the app password is not the mailbox password.
    let r = f.login("smtp", USER, APP, None);
    assert!(!r.success());
    assert_eq!(reason(&r), "app_password_wrong_service");
}

#[test]
fn an_expired_or_revoked_app_password_is_refused() {
    let (f, mut rec) = world("");
    add_app_password(&f, &mut rec, &[], Some(now() - 1));
    assert_eq!(
        reason(&f.login("imap", USER, APP, Some("127.0.0.5"))),
        "app_password_expired"
    );
    rec.app_passwords.clear();
    f.save(USER, &rec);
    assert_eq!(
        reason(&f.login("imap", USER, APP, Some("127.0.0.5"))),
        "bad_app_password"
    );
}

#[test]
fn reuse_for_lets_the_same_client_reuse_its_string_and_no_one_else() {
    let (f, rec) = world("reuse_for=8h");
    let s = format!("{PW}{}", code(&rec, 0));
    assert!(f.login("imap", USER, &s, Some("127.0.0.6")).success());
    // The code's own step is long gone in a real session; here the state proves the path:
    // the session is recorded, the same client gets `reused`, another gets `replayed`.
    assert_eq!(f.state(USER).unwrap().sessions.len(), 1);
    let again = f.login("imap", USER, &s, Some("127.0.0.6"));
    assert_eq!(reason(&again), "reused");
    assert!(again.success());
    assert_eq!(
        reason(&f.login("imap", USER, &s, Some("127.0.0.7"))),
        "replayed"
    );
    // The password is still checked every time.
    let wrong_pw = format!("nope{}", code(&rec, 0));
    assert!(!f
        .login("imap", USER, &wrong_pw, Some("127.0.0.6"))
        .success());
}

#[test]
fn a_recovery_code_works_once_after_the_right_password() {
    let (f, mut rec) = world("");
    let codes = f.add_recovery_codes(USER, &mut rec);
    let wrong_pw = format!("nope{}", codes[0].as_str());
    assert!(!f
        .login("imap", USER, &wrong_pw, Some("127.0.0.8"))
        .success());
    let s = format!("{PW}{}", codes[0].as_str());
    let r = f.login("imap", USER, &s, Some("127.0.0.8"));
    assert!(r.success(), "{r:?}");
    assert_eq!(reason(&r), "recovery_code");
    assert_eq!(
        reason(&f.login("imap", USER, &s, Some("127.0.0.8"))),
        "bad_recovery_code"
    );
    let other = format!("{PW}{}", codes[1].as_str());
    assert!(f.login("imap", USER, &other, Some("127.0.0.8")).success());
}

/// Rewrites the fixture's password file, changing `USER`'s line with `edit` (`None`: deleted).
fn edit_mailbox(f: &Fixture, edit: impl Fn(&str) -> Option<String>) {
    let text = std::fs::read_to_string(&f.pwdfile).unwrap();
    let out: String = text
        .lines()
        .filter_map(|l| match l.strip_prefix(&format!("{USER}:")) {
            Some(hash) => edit(hash).map(|h| format!("{USER}:{h}\n")),
            None => Some(format!("{l}\n")),
        })
        .collect();
    std::fs::write(&f.pwdfile, out).unwrap();
}

/// An app password skips the password module, so the `account` line asks the password file:
/// once the mailbox's line is locked (`!`) or deleted, its app passwords stop working over
/// both shipped pam_pwdfile stacks (Dovecot's and saslauthd's), with the reason logged; the
/// mailbox's other credentials stop with it, and unlocking brings the app password back.
#[test]
fn an_app_password_stops_when_its_mailbox_is_locked_or_deleted() {
    let (f, mut rec) = world("");
    add_app_password(&f, &mut rec, &[], None);
    for service in ["imap", "smtp"] {
        let r = f.login(service, USER, APP, Some("127.0.0.9"));
        assert!(r.success(), "{service}, mailbox alive: {r:?}");
    }
    edit_mailbox(&f, |hash| Some(format!("!{hash}")));
    for service in ["imap", "smtp"] {
        let r = f.login(service, USER, APP, Some("127.0.0.9"));
        assert_eq!(r.authenticate, libpam_sys::PAM_SUCCESS, "{r:?}");
        assert_ne!(r.account, Some(libpam_sys::PAM_SUCCESS), "{service}: {r:?}");
        assert!(!r.success());
        assert_eq!(reason(&r), "mailbox_locked", "{service}");
        let with_code = format!("{PW}{}", code(&rec, 0));
        assert!(!f
            .login(service, USER, &with_code, Some("127.0.0.9"))
            .success());
    }
    edit_mailbox(&f, |hash| Some(hash.trim_start_matches('!').to_string()));
    assert!(f.login("imap", USER, APP, Some("127.0.0.9")).success());
    edit_mailbox(&f, |_| None);
    for service in ["imap", "smtp"] {
        let r = f.login(service, USER, APP, Some("127.0.0.9"));
        assert!(!r.success(), "{service}, mailbox deleted: {r:?}");
        assert_eq!(reason(&r), "mailbox_gone", "{service}");
    }
}

/// The `account` line fails closed: a missing or unsafe password file denies app-password
/// logins (`bad_config`), and a pam.d line without `pwdfile=` denies every login.
#[test]
fn the_account_line_fails_closed() {
    use std::os::unix::fs::PermissionsExt;
    let (f, mut rec) = world("");
    add_app_password(&f, &mut rec, &[], None);
    std::fs::set_permissions(&f.pwdfile, std::fs::Permissions::from_mode(0o666)).unwrap();
    let r = f.login("imap", USER, APP, Some("127.0.0.9"));
    assert!(!r.success());
    assert_eq!(reason(&r), "bad_config");
    std::fs::set_permissions(&f.pwdfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(f.login("imap", USER, APP, Some("127.0.0.9")).success());
    let stack = std::fs::read_to_string(f.confdir.join("imap")).unwrap();
    let without = stack.replace(
        &format!("account pwdfile={}", f.pwdfile.display()),
        "account",
    );
    assert_ne!(stack, without);
    std::fs::write(f.confdir.join("imap"), without).unwrap();
    let r = f.login("imap", USER, APP, Some("127.0.0.9"));
    assert!(!r.success());
    assert_eq!(reason(&r), "bad_config");
}
