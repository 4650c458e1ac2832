// Integration tests with a REAL Dovecot (IMAP and POP3, `passdb { driver = pam }`) running the
// `pam.d-examples/dovecot-virtual` stack with the built module (issue 4 §1-3): the cases over
// the wire, the reason of every refusal from the captured syslog lines, no secret in any line,
// enable/disable through the `mailmfa` command, and Dovecot's auth cache
// (`dovecot_auth_cache_replays_without_pam`, named by docs/deployment.md).
// Owns: tests/integration_dovecot.rs. Support: tests/integration/, tests/servers/, tests/fixture/.

mod fixture;
mod integration;
mod servers;
mod skip;

use integration::{
    assert_no_line, assert_no_secrets, assert_one_line, expect_line, ip, last_reason, lines_since,
    parallel_imap, record_secrets, step_margin, verify_reasons, with_code, wrong_code, World,
    DIGITS_PW, DOVECOT_PREREQS, PW,
};
use mailmfa::otp::Algorithm;
use mailmfa::record::Record;
use servers::{imap_login, pop3_login, require_prereqs, Dovecot, DovecotOpts, Login};
use std::net::Ipv4Addr;

/// Dovecot as the tests want it: the PAM service `dovecot`, and no per-IP auth penalty (each
/// refused login would otherwise cost the next one from that address about 4.5 s).
fn start(w: &World, opts: DovecotOpts) -> Dovecot {
    Dovecot::start(
        w.pam_d(),
        "dovecot",
        &DovecotOpts {
            disable_auth_penalty: true,
            ..opts
        },
    )
}

#[derive(Clone, Copy, Debug)]
enum Proto {
    Imap,
    Pop3,
}

fn login(d: &Dovecot, proto: Proto, src: Ipv4Addr, user: &str, pass: &str) -> Login {
    match proto {
        Proto::Imap => imap_login(d.imap_addr(), src, user, pass),
        Proto::Pop3 => pop3_login(d.pop3_addr(), src, user, pass),
    }
}

