//! Every documented record parameter end to end through the real libpam (issue 19, item 4):
//! 8-digit records, SHA256 and SHA512 records, a 60 s period, and app passwords limited to
//! services *and* an expiry, each with the stacks of `pam.d-examples/` and the built module.
//!
//! Each parameter is checked both ways: the code the record asks for logs in, and the code a
//! module ignoring the parameter would accept (6 digits for an 8-digit record, SHA1 for a
//! SHA256 record, the 30 s step for a 60 s record) is refused. A mutant that ignores the
//! record's digit count, algorithm or period therefore fails here.
//!
//! Codes are computed with the library (`Params::code`), never with the module's own check.

mod fixture;

use fixture::{code, code_with, code_with_period, now, wait_for_margin_in_period, Fixture};
use mailmfa::credential;
use mailmfa::otp::Algorithm;
use mailmfa::pam::client::Response;
use mailmfa::record::{AppPassword, Record};

const PW: &str = "T9D3K!px";
const IP1: Option<&str> = Some("127.0.0.2");
const IP2: Option<&str> = Some("127.0.0.3");

fn reason(r: &Response) -> &str {
    r.reason.as_deref().unwrap_or("")
}

/// A fixture with the virtual-mailbox stack installed as service `mail`.
fn world() -> Fixture {
    let f = Fixture::new();
    f.install_example("dovecot-virtual", "mail", "");
    f
}

/// A mailbox with password `PW` and a record of these parameters whose codes near now differ
/// from every code of `wrong` (see `Fixture::enable_unlike`).
fn mfa_user(
    f: &Fixture,
    base: &str,
    params: (Algorithm, u32, u64),
    wrong: impl Fn(&Record, i64) -> String,
) -> (String, Record) {
    f.enable_unlike(base, PW, params, wrong)
}

/// [`mfa_user`] with a 30 s period, once at least 3 s are left in the step.
fn thirty(
    f: &Fixture,
    base: &str,
    (algorithm, digits): (Algorithm, u32),
    wrong: impl Fn(&Record, i64) -> String,
) -> (String, Record) {
    wait_for_margin_in_period(30, 3);
    mfa_user(f, base, (algorithm, digits, 30), wrong)
}

/// An 8-digit SHA1 record (30 s) whose codes near now differ from its 6-digit codes.
fn eight(f: &Fixture, base: &str) -> (String, Record) {
    thirty(f, base, (Algorithm::SHA1, 8), |r, s| {
        code_with(r, Algorithm::SHA1, 6, s)
    })
}

/// Asserts the login got in (or not, as `success` says) with `want` as its reason.
fn assert_answer(r: &Response, success: bool, want: &str) {
    assert_eq!(r.success(), success, "{r:?}");
    assert_eq!(reason(r), want, "{r:?}");
}

fn login(f: &Fixture, user: &str, code: &str, rhost: Option<&str>) -> Response {
    f.login("mail", user, &format!("{PW}{code}"), rhost)
}

// ---- 8 digits ----

#[test]
fn an_8_digit_record_accepts_its_8_digit_code() {
    let f = world();
    let (user, rec) = eight(&f, "eight");
    let c = code(&rec, 0);
    assert_eq!(c.len(), 8);
    let r = login(&f, &user, &c, IP1);
    assert_answer(&r, true, "ok");
}

#[test]
fn an_8_digit_record_refuses_the_6_digit_code_of_the_same_secret_as_no_code() {
    let f = world();
    let (user, rec) = eight(&f, "eight");
    let eight = code(&rec, 0);
    let six = code_with(&rec, Algorithm::SHA1, 6, 0);
    // What a 6-digit authenticator shows for this secret: the last 6 digits of the 8.
    assert_eq!(six, eight[2..]);
    let r = login(&f, &user, &six, IP1);
    assert!(!r.success(), "a 6-digit code for an 8-digit record: {r:?}");
    assert_eq!(
        reason(&r),
        "no_code",
        "`{PW}` + 6 digits does not end in 8 digits"
    );
    // The code was not consumed: the 8-digit one still works.
    let r = login(&f, &user, &eight, IP1);
    assert!(r.success(), "{r:?}");
}

#[test]
fn an_8_digit_record_splits_8_digits_off_a_password_ending_in_digits() {
    // The password part keeps its own trailing digits only when the split takes exactly 8.
    let f = world();
    let (user, rec) = eight(&f, "eightpw");
    // Replace the mailbox password with one ending in digits.
    fs_replace_password(&f, &user, "pin2024");
    let r = f.login("mail", &user, &format!("pin2024{}", code(&rec, 0)), IP1);
    assert_answer(&r, true, "ok");
}

