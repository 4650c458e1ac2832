//! The PostgreSQL wire client of the SQL records store: a small blocking one (protocol 3.0)
//! that connects over TCP, TLS (`sslmode=verify-full`) or the server's Unix socket, logs in
//! (trust, cleartext, MD5 or SCRAM-SHA-256 without channel binding), runs one statement per
//! round trip with its parameters bound apart from its text (the extended query protocol),
//! and runs migration scripts (the simple query protocol). Every socket operation is bounded
//! by `sql_timeout_ms`. `postgres-protocol` encodes the messages, frames the replies and does
//! SCRAM; no async runtime. Errors never hold the password or a bound value.
//!
//! The codec's buffers are `bytes::BytesMut`, which this crate does not depend on itself: they
//! are made with `Default::default()` and their type is inferred from the codec's functions.

mod wire;

use super::address::{Address, Dialect, Target};
use super::client::{Client, Outcome, Param, SqlError};
use crate::store::net::tls::{self, TlsFiles};
use crate::store::net::{self, Stream};
use crate::store::secure::Owners;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use postgres_protocol::IsNull;
use std::io::{self, BufReader, Read, Write};
use std::time::Duration;
use wire::{affected, error_fields, password_message, read_frame, row};
use zeroize::Zeroizing;

/// The setting that bounds every socket operation, named when time runs out.
const TIMEOUT: &str = "sql_timeout_ms";

/// An open, logged-in connection to a PostgreSQL server.
pub struct Postgres {
    stream: BufReader<Stream>,
    /// The last message read, whole (tag, length, body).
    frame: Vec<u8>,
    /// A connection failure left the stream unusable (mid-message, closed or timed out).
    broken: bool,
    /// The last failure was the server closing or resetting the connection.
    went_stale: bool,
}

/// Connects to the server `address` names (a PostgreSQL one) and logs in as its user with
/// `password` (`sql_password_file`'s, when set) if the server asks for one; `tls` and
/// `owners` are for `sslmode=verify-full`. Every socket operation is bounded by `timeout`.
pub fn connect(
    address: &Address,
    password: Option<&str>,
    timeout: Duration,
    tls: &TlsFiles<'_>,
    owners: Owners,
) -> Result<Postgres, SqlError> {
    if address.dialect != Dialect::Postgres {
        return Err(SqlError::Connection(
            "`sql_url` is not a PostgreSQL one".to_string(),
        ));
    }
    let stream = match &address.target {
        Target::Tcp(host, port) if address.tls => {
            let tcp =
                net::connect_tcp(host, *port, timeout, TIMEOUT).map_err(SqlError::Connection)?;
            Stream::Tls(Box::new(start_tls(tcp, host, tls, owners)?))
        }
        Target::Tcp(host, port) => Stream::Tcp(
            net::connect_tcp(host, *port, timeout, TIMEOUT).map_err(SqlError::Connection)?,
        ),
        Target::Unix(path) => {
            Stream::Unix(net::connect_unix(path, timeout).map_err(SqlError::Connection)?)
        }
    };
    let mut pg = Postgres {
        stream: BufReader::with_capacity(16 * 1024, stream),
        frame: Vec::new(),
        broken: false,
        went_stale: false,
    };
    pg.log_in(&address.user, &address.database, password)?;
    Ok(pg)
}

/// Asks the server for TLS on `tcp` (SSLRequest) and does the handshake.
fn start_tls(
    mut tcp: std::net::TcpStream,
    host: &str,
    files: &TlsFiles<'_>,
    owners: Owners,
) -> Result<tls::TlsStream, SqlError> {
    let mut request = Default::default();
    frontend::ssl_request(&mut request);
    let mut answer = [0u8];
    tcp.write_all(&request)
        .and_then(|()| tcp.read_exact(&mut answer))
        .map_err(|e| SqlError::Connection(net::describe(e, TIMEOUT)))?;
    match answer[0] {
        b'S' => tls::connect(tcp, host, files, owners).map_err(SqlError::Connection),
        b'N' => Err(SqlError::Connection(
            "the server does not offer TLS".to_string(),
        )),
        _ => Err(SqlError::Connection(
            "garbled reply to the TLS request".to_string(),
        )),
    }
}

