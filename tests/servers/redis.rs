// A real redis-server (Debian's package) per test: its own port on 127.0.0.1 and Unix socket
// in a temp dir, no persistence unless asked, ACL users from the test, stopped on Drop. Runs
// as the test's user (no root needed). Used by the shared-state tests (issue 14).

use super::process::{Daemon, Kind};
use super::{free_port, program, wait_for_port, PortLease, TestDir};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Options for [`Redis::start`].
#[derive(Clone, Debug, Default)]
pub struct RedisOpts {
    /// Extra `redis.conf` lines (e.g. `maxmemory`, `user ...` ACL lines).
    pub conf: Vec<String>,
    /// TLS only on the port (`rediss://`), with `tls-auth-clients` set to this (`yes`, `no`,
    /// `optional`); the certificates are made by [`Certificates::make`] in the server's dir.
    pub tls_auth_clients: Option<&'static str>,
}

/// A test CA and the certificates it signed (PEM files, keys mode 0600), made with `openssl`.
#[derive(Clone, Debug)]
pub struct Certificates {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The server's certificate (for 127.0.0.1 and localhost) and key.
    pub server: (PathBuf, PathBuf),
    /// A client certificate and key.
    pub client: (PathBuf, PathBuf),
}

impl Certificates {
    /// Makes a CA, a server and a client certificate in `dir`.
    pub fn make(dir: &Path) -> Certificates {
        let openssl = |args: &[&str]| {
            let out = Command::new(program("openssl"))
                .args(args)
                .current_dir(dir)
                .output()
                .expect("run openssl");
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"],
                &key[..],
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-subj",
                    "/CN=mailmfa test CA",
                    "-days",
                    "2",
                ],
            ]
            .concat(),
        );
        for (name, ext) in [
            (
                "server",
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
            ),
            ("client", "extendedKeyUsage=clientAuth"),
        ] {
            let (csr, crt, keyf, extf) = (
                format!("{name}.csr"),
                format!("{name}.crt"),
                format!("{name}.key"),
                format!("{name}.ext"),
            );
            std::fs::write(dir.join(&extf), ext).unwrap();
            openssl(
                &[
                    &["req"],
                    &key[..],
                    &[
                        "-keyout",
                        &keyf,
                        "-out",
                        &csr,
                        "-subj",
                        &format!("/CN=mailmfa test {name}"),
                    ],
                ]
                .concat(),
            );
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                &extf,
            ]);
        }
        for k in ["ca.key", "server.key", "client.key"] {
            std::fs::set_permissions(dir.join(k), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        Certificates {
            ca: dir.join("ca.crt"),
            server: (dir.join("server.crt"), dir.join("server.key")),
            client: (dir.join("client.crt"), dir.join("client.key")),
        }
    }
}

/// A running redis-server.
pub struct Redis {
    daemon: Daemon,
    lease: PortLease,
    /// The server's temp dir (its config, socket and log).
    pub dir: TestDir,
    /// Its Unix socket.
    pub socket: PathBuf,
    /// The certificates, when the port speaks TLS.
    pub tls: Option<Certificates>,
}

impl Redis {
    /// Starts redis-server and waits until it accepts connections.
    pub fn start(opts: RedisOpts) -> Redis {
        let dir = TestDir::new("redis");
        let lease = free_port();
        let socket = dir.join("redis.sock");
        let tls = opts
            .tls_auth_clients
            .map(|_| Certificates::make(dir.path()));
        let mut conf = vec![
            match &tls {
                Some(_) => format!("port 0\ntls-port {}", lease.port()),
                None => format!("port {}", lease.port()),
            },
            "bind 127.0.0.1".to_string(),
            format!("unixsocket {}", socket.display()),
            "unixsocketperm 700".to_string(),
            format!("dir {}", dir.path().display()),
            "save \"\"".to_string(),
            "appendonly no".to_string(),
            "daemonize no".to_string(),
            "protected-mode no".to_string(),
            "logfile \"\"".to_string(),
        ];
        if let (Some(certs), Some(auth)) = (&tls, opts.tls_auth_clients) {
            conf.extend([
                format!("tls-cert-file {}", certs.server.0.display()),
                format!("tls-key-file {}", certs.server.1.display()),
                format!("tls-ca-cert-file {}", certs.ca.display()),
                format!("tls-auth-clients {auth}"),
            ]);
        }
        conf.extend(opts.conf);
        dir.write("redis.conf", &(conf.join("\n") + "\n"));
        let daemon = spawn(&dir, lease.port());
        Redis {
            daemon,
            lease,
            dir,
            socket,
            tls,
        }
    }

