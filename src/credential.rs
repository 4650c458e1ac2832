//! App passwords and recovery codes: their shapes, how they are generated, and the salted
//! hashes the record keeps instead of them.
//!
//! Both are high-entropy random strings made by the command, so a fast salted hash is
//! enough: guessing an app password (20 letters, 94 bits) or a recovery code (12 letters, 56
//! bits, one-time, and only after the right password, under the throttle) is hopeless
//! whatever the hash costs, while a slow hash (bcrypt, Argon2) would cost every reconnect of
//! every mail client tens of milliseconds. Hash format: `sha256$<salt hex>$<digest hex>` with
//! a 128-bit salt, SHA-256(salt ‖ secret).
//!
//! Shapes (the split rule in `src/split.rs` tells them apart by their last characters):
//! - app password: `abcde-fghij-klmno-pqrst` — 20 letters in groups of 5 (dashes optional);
//! - recovery code: `abcd-efgh-ijkl` — 12 letters in groups of 4, typed after the password
//!   in place of the six-digit code.

use crate::otp::constant_time_eq;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Letters in an app password.
pub const APP_PASSWORD_LETTERS: usize = 20;
/// Letters in a recovery code.
pub const RECOVERY_LETTERS: usize = 12;
/// Length of a recovery code as typed: three groups of four letters and two dashes.
pub const RECOVERY_CODE_LEN: usize = 14;
/// Recovery codes generated at a time.
pub const RECOVERY_CODE_COUNT: usize = 10;

/// The letters of an app password if `supplied` has that shape (letters, optionally in
/// groups of five separated by `-`), lower-cased; else `None`.
pub fn app_password_letters(supplied: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let letters: Zeroizing<Vec<u8>> = Zeroizing::new(
        supplied
            .iter()
            .filter(|&&b| b != b'-')
            .map(u8::to_ascii_lowercase)
            .collect(),
    );
    let grouped = supplied.len() == APP_PASSWORD_LETTERS + 3
        && supplied
            .iter()
            .enumerate()
            .all(|(i, &b)| (b == b'-') == (i % 6 == 5));
    let plain = supplied.len() == APP_PASSWORD_LETTERS;
    ((grouped || plain)
        && letters.len() == APP_PASSWORD_LETTERS
        && letters.iter().all(u8::is_ascii_lowercase))
    .then_some(letters)
}

/// Whether `tail` has the shape of a recovery code (`abcd-efgh-ijkl`, any letter case).
pub fn is_recovery_code(tail: &[u8]) -> bool {
    tail.len() == RECOVERY_CODE_LEN
        && tail.iter().enumerate().all(|(i, &b)| {
            if i % 5 == 4 {
                b == b'-'
            } else {
                b.is_ascii_alphabetic()
            }
        })
}

/// A recovery code's letters, lower-cased (what is hashed).
pub fn recovery_letters(code: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(
        code.iter()
            .filter(|&&b| b != b'-')
            .map(u8::to_ascii_lowercase)
            .collect(),
    )
}

/// Salted hash of `secret` in the record's format.
pub fn hash(secret: &[u8], salt: &[u8; 16]) -> String {
    format!("sha256${}${}", hex(salt), hex(&digest(salt, secret)))
}

/// Whether `hash` (from [`hash`]) is the hash of `secret`; `false` for a malformed hash.
pub fn verify(hash: &str, secret: &[u8]) -> bool {
    let Some((salt, want)) = parse(hash) else {
        return false;
    };
    constant_time_eq(&digest(&salt, secret), &want)
}

/// Whether `hash` is well formed (checked when a record is read).
pub fn is_valid_hash(hash: &str) -> bool {
    parse(hash).is_some()
}

/// A short stable id of a hash (its first 16 digest hex digits), used by the state to mark a
/// recovery code as used without holding the hash itself.
pub fn hash_id(hash: &str) -> String {
    hash.rsplit('$')
        .next()
        .unwrap_or("")
        .chars()
        .take(16)
        .collect()
}

