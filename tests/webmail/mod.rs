// The Roundcube test world of issue 13 (webmail with MFA): a `PanelWorld` (tests/panel/: real
// Dovecot with passdb pam `%s`, the panel as `nobody`, an admin token) plus the PAM service
// `mailmfa-precheck` (password module only) and `smtp`, Dovecot's `login_trusted_networks`
// (so Roundcube's `x-originating-ip` is honoured), a Postfix submission port with SASL through
// Dovecot delivering `@example.com` back into the Maildirs Dovecot serves (virtual(8)), and
// Debian's Roundcube 1.6 served by `php -S` with a private config (`ROUNDCUBE_CONFIG_DIR`) in a
// private mount namespace whose /var/lib/roundcube/plugins is a temp copy holding the mailmfa
// plugin. Also the browser helpers the webmail tests share (Roundcube's login form, the code
// page, inbox, folders, compose, storage errors) and the IMAP login counts from Dovecot's log.
// Everything stops at drop. Owned by the webmail tests (issue 13 item 6); used by
// tests/webmail_browser.rs.
#![allow(dead_code)]

use crate::browser::{Browser, BROWSER_PREREQS};
use crate::fixture;
use crate::integration::{mfa_lines, settle, PW};
use crate::panel::{PanelOpts, PanelWorld, PANEL_PREREQS, PRECHECK_SERVICE};
use crate::servers::{self, Postfix, PostfixOpts, TestDir};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's Roundcube: the document root `php -S` serves.
pub const RC_PUBLIC: &str = "/var/lib/roundcube/public_html";
/// Debian's Roundcube plugin folder (symlinks into /usr/share/roundcube/plugins).
pub const RC_PLUGINS: &str = "/var/lib/roundcube/plugins";
/// Debian's Roundcube defaults (symlinked into the private config dir).
pub const RC_ETC: &str = "/etc/roundcube";
/// Roundcube's text for an IMAP login that failed after the session began.
pub const STORAGE_ERROR: &str = "Connection to storage server failed";

/// Dovecot for webmail: Roundcube's `x-originating-ip` honoured from the web server's
/// address, and the special folders made at the first login.
const DOVECOT_EXTRA: &str = "login_trusted_networks = 127.0.0.0/8
namespace inbox {
  inbox = yes
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
}
";

/// Programs every webmail test needs (plus root): the panel's, the browser's, Postfix, PHP.
pub fn prereqs() -> bool {
    let mut all: Vec<&str> = PANEL_PREREQS
        .iter()
        .chain(BROWSER_PREREQS)
        .copied()
        .collect();
    all.extend(["postfix", "postconf", "php"]);
    if !servers::require_prereqs(&all) {
        return false;
    }
    let files = [
        format!("{RC_PUBLIC}/index.php"),
        format!("{RC_ETC}/defaults.inc.php"),
        "/usr/share/roundcube/program/include/rcmail.php".to_string(),
        "/usr/share/roundcube/SQL/sqlite.initial.sql".to_string(),
    ];
    let missing: Vec<&str> = files
        .iter()
        .filter(|f| !Path::new(f).exists())
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return true;
    }
    servers::skip_unless_none_missing(&format!(
        "{} (Debian packages roundcube-core, roundcube-sqlite3)",
        missing.join(", ")
    ))
}

