//! One connection to the Redis/Valkey server per process, reused across logins.
//!
//! The connection lives in a process-wide slot ([`slot`]: reused, replaced after errors,
//! never shared across `fork`), opened on first use (connect, `AUTH`, `SELECT`). Every socket
//! operation is bounded by `redis_timeout_ms`; the password is read from its file at each
//! connect and zeroed after `AUTH`.

use super::address::{Address, Target};
use super::resp::{self, Reply};
use crate::config::RedisSettings;
use crate::store::net::slot::{self, Reusable, Shared};
use crate::store::net::tls::{self, TlsFiles};
use crate::store::net::{self, refused, Stream};
use crate::store::secure::{self, Owners};
use std::io::{self, BufReader, Write};
use std::sync::Mutex;
use std::time::Duration;
use zeroize::Zeroizing;

/// A Redis failure as the log's `detail` says it (no secret: never a password, and state
/// values are not echoed).
pub use crate::store::net::Failure;

/// The setting that bounds every socket operation, named when time runs out.
const TIMEOUT: &str = "redis_timeout_ms";

/// An open, authenticated connection.
pub struct Connection {
    stream: BufReader<Stream>,
    /// The last failure was the server closing or resetting the connection (it restarted,
    /// or dropped an idle client): worth one retry on a new connection.
    went_stale: bool,
}

impl Connection {
    /// Connects as `settings` say; `owners` may own the password file besides root.
    fn open(settings: &RedisSettings, owners: Owners) -> Result<Connection, Failure> {
        let address = Address::parse(&settings.url)?;
        let timeout = Duration::from_millis(settings.timeout_ms);
        let stream = match &address.target {
            Target::Tcp(host, port) if address.tls => {
                let files = TlsFiles {
                    ca_file: settings.tls_ca_file.as_deref(),
                    cert_file: settings.tls_cert_file.as_deref(),
                    key_file: settings.tls_key_file.as_deref(),
                    prefix: "redis_",
                    timeout_name: TIMEOUT,
                };
                let tcp = net::connect_tcp(host, *port, timeout, TIMEOUT)?;
                Stream::Tls(Box::new(tls::connect(tcp, host, &files, owners)?))
            }
            Target::Tcp(host, port) => {
                Stream::Tcp(net::connect_tcp(host, *port, timeout, TIMEOUT)?)
            }
            Target::Unix(path) => Stream::Unix(net::connect_unix(path, timeout)?),
        };
        let mut conn = Connection {
            stream: BufReader::with_capacity(16 * 1024, stream),
            went_stale: false,
        };
        if let Some(path) = &settings.password_file {
            let text = secure::read_secret(path, owners).map_err(|r| refused(path, r))?;
            let password = Zeroizing::new(text.lines().next().unwrap_or("").to_string());
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = &settings.user {
                args.push(user.as_bytes());
            }
            args.push(password.as_bytes());
            // The command is zeroed after it is sent; the reply never echoes the password.
            let command = Zeroizing::new(resp::encode(&args));
            let mut reply = conn.exchange(&command, 1)?;
            ok("AUTH", reply.pop().expect("one reply was read"))?;
        } else if settings.user.is_some() {
            return Err("`redis_user` is set but `redis_password_file` is not".to_string());
        }
        if address.db != 0 {
            let reply = conn.call(&[b"SELECT", address.db.to_string().as_bytes()])?;
            ok("SELECT", reply)?;
        }
        Ok(conn)
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> Result<Reply, Failure> {
        let mut replies = self.exchange(&resp::encode(args), 1)?;
        Ok(replies.pop().expect("one reply was read"))
    }

    /// Sends several commands at once (a pipeline: one round trip) and reads their replies.
    pub fn pipeline(&mut self, commands: &[&[&[u8]]]) -> Result<Vec<Reply>, Failure> {
        let bytes: Vec<u8> = commands.iter().flat_map(|c| resp::encode(c)).collect();
        self.exchange(&bytes, commands.len())
    }

    fn exchange(&mut self, bytes: &[u8], replies: usize) -> Result<Vec<Reply>, Failure> {
        let result = send_and_read(&mut self.stream, bytes, replies);
        if let Err(e) = &result {
            self.went_stale = net::went_stale(e);
        }
        result.map_err(|e| net::describe(e, TIMEOUT))
    }
}

/// Writes `bytes` and reads `replies` replies.
fn send_and_read(
    stream: &mut BufReader<Stream>,
    bytes: &[u8],
    replies: usize,
) -> io::Result<Vec<Reply>> {
    let inner = stream.get_mut();
    inner.write_all(bytes)?;
    inner.flush()?;
    (0..replies).map(|_| resp::read(stream)).collect()
}

/// Checks that `reply` to the command `what` is `+OK`.
pub fn ok(what: &str, reply: Reply) -> Result<(), Failure> {
    match reply {
        Reply::Status(s) if s == "OK" => Ok(()),
        Reply::Error(e) => Err(format!("{what} refused: {e}")),
        _ => Err(format!("{what}: unexpected reply")),
    }
}

static SLOT: Shared<RedisSettings, Connection> = Mutex::new(None);

impl Reusable for Connection {
    fn went_stale(&self) -> bool {
        self.went_stale
    }
}

/// Runs `work` on this process's connection for `settings` ([`slot::with_connection`]).
pub fn with_connection<T>(
    settings: &RedisSettings,
    owners: Owners,
    work: &mut dyn FnMut(&mut Connection) -> Result<T, Failure>,
) -> Result<T, Failure> {
    slot::with_connection(&SLOT, settings, owners, &Connection::open, work)
}
