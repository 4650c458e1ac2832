// A throwaway Postfix 3.7 instance (SMTP AUTH on 127.0.0.1, SASL via Dovecot or via Cyrus
// saslauthd) with its own config, queue and data dirs. Mail goes to discard:, except, with
// `PostfixOpts::deliver_to`, mail for the named test mailboxes, which Postfix's `virtual` agent
// writes into the Maildirs a harness Dovecot reads. Its `sendmail` (`sendmail -C CONF_DIR`)
// submits into this instance, not the machine's Postfix.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::logs::LogFile;
use super::process::{run, Daemon, Kind};
use super::{PortLease, TestDir};

/// Where Postfix's smtpd gets SASL from.
#[derive(Clone, Debug)]
pub enum SmtpSasl {
    /// `smtpd_sasl_type = dovecot` with this socket (`Dovecot::auth_socket()`).
    Dovecot(PathBuf),
    /// `smtpd_sasl_type = cyrus`, `pwcheck_method: saslauthd` with this socket
    /// (`Saslauthd::mux_path()`), mechanisms PLAIN and LOGIN.
    Saslauthd(PathBuf),
}

/// Knobs for `Postfix::start`.
#[derive(Clone, Debug)]
pub struct PostfixOpts {
    /// Where SASL comes from.
    pub sasl: SmtpSasl,
    /// `smtpd_sasl_service`: the PAM service name saslauthd uses (default "smtp"); Dovecot
    /// ignores it.
    pub sasl_service: String,
    /// Appended verbatim to main.cf (later settings override earlier ones).
    pub extra_main_cf: String,
    /// Appended verbatim to master.cf (e.g. a `virtual` delivery service).
    pub extra_master_cf: String,
    /// Deliver mail for some mailboxes into Maildirs (see [`PostfixOpts::deliver_to`]);
    /// None: every message is discarded.
    pub deliver: Option<MaildirDelivery>,
}

/// Delivery by Postfix's `virtual` agent: mail for each of `mailboxes` (`user@domain`) goes to
/// `<base>/<user@domain>/Maildir/` (made on first delivery), files owned by `uid`:`uid`. Mail
/// for other addresses in those domains bounces (`unknown user`; the bounce to the sender is
/// discarded, as is mail for every other domain).
///
/// The mailboxes are listed, not matched by a pattern: Postfix forbids `$1` substitution in
/// `virtual_mailbox_maps` ("regular expression substitution is not allowed").
#[derive(Clone, Debug)]
pub struct MaildirDelivery {
    /// `virtual_mailbox_base`: the dir holding one home per mailbox (Dovecot's `home/`).
    pub base: PathBuf,
    /// The addresses that have a mailbox, as Dovecot logins (`alice@example.com`); their
    /// domains become `virtual_mailbox_domains`.
    pub mailboxes: Vec<String>,
    /// `virtual_uid_maps` and `virtual_gid_maps` (Dovecot's `MAIL_UID`).
    pub uid: u32,
}

impl PostfixOpts {
    /// SASL through a running Dovecot's auth socket.
    pub fn dovecot(dovecot: &super::Dovecot) -> PostfixOpts {
        PostfixOpts {
            sasl: SmtpSasl::Dovecot(dovecot.auth_socket()),
            sasl_service: "smtp".into(),
            extra_main_cf: String::new(),
            extra_master_cf: String::new(),
            deliver: None,
        }
    }

    /// SASL through a running saslauthd, PAM service `smtp`.
    pub fn saslauthd(saslauthd: &super::Saslauthd) -> PostfixOpts {
        PostfixOpts {
            sasl: SmtpSasl::Saslauthd(saslauthd.mux_path()),
            sasl_service: "smtp".into(),
            extra_main_cf: String::new(),
            extra_master_cf: String::new(),
            deliver: None,
        }
    }

    /// Also deliver mail for `mailboxes` (e.g. `["alice@example.com"]`) into `dovecot`'s
    /// Maildirs (`home/<address>/Maildir/`, uid `MAIL_UID`), where the mailbox's owner reads it
    /// over IMAP; everything else is still discarded (see [`MaildirDelivery`]).
    pub fn deliver_to(mut self, dovecot: &super::Dovecot, mailboxes: &[&str]) -> PostfixOpts {
        self.deliver = Some(MaildirDelivery {
            base: dovecot.home_dir(),
            mailboxes: mailboxes.iter().map(|m| m.to_string()).collect(),
            uid: super::dovecot::MAIL_UID,
        });
        self
    }
}