/// The plugin's source: env `MAILMFA_PLUGIN_DIR`, else the repo's contrib/roundcube/mailmfa.
/// Missing is a failure (the repo ships it), not a skip.
pub fn plugin_source() -> PathBuf {
    let dir = std::env::var_os("MAILMFA_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| fixture::repo().join("contrib/roundcube/mailmfa"));
    assert!(
        dir.join("mailmfa.php").exists(),
        "no Roundcube plugin at {} (set MAILMFA_PLUGIN_DIR or add contrib/roundcube/mailmfa)",
        dir.display()
    );
    dir
}

/// Knobs for the webmail world.
#[derive(Clone, Debug)]
pub struct WebmailOpts {
    /// `plugins = ['mailmfa']` (the plugin copied in); false: `plugins = []`, plain Roundcube.
    pub plugin: bool,
    /// Top-level `mailmfa.toml` lines (e.g. `reuse = "never"`).
    pub mail_config: String,
    /// Extra lines for the panel's `[panel]` table.
    pub panel_extra: String,
    /// PHP lines appended to Roundcube's config.inc.php.
    pub rc_extra: String,
    /// The addresses Postfix delivers to (their Maildirs): Postfix's virtual(8) takes no
    /// `$1` in its map, so the list is fixed when Postfix starts.
    pub mailboxes: Vec<String>,
}

impl Default for WebmailOpts {
    fn default() -> Self {
        WebmailOpts {
            plugin: true,
            mail_config: String::new(),
            panel_extra: String::new(),
            rc_extra: String::new(),
            mailboxes: Vec::new(),
        }
    }
}

/// Everything: Roundcube (stopped first), Postfix, the panel world (panel, Dovecot).
pub struct WebmailWorld {
    /// Roundcube under `php -S`.
    pub rc: Roundcube,
    /// Postfix: submission with Dovecot SASL, delivery into the Maildirs.
    pub postfix: Postfix,
    /// The panel, Dovecot, the mailboxes.
    pub p: PanelWorld,
    /// The admin token file Roundcube reads.
    pub token_file: PathBuf,
    _dir: TestDir,
}

impl WebmailWorld {
    /// Starts the panel world (admin token, trusted networks), installs the `smtp` and
    /// `mailmfa-precheck` stacks, starts Postfix and Roundcube.
    pub fn start(opts: &WebmailOpts) -> WebmailWorld {
        let started = Instant::now();
        let p = PanelWorld::start(&PanelOpts {
            admin_token: true,
            mail_config: opts.mail_config.clone(),
            panel_extra: format!(
                "precheck_service = \"{PRECHECK_SERVICE}\"\n{}",
                opts.panel_extra
            ),
            dovecot_extra: DOVECOT_EXTRA.into(),
            ..Default::default()
        });
        // Dovecot's pam.d is a bind mount of this dir: stacks added now are seen at the next
        // login. `smtp`: Postfix's SASL through Dovecot (%s = smtp). MailWorld installs the
        // shipped `mailmfa-precheck` (the password alone) for the panel's precheck.
        p.mail.w.install("dovecot-virtual", "smtp", "");
        let dir = TestDir::new("webmail");
        let token_file = p.mail.w.f.dir.path().join("admin-token");
        assert!(token_file.exists(), "no admin token file from PanelWorld");

        // Postfix: `@example.com` goes to DOVECOT/home/<addr>/Maildir/ as uid 5000, where
        // Dovecot's static userdb (home=.../home/%u, maildir:~/Maildir) reads it.
        let map: String = opts
            .mailboxes
            .iter()
            .map(|m| format!("{m} {m}/Maildir/\n"))
            .collect();
        let maps = dir.write("virtual_mailbox_maps", &map);
        let mut popts = PostfixOpts::dovecot(&p.mail.dovecot);
        popts.extra_main_cf = format!(
            "virtual_mailbox_domains = example.com\n\
             virtual_mailbox_base = {}\n\
             virtual_mailbox_maps = texthash:{}\n\
             virtual_uid_maps = static:{uid}\n\
             virtual_gid_maps = static:{uid}\n\
             virtual_minimum_uid = 100\n\
             virtual_transport = virtual\n",
            p.mail.dovecot.dir().join("home").display(),
            maps.display(),
            uid = servers::dovecot::MAIL_UID,
        );
        popts.extra_master_cf =
            "virtual    unix  -       n       n       -       -       virtual\n".into();
        let postfix = Postfix::start(&popts);

        let rc = Roundcube::start(&RoundcubeConf {
            imap: p.imap(),
            smtp: postfix.smtp_addr(),
            panel_url: p.url().to_string(),
            token_file: token_file.clone(),
            plugin: opts.plugin,
            extra: opts.rc_extra.clone(),
        });
        eprintln!("webmail world up in {:?}", started.elapsed());
        WebmailWorld {
            rc,
            postfix,
            p,
            token_file,
            _dir: dir,
        }
    }

    /// Roundcube's base URL (`http://127.0.0.1:PORT/`).
    pub fn url(&self) -> &str {
        &self.rc.url
    }

    /// Dovecot's log (IMAP logins, auth failures).
    pub fn dovecot_log(&self) -> &servers::LogFile {
        self.p.mail.dovecot.log()
    }

    /// Where Dovecot and the module's logs stand now (for `counts_since`).
    pub fn mark(&self) -> Mark {
        settle(self.p.syslog());
        Mark {
            dovecot: self.dovecot_log().mark(),
            syslog: self.p.syslog().mark(),
            rc_errors: self.rc.errors().len(),
        }
    }

    /// IMAP logins and failures of `user`, and the module's decisions about it, since `mark`.
    pub fn counts_since(&self, mark: &Mark, user: &str) -> Counts {
        settle(self.p.syslog());
        let lines = self.dovecot_log().lines();
        let tag = format!("user=<{user}>");
        let mut c = Counts::default();
        for l in lines.iter().skip(mark.dovecot) {
            if !l.contains(&tag) {
                continue;
            }
            if l.contains("imap-login:") && l.contains(" Login: user=") {
                c.imap_logins += 1;
            } else if l.contains("imap-login:") && l.contains("auth failed") {
                c.imap_failures += 1;
            }
        }
        for m in mfa_lines(&self.p.syslog().lines()[mark.syslog..]) {
            if m.user() == user {
                *c.module
                    .entry(format!(
                        "{} {} {} {}",
                        m.service(),
                        m.phase(),
                        m.result(),
                        m.reason()
                    ))
                    .or_default() += 1;
            }
        }
        c.rc_errors = self.rc.errors().into_iter().skip(mark.rc_errors).collect();
        c
    }

    /// The files in `user`'s Maildir `new/` and `cur/` (INBOX).
    pub fn inbox_files(&self, user: &str) -> Vec<PathBuf> {
        let md = self
            .p
            .mail
            .dovecot
            .dir()
            .join("home")
            .join(user)
            .join("Maildir");
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(rd) = std::fs::read_dir(md.join(sub)) {
                out.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
            }
        }
        out
    }
}

