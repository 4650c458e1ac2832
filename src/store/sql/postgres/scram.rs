//! SCRAM-SHA-256 (RFC 5802, RFC 7677) as the PostgreSQL client speaks it: no channel binding
//! (gs2 header `n,,`), the client nonce from the OS random source, PBKDF2-HMAC-SHA256 as
//! `Hi()`, and the server's signature checked before the login counts. Owns the SCRAM
//! messages' contents and the base64 they use; sending them is mod.rs's. No SASLprep: the
//! password's bytes are used as they are (PostgreSQL itself falls back to the raw bytes when
//! a password is not valid SASLprep input; an ASCII password is unaffected). The password,
//! the salted password, the keys and the proof live in `Zeroizing` buffers.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The SASL mechanism's name, as offered in AuthenticationSASL.
pub const MECHANISM: &str = "SCRAM-SHA-256";

/// The gs2 header: no channel binding, no authorization identity.
const GS2_HEADER: &str = "n,,";

/// Random bytes in the client nonce (24 base64 characters).
const NONCE_BYTES: usize = 18;

/// The most PBKDF2 iterations accepted (PostgreSQL's default is 4096): a larger count would
/// hold an auth process for seconds on the server's word.
const MAX_ITERATIONS: u32 = 1_000_000;

type HmacSha256 = Hmac<Sha256>;

/// A SCRAM exchange, from the client-first-message to the check of the server's signature.
pub struct Scram {
    password: Zeroizing<Vec<u8>>,
    /// The client-first-message without its gs2 header: `n=<user>,r=<client nonce>`.
    client_first_bare: String,
    nonce: String,
}

/// What checks the server-final-message: the signature the server must send.
pub struct Verifier {
    server_signature: Zeroizing<[u8; 32]>,
}

impl Scram {
    /// Starts an exchange for `password` with a fresh random nonce. `user` goes into the
    /// client-first-message; PostgreSQL ignores it (the startup message named the role), so
    /// the caller sends an empty one, as libpq does.
    pub fn start(user: &str, password: &[u8]) -> Result<Scram, String> {
        let mut random = [0u8; NONCE_BYTES];
        getrandom::fill(&mut random).map_err(|e| format!("no random SCRAM nonce: {e}"))?;
        Ok(Scram::with_nonce(user, password, &encode(&random)))
    }

    /// An exchange with the client nonce `nonce` (printable, without a comma).
    fn with_nonce(user: &str, password: &[u8], nonce: &str) -> Scram {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        Scram {
            password: Zeroizing::new(password.to_vec()),
            client_first_bare: format!("n={user},r={nonce}"),
            nonce: nonce.to_string(),
        }
    }

    /// The client-first-message (the SASLInitialResponse's data).
    pub fn client_first(&self) -> String {
        format!("{GS2_HEADER}{}", self.client_first_bare)
    }

    /// The client-final-message answering `server_first` (the SASLContinue's data), with the
    /// proof, and what checks the server's signature; `Err` names what was garbled.
    pub fn client_final(
        &self,
        server_first: &[u8],
    ) -> Result<(Zeroizing<Vec<u8>>, Verifier), &'static str> {
        const GARBLED: &str = "a garbled SCRAM challenge";
        let server_first = std::str::from_utf8(server_first).map_err(|_| GARBLED)?;
        let mut fields = server_first.split(',');
        let mut field = |name: &str| {
            fields
                .next()
                .and_then(|f| f.strip_prefix(name))
                .ok_or(GARBLED)
        };
        let (nonce, salt, iterations) = (field("r=")?, field("s=")?, field("i=")?);
        if nonce.len() <= self.nonce.len() || !nonce.starts_with(&self.nonce) {
            return Err("a SCRAM challenge whose nonce does not extend this client's");
        }
        let salt = decode(salt).filter(|s| !s.is_empty()).ok_or(GARBLED)?;
        let iterations: u32 = iterations.parse().ok().filter(|i| *i > 0).ok_or(GARBLED)?;
        if iterations > MAX_ITERATIONS {
            return Err("a SCRAM iteration count above 1000000");
        }
        let salted = hi(&self.password, &salt, iterations);
        let client_key = Zeroizing::new(hmac(&salted[..], b"Client Key"));
        let stored_key = Zeroizing::<[u8; 32]>::new(Sha256::digest(&client_key[..]).into());
        let without_proof = format!("c={},r={nonce}", encode(GS2_HEADER.as_bytes()));
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = Zeroizing::new(hmac(&stored_key[..], auth_message.as_bytes()));
        let mut proof = Zeroizing::new([0u8; 32]);
        for (p, (k, s)) in proof
            .iter_mut()
            .zip(client_key.iter().zip(signature.iter()))
        {
            *p = k ^ s;
        }
        let server_key = Zeroizing::new(hmac(&salted[..], b"Server Key"));
        let verifier = Verifier {
            server_signature: Zeroizing::new(hmac(&server_key[..], auth_message.as_bytes())),
        };
        let proof = Zeroizing::new(encode(&proof[..]));
        let mut message = Zeroizing::new(Vec::with_capacity(without_proof.len() + 3 + proof.len()));
        message.extend_from_slice(without_proof.as_bytes());
        message.extend_from_slice(b",p=");
        message.extend_from_slice(proof.as_bytes());
        Ok((message, verifier))
    }
}