    /// Starts the server again after [`Redis::stop`], on the same port and socket (empty: no
    /// persistence unless the options asked for it).
    pub fn restart(&mut self) {
        self.daemon.stop();
        self.daemon = spawn(&self.dir, self.port());
    }

    /// Its TCP port.
    pub fn port(&self) -> u16 {
        self.lease.port()
    }

    /// `redis://127.0.0.1:<port>/<db>` (`rediss://` when the port speaks TLS).
    pub fn url(&self, db: u32) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/{db}", self.port())
    }

    /// The server's pid (to stop or continue it with signals).
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// Runs one command as the default user (no password) and returns the reply as
    /// `redis-cli` prints it (raw).
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(program("redis-cli"));
        cmd.args(["-p", &self.port().to_string(), "--raw"]);
        if let Some(certs) = &self.tls {
            cmd.arg("--tls").arg("--cacert").arg(&certs.ca);
            cmd.arg("--cert").arg(&certs.client.0);
            cmd.arg("--key").arg(&certs.client.1);
        }
        let out = cmd.args(args).output().expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// Stops the server (the port stays leased, so it can be started again on it).
    pub fn stop(&mut self) {
        self.daemon.stop();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.daemon.stop();
    }
}

/// Spawns redis-server on the config in `dir` and waits until `port` accepts connections.
fn spawn(dir: &TestDir, port: u16) -> Daemon {
    let mut cmd = Command::new(program("redis-server"));
    cmd.arg(dir.join("redis.conf"));
    let mut daemon = Daemon::spawn("redis-server", Kind::Graceful, cmd, &dir.join("redis.log"));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    wait_for_port(addr, Duration::from_secs(10), || daemon.check_alive())
        .unwrap_or_else(|e| panic!("redis-server: {e}"));
    daemon
}

/// A TCP server on 127.0.0.1 that is not Redis: it answers every connection with `reply`
/// once and then (if `hang`) keeps the socket open without a word, for the "garbage" and
/// "slow" cases. Runs in a thread until the test ends.
pub fn impostor(reply: &'static [u8], hang: bool) -> u16 {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = stream.write_all(reply);
            if hang {
                kept.push(stream);
            }
        }
    });
    port
}

/// Whether something accepts TCP connections on `port`.
pub fn listening(port: u16) -> bool {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A TCP server on 127.0.0.1 that plays a script: for each `(commands, reply)` it reads that
/// many RESP commands (arrays of bulk strings) from the client, then writes `reply`; after
/// the script it closes. One connection, then it stops. For replies a real server never
/// sends at that point.
pub fn scripted(script: Vec<(usize, &'static [u8])>) -> u16 {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        let mut read_line = |reader: &mut BufReader<TcpStream>| -> Option<String> {
            line.clear();
            (reader.read_line(&mut line).ok()? > 0).then(|| line.trim_end().to_string())
        };
        for (commands, reply) in script {
            for _ in 0..commands {
                let Some(head) = read_line(&mut reader) else {
                    return;
                };
                let n: usize = head.trim_start_matches('*').parse().unwrap_or(0);
                for _ in 0..n {
                    let Some(len) = read_line(&mut reader) else {
                        return;
                    };
                    let len: usize = len.trim_start_matches('$').parse().unwrap_or(0);
                    let mut data = vec![0; len + 2];
                    if std::io::Read::read_exact(&mut reader, &mut data).is_err() {
                        return;
                    }
                }
            }
            if stream.write_all(reply).is_err() {
                return;
            }
        }
    });
    port
}