/// Positions in the logs.
#[derive(Clone, Debug)]
pub struct Mark {
    dovecot: usize,
    syslog: usize,
    rc_errors: usize,
}

/// What the logs say about one mailbox over a stretch of time.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Dovecot `imap-login: Login:` lines.
    pub imap_logins: usize,
    /// Dovecot `imap-login: ... (auth failed ...)` lines.
    pub imap_failures: usize,
    /// The module's lines: "service phase result reason" → count.
    pub module: BTreeMap<String, usize>,
    /// Roundcube's errors.log lines.
    pub rc_errors: Vec<String>,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "IMAP logins: {}, IMAP login failures: {}",
            self.imap_logins, self.imap_failures
        )?;
        for (k, n) in &self.module {
            writeln!(f, "  module {k}: {n}")?;
        }
        write!(f, "  Roundcube errors.log lines: {}", self.rc_errors.len())
    }
}

/// What Roundcube's config.inc.php is made of.
pub struct RoundcubeConf {
    pub imap: std::net::SocketAddr,
    pub smtp: std::net::SocketAddr,
    pub panel_url: String,
    pub token_file: PathBuf,
    pub plugin: bool,
    pub extra: String,
}

/// Debian's Roundcube under `php -S`, in its own mount namespace.
pub struct Roundcube {
    child: Child,
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
    dir: TestDir,
    _port: servers::PortLease,
}

/// A PHP single-quoted string literal.
fn php_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Mounts $1 over Roundcube's plugin folder, then execs the rest.
const RC_WRAPPER: &str = r#"set -eu
plugins=$1
shift
mount --make-rprivate /
mount --bind "$plugins" /var/lib/roundcube/plugins
exec "$@"
"#;

