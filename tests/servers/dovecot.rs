// A throwaway Dovecot 2.3 (IMAP + POP3 on 127.0.0.1, passdb pam) per test, started inside the
// harness's mount namespace so it reads the test's pam.d and logs PAM lines to the test.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::logs::{LogFile, SyslogReceiver};
use super::process::{run, Daemon, Kind};
use super::{PortLease, TestDir};

/// uid/gid the static userdb gives every user: no passwd entry needed, above first_valid_uid.
pub const MAIL_UID: u32 = 5000;

/// Knobs for `Dovecot::start`. `Default` is what the tests normally want: no auth cache,
/// `auth_verbose = yes`, nothing extra.
#[derive(Clone, Debug, Default)]
pub struct DovecotOpts {
    /// `auth_cache_size` (e.g. "1M"); None leaves Dovecot's default (0 = off). The PAM passdb
    /// is cached only when `passdb_args` also has a `cache_key=` (e.g. `cache_key=%u%r`).
    pub auth_cache_size: Option<String>,
    /// `auth_debug = yes` (logs every PAM conversation step to the Dovecot log).
    pub auth_debug: bool,
    /// `auth_username_format`; None keeps Dovecot's default `%Lu` (lower-cases the login name
    /// before PAM sees it). Use `Some("%u")` to pass names through untouched.
    pub auth_username_format: Option<String>,
    /// Turns off Dovecot's per-client-IP auth penalty (2 s growing to 15 s after each failed
    /// login from one IP, on top of `auth_failure_delay`) by making its anvil socket
    /// unreachable. Off = Dovecot's production behaviour; use a fresh source address per
    /// failing client instead where that is what the test is about.
    pub disable_auth_penalty: bool,
    /// Extra passdb args placed before the service name (e.g. "cache_key=%u%r",
    /// "failure_show_msg=yes").
    pub passdb_args: String,
    /// Appended verbatim to dovecot.conf (later settings override earlier ones).
    pub extra_conf: String,
}

/// A running Dovecot. Dropping it stops the whole process group and removes its dir.
///
/// Timing to expect: a refused login is answered 0-0.5 s late even with
/// `auth_failure_delay = 0` (failures are flushed by a 500 ms timer), and each further failure
/// from the same client IP waits for the auth penalty (about 4.5 s here) unless
/// `disable_auth_penalty` is set.
pub struct Dovecot {
    daemon: Daemon,
    syslog: SyslogReceiver,
    log: LogFile,
    imap: SocketAddr,
    pop3: SocketAddr,
    conf: PathBuf,
    base_dir: PathBuf,
    _ports: [PortLease; 2],
    dir: TestDir,
}

impl Dovecot {
    /// Writes a dovecot.conf whose passdb is PAM service `service` (or `%s` for imap/pop3),
    /// checks it with `doveconf -n`, starts `dovecot -F` in a namespace where /etc/pam.d is
    /// `pam_d` and /dev/log is this server's `syslog()`, and waits until IMAP and POP3 accept.
    pub fn start(pam_d: &Path, service: &str, opts: &DovecotOpts) -> Dovecot {
        let started = Instant::now();
        let dir = TestDir::new("dovecot");
        let base_dir = dir.mkdir("run", 0o755);
        let state_dir = dir.mkdir("state", 0o750);
        let home = dir.mkdir("home", 0o755);
        chown(&home, MAIL_UID, MAIL_UID);
        let log_path = dir.join("dovecot.log");
        let ports = [super::free_port(), super::free_port()];
        let (imap_port, pop3_port) = (ports[0].port(), ports[1].port());
        let instance = format!(
            "mailmfa-test-{}",
            dir.path().file_name().unwrap().to_string_lossy()
        );

        let conf_text = render_conf(&ConfParams {
            instance: &instance,
            base_dir: &base_dir,
            state_dir: &state_dir,
            log_path: &log_path,
            home: &home,
            imap_port,
            pop3_port,
            service,
            opts,
        });
        let conf = dir.write("dovecot.conf", &conf_text);
        if let Err(e) = run(Command::new(super::program("doveconf"))
            .arg("-c")
            .arg(&conf)
            .arg("-n"))
        {
            panic!(
                "doveconf rejected {}:\n{e}\n--- conf ---\n{conf_text}",
                conf.display()
            );
        }

        let syslog = SyslogReceiver::bind(&dir.join("syslog.sock"));
        let scratch = dir.mkdir("ns-scratch", 0o700);
        let dovecot = super::program("dovecot");
        let conf_str = conf.to_str().expect("UTF-8 temp path");
        let cmd = super::ns::namespaced(
            pam_d,
            syslog.path(),
            &scratch,
            &dovecot,
            &["-F", "-c", conf_str],
        );
        let mut daemon = Daemon::spawn("dovecot", Kind::Graceful, cmd, &dir.join("dovecot.out"));
        let imap = SocketAddr::from((Ipv4Addr::LOCALHOST, imap_port));
        let pop3 = SocketAddr::from((Ipv4Addr::LOCALHOST, pop3_port));
        let auth_socket = base_dir.join("auth-client-for-postfix");
        let ready = super::wait_for_port(imap, Duration::from_secs(10), || daemon.check_alive())
            .and_then(|()| {
                super::wait_for_port(pop3, Duration::from_secs(5), || daemon.check_alive())
            })
            .and_then(|()| super::wait_for_path(&auth_socket, Duration::from_secs(5)));
        if let Err(e) = ready {
            panic!(
                "dovecot did not come up: {e}\n{}\n{}",
                super::tail(&log_path, 40),
                super::tail(&dir.join("dovecot.out"), 40)
            );
        }
        eprintln!("dovecot up in {:?}", started.elapsed());
        Dovecot {
            daemon,
            syslog,
            log: LogFile::new(log_path),
            imap,
            pop3,
            conf,
            base_dir,
            _ports: ports,
            dir,
        }
    }

