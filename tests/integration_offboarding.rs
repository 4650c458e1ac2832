// App passwords stop with their mailbox (issue 11, finding 6), through a REAL Dovecot (IMAP,
// `pam.d-examples/dovecot-virtual`) and a REAL Postfix through Cyrus saslauthd
// (`pam.d-examples/smtp`), both checking the same pam_pwdfile password file. An accepted app
// password ends the `auth` stack in `split`, so the password module never sees the mailbox;
// both servers call pam_acct_mgmt after a success, and the stacks' `account` line asks the
// password file whether the mailbox still has an unlocked line. Locked and deleted mailboxes
// are refused over both, with the reason in the module's log; other mailboxes are untouched;
// the documented off-boarding step (`mailmfa disable --force`) revokes them for good.
// Owns: tests/integration_offboarding.rs. Support: tests/integration/, tests/servers/,
// tests/fixture/.

mod fixture;
mod integration;
mod servers;
mod skip;

use integration::{
    assert_no_secrets, expect_line, ip, record_secrets, settle, World, DOVECOT_PREREQS,
    POSTFIX_SASLAUTHD_PREREQS, PW,
};
use servers::{imap_login, require_prereqs, smtp_auth_plain, Postfix, PostfixOpts};

/// Rewrites `user`'s line of the world's password file with `edit` (`None`: delete it).
fn edit_mailbox(w: &World, user: &str, edit: impl Fn(&str) -> Option<String>) {
    let text = std::fs::read_to_string(&w.f.pwdfile).expect("read pwdfile");
    let prefix = format!("{user}:");
    let out: String = text
        .lines()
        .filter_map(|l| match l.strip_prefix(&prefix) {
            Some(hash) => edit(hash).map(|h| format!("{prefix}{h}\n")),
            None => Some(format!("{l}\n")),
        })
        .collect();
    std::fs::write(&w.f.pwdfile, out).expect("write pwdfile");
}

#[test]
fn app_passwords_stop_over_imap_and_smtp_when_the_mailbox_is_locked_or_deleted() {
    let mut prereqs = DOVECOT_PREREQS.to_vec();
    prereqs.extend_from_slice(POSTFIX_SASLAUTHD_PREREQS);
    if !require_prereqs(&prereqs) {
        return;
    }
    let w = World::new("", "dovecot-virtual", &["imap"], "");
    w.install("smtp", "smtp", "");
    let leaver = "leaver@example.com";
    let stayer = "stayer@example.com";
    let mut rec = w.mfa_user(leaver);
    let mut other = w.mfa_user(stayer);
    let app = w.add_app_password(leaver, &mut rec, "phone", &[], None);
    let app2 = w.add_app_password(stayer, &mut other, "phone", &[], None);
    let d = w.dovecot("imap");
    let sasl = w.saslauthd();
    let postfix = Postfix::start(&PostfixOpts::saslauthd(&sasl));
    let smtp = postfix.smtp_addr();
    let (imap_log, smtp_log) = (d.syslog(), sasl.syslog());

    // Alive: in over both.
    assert!(imap_login(d.imap_addr(), ip(60), leaver, &app).is_ok());
    let r = smtp_auth_plain(smtp, ip(60), leaver, &app);
    assert_eq!(r.code, 235, "app password over SMTP, mailbox alive: {r}");

    // Refused over IMAP and SMTP from client 127.0.0.`last`, at the account line, for `reason`.
    let refused = |last: u8, reason: &str| {
        let mark = imap_log.mark();
        assert!(!imap_login(d.imap_addr(), ip(last), leaver, &app).is_ok());
        let rhost = format!("127.0.0.{last}");
        expect_line(imap_log, mark, leaver, &rhost, "account", "deny", reason);
        let mark = smtp_log.mark();
        let r = smtp_auth_plain(smtp, ip(last), leaver, &app);
        assert_eq!(r.code, 535, "app password over SMTP, {reason}: {r}");
        expect_line(smtp_log, mark, leaver, "-", "account", "deny", reason);
    };
    // Locked (`!` before the hash), then deleted.
    edit_mailbox(&w, leaver, |hash| Some(format!("!{hash}")));
    refused(61, "mailbox_locked");
    edit_mailbox(&w, leaver, |_| None);
    refused(62, "mailbox_gone");

    // Another mailbox's app password is untouched.
    assert!(imap_login(d.imap_addr(), ip(63), stayer, &app2).is_ok());
    assert_eq!(smtp_auth_plain(smtp, ip(63), stayer, &app2).code, 235);

    // Off-boarding: `mailmfa disable --force` removes the record and its app passwords; a
    // mailbox later re-created under the same name does not inherit them.
    w.mailmfa_ok(&["disable", leaver, "--force"]);
    w.f.add_password(leaver, "a-new-owner's-password");
    assert!(!imap_login(d.imap_addr(), ip(64), leaver, &app).is_ok());
    assert_eq!(smtp_auth_plain(smtp, ip(64), leaver, &app).code, 535);

    settle(imap_log);
    settle(smtp_log);
    let mut secrets = vec![PW.to_string(), app, app2];
    secrets.extend(record_secrets(&rec));
    secrets.extend(record_secrets(&other));
    assert_no_secrets(&imap_log.lines(), &secrets);
    assert_no_secrets(&smtp_log.lines(), &secrets);
}
