//! The messages the PostgreSQL client sends (the frontend half of protocol 3.0): a tag byte
//! (none for StartupMessage and SSLRequest), an i32 length that counts itself, then the
//! fields; strings end with a NUL, so one that holds a NUL cannot be sent. Owns the encoding
//! only: what is sent when is mod.rs's, and what SCRAM sends is scram.rs's. Messages that
//! carry a password or a SCRAM proof are built in `Zeroizing` buffers of their final size.

use crate::store::sql::client::Param;
use zeroize::Zeroizing;

/// Protocol version 3.0, the StartupMessage's first field.
const PROTOCOL_3_0: i32 = 196_608;

/// The SSLRequest: its length and its code (1234 in the high 16 bits, 5679 in the low 16).
pub const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// The Terminate message: the goodbye before the socket is closed.
pub const TERMINATE: [u8; 5] = [b'X', 0, 0, 0, 4];

/// A message that cannot be encoded: a string holds a NUL byte, or a field or the message is
/// too long for its length field.
#[derive(Debug, PartialEq, Eq)]
pub struct Unsendable;

/// Appends a message to `buf`: `tag` (if any), the length, and the fields `body` writes. On
/// `Err`, `buf` is cut back to where it was.
fn message(
    buf: &mut Vec<u8>,
    tag: Option<u8>,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), Unsendable>,
) -> Result<(), Unsendable> {
    let start = buf.len();
    buf.extend(tag);
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    match body(buf).and_then(|()| i32::try_from(buf.len() - at).map_err(|_| Unsendable)) {
        Ok(length) => {
            buf[at..at + 4].copy_from_slice(&length.to_be_bytes());
            Ok(())
        }
        Err(e) => {
            buf.truncate(start);
            Err(e)
        }
    }
}

/// Appends `text` and its terminating NUL.
fn cstr(buf: &mut Vec<u8>, text: &[u8]) -> Result<(), Unsendable> {
    if text.contains(&0) {
        return Err(Unsendable);
    }
    buf.extend_from_slice(text);
    buf.push(0);
    Ok(())
}

/// Appends `n` as an i16 count.
fn count(buf: &mut Vec<u8>, n: usize) -> Result<(), Unsendable> {
    let n = i16::try_from(n).map_err(|_| Unsendable)?;
    buf.extend_from_slice(&n.to_be_bytes());
    Ok(())
}

/// Appends `bytes` after their i32 length.
fn sized(buf: &mut Vec<u8>, bytes: &[u8]) -> Result<(), Unsendable> {
    let length = i32::try_from(bytes.len()).map_err(|_| Unsendable)?;
    buf.extend_from_slice(&length.to_be_bytes());
    buf.extend_from_slice(bytes);
    Ok(())
}

/// The StartupMessage: protocol 3.0 and the `(name, value)` run-time parameters.
pub fn startup(parameters: &[(&str, &str)]) -> Result<Vec<u8>, Unsendable> {
    let mut buf = Vec::new();
    message(&mut buf, None, |buf| {
        buf.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
        for (name, value) in parameters {
            cstr(buf, name.as_bytes())?;
            cstr(buf, value.as_bytes())?;
        }
        buf.push(0);
        Ok(())
    })?;
    Ok(buf)
}

/// A PasswordMessage holding the cleartext `password`, zeroed when dropped.
pub fn password(password: &[u8]) -> Result<Zeroizing<Vec<u8>>, Unsendable> {
    let mut buf = Zeroizing::new(Vec::with_capacity(password.len() + 6));
    message(&mut buf, Some(b'p'), |buf| cstr(buf, password))?;
    Ok(buf)
}

/// The SASLInitialResponse choosing `mechanism`, with its first `data`.
pub fn sasl_initial_response(mechanism: &str, data: &[u8]) -> Result<Vec<u8>, Unsendable> {
    let mut buf = Vec::new();
    message(&mut buf, Some(b'p'), |buf| {
        cstr(buf, mechanism.as_bytes())?;
        sized(buf, data)
    })?;
    Ok(buf)
}

/// A SASLResponse holding `data` (a SCRAM proof), zeroed when dropped.
pub fn sasl_response(data: &[u8]) -> Result<Zeroizing<Vec<u8>>, Unsendable> {
    let mut buf = Zeroizing::new(Vec::with_capacity(data.len() + 5));
    message(&mut buf, Some(b'p'), |buf| {
        buf.extend_from_slice(data);
        Ok(())
    })?;
    Ok(buf)
}

