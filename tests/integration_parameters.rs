// Every documented record parameter over the wire (issue 19, item 4): a REAL Dovecot
// (`passdb { driver = pam }`, the `pam.d-examples/dovecot-virtual` stack with the built module)
// logs IMAP clients in with 8-digit records, SHA256 and SHA512 records and a 60 s period. Each
// test sends the code the record asks for (accepted) and the code a module ignoring the
// parameter would accept (refused), and reads the module's reason from the captured syslog.
// The libpam-level twins of these tests are in tests/libpam_parameters.rs.
// Owns: tests/integration_parameters.rs. Support: tests/integration/, tests/servers/,
// tests/fixture/.

mod fixture;
mod integration;
mod servers;
mod skip;

use fixture::{code, code_with, code_with_period, wait_for_margin_in_period};
use integration::{assert_no_line, assert_one_line, expect_line, ip, World, DOVECOT_PREREQS, PW};
use mailmfa::otp::Algorithm;
use mailmfa::record::Record;
use servers::{imap_login, require_prereqs, Dovecot, DovecotOpts};

/// A world with the virtual-mailbox stack as PAM service `dovecot`, and its Dovecot (without
/// the per-address auth penalty, so that refusals do not slow the next login down).
fn start() -> (World, Dovecot) {
    let w = World::new("", "dovecot-virtual", &["dovecot"], "");
    let d = Dovecot::start(
        w.pam_d(),
        "dovecot",
        &DovecotOpts {
            disable_auth_penalty: true,
            ..Default::default()
        },
    );
    (w, d)
}

/// One IMAP login of `user` with `PW` + `code` from 127.0.0.`from`; whether it got in.
fn imap(d: &Dovecot, from: u8, user: &str, code: &str) -> bool {
    imap_login(d.imap_addr(), ip(from), user, &format!("{PW}{code}")).is_ok()
}

fn from(last: u8) -> String {
    ip(last).to_string()
}

#[test]
fn dovecot_imap_8_digit_record_accepts_its_code_and_refuses_the_6_digit_one() {
    if !require_prereqs(DOVECOT_PREREQS) {
        return;
    }
    let (w, d) = start();
    let log = d.syslog();
    wait_for_margin_in_period(30, 5);
    let six_of = |r: &Record, s| code_with(r, Algorithm::SHA1, 6, s);
    let (right, rec) =
        w.f.enable_unlike("eight", PW, (Algorithm::SHA1, 8, 30), six_of);
    let (short, short_rec) =
        w.f.enable_unlike("eightsix", PW, (Algorithm::SHA1, 8, 30), six_of);

    let mark = log.mark();
    assert!(imap(&d, 20, &right, &code(&rec, 0)), "8-digit code refused");
    expect_line(log, mark, &right, &from(20), "verify", "accept", "ok");
    assert_one_line(log, mark, &right);

    // What a 6-digit authenticator shows for the same secret: the last 6 of the 8 digits.
    let six = code_with(&short_rec, Algorithm::SHA1, 6, 0);
    assert_eq!(six, code(&short_rec, 0)[2..]);
    let mark = log.mark();
    assert!(!imap(&d, 21, &short, &six), "6-digit code accepted");
    expect_line(log, mark, &short, &from(21), "split", "deny", "no_code");
}

#[test]
fn dovecot_imap_6_digit_record_takes_the_last_6_of_an_8_digit_string_and_the_password_fails() {
    if !require_prereqs(DOVECOT_PREREQS) {
        return;
    }
    let (w, d) = start();
    let log = d.syslog();
    wait_for_margin_in_period(30, 5);
    let (user, rec) =
        w.f.enable_unlike("six", PW, (Algorithm::SHA1, 6, 30), |r, s| {
            code_with(r, Algorithm::SHA1, 8, s)
        });
    let eight = code_with(&rec, Algorithm::SHA1, 8, 0);
    assert_eq!(eight[2..], code(&rec, 0), "the 8 digits end in the 6");

    let mark = log.mark();
    assert!(!imap(&d, 22, &user, &eight), "8-digit string accepted");
    assert_no_line(log, mark, &user);

    // The code itself was not used up: the right string logs in from another address.
    let mark = log.mark();
    assert!(imap(&d, 23, &user, &code(&rec, 0)), "right code refused");
    expect_line(log, mark, &user, &from(23), "verify", "accept", "ok");
}

fn algorithm_over_imap(algorithm: Algorithm) {
    let (w, d) = start();
    let log = d.syslog();
    wait_for_margin_in_period(30, 5);
    let sha1_of = |r: &Record, s| code_with(r, Algorithm::SHA1, 6, s);
    let (user, rec) = w.f.enable_unlike(
        &algorithm.name().to_lowercase(),
        PW,
        (algorithm, 6, 30),
        sha1_of,
    );

    let mark = log.mark();
    assert!(
        !imap(&d, 24, &user, &sha1_of(&rec, 0)),
        "SHA1 code accepted for a {algorithm:?} record"
    );
    expect_line(log, mark, &user, &from(24), "verify", "deny", "bad_code");

    let mark = log.mark();
    assert!(
        imap(&d, 25, &user, &code(&rec, 0)),
        "{algorithm:?} code refused"
    );
    expect_line(log, mark, &user, &from(25), "verify", "accept", "ok");
}

#[test]
fn dovecot_imap_sha256_record_accepts_its_code_and_refuses_the_sha1_code() {
    if !require_prereqs(DOVECOT_PREREQS) {
        return;
    }
    algorithm_over_imap(Algorithm::SHA256);
}

#[test]
fn dovecot_imap_sha512_record_accepts_its_code_and_refuses_the_sha1_code() {
    if !require_prereqs(DOVECOT_PREREQS) {
        return;
    }
    algorithm_over_imap(Algorithm::SHA512);
}

#[test]
fn dovecot_imap_60_s_record_accepts_the_previous_60_s_step_and_refuses_two_steps_back() {
    if !require_prereqs(DOVECOT_PREREQS) {
        return;
    }
    let (w, d) = start();
    let log = d.syslog();
    // Every code below is computed and checked within one 60 s step: at least 15 s of it left
    // (each refusal costs Dovecot's failure delay).
    wait_for_margin_in_period(60, 15);
    let thirty = |r: &Record, s| code_with_period(r, 30, s);
    let params = (Algorithm::SHA1, 6, 60);
    let (prev, prev_rec) = w.f.enable_unlike("prev", PW, params, thirty);
    let (old, old_rec) = w.f.enable_unlike("old", PW, params, thirty);
    let (half, half_rec) = w.f.enable_unlike("half", PW, params, thirty);

    let mark = log.mark();
    assert!(
        imap(&d, 26, &prev, &code(&prev_rec, -1)),
        "the previous 60 s step refused"
    );
    expect_line(log, mark, &prev, &from(26), "verify", "accept", "ok");

    let mark = log.mark();
    assert!(
        !imap(&d, 27, &old, &code(&old_rec, -2)),
        "two 60 s steps back accepted"
    );
    expect_line(log, mark, &old, &from(27), "verify", "deny", "bad_code");

    // The code of the current 30 s step, what a module ignoring the period would accept.
    let mark = log.mark();
    assert!(
        !imap(&d, 28, &half, &thirty(&half_rec, 0)),
        "the 30 s code accepted for a 60 s record"
    );
    expect_line(log, mark, &half, &from(28), "verify", "deny", "bad_code");
}
