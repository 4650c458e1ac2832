// Integration-test harness that starts REAL mail servers (Dovecot, Postfix, saslauthd) per test,
// each in its own temp dir, with a private /etc/pam.d and a /dev/log the test can read.
// Owned by the integration-test harness; shared by test files via `mod servers;`.
//
// Everything here needs root (mount namespaces, daemons that drop privileges). Use
// `require_prereqs` at the top of each test so machines without the servers skip loudly.
#![allow(dead_code)]

pub mod client;
pub mod dovecot;
pub mod logs;
pub mod mariadb;
pub mod ns;
pub mod pamdir;
pub mod postfix;
pub mod postgres;
mod process;
pub mod redis;
pub mod saslauthd;

// Re-exports for test files; each test file uses only some of them.
#[allow(unused_imports)]
pub use client::{
    connect_from, imap_login, pop3_login, smtp_auth_login, smtp_auth_plain, ImapClient, Login,
    Pop3Client, SmtpClient, SmtpReply,
};
#[allow(unused_imports)]
pub use dovecot::{Dovecot, DovecotOpts};
#[allow(unused_imports)]
pub use logs::{LogFile, SyslogReceiver, DEFAULT_WAIT};
#[allow(unused_imports)]
pub use mariadb::{MariaDb, MARIADB_PREREQS};
#[allow(unused_imports)]
pub use pamdir::PamDir;
#[allow(unused_imports)]
pub use postfix::{Postfix, PostfixOpts, SmtpSasl};
#[allow(unused_imports)]
pub use postgres::{Postgres as PostgresServer, POSTGRES_PREREQS};
#[allow(unused_imports)]
pub use process::stop_group;
#[allow(unused_imports)]
pub use redis::{Redis, RedisOpts};
#[allow(unused_imports)]
pub use saslauthd::{Saslauthd, SaslauthdOpts};

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where PAM modules live on Debian and friends; `require_prereqs` looks for `*.so` names here.
const PAM_MODULE_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu/security",
    "/usr/lib/x86_64-linux-gnu/security",
    "/lib/aarch64-linux-gnu/security",
    "/usr/lib/aarch64-linux-gnu/security",
    "/lib/security",
    "/usr/lib/security",
    "/lib64/security",
];

/// Checks that the test can run here: root, plus every named program (searched in PATH,
/// /usr/sbin, /sbin) and every name ending in `.so` (searched in the PAM module dirs).
/// When something is missing: see [`skip_unless_none_missing`].
pub fn require_prereqs(names: &[&str]) -> bool {
    let mut missing: Vec<String> = Vec::new();
    if !crate::skip::is_root() {
        missing.push(crate::skip::ROOT.to_string());
    }
    for name in names {
        let found = if name.ends_with(".so") {
            PAM_MODULE_DIRS
                .iter()
                .any(|d| Path::new(d).join(name).exists())
        } else {
            find_program(name).is_some()
        };
        if !found {
            missing.push(name.to_string());
        }
    }
    crate::skip::require_all(&missing)
}

/// True when `missing` is empty. Otherwise the test cannot run here: `crate::skip::missing`
/// fails it under CI and elsewhere prints `SKIPPED: <test>: missing <missing>`; then false.
pub fn skip_unless_none_missing(missing: &str) -> bool {
    if missing.is_empty() {
        return true;
    }
    crate::skip::missing(missing);
    false
}

/// Full path of a program, searched in PATH and then /usr/sbin, /sbin, /usr/bin, /bin, and
/// last in the newest PostgreSQL's bin dir (Debian keeps `initdb` and `postgres` out of PATH).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .chain(postgres_bin_dir().map(|d| d.join(name)))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        });
    found
}

/// Debian's `/usr/lib/postgresql/<major>/bin` of the newest major version installed.
fn postgres_bin_dir() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .max()
        .map(|(_, dir)| dir)
}

/// Like `find_program`, but panics with a clear message when the program is missing.
pub(crate) fn program(name: &str) -> PathBuf {
    find_program(name)
        .unwrap_or_else(|| panic!("program `{name}` not found (run require_prereqs first)"))
}

/// A TCP port on 127.0.0.1 reserved for one server: free when picked, and not handed to any
/// other harness user (thread or process: nextest runs every test in its own process) while the
/// lease lives, through an flock on `$TMPDIR/mailmfa-test-ports/<port>`.
pub struct PortLease {
    port: u16,
    _lock: File,
}

impl PortLease {
    /// The port number.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Leases a free TCP port for a server to listen on. Ports come from below the kernel's
/// ephemeral range (so client connections never take them between pick and bind), starting at
/// a per-process offset, and are checked by binding once.
pub fn free_port() -> PortLease {
    const LOW: u32 = 12_000;
    const SPAN: u32 = 18_000; // 12000..30000, below the usual 32768 ephemeral floor
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let lock_dir = std::env::temp_dir().join("mailmfa-test-ports");
    std::fs::create_dir_all(&lock_dir).expect("create port lock dir");
    let seed = std::process::id().wrapping_mul(7919);
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + seed.wrapping_add(n) % SPAN) as u16;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_dir.join(port.to_string()))
            .expect("open port lock file");
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return PortLease { port, _lock: lock };
        }
    }
    panic!("no free TCP port in {LOW}..{}", LOW + SPAN);
}

/// A per-server temp dir, mode 0711 so daemons that drop privileges (Postfix's smtpd, Dovecot's
/// imap) can reach sockets and homes inside it. Kept after the test (and its path printed) when
/// env `MAILMFA_KEEP_TEST_DIRS=1`.
pub struct TestDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl TestDir {
    /// Creates a fresh dir named `mailmfa-<what>-XXXXXX` under the system temp dir.
    pub fn new(what: &str) -> TestDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("mailmfa-{what}-"))
            .tempdir()
            .expect("create temp dir");
        let path = dir.path().to_path_buf();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o711))
            .expect("chmod temp dir");
        TestDir {
            dir: Some(dir),
            path,
        }
    }

    /// The dir's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path()/rel`.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// Creates `path()/rel` (and parents) with the given mode and returns it.
    pub fn mkdir(&self, rel: &str, mode: u32) -> PathBuf {
        let p = self.join(rel);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
        p
    }

    /// Writes `path()/rel` and returns its path.
    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let p = self.join(rel);
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::env::var("MAILMFA_KEEP_TEST_DIRS").as_deref() == Ok("1") {
            if let Some(dir) = self.dir.take() {
                eprintln!("kept test dir {}", dir.keep().display());
            }
        }
    }
}

/// Waits until `addr` accepts TCP connections, or `alive` reports an error, or `timeout` passes.
pub(crate) fn wait_for_port(
    addr: SocketAddr,
    timeout: Duration,
    mut alive: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        alive()?;
        if Instant::now() >= deadline {
            return Err(format!(
                "{addr} did not accept connections within {timeout:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `done` returns true (checked every 50 ms); panics naming `what` when `timeout`
/// passes first. The timeout only bounds a hang: the test waits on the event, not the clock.
pub fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out ({timeout:?}) waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `path` exists.
pub(crate) fn wait_for_path(path: &Path, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        if Instant::now() >= deadline {
            return Err(format!(
                "{} did not appear within {timeout:?}",
                path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// The last `n` lines of a file (or a note that it is missing), for panic messages.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            format!(
                "--- {} (last {} lines) ---\n{}",
                path.display(),
                lines.len() - start,
                lines[start..].join("\n")
            )
        }
        Err(e) => format!("--- {}: {e} ---", path.display()),
    }
}
