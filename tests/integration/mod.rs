// Shared support for the `integration_*` tests (real Dovecot, Postfix, saslauthd with the built
// module): a `World` (the libpam fixture's config, records, state and pam.d dir, used as the
// servers' /etc/pam.d), parsing of the module's syslog lines, the "no secret in any line"
// check, and the `mailmfa` command. Owned by the integration tests; the servers themselves are
// tests/servers/, the libpam fixture tests/fixture/.
#![allow(dead_code)]

use crate::fixture::{self, Fixture};
use crate::servers::{self, Login, SyslogReceiver};
use mailmfa::credential;
use mailmfa::record::{AppPassword, Record};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;

/// The password of every test mailbox (with MFA or without).
pub const PW: &str = "T9D3K!px";

/// A mailbox without MFA whose password ends in six digits: it must pass untouched.
pub const DIGITS_PW: &str = "summer2024123456";

/// What every Dovecot test needs.
pub const DOVECOT_PREREQS: &[&str] = &[
    "dovecot",
    "doveconf",
    "unshare",
    "openssl",
    "pam_pwdfile.so",
    "pam_permit.so",
];

/// What the Postfix-through-Dovecot tests need.
pub const POSTFIX_DOVECOT_PREREQS: &[&str] = &[
    "dovecot",
    "doveconf",
    "postfix",
    "postconf",
    "unshare",
    "openssl",
    "pam_pwdfile.so",
    "pam_permit.so",
];

/// What the Postfix-through-saslauthd tests need.
pub const POSTFIX_SASLAUTHD_PREREQS: &[&str] = &[
    "postfix",
    "postconf",
    "saslauthd",
    "testsaslauthd",
    "unshare",
    "openssl",
    "pam_pwdfile.so",
    "pam_permit.so",
];

/// 127.0.0.`last`: a distinct client address (never use 1: that is the servers' own).
pub fn ip(last: u8) -> Ipv4Addr {
    assert!(last > 1, "127.0.0.1 is not a test client address");
    Ipv4Addr::new(127, 0, 0, last)
}

/// One test's mailboxes: the libpam fixture (config 0600, record and state dirs 0700, a
/// pam.d dir with a deny-all `other`, the pam_pwdfile password file) whose pam.d dir becomes
/// /etc/pam.d of the servers.
pub struct World {
    /// The fixture; `f.confdir` is the servers' /etc/pam.d.
    pub f: Fixture,
}

impl World {
    /// A world whose `mailmfa.toml` has `extra` appended, with `example` (a file of
    /// pam.d-examples/) installed as each of `services`, its mailmfa lines given `args`.
    ///
    /// The stacks name the built module through a symlink called `pam_mailmfa.so`, its
    /// installed name: libpam takes the `pam_syslog` prefix from the file name, so the lines
    /// read `pam_mailmfa(dovecot:auth): ...` as on a real server (through the fixture's
    /// `target/.../libmailmfa.so` they would read `libmailmfa(...)`).
    pub fn new(extra_config: &str, example: &str, services: &[&str], args: &str) -> World {
        let f = Fixture::with_config(extra_config);
        let installed = f.dir.path().join("pam_mailmfa.so");
        std::os::unix::fs::symlink(fixture::module_path(), &installed).expect("symlink module");
        let w = World { f };
        for service in services {
            w.install(example, service, args);
        }
        w
    }

    /// Installs `pam.d-examples/<example>` as `service` (adapted like the libpam fixture does:
    /// module path, `config=`, the password file, `args` on both mailmfa lines), naming the
    /// module as `pam_mailmfa.so`; returns the installed text.
    pub fn install(&self, example: &str, service: &str, args: &str) -> String {
        let built = fixture::module_path().display().to_string();
        let installed = self.f.dir.path().join("pam_mailmfa.so");
        let text = self.f.install_example(example, service, args);
        assert!(
            text.contains(&built),
            "{example} names no mailmfa line: {text}"
        );
        let text = text.replace(&built, &installed.display().to_string());
        std::fs::write(self.f.confdir.join(service), &text).expect("write service");
        text
    }

    /// The pam.d dir to hand to `Dovecot::start` / `Saslauthd::start_with`.
    pub fn pam_d(&self) -> &Path {
        &self.f.confdir
    }