impl Postgres {
    /// Sends the startup message, answers the server's authentication request and reads
    /// until the server is ready for queries.
    fn log_in(
        &mut self,
        user: &str,
        database: &str,
        password: Option<&str>,
    ) -> Result<(), SqlError> {
        let mut startup = Default::default();
        frontend::startup_message(
            [
                ("user", user),
                ("database", database),
                ("client_encoding", "UTF8"),
                ("application_name", "mailmfa"),
            ],
            &mut startup,
        )
        .map_err(|e| self.lost(e))?;
        self.send(&startup)?;
        let needed = || {
            password.ok_or_else(|| {
                SqlError::Connection(
                    "the server asks for a password and `sql_password_file` is not set".to_string(),
                )
            })
        };
        loop {
            match self.receive()? {
                Message::AuthenticationOk => break,
                Message::AuthenticationCleartextPassword => {
                    self.send(&password_message(needed()?.as_bytes()))?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let hash = Zeroizing::new(md5_hash(
                        user.as_bytes(),
                        needed()?.as_bytes(),
                        body.salt(),
                    ));
                    self.send(&password_message(hash.as_bytes()))?;
                }
                Message::AuthenticationSasl(_) => self.scram(needed()?)?,
                Message::ErrorResponse(_) => return Err(self.refused()),
                _ => return Err(self.unexpected()),
            }
        }
        loop {
            match self.receive()? {
                Message::ReadyForQuery(_) => return Ok(()),
                Message::ParameterStatus(_)
                | Message::BackendKeyData(_)
                | Message::NoticeResponse(_) => {}
                Message::ErrorResponse(_) => return Err(self.refused()),
                _ => return Err(self.unexpected()),
            }
        }
    }

    /// SCRAM-SHA-256 (RFC 7677) after the server's AuthenticationSASL, ending when the
    /// server's signature is checked.
    fn scram(&mut self, password: &str) -> Result<(), SqlError> {
        let offered = self.frame.get(9..).unwrap_or_default();
        if !offered
            .split(|b| *b == 0)
            .any(|m| m == SCRAM_SHA_256.as_bytes())
        {
            self.broken = true;
            return Err(SqlError::Connection(
                "the server offers no SASL mechanism this client speaks (SCRAM-SHA-256)"
                    .to_string(),
            ));
        }
        // "n": this client does not do channel binding (the server's certificate is checked).
        let mut scram = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
        let mut first = Default::default();
        frontend::sasl_initial_response(SCRAM_SHA_256, scram.message(), &mut first)
            .map_err(|e| self.lost(e))?;
        self.send(&first)?;
        let challenge = match self.receive()? {
            Message::AuthenticationSaslContinue(body) => body,
            Message::ErrorResponse(_) => return Err(self.refused()),
            _ => return Err(self.unexpected()),
        };
        scram
            .update(challenge.data())
            .map_err(|_| self.garbled("a garbled SCRAM challenge"))?;
        let mut proof = Default::default();
        frontend::sasl_response(scram.message(), &mut proof).map_err(|e| self.lost(e))?;
        self.send(&proof)?;
        let verdict = match self.receive()? {
            Message::AuthenticationSaslFinal(body) => body,
            Message::ErrorResponse(_) => return Err(self.refused()),
            _ => return Err(self.unexpected()),
        };
        scram.finish(verdict.data()).map_err(|_| {
            self.garbled("a SCRAM signature that does not match: not the server it claims to be")
        })
    }

