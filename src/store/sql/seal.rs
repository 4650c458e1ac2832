//! Records sealed at rest (`sql_key_file`): the record's text encrypted and authenticated with
//! ChaCha20-Poly1305 (ring's AEAD, already linked for TLS), bound to the login and the key.
//!
//! The key file holds one key per line, `<id> <64 hex digits>` (ids 1 to 65535, increasing);
//! `#` starts a comment. The last line seals what is written; every line opens what was
//! sealed with it, so a rotation (`mailmfa db rekey`) adds a key, re-seals every row with it,
//! and only then may the old line go. The file is a secret: mode 0600, owned by root or the
//! running user (or `record_owner`), read at each use.
//!
//! A sealed record is `<nonce><ciphertext><tag>` in hex, stored beside its key id. The
//! associated data is `mailmfa-record-v1`, the key id and the login: a row copied to another
//! login, relabelled with another key id, or changed in one bit does not open, and the
//! login is denied. The nonce is 96 random bits per seal: records are written a few times in
//! their life, far from the 2^32 seals per key where random nonces start to risk a repeat.

use crate::credential::{hex, unhex};
use crate::login::Login;
use crate::store::net::refused;
use crate::store::secure::{self, Owners};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use std::path::Path;
use zeroize::Zeroizing;

/// Key length in bytes (256 bits).
const KEY_BYTES: usize = 32;

/// What the associated data starts with (the format's name and version).
const CONTEXT: &[u8] = b"mailmfa-record-v1\0";

/// The keys of a key file: ids and key bytes, the last one current.
pub struct Keys {
    keys: Vec<(u16, Zeroizing<[u8; KEY_BYTES]>)>,
}

/// A sealed record as stored: which key sealed it, and the sealed bytes in hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// The id of the key that sealed it.
    pub key_id: u16,
    /// `<nonce><ciphertext><tag>`, hex.
    pub text: String,
}

impl Keys {
    /// Reads the key file at `path`, checked like every secret the module reads.
    pub fn load(path: &Path, owners: Owners) -> Result<Keys, String> {
        let text = secure::read_secret(path, owners).map_err(|r| refused(path, r))?;
        Keys::parse(&text).map_err(|why| format!("{}: {why}", path.display()))
    }

    /// Parses a key file's text; the error names the line, never a key.
    pub fn parse(text: &str) -> Result<Keys, String> {
        let mut keys: Vec<(u16, Zeroizing<[u8; KEY_BYTES]>)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| format!("line {}: {why}", n + 1);
            let (id, key) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| bad("is not `<id> <64 hex digits>`"))?;
            let id = id
                .parse::<u16>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| bad("has a key id that is not 1 to 65535"))?;
            if keys.last().is_some_and(|(last, _)| *last >= id) {
                return Err(bad("has a key id not greater than the line before"));
            }
            let bytes = Zeroizing::new(unhex(key.trim()).unwrap_or_default());
            let mut key = Zeroizing::new([0u8; KEY_BYTES]);
            if bytes.len() != KEY_BYTES {
                return Err(bad("needs a key of 64 hex digits (256 bits)"));
            }
            key.copy_from_slice(&bytes);
            keys.push((id, key));
        }
        if keys.is_empty() {
            return Err("holds no key".to_string());
        }
        Ok(Keys { keys })
    }

    /// The id of the key that seals (the last line's).
    pub fn current(&self) -> u16 {
        self.keys.last().expect("parse keeps at least one key").0
    }

    /// Every key id in the file, oldest first.
    pub fn ids(&self) -> Vec<u16> {
        self.keys.iter().map(|(id, _)| *id).collect()
    }

    /// Seals `plain` for `login` with the current key.
    pub fn seal(&self, login: &Login, plain: &[u8]) -> Result<Sealed, String> {
        let (id, bytes) = self.keys.last().expect("parse keeps at least one key");
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| format!("no random nonce: {e}"))?;
        let mut out = Zeroizing::new(Vec::with_capacity(NONCE_LEN + plain.len() + 16));
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let mut body = Zeroizing::new(out.split_off(NONCE_LEN));
        aead(bytes)
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated(*id, login)),
                &mut *body,
            )
            .map_err(|_| "sealing failed".to_string())?;
        out.extend_from_slice(&body);
        Ok(Sealed {
            key_id: *id,
            text: hex(&out),
        })
    }

    /// Opens what [`Keys::seal`] made for `login`; the error says why without a byte of it.
    pub fn open(&self, login: &Login, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, String> {
        let (_, bytes) = self
            .keys
            .iter()
            .find(|(id, _)| *id == sealed.key_id)
            .ok_or_else(|| {
                format!(
                    "sealed with key {}, which the key file does not hold",
                    sealed.key_id
                )
            })?;
        let mut raw = Zeroizing::new(unhex(&sealed.text).ok_or("the sealed value is not hex")?);
        if raw.len() < NONCE_LEN + 16 {
            return Err("the sealed value is too short".to_string());
        }
        let nonce = Nonce::try_assume_unique_for_key(&raw[..NONCE_LEN])
            .map_err(|_| "the sealed value has no nonce".to_string())?;
        let plain = aead(bytes)
            .open_in_place(
                nonce,
                Aad::from(associated(sealed.key_id, login)),
                &mut raw[NONCE_LEN..],
            )
            .map_err(|_| {
                "does not open with its key and login (changed, copied from another login, or \
                 the wrong key file)"
                    .to_string()
            })?;
        Ok(Zeroizing::new(plain.to_vec()))
    }
}