#[test]
fn a_6_digit_record_takes_the_last_6_of_an_8_digit_code_and_the_password_fails() {
    let f = world();
    wait_for_margin_in_period(30, 3);
    let (user, rec) = mfa_user(&f, "six", (Algorithm::SHA1, 6, 30), |r, s| {
        code_with(r, Algorithm::SHA1, 8, s)
    });
    let eight = code_with(&rec, Algorithm::SHA1, 8, 0);
    let six = code(&rec, 0);
    assert_eq!(eight[2..], six, "the 8-digit code ends in the 6-digit one");
    let r = login(&f, &user, &eight, IP1);
    assert!(
        !r.success(),
        "an 8-digit string for a 6-digit record: {r:?}"
    );
    assert_eq!(
        reason(&r),
        "code_split",
        "the last 6 digits are the code, the password part `{PW}` + 2 digits is wrong"
    );
    assert!(f.state(&user).is_none(), "verify never ran");
    // That code was therefore not used up: the right string works from another client.
    let r = login(&f, &user, &six, IP2);
    assert!(r.success(), "{r:?}");
    assert_eq!(reason(&r), "ok");
}

// ---- algorithms ----

fn algorithm_accepts_its_code_and_refuses_sha1(algorithm: Algorithm, digits: u32) {
    let f = world();
    let (user, rec) = thirty(
        &f,
        &algorithm.name().to_lowercase(),
        (algorithm, digits),
        |r, s| code_with(r, Algorithm::SHA1, digits, s),
    );
    let sha1 = code_with(&rec, Algorithm::SHA1, digits, 0);
    let r = login(&f, &user, &sha1, IP1);
    assert!(
        !r.success(),
        "a SHA1 code for a {algorithm:?} record: {r:?}"
    );
    assert_eq!(reason(&r), "bad_code");
    let r = login(&f, &user, &code(&rec, 0), IP1);
    assert_answer(&r, true, "ok");
}

#[test]
fn a_sha256_record_accepts_its_code_and_refuses_the_sha1_code() {
    algorithm_accepts_its_code_and_refuses_sha1(Algorithm::SHA256, 6);
}

#[test]
fn a_sha512_record_accepts_its_code_and_refuses_the_sha1_code() {
    algorithm_accepts_its_code_and_refuses_sha1(Algorithm::SHA512, 6);
}

#[test]
fn a_sha512_record_refuses_the_sha256_code() {
    let f = world();
    let (user, rec) = thirty(&f, "sha", (Algorithm::SHA512, 6), |r, s| {
        code_with(r, Algorithm::SHA256, 6, s)
    });
    let r = login(&f, &user, &code_with(&rec, Algorithm::SHA256, 6, 0), IP1);
    assert_answer(&r, false, "bad_code");
}

#[test]
fn a_sha256_8_digit_record_accepts_its_code_and_refuses_the_sha1_code() {
    algorithm_accepts_its_code_and_refuses_sha1(Algorithm::SHA256, 8);
}

// ---- period ----

/// A 60 s record, its codes computed within one 60 s step (at least 5 s before it ends).
fn sixty(f: &Fixture, base: &str) -> (String, Record) {
    wait_for_margin_in_period(60, 5);
    // The same secret on 30 s steps: what a module ignoring the period would accept.
    mfa_user(f, base, (Algorithm::SHA1, 6, 60), |r, s| {
        code_with_period(r, 30, s)
    })
}

#[test]
fn a_60_s_record_accepts_its_current_code() {
    let f = world();
    let (user, rec) = sixty(&f, "sixty");
    let r = login(&f, &user, &code(&rec, 0), IP1);
    assert_answer(&r, true, "ok");
}

#[test]
fn a_60_s_record_accepts_the_previous_60_s_step_within_the_window() {
    let f = world();
    let (user, rec) = sixty(&f, "sixty");
    let r = login(&f, &user, &code(&rec, -1), IP1);
    assert_answer(&r, true, "ok");
    // The next 60 s step is in the window too.
    let r = login(&f, &user, &code(&rec, 1), IP1);
    assert_answer(&r, true, "ok");
}

#[test]
fn a_60_s_record_refuses_a_code_two_60_s_steps_back_or_ahead() {
    let f = world();
    let (user, rec) = sixty(&f, "sixty");
    for steps in [-2, 2] {
        let r = login(&f, &user, &code(&rec, steps), IP1);
        assert!(!r.success(), "{steps} steps of 60 s: {r:?}");
        assert_eq!(reason(&r), "bad_code", "{steps} steps of 60 s");
    }
}

#[test]
fn a_60_s_record_refuses_the_code_of_the_30_s_step() {
    let f = world();
    let (user, rec) = sixty(&f, "sixty");
    let r = login(&f, &user, &code_with_period(&rec, 30, 0), IP1);
    assert_answer(&r, false, "bad_code");
}

