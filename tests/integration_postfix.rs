// Integration tests with a REAL Postfix (SMTP AUTH PLAIN and LOGIN) and the built module
// (issue 4 §1-3): through Dovecot SASL (Dovecot's `pam.d-examples/dovecot-virtual` stack,
// PAM_RHOST = the SMTP client's address) and through Cyrus `saslauthd -a pam -r` with
// `pam.d-examples/smtp` as PAM service `smtp` (no PAM_RHOST: `rhost=-`). Every refusal's
// reason comes from the captured syslog lines; no line holds a password, code or secret.
// Owns: tests/integration_postfix.rs. Support: tests/integration/, tests/servers/, tests/fixture/.

mod fixture;
mod integration;
mod servers;
mod skip;

use integration::{
    assert_no_line, assert_no_secrets, expect_line, ip, record_secrets, step_margin, with_code,
    wrong_code, World, DIGITS_PW, POSTFIX_DOVECOT_PREREQS, POSTFIX_SASLAUTHD_PREREQS, PW,
};
use mailmfa::record::Record;
use servers::{require_prereqs, smtp_auth_login, smtp_auth_plain, Postfix, PostfixOpts};

#[test]
fn postfix_smtp_auth_through_dovecot_sasl() {
    if !require_prereqs(POSTFIX_DOVECOT_PREREQS) {
        return;
    }
    let w = World::new("", "dovecot-virtual", &["dovecot"], "");
    let users = ["plain", "login", "plainbad", "loginbad", "nocode", "badpw"]
        .map(|u| format!("{u}@example.com"));
    let recs: Vec<Record> = users.iter().map(|u| w.mfa_user(u)).collect();
    let [plain, login, plainbad, loginbad, nocode, badpw] = &users;
    let nomfa = "nomfa@example.com";
    w.plain_user(nomfa, DIGITS_PW);
    let dovecot = w.dovecot("dovecot");
    let postfix = Postfix::start(&PostfixOpts::dovecot(&dovecot));
    let smtp = postfix.smtp_addr();
    let log = dovecot.syslog();
    step_margin(3);

    // Right code, AUTH PLAIN and AUTH LOGIN: 235; rhost is the SMTP client's address.
    let s = with_code(&recs[0], 0);
    let mark = log.mark();
    let r = smtp_auth_plain(smtp, ip(40), plain, &s);
    assert_eq!(r.code, 235, "AUTH PLAIN, right code: {r}");
    expect_line(log, mark, plain, "127.0.0.40", "verify", "accept", "ok");
    let mark = log.mark();
    let r = smtp_auth_login(smtp, ip(41), login, &with_code(&recs[1], 0));
    assert_eq!(r.code, 235, "AUTH LOGIN, right code: {r}");
    expect_line(log, mark, login, "127.0.0.41", "verify", "accept", "ok");

    // The same string again from the same client (a second SMTP session): reused.
    let mark = log.mark();
    let r = smtp_auth_login(smtp, ip(40), plain, &s);
    assert_eq!(r.code, 235, "AUTH LOGIN, same string, same client: {r}");
    expect_line(log, mark, plain, "127.0.0.40", "verify", "accept", "reused");
    // ...and from another client: 535, replayed.
    let mark = log.mark();
    let r = smtp_auth_plain(smtp, ip(46), plain, &s);
    assert_eq!(r.code, 535, "AUTH PLAIN, replay from another client: {r}");
    expect_line(log, mark, plain, "127.0.0.46", "verify", "deny", "replayed");

    // Wrong code: 535, bad_code (PLAIN and LOGIN).
    let mark = log.mark();
    let r = smtp_auth_plain(
        smtp,
        ip(42),
        plainbad,
        &format!("{PW}{}", wrong_code(&recs[2])),
    );
    assert_eq!(r.code, 535, "AUTH PLAIN, wrong code: {r}");
    expect_line(
        log,
        mark,
        plainbad,
        "127.0.0.42",
        "verify",
        "deny",
        "bad_code",
    );
    let mark = log.mark();
    let r = smtp_auth_login(
        smtp,
        ip(43),
        loginbad,
        &format!("{PW}{}", wrong_code(&recs[3])),
    );
    assert_eq!(r.code, 535, "AUTH LOGIN, wrong code: {r}");
    expect_line(
        log,
        mark,
        loginbad,
        "127.0.0.43",
        "verify",
        "deny",
        "bad_code",
    );

    // No code: 535, no_code.
    let mark = log.mark();
    let r = smtp_auth_plain(smtp, ip(44), nocode, PW);
    assert_eq!(r.code, 535, "AUTH PLAIN, no code: {r}");
    expect_line(log, mark, nocode, "127.0.0.44", "split", "deny", "no_code");

    // Wrong password, right code: 535 without verify; the code then works.
    let code = fixture::code(&recs[5], 0);
    let mark = log.mark();
    let r = smtp_auth_login(smtp, ip(45), badpw, &format!("wrong{code}"));
    assert_eq!(r.code, 535, "AUTH LOGIN, wrong password: {r}");
    assert_no_line(log, mark, badpw);
    let r = smtp_auth_plain(smtp, ip(47), badpw, &format!("{PW}{code}"));
    assert_eq!(r.code, 235, "the code the wrong password did not use: {r}");

    // A mailbox without MFA, password ending in digits: 235, no_mfa.
    let mark = log.mark();
    let r = smtp_auth_plain(smtp, ip(48), nomfa, DIGITS_PW);
    assert_eq!(r.code, 235, "mailbox without MFA: {r}");
    expect_line(log, mark, nomfa, "127.0.0.48", "split", "pass", "no_mfa");

    postfix.log().expect("about a refused AUTH", |l| {
        l.contains("authentication failed") && l.contains("127.0.0.42")
    });
    let mut secrets = vec![PW.to_string(), DIGITS_PW.to_string()];
    for rec in &recs {
        secrets.extend(record_secrets(rec));
    }
    assert_no_secrets(&log.lines(), &secrets);
}

