// Integration tests of issue 6 §4 through a REAL Dovecot (and Postfix through Dovecot SASL) with
// the `pam.d-examples/dovecot-virtual` stack and the built module: a mail client's session with
// `reuse_for=8h` (5 parallel IMAP connections, then reconnects with the same stored string for
// about 2.5 minutes, long past the code's own validity; never from another address), app
// passwords over IMAP, POP3 and SMTP for a run of reconnects (services, revocation, expiry),
// and a recovery code that works once.
// Owns: tests/integration_mail_clients.rs. Support: tests/integration/, tests/servers/,
// tests/fixture/.

mod fixture;
mod integration;
mod servers;
mod skip;

use integration::{
    assert_no_line, assert_no_secrets, expect_line, ip, lines_since, parallel_imap, record_secrets,
    settle, step_margin, verify_reasons, with_code, World, DOVECOT_PREREQS,
    POSTFIX_DOVECOT_PREREQS, PW,
};
use servers::{
    imap_login, pop3_login, require_prereqs, smtp_auth_login, smtp_auth_plain, Postfix, PostfixOpts,
};
use std::time::Duration;

/// Reconnect rounds (20 s apart) after the module has said that the stored code matches no
/// step any more: the session then lasts minutes, some 80 s past the code's validity.
const ROUNDS_PAST_THE_CODE: u32 = 4;
/// A guard against a hang only: with the default window (±1 step) the code leaves it within
/// 60 s, by round 4.
const MAX_ROUNDS: u32 = 8;

/// A mail client that stores password+code: 5 parallel connections, then a reconnect every
/// 20 s from the same address, alternating IMAP and POP3, for minutes: until the module has
/// said `ROUNDS_PAST_THE_CODE` times that the code matches no step any more (the same string
/// from another address, refused every round, is then `bad_code` instead of `replayed`).
/// Every reconnect gets in (`reused` after the first), before and after that; a new code then
/// starts a new period and the old string stops working.
#[test]
fn dovecot_reuse_for_keeps_one_client_in_for_minutes() {
    if !require_prereqs(DOVECOT_PREREQS) {
        return;
    }
    // `reuse_for` as a module argument on both mailmfa lines.
    let w = World::new("", "dovecot-virtual", &["dovecot"], "reuse_for=8h");
    let user = "session@example.com";
    let rec = w.mfa_user(user);
    let d = w.dovecot("dovecot");
    let log = d.syslog();
    let (client, other) = (ip(80), ip(81));
    step_margin(3);

    let s = with_code(&rec, 0);
    let mark = log.mark();
    let results = parallel_imap(5, d.imap_addr(), client, user, &s);
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let mut reasons = verify_reasons(log, mark, user);
    reasons.sort();
    assert_eq!(reasons, ["ok", "reused", "reused", "reused", "reused"]);

    // The proof that the session outlives the code is the module's own word: from the other
    // address the string is `bad_code` (it matches no step), and the client still gets in.
    let mut rounds_expired = 0;
    let mut round = 0u32;
    while rounds_expired < ROUNDS_PAST_THE_CODE {
        round += 1;
        assert!(
            round <= MAX_ROUNDS,
            "the code still matched a step after {MAX_ROUNDS} rounds"
        );
        // Pacing only: what each round proves is read from the module's lines.
        std::thread::sleep(Duration::from_secs(20));
        let mark = log.mark();
        let r = if round.is_multiple_of(2) {
            pop3_login(d.pop3_addr(), client, user, &s)
        } else {
            imap_login(d.imap_addr(), client, user, &s)
        };
        assert!(
            r.is_ok(),
            "reconnect {round} refused ({rounds_expired} rounds after the code left the window): {r:?}"
        );
        expect_line(log, mark, user, "127.0.0.80", "verify", "accept", "reused");

        let mark = log.mark();
        let r = imap_login(d.imap_addr(), other, user, &s);
        assert!(!r.is_ok(), "the string from another address got in: {r:?}");
        let reason = refusal_reason(log, mark, user, "127.0.0.81");
        // Within the code's own validity this is a replay of its step; afterwards the code
        // simply matches no step any more, and never again.
        match reason.as_str() {
            "bad_code" => rounds_expired += 1,
            "replayed" if rounds_expired == 0 => {}
            _ => panic!("another address, round {round}: reason={reason}"),
        }
    }
    println!("the code left the window; the client got in for {round} reconnect rounds");

    // A new code from the client starts a new period; the old string no longer works.
    let mark = log.mark();
    let fresh = with_code(&rec, 0);
    assert!(imap_login(d.imap_addr(), client, user, &fresh).is_ok());
    expect_line(log, mark, user, "127.0.0.80", "verify", "accept", "ok");
    let mark = log.mark();
    assert!(!imap_login(d.imap_addr(), client, user, &s).is_ok());
    expect_line(log, mark, user, "127.0.0.80", "verify", "deny", "bad_code");
    let mark = log.mark();
    assert!(imap_login(d.imap_addr(), client, user, &fresh).is_ok());
    expect_line(log, mark, user, "127.0.0.80", "verify", "accept", "reused");

    let mut secrets = vec![PW.to_string(), s.clone()];
    secrets.extend(record_secrets(&rec));
    assert_no_secrets(&log.lines(), &secrets);
}

