//! A small blocking MariaDB/MySQL client ([`Mysql`]), written for the module on std: connect
//! over TCP (TLS on request, after the protocol's `SSLRequest`) or a Unix socket, log in with
//! `mysql_native_password` (or `caching_sha2_password`: its fast path anywhere, the password
//! itself only over TLS or a Unix socket), then run statements as `COM_QUERY` text.
//!
//! A `?` placeholder is replaced by a literal that cannot end early: a text value becomes
//! `_utf8mb4 X'<hex>'` (hex digits only, so no value can change the statement; it compares
//! under the column's collation), an integer its decimal digits. Results come back as text
//! rows. `affected` counts the rows an `UPDATE` matched, changed or not (`CLIENT_FOUND_ROWS`,
//! as PostgreSQL counts); an `INSERT ... ON DUPLICATE KEY UPDATE` counts 1 for a row
//! inserted, 2 for a row updated and 1 for a row left as it was. Every socket operation is bounded by `sql_timeout_ms`; a failure of the connection
//! leaves it unusable (the caller opens a new one), a statement the server refuses does not.
//! Errors never hold the password or a bound value.

mod auth;
mod packet;

use super::address::{Address, Target};
use super::client::{Client, Outcome, Param, Row, SqlError};
use crate::store::net::tls::{self, TlsFiles};
use crate::store::net::{self, Stream};
use crate::store::secure::Owners;
use auth::Greeting;
use packet::{garbled, Cursor};
use std::fmt::Write as _;
use std::io::{self, BufReader};
use std::time::Duration;
use zeroize::Zeroizing;

/// The setting that bounds every socket operation, named when time runs out.
const TIMEOUT: &str = "sql_timeout_ms";

/// `COM_QUIT`.
const COM_QUIT: u8 = 0x01;
/// `COM_QUERY`.
const COM_QUERY: u8 = 0x03;
/// `SERVER_MORE_RESULTS_EXISTS` in a result's status flags.
const MORE_RESULTS: u16 = 0x0008;