/// A new key file line for key `id`: 256 random bits.
pub fn new_key_line(id: u16) -> Result<Zeroizing<String>, String> {
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    getrandom::fill(&mut *key).map_err(|e| format!("no random key: {e}"))?;
    Ok(Zeroizing::new(format!("{id} {}\n", hex(&*key))))
}

fn aead(bytes: &[u8; KEY_BYTES]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, bytes).expect("a 256-bit key"))
}

fn associated(key_id: u16, login: &Login) -> Vec<u8> {
    let mut ad = Vec::with_capacity(CONTEXT.len() + 2 + login.as_str().len());
    ad.extend_from_slice(CONTEXT);
    ad.extend_from_slice(&key_id.to_be_bytes());
    ad.extend_from_slice(login.as_str().as_bytes());
    ad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(name: &str) -> Login {
        Login::parse(name.as_bytes()).unwrap()
    }

    fn keys(lines: &[u16]) -> Keys {
        let text: String = lines
            .iter()
            .map(|id| new_key_line(*id).unwrap().to_string())
            .collect();
        Keys::parse(&text).unwrap()
    }

    #[test]
    fn a_sealed_record_opens_for_its_login_only() {
        let keys = keys(&[1]);
        let alice = login("alice@example.com");
        let sealed = keys.seal(&alice, b"secret = \"JBSWY3DP\"").unwrap();
        assert!(!sealed.text.contains(&hex(b"JBSWY3DP")));
        assert_eq!(
            &keys.open(&alice, &sealed).unwrap()[..],
            b"secret = \"JBSWY3DP\""
        );
        let err = keys.open(&login("bob@example.com"), &sealed).unwrap_err();
        assert!(err.contains("another login"), "{err}");
    }

    #[test]
    fn a_changed_bit_or_key_id_does_not_open() {
        let keys = keys(&[1, 2]);
        let alice = login("alice");
        let sealed = keys.seal(&alice, b"record").unwrap();
        assert_eq!(sealed.key_id, 2);
        for i in 0..sealed.text.len() {
            let mut text = sealed.text.clone().into_bytes();
            text[i] = if text[i] == b'0' { b'1' } else { b'0' };
            let changed = Sealed {
                key_id: 2,
                text: String::from_utf8(text).unwrap(),
            };
            assert!(keys.open(&alice, &changed).is_err(), "byte {i}");
        }
        let relabelled = Sealed {
            key_id: 1,
            ..sealed.clone()
        };
        assert!(keys.open(&alice, &relabelled).is_err());
        let unknown = Sealed {
            key_id: 3,
            ..sealed
        };
        assert!(keys.open(&alice, &unknown).unwrap_err().contains("key 3"));
    }

    #[test]
    fn old_keys_open_what_they_sealed_and_the_last_key_seals() {
        let old = keys(&[1]);
        let alice = login("alice");
        let sealed = old.seal(&alice, b"record").unwrap();
        let line1 = "1 ".to_string() + &"ab".repeat(32);
        let both = Keys::parse(&format!("{line1}\n2 {}\n", "cd".repeat(32))).unwrap();
        assert_eq!(both.current(), 2);
        assert_eq!(both.ids(), vec![1, 2]);
        // Another key under the same id does not open it.
        assert!(both.open(&alice, &sealed).is_err());
        // Two seals of one text differ (fresh nonces).
        assert_ne!(
            old.seal(&alice, b"x").unwrap(),
            old.seal(&alice, b"x").unwrap()
        );
    }

    #[test]
    fn an_empty_text_round_trips_and_a_value_too_short_for_a_tag_is_refused() {
        let keys = keys(&[1]);
        let alice = login("alice");
        let sealed = keys.seal(&alice, b"").unwrap();
        assert_eq!(sealed.text.len(), 2 * (NONCE_LEN + 16));
        assert!(keys.open(&alice, &sealed).unwrap().is_empty());
        for bytes in [1, NONCE_LEN, NONCE_LEN + 15] {
            let short = Sealed {
                key_id: 1,
                text: "ab".repeat(bytes),
            };
            let err = keys.open(&alice, &short).unwrap_err();
            assert!(err.contains("too short"), "{bytes}: {err}");
        }
    }

    #[test]
    fn bad_key_files_are_refused_without_echoing_a_key() {
        let key = "ab".repeat(32);
        for (text, want) in [
            (String::new(), "no key"),
            ("# only a comment\n".to_string(), "no key"),
            (format!("0 {key}"), "1 to 65535"),
            (format!("x {key}"), "1 to 65535"),
            (key.clone(), "<id>"),
            ("1 abcd".to_string(), "64 hex"),
            (format!("1 {}", "zz".repeat(32)), "64 hex"),
            (format!("2 {key}\n1 {key}"), "line 2"),
        ] {
            let err = Keys::parse(&text)
                .err()
                .unwrap_or_else(|| panic!("{text:?} was accepted"));
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(!err.contains(&key), "{err}");
        }
    }
}
