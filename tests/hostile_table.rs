//! Hostile input, table-driven (issue 7, item 1): login names, passwords, files, arguments and
//! config that an attacker or a broken machine hands the module, each run through the real
//! libpam with the built module and the virtual-mailbox stack of `pam.d-examples/`. Every
//! case states its outcome (deny with a named reason, accept, or pass-through for a mailbox
//! without MFA) and checks the module's log lines, captured from a private `/dev/log`: the
//! documented `key=value` fields, the case's reason, and no password, code or secret.
//!
//! The cases run in a child of this test inside a private mount namespace (`unshare -m`):
//! it gets its own `/dev` with `/dev/log` as a socket this process reads, and can make the
//! state directory read-only with a bind mount. Nothing outlives the child. This file also
//! owns the pure checks of what a C string cannot carry (NUL).

mod fixture;
mod hostile;

use fixture::{wait_for_step_margin, Fixture};
use hostile::{contains, field, fields, mailmfa_lines, message, LogSink, Mount};
use mailmfa::login::{Login, LoginError};
use mailmfa::pam::client::{self, Request, Response};
use mailmfa::record::Record;
use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const PW: &str = "T9D3K!px";
const BOB_PW: &str = "secret123456";
const IP1: &str = "127.0.0.2";
const IP2: &str = "127.0.0.3";
/// Put into every hand-written secret; must never appear in a log line.
const CANARY: &str = "LEAKCANARY";
/// A base32 secret holding the canary (decodes to 20 bytes).
const CANARY_SECRET: &str = "QLEAKCANARYQAAAAAAAAAAAAAAAAAAAA";

/// One world per case: a fresh fixture with `alice` (MFA) and `bob` (no MFA).
struct World {
    /// Dropped first: mounts on the fixture's directories go before the directories.
    mounts: RefCell<Vec<Mount>>,
    f: Fixture,
    alice: Record,
}

impl World {
    fn new(args: &str) -> World {
        let f = Fixture::new();
        f.install_example("dovecot-virtual", "mail", args);
        f.add_password(ALICE, PW);
        f.add_password(BOB, BOB_PW);
        let alice = f.enable(ALICE);
        World {
            mounts: RefCell::new(Vec::new()),
            f,
            alice,
        }
    }

    fn record(&self) -> PathBuf {
        self.f.record_path(ALICE)
    }

    fn state(&self) -> PathBuf {
        self.f.state_path(ALICE)
    }

    fn record_dir(&self) -> PathBuf {
        self.f.settings.record_dir.clone()
    }

    fn state_dir(&self) -> PathBuf {
        self.f.settings.state_dir.clone()
    }

    /// Replaces the config file with the default directories plus `extra`.
    fn config(&self, extra: &str) {
        fs::write(
            &self.f.config,
            format!(
                "record_dir = \"{}\"\nstate_dir = \"{}\"\n{extra}\n",
                self.record_dir().display(),
                self.state_dir().display()
            ),
        )
        .unwrap();
    }

    /// Writes service `mail` by hand: `split_args` and `verify_args` are the raw bytes after
    /// the module path on the two mailmfa lines (`{c}` becomes `config=PATH`).
    fn raw_stack(&self, split_args: &[u8], verify_args: &[u8]) {
        let m = fixture::module_path().display().to_string();
        let c = format!("config={}", self.f.config.display());
        let mut text = Vec::new();
        text.extend_from_slice(format!("auth requisite {m} ").as_bytes());
        text.extend(replace(split_args, b"{c}", c.as_bytes()));
        text.extend_from_slice(
            format!(
                "\nauth requisite pam_pwdfile.so pwdfile={} nodelay\nauth required {m} ",
                self.f.pwdfile.display()
            )
            .as_bytes(),
        );
        text.extend(replace(verify_args, b"{c}", c.as_bytes()));
        text.extend_from_slice(b"\naccount required pam_permit.so\n");
        fs::write(self.f.confdir.join("mail"), text).unwrap();
    }

    fn add_password_bytes(&self, user: &str, password: &[u8]) {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("openssl")
            .args(["passwd", "-6", "-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(password).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let hash = String::from_utf8(out.stdout).unwrap();
        let mut text = fs::read_to_string(&self.f.pwdfile).unwrap();
        text.push_str(&format!("{user}:{}\n", hash.trim()));
        fs::write(&self.f.pwdfile, text).unwrap();
    }

    fn mount(&self, m: Mount) {
        self.mounts.borrow_mut().push(m);
    }

    /// One login through libpam as a C server would make it: user and password end at the
    /// first NUL (a C string cannot carry one).
    fn login(&self, user: &[u8], password: &[u8], rhost: Option<&str>) -> Response {
        let cut = |b: &[u8]| b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())].to_vec();
        client::login(&Request {
            service: "mail",
            user: &cut(user),
            password: &cut(password),
            confdir: Some(&self.f.confdir),
            rhost,
        })
        .expect("the login starts")
    }
}

fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// What a case must end in.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Refused; the reason mailmfa published and logged last.
    Deny(&'static str),
    /// Let in, with this reason (`ok` or `reused`).
    Accept(&'static str),
    /// A mailbox without MFA: mailmfa steps aside (`no_mfa`) and the password module decides
    /// (`true`: it accepts the password).
    Pass(bool),
}

/// Reasons logged at LOG_ERR with a `detail=` and answered with PAM_SYSTEM_ERR.
const FAULTS: &[&str] = &[
    "bad_record",
    "record_unreadable",
    "unsafe_record",
    "record_dir_unusable",
    "state_dir_unusable",
    "state_lock_failed",
    "state_write_failed",
    "bad_config",
    "no_split",
    "pam_error",
    "internal_error",
];

/// Every reason of `docs/configuration.md`.
const REASONS: &[&str] = &[
    "no_mfa",
    "code_split",
    "ok",
    "reused",
    "no_code",
    "bad_code",
    "replayed",
    "throttled",
    "invalid_login",
    "mfa_required",
    "bad_record",
    "record_unreadable",
    "unsafe_record",
    "record_dir_unusable",
    "state_dir_unusable",
    "state_rebuilt",
    "state_lock_failed",
    "state_write_failed",
    "bad_config",
    "no_split",
    "pam_error",
    "internal_error",
];

type Hook = Box<dyn Fn(&World)>;

struct Case {
    name: String,
    /// As the client sent it (the login cuts it at a NUL, as a C server does).
    user: Vec<u8>,
    /// Template: `{pw}` alice's password, `{code}` / `{code-2}` / `{code+1}` her codes,
    /// `{arabic}` / `{fullwidth}` / `{mathbold}` her current code in other digits.
    password: Vec<u8>,
    rhost: Option<String>,
    args: String,
    setup: Hook,
    after: Hook,
    expect: Expect,
}

fn case(name: &str) -> Case {
    Case {
        name: name.to_string(),
        user: ALICE.as_bytes().to_vec(),
        password: b"{pw}{code}".to_vec(),
        rhost: Some(IP1.to_string()),
        args: String::new(),
        setup: Box::new(|_| {}),
        after: Box::new(|_| {}),
        expect: Expect::Accept("ok"),
    }
}

impl Case {
    fn user(mut self, user: impl AsRef<[u8]>) -> Case {
        self.user = user.as_ref().to_vec();
        self
    }
    fn pw(mut self, password: impl AsRef<[u8]>) -> Case {
        self.password = password.as_ref().to_vec();
        self
    }
    fn bob(self) -> Case {
        self.user(BOB).pw(BOB_PW)
    }
    fn rhost(mut self, rhost: Option<&str>) -> Case {
        self.rhost = rhost.map(str::to_string);
        self
    }
    fn args(mut self, args: &str) -> Case {
        self.args = args.to_string();
        self
    }
    fn setup(mut self, f: impl Fn(&World) + 'static) -> Case {
        self.setup = Box::new(f);
        self
    }
    fn after(mut self, f: impl Fn(&World) + 'static) -> Case {
        self.after = Box::new(f);
        self
    }
    fn deny(mut self, reason: &'static str) -> Case {
        self.expect = Expect::Deny(reason);
        self
    }
    fn accept(mut self, reason: &'static str) -> Case {
        self.expect = Expect::Accept(reason);
        self
    }
    fn pass(mut self, password_ok: bool) -> Case {
        self.expect = Expect::Pass(password_ok);
        self
    }
}

/// A digit string in another script: `zero` is that script's digit zero.
fn other_digits(code: &str, zero: char) -> String {
    code.chars()
        .map(|c| char::from_u32(zero as u32 + c.to_digit(10).unwrap()).unwrap())
        .collect()
}

fn code_at(record: &Record, steps: i64) -> String {
    fixture::code(record, steps)
}

fn fill(template: &[u8], w: &World) -> Vec<u8> {
    let code = code_at(&w.alice, 0);
    let mut out = replace(template, b"{pw}", PW.as_bytes());
    for steps in [-2i64, -1, 1, 2] {
        let tag = format!("{{code{steps:+}}}");
        out = replace(&out, tag.as_bytes(), code_at(&w.alice, steps).as_bytes());
    }
    out = replace(&out, b"{code}", code.as_bytes());
    out = replace(&out, b"{arabic}", other_digits(&code, '\u{0660}').as_bytes());
    out = replace(&out, b"{fullwidth}", other_digits(&code, '\u{ff10}').as_bytes());
    out = replace(&out, b"{mathbold}", other_digits(&code, '\u{1d7ce}').as_bytes());
    out
}

/// A pseudo-random printable password of `len` bytes that does not end in a digit.
fn long_password(len: usize) -> Vec<u8> {
    let mut rng = hostile::Rng::new(0x5eed);
    let mut pw: Vec<u8> = (0..len)
        .map(|_| b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ!$&*"[rng.below(53) as usize])
        .collect();
    if let Some(last) = pw.last_mut() {
        *last = b'z';
    }
    pw
}

const GOOD_RECORD: &str = "version = 1\nsecret = \"QLEAKCANARYQAAAAAAAAAAAAAAAAAAAA\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\ncreated = 1\n";

fn record_text(w: &World, text: &str) {
    fs::write(w.record(), text).unwrap();
    fs::set_permissions(w.record(), fs::Permissions::from_mode(0o600)).unwrap();
}

fn chmod(path: &std::path::Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_foreign(path: &std::path::Path) {
    std::os::unix::fs::lchown(path, Some(12345), Some(12345)).unwrap();
}

/// What a file looked like: its type, and its bytes when it is a regular file.
fn snapshot(path: &std::path::Path) -> Option<(String, Option<Vec<u8>>)> {
    let meta = fs::symlink_metadata(path).ok()?;
    let kind = format!("{:?}", meta.file_type());
    let bytes = meta.is_file().then(|| fs::read(path).unwrap());
    Some((kind, bytes))
}
