// The User Panel's test world: a `World` (tests/integration/) whose stacks serve the PAM
// services `imap`, `pop3` and `mailmfa-panel`, a real Dovecot (passdb pam `%s`) with an extra
// auth-client listener for the panel, a `mailmfa.toml` naming the panel's account as
// `record_owner` with its `[panel]` table, and `mailmfa-panel` itself, started unprivileged
// (`setpriv` to uid/gid 65534, `nobody`) in the servers' mount namespace so that its audit
// lines reach the test's syslog receiver. Plus an HTTP client with a cookie jar for the API
// tests, a raw Dovecot auth-protocol client (the panel's own path, for the harness self-test),
// and helpers that read the secret out of an `otpauth://` URI. Everything stops at drop.
// Owned by the panel tests (helper C of issue 12); used by tests/panel_*.rs.
#![allow(dead_code)]

use crate::fixture;
use crate::integration::{World, PW};
use crate::servers::{self, Dovecot, DovecotOpts, SyslogReceiver, TestDir};
use crate::sql::{Db, Records};
use mailmfa::otp::Algorithm;
use mailmfa::record::Record;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The account the panel runs as in the tests: `nobody`.
pub const PANEL_UID: u32 = 65534;
/// Its name, for `record_owner`.
pub const PANEL_ACCOUNT: &str = "nobody";
/// The Dovecot service (and PAM service) the panel signs owners in with.
pub const PANEL_SERVICE: &str = "mailmfa-panel";
/// The Dovecot (and PAM) service of the webmail plugin's password precheck: the shipped
/// `pam.d-examples/mailmfa-precheck` (the password alone).
pub const PRECHECK_SERVICE: &str = "mailmfa-precheck";
/// The listener's name in Dovecot's base_dir.
pub const AUTH_LISTENER: &str = "auth-mailmfa";
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "mailmfa_session";

/// What every panel test needs besides the browser.
pub const PANEL_PREREQS: &[&str] = &[
    "dovecot",
    "doveconf",
    "unshare",
    "openssl",
    "setpriv",
    "pam_pwdfile.so",
    "pam_permit.so",
];