/// One statement in the extended query protocol: Parse `sql` as the unnamed statement, Bind
/// `params` (as text) to the unnamed portal, Describe it, Execute it for all its rows, Sync.
pub fn statement(sql: &str, params: &[Param<'_>]) -> Result<Vec<u8>, Unsendable> {
    let mut buf = Vec::new();
    message(&mut buf, Some(b'P'), |buf| {
        cstr(buf, b"")?;
        cstr(buf, sql.as_bytes())?;
        // No parameter types: the server infers them.
        count(buf, 0)
    })?;
    bind(&mut buf, params)?;
    message(&mut buf, Some(b'D'), |buf| {
        buf.push(b'P');
        cstr(buf, b"")
    })?;
    message(&mut buf, Some(b'E'), |buf| {
        cstr(buf, b"")?;
        // No row limit.
        buf.extend_from_slice(&0i32.to_be_bytes());
        Ok(())
    })?;
    message(&mut buf, Some(b'S'), |_| Ok(()))?;
    Ok(buf)
}

/// Appends a Bind of `params` to the unnamed statement and portal; the values and the
/// results are all text (no format codes: the default).
fn bind(buf: &mut Vec<u8>, params: &[Param<'_>]) -> Result<(), Unsendable> {
    message(buf, Some(b'B'), |buf| {
        cstr(buf, b"")?;
        cstr(buf, b"")?;
        count(buf, 0)?;
        count(buf, params.len())?;
        for param in params {
            match param {
                Param::Text(text) => sized(buf, text.as_bytes())?,
                Param::Int(n) => sized(buf, n.to_string().as_bytes())?,
            }
        }
        count(buf, 0)
    })
}

/// A Query (the simple query protocol) of `sql`, which may hold several statements.
pub fn query(sql: &str) -> Result<Vec<u8>, Unsendable> {
    let mut buf = Vec::new();
    message(&mut buf, Some(b'Q'), |buf| cstr(buf, sql.as_bytes()))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_sends_two_text_values_after_their_lengths() {
        let mut buf = Vec::new();
        bind(&mut buf, &[Param::Text("hé"), Param::Int(-42)]).unwrap();
        let mut want = b"B\0\0\0\x1a\0\0\0\0\0\x02".to_vec();
        want.extend_from_slice(b"\0\0\0\x03h\xc3\xa9\0\0\0\x03-42\0\0");
        assert_eq!(buf, want);
    }

    #[test]
    fn a_statement_is_parse_bind_describe_execute_sync() {
        let buf = statement("SELECT $1", &[Param::Text("")]).unwrap();
        let mut want = b"P\0\0\0\x11\0SELECT $1\0\0\0".to_vec();
        want.extend_from_slice(b"B\0\0\0\x10\0\0\0\0\0\x01\0\0\0\0\0\0");
        want.extend_from_slice(b"D\0\0\0\x06P\0E\0\0\0\x09\0\0\0\0\0S\0\0\0\x04");
        assert_eq!(buf, want);
    }

    #[test]
    fn login_messages_are_framed() {
        let startup = startup(&[("user", "u")]).unwrap();
        assert_eq!(startup, b"\0\0\0\x10\0\x03\0\0user\0u\0\0");
        assert_eq!(SSL_REQUEST[4..], 80_877_103i32.to_be_bytes());
        assert_eq!(&password(b"pw").unwrap()[..], b"p\0\0\0\x07pw\0");
        assert_eq!(
            sasl_initial_response("M", b"ab").unwrap(),
            b"p\0\0\0\x0cM\0\0\0\0\x02ab"
        );
        assert_eq!(&sasl_response(b"xyz").unwrap()[..], b"p\0\0\0\x07xyz");
        assert_eq!(query("SELECT 1").unwrap(), b"Q\0\0\0\x0dSELECT 1\0");
    }

    #[test]
    fn a_nul_byte_or_too_many_values_cannot_be_sent() {
        assert_eq!(query("SELECT '\0'"), Err(Unsendable));
        assert_eq!(statement("SELECT\0", &[]), Err(Unsendable));
        assert_eq!(startup(&[("user", "a\0b")]), Err(Unsendable));
        assert_eq!(password(b"p\0w"), Err(Unsendable));
        let many = vec![Param::Int(1); 40_000];
        assert_eq!(statement("SELECT 1", &many), Err(Unsendable));
        // A text value is sent by its length, so a NUL in it is the server's to refuse.
        assert!(statement("SELECT $1", &[Param::Text("a\0b")]).is_ok());
    }
}
