// A real MariaDB server (Debian's mariadb-server) per test: a fresh data dir made by
// mariadb-install-db in a temp dir, its own port on 127.0.0.1 and Unix socket, the database
// `mail` (utf8mb4) and the user `mailmfa` (mysql_native_password, a generated password) with
// every right on it, optionally TLS with the test CA; stopped on Drop (and by the Daemon's
// watchdog if the test binary dies). Runs as root when the test is root (mariadbd wants
// `--user=root` then), else as the test's user. Each server has its own tmpdir: bootstraps
// running at once in the shared /tmp collide on their temporary tables. Used by the SQL
// store's tests.

use super::process::{run, Daemon, Kind};
use super::redis::Certificates;
use super::{free_port, program, wait_for_port, PortLease, TestDir};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The programs a MariaDB test needs, for `require_prereqs`.
pub const MARIADB_PREREQS: &[&str] = &["mariadbd", "mariadb-install-db", "mariadb", "mariadb-dump"];

/// A running mariadbd.
pub struct MariaDb {
    daemon: Daemon,
    lease: PortLease,
    password: String,
    /// The server's temp dir (its data dir `data/`, socket, logs, password file).
    pub dir: TestDir,
    /// Its Unix socket.
    pub socket: PathBuf,
    /// The certificates, when the server offers TLS.
    pub tls: Option<Certificates>,
}

impl MariaDb {
    /// Starts a fresh server without TLS, with the database `mail` and the user `mailmfa`.
    pub fn start() -> MariaDb {
        MariaDb::launch(false)
    }

    /// Like [`MariaDb::start`], with TLS offered on the port (certificates for 127.0.0.1 and
    /// localhost from a test CA, in [`MariaDb::tls`]).
    pub fn start_tls() -> MariaDb {
        MariaDb::launch(true)
    }

    fn launch(tls: bool) -> MariaDb {
        let dir = TestDir::new("mariadb");
        let lease = free_port();
        let socket = dir.join("mysqld.sock");
        let tls = tls.then(|| Certificates::make(dir.path()));
        let mut install = Command::new(program("mariadb-install-db"));
        install
            .args(["--no-defaults", "--auth-root-authentication-method=socket"])
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--tmpdir={}", dir.mkdir("tmp", 0o700).display()))
            .args(["--skip-test-db", "--innodb-log-file-size=8M"]);
        if crate::skip::is_root() {
            install.arg("--user=root");
        }
        run(&mut install).unwrap_or_else(|e| panic!("mariadb-install-db: {e}"));
        let mut bytes = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .expect("read /dev/urandom");
        let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let daemon = spawn(&dir, lease.port(), tls.as_ref());
        let db = MariaDb {
            daemon,
            lease,
            password,
            dir,
            socket,
            tls,
        };
        let pw = &db.password;
        db.root_sql(
            None,
            &format!(
                "CREATE DATABASE mail CHARACTER SET utf8mb4;
                 CREATE USER 'mailmfa'@'127.0.0.1' IDENTIFIED BY '{pw}';
                 CREATE USER 'mailmfa'@'localhost' IDENTIFIED BY '{pw}';
                 GRANT ALL ON mail.* TO 'mailmfa'@'127.0.0.1';
                 GRANT ALL ON mail.* TO 'mailmfa'@'localhost';"
            ),
        );
        db.dir.write("password", &format!("{pw}\n"));
        std::fs::set_permissions(db.password_file(), std::fs::Permissions::from_mode(0o600))
            .expect("chmod the password file");
        db
    }

    /// Its TCP port.
    pub fn port(&self) -> u16 {
        self.lease.port()
    }

    /// `mysql://mailmfa@127.0.0.1:<port>/mail` (with `?ssl-mode=VERIFY_IDENTITY` when the
    /// server offers TLS).
    pub fn url(&self) -> String {
        let tls = if self.tls.is_some() {
            "?ssl-mode=VERIFY_IDENTITY"
        } else {
            ""
        };
        format!("mysql://mailmfa@127.0.0.1:{}/mail{tls}", self.port())
    }

    /// `mysql://mailmfa@/mail?socket=<socket>`.
    pub fn socket_url(&self) -> String {
        format!("mysql://mailmfa@/mail?socket={}", self.socket.display())
    }