    /// A Dovecot on this world's stacks (PAM service `service`, e.g. `dovecot` or `%s`),
    /// without the per-address auth penalty, so that tests may fail logins from one address.
    pub fn dovecot(&self, service: &str) -> servers::Dovecot {
        servers::Dovecot::start(
            self.pam_d(),
            service,
            &servers::DovecotOpts {
                disable_auth_penalty: true,
                ..Default::default()
            },
        )
    }

    /// A saslauthd on this world's stacks, handing PAM the whole mail address (`-r`) and
    /// caching nothing.
    pub fn saslauthd(&self) -> servers::Saslauthd {
        servers::Saslauthd::start_with(
            self.pam_d(),
            &servers::SaslauthdOpts {
                realm_in_login: true,
                cache: false,
            },
        )
    }

    /// A mailbox with password `PW` and MFA on (a record written with the library).
    pub fn mfa_user(&self, user: &str) -> Record {
        self.f.add_password(user, PW);
        self.f.enable(user)
    }

    /// A mailbox without MFA.
    pub fn plain_user(&self, user: &str, password: &str) {
        self.f.add_password(user, password);
    }

    /// Rewrites `user`'s record (as the command would: the library's store).
    pub fn save(&self, user: &str, record: &Record) {
        self.f.save(user, record);
    }

    /// Adds an app password named `name` for `services` ([] = all) to `user`'s record and
    /// returns it (`abcde-fghij-klmno-pqrst`, made like the command makes them).
    pub fn add_app_password(
        &self,
        user: &str,
        record: &mut Record,
        name: &str,
        services: &[&str],
        expires: Option<u64>,
    ) -> String {
        let password = credential::random_letters(credential::APP_PASSWORD_LETTERS, 5)
            .expect("random letters")
            .to_string();
        let letters = credential::app_password_letters(password.as_bytes()).unwrap();
        record.app_passwords.push(AppPassword {
            name: name.into(),
            hash: credential::hash(&letters, &credential::random_salt().unwrap()),
            services: services.iter().map(|s| s.to_string()).collect(),
            created: fixture::now(),
            expires,
            from: Vec::new(),
        });
        self.save(user, record);
        password
    }

    /// Gives `user` a fresh set of recovery codes (`abcd-efgh-ijkl`) and returns them.
    pub fn add_recovery_codes(&self, user: &str, record: &mut Record) -> Vec<String> {
        self.f.add_recovery_codes(user, record)
    }

    /// Runs `mailmfa --config CONFIG ARGS...`; returns (exit code, stdout, stderr).
    pub fn mailmfa(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_mailmfa"))
            .arg("--config")
            .arg(&self.f.config)
            .args(args)
            .output()
            .expect("run mailmfa");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs `mailmfa --config CONFIG ARGS...`, which must succeed; returns its stdout.
    pub fn mailmfa_ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.mailmfa(args);
        assert_eq!(code, 0, "mailmfa {}: {out}{err}", args.join(" "));
        out
    }

    /// Runs `mailmfa --config CONFIG ARGS...` (ARGS with `--json`), which must succeed;
    /// returns its stdout as JSON.
    pub fn mailmfa_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.mailmfa_ok(args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("mailmfa {}: not JSON ({e}): {out}", args.join(" ")))
    }
}

/// `password + code`, what a client sends.
pub fn with_code(record: &Record, steps: i64) -> String {
    format!("{PW}{}", fixture::code(record, steps))
}

/// A code of the record's length that matches no step within ±3 of now.
pub fn wrong_code(record: &Record) -> String {
    wrong_codes(record, 1).remove(0)
}

/// `n` different codes that match no step within ±3 of now.
pub fn wrong_codes(record: &Record, n: usize) -> Vec<String> {
    let near: Vec<String> = (-3..=3).map(|s| fixture::code(record, s)).collect();
    let mut out: Vec<String> = Vec::new();
    let mut next = fixture::code(record, 0).parse::<u32>().unwrap();
    while out.len() < n {
        next = (next + 100_003) % 1_000_000;
        let text = format!("{next:06}");
        if !near.contains(&text) && !out.contains(&text) {
            out.push(text);
        }
    }
    out
}