/// Why an exchange failed: the connection (I/O, timeout, a garbled reply), or a refusal that
/// leaves it usable (or, at login, a refusal worded for the log).
enum Error {
    Io(io::Error),
    Sql(SqlError),
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

/// An open, logged-in connection to MariaDB or MySQL.
pub struct Mysql {
    stream: BufReader<Stream>,
    /// The next packet's sequence number.
    seq: u8,
    /// The last failure was the server closing or resetting the connection.
    went_stale: bool,
    /// A failure left the connection out of step with the server: it is not used again.
    broken: bool,
}

/// Connects to `address` (a `mysql://` one) within `timeout` and logs in with `password`
/// (`None` when `sql_password_file` is not set). `tls` names the CA and client certificate
/// files when the address asks for TLS; `owners` may own them besides root.
pub fn connect(
    address: &Address,
    password: Option<&str>,
    timeout: Duration,
    tls: &TlsFiles<'_>,
    owners: Owners,
) -> Result<Mysql, SqlError> {
    let failed = |e: io::Error| SqlError::Connection(worded(e));
    let greet = |stream: &mut dyn io::Read, seq: &mut u8| {
        let payload = packet::read(&mut &mut *stream, seq).map_err(failed)?;
        Greeting::parse(&payload).map_err(SqlError::Connection)
    };
    let mut seq = 0;
    let (stream, greeting) = match &address.target {
        Target::Tcp(host, port) => {
            let mut tcp =
                net::connect_tcp(host, *port, timeout, TIMEOUT).map_err(SqlError::Connection)?;
            let greeting = greet(&mut tcp, &mut seq)?;
            if !address.tls {
                (Stream::Tcp(tcp), greeting)
            } else if greeting.capabilities & auth::SSL == 0 {
                return Err(SqlError::Connection(format!(
                    "{host} does not offer TLS (`ssl-mode=VERIFY_IDENTITY` asks for it): give \
                     the server ssl_cert and ssl_key"
                )));
            } else {
                let request = auth::ssl_request(greeting.client_capabilities(true));
                packet::write(&mut tcp, &mut seq, &request).map_err(failed)?;
                let tcp = tls::connect(tcp, host, tls, owners).map_err(SqlError::Connection)?;
                (Stream::Tls(Box::new(tcp)), greeting)
            }
        }
        // A Unix socket stays on the host: TLS over it is refused when the URL is parsed.
        Target::Unix(path) => {
            let mut unix = net::connect_unix(path, timeout).map_err(SqlError::Connection)?;
            let greeting = greet(&mut unix, &mut seq)?;
            (Stream::Unix(unix), greeting)
        }
    };
    let tls_on = matches!(stream, Stream::Tls(_));
    // Where the password itself may be sent (caching_sha2_password's full authentication).
    let secure = !matches!(stream, Stream::Tcp(_));
    let mut conn = Mysql {
        stream: BufReader::with_capacity(16 * 1024, stream),
        seq,
        went_stale: false,
        broken: false,
    };
    let result = conn.login(address, password, &greeting, tls_on, secure);
    conn.finish(result)?;
    Ok(conn)
}

impl Mysql {
    /// Sends the login packet and answers the server until it accepts or refuses it.
    fn login(
        &mut self,
        address: &Address,
        password: Option<&str>,
        greeting: &Greeting,
        tls_on: bool,
        secure: bool,
    ) -> Result<(), Error> {
        let secret = password.unwrap_or("").as_bytes();
        // A plugin not spoken is answered with a native scramble: the server then asks for
        // the account's own plugin, which may be one that is.
        let mut plugin = match greeting.plugin.as_str() {
            auth::CACHING_SHA2 => auth::CACHING_SHA2,
            _ => auth::NATIVE,
        };
        let proof = prove(plugin, secret, &greeting.nonce)?;
        let capabilities = greeting.client_capabilities(tls_on);
        let login = auth::login(
            capabilities,
            &address.user,
            &proof,
            &address.database,
            plugin,
        )?;
        self.send(&login)?;
        loop {
            let reply = self.read()?;
            match reply.first() {
                Some(0x00) => return Ok(()),
                Some(0xFF) => {
                    let (_, message) = server_error(&reply)?;
                    let hint = match password {
                        None => " (`sql_password_file` is not set)",
                        Some(_) => "",
                    };
                    return Err(Error::Sql(SqlError::Connection(format!(
                        "login as {} refused: {message}{hint}",
                        address.user
                    ))));
                }
                // AuthSwitchRequest: another plugin, with its own nonce.
                Some(0xFE) => {
                    let mut c = Cursor::new(&reply[1..]);
                    let name = String::from_utf8_lossy(c.nul()).into_owned();
                    let nonce = c.rest();
                    let proof = prove(&name, secret, nonce.strip_suffix(&[0]).unwrap_or(nonce))?;
                    plugin = if name == auth::CACHING_SHA2 {
                        auth::CACHING_SHA2
                    } else {
                        auth::NATIVE
                    };
                    self.send(&proof)?;
                }
                // caching_sha2_password: 3 = the fast path worked (OK follows), 4 = full
                // authentication, with the password itself.
                Some(0x01) if plugin == auth::CACHING_SHA2 && reply.get(1) == Some(&3) => {}
                Some(0x01) if plugin == auth::CACHING_SHA2 && reply.get(1) == Some(&4) => {
                    if !secure {
                        return Err(Error::Sql(SqlError::Connection(format!(
                            "{} asks for the password itself (caching_sha2_password full \
                             authentication), which is sent only over TLS or a Unix socket",
                            address.user
                        ))));
                    }
                    let mut cleartext = Zeroizing::new(secret.to_vec());
                    cleartext.push(0);
                    self.send(&cleartext)?;
                }
                _ => return Err(garbled("an unexpected reply to the login").into()),
            }
        }
    }

