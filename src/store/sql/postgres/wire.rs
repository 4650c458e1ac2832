//! The messages the PostgreSQL client reads (the backend half of protocol 3.0): one whole
//! message off the socket, bounded, and the parse of the ones the client expects, each body
//! checked against its layout (a garbled one is `None`, never a panic), plus the fields of an
//! ErrorResponse that may be shown. Owns the decoding; what to do with a message is mod.rs's.

use crate::store::sql::client::Row;
use std::io::{self, Read};

/// Largest message read from the server (the records' rows are a few KiB).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// A message from the server, with what the client uses of it.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    /// AuthenticationOk: the login is accepted.
    AuthenticationOk,
    /// AuthenticationCleartextPassword.
    AuthenticationCleartext,
    /// AuthenticationMD5Password (its salt is not used: MD5 is not answered).
    AuthenticationMd5,
    /// AuthenticationSASL: whether SCRAM-SHA-256 is among the mechanisms offered.
    AuthenticationSasl {
        /// SCRAM-SHA-256 is offered.
        scram: bool,
    },
    /// AuthenticationSASLContinue: the server-first-message.
    AuthenticationSaslContinue(Vec<u8>),
    /// AuthenticationSASLFinal: the server-final-message.
    AuthenticationSaslFinal(Vec<u8>),
    /// Another authentication request (Kerberos, GSSAPI, SSPI), by its code.
    AuthenticationOther(i32),
    /// ParameterStatus, BackendKeyData, NoticeResponse or NotificationResponse: nothing the
    /// client uses.
    Information,
    /// ReadyForQuery.
    ReadyForQuery,
    /// ParseComplete, BindComplete, RowDescription, NoData or EmptyQueryResponse: a step
    /// of a statement, nothing the client uses.
    Step,
    /// DataRow: its columns as text.
    DataRow(Row),
    /// CommandComplete: the rows the command changed.
    CommandComplete(u64),
    /// ErrorResponse (its fields: [`error_fields`] on the frame).
    ErrorResponse,
    /// A message of another tag (the frame's first byte).
    Other,
}