/// The CSP every response carries (the contract's words).
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The `mailmfa-panel` binary: beside `mailmfa` in the same target dir (the workspace build
/// makes both). A missing binary fails the test: it is a build problem, not a missing package.
pub fn panel_binary() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_mailmfa")).with_file_name("mailmfa-panel");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first (`cargo build --workspace`; scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// Knobs for the panel's `[panel]` table and the world around it.
#[derive(Clone, Debug, Default)]
pub struct PanelOpts {
    /// Extra lines inside `[panel]` (e.g. `idle_timeout = "2s"`).
    pub panel_extra: String,
    /// `trusted_proxies` (e.g. `["127.0.0.1"]`).
    pub trusted_proxies: Vec<String>,
    /// Writes an admin token file (0600, the panel's account) and names it.
    pub admin_token: bool,
    /// Top-level lines for `mailmfa.toml` (before `[panel]`; e.g. `reuse = "never"`).
    pub mail_config: String,
    /// Appended to dovecot.conf (e.g. `login_trusted_networks = 127.0.0.0/8`).
    pub dovecot_extra: String,
    /// Where the records are kept (files by default; SQL for the suites of issue 15).
    pub records: Records,
}

/// Dovecot and the stacks, before the panel: what the harness self-test uses alone.
pub struct MailWorld {
    /// Dovecot (IMAP, POP3, and the panel's auth listener); stopped before the world goes.
    pub dovecot: Dovecot,
    /// The mailboxes, config, records, pam.d.
    pub w: World,
}

impl MailWorld {
    /// A world with the `dovecot-virtual` stack as `imap`, `pop3` and `mailmfa-panel` (and
    /// `mailmfa-precheck` as the webmail plugin's precheck service), and a
    /// Dovecot on it (`%s` = the service name) with the panel's listener (mode 0666) in its
    /// base_dir. The fixture's dir is made traversable and its record dir owned by the
    /// panel's account (the module's state dir stays root's).
    pub fn new() -> MailWorld {
        MailWorld::with("", "")
    }

    /// Like `new`, with `mail_config` appended to `mailmfa.toml` and `dovecot_extra` to
    /// dovecot.conf.
    pub fn with(mail_config: &str, dovecot_extra: &str) -> MailWorld {
        let w = World::new(
            mail_config,
            "dovecot-virtual",
            &["imap", "pop3", PANEL_SERVICE],
            "",
        );
        w.install(PRECHECK_SERVICE, PRECHECK_SERVICE, "");
        chmod(w.f.dir.path(), 0o711);
        let dovecot = Dovecot::start(
            w.pam_d(),
            "%s",
            &DovecotOpts {
                disable_auth_penalty: true,
                extra_conf: format!(
                    "service auth {{\n  unix_listener {AUTH_LISTENER} {{\n    mode = 0666\n  }}\n}}\n\
                     {dovecot_extra}\n"
                ),
                ..Default::default()
            },
        );
        let mail = MailWorld { dovecot, w };
        let sock = mail.auth_socket();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !sock.exists() {
            assert!(
                Instant::now() < deadline,
                "no {} after start",
                sock.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        mail
    }

    /// The panel's auth socket.
    pub fn auth_socket(&self) -> PathBuf {
        self.dovecot.dir().join("run").join(AUTH_LISTENER)
    }

    /// Dovecot's syslog receiver (the module's lines, and the panel's when it runs).
    pub fn syslog(&self) -> &SyslogReceiver {
        self.dovecot.syslog()
    }
}

/// The whole panel world: mail servers, config, and the running panel.
pub struct PanelWorld {
    /// The panel; stopped first.
    pub panel: Panel,
    /// Dovecot and the mailboxes.
    pub mail: MailWorld,
    /// The panel's own state dir (codes typed on its pages).
    pub panel_state: PathBuf,
    /// The admin token, when `PanelOpts::admin_token`.
    pub admin_token: Option<String>,
    /// The settings of the final `mailmfa.toml` (with `record_owner`), for writing records
    /// the way the panel would.
    pub settings: mailmfa::config::Settings,
    /// The records' database, with `records = "sql"` (stopped after everything else).
    pub db: Option<Db>,
}

impl PanelWorld {
    /// Starts everything with `opts` (records in files).
    pub fn start(opts: &PanelOpts) -> PanelWorld {
        assert_eq!(opts.records, Records::Files, "records in SQL: try_start");
        PanelWorld::try_start(opts).expect("records in files need no database")
    }

    /// Starts everything with `opts`; `None` (a loud skip) when the records' database cannot
    /// be started here.
    pub fn try_start(opts: &PanelOpts) -> Option<PanelWorld> {
        let db = match opts.records {
            Records::Files => None,
            Records::Sql(kind) => Some(Db::start(kind)?),
        };
        let sql_config = db.as_ref().map(|db| db.config()).unwrap_or_default();
        let mail = MailWorld::with(
            &format!("{sql_config}{}", opts.mail_config),
            &opts.dovecot_extra,
        );
        if let Some(db) = &db {
            mail.w.mailmfa_ok(&["db", "init"]);
            // The panel's account reads the password and the key file too (root reads them
            // anyway): owned by it (the `record_owner` below), mode 0600, as docs/sql.md says.
            for file in [db.password_file(), db.key_file.clone()] {
                chown(&file, PANEL_UID);
            }
        }
        let dir = mail.w.f.dir.path().to_path_buf();
        let record_dir = mail.w.f.settings.record_dir.clone();
        chown(&record_dir, PANEL_UID);
        chmod(&record_dir, 0o700);
        let panel_state = dir.join("panel-state");
        std::fs::create_dir(&panel_state).expect("panel state dir");
        chown(&panel_state, PANEL_UID);
        chmod(&panel_state, 0o700);
        let mut admin_token = None;
        let mut token_line = String::new();
        if opts.admin_token {
            let token = random_hex(32);
            let path = dir.join("admin-token");
            std::fs::write(&path, format!("{token}\n")).unwrap();
            chown(&path, PANEL_UID);
            chmod(&path, 0o600);
            token_line = format!("admin_token_file = \"{}\"\n", path.display());
            admin_token = Some(token);
        }
        let proxies: Vec<String> = opts
            .trusted_proxies
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect();
        // Top-level keys first, then the table: appended to the fixture's config.
        let config = &mail.w.f.config;
        let mut text = std::fs::read_to_string(config).unwrap();
        text = format!(
            "record_owner = \"{PANEL_ACCOUNT}\"\n{text}\n[panel]\n\
             listen = \"127.0.0.1:0\"\n\
             auth_socket = \"{}\"\n\
             auth_service = \"{PANEL_SERVICE}\"\n\
             state_dir = \"{}\"\n\
             trusted_proxies = [{}]\n\
             {token_line}{}\n",
            mail.auth_socket().display(),
            panel_state.display(),
            proxies.join(", "),
            opts.panel_extra,
        );
        std::fs::write(config, &text).unwrap();
        // The panel's account reads it; root owns it, nobody may write it.
        chmod(config, 0o644);
        let settings = mailmfa::config::Settings::from_toml(&text, config)
            .unwrap_or_else(|e| panic!("the test's mailmfa.toml: {e}\n{text}"));
        let panel = Panel::start(&mail, config);
        Some(PanelWorld {
            panel,
            mail,
            panel_state,
            admin_token,
            settings,
            db,
        })
    }

    /// The store as the module opens it (as root), wherever the records are.
    fn store(&self) -> mailmfa::store::backend::Backend {
        mailmfa::store::backend::Backend::open(&self.settings, 0)
    }

    /// The panel's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.panel.url
    }

    /// `url() + path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.panel.url)
    }

    /// A mailbox without MFA, password `PW`.
    pub fn owner(&self, user: &str) {
        self.mail.w.plain_user(user, PW);
    }

    /// A mailbox with password `PW` and MFA on (its record owned by the panel's account, as
    /// the panel would have written it).
    pub fn mfa_owner(&self, user: &str) -> Record {
        use mailmfa::store::Store;
        use sha2::Digest;
        self.mail.w.f.add_password(user, PW);
        let secret = sha2::Sha256::digest(user.as_bytes())[..20].to_vec();
        let rec = Record::new(secret, Algorithm::SHA1, 6, 30, fixture::now()).unwrap();
        self.store()
            .write_record(&fixture::login(user), &rec)
            .expect("write record");
        if self.db.is_none() {
            chown(&self.record_path(user), PANEL_UID);
        }
        rec
    }

    /// `user`'s record file.
    pub fn record_path(&self, user: &str) -> PathBuf {
        self.mail.w.f.record_path(user)
    }

    /// `user`'s record as the module reads it (a file, or a row), or None when MFA is off.
    pub fn record(&self, user: &str) -> Option<Record> {
        use mailmfa::store::Store;
        self.store()
            .read_record(&fixture::login(user))
            .unwrap_or_else(|e| panic!("{user}'s record: {e}"))
    }

    /// Dovecot's IMAP address.
    pub fn imap(&self) -> std::net::SocketAddr {
        self.mail.dovecot.imap_addr()
    }

    /// Every syslog line (the module's and the panel's).
    pub fn syslog(&self) -> &SyslogReceiver {
        self.mail.syslog()
    }

    /// A fresh HTTP client (no cookies).
    pub fn client(&self) -> Client {
        Client::new(&self.panel.url)
    }
}

/// A running `mailmfa-panel`.
pub struct Panel {
    child: Child,
    /// `http://ADDR` from its first stdout line.
    pub url: String,
    /// The address it listens on.
    pub addr: std::net::SocketAddr,
    output: Arc<Mutex<Vec<String>>>,
    stderr: PathBuf,
    _dir: TestDir,
}

impl Panel {
    /// Starts the panel as `nobody` with `config`, in a mount namespace whose /dev/log is the
    /// world's syslog receiver, and reads `listening on http://ADDR` from its stdout.
    pub fn start(mail: &MailWorld, config: &Path) -> Panel {
        let bin = panel_binary();
        let dir = TestDir::new("panel");
        let scratch = dir.mkdir("ns-scratch", 0o700);
        let stderr = dir.join("panel.err");
        let setpriv = servers::find_program("setpriv").expect("setpriv");
        let (uid, gid) = (
            format!("--reuid={PANEL_UID}"),
            format!("--regid={PANEL_UID}"),
        );
        let mut cmd = servers::ns::namespaced(
            mail.w.pam_d(),
            mail.syslog().path(),
            &scratch,
            &setpriv,
            &[
                &uid,
                &gid,
                "--clear-groups",
                bin.to_str().unwrap(),
                "--config",
                config.to_str().unwrap(),
            ],
        );
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .env_remove("CI")
            .process_group(0);
        let mut child = cmd.spawn().expect("spawn mailmfa-panel");
        let stdout = child.stdout.take().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                let mut first = true;
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if first {
                        let _ = tx.send(line.clone());
                        first = false;
                    }
                    output.lock().unwrap().push(line);
                }
            });
        }
        let first = rx.recv_timeout(Duration::from_secs(15));
        let err_text = || std::fs::read_to_string(&stderr).unwrap_or_default();
        let line = match first {
            Ok(l) => l,
            Err(_) => {
                let status = child.try_wait().ok().flatten();
                stop_group(&mut child);
                panic!(
                    "mailmfa-panel printed no first line (exit: {status:?}); stderr:\n{}",
                    err_text()
                );
            }
        };
        let Some(url) = line.strip_prefix("listening on ").map(str::trim) else {
            stop_group(&mut child);
            panic!(
                "mailmfa-panel's first line is not `listening on http://ADDR`: {line:?}\nstderr:\n{}",
                err_text()
            );
        };
        let addr: std::net::SocketAddr = url
            .strip_prefix("http://")
            .and_then(|a| a.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Panel {
            child,
            url: format!("http://{addr}"),
            addr,
            output,
            stderr,
            _dir: dir,
        }
    }

    /// Its stdout lines so far.
    pub fn stdout(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    /// Its stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Panel {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- mailmfa-panel stdout ---\n{}\n--- stderr ---\n{}",
                self.stdout().join("\n"),
                self.stderr()
            );
        }
        stop_group(&mut self.child);
    }
}