/// A running Postfix master. Dropping it stops the master (and its children, which share its
/// process group) and removes the dir.
pub struct Postfix {
    daemon: Daemon,
    log: LogFile,
    smtp: SocketAddr,
    conf_dir: PathBuf,
    sendmail: PathBuf,
    _port: PortLease,
    dir: TestDir,
}

impl Postfix {
    /// Writes main.cf/master.cf (and smtpd.conf for Cyrus), runs `postfix -c DIR check`, starts
    /// the master (`master -c DIR -s`, in the foreground) and waits until the SMTP port accepts.
    pub fn start(opts: &PostfixOpts) -> Postfix {
        let started = Instant::now();
        let dir = TestDir::new("postfix");
        let conf_dir = dir.mkdir("etc", 0o755);
        let queue = dir.mkdir("queue", 0o755);
        let data = dir.mkdir("data", 0o700);
        std::os::unix::fs::chown(&data, Some(postfix_uid()), None).expect("chown data dir");
        let maillog = dir.join("maillog");
        let lease = super::free_port();
        let port = lease.port();

        let sasl = match &opts.sasl {
            SmtpSasl::Dovecot(socket) => format!(
                "smtpd_sasl_type = dovecot\nsmtpd_sasl_path = {}\n",
                socket.display()
            ),
            SmtpSasl::Saslauthd(mux) => {
                // Debian's Postfix reads CONFIG_DIR/sasl/smtpd.conf whatever
                // cyrus_sasl_config_path says; set both so either build finds it.
                let sasl_dir = dir.mkdir("etc/sasl", 0o755);
                std::fs::write(
                    sasl_dir.join("smtpd.conf"),
                    format!(
                        "pwcheck_method: saslauthd\nsaslauthd_path: {}\nmech_list: PLAIN LOGIN\n",
                        mux.display()
                    ),
                )
                .expect("write smtpd.conf");
                format!(
                    "smtpd_sasl_type = cyrus\n\
                     smtpd_sasl_path = smtpd\n\
                     cyrus_sasl_config_path = {}\n",
                    sasl_dir.display()
                )
            }
        };
        let delivery = match &opts.deliver {
            None => String::new(),
            Some(d) => {
                // Backdated like main.cf: else the `virtual` agent's texthash reader waits for
                // the file to "stop changing" (300 ms steps, about 1-2 s) at the first delivery.
                let maps = dir.write("etc/virtual_mailboxes", &mailbox_map(d));
                backdate(&maps);
                delivery_main_cf(d, &maps)
            }
        };
        let main_cf = format!(
            r#"# Generated by the mailmfa integration-test harness.
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
maillog_file = {maillog}
maillog_file_prefixes = {root}
myhostname = mailmfa-test.localdomain
mydomain = localdomain
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
alias_maps =
alias_database =
local_recipient_maps =
biff = no
default_transport = discard:
relay_transport = discard:
local_transport = discard:
smtpd_peername_lookup = no
smtpd_tls_security_level = none
smtpd_error_sleep_time = 0
smtpd_sasl_auth_enable = yes
smtpd_sasl_security_options = noanonymous
smtpd_sasl_service = {service}
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
{sasl}{delivery}{extra}
"#,
            queue = queue.display(),
            data = data.display(),
            maillog = maillog.display(),
            root = dir.path().display(),
            service = opts.sasl_service,
            extra = opts.extra_main_cf,
        );
        // Postfix refuses to read a main.cf younger than about 2 s (it sleeps in 300 ms steps
        // until the file "stops changing"): backdate both files so start-up takes 0.2 s, not 2.
        backdate(&dir.write("etc/main.cf", &main_cf));
        backdate(&dir.write(
            "etc/master.cf",
            &format!(
                "{}{}{}",
                master_cf(port),
                if opts.deliver.is_some() {
                    VIRTUAL_SERVICE
                } else {
                    ""
                },
                opts.extra_master_cf
            ),
        ));

        // `postfix check` creates the queue dirs and validates the config (what `postfix start`
        // runs first); then the master is started directly, so that it is our child and the
        // watchdog can reach it (`postfix start-fg` runs it under a shell, in its own session).
        let with_conf = |program: &str, args: &[&str]| {
            let mut cmd = Command::new(super::program(program));
            cmd.arg("-c").arg(&conf_dir).args(args);
            run(&mut cmd)
        };
        if let Err(e) = with_conf("postfix", &["check"]) {
            panic!("postfix check failed: {e}\n{}", super::tail(&maillog, 40));
        }
        let daemon_dir = with_conf("postconf", &["-h", "daemon_directory"])
            .unwrap_or_else(|e| panic!("postconf: {e}"));
        let sendmail = with_conf("postconf", &["-h", "sendmail_path"])
            .unwrap_or_else(|e| panic!("postconf: {e}"));
        let sendmail = PathBuf::from(sendmail.trim());
        let mut cmd = Command::new(Path::new(daemon_dir.trim()).join("master"));
        cmd.arg("-c").arg(&conf_dir).arg("-s");
        let out = dir.join("master.out");
        let mut daemon = Daemon::spawn("postfix master", Kind::SessionLeader, cmd, &out);
        let smtp = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let ready = super::wait_for_port(smtp, Duration::from_secs(10), || daemon.check_alive());
        if let Err(e) = ready {
            panic!(
                "postfix did not come up: {e}\n{}\n{}",
                super::tail(&maillog, 40),
                super::tail(&out, 40)
            );
        }
        eprintln!("postfix up in {:?}", started.elapsed());
        Postfix {
            daemon,
            log: LogFile::new(maillog),
            smtp,
            conf_dir,
            sendmail,
            _port: lease,
            dir,
        }
    }