    /// Writes `bytes` and flushes them.
    fn send(&mut self, bytes: &[u8]) -> Result<(), SqlError> {
        let inner = self.stream.get_mut();
        match inner.write_all(bytes).and_then(|()| inner.flush()) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.lost(e)),
        }
    }

    /// Reads the next message (kept whole in `frame` too).
    fn receive(&mut self) -> Result<Message, SqlError> {
        if let Err(e) = read_frame(&mut self.stream, &mut self.frame) {
            return Err(self.lost(e));
        }
        match Message::parse(&mut From::from(&self.frame[..])) {
            Ok(Some(message)) => Ok(message),
            _ => Err(self.garbled("garbled reply")),
        }
    }

    /// Reads the replies up to ReadyForQuery: the rows, the count of rows changed, and the
    /// first error the server reported.
    fn replies(&mut self) -> Result<Result<Outcome, SqlError>, SqlError> {
        let mut outcome = Outcome::default();
        let mut refusal = None;
        loop {
            match self.receive()? {
                Message::ReadyForQuery(_) => break,
                Message::DataRow(body) => {
                    let row = row(body.buffer()).ok_or_else(|| self.garbled("garbled reply"))?;
                    outcome.rows.push(row);
                }
                Message::CommandComplete(body) => {
                    let tag = body.tag().map_err(|_| self.garbled("garbled reply"))?;
                    outcome.affected = affected(tag);
                }
                Message::ErrorResponse(_) => {
                    let (code, message) = error_fields(&self.frame);
                    refusal.get_or_insert(SqlError::Server { code, message });
                }
                Message::ParseComplete
                | Message::BindComplete
                | Message::RowDescription(_)
                | Message::NoData
                | Message::EmptyQueryResponse
                | Message::ParameterStatus(_)
                | Message::NoticeResponse(_)
                | Message::NotificationResponse(_) => {}
                _ => return Err(self.unexpected()),
            }
        }
        Ok(refusal.map_or(Ok(outcome), Err))
    }

    /// A connection error after `e`; the connection is not used again.
    fn lost(&mut self, e: io::Error) -> SqlError {
        self.broken = true;
        self.went_stale = net::went_stale(&e);
        SqlError::Connection(if e.kind() == io::ErrorKind::UnexpectedEof {
            "the server closed the connection".to_string()
        } else {
            net::describe(e, TIMEOUT)
        })
    }

    /// A connection error: the server sent `what`.
    fn garbled(&mut self, what: &str) -> SqlError {
        self.broken = true;
        self.went_stale = false;
        SqlError::Connection(format!("the server sent {what}"))
    }

    /// A connection error: the server sent a message that has no place here.
    fn unexpected(&mut self) -> SqlError {
        let tag = char::from(self.frame[0]);
        self.garbled(&format!(
            "an unexpected message (`{}`)",
            tag.escape_default()
        ))
    }

    /// A connection error: the server refused the login with the error just read.
    fn refused(&mut self) -> SqlError {
        let (code, message) = error_fields(&self.frame);
        self.broken = true;
        self.went_stale = false;
        SqlError::Connection(format!(
            "the server refused the login: {message} (SQLSTATE {code})"
        ))
    }

    /// Refuses to use a connection that failed before.
    fn usable(&self) -> Result<(), SqlError> {
        if self.broken {
            return Err(SqlError::Connection(
                "the connection failed earlier".to_string(),
            ));
        }
        Ok(())
    }
}

impl Client for Postgres {
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Outcome, SqlError> {
        self.usable()?;
        let mut buf = Default::default();
        let encoded = frontend::parse("", sql, std::iter::empty(), &mut buf)
            .map_err(|_| ())
            .and_then(|()| {
                frontend::bind(
                    "",
                    "",
                    std::iter::empty(),
                    params,
                    |param, buf| {
                        match param {
                            Param::Text(text) => buf.extend_from_slice(text.as_bytes()),
                            Param::Int(n) => buf.extend_from_slice(n.to_string().as_bytes()),
                        }
                        Ok(IsNull::No)
                    },
                    std::iter::empty(),
                    &mut buf,
                )
                .map_err(|_| ())
            })
            .and_then(|()| frontend::describe(b'P', "", &mut buf).map_err(|_| ()))
            .and_then(|()| frontend::execute("", 0, &mut buf).map_err(|_| ()));
        if encoded.is_err() {
            // Nothing was sent: the connection is still usable.
            return Err(SqlError::Connection(
                "the statement or a value cannot be sent (a NUL byte, or too long)".to_string(),
            ));
        }
        frontend::sync(&mut buf);
        self.send(&buf)?;
        self.replies()?
    }

    fn script(&mut self, sql: &str) -> Result<(), SqlError> {
        self.usable()?;
        let mut buf = Default::default();
        if frontend::query(sql, &mut buf).is_err() {
            return Err(SqlError::Connection(
                "the script cannot be sent (a NUL byte, or too long)".to_string(),
            ));
        }
        self.send(&buf)?;
        self.replies()?.map(|_| ())
    }

    fn went_stale(&self) -> bool {
        self.went_stale
    }

    fn abandon(&mut self) {
        // A broken connection says no goodbye when dropped.
        self.broken = true;
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if !self.broken {
            let mut buf = Default::default();
            frontend::terminate(&mut buf);
            let inner = self.stream.get_mut();
            let _ = inner.write_all(&buf).and_then(|()| inner.flush());
        }
    }
}