#[test]
fn an_8_digit_sha512_60_s_record_accepts_its_code_and_refuses_codes_of_other_parameters() {
    let f = world();
    wait_for_margin_in_period(60, 5);
    let others = |r: &Record, s: i64| {
        // The worst of the three: check SHA1 with 8 digits here, the others below.
        code_with(r, Algorithm::SHA1, 8, s)
    };
    let (user, rec) = mfa_user(&f, "all", (Algorithm::SHA512, 8, 60), others);
    let near: Vec<String> = (-2..=2).map(|s| code(&rec, s)).collect();
    let wrong = [
        code_with(&rec, Algorithm::SHA1, 8, 0),
        code_with(&rec, Algorithm::SHA256, 8, 0),
        code_with(&rec, Algorithm::SHA512, 6, 0),
        code(&rec, -2),
    ];
    for (i, w) in wrong.iter().enumerate() {
        if i < 2 && near.contains(w) {
            continue; // a chance collision (about 1 in 10^7): nothing to learn from it
        }
        let r = login(&f, &user, w, IP1);
        assert!(!r.success(), "wrong code #{i}: {r:?}");
        let want = if w.len() == 6 { "no_code" } else { "bad_code" };
        assert_eq!(reason(&r), want, "wrong code #{i}");
    }
    let r = login(&f, &user, &code(&rec, 0), IP1);
    assert_answer(&r, true, "ok");
}

// ---- app passwords: services and expiry together ----

const APP: &str = "qwert-yuiop-asdfg-hjklz";
const APP_USER: &str = "dana@example.com";

/// Writes `record` with one app password (the letters of `APP`, one fixed hash) valid for
/// `services` until `expires`.
fn with_app_password(f: &Fixture, record: &Record, services: &[&str], expires: u64) {
    let letters = credential::app_password_letters(APP.as_bytes()).unwrap();
    let mut record = record.clone();
    record.app_passwords = vec![AppPassword {
        name: "thunderbird".into(),
        hash: credential::hash(&letters, &[7; 16]),
        services: services.iter().map(|s| s.to_string()).collect(),
        created: now(),
        expires: Some(expires),
        from: Vec::new(),
    }];
    f.save(APP_USER, &record);
}

/// `imap` and `smtp` get the app password; `pop3` is a third service it is not valid for.
fn app_world() -> (Fixture, Record) {
    let f = Fixture::new();
    f.install_example("dovecot-virtual", "imap", "");
    f.install_example("dovecot-virtual", "pop3", "");
    f.install_example("smtp", "smtp", "");
    f.add_password(APP_USER, PW);
    let record = f.enable(APP_USER);
    (f, record)
}

#[test]
fn an_app_password_with_services_and_expiry_logs_in_to_its_services_before_it_expires() {
    let (f, rec) = app_world();
    with_app_password(&f, &rec, &["imap", "smtp"], now() + 3600);
    for service in ["imap", "smtp"] {
        let r = f.login(service, APP_USER, APP, IP1);
        assert!(r.success(), "{service}: {r:?}");
        assert_eq!(reason(&r), "app_password", "{service}");
    }
}

#[test]
fn an_app_password_with_services_and_expiry_is_refused_for_another_service_before_it_expires() {
    let (f, rec) = app_world();
    with_app_password(&f, &rec, &["imap", "smtp"], now() + 3600);
    let r = f.login("pop3", APP_USER, APP, IP1);
    assert_answer(&r, false, "app_password_wrong_service");
    // The same app password is still good for its own service.
    assert!(f.login("imap", APP_USER, APP, IP1).success());
}

#[test]
fn an_app_password_with_services_and_expiry_is_refused_for_its_own_services_once_expired() {
    let (f, rec) = app_world();
    // First valid (so the refusal below is the expiry's, not a wrong hash)...
    with_app_password(&f, &rec, &["imap", "smtp"], now() + 3600);
    assert!(f.login("imap", APP_USER, APP, IP1).success());
    // ...then the same app password with an expiry that has passed.
    with_app_password(&f, &rec, &["imap", "smtp"], now() - 1);
    for service in ["imap", "smtp"] {
        let r = f.login(service, APP_USER, APP, IP1);
        assert!(!r.success(), "{service}: {r:?}");
        assert_eq!(reason(&r), "app_password_expired", "{service}");
    }
}

/// Replaces `user`'s line in the password file with one for `password`.
fn fs_replace_password(f: &Fixture, user: &str, password: &str) {
    let text = std::fs::read_to_string(&f.pwdfile).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with(&format!("{user}:")))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&f.pwdfile, kept).unwrap();
    f.add_password(user, password);
}
