// Proves the mail-delivery harness that the notification tests (issue 18) build on: a message
// piped into a throwaway Postfix's `sendmail -C CONF_DIR -i -f FROM -- TO` (the way
// `mailmfa notify` calls sendmail) is delivered by Postfix's `virtual` agent into the Maildir
// of a real Dovecot, and read back over IMAP with its subject and body intact; a mailbox with
// MFA reads it with password + code in one login; other domains are still discarded.
// Owns: tests/integration_mail_delivery.rs. Support: tests/servers/ (postfix.rs `deliver_to`,
// `sendmail_argv`; client.rs `imap_open_inbox`, `wait_for_messages`, `Mail`),
// tests/integration/, tests/fixture/.

mod fixture;
mod integration;
mod servers;
mod skip;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use integration::{ip, step_margin, with_code, World, POSTFIX_DOVECOT_PREREQS, PW};
use servers::client::{base64, imap_open_inbox, imap_read_inbox};
use servers::{require_prereqs, Dovecot, Postfix, PostfixOpts};

/// What these tests need: the Postfix-through-Dovecot servers, and Postfix's `sendmail` and
/// `postdrop` (which it runs).
fn prereqs() -> Vec<&'static str> {
    let mut names = POSTFIX_DOVECOT_PREREQS.to_vec();
    names.extend(["sendmail", "postdrop"]);
    names
}

/// Bounds a hang while waiting for delivery; delivery here takes well under a second.
const DELIVERY_WAIT: Duration = Duration::from_secs(30);

/// The sender the notifier would use.
const SENDER: &str = "mailmfa@mail.example.com";

/// Dovecot on the world's `dovecot` service, and a Postfix delivering mail for `mailboxes`
/// into Dovecot's Maildirs.
fn servers(w: &World, mailboxes: &[&str]) -> (Dovecot, Postfix) {
    let dovecot = w.dovecot("dovecot");
    let postfix = Postfix::start(&PostfixOpts::dovecot(&dovecot).deliver_to(&dovecot, mailboxes));
    (dovecot, postfix)
}

/// A notification-like message: the headers the notifier writes, a UTF-8 body sent as is.
fn message(to: &str, subject: &str, body: &str) -> String {
    encoded_message(to, subject, "8bit", body)
}

/// A message whose `Subject:` line and body are given as they go on the wire (encoded words,
/// the body in transfer encoding `cte`); a fresh Message-ID each.
fn encoded_message(to: &str, subject: &str, cte: &str, body: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!(
        "From: {SENDER}\n\
         To: {to}\n\
         Subject: {subject}\n\
         Date: Thu, 04 Dec 2025 10:00:00 +0000\n\
         Message-ID: <{pid}.{seq}@mail.example.com>\n\
         Auto-Submitted: auto-generated\n\
         X-Mailmfa-Event: mfa-enabled\n\
         MIME-Version: 1.0\n\
         Content-Type: text/plain; charset=utf-8\n\
         Content-Transfer-Encoding: {cte}\n\
         \n\
         {body}",
        pid = std::process::id(),
    )
}