    /// Where smtpd listens (127.0.0.1:port).
    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp
    }

    /// Postfix's `maillog_file` (smtpd's `SASL LOGIN authentication failed` lines etc.).
    pub fn log(&self) -> &LogFile {
        &self.log
    }

    /// The config dir holding main.cf and master.cf.
    pub fn conf_dir(&self) -> &Path {
        &self.conf_dir
    }

    /// This server's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The master's PID (also its process group ID).
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// The command that submits mail into this instance: Postfix's `sendmail` (its
    /// `sendmail_path`) with `-C CONF_DIR`, e.g. `["/usr/sbin/sendmail", "-C",
    /// "/tmp/mailmfa-postfix-XXXXXX/etc"]`. The caller appends its own arguments (mailmfa:
    /// `-i -f SENDER -- RECIPIENT`) and writes the message to its stdin. No environment is
    /// needed (sendmail hands the dir to postdrop itself).
    ///
    /// Root only, as the tests run: Postfix trusts a non-default config dir from root. Any
    /// other uid gets `sendmail: fatal: open file /etc/postfix/main.cf` and exit 75, since it
    /// must find the dir in `alternate_config_directories` of the machine's main.cf (which
    /// these machines do not even have; the harness never touches /etc).
    pub fn sendmail_argv(&self) -> Vec<String> {
        vec![
            self.sendmail.display().to_string(),
            "-C".into(),
            self.conf_dir.display().to_string(),
        ]
    }

    /// [`Postfix::sendmail_argv`] as a TOML array, for `sendmail = ...` in mailmfa.toml.
    pub fn sendmail_toml(&self) -> String {
        let words: Vec<String> = self
            .sendmail_argv()
            .iter()
            .map(|w| format!("\"{}\"", w.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        format!("[{}]", words.join(", "))
    }

    /// Submits `message` (headers and body, `\n` line ends) like mailmfa does:
    /// `sendmail -C CONF_DIR -i -f FROM -- TO` with the message on stdin. Panics with the
    /// command's output and the mail log's tail unless it exits 0. Exit 0 means queued (in
    /// `maildrop/`), not delivered: it is 0 even when the master is down. Delivery then happens
    /// asynchronously (pickup, cleanup, qmgr, virtual: about 10-60 ms here); wait for it with
    /// `ImapClient::wait_for_messages`.
    pub fn sendmail(&self, from: &str, to: &str, message: &[u8]) {
        let argv = self.sendmail_argv();
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .args(["-i", "-f", from, "--", to])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
        let written = child
            .stdin
            .take()
            .expect("sendmail stdin")
            .write_all(message);
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait for {argv:?}: {e}"));
        if let Err(e) = written {
            panic!("writing the message to {argv:?}: {e}");
        }
        assert!(
            out.status.success(),
            "{argv:?} -i -f {from} -- {to} failed ({}):\n{}{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            super::tail(self.log.path(), 40)
        );
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", super::tail(self.log.path(), 40));
        }
        self.daemon.stop();
    }
}

