//! TOTP (RFC 6238 over RFC 4226 HOTP): computes codes and says which time step a code matched.
//!
//! The check compares codes in constant time and looks at the steps of the window from the
//! earliest on, stopping at the first match: a wrong code always costs every step, so the time
//! it takes tells nothing about the code; only a right one returns sooner, and its answer says
//! as much anyway. Codes and MACs live on the stack and are wiped after use.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The HMAC hash of a TOTP secret (the `algorithm` of an `otpauth://` URI).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Algorithm {
    /// HMAC-SHA-1, what every authenticator app supports; the default.
    #[default]
    SHA1,
    /// HMAC-SHA-256.
    SHA256,
    /// HMAC-SHA-512.
    SHA512,
}

impl Algorithm {
    /// The name used in records and `otpauth://` URIs.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::SHA1 => "SHA1",
            Algorithm::SHA256 => "SHA256",
            Algorithm::SHA512 => "SHA512",
        }
    }
}

/// The parameters of one user's codes.
#[derive(Clone, Copy, Debug)]
pub struct Params<'a> {
    /// The raw (decoded) shared secret.
    pub secret: &'a [u8],
    /// HMAC hash.
    pub algorithm: Algorithm,
    /// Code length: 6 or 8.
    pub digits: u32,
    /// Step length in seconds.
    pub period: u64,
}

impl Params<'_> {
    /// The time step that `unix_time` falls in.
    pub fn step_at(&self, unix_time: u64) -> u64 {
        unix_time / self.period
    }

    /// The code of time step `step`, as `digits` ASCII digits.
    pub fn code(&self, step: u64) -> Zeroizing<Vec<u8>> {
        let mut digits = Zeroizing::new([0u8; MAX_DIGITS]);
        Zeroizing::new(
            self.code_into(&Keyed::new(self), step, &mut digits)
                .to_vec(),
        )
    }

    /// The step within `window` steps of `now`'s step whose code is `code`, if any: the
    /// earliest match. Each step's code is compared in constant time; a code that matches no
    /// step costs every step of the window.
    pub fn matching_step(&self, code: &[u8], unix_time: u64, window: u64) -> Option<u64> {
        let keyed = Keyed::new(self);
        let now = self.step_at(unix_time);
        let mut digits = Zeroizing::new([0u8; MAX_DIGITS]);
        (now.saturating_sub(window)..=now.saturating_add(window))
            .find(|&step| constant_time_eq(self.code_into(&keyed, step, &mut digits), code))
    }

    /// The code of `step` (RFC 4226 dynamic truncation of its HMAC to `digits` ASCII digits),
    /// written into `out`.
    fn code_into<'o>(&self, keyed: &Keyed, step: u64, out: &'o mut [u8; MAX_DIGITS]) -> &'o [u8] {
        let mut tag = Zeroizing::new([0u8; MAX_MAC]);
        let len = keyed.sign_into(step, &mut tag);
        let mac = &tag[..len];
        let offset = usize::from(mac[mac.len() - 1] & 0x0f);
        let bin = u32::from_be_bytes([
            mac[offset],
            mac[offset + 1],
            mac[offset + 2],
            mac[offset + 3],
        ]) & 0x7fff_ffff;
        let digits = (self.digits as usize).min(MAX_DIGITS);
        // RFC 4226's `bin mod 10^digits`, written out: the loop keeps the last `digits`
        // decimal digits.
        let mut value = bin;
        for d in out[..digits].iter_mut().rev() {
            *d = b'0' + (value % 10) as u8;
            value /= 10;
        }
        &out[..digits]
    }
}

/// The longest code a `u32` truncation gives (records allow 6 or 8 digits).
const MAX_DIGITS: usize = 9;

/// The longest MAC (HMAC-SHA-512).
const MAX_MAC: usize = 64;

/// An HMAC keyed with the secret once, cloned for each step: the key schedule (two of the four
/// hash blocks of every HMAC-SHA-1) is computed once per check instead of once per step.
enum Keyed {
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
}

impl Keyed {
    fn new(params: &Params<'_>) -> Keyed {
        fn key<M: hmac::digest::KeyInit>(secret: &[u8]) -> M {
            M::new_from_slice(secret).expect("HMAC accepts keys of any length")
        }
        match params.algorithm {
            Algorithm::SHA1 => Keyed::Sha1(key(params.secret)),
            Algorithm::SHA256 => Keyed::Sha256(key(params.secret)),
            Algorithm::SHA512 => Keyed::Sha512(key(params.secret)),
        }
    }

    /// HMAC of the step counter (8 bytes, big-endian) into `out`; returns its length.
    fn sign_into(&self, step: u64, out: &mut [u8; MAX_MAC]) -> usize {
        fn run<M: Mac + Clone>(keyed: &M, message: &[u8], out: &mut [u8; MAX_MAC]) -> usize {
            let mut mac = keyed.clone();
            mac.update(message);
            let tag = mac.finalize().into_bytes();
            out[..tag.len()].copy_from_slice(&tag);
            tag.len()
        }
        let message = step.to_be_bytes();
        match self {
            Keyed::Sha1(m) => run(m, &message, out),
            Keyed::Sha256(m) => run(m, &message, out),
            Keyed::Sha512(m) => run(m, &message, out),
        }
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_are_named_as_authenticator_apps_read_them() {
        // The Key URI format's `algorithm=` values, also the record's.
        let names: Vec<&str> = [Algorithm::SHA1, Algorithm::SHA256, Algorithm::SHA512]
            .iter()
            .map(|a| a.name())
            .collect();
        assert_eq!(names, ["SHA1", "SHA256", "SHA512"]);
    }

    // RFC 6238 Appendix B: the test secrets and the 8-digit codes at the listed times.
    const SHA1_KEY: &[u8] = b"12345678901234567890";
    const SHA256_KEY: &[u8] = b"12345678901234567890123456789012";
    const SHA512_KEY: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    fn params(secret: &[u8], algorithm: Algorithm) -> Params<'_> {
        Params {
            secret,
            algorithm,
            digits: 8,
            period: 30,
        }
    }

    #[test]
    fn rfc6238_vectors() {
        let cases: [(u64, &str, &str, &str); 3] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (t, s1, s256, s512) in cases {
            for (key, alg, want) in [
                (SHA1_KEY, Algorithm::SHA1, s1),
                (SHA256_KEY, Algorithm::SHA256, s256),
                (SHA512_KEY, Algorithm::SHA512, s512),
            ] {
                let p = params(key, alg);
                assert_eq!(&p.code(p.step_at(t))[..], want.as_bytes(), "{alg:?} at {t}");
            }
        }
    }

    #[test]
    fn matching_step_says_which_step_matched() {
        let p = Params {
            digits: 6,
            ..params(SHA1_KEY, Algorithm::SHA1)
        };
        let now = 1_000_000_000;
        let step = p.step_at(now);
        for matched in [step - 1, step, step + 1] {
            assert_eq!(p.matching_step(&p.code(matched), now, 1), Some(matched));
        }
        let far = p.code(step + 2);
        assert_eq!(p.matching_step(&far, now, 1), None);
        assert_eq!(p.matching_step(&far, now, 2), Some(step + 2));
        assert_eq!(p.matching_step(b"12345", now, 1), None);
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"123456", b"123456"));
        assert!(!constant_time_eq(b"123456", b"123457"));
        assert!(!constant_time_eq(b"123456", b"12345"));
    }
}
