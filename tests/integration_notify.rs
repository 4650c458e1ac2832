// Notifications end to end (issue 18): every kind of event, made through its real face — the
// account layer as the User Panel and an admin call it, the `mailmfa` command, and IMAP
// logins through a real Dovecot and the module — goes through `mailmfa notify` into a
// throwaway Postfix's `sendmail`, is delivered into the owner's real Dovecot mailbox and read
// back over IMAP: each kind once, with the facts the docs promise, and no secret anywhere.
// Owns: tests/integration_notify.rs. Support: tests/servers/ (Postfix `deliver_to`,
// `sendmail_toml`; the IMAP client), tests/integration/, tests/fixture/.

mod fixture;
mod integration;
mod servers;
mod skip;

use integration::{ip, step_margin, wrong_codes, World, POSTFIX_DOVECOT_PREREQS, PW};
use mailmfa::account::{self, Actor, Ctx, Face, Proof};
use mailmfa::config::Settings;
use mailmfa::pam::sys::effective_uid;
use servers::client::{imap_login, imap_read_inbox, Mail};
use servers::{require_prereqs, Dovecot, Postfix, PostfixOpts};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ALICE: &str = "alice@example.com";
const PANEL_CLIENT: &str = "198.51.100.4";

/// Alice's world (her password `PW`; MFA on when `mfa`), a Dovecot on it, a Postfix that
/// delivers her mail into Dovecot's Maildir, and the spool's path; `None` (a loud skip, a
/// failure under CI) when the servers are missing.
fn lab(mfa: bool) -> Option<(World, Dovecot, Postfix, PathBuf)> {
    let mut prereqs = POSTFIX_DOVECOT_PREREQS.to_vec();
    prereqs.extend(["sendmail", "postdrop"]);
    if !require_prereqs(&prereqs) {
        return None;
    }
    let w = World::new("", "dovecot-virtual", &["dovecot"], "");
    if mfa {
        w.mfa_user(ALICE);
    } else {
        w.plain_user(ALICE, PW);
    }
    let dovecot = w.dovecot("dovecot");
    let postfix = Postfix::start(&PostfixOpts::dovecot(&dovecot).deliver_to(&dovecot, &[ALICE]));
    let spool = w.f.dir.path().join("spool");
    Some((w, dovecot, postfix, spool))
}

/// Appends a `[notify]` table to the world's config: on, the spool, the sender, `sendmail`
/// (a TOML value) and `extra` lines; returns the whole config.
fn turn_on(w: &World, spool: &Path, sendmail: &str, extra: &str) -> String {
    let mut config = fs::read_to_string(&w.f.config).unwrap();
    config.push_str(&format!(
        "[notify]\nenabled = true\nspool_dir = \"{}\"\nsender = \"mailmfa@mail.example.com\"\n\
         sendmail = {sendmail}\n{extra}",
        spool.display()
    ));
    fs::write(&w.f.config, &config).unwrap();
    config
}