    /// The file holding `mailmfa`'s password (mode 0600).
    pub fn password_file(&self) -> PathBuf {
        self.dir.join("password")
    }

    /// `mailmfa`'s password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Runs `sql` as root in the database `mail` with the `mariadb` client over the socket
    /// and returns its output (`-N -B`: no column names, tab-separated); panics on failure.
    pub fn sql(&self, sql: &str) -> String {
        self.root_sql(Some("mail"), sql)
    }

    fn root_sql(&self, database: Option<&str>, sql: &str) -> String {
        let mut cmd = Command::new(program("mariadb"));
        cmd.arg("--no-defaults")
            .arg(format!("--socket={}", self.socket.display()))
            .args(["-u", "root", "-N", "-B"]);
        if let Some(database) = database {
            cmd.args(["-D", database]);
        }
        run(cmd.arg("-e").arg(sql)).unwrap_or_else(|e| panic!("mariadb: {e}"))
    }

    /// The database `mail` as `mariadb-dump` writes it (without the dump's date).
    pub fn dump(&self) -> String {
        let mut cmd = Command::new(program("mariadb-dump"));
        cmd.arg("--no-defaults")
            .arg(format!("--socket={}", self.socket.display()))
            .args(["-u", "root", "--skip-dump-date", "mail"]);
        run(&mut cmd).unwrap_or_else(|e| panic!("mariadb-dump: {e}"))
    }

    /// Stops the server (the port stays leased and the data dir kept, for
    /// [`MariaDb::start_again`]).
    pub fn stop(&mut self) {
        self.resume();
        self.daemon.stop();
    }

    /// Starts the server again on the same data dir, port and socket after
    /// [`MariaDb::stop`] (or stops it first).
    pub fn start_again(&mut self) {
        self.stop();
        self.daemon = spawn(&self.dir, self.port(), self.tls.as_ref());
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing answers.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Sends the signal `name` to mariadbd; a server already stopped has no process left to
    /// signal, which is not an error here.
    fn signal(&self, name: &str) {
        let pid = self.daemon.pid().to_string();
        let _ = run(Command::new(program("kill")).args(["-s", name, &pid]));
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Spawns mariadbd on the data dir in `dir` and waits until `port` accepts connections and
/// the socket is there.
fn spawn(dir: &TestDir, port: u16, tls: Option<&Certificates>) -> Daemon {
    let path = |name: &str| dir.join(name).display().to_string();
    let mut cmd = Command::new(program("mariadbd"));
    cmd.arg("--no-defaults");
    if crate::skip::is_root() {
        cmd.arg("--user=root");
    }
    cmd.args([
        format!("--datadir={}", path("data")),
        format!("--socket={}", path("mysqld.sock")),
        format!("--port={port}"),
        "--bind-address=127.0.0.1".to_string(),
        format!("--tmpdir={}", path("tmp")),
        format!("--pid-file={}", path("mariadbd.pid")),
        format!("--log-error={}", path("mariadbd.err")),
        "--innodb-buffer-pool-size=16M".to_string(),
        "--innodb-log-file-size=8M".to_string(),
        "--skip-log-bin".to_string(),
        "--innodb-flush-log-at-trx-commit=0".to_string(),
        "--skip-name-resolve".to_string(),
    ]);
    if let Some(certs) = tls {
        cmd.arg(format!("--ssl-ca={}", certs.ca.display()))
            .arg(format!("--ssl-cert={}", certs.server.0.display()))
            .arg(format!("--ssl-key={}", certs.server.1.display()));
    }
    let mut daemon = Daemon::spawn("mariadbd", Kind::Graceful, cmd, &dir.join("mariadbd.out"));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let socket = dir.join("mysqld.sock");
    wait_for_port(addr, Duration::from_secs(60), || daemon.check_alive())
        .and_then(|()| super::wait_for_path(&socket, Duration::from_secs(10)))
        .unwrap_or_else(|e| {
            panic!(
                "mariadbd: {e}\n{}",
                super::tail(&dir.join("mariadbd.err"), 40)
            )
        });
    daemon
}
