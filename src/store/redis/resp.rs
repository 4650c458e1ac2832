//! The Redis wire protocol (RESP2), as much of it as the state store speaks: a command goes out
//! as an array of bulk strings, and a reply is read with hard limits, so that a server (or
//! whatever answers on its port) sending garbage or endless data is an error, never a hang
//! or an allocation the size it claims.

use std::io::{self, BufRead};

/// Largest bulk string accepted (the state is at most 64 KiB; `INFO` a few KiB).
const MAX_BULK: usize = 1024 * 1024;
/// Most elements in one array reply.
const MAX_ELEMENTS: usize = 4096;
/// Deepest nesting of arrays (`EXEC` answers an array of replies).
const MAX_DEPTH: usize = 3;
/// Longest status, error or number line.
const MAX_LINE: usize = 4096;

/// One reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK` and other status lines.
    Status(String),
    /// `-ERR ...`: the server refused the command (the text is the server's, holds no secret
    /// of ours: commands carrying the password are answered before their text could be
    /// echoed, and Redis never echoes arguments in errors).
    Error(String),
    /// `:n`.
    Integer(i64),
    /// `$n` bulk string.
    Bulk(Vec<u8>),
    /// `$-1` or `*-1`: no value (a missing key, an aborted `EXEC`).
    Nil,
    /// `*n`.
    Array(Vec<Reply>),
}

/// Encodes one command.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one reply.
pub fn read(input: &mut impl BufRead) -> io::Result<Reply> {
    read_nested(input, 0)
}

fn garbage(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a Redis reply: {why}"),
    )
}

fn read_nested(input: &mut impl BufRead, depth: usize) -> io::Result<Reply> {
    let line = read_line(input)?;
    let (kind, rest) = line.split_at(1);
    let text = || String::from_utf8_lossy(rest).into_owned();
    match kind {
        b"+" => Ok(Reply::Status(text())),
        b"-" => Ok(Reply::Error(text())),
        b":" => number(rest).map(Reply::Integer),
        b"$" => match number(rest)? {
            -1 => Ok(Reply::Nil),
            n if n < 0 || n as usize > MAX_BULK => Err(garbage("bulk length out of range")),
            n => {
                let mut data = vec![0; n as usize + 2];
                input.read_exact(&mut data)?;
                if !data.ends_with(b"\r\n") {
                    return Err(garbage("bulk string not ended by CRLF"));
                }
                data.truncate(n as usize);
                Ok(Reply::Bulk(data))
            }
        },
        b"*" => match number(rest)? {
            -1 => Ok(Reply::Nil),
            n if n < 0 || n as usize > MAX_ELEMENTS => Err(garbage("array length out of range")),
            _ if depth >= MAX_DEPTH => Err(garbage("arrays nested too deep")),
            n => (0..n)
                .map(|_| read_nested(input, depth + 1))
                .collect::<io::Result<Vec<_>>>()
                .map(Reply::Array),
        },
        _ => Err(garbage("unknown type byte")),
    }
}

/// One line ending in CRLF, without it; at least one byte (the type).
fn read_line(input: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut limited = io::Read::take(&mut *input, MAX_LINE as u64 + 2);
    limited.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the Redis server closed the connection",
        ));
    }
    if !line.ends_with(b"\r\n") || line.len() < 3 {
        return Err(garbage("line not ended by CRLF, or too long"));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn number(text: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| garbage("bad number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> io::Result<Reply> {
        read(&mut &bytes[..])
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            encode(&[b"GET", b"mailmfa:{a b}"]),
            b"*2\r\n$3\r\nGET\r\n$13\r\nmailmfa:{a b}\r\n"
        );
    }

    #[test]
    fn every_reply_type_is_read() {
        assert_eq!(parse(b"+OK\r\n").unwrap(), Reply::Status("OK".into()));
        assert_eq!(
            parse(b"-OOM command not allowed\r\n").unwrap(),
            Reply::Error("OOM command not allowed".into())
        );
        assert_eq!(parse(b":42\r\n").unwrap(), Reply::Integer(42));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Reply::Nil);
        assert_eq!(parse(b"*-1\r\n").unwrap(), Reply::Nil);
        assert_eq!(
            parse(b"$4\r\na\r\nb\r\n").unwrap(),
            Reply::Bulk(b"a\r\nb".to_vec())
        );
        assert_eq!(
            parse(b"*2\r\n+OK\r\n$0\r\n\r\n").unwrap(),
            Reply::Array(vec![Reply::Status("OK".into()), Reply::Bulk(vec![])])
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_hang_or_a_huge_allocation() {
        for junk in [
            &b"HTTP/1.1 400 Bad Request\r\n"[..],
            b"+OK\n",
            b"$99999999999\r\n",
            b"$5\r\nab\r\n",
            b"$2\r\nabXY",
            b"*9999999\r\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
            b":twelve\r\n",
            b"",
            b"\r\n",
        ] {
            assert!(parse(junk).is_err(), "{:?}", String::from_utf8_lossy(junk));
        }
        let endless = vec![b'+'; 100_000];
        assert!(parse(&endless).is_err());
    }

    #[test]
    fn each_limit_holds_exactly_at_its_boundary() {
        // Bulk strings: exactly MAX_BULK bytes are read, one more is refused; no length
        // below -1.
        let bulk = |n: usize| {
            let mut v = format!("${n}\r\n").into_bytes();
            v.extend(vec![b'a'; n]);
            v.extend(b"\r\n");
            v
        };
        assert!(matches!(parse(&bulk(MAX_BULK)).unwrap(), Reply::Bulk(d) if d.len() == MAX_BULK));
        assert!(parse(&bulk(MAX_BULK + 1)).is_err());
        assert!(parse(b"$-2\r\n").is_err());
        // Arrays: empty and MAX_ELEMENTS long are read, one more element is refused even
        // when every element is well formed; no length below -1; three levels deep are read.
        let array = |n: usize| {
            let mut v = format!("*{n}\r\n").into_bytes();
            for _ in 0..n {
                v.extend(b":1\r\n");
            }
            v
        };
        assert_eq!(parse(b"*0\r\n").unwrap(), Reply::Array(vec![]));
        assert!(
            matches!(parse(&array(MAX_ELEMENTS)).unwrap(), Reply::Array(a) if a.len() == MAX_ELEMENTS)
        );
        assert!(parse(&array(MAX_ELEMENTS + 1)).is_err());
        assert!(parse(b"*-2\r\n").is_err());
        assert!(parse(b"*1\r\n*1\r\n*1\r\n:1\r\n").is_ok());
        // Lines: an empty status is one; MAX_LINE bytes (type included) are read, one more is
        // refused.
        assert_eq!(parse(b"+\r\n").unwrap(), Reply::Status(String::new()));
        let line = |n: usize| {
            let mut v = vec![b'+'];
            v.extend(vec![b'a'; n - 1]);
            v.extend(b"\r\n");
            v
        };
        assert!(parse(&line(MAX_LINE)).is_ok());
        assert!(parse(&line(MAX_LINE + 1)).is_err());
    }
}
