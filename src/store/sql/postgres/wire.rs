//! The parts of the PostgreSQL wire format the client handles itself: reading one whole
//! message off the socket (bounded), a PasswordMessage in a buffer that is zeroed, and the
//! bodies of DataRow, CommandComplete and ErrorResponse (`postgres-protocol` parses those
//! into iterators of the `fallible-iterator` crate, which this crate does not depend on).

use crate::store::net::Stream;
use crate::store::sql::client::Row;
use std::io::{self, BufReader, Read};
use zeroize::Zeroizing;

/// Largest message read from the server (the records' rows are a few KiB).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// A PasswordMessage holding `secret` (a password or its MD5 hash), zeroed when dropped.
pub fn password_message(secret: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut message = Zeroizing::new(Vec::with_capacity(secret.len() + 6));
    let length = u32::try_from(secret.len() + 5).unwrap_or(u32::MAX);
    message.push(b'p');
    message.extend_from_slice(&length.to_be_bytes());
    message.extend_from_slice(secret);
    message.push(0);
    message
}

/// Reads one whole message (tag, length, body) into `frame`.
pub fn read_frame(stream: &mut BufReader<Stream>, frame: &mut Vec<u8>) -> io::Result<()> {
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
    frame.resize(length + 1, 0);
    stream.read_exact(&mut frame[5..])
}

/// A DataRow's columns (after its count) as text; `None` if garbled or not UTF-8.
pub fn row(mut columns: &[u8]) -> Option<Row> {
    let mut row = Vec::new();
    while let Some((length, rest)) = columns.split_first_chunk::<4>() {
        let length = i32::from_be_bytes(*length);
        columns = rest;
        if length < 0 {
            row.push(None);
            continue;
        }
        let (value, rest) = columns.split_at_checked(length as usize)?;
        row.push(Some(String::from_utf8(value.to_vec()).ok()?));
        columns = rest;
    }
    columns.is_empty().then_some(row)
}

/// The rows a command changed, from its CommandComplete tag (`INSERT 0 1`, `UPDATE 2`).
pub fn affected(tag: &str) -> u64 {
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

    #[test]
    fn data_rows_hold_text_and_nulls_and_garbage_is_refused() {
        let mut body = Vec::new();
        body.extend_from_slice(&2i32.to_be_bytes());
        body.extend_from_slice(b"hi");
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&0i32.to_be_bytes());
        let want = vec![Some("hi".to_string()), None, Some(String::new())];
        assert_eq!(row(&body), Some(want));
        assert_eq!(row(&body[..5]), None, "a value cut short");
        assert_eq!(row(&[0, 0, 0, 1, 0xff]), None, "not UTF-8");
        assert_eq!(row(&[0, 0]), None, "a length cut short");
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

    #[test]
    fn password_messages_are_framed() {
        assert_eq!(&password_message(b"pw")[..], b"p\0\0\0\x07pw\0");
    }
}