/// Waits until at least `margin` seconds remain in the current 30 s step.
pub fn step_margin(margin: u64) {
    fixture::wait_for_step_margin(margin);
}

/// One `pam_mailmfa(...)` syslog line, split into its fields.
#[derive(Clone, Debug)]
pub struct MfaLine {
    /// The line as received (with the `<NN>` priority and the date).
    pub raw: String,
    /// The `key=value` fields.
    pub fields: Vec<(String, String)>,
}

impl MfaLine {
    /// Parses a raw syslog line; None if it is not one of the module's decision lines.
    pub fn parse(raw: &str) -> Option<MfaLine> {
        let start = raw.find("pam_mailmfa(")?;
        let rest = &raw[start..];
        let body = rest.split_once("): ")?.1;
        let mut fields = Vec::new();
        let mut chars = body.trim_end().chars().peekable();
        while chars.peek().is_some() {
            let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                let mut escaped = false;
                for c in chars.by_ref() {
                    match (escaped, c) {
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        _ => {
                            escaped = false;
                            value.push(c);
                        }
                    }
                }
                if chars.peek() == Some(&' ') {
                    chars.next();
                }
            } else {
                value = chars.by_ref().take_while(|&c| c != ' ').collect();
            }
            fields.push((key.trim().to_string(), value));
        }
        Some(MfaLine {
            raw: raw.to_string(),
            fields,
        })
    }

    /// The value of `key` (empty if absent).
    pub fn get(&self, key: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// `phase=`.
    pub fn phase(&self) -> &str {
        self.get("phase")
    }
    /// `user=`.
    pub fn user(&self) -> &str {
        self.get("user")
    }
    /// `rhost=`.
    pub fn rhost(&self) -> &str {
        self.get("rhost")
    }
    /// `result=`.
    pub fn result(&self) -> &str {
        self.get("result")
    }
    /// `reason=`.
    pub fn reason(&self) -> &str {
        self.get("reason")
    }
    /// `service=`.
    pub fn service(&self) -> &str {
        self.get("service")
    }
}

/// The module's decision lines among `lines`.
pub fn mfa_lines(lines: &[String]) -> Vec<MfaLine> {
    lines.iter().filter_map(|l| MfaLine::parse(l)).collect()
}

/// Waits until every line logged before this call has reached `syslog` (a marker datagram
/// sent after them has been received: [`SyslogReceiver::sync`]), so that a line missing then
/// was never sent. No quiet window: PAM modules log before the server answers the client.
pub fn settle(syslog: &SyslogReceiver) {
    syslog.sync();
}

/// The module's lines received after `mark` for `user` (once the receiver settled).
pub fn lines_since(syslog: &SyslogReceiver, mark: usize, user: &str) -> Vec<MfaLine> {
    settle(syslog);
    mfa_lines(&syslog.lines()[mark..])
        .into_iter()
        .filter(|l| l.user() == user)
        .collect()
}

/// Waits (up to 5 s) for the module's line after `mark` for `user` from `rhost` in `phase`,
/// and checks its result and reason; returns it. Panics with every captured line otherwise.
pub fn expect_line(
    syslog: &SyslogReceiver,
    mark: usize,
    user: &str,
    rhost: &str,
    phase: &str,
    result: &str,
    reason: &str,
) -> MfaLine {
    let found = syslog.wait_for_since(mark, servers::DEFAULT_WAIT, |l| {
        MfaLine::parse(l)
            .map(|m| m.user() == user && m.rhost() == rhost && m.phase() == phase)
            .unwrap_or(false)
    });
    let Some(raw) = found else {
        panic!(
            "no {phase} line for {user} from {rhost} (wanted result={result} reason={reason}); \
             captured:\n{}",
            syslog.lines().join("\n")
        );
    };
    let line = MfaLine::parse(&raw).unwrap();
    assert_eq!(
        (line.result(), line.reason()),
        (result, reason),
        "{phase} line for {user} from {rhost}: {raw}"
    );
    line
}

