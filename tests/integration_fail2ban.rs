// Integration test of contrib/fail2ban/filter.d/mailmfa.conf (issue 4 §4) with Debian's
// `fail2ban-regex` against lines the module really logged: a real Dovecot (IMAP, the
// `pam.d-examples/dovecot-virtual` stack) and a real saslauthd (`pam.d-examples/smtp`, no client
// address) are driven through every client-caused refusal and the accepted paths; the captured
// syslog lines (the `<NN>` priority stripped, the syslog date kept) go to a file, and every
// refusal with a client address must match with that address as <HOST>, while accepted,
// continue, pass and `rhost=-` lines must not.
// Owns: tests/integration_fail2ban.rs. Support: tests/integration/, tests/servers/, tests/fixture/.

mod fixture;
mod integration;
mod servers;
mod skip;

use integration::{
    assert_no_secrets, expect_line, ip, mfa_lines, record_secrets, step_margin, with_code,
    wrong_code, wrong_codes, MfaLine, World, DIGITS_PW, PW,
};
use servers::{imap_login, require_prereqs};
use std::process::Command;

/// The refusals a client causes; the filter must count exactly these (docs/configuration.md).
const CLIENT_REASONS: &[&str] = &[
    "bad_code",
    "replayed",
    "no_code",
    "throttled",
    "invalid_login",
    "bad_app_password",
    "app_password_expired",
    "app_password_wrong_service",
    "app_password_wrong_client",
    "bad_recovery_code",
];

/// Whether fail2ban should count `line` against its client address.
fn counts(line: &MfaLine) -> bool {
    line.result() == "deny" && line.rhost() != "-" && CLIENT_REASONS.contains(&line.reason())
}

