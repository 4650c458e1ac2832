// A real PostgreSQL server per test: a fresh cluster (initdb) in a temp dir, its own port on
// 127.0.0.1 and Unix socket dir, the role `mailmfa` (SCRAM password from the test) owning the
// database `mail`, the superuser `postgres` trusted over the socket for the harness's psql and
// pg_dump; stopped on Drop (and by the Daemon watchdog if the test binary dies). initdb and
// postgres refuse to run as root: as root they run as the `postgres` system user (setpriv),
// with the cluster's dirs given to it; otherwise as the test's user. Optionally TLS with the
// test CA of `redis::Certificates`. Used by the SQL records tests (tests/sql_postgres_*.rs).

use super::process::{run, Daemon, Kind};
use super::redis::Certificates;
use super::{find_program, free_port, program, wait_until, PortLease, TestDir};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The programs the harness runs (Debian: postgresql; `setpriv` too when the tests run as
/// root, from util-linux).
pub const POSTGRES_PREREQS: &[&str] = &["initdb", "postgres", "psql", "pg_dump"];

/// The system user the server runs as when the tests run as root.
const SERVER_USER: &str = "postgres";

/// Whether a PostgreSQL server can be started here; when not, the test is skipped loudly (or
/// fails under CI) naming what is missing.
pub fn have_postgres() -> bool {
    let mut missing: Vec<String> = POSTGRES_PREREQS
        .iter()
        .filter(|name| find_program(name).is_none())
        .map(|name| name.to_string())
        .collect();
    if crate::skip::is_root() {
        if find_program("setpriv").is_none() {
            missing.push("setpriv".to_string());
        }
        match system_user(SERVER_USER) {
            None => missing.push(format!("the `{SERVER_USER}` system user")),
            Some(_) if !traversable(&std::env::temp_dir()) => missing.push(format!(
                "a temp dir the `{SERVER_USER}` user can reach (TMPDIR={})",
                std::env::temp_dir().display()
            )),
            Some(_) => {}
        }
    }
    crate::skip::require_all(&missing)
}

/// A running PostgreSQL server.
pub struct Postgres {
    daemon: Daemon,
    lease: PortLease,
    /// The server's temp dir (cluster, socket dir, log, password file, certificates).
    pub dir: TestDir,
    /// The dir of the server's Unix socket (`.s.PGSQL.<port>`).
    pub socket_dir: PathBuf,
    /// The certificates, when the server speaks TLS.
    pub tls: Option<Certificates>,
    password: String,
    paused: bool,
}

impl Postgres {
    /// Makes a cluster with the role `mailmfa` (a generated password, stored with SCRAM)
    /// owning the database `mail`, starts the server and waits until it takes logins.
    pub fn start() -> Postgres {
        Postgres::make(false)
    }

    /// Like [`Postgres::start`], with TLS on (`sslmode=verify-full` works with the CA of
    /// [`Postgres::tls`] against 127.0.0.1).
    pub fn start_with_tls() -> Postgres {
        Postgres::make(true)
    }

    fn make(tls: bool) -> Postgres {
        let dir = TestDir::new("postgres");
        let lease = free_port();
        let owner = server_owner();
        let data = dir.mkdir("data", 0o700);
        let socket_dir = dir.mkdir("sock", 0o755);
        for d in [&data, &socket_dir] {
            give(d, owner);
        }
        let tls = tls.then(|| {
            let certs = Certificates::make(&dir.mkdir("tls", 0o755));
            give(&certs.server.0, owner);
            give(&certs.server.1, owner);
            certs
        });
        let mut initdb = server_command("initdb");
        initdb
            .args(["-D", &data.to_string_lossy(), "-U", "postgres"])
            .args(["--auth=trust", "--no-sync", "--no-locale", "-E", "UTF8"])
            .current_dir(dir.path());
        run(&mut initdb).unwrap_or_else(|e| panic!("initdb: {e}"));
        write_hba(&data, "scram-sha-256");
        let mut server = Postgres {
            daemon: spawn(&dir, &data, &socket_dir, lease.port(), tls.as_ref()),
            lease,
            dir,
            socket_dir,
            tls,
            password: generated_password(),
            paused: false,
        };
        server.wait_ready();
        server.superuser(
            "postgres",
            &format!(
                "SET password_encryption = 'scram-sha-256';\
                 CREATE ROLE mailmfa LOGIN PASSWORD '{}';",
                server.password
            ),
        );
        server.superuser("postgres", "CREATE DATABASE mail OWNER mailmfa");
        let file = server
            .dir
            .write("password", &format!("{}\n", server.password));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod password file");
        server
    }

    /// Its TCP port.
    pub fn port(&self) -> u16 {
        self.lease.port()
    }

    /// `postgresql://mailmfa@127.0.0.1:<port>/mail` (with `?sslmode=verify-full` when the
    /// server speaks TLS).
    pub fn url(&self) -> String {
        let tls = if self.tls.is_some() {
            "?sslmode=verify-full"
        } else {
            ""
        };
        format!("postgresql://mailmfa@127.0.0.1:{}/mail{tls}", self.port())
    }

    /// `postgresql://mailmfa@/mail?host=<socket dir>&port=<port>`.
    pub fn socket_url(&self) -> String {
        format!(
            "postgresql://mailmfa@/mail?host={}&port={}",
            self.socket_dir.display(),
            self.port()
        )
    }

    /// The password of `mailmfa`.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A file (mode 0600, the test's user's) holding the password of `mailmfa` and a newline.
    pub fn password_file(&self) -> PathBuf {
        self.dir.join("password")
    }

    /// Runs `sql` in the database `mail` as the superuser and returns what `psql -At` prints;
    /// panics when it fails.
    pub fn psql(&self, sql: &str) -> String {
        self.superuser("mail", sql)
    }

    /// `pg_dump` of the database `mail` (as the superuser).
    pub fn dump(&self) -> String {
        let mut cmd = Command::new(tool("pg_dump"));
        cmd.args(self.superuser_args("mail"));
        run(&mut cmd).unwrap_or_else(|e| panic!("pg_dump: {e}"))
    }

    /// Makes `mailmfa` log in with `method` (a pg_hba.conf method: `trust`, `password`,
    /// `md5`, `scram-sha-256`) over TCP and the socket, and restarts the server to apply it.
    pub fn set_auth(&mut self, method: &str) {
        write_hba(&self.dir.join("data"), method);
        self.stop();
        self.start_again();
    }

    /// Stops the server (fast shutdown: sessions are ended); the port stays leased, the
    /// cluster kept, for [`Postgres::start_again`].
    pub fn stop(&mut self) {
        self.resume();
        let postmaster = self.daemon.pid();
        signal(&[postmaster], "INT");
        wait_until(Duration::from_secs(30), "postgres stopped", || {
            self.daemon.check_alive().is_err()
        });
        self.daemon.stop();
    }

    /// Starts the server again after [`Postgres::stop`]: same cluster, port and socket.
    pub fn start_again(&mut self) {
        self.daemon.stop();
        let data = self.dir.join("data");
        self.daemon = spawn(
            &self.dir,
            &data,
            &self.socket_dir,
            self.port(),
            self.tls.as_ref(),
        );
        self.wait_ready();
    }

    /// Freezes the server (SIGSTOP to the postmaster and every process it started: each
    /// session leads a process group of its own): connections stay open, nothing answers.
    pub fn pause(&mut self) {
        signal(&self.processes(), "STOP");
        self.paused = true;
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&mut self) {
        if self.paused {
            signal(&self.processes(), "CONT");
            self.paused = false;
        }
    }

    /// The postmaster and its children (from /proc).
    fn processes(&self) -> Vec<u32> {
        let postmaster = self.daemon.pid();
        let children = std::fs::read_dir("/proc")
            .expect("read /proc")
            .filter_map(|entry| {
                let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                // `pid (comm) state ppid ...`: comm may hold spaces, never the last `)`.
                let ppid: u32 = stat
                    .rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()?;
                (ppid == postmaster).then_some(pid)
            });
        std::iter::once(postmaster).chain(children).collect()
    }

    /// Waits until the superuser can log in (the server is up and out of recovery).
    fn wait_ready(&mut self) {
        let mut cmd = Command::new(tool("psql"));
        cmd.args(self.superuser_args("postgres"))
            .args(["-c", "SELECT 1"]);
        wait_until(Duration::from_secs(60), "postgres takes logins", || {
            if let Err(e) = self.daemon.check_alive() {
                panic!("postgres: {e}");
            }
            run(&mut cmd).is_ok()
        });
    }

    fn superuser(&self, database: &str, sql: &str) -> String {
        let mut cmd = Command::new(tool("psql"));
        cmd.args(self.superuser_args(database)).args([
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ]);
        run(&mut cmd).unwrap_or_else(|e| panic!("psql: {e}"))
    }

    fn superuser_args(&self, database: &str) -> Vec<String> {
        vec![
            "-h".to_string(),
            self.socket_dir.to_string_lossy().into_owned(),
            "-p".to_string(),
            self.port().to_string(),
            "-U".to_string(),
            "postgres".to_string(),
            "-d".to_string(),
            database.to_string(),
        ]
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.resume();
        // A fast shutdown ends the sessions (SIGTERM to the postmaster alone would wait for
        // them); the Daemon then makes sure, and retires the watchdog.
        if self.daemon.check_alive().is_ok() {
            signal(&[self.daemon.pid()], "INT");
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while self.daemon.check_alive().is_ok() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.daemon.stop();
    }
}

/// Writes the cluster's pg_hba.conf: `mailmfa` logs in with `method` over TCP and the socket
/// alike; the harness's superuser is trusted on the socket only.
fn write_hba(data: &Path, method: &str) {
    std::fs::write(
        data.join("pg_hba.conf"),
        format!(
            "local all postgres trust\n\
             local all mailmfa {method}\n\
             host all mailmfa 127.0.0.1/32 {method}\n"
        ),
    )
    .expect("write pg_hba.conf");
}

/// Spawns the server on the cluster in `data`.
fn spawn(
    dir: &TestDir,
    data: &Path,
    socket_dir: &Path,
    port: u16,
    tls: Option<&Certificates>,
) -> Daemon {
    let mut cmd = server_command("postgres");
    cmd.arg("-D")
        .arg(data)
        .arg("-k")
        .arg(socket_dir)
        .args(["-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
        .args(["-c", "synchronous_commit=off"])
        .current_dir(dir.path());
    if let Some(certs) = tls {
        cmd.args(["-c", "ssl=on"])
            .arg("-c")
            .arg(format!("ssl_cert_file={}", certs.server.0.display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", certs.server.1.display()));
    }
    Daemon::spawn("postgres", Kind::Graceful, cmd, &dir.join("postgres.log"))
}

/// A command running the server's program `name`: as the `postgres` system user when the
/// tests run as root (setpriv execs it: the pid is the program's), else as the test's user.
fn server_command(name: &str) -> Command {
    let program = tool(name);
    if !crate::skip::is_root() {
        return Command::new(program);
    }
    let mut cmd = Command::new(super::program("setpriv"));
    cmd.args([
        &format!("--reuid={SERVER_USER}"),
        &format!("--regid={SERVER_USER}"),
        "--clear-groups",
        "--",
    ])
    .arg(program);
    cmd
}

/// A PostgreSQL program of the same version as `postgres` (Debian's `psql` in PATH is a
/// wrapper choosing among versions).
fn tool(name: &str) -> PathBuf {
    let server = std::fs::canonicalize(program("postgres")).expect("resolve postgres");
    let sibling = server.with_file_name(name);
    if sibling.exists() {
        sibling
    } else {
        program(name)
    }
}

/// The uid and gid the server's files must have: the `postgres` user's as root, else none
/// (the test's user owns them already).
fn server_owner() -> Option<(u32, u32)> {
    if crate::skip::is_root() {
        Some(system_user(SERVER_USER).expect("the postgres system user (checked first)"))
    } else {
        None
    }
}

/// Gives `path` to `owner`, if any.
fn give(path: &Path, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

/// The uid and gid of the system user `name`, from /etc/passwd.
fn system_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields[..] {
            [user, _, uid, gid, ..] if user == name => Some((uid.parse().ok()?, gid.parse().ok()?)),
            _ => None,
        }
    })
}

/// Whether every dir from `/` to `dir` lets other users through (mode o+x), as the server's
/// user needs to reach its cluster inside the test's temp dir.
fn traversable(dir: &Path) -> bool {
    dir.ancestors().all(|d| {
        std::fs::metadata(d)
            .map(|m| m.mode() & 0o001 != 0)
            .unwrap_or(false)
    })
}

/// A fresh password of 24 letters and digits.
fn generated_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("random bytes");
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// Sends `signal` to the processes `pids` with kill(1) (the tests' user may be root, the
/// server's another).
fn signal(pids: &[u32], signal: &str) {
    let mut cmd = Command::new(program("sh"));
    cmd.args([
        "-c",
        "s=$1; shift; kill -s \"$s\" -- \"$@\"",
        "kill",
        signal,
    ]);
    cmd.args(pids.iter().map(u32::to_string));
    // A session may end between listing and signalling: only the postmaster must be there.
    if let Err(e) = run(&mut cmd) {
        assert!(
            !Path::new(&format!("/proc/{}", pids[0])).exists(),
            "kill -s {signal}: {e}"
        );
    }
}
