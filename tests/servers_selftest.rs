// Self-test of the real-server harness (tests/servers/) with stacks that do not use our module
// (pam_pwdfile + pam_permit + pam_warn), so it proves the harness on its own: Dovecot IMAP/POP3,
// Postfix SMTP AUTH through Dovecot SASL and through saslauthd, syslog capture, source addresses.

mod servers;
mod skip;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use servers::{
    imap_login, pop3_login, require_prereqs, smtp_auth_login, smtp_auth_plain, Dovecot,
    DovecotOpts, ImapClient, PamDir, Postfix, PostfixOpts, Saslauthd, SaslauthdOpts,
};

const USER: &str = "alice@example.org";
const PASSWORD: &str = "T9D3K!px";
/// Needs IMAP quoting (`"`, `\`, space).
const TRICKY_USER: &str = "bob@example.org";
const TRICKY_PASSWORD: &str = r#"a "quoted" \ pass"#;
/// Needs an IMAP literal (8-bit).
const UTF8_USER: &str = "carol@example.org";
const UTF8_PASSWORD: &str = "pässwörd";

/// A pam.d dir with service `service`: pam_warn (logs service/user/rhost through pam_syslog),
/// then pam_pwdfile against a file holding the three test users, then an account line.
fn pwdfile_stack(service: &str) -> PamDir {
    let pam = PamDir::new();
    let pwdfile = pam.write_pwdfile(
        "users.pwdfile",
        &[
            (USER, PASSWORD),
            (TRICKY_USER, TRICKY_PASSWORD),
            (UTF8_USER, UTF8_PASSWORD),
        ],
    );
    pam.write(
        service,
        &format!(
            "auth     optional pam_warn.so\n\
             auth     required pam_pwdfile.so pwdfile={} nodelay\n\
             account  required pam_permit.so\n",
            pwdfile.display()
        ),
    );
    pam
}

/// What the Dovecot tests need.
const DOVECOT_PREREQS: &[&str] = &[
    "dovecot",
    "doveconf",
    "unshare",
    "openssl",
    "pam_pwdfile.so",
];

/// A Dovecot with `opts` whose PAM service `mailtest` is [`pwdfile_stack`]; the pam.d dir
/// (kept: Dovecot reads it at each login).
fn dovecot_mailtest(opts: &DovecotOpts) -> (PamDir, Dovecot) {
    let pam = pwdfile_stack("mailtest");
    let dovecot = Dovecot::start(pam.path(), "mailtest", opts);
    (pam, dovecot)
}

/// AUTH PLAIN and AUTH LOGIN through the Postfix at `smtp`, each with the right password
/// (235: USER for PLAIN, the quoted TRICKY_USER for LOGIN) and a wrong one (535), from the
/// clients `from` (PLAIN right, PLAIN wrong, LOGIN right, LOGIN wrong).
fn assert_smtp_auth(smtp: SocketAddr, from: [u8; 4]) {
    let tries = [
        ("AUTH PLAIN right password", 235, USER, PASSWORD),
        ("AUTH PLAIN wrong password", 535, USER, "wrong"),
        (
            "AUTH LOGIN right password",
            235,
            TRICKY_USER,
            TRICKY_PASSWORD,
        ),
        ("AUTH LOGIN wrong password", 535, USER, "wrong"),
    ];
    for (i, (what, code, user, password)) in tries.into_iter().enumerate() {
        let r = if i < 2 {
            smtp_auth_plain(smtp, ip(from[i]), user, password)
        } else {
            smtp_auth_login(smtp, ip(from[i]), user, password)
        };
        assert_eq!(r.code, code, "{what}: {r}");
    }
}

/// 127.0.0.`last`: every address in 127.0.0.0/8 is local.
fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