/// master.cf: the SMTP listener on 127.0.0.1:`port`, the internal services Postfix needs, and
/// postlog for `maillog_file`; nothing chrooted.
fn master_cf(port: u16) -> String {
    format!(
        "\
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:{port} inet n - n - - smtpd
pickup     unix  n       -       n       60      1       pickup
cleanup    unix  n       -       n       -       0       cleanup
qmgr       unix  n       -       n       300     1       qmgr
rewrite    unix  -       -       n       -       -       trivial-rewrite
bounce     unix  -       -       n       -       0       bounce
defer      unix  -       -       n       -       0       bounce
trace      unix  -       -       n       -       0       bounce
verify     unix  -       -       n       -       1       verify
flush      unix  n       -       n       1000?   0       flush
proxymap   unix  -       -       n       -       -       proxymap
proxywrite unix  -       -       n       -       1       proxymap
showq      unix  n       -       n       -       -       showq
error      unix  -       -       n       -       -       error
retry      unix  -       -       n       -       -       error
discard    unix  -       -       n       -       -       discard
anvil      unix  -       -       n       -       1       anvil
scache     unix  -       -       n       -       1       scache
postlog    unix-dgram n  -       n       -       1       postlogd
"
    )
}

/// The master.cf line of Postfix's `virtual` delivery agent: not unprivileged (it runs as
/// root to take the mailbox's uid), not chrooted.
const VIRTUAL_SERVICE: &str = "virtual    unix  -       n       n       -       -       virtual\n";

/// The main.cf lines of a [`MaildirDelivery`], `maps` being its table of mailboxes.
fn delivery_main_cf(d: &MaildirDelivery, maps: &Path) -> String {
    let mut domains: Vec<String> = d
        .mailboxes
        .iter()
        .map(|m| match m.rsplit_once('@') {
            Some((_, domain)) if !domain.is_empty() => domain.to_ascii_lowercase(),
            _ => panic!("MaildirDelivery: mailbox {m:?} is not user@domain"),
        })
        .collect();
    domains.sort_unstable();
    domains.dedup();
    assert!(!domains.is_empty(), "MaildirDelivery without a mailbox");
    format!(
        "virtual_mailbox_domains = {domains}\n\
         virtual_mailbox_base = {base}\n\
         virtual_mailbox_maps = texthash:{maps}\n\
         virtual_uid_maps = static:{uid}\n\
         virtual_gid_maps = static:{uid}\n\
         virtual_minimum_uid = 100\n\
         virtual_transport = virtual\n",
        domains = domains.join(", "),
        base = d.base.display(),
        maps = maps.display(),
        uid = d.uid,
    )
}

/// The texthash table mapping each mailbox to `<address>/Maildir/` under
/// `virtual_mailbox_base`: the home Dovecot's static userdb (`home=.../home/%u`) gives that
/// login. Written in lower case, as Dovecot's default `auth_username_format = %Lu` names the
/// home and as Postfix folds the recipient before looking it up.
fn mailbox_map(d: &MaildirDelivery) -> String {
    d.mailboxes
        .iter()
        .map(|m| {
            let m = m.to_ascii_lowercase();
            assert!(
                !m.contains(['/', ' ', '\t', '\n']) && !m.starts_with('.'),
                "MaildirDelivery: mailbox {m:?} cannot be a directory name"
            );
            format!("{m} {m}/Maildir/\n")
        })
        .collect()
}

/// Sets a file's mtime one minute into the past.
fn backdate(path: &Path) {
    let past = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(past))
        .unwrap_or_else(|e| panic!("backdate {}: {e}", path.display()));
}

/// The `postfix` user's uid (Postfix's `mail_owner`, which must own `data_directory`).
fn postfix_uid() -> u32 {
    let name = std::ffi::CString::new("postfix").unwrap();
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(!pw.is_null(), "no `postfix` user on this machine");
    unsafe { (*pw).pw_uid }
}