fn parse(hash: &str) -> Option<([u8; 16], Vec<u8>)> {
    let mut parts = hash.split('$');
    let (Some("sha256"), Some(salt), Some(digest), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let salt: [u8; 16] = unhex(salt)?.try_into().ok()?;
    let digest = unhex(digest).filter(|d| d.len() == 32)?;
    Some((salt, digest))
}

fn digest(salt: &[u8], secret: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(secret);
    h.finalize().to_vec()
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of lower- or upper-case hex `text`; `None` when it is not hex.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Random lower-case letters from the OS random source, in groups of `group` joined by `-`.
pub fn random_letters(count: usize, group: usize) -> Result<Zeroizing<String>, getrandom::Error> {
    let mut out = Zeroizing::new(String::with_capacity(count + count / group));
    let mut made = 0;
    while made < count {
        let mut buf = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut buf[..])?;
        // 234 = 9 × 26: rejecting bytes at or above it keeps every letter equally likely.
        for &b in buf.iter().filter(|&&b| b < 234) {
            if made == count {
                break;
            }
            if made > 0 && made % group == 0 {
                out.push('-');
            }
            out.push(char::from(b'a' + b % 26));
            made += 1;
        }
    }
    Ok(out)
}

/// A fresh random 128-bit salt.
pub fn random_salt() -> Result<[u8; 16], getrandom::Error> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)?;
    Ok(salt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_letters_use_every_letter_alike() {
        // 520,000 letters: each letter 20,000 times expected (sd ~140); 5 % is 7 sd, and a
        // generator that drops letters or favours one by a byte in 234 is far outside it.
        let letters = random_letters(520_000, 520_000).unwrap();
        let mut counts = [0u32; 26];
        for b in letters.bytes() {
            assert!(b.is_ascii_lowercase(), "{b}");
            counts[usize::from(b - b'a')] += 1;
        }
        for (i, n) in counts.iter().enumerate() {
            assert!(
                (19_000..=21_000).contains(n),
                "letter {} came {n} times",
                char::from(b'a' + i as u8)
            );
        }
    }

    #[test]
    fn salts_are_fresh() {
        let (a, b) = (random_salt().unwrap(), random_salt().unwrap());
        assert_ne!(a, b);
        assert_ne!(a, [0; 16]);
    }

    #[test]
    fn generated_app_passwords_have_the_app_password_shape() {
        let pw = random_letters(APP_PASSWORD_LETTERS, 5).unwrap();
        assert_eq!(pw.len(), 23);
        let letters = app_password_letters(pw.as_bytes()).unwrap();
        assert_eq!(letters.len(), 20);
        assert_eq!(
            app_password_letters(pw.replace('-', "").as_bytes()).unwrap(),
            letters
        );
    }

    #[test]
    fn other_strings_are_not_app_passwords() {
        for s in [
            "abcde-fghij-klmno-pqrs1",
            "abcdefghijklmnopqrs",
            "abcd-efghij-klmno-pqrst",
            "pw123456",
            "",
        ] {
            assert!(app_password_letters(s.as_bytes()).is_none(), "{s}");
        }
    }

    #[test]
    fn recovery_codes_have_their_shape() {
        let code = random_letters(RECOVERY_LETTERS, 4).unwrap();
        assert!(is_recovery_code(code.as_bytes()));
        assert!(!is_recovery_code(b"abcd-efgh-ijk1"));
        assert!(!is_recovery_code(b"abcdefghijklmn"));
    }

    #[test]
    fn hashes_verify_only_their_secret() {
        let h = hash(b"secret", &[7; 16]);
        assert!(verify(&h, b"secret"));
        assert!(!verify(&h, b"secreT"));
        assert!(!verify("sha256$zz$00", b"secret"));
        assert!(is_valid_hash(&h));
        assert_eq!(hash_id(&h).len(), 16);
    }
}