impl Verifier {
    /// Checks `server_final` (the SASLFinal's data: `v=<signature>`): `Err` unless the
    /// server proved it knows the password.
    pub fn check(&self, server_final: &[u8]) -> Result<(), &'static str> {
        let verifier = server_final
            .split(|b| *b == b',')
            .next()
            .unwrap_or_default();
        let signature = verifier
            .strip_prefix(b"v=")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(decode)
            .ok_or("a garbled SCRAM verdict")?;
        let differ = signature.len() != 32
            || signature
                .iter()
                .zip(self.server_signature.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                != 0;
        if differ {
            return Err("a SCRAM signature that does not match: not the server it claims to be");
        }
        Ok(())
    }
}

/// HMAC-SHA256 of `data` under `key`.
fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `Hi(password, salt, iterations)`: PBKDF2-HMAC-SHA256, one 32-byte block.
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> Zeroizing<[u8; 32]> {
    let keyed = HmacSha256::new_from_slice(password).expect("HMAC takes a key of any length");
    let mut mac = keyed.clone();
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u = Zeroizing::<[u8; 32]>::new(mac.finalize().into_bytes().into());
    let mut result = u.clone();
    for _ in 1..iterations {
        let mut mac = keyed.clone();
        mac.update(&u[..]);
        *u = mac.finalize().into_bytes().into();
        for (r, b) in result.iter_mut().zip(u.iter()) {
            *r ^= b;
        }
    }
    result
}

/// The standard base64 alphabet (RFC 4648 §4).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `bytes` in padded base64.
fn encode(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// The bytes of padded base64 `text`; `None` if it is not that, canonically.
fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut bytes = Vec::with_capacity(text.len() / 4 * 3);
    for (i, quad) in text.chunks(4).enumerate() {
        let last = i + 1 == text.len() / 4;
        let padding = quad.iter().rev().take_while(|c| **c == b'=').count();
        if padding > 2 || (padding > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for c in &quad[..4 - padding] {
            let value = ALPHABET.iter().position(|a| a == c)?;
            n = n << 6 | value as u32;
        }
        // Bits the padding drops must be zero (one spelling per value).
        if n & ((1 << (2 * padding)) - 1) != 0 {
            return None;
        }
        n <<= 6 * padding;
        bytes.extend_from_slice(&n.to_be_bytes()[1..4 - padding]);
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3.
    const SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

    #[test]
    fn the_rfc_7677_exchange_gives_its_proof_and_checks_its_signature() {
        let scram = Scram::with_nonce("user", b"pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(scram.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let (client_final, verifier) = scram.client_final(SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(
            std::str::from_utf8(&client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            verifier.check(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Ok(())
        );
        let forged = verifier.check(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        assert!(forged.unwrap_err().contains("does not match"));
        let noncanonical = verifier.check(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=");
        assert_eq!(noncanonical, Err("a garbled SCRAM verdict"));
        assert!(verifier.check(b"e=invalid-proof").is_err());
        assert!(verifier.check(b"v=6rriTRBi23WpRR").is_err(), "too short");
    }

    #[test]
    fn garbled_or_foreign_challenges_are_refused() {
        let scram = Scram::with_nonce("", b"pencil", "rOprNGfwEbeRWgbNEkqO");
        for challenge in [
            "",
            "r=rOprNGfwEbeRWgbNEkqO",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999",
            "r=rOprNGfwEbeRWgbNEkqOx,s=,i=4096",
            "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqOx,i=4096",
            "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=someone-elses-nonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        ] {
            assert!(
                scram.client_final(challenge.as_bytes()).is_err(),
                "{challenge}"
            );
        }
        assert!(
            scram.client_final(&[0xff, b'r', b'=']).is_err(),
            "not UTF-8"
        );
    }

    #[test]
    fn nonces_are_random_and_user_names_escaped() {
        let (a, b) = (
            Scram::start("", b"pw").unwrap(),
            Scram::start("", b"pw").unwrap(),
        );
        assert_ne!(a.nonce, b.nonce);
        assert_eq!(a.nonce.len(), 24);
        assert_eq!(a.client_first(), format!("n,,n=,r={}", a.nonce));
        let odd = Scram::with_nonce("a,b=c", b"pw", "xyz");
        assert_eq!(odd.client_first(), "n,,n=a=2Cb=3Dc,r=xyz");
    }

    #[test]
    fn base64_round_trips_and_refuses_what_is_not() {
        for (bytes, text) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"n,,", "biws"),
            (&[0xfb, 0xff], "+/8="),
        ] {
            assert_eq!(encode(bytes), text);
            assert_eq!(decode(text).as_deref(), Some(bytes), "{text}");
        }
        for bad in [
            "Zg=", "Zg===", "Z===", "Zg==Zm9v", "Zm9-", "Zm 9", "Zh==", "Zm9=", "=Zm9",
        ] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