/// The reason of the `verify` (or refusing `split`) line for `user` from `rhost` after `mark`.
fn refusal_reason(log: &servers::SyslogReceiver, mark: usize, user: &str, rhost: &str) -> String {
    let lines = lines_since(log, mark, user);
    let line = lines
        .iter()
        .rev()
        .find(|l| l.rhost() == rhost)
        .unwrap_or_else(|| panic!("no line for {user} from {rhost}: {lines:?}"));
    assert_eq!(line.result(), "deny", "{}", line.raw);
    line.reason().to_string()
}

/// App passwords made with `mailmfa app-password add`, through Dovecot with the PAM service per
/// protocol (`%s`: imap, pop3, and smtp for Postfix through Dovecot SASL): each alone, without
/// the mailbox password or a code, logs in for its services over a run of reconnects across
/// code steps, from more than one address, without the password module or `verify` being
/// asked; `app-password list` shows the last use and where from; for another service, after
/// `app-password revoke`, or once expired, it is refused with its reason.
#[test]
fn dovecot_and_postfix_app_passwords_for_a_run_of_reconnects() {
    if !require_prereqs(POSTFIX_DOVECOT_PREREQS) {
        return;
    }
    let w = World::new("", "dovecot-virtual", &["imap", "pop3", "smtp"], "");
    let user = "apps@example.com";
    let rec = w.mfa_user(user);
    // The password, and the Unix time it expires at (if it does).
    let add = |label: &str, extra: &[&str]| {
        let mut args = vec!["app-password", "add", user, "--label", label, "--json"];
        args.extend_from_slice(extra);
        let v = w.mailmfa_json(&args);
        let password = v["password"].as_str().expect("password").to_string();
        (password, v["expires"].as_u64())
    };
    let (desktop, _) = add("thunderbird", &["--services", "imap,smtp"]);
    let (phone, _) = add("phone", &[]);
    let d = w.dovecot("%s");
    let postfix = Postfix::start(&PostfixOpts::dovecot(&d));
    let smtp = postfix.smtp_addr();
    let log = d.syslog();
    // Made once the servers are up, so that its first login below comes long before its
    // expiry; the expired check waits for the expiry time to pass.
    let (tablet, tablet_expires) = add("tablet", &["--expires", "30s"]);
    let tablet_expires = tablet_expires.expect("the tablet's expiry in add --json");

    // An app password ends the stack in `split`: its one line.
    let app_password_line =
        |mark, rhost| expect_line(log, mark, user, rhost, "split", "accept", "app_password");

    // Until it expires, the tablet's works too.
    let mark = log.mark();
    assert!(imap_login(d.imap_addr(), ip(97), user, &tablet).is_ok());
    app_password_line(mark, "127.0.0.97");

    // Reconnects every 3 s until a code step boundary has passed, and one round after it.
    let params = rec.params();
    let first_step = params.step_at(fixture::now());
    let mut round = 0u32;
    loop {
        let past_boundary = params.step_at(fixture::now()) > first_step;
        let mark = log.mark();
        let r = imap_login(d.imap_addr(), ip(90), user, &desktop);
        assert!(r.is_ok(), "app password over IMAP, round {round}: {r:?}");
        let line = app_password_line(mark, "127.0.0.90");
        assert_eq!(line.service(), "imap", "{}", line.raw);
        let mark = log.mark();
        let r = if round.is_multiple_of(2) {
            smtp_auth_plain(smtp, ip(90), user, &desktop)
        } else {
            smtp_auth_login(smtp, ip(90), user, &desktop)
        };
        assert_eq!(r.code, 235, "app password over SMTP, round {round}: {r}");
        let line = app_password_line(mark, "127.0.0.90");
        assert_eq!(line.service(), "smtp", "{}", line.raw);
        // The phone's (all services) from its own address, over POP3.
        let mark = log.mark();
        assert!(pop3_login(d.pop3_addr(), ip(91), user, &phone).is_ok());
        app_password_line(mark, "127.0.0.91");
        if past_boundary {
            break;
        }
        round += 1;
        // A guard against a hang only: a 30 s step ends within 11 rounds of 3 s.
        assert!(round <= 20, "no code step boundary in {round} rounds");
        // Pacing only: the loop ends on the step boundary, not on the clock.
        std::thread::sleep(Duration::from_secs(3));
    }
    // The password module was never asked for an app password: no verify line at all.
    let seen = lines_since(log, 0, user);
    assert!(seen.iter().all(|l| l.phase() == "split"), "{seen:?}");

    let listed = w.mailmfa_json(&["app-password", "list", user, "--json"]);
    let last_client = |name: &str| {
        listed["app_passwords"]
            .as_array()
            .expect("app_passwords")
            .iter()
            .find(|a| a["name"] == name)
            .map(|a| a["last_client"].clone())
    };
    assert_eq!(
        last_client("thunderbird"),
        Some("127.0.0.90".into()),
        "{listed}"
    );
    assert_eq!(last_client("phone"), Some("127.0.0.91".into()), "{listed}");

    // Not for POP3: refused, with its reason.
    let mark = log.mark();
    assert!(!pop3_login(d.pop3_addr(), ip(92), user, &desktop).is_ok());
    expect_line(
        log,
        mark,
        user,
        "127.0.0.92",
        "split",
        "deny",
        "app_password_wrong_service",
    );
    // MFA is still on for the mailbox password.
    let mark = log.mark();
    assert!(!imap_login(d.imap_addr(), ip(93), user, PW).is_ok());
    expect_line(log, mark, user, "127.0.0.93", "split", "deny", "no_code");
    // Expired (once its expiry time has passed): refused.
    fixture::wait_for_unix_time(tablet_expires);
    let mark = log.mark();
    assert!(!imap_login(d.imap_addr(), ip(98), user, &tablet).is_ok());
    expect_line(
        log,
        mark,
        user,
        "127.0.0.98",
        "split",
        "deny",
        "app_password_expired",
    );

    // Revoked: refused at once, IMAP and SMTP; the phone's still works.
    w.mailmfa_ok(&["app-password", "revoke", user, "thunderbird"]);
    let mark = log.mark();
    assert!(!imap_login(d.imap_addr(), ip(94), user, &desktop).is_ok());
    expect_line(
        log,
        mark,
        user,
        "127.0.0.94",
        "split",
        "deny",
        "bad_app_password",
    );
    let mark = log.mark();
    let r = smtp_auth_plain(smtp, ip(95), user, &desktop);
    assert_eq!(r.code, 535, "revoked app password over SMTP: {r}");
    expect_line(
        log,
        mark,
        user,
        "127.0.0.95",
        "split",
        "deny",
        "bad_app_password",
    );
    assert!(imap_login(d.imap_addr(), ip(96), user, &phone).is_ok());

    settle(log);
    let mut secrets = vec![PW.to_string(), desktop, phone, tablet];
    secrets.extend(record_secrets(&rec));
    assert_no_secrets(&log.lines(), &secrets);
}

