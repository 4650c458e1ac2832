//! Notifications (issue 18) up to the MTA, through the real libpam and the real `mailmfa`
//! command: which logins and which changes put which event into the spool (and nothing of a
//! secret), that a broken or full spool leaves logins exactly as they were, and what one pass
//! of `mailmfa notify` does with the spool — one mail per event, alerts merged, failures
//! retried, nothing lost when it is killed. The MTA here is a script that stores what it is
//! given (and can be told to fail or hang): the mails through a real Postfix into a real
//! Dovecot mailbox are `integration_notify`.

mod fixture;
mod hostile;
mod skip;

use fixture::{code, login, wait_for_step_margin, Fixture};
use hostile::{field, mailmfa_lines, Mount};
use mailmfa::account::{self, Actor, Ctx, Face, Proof};
use mailmfa::pam::sys::effective_uid;
use mailmfa::store::Store;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const PW: &str = "T9D3K!px";
const IP: Option<&str> = Some("127.0.0.7");

/// A fixture with notifications on (`notify` lines added to `[notify]`), the virtual-mailbox
/// stack as service `mail`, alice with MFA and bob without; the MTA is `mta.sh`.
fn world(notify: &str) -> (Fixture, mailmfa::record::Record) {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.keep();
    fs::set_permissions(&base, fs::Permissions::from_mode(0o700)).unwrap();
    let mta = base.join("mta.sh");
    let out = base.join("mails");
    fs::create_dir(&out).unwrap();
    // Stores each mail (its arguments first) as mails/<n>; `fail` makes it fail, `hang`
    // makes it hang after it read the mail.
    fs::write(
        &mta,
        format!(
            "#!/bin/sh\nd={out}\n[ -e {base}/fail ] && {{ echo 'mta: queue file write error' >&2; exit 75; }}\n\
             f=$d/$(date +%s%N).$$\n{{ echo \"ARGS: $*\"; cat; }} > $f.tmp\n\
             [ -e {base}/hang ] && sleep 5\nmv $f.tmp $f\n",
            out = out.display(),
            base = base.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&mta, fs::Permissions::from_mode(0o755)).unwrap();
    let f = Fixture::with_config(&format!(
        "[notify]\nenabled = true\nspool_dir = \"{}\"\nsender = \"mailmfa@mail.example.com\"\n\
         sendmail = [\"{}\", \"-oi\"]\n{notify}",
        base.join("spool").display(),
        mta.display()
    ));
    f.install_example("dovecot-virtual", "mail", "");
    f.add_password(ALICE, PW);
    f.add_password(BOB, "secret123456");
    let record = f.enable(ALICE);
    (f, record)
}

fn base(f: &Fixture) -> PathBuf {
    f.settings
        .notify
        .spool_dir()
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The lines waiting in `new/` for `user`.
fn spooled(f: &Fixture, user: &str) -> Vec<String> {
    let path = f.settings.notify.spool_dir().join("new").join(user);
    fs::read_to_string(path)
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

fn value(line: &str, key: &str) -> Option<String> {
    line.split(' ')
        .find_map(|f| f.strip_prefix(&format!("{key}=")).map(str::to_string))
}

/// The lines spooled for `user`, checked to be of `kinds`, in that order.
fn expect_kinds(f: &Fixture, user: &str, kinds: &[&str]) -> Vec<String> {
    let lines = spooled(f, user);
    let got: Vec<String> = lines.iter().map(|l| value(l, "kind").unwrap()).collect();
    assert_eq!(got, kinds, "{lines:?}");
    lines
}

/// Checks `line`'s fields (`None`: the field is absent).
fn expect_fields(line: &str, fields: &[(&str, Option<&str>)]) {
    for (key, want) in fields {
        assert_eq!(value(line, key).as_deref(), *want, "{key} in {line}");
    }
}

/// The mails the MTA script received, oldest first.
fn mails(f: &Fixture) -> Vec<String> {
    let dir = base(f).join("mails");
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.ends_with(".tmp"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|n| fs::read_to_string(dir.join(n)).unwrap())
        .collect()
}

fn notify(f: &Fixture, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailmfa"))
        .arg("--config")
        .arg(&f.config)
        .arg("notify")
        .args(args)
        .output()
        .unwrap()
}

fn ctx<'a>(f: &'a Fixture, face: Face, client: Option<&'a str>) -> Ctx<'a> {
    Ctx {
        settings: &f.settings,
        euid: effective_uid(),
        now: fixture::now(),
        actor: Actor { face, client },
    }
}

#[test]
fn wrong_codes_after_the_right_password_spool_one_alert_each_alert_after() {
    let (f, rec) = world("alert_after = 3\n");
    wait_for_step_margin(4);
    // A wrong password with a wrong code never reaches `verify`: no alert, whatever the count.
    for n in 0..4 {
        let r = f.login("mail", ALICE, &format!("nope{}", code(&rec, 100 + n)), IP);
        assert!(!r.success());
    }
    assert!(spooled(&f, ALICE).is_empty());
    for n in 0..2 {
        let r = f.login("mail", ALICE, &format!("{PW}{}", code(&rec, 200 + n)), IP);
        assert_eq!(r.reason.as_deref(), Some("bad_code"));
    }
    assert!(
        spooled(&f, ALICE).is_empty(),
        "two wrong codes are no alert"
    );
    let third = code(&rec, 202);
    let r = f.login("mail", ALICE, &format!("{PW}{third}"), IP);
    assert_eq!(
        r.reason.as_deref(),
        Some("bad_code"),
        "the alert changes no answer"
    );
    let lines = spooled(&f, ALICE);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    for (key, want) in [
        ("kind", "code-wrong"),
        ("user", ALICE),
        ("face", "login"),
        ("service", "mail"),
        ("client", "127.0.0.7"),
        ("count", "3"),
    ] {
        assert_eq!(value(line, key).as_deref(), Some(want), "{key} in {line}");
    }
    assert_eq!(
        value(line, "throttled"),
        None,
        "3 of max_failures 5: not yet"
    );
    assert!(
        !line.contains(&third) && !line.contains(PW),
        "no code, no password: {line}"
    );
    // Three more from another address: the login's sixth failure is the next alert.
    for n in 0..3 {
        let _ = f.login(
            "mail",
            ALICE,
            &format!("{PW}{}", code(&rec, 300 + n)),
            Some("127.0.0.8"),
        );
    }
    let lines = spooled(&f, ALICE);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(value(&lines[1], "count").as_deref(), Some("6"));
    // A right code and bob (no MFA) spool nothing.
    let r = f.login(
        "mail",
        ALICE,
        &format!("{PW}{}", code(&rec, 0)),
        Some("127.0.0.9"),
    );
    assert!(r.success(), "{r:?}");
    assert!(f.login("mail", BOB, "secret123456", IP).success());
    assert_eq!(spooled(&f, ALICE).len(), 2);
    assert!(spooled(&f, BOB).is_empty());
}

#[test]
fn the_throttle_tripping_is_said_in_the_alert() {
    let (f, rec) = world("");
    wait_for_step_margin(4);
    for n in 0..5 {
        let _ = f.login("mail", ALICE, &format!("{PW}{}", code(&rec, 100 + n)), IP);
    }
    let lines = spooled(&f, ALICE);
    assert_eq!(
        lines.len(),
        1,
        "default alert_after is max_failures: {lines:?}"
    );
    assert_eq!(value(&lines[0], "count").as_deref(), Some("5"));
    assert_eq!(value(&lines[0], "throttled").as_deref(), Some("yes"));
    // Refused outright while throttled: counted nowhere, no further alert.
    let r = f.login("mail", ALICE, &format!("{PW}{}", code(&rec, 200)), IP);
    assert_eq!(r.reason.as_deref(), Some("throttled"));
    assert_eq!(spooled(&f, ALICE).len(), 1);
}

#[test]
fn a_recovery_code_used_at_login_spools_how_many_are_left_and_never_the_code() {
    let (f, _) = world("");
    let codes = account::new_recovery_codes(&ctx(&f, Face::Command, None), &login(ALICE)).unwrap();
    let r = f.login("mail", ALICE, &format!("{PW}{}", codes[3].as_str()), IP);
    assert_eq!(r.reason.as_deref(), Some("recovery_code"), "{r:?}");
    let lines = expect_kinds(&f, ALICE, &["recovery-codes-created", "recovery-code-used"]);
    expect_fields(&lines[0], &[("count", Some("10"))]);
    expect_fields(&lines[1], &[("left", Some("9"))]);
    let all = lines.join("\n");
    for c in &codes {
        assert!(!all.contains(c.as_str()), "no recovery code in the spool");
    }
}

#[test]
fn every_change_of_the_account_layer_spools_its_event_with_face_and_client() {
    let (f, _) = world("");
    let who = login(ALICE);
    let panel = ctx(&f, Face::Panel, Some("198.51.100.4"));
    let added = account::add_app_password(&panel, &who, "thunderbird", &[], None).unwrap();
    account::revoke_app_password(&panel, &who, "thunderbird").unwrap();
    // The webmail plugin's session credentials are internal: no mail at each webmail login.
    let webmail = ctx(&f, Face::Webmail, Some("198.51.100.5"));
    let _ = account::new_session_credential(
        &webmail,
        &who,
        &["127.0.0.1".to_string()],
        &["imap".to_string()],
        3600,
    )
    .unwrap();
    account::disable(&ctx(&f, Face::Admin, None), &who, Proof::Force, "").unwrap();
    let lines = expect_kinds(
        &f,
        ALICE,
        &[
            "app-password-created",
            "app-password-revoked",
            "mfa-disabled",
        ],
    );
    expect_fields(
        &lines[0],
        &[
            ("name", Some("thunderbird")),
            ("face", Some("panel")),
            ("client", Some("198.51.100.4")),
        ],
    );
    expect_fields(
        &lines[2],
        &[("how", Some("force")), ("face", Some("admin"))],
    );
    assert!(!lines.join("\n").contains(added.password.as_str()));
}

#[test]
fn with_notifications_off_nothing_is_spooled_or_created() {
    let f = Fixture::with_config("[notify]\nenabled = false\nspool_dir = \"/nonexistent/spool\"\n");
    f.install_example("dovecot-virtual", "mail", "");
    f.add_password(ALICE, PW);
    let rec = f.enable(ALICE);
    for n in 0..5 {
        let _ = f.login("mail", ALICE, &format!("{PW}{}", code(&rec, 100 + n)), IP);
    }
    account::add_app_password(&ctx(&f, Face::Command, None), &login(ALICE), "x", &[], None)
        .unwrap();
    assert!(!Path::new("/nonexistent").exists());
}

#[test]
fn one_pass_mails_each_event_once_merges_alerts_and_removes_what_it_sent() {
    let (f, rec) = world("alert_after = 1\npanel_url = \"https://mail.example.com/mfa/\"\n");
    let who = login(ALICE);
    let cmd = ctx(&f, Face::Command, None);
    account::add_app_password(&cmd, &who, "phone", &[], None).unwrap();
    wait_for_step_margin(4);
    for n in 0..2 {
        let _ = f.login("mail", ALICE, &format!("{PW}{}", code(&rec, 100 + n)), IP);
    }
    let out = notify(&f, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["events"], 3, "{report}");
    assert_eq!(
        report["sent"], 2,
        "one app password mail, one alert: {report}"
    );
    assert_eq!(report["held"], 0);
    let got = mails(&f);
    assert_eq!(got.len(), 2);
    let app = got
        .iter()
        .find(|m| m.contains("X-Mailmfa-Event: app-password-created"))
        .unwrap();
    assert!(app.starts_with("ARGS: -oi -i -f mailmfa@mail.example.com -- alice@example.com\n"));
    for fact in [
        "\nSubject: A new app password was made for alice@example.com\n",
        "\nAuto-Submitted: auto-generated\n",
        "\"phone\"",
        "the mailmfa command, by an administrator",
        "https://mail.example.com/mfa/",
    ] {
        assert!(app.contains(fact), "{fact} in\n{app}");
    }
    let alert = got
        .iter()
        .find(|m| m.contains("X-Mailmfa-Event: code-wrong"))
        .unwrap();
    assert!(alert.contains("2 wrong codes from 127.0.0.7"), "{alert}");
    assert!(
        alert.contains("1 wrong codes from 127.0.0.7"),
        "both alerts in one mail: {alert}"
    );
    let spool = f.settings.notify.spool_dir();
    for sub in ["new", "cur", "out", "held"] {
        assert_eq!(
            fs::read_dir(spool.join(sub)).unwrap().count(),
            0,
            "{sub} is empty"
        );
    }
    // Within alert_every the next alert is held, not mailed; the pass after says so again.
    let _ = f.login("mail", ALICE, &format!("{PW}{}", code(&rec, 300)), IP);
    let report: serde_json::Value =
        serde_json::from_slice(&notify(&f, &["--json"]).stdout).unwrap();
    assert_eq!(
        (report["events"].as_u64(), report["sent"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(report["held"], 1, "{report}");
    assert_eq!(mails(&f).len(), 2);
    assert!(spool.join("held").join(ALICE).exists());
}

#[test]
fn a_failing_mta_defers_with_a_log_line_and_retry_now_delivers_once() {
    let (f, _) = world("");
    fs::write(base(&f).join("fail"), "").unwrap();
    let cmd = ctx(&f, Face::Command, None);
    account::add_app_password(&cmd, &login(ALICE), "phone", &[], None).unwrap();
    let out = notify(&f, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a deferred mail waits; the pass is done"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not sent (try 1)"), "{stderr}");
    assert!(
        stderr.contains("mta: queue file write error"),
        "the MTA's own words: {stderr}"
    );
    assert!(stderr.contains("next try in 60 s"), "{stderr}");
    let waiting = fs::read_dir(f.settings.notify.spool_dir().join("out"))
        .unwrap()
        .count();
    assert_eq!(waiting, 1, "kept for the retry");
    // Not due yet: a plain pass leaves it; the MTA fixed, --retry-now sends it, once.
    fs::remove_file(base(&f).join("fail")).unwrap();
    let out = notify(&f, &["--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["sent"].as_u64(), report["waiting"].as_u64()),
        (Some(0), Some(1))
    );
    let out = notify(&f, &["--retry-now", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sent"], 1, "{report}");
    assert_eq!(mails(&f).len(), 1);
    assert_eq!(
        notify(&f, &["--retry-now", "--json"]).status.code(),
        Some(0)
    );
    assert_eq!(mails(&f).len(), 1, "sent once");
}

#[test]
fn a_notifier_killed_while_the_mta_works_loses_nothing_and_repeats_at_most_that_mail() {
    let (f, _) = world("");
    let cmd = ctx(&f, Face::Command, None);
    for name in ["one", "two", "three"] {
        account::add_app_password(&cmd, &login(ALICE), name, &[], None).unwrap();
    }
    // The MTA hangs on the first mail; the notifier is killed then.
    fs::write(base(&f).join("hang"), "").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailmfa"))
        .arg("--config")
        .arg(&f.config)
        .arg("notify")
        .spawn()
        .unwrap();
    let mails_dir = base(&f).join("mails");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while fs::read_dir(&mails_dir).unwrap().count() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the MTA was never called"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    fs::remove_file(base(&f).join("hang")).unwrap();
    // The killed pass's MTA finishes by itself (it took the mail); the next pass sends all
    // three again from out/ — the one in flight is the one that may arrive twice.
    let out = notify(&f, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(std::time::Duration::from_secs(6));
    fixture::assert_at_least_once(&mails(&f), &["one", "two", "three"]);
}

/// A login with the spool on a full file system, and with the spool unusable: the answers
/// are those of a login without notifications, and each lost event is one warning line.
fn broken_spool_leaves_logins_alone() {
    let logs = hostile::private_dev_log();
    let (f, rec) = world("alert_after = 1\n");
    let spool = f.settings.notify.spool_dir().to_path_buf();
    fs::create_dir_all(&spool).unwrap();
    fs::set_permissions(&spool, fs::Permissions::from_mode(0o700)).unwrap();
    let mount = Mount::tmpfs(&spool, 16);
    fs::create_dir(spool.join("new")).unwrap();
    fs::set_permissions(spool.join("new"), fs::Permissions::from_mode(0o700)).unwrap();
    hostile::fill_up(mount.path());
    wait_for_step_margin(6);
    let wrong = f.login("mail", ALICE, &format!("{PW}{}", code(&rec, 100)), IP);
    assert_eq!(wrong.reason.as_deref(), Some("bad_code"));
    let right = f.login(
        "mail",
        ALICE,
        &format!("{PW}{}", code(&rec, 0)),
        Some("127.0.0.9"),
    );
    assert!(right.success(), "{right:?}");
    let lines = mailmfa_lines(&logs.take());
    let failed: Vec<_> = lines
        .iter()
        .filter(|l| field(l, "reason") == "notify_spool_failed")
        .collect();
    assert_eq!(
        failed.len(),
        1,
        "one warning for the one lost alert: {lines:?}"
    );
    assert!(
        failed[0].contains("No space left on device"),
        "{}",
        failed[0]
    );
    drop(mount);

    // The spool dir open to everyone: refused, logged, the login unchanged.
    fs::set_permissions(&spool, fs::Permissions::from_mode(0o777)).unwrap();
    let wrong = f.login("mail", ALICE, &format!("{PW}{}", code(&rec, 101)), IP);
    assert_eq!(wrong.reason.as_deref(), Some("bad_code"));
    let lines = mailmfa_lines(&logs.take());
    assert!(
        lines
            .iter()
            .any(|l| field(l, "reason") == "notify_spool_failed" && l.contains("has mode 0777")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| field(l, "reason") == "bad_code"));
}

#[test]
fn a_full_or_unsafe_spool_changes_no_login_and_logs_one_warning() {
    const NAME: &str = "a_full_or_unsafe_spool_changes_no_login_and_logs_one_warning";
    match hostile::role().as_deref() {
        Some(hostile::IN_NAMESPACE) => broken_spool_leaves_logins_alone(),
        Some(other) => panic!("unknown role {other}"),
        None => {
            hostile::rerun_in_namespace(NAME, &[]);
        }
    }
}

/// `mailmfa doctor --json`'s findings that start with `notify:`, as (level, what).
fn doctor_notify(f: &Fixture) -> Vec<(String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_mailmfa"))
        .arg("--config")
        .arg(&f.config)
        .args(["doctor", "--json", "--pam-dir"])
        .arg(&f.confdir)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["level"].as_str().unwrap().to_string(),
                x["what"].as_str().unwrap().to_string(),
            )
        })
        .filter(|(_, what)| what.starts_with("notify:"))
        .collect()
}

#[test]
fn doctor_checks_the_spool_the_mta_the_texts_and_mails_waiting_for_a_retry() {
    let (f, _) = world("");
    let found = doctor_notify(&f);
    let level_of = |found: &[(String, String)], part: &str| {
        found
            .iter()
            .find(|(_, what)| what.contains(part))
            .map(|(level, _)| level.clone())
            .unwrap_or_else(|| panic!("no finding with `{part}`: {found:?}"))
    };
    assert_eq!(level_of(&found, "does not exist yet"), "warning");
    assert_eq!(level_of(&found, "the MTA is"), "ok");
    assert_eq!(
        level_of(&found, "mails come from mailmfa@mail.example.com"),
        "info"
    );

    fs::write(base(&f).join("fail"), "").unwrap();
    account::add_app_password(&ctx(&f, Face::Command, None), &login(ALICE), "x", &[], None)
        .unwrap();
    assert_eq!(notify(&f, &[]).status.code(), Some(0));
    let found = doctor_notify(&f);
    assert_eq!(level_of(&found, "is usable"), "ok");
    assert_eq!(level_of(&found, "1 mails wait for a retry"), "warning");

    // A translation without its Subject line, and an MTA that is not there.
    let texts = base(&f).join("texts");
    fs::create_dir(&texts).unwrap();
    fs::write(texts.join("mfa-disabled.txt"), "Hallo {login}\n").unwrap();
    let config = fs::read_to_string(&f.config)
        .unwrap()
        .replace(
            "[notify]\n",
            &format!("[notify]\ntemplates_dir = \"{}\"\n", texts.display()),
        )
        .replace("mta.sh", "no-such-mta");
    fs::write(&f.config, config).unwrap();
    let found = doctor_notify(&f);
    assert_eq!(
        level_of(&found, "mfa-disabled.txt: does not start with `Subject:`"),
        "warning"
    );
    assert_eq!(level_of(&found, "is not an executable file"), "error");
}

#[test]
fn turning_mfa_off_with_a_recovery_code_is_one_event_that_says_so() {
    let (f, _) = world("");
    let who = login(ALICE);
    let cmd = ctx(&f, Face::Command, None);
    let codes = account::new_recovery_codes(&cmd, &who).unwrap();
    // A page's code check with a recovery code: used, and said.
    let panel = ctx(&f, Face::Panel, Some("198.51.100.4"));
    account::check_code(&panel, &who, codes[0].as_str(), "198.51.100.4").unwrap();
    account::disable(&panel, &who, Proof::Code(codes[1].as_str()), "198.51.100.4").unwrap();
    let lines = expect_kinds(
        &f,
        ALICE,
        &[
            "recovery-codes-created",
            "recovery-code-used",
            "mfa-disabled",
        ],
    );
    expect_fields(&lines[1], &[("left", Some("9"))]);
    expect_fields(
        &lines[2],
        &[
            ("how", Some("recovery-code")),
            ("client", Some("198.51.100.4")),
        ],
    );
}

#[test]
fn the_notifier_removes_expired_app_passwords_and_tells_their_owner() {
    let (f, _) = world("");
    let who = login(ALICE);
    let cmd = ctx(&f, Face::Command, None);
    account::add_app_password(&cmd, &who, "laptop", &[], Some(fixture::now() + 1)).unwrap();
    account::add_app_password(&cmd, &who, "phone", &[], None).unwrap();
    fixture::wait_for_unix_time(fixture::now() + 2);
    let out = notify(&f, &["--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["expired"], 1, "{report}");
    assert_eq!(report["sent"], 3, "two made, one expired: {report}");
    let names: Vec<String> = f
        .store()
        .read_record(&who)
        .unwrap()
        .unwrap()
        .app_passwords
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["phone"]);
    let expired = mails(&f)
        .into_iter()
        .find(|m| m.contains("X-Mailmfa-Event: app-password-expired"))
        .expect("the expiry mail");
    assert!(expired.contains("\"laptop\""), "{expired}");
    // Once: the next pass finds nothing to expire.
    let report: serde_json::Value =
        serde_json::from_slice(&notify(&f, &["--json"]).stdout).unwrap();
    assert_eq!(
        (report["expired"].as_u64(), report["sent"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn a_bad_translation_sends_the_builtin_text_and_a_stray_in_new_is_removed() {
    let (f, _) = world("");
    let texts = base(&f).join("texts");
    fs::create_dir(&texts).unwrap();
    fs::write(
        texts.join("app-password-created.txt"),
        "Subject: Neues App-Passwort {name}\n\nFür {login}: {colour}\n",
    )
    .unwrap();
    fs::write(
        texts.join("app-password-revoked.txt"),
        "Subject: App-Passwort {name} widerrufen\n\nFür {login}, von {client}.\n",
    )
    .unwrap();
    let config = fs::read_to_string(&f.config).unwrap().replace(
        "[notify]\n",
        &format!("[notify]\ntemplates_dir = \"{}\"\n", texts.display()),
    );
    fs::write(&f.config, config).unwrap();
    let cmd = ctx(&f, Face::Command, None);
    account::add_app_password(&cmd, &login(ALICE), "tablet", &[], None).unwrap();
    account::revoke_app_password(&cmd, &login(ALICE), "tablet").unwrap();
    let new = f.settings.notify.spool_dir().join("new");
    fs::write(new.join("Not A Login"), "v=1 junk\n").unwrap();
    let out = notify(&f, &["--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`{colour}` is not a placeholder"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the built-in app-password-created text is sent instead"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Not A Login: not named after a login"),
        "{stderr}"
    );
    assert_eq!(fs::read_dir(&new).unwrap().count(), 0, "new/ is left empty");
    let got = mails(&f);
    assert_eq!(got.len(), 2);
    assert!(got
        .iter()
        .any(|m| m.contains("Subject: A new app password was made for")));
    let revoked = got
        .iter()
        .find(|m| m.contains("widerrufen"))
        .expect("the translation");
    assert!(
        revoked.contains("Subject: =?UTF-8?Q?App-Passwort_tablet_widerrufen?=")
            || revoked.contains("Subject: App-Passwort tablet widerrufen"),
        "{revoked}"
    );
    assert!(
        !revoked.contains("von "),
        "the line with {{client}} is left out when the command has no client: {revoked}"
    );
}