#[test]
fn every_kind_of_event_reaches_the_owners_mailbox_once_through_postfix() {
    let Some((w, dovecot, postfix, spool)) = lab(false) else {
        return;
    };
    let config = turn_on(
        &w,
        &spool,
        &postfix.sendmail_toml(),
        "alert_after = 3\npanel_url = \"https://mail.example.com/mfa/\"\n",
    );
    let settings = Settings::from_toml(&config, &w.f.config).unwrap();
    let ctx = |face, client| Ctx {
        settings: &settings,
        euid: effective_uid(),
        now: fixture::now(),
        actor: Actor { face, client },
    };
    let who = fixture::login(ALICE);
    let mut secrets: Vec<String> = vec![PW.to_string()];

    // The owner turns MFA on in the User Panel, then an admin moves it to a new phone.
    step_margin(8);
    let panel = ctx(Face::Panel, Some(PANEL_CLIENT));
    let first = account::begin(&panel, &who, Some("phone"), None, PANEL_CLIENT).unwrap();
    secrets.push(first.key.replace(' ', ""));
    account::confirm(&panel, &who, &fixture::code(&first.record, 0)).unwrap();
    let admin = ctx(Face::Admin, None);
    let second = account::begin(&admin, &who, Some("new phone"), Some(Proof::Force), "").unwrap();
    secrets.push(second.key.replace(' ', ""));
    account::confirm(&admin, &who, &fixture::code(&second.record, 0)).unwrap();
    let record = second.record;

    // App passwords: one made with the command, one made and revoked in the panel, one that
    // expires in two seconds.
    w.mailmfa_ok(&["app-password", "add", ALICE, "--label", "thunderbird"]);
    let panel = ctx(Face::Panel, Some(PANEL_CLIENT));
    let tablet = account::add_app_password(&panel, &who, "tablet", &[], None).unwrap();
    secrets.push(tablet.password.to_string());
    account::revoke_app_password(&panel, &who, "tablet").unwrap();
    let soon = fixture::now() + 2;
    let laptop = account::add_app_password(&panel, &who, "laptop", &[], Some(soon)).unwrap();
    secrets.push(laptop.password.to_string());

    // Recovery codes, and one of them used for an IMAP login through Dovecot and the module.
    let codes = account::new_recovery_codes(&ctx(Face::Command, None), &who).unwrap();
    secrets.extend(codes.iter().map(|c| c.to_string()));
    let login = imap_login(
        dovecot.imap_addr(),
        ip(61),
        ALICE,
        &format!("{PW}{}", codes[0].as_str()),
    );
    assert!(login.is_ok(), "IMAP with a recovery code: {login:?}");

    // Someone with the password and without the phone: three wrong codes over IMAP.
    for wrong in wrong_codes(&record, 3) {
        secrets.push(wrong.clone());
        let login = imap_login(dovecot.imap_addr(), ip(62), ALICE, &format!("{PW}{wrong}"));
        assert!(!login.is_ok(), "a wrong code is refused");
    }

    // The first pass: everything so far, and (past its expiry) the laptop's app password.
    fixture::wait_for_unix_time(soon + 1);
    let (code, out, err) = w.mailmfa(&["notify", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["expired"], 1, "{report}");
    assert_eq!(report["deferred"], 0, "{report}{err}");

    // The owner's MFA is turned off by an admin with the command; the second pass mails it.
    w.mailmfa_ok(&["disable", ALICE, "--force"]);
    w.mailmfa_ok(&["notify", "--json"]);

    // Read back over IMAP (MFA is off now: the password alone).
    let want = [
        ("mfa-enabled", 1),
        ("mfa-replaced", 1),
        ("app-password-created", 3),
        ("app-password-revoked", 1),
        ("app-password-expired", 1),
        ("recovery-codes-created", 1),
        ("recovery-code-used", 1),
        ("code-wrong", 1),
        ("mfa-disabled", 1),
    ];
    let total: u32 = want.iter().map(|(_, n)| n).sum();
    let mails = imap_read_inbox(
        dovecot.imap_addr(),
        ip(63),
        ALICE,
        PW,
        total,
        Duration::from_secs(30),
    );
    let mut by_kind: BTreeMap<String, Vec<Mail>> = BTreeMap::new();
    for mail in mails {
        let kind = mail.header("X-Mailmfa-Event").expect("X-Mailmfa-Event");
        by_kind.entry(kind).or_default().push(mail);
    }
    let counts: Vec<(&str, usize)> = want
        .iter()
        .map(|(k, _)| (*k, by_kind.get(*k).map_or(0, Vec::len)))
        .collect();
    let wanted: Vec<(&str, usize)> = want.iter().map(|(k, n)| (*k, *n as usize)).collect();
    assert_eq!(counts, wanted, "each event once, nothing else");
    // No duplicate arrives late.
    std::thread::sleep(Duration::from_secs(1));
    let again = imap_read_inbox(
        dovecot.imap_addr(),
        ip(64),
        ALICE,
        PW,
        total,
        Duration::from_secs(5),
    );
    assert_eq!(again.len(), total as usize, "no mail twice");

    let one = |kind: &str| by_kind[kind][0].clone();
    let text = |mail: &Mail| {
        format!(
            "{}\n{}",
            mail.header_decoded("Subject").unwrap_or_default(),
            mail.body_text()
        )
    };
    for (kind, facts) in [
        (
            "mfa-enabled",
            vec!["Two-step verification was turned on for alice@example.com", "Address:  198.51.100.4", "Through:  the User Panel"],
        ),
        ("mfa-replaced", vec!["moved to a new authenticator app", "Through:  the User Panel, by an administrator"]),
        ("app-password-revoked", vec!["\"tablet\"", "Address:  198.51.100.4", "https://mail.example.com/mfa/"]),
        ("app-password-expired", vec!["\"laptop\"", "has expired"]),
        ("recovery-codes-created", vec!["a new set of 10 recovery codes"]),
        ("recovery-code-used", vec!["9 unused recovery codes", "Address:  127.0.0.61", "a mail login (service dovecot)"]),
        ("code-wrong", vec!["Someone has the password of alice@example.com", "3 wrong codes from 127.0.0.62 (a mail login (service dovecot))"]),
        ("mfa-disabled", vec!["turned off for your mailbox alice@example.com, by an administrator, without a code", "Through:  the mailmfa command, by an administrator"]),
    ] {
        let body = text(&one(kind));
        for fact in facts {
            assert!(body.contains(fact), "{kind}: `{fact}` in\n{body}");
        }
    }
    let created: Vec<String> = by_kind["app-password-created"].iter().map(text).collect();
    for name in ["thunderbird", "tablet", "laptop"] {
        assert!(
            created.iter().any(|b| b.contains(&format!("\"{name}\""))),
            "{name}"
        );
    }
    for mails in by_kind.values() {
        for mail in mails {
            assert_eq!(
                mail.header("Auto-Submitted").as_deref(),
                Some("auto-generated")
            );
            assert!(mail
                .header("From")
                .unwrap()
                .contains("mailmfa@mail.example.com"));
            assert_eq!(mail.header("To").as_deref(), Some("<alice@example.com>"));
            let raw = String::from_utf8_lossy(&mail.raw);
            for secret in &secrets {
                assert!(!raw.contains(secret.as_str()), "a secret in a mail: {raw}");
            }
        }
    }
    // The spool is empty once everything went out (the sweep's mark and the alert's stay).
    for sub in ["new", "cur", "out", "held"] {
        assert_eq!(
            fs::read_dir(spool.join(sub)).unwrap().count(),
            0,
            "{sub}/ is empty"
        );
    }
}

/// `mailmfa notify` killed while Postfix's `sendmail` (behind a wrapper that first waits two
/// seconds) has the first of three mails: the next pass sends what is left, nothing is lost,
/// and at most the mail in flight arrives twice (at least once, as documented).
#[test]
fn a_notifier_killed_mid_delivery_loses_nothing_through_postfix() {
    let Some((w, dovecot, postfix, spool)) = lab(true) else {
        return;
    };
    // sh -c 'sleep 2; exec sendmail -C DIR "$@"' sh -i -f SENDER -- RECIPIENT
    let wrapped = format!("sleep 2; exec {} \"$@\"", postfix.sendmail_argv().join(" "));
    turn_on(
        &w,
        &spool,
        &format!("[\"/bin/sh\", \"-c\", {wrapped:?}, \"sh\"]"),
        "",
    );
    let mut reader = String::new();
    for name in ["one", "two", "three"] {
        let made = w.mailmfa_json(&["app-password", "add", ALICE, "--label", name, "--json"]);
        if reader.is_empty() {
            reader = made["password"].as_str().unwrap().to_string();
        }
    }
    let mut pass = std::process::Command::new(env!("CARGO_BIN_EXE_mailmfa"))
        .arg("--config")
        .arg(&w.f.config)
        .arg("notify")
        .spawn()
        .unwrap();
    // Killed while the first mail's wrapper waits (the pass first lets the batch settle).
    std::thread::sleep(Duration::from_millis(2200));
    pass.kill().unwrap();
    pass.wait().unwrap();
    w.mailmfa_ok(&["notify", "--json"]);
    // The killed pass's wrapper goes on to Postfix by itself: give it time to arrive.
    std::thread::sleep(Duration::from_secs(4));
    // Read with the app password "one" (an IMAP login without a code).
    let mails = imap_read_inbox(
        dovecot.imap_addr(),
        ip(65),
        ALICE,
        &reader,
        3,
        Duration::from_secs(30),
    );
    let bodies: Vec<String> = mails.iter().map(Mail::body_text).collect();
    fixture::assert_at_least_once(&bodies, &["one", "two", "three"]);
}