    /// Sends a command's payload as packet 0 of a new exchange.
    fn command(&mut self, payload: &[u8]) -> Result<(), Error> {
        if self.broken {
            return Err(Error::Sql(SqlError::Connection(
                "the connection failed before and is not used again".to_string(),
            )));
        }
        self.seq = 0;
        self.send(payload)
    }

    fn send(&mut self, payload: &[u8]) -> Result<(), Error> {
        Ok(packet::write(
            self.stream.get_mut(),
            &mut self.seq,
            payload,
        )?)
    }

    fn read(&mut self) -> Result<Vec<u8>, Error> {
        Ok(packet::read(&mut self.stream, &mut self.seq)?)
    }

    /// Reads every result of a query (several when it holds several statements) and returns
    /// the first; a statement refused ends them (the server runs none after it).
    fn results(&mut self) -> Result<Outcome, Error> {
        let (first, mut more) = self.result()?;
        while more {
            more = self.result()?.1;
        }
        Ok(first)
    }

    /// Reads one result: an OK packet, an error, or a result set (column count, column
    /// definitions, EOF, text rows, EOF). Also whether another result follows.
    fn result(&mut self) -> Result<(Outcome, bool), Error> {
        let head = self.read()?;
        let mut c = Cursor::new(&head);
        match c.u8()? {
            0x00 => {
                let affected = c.int()?;
                c.int()?; // last insert id
                let status = c.u16()?;
                return Ok((
                    Outcome {
                        rows: Vec::new(),
                        affected,
                    },
                    status & MORE_RESULTS != 0,
                ));
            }
            0xFF => return Err(refusal(&head)?),
            0xFB => return Err(garbled("a request for a local file").into()),
            _ => {}
        }
        let columns = Cursor::new(&head).int()?;
        for _ in 0..columns {
            self.read()?;
        }
        if eof_status(&self.read()?).is_none() {
            return Err(garbled("no EOF after the column definitions").into());
        }
        let mut rows = Vec::new();
        loop {
            let packet = self.read()?;
            if let Some(status) = eof_status(&packet) {
                let outcome = Outcome { rows, affected: 0 };
                return Ok((outcome, status & MORE_RESULTS != 0));
            }
            if packet.first() == Some(&0xFF) {
                return Err(refusal(&packet)?);
            }
            let mut c = Cursor::new(&packet);
            let row = (0..columns)
                .map(|_| match c.lenenc_bytes()? {
                    None => Ok(None),
                    Some(bytes) => String::from_utf8(bytes.to_vec())
                        .map(Some)
                        .map_err(|_| garbled("a value that is not UTF-8")),
                })
                .collect::<io::Result<Row>>()?;
            rows.push(row);
        }
    }

    /// `result` as the caller sees it: a failure of the connection is worded for the log and
    /// remembered (whether it went stale; that it is broken).
    fn finish<T>(&mut self, result: Result<T, Error>) -> Result<T, SqlError> {
        self.went_stale = false;
        match result {
            Ok(value) => Ok(value),
            Err(Error::Sql(e)) => Err(e),
            Err(Error::Io(e)) => {
                self.went_stale = net::went_stale(&e);
                self.broken = true;
                Err(SqlError::Connection(worded(e)))
            }
        }
    }
}

/// An I/O failure as the log says it: the server gone, or time run out (naming
/// `sql_timeout_ms`), or what else the system says.
fn worded(e: io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
        _ => net::describe(e, TIMEOUT),
    }
}

impl Client for Mysql {
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Outcome, SqlError> {
        let mut query = vec![COM_QUERY];
        query.extend_from_slice(bind(sql, params)?.as_bytes());
        let result = self.command(&query).and_then(|()| self.results());
        self.finish(result)
    }

    fn script(&mut self, sql: &str) -> Result<(), SqlError> {
        let mut query = vec![COM_QUERY];
        query.extend_from_slice(sql.as_bytes());
        let result = self.command(&query).and_then(|()| self.results());
        self.finish(result).map(drop)
    }