#[test]
fn dovecot_imap_and_pop3_through_pam() {
    if !require_prereqs(DOVECOT_PREREQS) {
        return;
    }
    let (_pam, dovecot) = dovecot_mailtest(&DovecotOpts::default());
    let imap = dovecot.imap_addr();

    let ok = imap_login(imap, ip(2), USER, PASSWORD);
    assert!(ok.is_ok(), "right password refused: {ok:?}");
    let no = imap_login(imap, ip(3), USER, "wrong");
    assert!(!no.is_ok(), "wrong password accepted: {no:?}");
    assert!(no.text().contains("AUTHENTICATIONFAILED"), "{no:?}");

    // Quoting, literals and AUTHENTICATE PLAIN.
    let tricky = imap_login(imap, ip(2), TRICKY_USER, TRICKY_PASSWORD);
    assert!(tricky.is_ok(), "quoted password: {tricky:?}");
    let utf8 = imap_login(imap, ip(2), UTF8_USER, UTF8_PASSWORD);
    assert!(utf8.is_ok(), "literal password: {utf8:?}");
    let mut client = ImapClient::connect(imap, ip(2));
    let plain = client.authenticate_plain(USER, PASSWORD);
    assert!(plain.is_ok(), "AUTHENTICATE PLAIN: {plain:?}");
    let (untagged, noop) = client.command("SELECT INBOX");
    assert!(
        noop.is_ok(),
        "SELECT INBOX after login: {noop:?} {untagged:?}"
    );
    client.logout();

    let pop3 = dovecot.pop3_addr();
    let ok = pop3_login(pop3, ip(2), USER, PASSWORD);
    assert!(ok.is_ok(), "POP3 right password refused: {ok:?}");
    let no = pop3_login(pop3, ip(4), USER, "wrong");
    assert!(!no.is_ok(), "POP3 wrong password accepted: {no:?}");

    // Syslog capture from the auth workers, and PAM_RHOST = the client's source address.
    let log = dovecot.syslog();
    for rhost in ["127.0.0.2", "127.0.0.3"] {
        let line = log.expect(&format!("from pam_warn with rhost {rhost}"), |l| {
            l.contains("pam_warn(mailtest:auth)") && l.contains(&format!("rhost=[{rhost}]"))
        });
        assert!(line.contains(&format!("user=[{USER}]")), "{line}");
    }
    dovecot.log().expect("with rip=127.0.0.3", |l| {
        l.contains("auth failed") && l.contains("rip=127.0.0.3")
    });
}

#[test]
fn dovecot_service_name_per_protocol() {
    if !require_prereqs(DOVECOT_PREREQS) {
        return;
    }
    // `%s`: IMAP logins use service `imap`, POP3 logins `pop3`; only imap is allowed here.
    let pam = pwdfile_stack("imap");
    let dovecot = Dovecot::start(pam.path(), "%s", &DovecotOpts::default());
    assert!(imap_login(dovecot.imap_addr(), ip(2), USER, PASSWORD).is_ok());
    let pop3 = pop3_login(dovecot.pop3_addr(), ip(2), USER, PASSWORD);
    assert!(
        !pop3.is_ok(),
        "pop3 fell through to `other`, which denies: {pop3:?}"
    );
}

#[test]
fn dovecot_sees_pam_d_edits_and_auth_cache_skips_pam() {
    if !require_prereqs(DOVECOT_PREREQS) {
        return;
    }
    // Dovecot caches PAM results only when the passdb has a cache_key.
    let (pam, dovecot) = dovecot_mailtest(&DovecotOpts {
        auth_cache_size: Some("1M".into()),
        passdb_args: "cache_key=%u".into(),
        ..Default::default()
    });
    let imap = dovecot.imap_addr();
    assert!(imap_login(imap, ip(2), USER, PASSWORD).is_ok());

    // The pam.d dir is bind-mounted, so a rewritten service applies at the next login...
    pam.write(
        "mailtest",
        "auth required pam_deny.so\naccount required pam_permit.so\n",
    );
    let denied = imap_login(imap, ip(3), TRICKY_USER, TRICKY_PASSWORD);
    assert!(!denied.is_ok(), "pam_deny stack let a login in: {denied:?}");
    // ...except for a user+password the auth cache already holds: PAM is not asked, whatever
    // the client address (cache_key=%u).
    let cached = imap_login(imap, ip(4), USER, PASSWORD);
    assert!(cached.is_ok(), "auth cache did not answer: {cached:?}");
}