impl Roundcube {
    /// Writes the private config, a plugin folder (Debian's entries plus, with `plugin`, a
    /// copy of the mailmfa plugin), starts `php -S` and waits for the login page.
    pub fn start(c: &RoundcubeConf) -> Roundcube {
        let dir = TestDir::new("roundcube");
        let config = dir.mkdir("config", 0o755);
        let db = dir.mkdir("db", 0o700);
        let logs = dir.mkdir("logs", 0o700);
        let temp = dir.mkdir("temp", 0o700);
        let plugins = dir.mkdir("plugins", 0o755);
        for f in ["defaults.inc.php", "mimetypes.php"] {
            std::os::unix::fs::symlink(Path::new(RC_ETC).join(f), config.join(f))
                .expect("symlink Roundcube defaults");
        }
        for entry in std::fs::read_dir(RC_PLUGINS).expect("read Debian's plugin folder") {
            let entry = entry.unwrap();
            let target = std::fs::read_link(entry.path()).unwrap_or_else(|_| entry.path());
            std::os::unix::fs::symlink(target, plugins.join(entry.file_name())).unwrap();
        }
        if c.plugin {
            let src = plugin_source();
            let st = Command::new("cp")
                .arg("-R")
                .arg(&src)
                .arg(plugins.join("mailmfa"))
                .status()
                .expect("cp plugin");
            assert!(st.success(), "copying {} failed", src.display());
        }
        let plugin_list = if c.plugin { "['mailmfa']" } else { "[]" };
        let text = format!(
            "<?php\n// Written by the mailmfa webmail test harness.\n$config = [];\n\
             $config['db_dsnw'] = {dsn};\n\
             $config['imap_host'] = {imap};\n\
             $config['imap_auth_type'] = 'PLAIN';\n\
             $config['smtp_host'] = {smtp};\n\
             $config['smtp_user'] = '%u';\n\
             $config['smtp_pass'] = '%p';\n\
             $config['smtp_auth_type'] = 'PLAIN';\n\
             $config['log_dir'] = {logs};\n\
             $config['temp_dir'] = {temp};\n\
             $config['log_driver'] = 'file';\n\
             $config['des_key'] = {key};\n\
             $config['product_name'] = 'Webmail';\n\
             $config['skin'] = 'elastic';\n\
             $config['plugins'] = {plugin_list};\n\
             $config['create_default_folders'] = true;\n\
             $config['enable_installer'] = false;\n\
             $config['support_url'] = '';\n\
             $config['mailmfa_panel_url'] = {panel};\n\
             $config['mailmfa_admin_token_file'] = {token};\n\
             $config['mailmfa_credential_from'] = ['127.0.0.1'];\n\
             {extra}\n",
            dsn = php_str(&format!(
                "sqlite:///{}/roundcube.db?mode=0640",
                db.display()
            )),
            imap = php_str(&c.imap.to_string()),
            smtp = php_str(&c.smtp.to_string()),
            logs = php_str(&logs.display().to_string()),
            temp = php_str(&temp.display().to_string()),
            key = php_str(&crate::panel::random_hex(12)),
            panel = php_str(&c.panel_url),
            token = php_str(&c.token_file.display().to_string()),
            extra = c.extra,
        );
        std::fs::write(config.join("config.inc.php"), text).unwrap();

        let port = servers::free_port();
        let php = servers::find_program("php").expect("php");
        let mut cmd = Command::new(servers::find_program("unshare").expect("unshare"));
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            RC_WRAPPER,
        ])
        .arg("mailmfa-roundcube-ns")
        .arg(&plugins)
        .arg(&php)
        .args([
            "-d",
            "display_errors=stderr",
            "-d",
            "log_errors=1",
            "-d",
            "date.timezone=UTC",
            "-S",
        ])
        .arg(format!("127.0.0.1:{}", port.port()))
        .arg("-t")
        .arg(RC_PUBLIC)
        .env("ROUNDCUBE_CONFIG_DIR", &config)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("php.out")).unwrap())
        .stderr(std::fs::File::create(dir.join("php.err")).unwrap())
        .process_group(0);
        // SAFETY: prctl in the child between fork and exec; if the test process dies without
        // dropping us, the kernel kills the namespace's shell/php.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn php -S");
        let url = format!("http://127.0.0.1:{}/", port.port());
        let mut rc = Roundcube {
            child,
            url,
            dir,
            _port: port,
        };
        let addr: std::net::SocketAddr = format!("127.0.0.1:{}", rc._port.port()).parse().unwrap();
        let waited = servers::wait_for_port(addr, Duration::from_secs(15), || {
            match rc.child.try_wait() {
                Ok(Some(st)) => Err(format!("php -S exited ({st}) before listening")),
                _ => Ok(()),
            }
        });
        if let Err(e) = waited {
            panic!("{e}\n{}", rc.output());
        }
        // The first request makes the sqlite schema; the login form must be there.
        let body = rc.get("?_task=login");
        assert!(
            body.contains("rcmloginuser"),
            "Roundcube's first page has no login form:\n{body}\n{}",
            rc.output()
        );
        rc
    }

    /// GET `path` (relative to the base URL) and the body (any status).
    pub fn get(&self, path: &str) -> String {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut r = agent
            .get(format!("{}{path}", self.url))
            .call()
            .unwrap_or_else(|e| panic!("GET {}{path}: {e}", self.url));
        r.body_mut().read_to_string().unwrap_or_default()
    }

    /// Roundcube's `errors.log` lines (IMAP/SMTP errors, PHP errors).
    pub fn errors(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("logs/errors.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// php's stdout/stderr and Roundcube's logs, for panic messages.
    pub fn output(&self) -> String {
        let mut s = String::new();
        for f in ["php.err", "php.out", "logs/errors.log"] {
            s.push_str(&servers_tail(&self.dir.join(f), 40));
            s.push('\n');
        }
        s
    }

    /// This instance's dir (config/, logs/, plugins/...).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Roundcube {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- roundcube ---\n{}", self.output());
        }
        servers::stop_group(&mut self.child, libc::SIGTERM, Duration::from_secs(5));
    }
}

