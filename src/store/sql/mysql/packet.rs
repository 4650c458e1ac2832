//! The MySQL protocol's framing: packets (a 3-byte length, a sequence number, the payload),
//! and the reading of their fields (fixed-size integers, length-encoded integers and
//! strings, NUL-terminated strings). Payloads of 16 MiB or more (split over several packets)
//! are refused: nothing the store sends or reads comes near that.

use std::io::{self, Read, Write};
use zeroize::Zeroizing;

/// A payload this long or longer continues in a next packet, which is not supported.
const MAX_PAYLOAD: usize = 0xFF_FFFF;

/// A reply the client cannot make sense of, as an I/O error (the connection is then out of
/// step with the server, so it is dropped).
pub fn garbled(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("garbled reply from the server: {what}"),
    )
}

/// Reads one packet and returns its payload; its sequence number must be `seq`, which then
/// moves on by one.
pub fn read(r: &mut impl Read, seq: &mut u8) -> io::Result<Vec<u8>> {
    let mut head = [0u8; 4];
    r.read_exact(&mut head)?;
    if head[3] != *seq {
        return Err(garbled("a packet out of sequence"));
    }
    *seq = seq.wrapping_add(1);
    let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
    if len >= MAX_PAYLOAD {
        return Err(garbled("a reply of 16 MiB or more"));
    }
    let mut payload = vec![0; len];
    r.read_exact(&mut payload)?;
    Ok(payload)
}

/// Writes `payload` as one packet numbered `seq` (which then moves on by one). The bytes are
/// zeroed once written: a login packet holds the password's scramble.
pub fn write(w: &mut impl Write, seq: &mut u8, payload: &[u8]) -> io::Result<()> {
    if payload.len() >= MAX_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a statement of 16 MiB or more",
        ));
    }
    let mut packet = Zeroizing::new(Vec::with_capacity(4 + payload.len()));
    packet.extend_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
    packet.push(*seq);
    packet.extend_from_slice(payload);
    *seq = seq.wrapping_add(1);
    w.write_all(&packet)?;
    w.flush()
}

/// Reads the fields of a payload from the front.
pub struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if n > self.bytes.len() {
            return Err(garbled("a packet shorter than its fields"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// A 1-byte integer.
    pub fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }

    /// A 2-byte little-endian integer.
    pub fn u16(&mut self) -> io::Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// A length-encoded integer; `None` for the NULL marker (0xFB).
    pub fn lenenc(&mut self) -> io::Result<Option<u64>> {
        let width = match self.u8()? {
            n @ 0..=0xFA => return Ok(Some(u64::from(n))),
            0xFB => return Ok(None),
            0xFC => 2,
            0xFD => 3,
            0xFE => 8,
            _ => return Err(garbled("a bad length")),
        };
        let mut le = [0u8; 8];
        le[..width].copy_from_slice(self.take(width)?);
        Ok(Some(u64::from_le_bytes(le)))
    }

    /// A length-encoded integer that must not be NULL.
    pub fn int(&mut self) -> io::Result<u64> {
        self.lenenc()?
            .ok_or_else(|| garbled("NULL where a number belongs"))
    }

    /// A length-encoded string; `None` for SQL `NULL`.
    pub fn lenenc_bytes(&mut self) -> io::Result<Option<&'a [u8]>> {
        match self.lenenc()? {
            None => Ok(None),
            Some(len) => {
                let len = usize::try_from(len).map_err(|_| garbled("a bad length"))?;
                self.take(len).map(Some)
            }
        }
    }

    /// A NUL-terminated string (without its NUL); the rest when there is no NUL.
    pub fn nul(&mut self) -> &'a [u8] {
        let end = self
            .bytes
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.bytes.len());
        let (text, rest) = self.bytes.split_at(end);
        self.bytes = rest.get(1..).unwrap_or(&[]);
        text
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_carry_their_length_and_sequence() {
        let mut wire = Vec::new();
        let mut seq = 7;
        write(&mut wire, &mut seq, b"\x03SELECT 1").unwrap();
        assert_eq!(wire, b"\x09\x00\x00\x07\x03SELECT 1");
        assert_eq!(seq, 8);
        let mut seq = 7;
        assert_eq!(read(&mut &wire[..], &mut seq).unwrap(), b"\x03SELECT 1");
        let mut seq = 0;
        let err = read(&mut &wire[..], &mut seq).unwrap_err();
        assert!(err.to_string().contains("out of sequence"), "{err}");
        let short = b"\x09\x00\x00\x00\x03SEL";
        let err = read(&mut &short[..], &mut 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let huge = b"\xff\xff\xff\x00";
        assert!(read(&mut &huge[..], &mut 0).is_err());
    }

    #[test]
    fn fields_are_read_in_every_encoding() {
        let bytes =
            b"\x05\xfb\xfc\x34\x12\xfd\x01\x02\x03\xfe\x01\0\0\0\0\0\0\x80\x03abcname\0tail";
        let mut c = Cursor::new(bytes);
        assert_eq!(c.lenenc().unwrap(), Some(5));
        assert_eq!(c.lenenc().unwrap(), None);
        assert_eq!(c.int().unwrap(), 0x1234);
        assert_eq!(c.int().unwrap(), 0x030201);
        assert_eq!(c.int().unwrap(), 0x8000_0000_0000_0001);
        assert_eq!(c.lenenc_bytes().unwrap(), Some(&b"abc"[..]));
        assert_eq!(c.nul(), b"name");
        assert_eq!(c.nul(), b"tail");
        assert!(c.u8().is_err());
        assert!(c.rest().is_empty());
        assert!(Cursor::new(b"\xff").lenenc().is_err());
        assert!(Cursor::new(b"\x05ab").lenenc_bytes().is_err());
        assert!(Cursor::new(b"\xfb").int().is_err());
    }
}