#[test]
fn sendmail_delivers_into_dovecot_and_imap_reads_it_back() {
    if !require_prereqs(&prereqs()) {
        return;
    }
    let w = World::new("", "dovecot-virtual", &["dovecot"], "");
    let alice = "alice@example.com";
    w.plain_user(alice, PW);
    let (dovecot, postfix) = servers(&w, &[alice]);

    let argv = postfix.sendmail_argv();
    assert_eq!(
        argv[1..],
        ["-C".to_string(), postfix.conf_dir().display().to_string()]
    );
    assert!(
        postfix
            .sendmail_toml()
            .starts_with(&format!("[\"{}\", \"-C\", ", argv[0])),
        "{}",
        postfix.sendmail_toml()
    );

    // An empty INBOX first: a login before any delivery, so the count starts at 0.
    let mut imap = imap_open_inbox(dovecot.imap_addr(), ip(60), alice, PW);
    assert_eq!(imap.message_count(), 0, "INBOX of {alice} before any mail");

    let subject = "Two-factor authentication was turned on";
    let body = "Two-factor authentication was turned on for alice@example.com\n\
                on 2025-12-04 at 10:00 UTC from 127.0.0.5 (User Panel).\n\
                \n\
                If this was not you: change your password. Grüße, ünïcödé ✓\n\
                .\n\
                A line with only a dot above (sendmail -i keeps it).\n";
    let sent = Instant::now();
    postfix.sendmail(SENDER, alice, message(alice, subject, body).as_bytes());
    let count = imap.wait_for_messages(1, DELIVERY_WAIT);
    eprintln!(
        "delivery latency (sendmail start -> IMAP EXISTS): {:?}",
        sent.elapsed()
    );
    assert_eq!(count, 1, "messages in INBOX of {alice}");

    let mail = imap.fetch_mail(1);
    assert_eq!(mail.header("Subject").as_deref(), Some(subject));
    assert_eq!(mail.header_decoded("Subject").as_deref(), Some(subject));
    assert_eq!(mail.header("To").as_deref(), Some(alice));
    assert_eq!(mail.header("From").as_deref(), Some(SENDER));
    assert_eq!(
        mail.header("X-Mailmfa-Event").as_deref(),
        Some("mfa-enabled")
    );
    // The envelope: `-f SENDER` became Return-Path, the recipient Delivered-To.
    assert_eq!(
        mail.header("Return-Path").as_deref(),
        Some(format!("<{SENDER}>").as_str())
    );
    assert_eq!(mail.header("Delivered-To").as_deref(), Some(alice));
    assert_eq!(mail.body_text(), body, "body of the delivered mail");
    // Read with BODY.PEEK[]: still unseen.
    let (flags, result) = imap.command("FETCH 1 (FLAGS)");
    assert!(result.is_ok(), "FETCH FLAGS: {result:?}");
    assert!(
        flags
            .iter()
            .any(|l| l.contains("FLAGS (") && !l.contains("\\Seen")),
        "FETCH FLAGS: {flags:?}"
    );
    imap.logout();

    // Mail for a domain the instance does not deliver is still discarded; an address of the
    // domain that is not a listed mailbox bounces (and the bounce to SENDER is discarded).
    // Neither gets a home.
    postfix.sendmail(SENDER, "carol@example.org", b"Subject: elsewhere\n\nbody\n");
    postfix
        .log()
        .expect("the discard of carol@example.org", |l| {
            l.contains("to=<carol@example.org>")
                && l.contains("status=sent")
                && l.contains("discard")
        });
    postfix.sendmail(SENDER, "dave@example.com", b"Subject: unlisted\n\nbody\n");
    postfix.log().expect("the bounce of dave@example.com", |l| {
        l.contains("to=<dave@example.com>") && l.contains("status=bounced (unknown user")
    });

    // Uppercase in the recipient still reaches the (lower-case) home Dovecot reads.
    postfix.sendmail(
        SENDER,
        "Alice@Example.COM",
        message(alice, "Second", "two\n").as_bytes(),
    );
    let mails = imap_read_inbox(dovecot.imap_addr(), ip(61), alice, PW, 2, DELIVERY_WAIT);
    assert_eq!(mails.len(), 2, "messages in INBOX of {alice}");
    assert_eq!(mails[1].header("Subject").as_deref(), Some("Second"));
    assert_eq!(mails[1].body_text(), "two\n");
    let homes: Vec<String> = std::fs::read_dir(dovecot.home_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        homes,
        [alice],
        "homes under {}",
        dovecot.home_dir().display()
    );
}

#[test]
fn mailbox_with_mfa_reads_its_mail_with_one_code() {
    if !require_prereqs(&prereqs()) {
        return;
    }
    let w = World::new("", "dovecot-virtual", &["dovecot"], "");
    let bob = "bob@example.com";
    let record = w.mfa_user(bob);
    let (dovecot, postfix) = servers(&w, &[bob]);

    // Three mails, sent at once, each through its own sendmail process, in the encodings a
    // notifier might use: encoded-word subjects, quoted-printable and base64 bodies.
    let b64_subject = "Zwei-Faktor-Anmeldung geändert";
    let mails = [
        (
            format!("=?utf-8?B?{}?=", base64(b64_subject.as_bytes())),
            b64_subject,
            "8bit",
            "Grüße ✓\n".to_string(),
            "Grüße ✓\n",
        ),
        (
            "=?utf-8?Q?Neuer_Code_=E2=9C=93?= (recovery)".to_string(),
            "Neuer Code ✓ (recovery)",
            "quoted-printable",
            "Gr=C3=BC=C3=9Fe, a long line=\n continued; 1+1=3D2\n".to_string(),
            "Grüße, a long line continued; 1+1=2\n",
        ),
        (
            "Plain subject".to_string(),
            "Plain subject",
            "base64",
            format!("{}\n", base64("base64 body ✓\nline 2\n".as_bytes())),
            "base64 body ✓\nline 2\n",
        ),
    ];
    let started = Instant::now();
    std::thread::scope(|scope| {
        for (subject, _, cte, body, _) in &mails {
            let postfix = &postfix;
            scope.spawn(move || {
                let text = encoded_message(bob, subject, cte, body);
                postfix.sendmail(SENDER, bob, text.as_bytes());
            });
        }
    });

    // One login with password + code, then only NOOPs while waiting: a code is used once.
    step_margin(3);
    let mut imap = imap_open_inbox(dovecot.imap_addr(), ip(62), bob, &with_code(&record, 0));
    let count = imap.wait_for_messages(3, DELIVERY_WAIT);
    eprintln!("3 mails delivered in {:?}", started.elapsed());
    assert_eq!(count, 3, "messages in INBOX of {bob}");
    let mut got: Vec<(String, String)> = (1..=count)
        .map(|seq| {
            let mail = imap.fetch_mail(seq);
            (
                mail.header_decoded("Subject").unwrap_or_default(),
                mail.body_text(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = mails
        .iter()
        .map(|(_, subject, _, _, body)| (subject.to_string(), body.to_string()))
        .collect();
    want.sort();
    assert_eq!(got, want, "mails in INBOX of {bob}, decoded");
    imap.logout();
}
