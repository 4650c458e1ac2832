//! The socket layer every networked store shares (Redis/Valkey state, SQL records): one
//! stream type over TCP, TLS or a Unix socket, connects bounded by the store's timeout, and
//! failures worded for the log (never a password, never a value read from the server).

pub mod slot;
pub mod tls;

use super::secure::Refusal;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;
use tls::TlsStream;

/// A failure as the log's `detail` says it (no secret in it).
pub type Failure = String;

/// A connection's byte stream.
pub enum Stream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream>),
    /// A Unix socket.
    Unix(UnixStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tls(s) => s.flush(),
            _ => Ok(()),
        }
    }
}

/// Splits a URL's `host[:port]` (an IPv6 address in brackets), `default_port` when none is
/// given; the error says what is wrong, for the caller to prefix with the setting's name.
pub fn host_port(authority: &str, default_port: u16) -> Result<(String, u16), &'static str> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("has an unclosed `[`")?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err("needs a host");
    }
    let port = match port {
        None => default_port,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or("has a bad port")?,
    };
    Ok((host.to_string(), port))
}

/// Connects to `host:port` (each address it resolves to, in turn) within `timeout`, and
/// bounds every later read and write by it too. `timeout_name` is the setting an admin
/// would change (`redis_timeout_ms`, `sql_timeout_ms`), named when time runs out.
pub fn connect_tcp(
    host: &str,
    port: u16,
    timeout: Duration,
    timeout_name: &str,
) -> Result<TcpStream, Failure> {
    let addresses = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut last = format!("{host} has no address");
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => {
                stream
                    .set_read_timeout(Some(timeout))
                    .and_then(|()| stream.set_write_timeout(Some(timeout)))
                    .and_then(|()| stream.set_nodelay(true))
                    .map_err(|e| e.to_string())?;
                return Ok(stream);
            }
            Err(e) if is_timeout(&e) => {
                last = format!("cannot connect to {address}: no answer within {timeout_name}")
            }
            Err(e) => last = format!("cannot connect to {address}: {e}"),
        }
    }
    Err(last)
}

/// Connects to the Unix socket at `path`, every read and write bounded by `timeout`.
pub fn connect_unix(path: &Path, timeout: Duration) -> Result<UnixStream, Failure> {
    let stream = UnixStream::connect(path)
        .map_err(|e| format!("cannot connect to {}: {e}", path.display()))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

/// An I/O error as a failure; a timeout names `timeout_name`, the setting that bounds it.
pub fn describe(e: io::Error, timeout_name: &str) -> Failure {
    if is_timeout(&e) {
        format!("no answer within {timeout_name}")
    } else {
        e.to_string()
    }
}

/// Whether `e` is the server closing or resetting the connection (it restarted, or dropped an
/// idle client): worth one retry on a new connection. Decided on the error's kind, not its
/// text (which follows the host's locale).
pub fn went_stale(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A file a connection needs (password, key, certificates) that could not be used.
pub fn refused(path: &Path, refusal: Refusal) -> Failure {
    match refusal {
        Refusal::Unsafe(why) => format!("{}: {why}", path.display()),
        Refusal::Io(e) => format!("{}: {e}", path.display()),
    }
}
