// Roundcube with the mailmfa plugin in a real browser (issue 13 item 6): Debian's Roundcube 1.6
// under `php -S` with the plugin bind-mounted into its plugin folder, the project's Dovecot,
// Postfix submission and the User Panel (tests/webmail/), driven by headless Chromium
// (tests/browser/). Screenshots go to docs/screenshots/ with MAILMFA_SCREENSHOTS set.
// Owns: tests/webmail_browser.rs. Support: tests/webmail/, tests/panel/, tests/browser/,
// tests/integration/, tests/servers/, tests/fixture/.

mod browser;
mod fixture;
mod integration;
mod panel;
mod servers;
mod webmail;

use browser::Browser;
use integration::PW;
use webmail::{
    login_to_inbox, logout, on_code_page, on_login_form, open_folder, send_to_self, submit_login,
    wait_for_subject, WebmailOpts, WebmailWorld, HEIGHT, WIDTH,
};

/// The harness alone: plain Roundcube (no plugin) in front of the world's Dovecot and Postfix.
/// A mailbox logs in with its password through the form, opens folders, sends a mail to
/// itself that arrives in its inbox, and logs out; a wrong password stays on the form.
#[test]
fn harness_plain_roundcube_login_send_and_logout() {
    if !webmail::prereqs() {
        return;
    }
    let user = "plain@example.com";
    let w = WebmailWorld::start(&WebmailOpts {
        plugin: false,
        mailboxes: vec![user.into()],
        ..Default::default()
    });
    w.p.owner(user);
    let b = Browser::start(WIDTH, HEIGHT);
    let mark = w.mark();

    submit_login(&b, w.url(), user, "wrong-password");
    assert!(
        on_login_form(&b),
        "a wrong password left the form: {}",
        b.url()
    );
    assert!(!on_code_page(&b));

    login_to_inbox(&b, w.url(), user, None);
    open_folder(&b, "Sent");
    open_folder(&b, "INBOX");
    send_to_self(&b, w.url(), user, "harness mail");
    open_folder(&b, "INBOX");
    wait_for_subject(&b, "harness mail");
    assert!(!w.inbox_files(user).is_empty(), "no file in the Maildir");
    logout(&b);
    let counts = w.counts_since(&mark, user);
    eprintln!("plain Roundcube session:\n{counts}");
    assert!(counts.imap_logins > 0, "{counts}");
    assert_eq!(
        counts.imap_failures, 1,
        "only the wrong password failed: {counts}"
    );
    let _ = PW;
}