/// SIGTERM to the child's process group, up to 5 s, then SIGKILL; reaps it.
fn stop_group(child: &mut Child) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: signals to the process group this harness created.
    unsafe { libc::kill(-pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let _ = child.wait();
}

/// chmod or panic.
pub fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// chown to uid:uid or panic.
pub fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

/// `n` random bytes as hex (from /dev/urandom).
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// otpauth:// URIs

/// The query parameter `name` of an `otpauth://` URI (percent-decoded).
pub fn uri_param(uri: &str, name: &str) -> Option<String> {
    let query = uri.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A record with the secret, algorithm, digits and period of an `otpauth://totp/...` URI:
/// what an authenticator app makes of the scanned QR code.
pub fn record_from_uri(uri: &str) -> Record {
    assert!(uri.starts_with("otpauth://totp/"), "not a TOTP URI: {uri}");
    let secret = uri_param(uri, "secret").unwrap_or_else(|| panic!("no secret in {uri}"));
    let bytes = base32::decode(
        base32::Alphabet::Rfc4648 { padding: false },
        &secret.to_ascii_uppercase().replace([' ', '='], ""),
    )
    .unwrap_or_else(|| panic!("secret is not base32 in {uri}"));
    let algorithm = match uri_param(uri, "algorithm").as_deref() {
        None | Some("SHA1") => Algorithm::SHA1,
        Some("SHA256") => Algorithm::SHA256,
        Some("SHA512") => Algorithm::SHA512,
        Some(other) => panic!("algorithm {other} in {uri}"),
    };
    let digits = uri_param(uri, "digits").map_or(6, |d| d.parse().unwrap());
    let period = uri_param(uri, "period").map_or(30, |p| p.parse().unwrap());
    Record::new(bytes, algorithm, digits, period, fixture::now()).expect("record from URI")
}

/// The code of `record` now (`steps` = 0) or `steps` steps away.
pub fn code(record: &Record, steps: i64) -> String {
    fixture::code(record, steps)
}

/// Waits for the first moment of the next 30-s step (so that a code computed then was never
/// used before), plus a second of margin.
pub fn next_step() {
    let wait = 30 - fixture::now() % 30;
    std::thread::sleep(Duration::from_secs(wait + 1));
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// One HTTP response, read whole.
#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    /// Header names lower-cased, in order (repeats kept: Set-Cookie).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    /// The first header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every header `name`.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), HTTP {}: {}", self.status, self.body))
    }

    /// The API error string (`{"error": ...}`).
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The Set-Cookie line for `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.headers_named("set-cookie")
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    /// The hidden `csrf` field of the HTML form in the body.
    pub fn csrf_field(&self) -> Option<String> {
        hidden_field(&self.body, "csrf")
    }
}

/// The value of the hidden input `name` in `html` (attributes in any order).
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\"");
    let at = html.find(&needle)?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let v = tag.split("value=\"").nth(1)?;
    Some(v.split('"').next()?.to_string())
}

/// An HTTP client for the panel with its own cookie jar, the CSRF token of its session,
/// redirects not followed, and every status returned (never an Err for 4xx/5xx).
pub struct Client {
    agent: ureq::Agent,
    base: String,
    /// name -> value.
    pub cookies: BTreeMap<String, String>,
    /// The session's CSRF token (from sign-in), sent as `X-CSRF-Token` on non-GET.
    pub csrf: Option<String>,
}

impl Client {
    /// A client for the panel at `base`.
    pub fn new(base: &str) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Client {
            agent,
            base: base.trim_end_matches('/').to_string(),
            cookies: BTreeMap::new(),
            csrf: None,
        }
    }

    /// The session cookie's value, if the jar holds one.
    pub fn session(&self) -> Option<&str> {
        self.cookies.get(SESSION_COOKIE).map(String::as_str)
    }

    fn cookie_header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Any request: `headers` added, cookies and (unless `headers` has one, or `method` is
    /// GET) the CSRF header sent, Set-Cookie stored.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let url = format!("{}{path}", self.base);
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(c) = self.cookie_header() {
            req = req.header("Cookie", c);
        }
        let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
        if method != "GET" && !has("x-csrf-token") {
            if let Some(t) = &self.csrf {
                req = req.header("X-CSRF-Token", t.as_str());
            }
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let result = match body {
            Some(b) => self.agent.run(req.body(b.to_vec()).unwrap()),
            None => self.agent.run(req.body(()).unwrap()),
        };
        let mut resp = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(16 * 1024 * 1024)
            .read_to_string()
            .unwrap_or_default();
        let r = Resp {
            status,
            headers,
            body,
        };
        for line in r.headers_named("set-cookie") {
            let first = line.split(';').next().unwrap_or("");
            if let Some((k, v)) = first.split_once('=') {
                let gone = v.is_empty()
                    || line.to_ascii_lowercase().contains("max-age=0")
                    || line
                        .to_ascii_lowercase()
                        .contains("expires=thu, 01 jan 1970");
                if gone {
                    self.cookies.remove(k.trim());
                } else {
                    self.cookies.insert(k.trim().to_string(), v.to_string());
                }
            }
        }
        r
    }

    /// GET `path`.
    pub fn get(&mut self, path: &str) -> Resp {
        self.request("GET", path, &[], None)
    }

    /// GET `path` with extra headers.
    pub fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.request("GET", path, headers, None)
    }

    /// `method path` with a JSON body.
    pub fn json(&mut self, method: &str, path: &str, body: &Value) -> Resp {
        self.json_with(method, path, body, &[])
    }

    /// `method path` with a JSON body and extra headers.
    pub fn json_with(
        &mut self,
        method: &str,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut h = vec![("Content-Type", "application/json")];
        h.extend_from_slice(headers);
        self.request(method, path, &h, Some(body.to_string().as_bytes()))
    }

    /// POST `path` with a JSON body.
    pub fn post(&mut self, path: &str, body: &Value) -> Resp {
        self.json("POST", path, body)
    }

    /// DELETE `path`.
    pub fn delete(&mut self, path: &str) -> Resp {
        self.request("DELETE", path, &[], None)
    }

    /// POST `path` as a form (urlencoded `fields`).
    pub fn form(&mut self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(body.as_bytes()),
        )
    }

    /// Signs in through the API (`POST /api/v1/session`); keeps the CSRF token on 200.
    pub fn sign_in(&mut self, login: &str, password: &str) -> Resp {
        let r = self.post(
            "/api/v1/session",
            &serde_json::json!({"login": login, "password": password}),
        );
        if r.status == 200 {
            self.csrf = r.json()["csrf"].as_str().map(str::to_string);
        }
        r
    }

    /// Signs in through the page (GET /sign-in for the form's token, POST the form).
    pub fn sign_in_form(&mut self, login: &str, password: &str) -> Resp {
        let page = self.get("/sign-in");
        let csrf = page.csrf_field().unwrap_or_else(|| {
            panic!(
                "no csrf field on /sign-in (HTTP {}): {}",
                page.status, page.body
            )
        });
        self.form(
            "/sign-in",
            &[("csrf", &csrf), ("login", login), ("password", password)],
        )
    }

    /// Turns MFA on through the API (enrolment, the code from its URI, confirm); returns the
    /// record made from the URI, as the owner's app holds it.
    pub fn enable_mfa(&mut self) -> Record {
        let r = self.post("/api/v1/mfa/enrolment", &serde_json::json!({}));
        assert_eq!(r.status, 201, "enrolment: {}", r.body);
        let rec = record_from_uri(r.json()["uri"].as_str().expect("uri"));
        crate::integration::step_margin(3);
        let c = self.post(
            "/api/v1/mfa/enrolment/confirm",
            &serde_json::json!({"code": code(&rec, 0)}),
        );
        assert_eq!(c.status, 200, "confirm: {}", c.body);
        rec
    }
}

/// application/x-www-form-urlencoded encoding of one value.
pub fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `Authorization: Basic base64(login:password)`.
pub fn basic(login: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"))
    )
}

/// Asserts the contract's security headers on `r` (`what` names the request).
pub fn assert_security_headers(r: &Resp, what: &str) {
    let csp = r
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy ({:?})", r.headers));
    for part in CSP.split("; ") {
        assert!(csp.contains(part), "{what}: CSP {csp:?} lacks {part:?}");
    }
    assert!(
        !csp.contains("unsafe-inline"),
        "{what}: CSP allows inline: {csp}"
    );
    assert_eq!(
        r.header("referrer-policy"),
        Some("no-referrer"),
        "{what}: Referrer-Policy"
    );
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}: X-Content-Type-Options"
    );
    let cc = r.header("cache-control").unwrap_or("");
    assert!(cc.contains("no-store"), "{what}: Cache-Control {cc:?}");
}

// ---------------------------------------------------------------------------------------------
// Dovecot's auth protocol (the panel's sign-in path), for the harness self-test

/// One `AUTH ... PLAIN` over Dovecot's auth-client protocol on `socket` for `service` from
/// `rip`; true on `OK`, false on `FAIL`.
pub fn dovecot_auth(socket: &Path, service: &str, rip: &str, login: &str, password: &str) -> bool {
    use base64::Engine as _;
    let stream =
        UnixStream::connect(socket).unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    w.write_all(format!("VERSION\t1\t2\nCPID\t{}\n", std::process::id()).as_bytes())
        .unwrap();
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "auth socket closed in handshake"
        );
        if line.trim_end() == "DONE" {
            break;
        }
    }
    let resp = base64::engine::general_purpose::STANDARD.encode(format!("\0{login}\0{password}"));
    w.write_all(
        format!("AUTH\t1\tPLAIN\tservice={service}\tsecured\trip={rip}\tresp={resp}\n").as_bytes(),
    )
    .unwrap();
    loop {
        line.clear();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "auth socket closed before the answer"
        );
        let l = line.trim_end();
        if l.starts_with("OK\t1") {
            return true;
        }
        if l.starts_with("FAIL\t1") {
            return false;
        }
        assert!(!l.starts_with("CONT\t1"), "unexpected continuation: {l}");
    }
}

/// The login name and password of a mailbox with MFA, with the code `steps` away appended.
pub fn pw_code(record: &Record, steps: i64) -> String {
    format!("{PW}{}", code(record, steps))
}

/// Sends `request` as is on a new connection to `addr` (write errors ignored: the server may
/// answer and close before reading it all) and returns what the server sent until it closed
/// or 30 s passed.
pub fn raw_http(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the panel");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(request);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of a raw HTTP response (0 when there is none).
pub fn raw_status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}