/// Recovery codes made with `mailmfa recovery-codes`; one typed after the password in place of
/// the code: in once (`recovery_code`),
/// refused the second time (`bad_recovery_code`), from any address; with a wrong password it
/// is not used up.
#[test]
fn dovecot_recovery_code_works_once() {
    if !require_prereqs(DOVECOT_PREREQS) {
        return;
    }
    let w = World::new("", "dovecot-virtual", &["dovecot"], "");
    let user = "lostphone@example.com";
    let rec = w.mfa_user(user);
    let made = w.mailmfa_json(&["recovery-codes", user, "--json"]);
    let codes: Vec<String> = made["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{made}");
    let d = w.dovecot("dovecot");
    let log = d.syslog();
    let imap = d.imap_addr();

    // A wrong password with a recovery code: refused before verify, the code is not used up.
    let mark = log.mark();
    assert!(!imap_login(imap, ip(100), user, &format!("wrong{}", codes[0])).is_ok());
    assert_no_line(log, mark, user);

    let s = format!("{PW}{}", codes[0]);
    // Another code of the set still works (typed in capitals: letter case does not matter).
    let other = format!("{PW}{}", codes[1].to_ascii_uppercase());
    // (over POP3, client 127.0.0.N, string sent, accepted, the verify line's result and reason)
    for (pop3, n, sent, accepted, result, reason) in [
        (false, 101, &s, true, "accept", "recovery_code"),
        (false, 101, &s, false, "deny", "bad_recovery_code"),
        (true, 102, &s, false, "deny", "bad_recovery_code"),
        (false, 103, &other, true, "accept", "recovery_code"),
    ] {
        let mark = log.mark();
        let r = if pop3 {
            pop3_login(d.pop3_addr(), ip(n), user, sent)
        } else {
            imap_login(imap, ip(n), user, sent)
        };
        assert_eq!(r.is_ok(), accepted, "from 127.0.0.{n}: {r:?}");
        let rhost = format!("127.0.0.{n}");
        expect_line(log, mark, user, &rhost, "verify", result, reason);
    }

    let mut secrets = vec![PW.to_string()];
    secrets.extend(codes.iter().cloned());
    secrets.extend(record_secrets(&rec));
    assert_no_secrets(&log.lines(), &secrets);
}