/// The last `n` lines of a file.
fn servers_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "--- {} ---\n{}",
        path.display(),
        lines[lines.len().saturating_sub(n)..].join("\n")
    )
}

// ---------------------------------------------------------------------------------------------
// The browser in Roundcube

/// The desktop window the tests use.
pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 900;

/// Polls `probe` every 100 ms for up to `timeout`; panics with `what`, the URL and the page
/// when it never returns Some.
pub fn wait_until<T>(
    b: &Browser,
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "waited {timeout:?} for {what}; at {}:\n{}",
                b.url(),
                b.source()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Roundcube's login form at `base`, filled and submitted (waits for the next page).
pub fn submit_login(b: &Browser, base: &str, user: &str, password: &str) {
    b.goto(&format!("{base}?_task=login"));
    b.fill("#rcmloginuser", user);
    b.fill("#rcmloginpwd", password);
    b.click("#rcmloginsubmit");
}

/// True when the login form is shown.
pub fn on_login_form(b: &Browser) -> bool {
    b.try_find("#rcmloginuser").is_some()
}

/// True when the plugin's code page is shown.
pub fn on_code_page(b: &Browser) -> bool {
    b.try_find("#mailmfa-code").is_some()
}

/// Types `code` into the code page and submits it (waits for the next page).
pub fn submit_code(b: &Browser, code: &str) {
    b.fill("#mailmfa-code", code);
    b.click("#mailmfa-code-submit");
}

/// True when Roundcube's JS is loaded and idle (no request under way).
pub fn rc_idle(b: &Browser) -> bool {
    b.execute(
        "return document.readyState === 'complete' && !!window.rcmail && \
         rcmail.busy === false;",
        json!([]),
    ) == json!(true)
}

/// Waits (up to 20 s) until the mail view shows a loaded message list, then asserts there is
/// no storage error on the page.
pub fn wait_mail_view(b: &Browser) {
    wait_until(b, "the message list", Duration::from_secs(20), || {
        (b.try_find("#messagelist").is_some() && rc_idle(b)).then_some(())
    });
    assert_no_storage_error(b, "mail view");
}

/// The strings of a JSON array (none for anything else).
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The texts of Roundcube's messages (`#messagestack`) now.
pub fn messages(b: &Browser) -> Vec<String> {
    let v = b.execute(
        "var s = document.getElementById('messagestack'); if (!s) return []; \
         return Array.from(s.children).map(function (e) { return e.textContent.trim(); });",
        json!([]),
    );
    strings(&v)
}

/// The storage error on the page, if any (`#messagestack`).
pub fn storage_error(b: &Browser) -> Option<String> {
    messages(b).into_iter().find(|m| m.contains(STORAGE_ERROR))
}

/// Panics when Roundcube shows a storage error.
pub fn assert_no_storage_error(b: &Browser, when: &str) {
    if let Some(e) = storage_error(b) {
        panic!("storage error after {when}: {e:?} at {}", b.url());
    }
}

/// Logs out through the task menu's Logout link (waits for the login page).
pub fn logout(b: &Browser) {
    b.click("a.logout");
    wait_until(
        b,
        "the login form after logout",
        Duration::from_secs(20),
        || on_login_form(b).then_some(()),
    );
}

/// Runs a Roundcube client command (`rcmail.command(name)`) and waits until it is done.
pub fn rc_command(b: &Browser, name: &str) {
    b.execute("rcmail.command(arguments[0]);", json!([name]));
    std::thread::sleep(Duration::from_millis(200));
    wait_until(
        b,
        &format!("command {name}"),
        Duration::from_secs(30),
        || rc_idle(b).then_some(()),
    );
}

/// Opens `folder` (`INBOX`, `Sent`, `Drafts`, `Trash`, `Junk`) by clicking it in the folder
/// list; waits until the list is loaded.
pub fn open_folder(b: &Browser, folder: &str) {
    let sel = format!("#mailboxlist a[rel=\"{folder}\"]");
    b.find(&sel).click();
    wait_until(
        b,
        &format!("folder {folder} open"),
        Duration::from_secs(30),
        || {
            (rc_idle(b) && b.execute("return rcmail.env.mailbox;", json!([])) == json!(folder))
                .then_some(())
        },
    );
    assert_no_storage_error(b, &format!("opening {folder}"));
}

/// The subjects in the message list now.
pub fn subjects(b: &Browser) -> Vec<String> {
    let v = b.execute(
        "return Array.from(document.querySelectorAll('#messagelist tbody tr .subject a, \
         #messagelist tbody tr span.subject')).map(function (e) { return e.textContent.trim(); });",
        json!([]),
    );
    strings(&v)
}

/// Composes a mail from `user` to `user` with `subject` and sends it; back in the mail view.
pub fn send_to_self(b: &Browser, base: &str, user: &str, subject: &str) {
    b.goto(&format!("{base}?_task=mail&_action=compose"));
    wait_until(b, "the compose form", Duration::from_secs(20), || {
        (b.try_find("#compose-subject").is_some() && rc_idle(b)).then_some(())
    });
    assert_no_storage_error(b, "opening compose");
    // Elastic's recipient widget: typing into its input, then a comma, makes a recipient.
    let to = b
        .try_find("#compose_to input")
        .or_else(|| b.try_find("#_to"))
        .expect("no To field");
    to.send_keys(&format!("{user}, "));
    b.fill("#compose-subject", subject);
    b.fill("#composebody", "Sent by the mailmfa webmail test.");
    b.execute("rcmail.command('send', {});", json!([]));
    wait_until(
        b,
        "the mail view after sending",
        Duration::from_secs(30),
        || (b.try_find("#messagelist").is_some() && rc_idle(b)).then_some(()),
    );
    assert_no_storage_error(b, "sending");
}

/// Refreshes the open folder (`checkmail`) until `subject` shows in the list (up to 30 s).
pub fn wait_for_subject(b: &Browser, subject: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if subjects(b).iter().any(|s| s == subject) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{subject:?} did not arrive within 30 s; list: {:?}",
            subjects(b)
        );
        rc_command(b, "checkmail");
        assert_no_storage_error(b, "refresh");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The two-step login: form with `PW`, then (with `code`) the code page; waits for the inbox.
pub fn login_to_inbox(b: &Browser, base: &str, user: &str, code: Option<&str>) {
    submit_login(b, base, user, PW);
    if let Some(code) = code {
        assert!(
            on_code_page(b),
            "no code page after the password of a mailbox with MFA: {}\n{}",
            b.url(),
            b.source()
        );
        submit_code(b, code);
    }
    wait_mail_view(b);
}

// ---------------------------------------------------------------------------------------------
// The plugin's pages and the panel's view of the session credential

/// Where screenshots go: docs/screenshots/ when env `MAILMFA_SCREENSHOTS` is set (non-empty),
/// else `tmp`.
pub fn shots_dir(tmp: &Path) -> PathBuf {
    match std::env::var("MAILMFA_SCREENSHOTS") {
        Ok(v) if !v.is_empty() => {
            let d = fixture::repo().join("docs").join("screenshots");
            std::fs::create_dir_all(&d).expect("docs/screenshots");
            d
        }
        _ => tmp.to_path_buf(),
    }
}

/// Settings → Two-factor authentication: checks that Roundcube's settings list links the
/// section ("Two-factor authentication", action `plugin.mailmfa`) and opens that page (the
/// page itself, not the list's iframe, so that the test reads it directly).
pub fn open_mfa_settings(b: &Browser, base: &str) {
    b.goto(&format!("{base}?_task=settings"));
    let links = b.execute(
        "return Array.from(document.querySelectorAll('#settings-menu a, #sections-table a, a'))\
         .filter(function (a) { return (a.getAttribute('href') || '').indexOf('plugin.mailmfa') >= 0; })\
         .map(function (a) { return a.textContent.trim(); });",
        json!([]),
    );
    let texts: Vec<&str> = links
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("Two-factor authentication")),
        "no \"Two-factor authentication\" link to plugin.mailmfa in Settings: {texts:?}\n{}",
        b.source()
    );
    b.goto(&format!("{base}?_task=settings&_action=plugin.mailmfa"));
    wait_until(b, "the MFA settings page", Duration::from_secs(20), || {
        b.try_find("#mailmfa-status").is_some().then_some(())
    });
    assert_no_storage_error(b, "opening the MFA settings");
}