/// Five logins at once from one address (IMAP, or POP3 `USER`/`PASS`).
fn parallel(d: &Dovecot, proto: Proto, src: Ipv4Addr, user: &str, pass: &str) -> Vec<Login> {
    match proto {
        Proto::Imap => parallel_imap(5, d.imap_addr(), src, user, pass),
        Proto::Pop3 => {
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(5));
            let addr = d.pop3_addr();
            let handles: Vec<_> = (0..5)
                .map(|_| {
                    let barrier = barrier.clone();
                    let (user, pass) = (user.to_string(), pass.to_string());
                    std::thread::spawn(move || {
                        let mut c = servers::Pop3Client::connect(addr, src);
                        barrier.wait();
                        let r = c.user_pass(&user, &pass);
                        c.quit();
                        r
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        }
    }
}

/// Issue 4 §1 over one protocol: every case, each with its own mailbox and client address,
/// each refusal's reason from the syslog, and no secret in any captured line.
fn the_cases_over_the_wire(proto: Proto) {
    let w = World::new("", "dovecot-virtual", &["dovecot"], "");
    let users = ["right", "wrong", "badpw", "nocode", "par"].map(|u| format!("{u}@example.com"));
    let recs: Vec<Record> = users.iter().map(|u| w.mfa_user(u)).collect();
    let [right, wrong, badpw, nocode, par] = &users;
    let plain = "plain@example.com";
    w.plain_user(plain, DIGITS_PW);
    let d = start(&w, DovecotOpts::default());
    let log = d.syslog();
    // Codes are computed now and sent within a few seconds: the window (±1 step) covers a
    // roll-over, but not a code computed just before one and checked two steps later.
    step_margin(3);

    // MFA mailbox, right code: in; split hands the password on, verify accepts.
    let mark = log.mark();
    let r = login(&d, proto, ip(10), right, &with_code(&recs[0], 0));
    assert!(r.is_ok(), "{proto:?} right code refused: {r:?}");
    expect_line(log, mark, right, "127.0.0.10", "verify", "accept", "ok");
    assert_one_line(log, mark, right);

    // Wrong code: refused, bad_code.
    let mark = log.mark();
    let r = login(
        &d,
        proto,
        ip(11),
        wrong,
        &format!("{PW}{}", wrong_code(&recs[1])),
    );
    assert!(!r.is_ok(), "{proto:?} wrong code accepted: {r:?}");
    expect_line(log, mark, wrong, "127.0.0.11", "verify", "deny", "bad_code");

    // Wrong password with the right code: refused by the password module; verify never runs,
    // so the code is not used up...
    let mark = log.mark();
    let code = fixture::code(&recs[2], 0);
    let r = login(&d, proto, ip(12), badpw, &format!("nope{code}"));
    assert!(!r.is_ok(), "{proto:?} wrong password accepted: {r:?}");
    assert_no_line(log, mark, badpw);
    // ...and works afterwards with the right password from another address.
    let mark = log.mark();
    let r = login(&d, proto, ip(13), badpw, &format!("{PW}{code}"));
    assert!(r.is_ok(), "{proto:?} unused code refused: {r:?}");
    expect_line(log, mark, badpw, "127.0.0.13", "verify", "accept", "ok");

    // The password alone for a mailbox with MFA: refused in split, no_code.
    let mark = log.mark();
    let r = login(&d, proto, ip(14), nocode, PW);
    assert!(
        !r.is_ok(),
        "{proto:?} password without code accepted: {r:?}"
    );
    expect_line(log, mark, nocode, "127.0.0.14", "split", "deny", "no_code");

    // A mailbox without MFA whose password ends in digits: untouched, in.
    let mark = log.mark();
    let r = login(&d, proto, ip(15), plain, DIGITS_PW);
    assert!(r.is_ok(), "{proto:?} mailbox without MFA refused: {r:?}");
    expect_line(log, mark, plain, "127.0.0.15", "split", "pass", "no_mfa");
    let lines = lines_since(log, mark, plain);
    assert!(
        lines.iter().all(|l| l.reason() == "no_mfa"),
        "a mailbox without MFA: {lines:?}"
    );

    // The same string on five parallel connections from one address: all in, one `ok` and
    // four `reused`.
    let s = with_code(&recs[4], 0);
    let mark = log.mark();
    let results = parallel(&d, proto, ip(16), par, &s);
    assert!(
        results.iter().all(Login::is_ok),
        "{proto:?} parallel logins: {results:?}"
    );
    let mut reasons = verify_reasons(log, mark, par);
    reasons.sort();
    assert_eq!(reasons, ["ok", "reused", "reused", "reused", "reused"]);

    // The same string from another address: refused, replayed.
    let mark = log.mark();
    let r = login(&d, proto, ip(17), par, &s);
    assert!(!r.is_ok(), "{proto:?} replay from another address: {r:?}");
    expect_line(log, mark, par, "127.0.0.17", "verify", "deny", "replayed");

    let mut secrets = vec![PW.to_string(), DIGITS_PW.to_string()];
    for rec in &recs {
        secrets.extend(record_secrets(rec));
    }
    assert_no_secrets(&log.lines(), &secrets);
}

#[test]
fn dovecot_imap_mfa_cases() {
    if !require_prereqs(DOVECOT_PREREQS) {
        return;
    }
    the_cases_over_the_wire(Proto::Imap);
}

#[test]
fn dovecot_pop3_mfa_cases() {
    if !require_prereqs(DOVECOT_PREREQS) {
        return;
    }
    the_cases_over_the_wire(Proto::Pop3);
}

/// `mailmfa enable --begin --json` / `--confirm`, logins over IMAP and POP3, then
/// `mailmfa disable --code`: the password alone works again (no_mfa).
#[test]
fn dovecot_mfa_turned_on_and_off_with_the_command() {
    if !require_prereqs(DOVECOT_PREREQS) {
        return;
    }
    let w = World::new("", "dovecot-virtual", &["dovecot"], "");
    let user = "dave@example.com";
    w.plain_user(user, PW);
    let d = start(&w, DovecotOpts::default());
    let log = d.syslog();
    step_margin(6);

    let begun = w.mailmfa_json(&["enable", user, "--begin", "--json"]);
    let secret = begun["secret"]
        .as_str()
        .expect("secret in the JSON")
        .to_string();
    let bytes = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &secret)
        .expect("base32 secret");
    let rec = Record::new(bytes, Algorithm::SHA1, 6, 30, 0).unwrap();
    // Pending only: MFA is not on yet, the password alone still logs in.
    assert!(login(&d, Proto::Imap, ip(20), user, PW).is_ok());

    // Confirm with the previous step's code (the window takes it): the confirming step counts
    // as used, so the login below uses the current one and disable the next one.
    let confirm = fixture::code(&rec, -1);
    w.mailmfa_ok(&["enable", user, "--confirm", &confirm, "--json"]);

    let mark = log.mark();
    let r = login(&d, Proto::Imap, ip(21), user, PW);
    assert!(!r.is_ok(), "password alone after enable: {r:?}");
    expect_line(log, mark, user, "127.0.0.21", "split", "deny", "no_code");
    let s = with_code(&rec, 0);
    let mark = log.mark();
    assert!(login(&d, Proto::Imap, ip(22), user, &s).is_ok());
    expect_line(log, mark, user, "127.0.0.22", "verify", "accept", "ok");
    // POP3 from the same address with the same string: the same step, reused.
    let mark = log.mark();
    assert!(login(&d, Proto::Pop3, ip(22), user, &s).is_ok());
    expect_line(log, mark, user, "127.0.0.22", "verify", "accept", "reused");

    let next = fixture::code(&rec, 1);
    w.mailmfa_ok(&["disable", user, "--code", &next, "--json"]);
    let status = w.mailmfa_json(&["status", user, "--json"]);
    assert_eq!(status["mfa"], "off", "status after disable: {status}");

    // The password alone logs in again, untouched; password+code is now a wrong password.
    let mark = log.mark();
    let r = login(&d, Proto::Imap, ip(23), user, PW);
    assert!(r.is_ok(), "password alone after disable: {r:?}");
    assert_eq!(
        last_reason(log, mark, user),
        ("pass".to_string(), "no_mfa".to_string())
    );
    assert!(login(&d, Proto::Pop3, ip(23), user, PW).is_ok());
    assert!(!login(&d, Proto::Imap, ip(24), user, &with_code(&rec, 0)).is_ok());

    let mut secrets = vec![PW.to_string(), secret, confirm, next];
    secrets.extend(record_secrets(&rec));
    assert_no_secrets(&log.lines(), &secrets);
}

/// Dovecot's auth cache in front of the PAM passdb (docs/deployment.md). With
/// `auth_cache_size` on and a `cache_key` in the PAM passdb's args, Dovecot answers a repeated
/// password+code string from its cache without asking PAM: no pam_mailmfa line at all, so the
/// module's replay rules never see the login.
/// - `cache_key=%u`: the cached string logs in from ANY other address (the full hole);
/// - `cache_key=%u%r` (key includes the client address): from the same address, PAM is not
///   asked again (for the cache TTL, long after the code's own validity); from another address
///   it is a cache miss, reaches the module and is refused `replayed`;
/// - a new code is never answered from the cache: it reaches the module (`ok`);
/// - cache off (Dovecot's default): the replay from another address is refused `replayed`.
#[test]
fn dovecot_auth_cache_replays_without_pam() {
    if !require_prereqs(DOVECOT_PREREQS) {
        return;
    }
    let user = "cached@example.com";
    let cached = |cache_key: &str| DovecotOpts {
        auth_cache_size: Some("1M".into()),
        passdb_args: format!("cache_key={cache_key}"),
        ..Default::default()
    };
    let mut lines = Vec::new();
    let mut secrets = vec![PW.to_string()];

    // cache_key=%u: the same string from anywhere, without PAM.
    let w = World::new("", "dovecot-virtual", &["dovecot"], "");
    let rec = w.mfa_user(user);
    secrets.extend(record_secrets(&rec));
    let d = start(&w, cached("%u"));
    let log = d.syslog();
    step_margin(3);
    let s = with_code(&rec, 0);
    let mark = log.mark();
    assert!(imap_login(d.imap_addr(), ip(30), user, &s).is_ok());
    expect_line(log, mark, user, "127.0.0.30", "verify", "accept", "ok");
    let mark = log.mark();
    let replay = imap_login(d.imap_addr(), ip(31), user, &s);
    let seen = lines_since(log, mark, user);
    assert!(
        replay.is_ok(),
        "cache_key=%u did not answer the replay: {replay:?} {seen:?}"
    );
    assert!(seen.is_empty(), "PAM was asked despite the cache: {seen:?}");
    // A new code is a new password to the cache: it goes to PAM and the module.
    let mark = log.mark();
    assert!(imap_login(d.imap_addr(), ip(30), user, &with_code(&rec, 1)).is_ok());
    expect_line(log, mark, user, "127.0.0.30", "verify", "accept", "ok");
    lines.extend(log.lines());
    drop(d);

    // cache_key=%u%r: the same address skips PAM; another address reaches the module.
    let w = World::new("", "dovecot-virtual", &["dovecot"], "");
    let rec = w.mfa_user(user);
    secrets.extend(record_secrets(&rec));
    let d = start(&w, cached("%u%r"));
    let log = d.syslog();
    step_margin(3);
    let s = with_code(&rec, 0);
    let mark = log.mark();
    assert!(imap_login(d.imap_addr(), ip(32), user, &s).is_ok());
    expect_line(log, mark, user, "127.0.0.32", "verify", "accept", "ok");
    let mark = log.mark();
    assert!(imap_login(d.imap_addr(), ip(32), user, &s).is_ok());
    let seen = lines_since(log, mark, user);
    assert!(seen.is_empty(), "PAM was asked despite the cache: {seen:?}");
    let mark = log.mark();
    let other = imap_login(d.imap_addr(), ip(33), user, &s);
    assert!(!other.is_ok(), "cache_key=%u%r, another address: {other:?}");
    expect_line(log, mark, user, "127.0.0.33", "verify", "deny", "replayed");
    lines.extend(log.lines());
    drop(d);

    // Cache off: the replay reaches the module and is refused.
    let w = World::new("", "dovecot-virtual", &["dovecot"], "");
    let rec = w.mfa_user(user);
    secrets.extend(record_secrets(&rec));
    let d = start(&w, DovecotOpts::default());
    let log = d.syslog();
    step_margin(3);
    let s = with_code(&rec, 0);
    assert!(imap_login(d.imap_addr(), ip(34), user, &s).is_ok());
    let mark = log.mark();
    let replay = imap_login(d.imap_addr(), ip(35), user, &s);
    assert!(!replay.is_ok(), "replay without the cache: {replay:?}");
    expect_line(log, mark, user, "127.0.0.35", "verify", "deny", "replayed");
    lines.extend(log.lines());
    assert_no_secrets(&lines, &secrets);
}