/// The verdict of one login: the last line of the module for `user` after `mark` (the
/// decision that ended the stack), after the receiver settled.
pub fn last_reason(syslog: &SyslogReceiver, mark: usize, user: &str) -> (String, String) {
    let lines = lines_since(syslog, mark, user);
    let last = lines.last().unwrap_or_else(|| {
        panic!(
            "no pam_mailmfa line for {user} after line {mark}; captured:\n{}",
            syslog.lines().join("\n")
        )
    });
    (last.result().to_string(), last.reason().to_string())
}

/// The message part of a syslog line (after `<NN>Mon DD HH:MM:SS ident[pid]: `), where a
/// secret could hide; the header holds only a date and a pid.
pub fn message(raw: &str) -> &str {
    // `<NN>` then a 15-character date and a space, then `ident[pid]: `.
    let after_pri = raw.split_once('>').map(|(_, r)| r).unwrap_or(raw);
    let after_date = after_pri.get(16..).unwrap_or(after_pri);
    after_date
        .split_once(": ")
        .map(|(_, m)| m)
        .unwrap_or(after_date)
}

/// Asserts that no captured line (the module's, or anyone else's in the servers' syslog) holds
/// any of `secrets` (passwords, codes, base32 secrets, app passwords, recovery codes) in any
/// letter case; and that there was at least one line of the module to check.
pub fn assert_no_secrets(lines: &[String], secrets: &[String]) {
    assert!(
        !mfa_lines(lines).is_empty(),
        "no pam_mailmfa line was captured at all"
    );
    // App passwords and recovery codes also count without their dashes.
    let mut all: Vec<String> = secrets.to_vec();
    all.extend(
        secrets
            .iter()
            .filter(|s| s.contains('-'))
            .map(|s| s.replace('-', "")),
    );
    for raw in lines {
        let msg = message(raw).to_ascii_lowercase();
        for secret in all.iter().filter(|s| !s.is_empty()) {
            assert!(
                !msg.contains(&secret.to_ascii_lowercase()),
                "a syslog line holds a secret ({} chars): {raw}",
                secret.len()
            );
        }
    }
}

/// The secrets of a record that a line must never show: its base32 secret and the codes of
/// the steps around now (the ones a test may have sent).
pub fn record_secrets(record: &Record) -> Vec<String> {
    let mut out = vec![record.secret_base32().to_string()];
    out.extend((-4..=4).map(|s| fixture::code(record, s)));
    out
}

/// Runs `n` IMAP logins at once (a barrier releases them together) from `src`; the results in
/// connection order.
pub fn parallel_imap(
    n: usize,
    server: SocketAddr,
    src: Ipv4Addr,
    user: &str,
    pass: &str,
) -> Vec<Login> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let barrier = barrier.clone();
            let (user, pass) = (user.to_string(), pass.to_string());
            std::thread::spawn(move || {
                let mut client = servers::ImapClient::connect(server, src);
                barrier.wait();
                let result = client.login(&user, &pass);
                if result.is_ok() {
                    let (_, select) = client.command("SELECT INBOX");
                    assert!(select.is_ok(), "SELECT INBOX after login: {select:?}");
                }
                client.logout();
                result
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Counts the module's `verify` reasons for `user` after `mark`.
pub fn verify_reasons(syslog: &SyslogReceiver, mark: usize, user: &str) -> Vec<String> {
    lines_since(syslog, mark, user)
        .into_iter()
        .filter(|l| l.phase() == "verify")
        .map(|l| l.reason().to_string())
        .collect()
}

/// Asserts that the module wrote exactly one line for `user` after `mark`: one line per login
/// decision (`split` passes a login on without a line; the phase that decided writes it).
pub fn assert_one_line(syslog: &SyslogReceiver, mark: usize, user: &str) {
    let lines = lines_since(syslog, mark, user);
    assert_eq!(lines.len(), 1, "one line per login for {user}: {lines:?}");
}

/// Asserts that the module wrote no line for `user` after `mark`: the password module refused
/// the password, so `verify` never ran and `split` had passed the login on without a line (the
/// code taken off was therefore not used up).
pub fn assert_no_line(syslog: &SyslogReceiver, mark: usize, user: &str) {
    let lines = lines_since(syslog, mark, user);
    assert!(
        lines.is_empty(),
        "no line of ours after a wrong password for {user}: {lines:?}"
    );
}