/// The client addresses anvil holds an auth penalty for, from `doveadm penalty` (anvil is the
/// process that keeps the penalties; `doveadm` asks it over the instance's own socket).
fn penalized(dovecot: &Dovecot) -> Vec<String> {
    let out = std::process::Command::new(servers::find_program("doveadm").expect("doveadm"))
        .arg("-c")
        .arg(dovecot.conf_path())
        .arg("penalty")
        .output()
        .expect("run doveadm penalty");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "doveadm penalty failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A header line ("IP penalty last_penalty last_update"), then one line per address.
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// With the penalty on (Dovecot's default), a failed login leaves a penalty for its address
/// in anvil, which `doveadm penalty` shows. With `disable_auth_penalty`, three failures from
/// one address leave none: the auth process cannot reach anvil, so it neither counts failures
/// nor delays the next one. (No clock: before a failure's reply the auth process has asked
/// anvil for the address's penalty, on the connection that carried the earlier failures'
/// increments, so when the third reply arrives anvil would hold the penalty.)
#[test]
fn dovecot_auth_penalty_can_be_disabled() {
    if !require_prereqs(&[DOVECOT_PREREQS, &["doveadm"]].concat()) {
        return;
    }
    let pam = pwdfile_stack("mailtest");

    // The control: the penalty is seen where it exists.
    let normal = Dovecot::start(pam.path(), "mailtest", &DovecotOpts::default());
    assert!(!imap_login(normal.imap_addr(), ip(8), USER, "wrong").is_ok());
    servers::wait_until(
        Duration::from_secs(10),
        "anvil holds 127.0.0.8's penalty",
        || penalized(&normal).contains(&ip(8).to_string()),
    );
    drop(normal);

    let opts = DovecotOpts {
        disable_auth_penalty: true,
        ..Default::default()
    };
    let dovecot = Dovecot::start(pam.path(), "mailtest", &opts);
    for _ in 0..3 {
        assert!(!imap_login(dovecot.imap_addr(), ip(9), USER, "wrong").is_ok());
    }
    // The right password from the same address still gets in (nothing holds it back).
    assert!(imap_login(dovecot.imap_addr(), ip(9), USER, PASSWORD).is_ok());
    assert_eq!(
        penalized(&dovecot),
        Vec::<String>::new(),
        "no penalty in anvil"
    );
}

#[test]
fn postfix_smtp_auth_through_dovecot() {
    if !require_prereqs(&[DOVECOT_PREREQS, &["postfix"]].concat()) {
        return;
    }
    let (_pam, dovecot) = dovecot_mailtest(&DovecotOpts::default());
    let postfix = Postfix::start(&PostfixOpts::dovecot(&dovecot));
    let smtp = postfix.smtp_addr();

    // A fresh address for the second failure: another one from 127.0.0.6 would wait out
    // Dovecot's auth penalty.
    assert_smtp_auth(smtp, [5, 6, 5, 10]);

    // Through Dovecot SASL, PAM_RHOST is the SMTP client's address.
    dovecot
        .syslog()
        .expect("with the SMTP client's rhost", |l| {
            l.contains("pam_warn(mailtest:auth)") && l.contains("rhost=[127.0.0.6]")
        });
    postfix.log().expect("about the failed AUTH", |l| {
        l.contains("SASL PLAIN authentication failed") && l.contains("127.0.0.6")
    });
}

/// What the saslauthd tests need.
const SASLAUTHD_PREREQS: &[&str] = &[
    "postfix",
    "saslauthd",
    "testsaslauthd",
    "unshare",
    "openssl",
    "pam_pwdfile.so",
];

#[test]
fn postfix_smtp_auth_through_saslauthd() {
    if !require_prereqs(SASLAUTHD_PREREQS) {
        return;
    }
    let pam = pwdfile_stack("smtp");
    // -r: PAM gets the whole address (see postfix_through_saslauthd_splits_the_realm).
    let opts = SaslauthdOpts {
        realm_in_login: true,
        ..Default::default()
    };
    let saslauthd = Saslauthd::start_with(pam.path(), &opts);
    assert!(
        saslauthd.check("smtp", USER, PASSWORD),
        "testsaslauthd, right password"
    );
    assert!(
        !saslauthd.check("smtp", USER, "wrong"),
        "testsaslauthd, wrong password"
    );

    let postfix = Postfix::start(&PostfixOpts::saslauthd(&saslauthd));
    let smtp = postfix.smtp_addr();
    assert_smtp_auth(smtp, [7; 4]);

    // saslauthd sets no PAM_RHOST.
    saslauthd
        .syslog()
        .expect("from pam_warn in service smtp", |l| {
            l.contains("pam_warn(smtp:auth)")
                && l.contains(&format!("user=[{TRICKY_USER}]"))
                && l.contains("rhost=[<unknown>]")
        });
}

#[test]
fn postfix_through_saslauthd_splits_the_realm() {
    if !require_prereqs(SASLAUTHD_PREREQS) {
        return;
    }
    // Without -r, Cyrus splits `alice@example.org` into user `alice` and realm `example.org`,
    // and PAM sees only `alice` (so pam_pwdfile, keyed by the address, refuses).
    let pam = pwdfile_stack("smtp");
    let saslauthd = Saslauthd::start(pam.path());
    let postfix = Postfix::start(&PostfixOpts::saslauthd(&saslauthd));
    let r = smtp_auth_plain(postfix.smtp_addr(), ip(8), USER, PASSWORD);
    assert_eq!(r.code, 535, "{r}");
    saslauthd.syslog().expect("with the bare local part", |l| {
        l.contains("pam_warn(smtp:auth)") && l.contains("user=[alice]")
    });
}