    /// Where IMAP listens (127.0.0.1:port).
    pub fn imap_addr(&self) -> SocketAddr {
        self.imap
    }

    /// Where POP3 listens (127.0.0.1:port).
    pub fn pop3_addr(&self) -> SocketAddr {
        self.pop3
    }

    /// Dovecot's SASL socket for Postfix (`smtpd_sasl_type = dovecot`), mode 0666.
    pub fn auth_socket(&self) -> PathBuf {
        self.base_dir.join("auth-client-for-postfix")
    }

    /// Syslog lines from inside the namespace (PAM modules in the auth workers).
    pub fn syslog(&self) -> &SyslogReceiver {
        &self.syslog
    }

    /// Dovecot's own log (`log_path`: auth results, `rip=`, errors).
    pub fn log(&self) -> &LogFile {
        &self.log
    }

    /// The generated dovecot.conf.
    pub fn conf_path(&self) -> &Path {
        &self.conf
    }

    /// This server's temp dir (config, state, homes under `home/`, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The dir holding every mailbox's home (`<dir>/home/<login>`, owned by `MAIL_UID`), in
    /// which the static userdb's `home=.../%u` and `mail_location = maildir:~/Maildir` put the
    /// Maildirs: Postfix's `virtual_mailbox_base` for `PostfixOpts::deliver_to`.
    pub fn home_dir(&self) -> PathBuf {
        self.dir.join("home")
    }

    /// The dovecot master's PID.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{}\n--- dovecot syslog ---\n{}",
                super::tail(self.log.path(), 40),
                self.syslog.lines().join("\n")
            );
        }
        self.daemon.stop();
    }
}

/// Everything `render_conf` needs.
struct ConfParams<'a> {
    instance: &'a str,
    base_dir: &'a Path,
    state_dir: &'a Path,
    log_path: &'a Path,
    home: &'a Path,
    imap_port: u16,
    pop3_port: u16,
    service: &'a str,
    opts: &'a DovecotOpts,
}

/// The `service PROTO-login` block of dovecot.conf: PROTO on 127.0.0.1:`port`, its TLS
/// listener off.
fn login_service(proto: &str, port: u16) -> String {
    format!(
        "service {proto}-login {{\n  inet_listener {proto} {{\n    address = 127.0.0.1\n    \
         port = {port}\n  }}\n  inet_listener {proto}s {{\n    port = 0\n  }}\n}}\n"
    )
}

/// The dovecot.conf text.
fn render_conf(p: &ConfParams) -> String {
    let mut c = format!(
        r#"# Generated by the mailmfa integration-test harness.
instance_name = {instance}
base_dir = {base_dir}
state_dir = {state_dir}
log_path = {log_path}
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_verbose = yes
mail_location = maildir:~/Maildir
first_valid_uid = {uid}

passdb {{
  driver = pam
  args = {passdb_args} {service}
}}
userdb {{
  driver = static
  args = uid={uid} gid={uid} home={home}/%u allow_all_users=yes
}}

{imap_login}{pop3_login}service auth {{
  unix_listener auth-client-for-postfix {{
    mode = 0666
  }}
}}
"#,
        instance = p.instance,
        base_dir = p.base_dir.display(),
        state_dir = p.state_dir.display(),
        log_path = p.log_path.display(),
        home = p.home.display(),
        uid = MAIL_UID,
        passdb_args = p.opts.passdb_args,
        service = p.service,
        imap_login = login_service("imap", p.imap_port),
        pop3_login = login_service("pop3", p.pop3_port),
    );
    if let Some(size) = &p.opts.auth_cache_size {
        c.push_str(&format!("auth_cache_size = {size}\n"));
    }
    if let Some(format) = &p.opts.auth_username_format {
        c.push_str(&format!("auth_username_format = {format}\n"));
    }
    if p.opts.disable_auth_penalty {
        // The auth process then fails to connect (as $default_internal_user) and runs without
        // penalties; Dovecot logs nothing about it.
        c.push_str("service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n");
    }
    if p.opts.auth_debug {
        c.push_str("auth_debug = yes\n");
    }
    c.push_str(&p.opts.extra_conf);
    c.push('\n');
    c
}

/// chown(2) or panic.
fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}
