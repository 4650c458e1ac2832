// A throwaway Cyrus saslauthd (`-a pam`) per test, inside the harness's mount namespace so it
// reads the test's pam.d and its PAM modules log to the test's syslog receiver.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::logs::{LogFile, SyslogReceiver};
use super::process::{run, Daemon, Kind};
use super::TestDir;

/// Knobs for `Saslauthd::start_with`. `Default` is Debian's stock behaviour minus the cache.
#[derive(Clone, Copy, Debug, Default)]
pub struct SaslauthdOpts {
    /// `-r`: hand PAM `user@realm` as the login. Without it, a Cyrus client (Postfix) that
    /// gets `alice@example.org` splits it and PAM sees only `alice` (realm `example.org`).
    pub realm_in_login: bool,
    /// `-c`: saslauthd's credential cache, which answers a repeated user+password without
    /// asking PAM (a replay hole for password+code logins).
    pub cache: bool,
}

/// A running saslauthd. Dropping it stops its process group and removes its dir.
pub struct Saslauthd {
    daemon: Daemon,
    syslog: SyslogReceiver,
    log: LogFile,
    mux_dir: PathBuf,
    dir: TestDir,
}

impl Saslauthd {
    /// `start_with(pam_d, &SaslauthdOpts::default())`.
    pub fn start(pam_d: &Path) -> Saslauthd {
        Saslauthd::start_with(pam_d, &SaslauthdOpts::default())
    }

    /// Starts `saslauthd -a pam -m DIR -n 2 -d` (plus `-r`/`-c` per `opts`) in a namespace
    /// where /etc/pam.d is `pam_d` and /dev/log is this server's `syslog()`, and waits until its
    /// socket accepts. The PAM service is whatever the SASL client asks for (Postfix:
    /// `smtpd_sasl_service`, default `smtp`). It leads its own process group (what `setsid`
    /// would give it: on SIGTERM it signals its whole group) and is SIGKILLed on stop.
    pub fn start_with(pam_d: &Path, opts: &SaslauthdOpts) -> Saslauthd {
        let started = Instant::now();
        let dir = TestDir::new("saslauthd");
        let mux_dir = dir.mkdir("mux", 0o755);
        let syslog = SyslogReceiver::bind(&dir.join("syslog.sock"));
        let scratch = dir.mkdir("ns-scratch", 0o700);
        let out = dir.join("saslauthd.out");
        let mux_str = mux_dir.to_str().expect("UTF-8 temp path");
        let mut args = vec!["-a", "pam", "-m", mux_str, "-n", "2", "-d"];
        if opts.realm_in_login {
            args.push("-r");
        }
        if opts.cache {
            args.push("-c");
        }
        let cmd = super::ns::namespaced(
            pam_d,
            syslog.path(),
            &scratch,
            &super::program("saslauthd"),
            &args,
        );
        let mut daemon = Daemon::spawn("saslauthd", Kind::KillOnStop, cmd, &out);
        let mux = mux_dir.join("mux");
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&mux).is_err() {
            if let Err(e) = daemon.check_alive() {
                panic!("saslauthd did not come up: {e}");
            }
            if Instant::now() >= deadline {
                panic!(
                    "saslauthd socket {} not ready within 10 s\n{}",
                    mux.display(),
                    super::tail(&out, 40)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("saslauthd up in {:?}", started.elapsed());
        Saslauthd {
            daemon,
            syslog,
            log: LogFile::new(out),
            mux_dir,
            dir,
        }
    }

    /// The `saslauthd_path` for Cyrus clients (DIR/mux).
    pub fn mux_path(&self) -> PathBuf {
        self.mux_dir.join("mux")
    }

    /// Syslog lines from inside the namespace (PAM modules run in saslauthd's workers).
    pub fn syslog(&self) -> &SyslogReceiver {
        &self.syslog
    }

    /// saslauthd's stderr (`-d` debug output).
    pub fn log(&self) -> &LogFile {
        &self.log
    }

    /// Asks saslauthd directly with `testsaslauthd -s service -u user -p password`:
    /// true on "OK", false on "NO".
    pub fn check(&self, service: &str, user: &str, password: &str) -> bool {
        let out = run(std::process::Command::new(super::program("testsaslauthd"))
            .arg("-f")
            .arg(self.mux_path())
            .args(["-s", service, "-u", user, "-p", password]));
        match out {
            Ok(text) => text.starts_with("0: OK"),
            Err(text) if text.contains("0: NO") => false,
            Err(text) => panic!("testsaslauthd: {text}"),
        }
    }

    /// The saslauthd process's PID.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// This server's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Saslauthd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{}\n--- saslauthd syslog ---\n{}",
                super::tail(self.log.path(), 40),
                self.syslog.lines().join("\n")
            );
        }
        self.daemon.stop();
    }
}
