//! The PostgreSQL wire client of the SQL records store: a small blocking one (protocol 3.0)
//! that connects over TCP, TLS (`sslmode=verify-full`) or the server's Unix socket, logs in
//! (trust, cleartext, or SCRAM-SHA-256 without channel binding; MD5 is refused with a hint),
//! runs one statement per round trip with its parameters bound apart from its text (the
//! extended query protocol), and runs migration scripts (the simple query protocol). Every
//! socket operation is bounded by `sql_timeout_ms`. No dependency for the protocol and no
//! async runtime: frontend.rs encodes the messages sent, wire.rs reads and parses the
//! replies, scram.rs does SCRAM with the `hmac` and `sha2` crates the module already links;
//! this file owns the connection and what is sent when. No SASLprep: the password's bytes are
//! used as they are (PostgreSQL itself falls back to the raw bytes when a password is not
//! valid SASLprep input; an ASCII password is unaffected). Errors never hold the password or
//! a bound value.

mod frontend;
mod scram;
mod wire;

use super::address::{Address, Dialect, Target};
use super::client::{Client, Outcome, Param, SqlError};
use crate::store::net::tls::{self, TlsFiles};
use crate::store::net::{self, Stream};
use crate::store::secure::Owners;
use scram::Scram;
use std::io::{self, BufReader, Read, Write};
use std::time::Duration;
use wire::{error_fields, parse, read_frame, Message};

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
    let mut answer = [0u8];
    tcp.write_all(&frontend::SSL_REQUEST)
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
        let startup = frontend::startup(&[
            ("user", user),
            ("database", database),
            ("client_encoding", "UTF8"),
            ("application_name", "mailmfa"),
        ])
        .map_err(|_| self.fail("the user or database name holds a NUL byte".to_string()))?;
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
                Message::AuthenticationCleartext => {
                    let message = frontend::password(needed()?.as_bytes())
                        .map_err(|_| self.fail("the password holds a NUL byte".to_string()))?;
                    self.send(&message)?;
                }
                Message::AuthenticationMd5 => {
                    return Err(self.fail(
                        "the server asks for MD5 passwords, which mailmfa does not send: store \
                         the password as SCRAM (password_encryption = 'scram-sha-256', then set \
                         it again)"
                            .to_string(),
                    ))
                }
                Message::AuthenticationSasl { scram } => self.scram(scram, needed()?)?,
                Message::AuthenticationOther(code) => {
                    return Err(self.fail(format!(
                        "the server asks for an authentication method this client does not \
                         speak (code {code})"
                    )))
                }
                Message::ErrorResponse => return Err(self.refused()),
                _ => return Err(self.unexpected()),
            }
        }
        loop {
            match self.receive()? {
                Message::ReadyForQuery => return Ok(()),
                Message::Information => {}
                Message::ErrorResponse => return Err(self.refused()),
                _ => return Err(self.unexpected()),
            }
        }
    }

    /// SCRAM-SHA-256 (RFC 7677) after the server's AuthenticationSASL (which offered it if
    /// `offered`), ending when the server's signature is checked.
    fn scram(&mut self, offered: bool, password: &str) -> Result<(), SqlError> {
        if !offered {
            return Err(self.fail(
                "the server offers no SASL mechanism this client speaks (SCRAM-SHA-256)"
                    .to_string(),
            ));
        }
        // An empty user name, as libpq sends: the server takes the startup message's.
        let scram = Scram::start("", password.as_bytes()).map_err(|e| self.fail(e))?;
        let first =
            frontend::sasl_initial_response(scram::MECHANISM, scram.client_first().as_bytes())
                .map_err(|_| self.garbled("a SCRAM exchange too long to answer"))?;
        self.send(&first)?;
        let challenge = match self.receive()? {
            Message::AuthenticationSaslContinue(data) => data,
            Message::ErrorResponse => return Err(self.refused()),
            _ => return Err(self.unexpected()),
        };
        let (proof, verifier) = scram
            .client_final(&challenge)
            .map_err(|what| self.garbled(what))?;
        let proof = frontend::sasl_response(&proof)
            .map_err(|_| self.garbled("a SCRAM exchange too long to answer"))?;
        self.send(&proof)?;
        let verdict = match self.receive()? {
            Message::AuthenticationSaslFinal(data) => data,
            Message::ErrorResponse => return Err(self.refused()),
            _ => return Err(self.unexpected()),
        };
        verifier.check(&verdict).map_err(|what| self.garbled(what))
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
        parse(&self.frame).ok_or_else(|| self.garbled("garbled reply"))
    }

    /// Reads the replies up to ReadyForQuery: the rows, the count of rows changed, and the
    /// first error the server reported.
    fn replies(&mut self) -> Result<Result<Outcome, SqlError>, SqlError> {
        let mut outcome = Outcome::default();
        let mut refusal = None;
        loop {
            match self.receive()? {
                Message::ReadyForQuery => break,
                Message::DataRow(row) => outcome.rows.push(row),
                Message::CommandComplete(affected) => outcome.affected = affected,
                Message::ErrorResponse => {
                    let (code, message) = error_fields(&self.frame);
                    refusal.get_or_insert(SqlError::Server { code, message });
                }
                Message::Step | Message::Information => {}
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

    /// A connection error `why` during the login or a reply; the connection is not used
    /// again.
    fn fail(&mut self, why: String) -> SqlError {
        self.broken = true;
        self.went_stale = false;
        SqlError::Connection(why)
    }

    /// A connection error: the server sent `what`.
    fn garbled(&mut self, what: &str) -> SqlError {
        self.fail(format!("the server sent {what}"))
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
        let Ok(buf) = frontend::statement(sql, params) else {
            // Nothing was sent: the connection is still usable.
            return Err(SqlError::Connection(
                "the statement or a value cannot be sent (a NUL byte, or too long)".to_string(),
            ));
        };
        self.send(&buf)?;
        self.replies()?
    }

    fn script(&mut self, sql: &str) -> Result<(), SqlError> {
        self.usable()?;
        let Ok(buf) = frontend::query(sql) else {
            return Err(SqlError::Connection(
                "the script cannot be sent (a NUL byte, or too long)".to_string(),
            ));
        };
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
            let inner = self.stream.get_mut();
            let _ = inner
                .write_all(&frontend::TERMINATE)
                .and_then(|()| inner.flush());
        }
    }
}