#[test]
fn postfix_smtp_auth_through_saslauthd() {
    if !require_prereqs(POSTFIX_SASLAUTHD_PREREQS) {
        return;
    }
    let w = World::new("", "smtp", &["smtp"], "");
    let users = ["plain", "login", "bad", "nocode"].map(|u| format!("{u}@example.com"));
    let recs: Vec<Record> = users.iter().map(|u| w.mfa_user(u)).collect();
    let [plain, login, bad, nocode] = &users;
    let nomfa = "nomfa@example.com";
    w.plain_user(nomfa, DIGITS_PW);
    // -r: PAM gets the whole mail address, which is what the records and pwdfile are keyed by.
    let sasl = w.saslauthd();
    let postfix = Postfix::start(&PostfixOpts::saslauthd(&sasl));
    let smtp = postfix.smtp_addr();
    let log = sasl.syslog();
    step_margin(3);

    let s = with_code(&recs[0], 0);
    let mark = log.mark();
    let r = smtp_auth_plain(smtp, ip(50), plain, &s);
    assert_eq!(r.code, 235, "AUTH PLAIN, right code: {r}");
    let line = expect_line(log, mark, plain, "-", "verify", "accept", "ok");
    assert_eq!(line.service(), "smtp", "{}", line.raw);
    let mark = log.mark();
    let r = smtp_auth_login(smtp, ip(51), login, &with_code(&recs[1], 0));
    assert_eq!(r.code, 235, "AUTH LOGIN, right code: {r}");
    expect_line(log, mark, login, "-", "verify", "accept", "ok");

    // No client address through saslauthd: the same string again, even from the same SMTP
    // client, is a replay (docs/deployment.md).
    let mark = log.mark();
    let r = smtp_auth_plain(smtp, ip(50), plain, &s);
    assert_eq!(r.code, 535, "AUTH PLAIN, same string again: {r}");
    expect_line(log, mark, plain, "-", "verify", "deny", "replayed");

    let mark = log.mark();
    let r = smtp_auth_plain(smtp, ip(52), bad, &format!("{PW}{}", wrong_code(&recs[2])));
    assert_eq!(r.code, 535, "AUTH PLAIN, wrong code: {r}");
    expect_line(log, mark, bad, "-", "verify", "deny", "bad_code");

    let mark = log.mark();
    let r = smtp_auth_login(smtp, ip(53), nocode, PW);
    assert_eq!(r.code, 535, "AUTH LOGIN, no code: {r}");
    expect_line(log, mark, nocode, "-", "split", "deny", "no_code");

    let mark = log.mark();
    let r = smtp_auth_login(smtp, ip(54), nomfa, DIGITS_PW);
    assert_eq!(r.code, 235, "mailbox without MFA: {r}");
    expect_line(log, mark, nomfa, "-", "split", "pass", "no_mfa");

    let mut secrets = vec![PW.to_string(), DIGITS_PW.to_string()];
    for rec in &recs {
        secrets.extend(record_secrets(rec));
    }
    assert_no_secrets(&log.lines(), &secrets);
}