#[test]
fn fail2ban_filter_matches_the_refusals_the_module_logged() {
    if !require_prereqs(&[
        "dovecot",
        "doveconf",
        "saslauthd",
        "unshare",
        "openssl",
        "fail2ban-regex",
        "pam_pwdfile.so",
        "pam_permit.so",
    ]) {
        return;
    }
    // max_failures = 3: the fourth wrong code from one client is `throttled`.
    let w = World::new("max_failures = 3", "dovecot-virtual", &["dovecot"], "");
    w.install("smtp", "smtp", "");
    let names = ["ok", "bad", "nocode", "throttle", "app", "rec", "sasl"];
    let users: Vec<String> = names.iter().map(|u| format!("{u}@example.com")).collect();
    let mut recs: Vec<_> = users.iter().map(|u| w.mfa_user(u)).collect();
    let u = |i: usize| users[i].as_str();
    let nomfa = "nomfa@example.com";
    w.plain_user(nomfa, DIGITS_PW);
    let mut secrets = vec![PW.to_string(), DIGITS_PW.to_string()];
    let now = fixture::now();
    let (left, right) = recs.split_at_mut(5);
    let app = w.add_app_password(u(4), &mut left[4], "phone", &["smtp-only"], None);
    let old = w.add_app_password(u(4), &mut left[4], "old", &[], Some(now - 60));
    let good = w.add_app_password(u(4), &mut left[4], "laptop", &[], None);
    let webmail = w.add_app_password(u(4), &mut left[4], "webmail-x", &[], None);
    let bound = left[4].app_passwords.last_mut().unwrap();
    bound.from = vec![ip(75).to_string()];
    w.save(u(4), &left[4]);
    let rcodes = w.add_recovery_codes(u(5), &mut right[0]);
    secrets.extend([app.clone(), old.clone(), good.clone(), webmail.clone()]);
    secrets.extend(rcodes.iter().cloned());
    for rec in &recs {
        secrets.extend(record_secrets(rec));
    }

    let d = w.dovecot("dovecot");
    let sasl = w.saslauthd();
    let imap = d.imap_addr();
    let log = d.syslog();
    step_margin(3);

    // Accepted: ok, reused, an app password, a recovery code, a mailbox without MFA.
    let s = with_code(&recs[0], 0);
    assert!(imap_login(imap, ip(60), u(0), &s).is_ok());
    assert!(imap_login(imap, ip(60), u(0), &s).is_ok());
    assert!(imap_login(imap, ip(68), u(4), &good).is_ok());
    let recovery = format!("{PW}{}", rcodes[0]);
    assert!(imap_login(imap, ip(70), u(5), &recovery).is_ok());
    assert!(imap_login(imap, ip(72), nomfa, DIGITS_PW).is_ok());

    // Refused, each from its own address.
    let refused = |src: u8, user: &str, pass: &str| {
        let r = imap_login(imap, ip(src), user, pass);
        assert!(!r.is_ok(), "{user} from 127.0.0.{src} got in: {r:?}");
    };
    refused(61, u(1), &format!("{PW}{}", wrong_code(&recs[1])));
    refused(62, u(2), PW);
    refused(63, u(0), &s);
    for code in wrong_codes(&recs[3], 4) {
        refused(64, u(3), &format!("{PW}{code}"));
    }
    refused(65, u(4), "zzzzz-zzzzz-zzzzz-zzzzz");
    refused(66, u(4), &old);
    refused(67, u(4), &app);
    refused(76, u(4), &webmail);
    refused(69, u(5), &format!("{PW}abcd-efgh-ijkl"));
    refused(73, ".dot@example.com", &s);
    let mark = log.mark();
    refused(74, u(5), &recovery);
    expect_line(
        log,
        mark,
        u(5),
        "127.0.0.74",
        "verify",
        "deny",
        "bad_recovery_code",
    );

    // Through saslauthd: no client address, rhost=-.
    let sasl_user = u(6);
    assert!(!sasl.check("smtp", sasl_user, &format!("{PW}{}", wrong_code(&recs[6]))));
    assert!(!sasl.check("smtp", sasl_user, PW));
    let mark = sasl.syslog().mark();
    assert!(sasl.check("smtp", sasl_user, &with_code(&recs[6], 0)));
    expect_line(
        sasl.syslog(),
        mark,
        sasl_user,
        "-",
        "verify",
        "accept",
        "ok",
    );

    integration::settle(log);
    integration::settle(sasl.syslog());
    let mut captured = log.lines();
    captured.extend(sasl.syslog().lines());
    assert_no_secrets(&captured, &secrets);

    // Every kind of line this test is about was really logged.
    let lines = mfa_lines(&captured);
    for reason in CLIENT_REASONS {
        assert!(
            lines
                .iter()
                .any(|l| l.reason() == *reason && l.rhost() != "-" && l.result() == "deny"),
            "no {reason} refusal with a client address was logged:\n{}",
            captured.join("\n")
        );
    }
    // (`split` writes no `continue` line since a login has one line: its decision.)
    for (result, rhost_dash) in [("accept", false), ("pass", false)] {
        assert!(
            lines
                .iter()
                .any(|l| l.result() == result && (l.rhost() == "-") == rhost_dash),
            "no result={result} line"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.result() == "deny" && l.rhost() == "-" && l.reason() == "bad_code"),
        "no rhost=- refusal"
    );

    // The file fail2ban reads: syslog lines as rsyslog writes them, without the <NN> priority.
    let file = w.f.dir.path().join("auth.log");
    let text: Vec<&str> = captured
        .iter()
        .map(|l| l.split_once('>').map(|(_, r)| r).unwrap_or(l))
        .collect();
    std::fs::write(&file, text.join("\n") + "\n").unwrap();
    let filter = fixture::repo().join("contrib/fail2ban/filter.d/mailmfa.conf");
    let out = Command::new(servers::find_program("fail2ban-regex").unwrap())
        .arg("-o")
        .arg("<ip>|<msg>")
        .arg(&file)
        .arg(&filter)
        .output()
        .expect("run fail2ban-regex");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "fail2ban-regex failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut matched: Vec<(String, String)> = stdout
        .lines()
        .filter_map(|l| l.split_once('|'))
        .map(|(host, msg)| (host.to_string(), msg.to_string()))
        .collect();
    let mut wanted: Vec<(String, String)> = text
        .iter()
        .filter(|l| MfaLine::parse(l).map(|m| counts(&m)).unwrap_or(false))
        .map(|l| {
            (
                MfaLine::parse(l).unwrap().rhost().to_string(),
                l.to_string(),
            )
        })
        .collect();
    matched.sort();
    wanted.sort();
    let missed: Vec<_> = wanted.iter().filter(|x| !matched.contains(x)).collect();
    let extra: Vec<_> = matched.iter().filter(|x| !wanted.contains(x)).collect();
    assert!(
        missed.is_empty() && extra.is_empty() && matched.len() == wanted.len(),
        "fail2ban-regex disagrees with the module's lines.\nmissed: {missed:#?}\nwrongly \
         matched: {extra:#?}\nfile:\n{}",
        text.join("\n")
    );
    // 9 reasons, throttle: 3 bad codes + 1 throttled; at least that many matches.
    assert!(matched.len() >= 12, "{matched:#?}");
}