/// The settings page's status text, lower-cased.
pub fn mfa_status(b: &Browser) -> String {
    b.text("#mailmfa-status").to_ascii_lowercase()
}

/// True when the status text says on ("... is on").
pub fn status_says_on(b: &Browser) -> bool {
    let s = mfa_status(b);
    s.contains(" on") && !s.contains(" off")
}

/// The text of the plugin's message line (`#mailmfa-message`), or "".
pub fn mfa_message(b: &Browser) -> String {
    b.try_find("#mailmfa-message")
        .map(|e| e.text())
        .unwrap_or_default()
}

/// Scrolls `selector` into the middle of the viewport.
pub fn scroll_to(b: &Browser, selector: &str) {
    b.execute(
        "var e = document.querySelector(arguments[0]); if (e) e.scrollIntoView({block: 'center'});",
        json!([selector]),
    );
    std::thread::sleep(Duration::from_millis(300));
}

impl WebmailWorld {
    /// `user`'s app passwords as the panel lists them (admin token).
    pub fn app_passwords(&self, user: &str) -> Vec<serde_json::Value> {
        let token = self.p.admin_token.clone().expect("admin token");
        let bearer = format!("Bearer {token}");
        let mut c = self.p.client();
        let r = c.get_with(
            "/api/v1/app-passwords",
            &[
                ("Authorization", bearer.as_str()),
                ("X-Mailmfa-Login", user),
            ],
        );
        if r.status == 409 || r.status == 404 {
            return Vec::new(); // MFA off: no record, no app passwords
        }
        assert_eq!(r.status, 200, "GET /api/v1/app-passwords: {}", r.body);
        let v = r.json();
        let list = if v.is_array() {
            v
        } else {
            v["app_passwords"].clone()
        };
        list.as_array().cloned().unwrap_or_default()
    }

    /// The names of `user`'s webmail session credentials (panel API, `"webmail": true`).
    pub fn webmail_credentials(&self, user: &str) -> Vec<String> {
        self.app_passwords(user)
            .iter()
            .filter(|a| a["webmail"] == json!(true))
            .filter_map(|a| a["name"].as_str().map(str::to_string))
            .collect()
    }

    /// The names of the `webmail-*` app passwords in `user`'s record on disk.
    pub fn record_credentials(&self, user: &str) -> Vec<String> {
        self.p
            .record(user)
            .map(|r| {
                r.app_passwords
                    .iter()
                    .map(|a| a.name.clone())
                    .filter(|n| n.starts_with("webmail-"))
                    .collect()
            })
            .unwrap_or_default()
    }
}