    fn went_stale(&self) -> bool {
        self.went_stale
    }

    fn abandon(&mut self) {
        // A broken connection says no goodbye when dropped.
        self.broken = true;
    }
}

impl Drop for Mysql {
    /// Says goodbye (`COM_QUIT`) when the connection is in step; a failure is ignored.
    fn drop(&mut self) {
        if !self.broken {
            let _ = self.command(&[COM_QUIT]);
        }
    }
}

/// The proof of the password for `plugin`, or an error naming a plugin not spoken.
fn prove(plugin: &str, password: &[u8], nonce: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    auth::scramble(plugin, password, nonce).ok_or_else(|| {
        Error::Sql(SqlError::Connection(format!(
            "the account logs in with the plugin `{plugin}`, which mailmfa does not speak: \
             give it {} or {}",
            auth::NATIVE,
            auth::CACHING_SHA2
        )))
    })
}

/// The status flags of an EOF packet; `None` when `packet` is not one.
fn eof_status(packet: &[u8]) -> Option<u16> {
    match packet {
        [0xFE, _, _, low, high] => Some(u16::from_le_bytes([*low, *high])),
        [0xFE] => Some(0),
        _ => None,
    }
}

/// An ERR packet as the error it is (the statement refused; the connection usable).
fn refusal(packet: &[u8]) -> Result<Error, Error> {
    let (code, message) = server_error(packet)?;
    Ok(Error::Sql(SqlError::Server { code, message }))
}

/// An ERR packet's SQLSTATE and message. A message that quotes a value (a duplicate key, a
/// value a column cannot hold) or the statement's text (a syntax error, which would show a
/// bound value in hex) is replaced by what it means, without the quote.
fn server_error(packet: &[u8]) -> Result<(String, String), Error> {
    let mut c = Cursor::new(packet);
    c.take(1)?;
    let number = c.u16()?;
    let mut rest = c.rest();
    let mut state = "HY000".to_string();
    if let [b'#', sqlstate @ ..] = rest {
        state = String::from_utf8_lossy(sqlstate.get(..5).unwrap_or(sqlstate)).into_owned();
        rest = sqlstate.get(5..).unwrap_or(&[]);
    }
    let message = match number {
        1062 | 1586 => "a duplicate entry for a unique key (the value is withheld)".to_string(),
        1264 | 1292 | 1366 | 1367 | 1411 => {
            format!("error {number}: a value a column cannot hold (the value is withheld)")
        }
        1064 => "a syntax error in the statement (its text is withheld)".to_string(),
        _ => String::from_utf8_lossy(rest).into_owned(),
    };
    Ok((state, message))
}

/// `sql` with each `?` outside quotes replaced by its value as a literal that cannot end
/// early; the statement is the store's own text, so `?` inside a comment is not looked for.
fn bind(sql: &str, params: &[Param<'_>]) -> Result<String, SqlError> {
    let mut out = String::with_capacity(sql.len() + 64);
    let mut quote = None;
    let mut escaped = false;
    let mut placeholders = 0;
    for ch in sql.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if ch == '\\' && q != '`' {
                    escaped = true;
                } else if ch == q {
                    quote = None;
                }
            }
            None if ch == '?' => {
                match params.get(placeholders) {
                    Some(Param::Text(text)) => {
                        out.push_str("_utf8mb4 X'");
                        for b in text.bytes() {
                            let _ = write!(out, "{b:02X}");
                        }
                        out.push('\'');
                    }
                    Some(Param::Int(n)) => {
                        let _ = write!(out, "({n})");
                    }
                    None => {}
                }
                placeholders += 1;
                continue;
            }
            None if matches!(ch, '\'' | '"' | '`') => quote = Some(ch),
            None => {}
        }
        out.push(ch);
    }
    if placeholders != params.len() {
        return Err(SqlError::Connection(format!(
            "a statement with {placeholders} placeholders was given {} values (a bug in mailmfa)",
            params.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