/// Reads one whole message (tag, length, body) into `frame`. The buffer grows with what
/// arrives, not with the length the server claims.
pub fn read_frame(stream: &mut impl Read, frame: &mut Vec<u8>) -> io::Result<()> {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header)?;
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if !(4..=MAX_MESSAGE).contains(&length) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the server sent a message of an impossible length",
        ));
    }
    frame.clear();
    frame.extend_from_slice(&header);
    let body = length as u64 - 4;
    if stream.by_ref().take(body).read_to_end(frame)? as u64 != body {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// The message in `frame` (as [`read_frame`] leaves it); `None` if its body does not have
/// the layout its tag says.
pub fn parse(frame: &[u8]) -> Option<Message> {
    let (&tag, rest) = frame.split_first()?;
    let body = rest.get(4..)?;
    match tag {
        b'R' => authentication(body),
        b'S' => {
            let (_, rest) = cstr(body)?;
            let (_, rest) = cstr(rest)?;
            empty_after(rest, Message::Information)
        }
        b'K' => (body.len() == 8).then_some(Message::Information),
        b'N' => fields(body).then_some(Message::Information),
        b'A' => {
            let (_, rest) = body.split_first_chunk::<4>()?;
            let (_, rest) = cstr(rest)?;
            let (_, rest) = cstr(rest)?;
            empty_after(rest, Message::Information)
        }
        b'Z' => (body.len() == 1).then_some(Message::ReadyForQuery),
        b'1' | b'2' | b'n' | b'I' => empty_after(body, Message::Step),
        b'T' => row_description(body).then_some(Message::Step),
        b'D' => row(body).map(Message::DataRow),
        b'C' => {
            let (tag, rest) = cstr(body)?;
            let tag = std::str::from_utf8(tag).ok()?;
            empty_after(rest, Message::CommandComplete(affected(tag)))
        }
        b'E' => fields(body).then_some(Message::ErrorResponse),
        _ => Some(Message::Other),
    }
}

/// The body of an Authentication* message.
fn authentication(body: &[u8]) -> Option<Message> {
    let (code, rest) = body.split_first_chunk::<4>()?;
    match i32::from_be_bytes(*code) {
        0 => empty_after(rest, Message::AuthenticationOk),
        3 => empty_after(rest, Message::AuthenticationCleartext),
        5 => (rest.len() == 4).then_some(Message::AuthenticationMd5),
        10 => {
            // Mechanism names, each ending with a NUL, then a NUL.
            let (mut rest, mut scram) = (rest, false);
            loop {
                let (name, tail) = cstr(rest)?;
                rest = tail;
                if name.is_empty() {
                    break;
                }
                scram |= name == super::scram::MECHANISM.as_bytes();
            }
            empty_after(rest, Message::AuthenticationSasl { scram })
        }
        11 => Some(Message::AuthenticationSaslContinue(rest.to_vec())),
        12 => Some(Message::AuthenticationSaslFinal(rest.to_vec())),
        code => Some(Message::AuthenticationOther(code)),
    }
}

/// `message` if `rest` is empty (nothing after the last field).
fn empty_after(rest: &[u8], message: Message) -> Option<Message> {
    rest.is_empty().then_some(message)
}

/// The string at the start of `bytes` (up to its NUL) and what follows the NUL.
fn cstr(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = bytes.iter().position(|b| *b == 0)?;
    Some((&bytes[..end], &bytes[end + 1..]))
}

/// Whether `body` is the fields of an ErrorResponse or NoticeResponse: a type byte and a
/// string each, then a NUL.
fn fields(mut body: &[u8]) -> bool {
    loop {
        match body.split_first() {
            Some((0, rest)) => return rest.is_empty(),
            Some((_, rest)) => match cstr(rest) {
                Some((_, rest)) => body = rest,
                None => return false,
            },
            None => return false,
        }
    }
}

/// Whether `body` is a RowDescription: a count, then each field's name and 18 bytes.
fn row_description(body: &[u8]) -> bool {
    let Some((count, mut rest)) = body.split_first_chunk::<2>() else {
        return false;
    };
    for _ in 0..i16::from_be_bytes(*count).max(0) {
        match cstr(rest).and_then(|(_, tail)| tail.get(18..)) {
            Some(tail) => rest = tail,
            None => return false,
        }
    }
    rest.is_empty()
}

/// A DataRow's columns as text; `None` if garbled, not as many as its count, or not UTF-8.
fn row(body: &[u8]) -> Option<Row> {
    let (count, mut columns) = body.split_first_chunk::<2>()?;
    let count = usize::try_from(i16::from_be_bytes(*count)).ok()?;
    let mut row = Vec::with_capacity(count);
    for _ in 0..count {
        let (length, rest) = columns.split_first_chunk::<4>()?;
        let length = i32::from_be_bytes(*length);
        columns = rest;
        if length < 0 {
            row.push(None);
            continue;
        }
        let (value, rest) = columns.split_at_checked(usize::try_from(length).ok()?)?;
        row.push(Some(String::from_utf8(value.to_vec()).ok()?));
        columns = rest;
    }
    columns.is_empty().then_some(row)
}

/// The rows a command changed, from its CommandComplete tag (`INSERT 0 1`, `UPDATE 2`).
fn affected(tag: &str) -> u64 {
    let mut words = tag.split(' ');
    match words.next() {
        Some("INSERT" | "UPDATE" | "DELETE" | "MERGE") => {
            words.next_back().and_then(|n| n.parse().ok()).unwrap_or(0)
        }
        _ => 0,
    }
}

/// The SQLSTATE (`C`) and primary message (`M`) of the ErrorResponse in `frame`; never its
/// detail (`D`), which can echo a value, and not the message of a data exception (class 22),
/// which quotes the value it refused.
pub fn error_fields(frame: &[u8]) -> (String, String) {
    let (mut code, mut message) = (String::new(), String::new());
    for field in frame.get(5..).unwrap_or_default().split(|b| *b == 0) {
        match field.split_first() {
            Some((b'C', value)) => code = String::from_utf8_lossy(value).into_owned(),
            Some((b'M', value)) => message = String::from_utf8_lossy(value).into_owned(),
            _ => {}
        }
    }
    // Class 22 (data exception) quotes the value it refused in the primary text too
    // (`invalid input syntax for type integer: "..."`): withheld, as the detail is.
    if code.starts_with("22") {
        message = "a value the statement cannot take (the value is withheld)".to_string();
    }
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_exception_withholds_the_value_its_message_quotes() {
        let frame =
            b"E\0\0\0\0SERROR\0C22P02\0Minvalid input syntax for type integer: \"s3cret\"\0\0";
        let (code, message) = error_fields(frame);
        assert_eq!(code, "22P02");
        assert!(!message.contains("s3cret"), "{message}");
        let frame = b"E\0\0\0\0C42P01\0Mrelation \"x\" does not exist\0Dsecret detail\0\0";
        assert_eq!(
            error_fields(frame),
            (
                "42P01".to_string(),
                "relation \"x\" does not exist".to_string()
            )
        );
    }

    #[test]
    fn command_tags_give_the_rows_changed_and_queries_none() {
        for (tag, want) in [
            ("INSERT 0 3", 3),
            ("UPDATE 2", 2),
            ("DELETE 0", 0),
            ("MERGE 7", 7),
            ("SELECT 5", 0),
            ("CREATE TABLE", 0),
            ("UPDATE", 0),
        ] {
            assert_eq!(affected(tag), want, "{tag}");
        }
    }

    /// `tag`, the length and `body`: a frame as [`read_frame`] leaves it.
    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut frame = vec![tag];
        frame.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        frame.extend_from_slice(body);
        frame
    }

    #[test]
    fn data_rows_hold_text_and_nulls_and_garbage_is_refused() {
        let mut body = 3i16.to_be_bytes().to_vec();
        body.extend_from_slice(&2i32.to_be_bytes());
        body.extend_from_slice(b"hi");
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&0i32.to_be_bytes());
        let want = vec![Some("hi".to_string()), None, Some(String::new())];
        assert_eq!(parse(&frame(b'D', &body)), Some(Message::DataRow(want)));
        assert_eq!(row(&body[..7]), None, "a value cut short");
        assert_eq!(row(&[0, 1, 0, 0, 0, 1, 0xff]), None, "not UTF-8");
        assert_eq!(row(&[0, 1, 0, 0]), None, "a length cut short");
        assert_eq!(row(&[0, 2, 0, 0, 0, 0]), None, "fewer columns than counted");
        assert_eq!(row(&[0, 0, 0, 0, 0, 0]), None, "more columns than counted");
        assert_eq!(row(&[0xff, 0xff]), None, "a negative count");
        assert_eq!(row(&[0, 1, 0x7f, 0xff, 0xff, 0xff]), None, "a huge length");
    }

    #[test]
    fn the_messages_a_login_and_a_statement_read_are_parsed() {
        let sasl = frame(b'R', b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0");
        assert_eq!(
            parse(&sasl),
            Some(Message::AuthenticationSasl { scram: true })
        );
        let other = frame(b'R', b"\0\0\0\x0aOTHER\0\0");
        assert_eq!(
            parse(&other),
            Some(Message::AuthenticationSasl { scram: false })
        );
        for (body, want) in [
            (&b"\0\0\0\0"[..], Message::AuthenticationOk),
            (b"\0\0\0\x03", Message::AuthenticationCleartext),
            (b"\0\0\0\x05salt", Message::AuthenticationMd5),
            (
                b"\0\0\0\x0br=x",
                Message::AuthenticationSaslContinue(b"r=x".to_vec()),
            ),
            (
                b"\0\0\0\x0cv=y",
                Message::AuthenticationSaslFinal(b"v=y".to_vec()),
            ),
            (b"\0\0\0\x07", Message::AuthenticationOther(7)),
        ] {
            assert_eq!(parse(&frame(b'R', body)), Some(want), "{body:?}");
        }
        for (tag, body, want) in [
            (b'S', &b"TimeZone\0UTC\0"[..], Message::Information),
            (b'K', b"\0\0\0\x01\0\0\0\x02", Message::Information),
            (b'N', b"SNOTICE\0Mhi\0\0", Message::Information),
            (b'Z', b"I", Message::ReadyForQuery),
            (b'1', b"", Message::Step),
            (b'n', b"", Message::Step),
            (
                b'T',
                b"\0\x01a\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
                Message::Step,
            ),
            (b'C', b"UPDATE 2\0", Message::CommandComplete(2)),
            (b'E', b"C42P01\0Mno\0\0", Message::ErrorResponse),
            (b'W', b"", Message::Other),
        ] {
            assert_eq!(parse(&frame(tag, body)), Some(want), "{}", char::from(tag));
        }
    }

    #[test]
    fn garbled_or_short_messages_are_refused() {
        for (tag, body) in [
            (b'R', &b"\0\0"[..]),
            (b'R', b"\0\0\0\0extra"),
            (b'R', b"\0\0\0\x05salt+"),
            (b'R', b"\0\0\0\x0aSCRAM-SHA-256\0"),
            (b'S', b"TimeZone\0UTC"),
            (b'K', b"\0\0\0\x01"),
            (b'N', b"Mhi\0"),
            (b'Z', b""),
            (b'2', b"x"),
            (b'T', b"\0\x01a\0\0\0"),
            (b'C', b"UPDATE 2"),
            (b'C', b"\xff\0"),
            (b'E', b"Mno"),
        ] {
            assert_eq!(
                parse(&frame(tag, body)),
                None,
                "{}: {body:?}",
                char::from(tag)
            );
        }
        assert_eq!(parse(b"Z\0\0"), None, "a header cut short");
        assert_eq!(parse(b""), None);
    }

    #[test]
    fn frames_of_an_impossible_length_or_cut_short_are_errors() {
        let mut frame = Vec::new();
        read_frame(&mut &b"Z\0\0\0\x05Irest"[..], &mut frame).unwrap();
        assert_eq!(frame, b"Z\0\0\0\x05I");
        for (bytes, kind) in [
            (&b"Z\0\0\0\x03"[..], io::ErrorKind::InvalidData),
            (b"D\x7f\xff\xff\xff", io::ErrorKind::InvalidData),
            (b"D\x04\0\0\x01", io::ErrorKind::InvalidData),
            (b"Z\0\0\0\x05", io::ErrorKind::UnexpectedEof),
            (b"D\0\0\x10\0abc", io::ErrorKind::UnexpectedEof),
            (b"Z\0", io::ErrorKind::UnexpectedEof),
        ] {
            let e = read_frame(&mut &bytes[..], &mut frame).unwrap_err();
            assert_eq!(e.kind(), kind, "{bytes:?}");
        }
    }

    #[test]
    fn errors_keep_the_code_and_message_but_never_the_detail() {
        let frame = b"E\0\0\0\0SERROR\0C23505\0Mduplicate key\0DKey (name)=(s3cret)\0\0";
        let (code, message) = error_fields(frame);
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("23505", "duplicate key")
        );
    }
}
