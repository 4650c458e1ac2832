//! Logging in to MariaDB/MySQL: the server's greeting (handshake v10), the client's
//! capabilities, the TLS request, the login packet, and the password scrambles of the two
//! plugins spoken (`mysql_native_password`, `caching_sha2_password`). Scrambles and
//! everything derived from the password are zeroed when dropped.

use super::packet::{garbled, Cursor};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::io;
use zeroize::Zeroizing;

/// `CLIENT_LONG_PASSWORD`.
const LONG_PASSWORD: u32 = 0x1;
/// `CLIENT_FOUND_ROWS`: an `UPDATE` reports the rows it matched, as PostgreSQL does, not only
/// those whose values changed.
const FOUND_ROWS: u32 = 0x2;
/// `CLIENT_CONNECT_WITH_DB`.
const CONNECT_WITH_DB: u32 = 0x8;
/// `CLIENT_PROTOCOL_41`.
const PROTOCOL_41: u32 = 0x200;
/// `CLIENT_SSL`.
pub const SSL: u32 = 0x800;
/// `CLIENT_TRANSACTIONS`.
const TRANSACTIONS: u32 = 0x2000;
/// `CLIENT_SECURE_CONNECTION`.
const SECURE_CONNECTION: u32 = 0x8000;
/// `CLIENT_MULTI_STATEMENTS`: scripts.
const MULTI_STATEMENTS: u32 = 0x1_0000;
/// `CLIENT_MULTI_RESULTS`.
const MULTI_RESULTS: u32 = 0x2_0000;
/// `CLIENT_PLUGIN_AUTH`.
const PLUGIN_AUTH: u32 = 0x8_0000;

/// What the client needs of the server.
const REQUIRED: u32 = PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH;
/// What the client asks for (with [`SSL`] when it wants TLS); no `CLIENT_DEPRECATE_EOF`, so
/// every result's rows end with an EOF packet.
const WANTED: u32 = LONG_PASSWORD
    | FOUND_ROWS
    | CONNECT_WITH_DB
    | TRANSACTIONS
    | MULTI_STATEMENTS
    | MULTI_RESULTS
    | REQUIRED;

/// utf8mb4 with its default collation (`utf8mb4_general_ci`, id 45).
const UTF8MB4: u8 = 45;
/// The largest packet the client accepts (16 MiB).
const MAX_PACKET: u32 = 0x100_0000;

/// The plugin that proves the password with a SHA-1 scramble.
pub const NATIVE: &str = "mysql_native_password";
/// The plugin that proves it with a SHA-256 scramble, or the password itself (full
/// authentication) over a secure connection.
pub const CACHING_SHA2: &str = "caching_sha2_password";

/// The server's greeting.
pub struct Greeting {
    /// The server's capability flags.
    pub capabilities: u32,
    /// The scramble's nonce (20 bytes).
    pub nonce: Vec<u8>,
    /// The server's default authentication plugin.
    pub plugin: String,
}

impl Greeting {
    /// Parses the greeting's payload; the server refusing the connection right away (too many
    /// connections, a blocked host) is an error with its message.
    pub fn parse(payload: &[u8]) -> Result<Greeting, String> {
        let mut c = Cursor::new(payload);
        let shown = |e: io::Error| e.to_string();
        match c.u8().map_err(shown)? {
            10 => {}
            0xFF => {
                let message = String::from_utf8_lossy(c.rest().get(2..).unwrap_or(&[]));
                return Err(format!("the server refused the connection: {message}"));
            }
            v => {
                return Err(format!(
                    "the server speaks protocol {v}, not 10 (MySQL 4.1+)"
                ))
            }
        }
        c.nul(); // server version
        let (nonce, capabilities, plugin) = (|| {
            c.take(4)?; // connection id
            let mut nonce = c.take(8)?.to_vec();
            c.take(1)?;
            let low = c.u16()?;
            c.take(3)?; // charset, status
            let capabilities = u32::from(low) | u32::from(c.u16()?) << 16;
            let len = usize::from(c.u8()?);
            c.take(10)?;
            let part2 = c.take(len.saturating_sub(8).max(13))?;
            nonce.extend_from_slice(part2.strip_suffix(&[0]).unwrap_or(part2));
            Ok::<_, io::Error>((nonce, capabilities, c.nul()))
        })()
        .map_err(shown)?;
        if capabilities & REQUIRED != REQUIRED {
            return Err("the server is too old (it lacks protocol 4.1 or plugin logins)".into());
        }
        Ok(Greeting {
            capabilities,
            nonce,
            plugin: String::from_utf8_lossy(plugin).into_owned(),
        })
    }

    /// The capabilities to ask for: those wanted that the server has, and TLS if `tls`.
    pub fn client_capabilities(&self, tls: bool) -> u32 {
        let tls = if tls { SSL } else { 0 };
        (WANTED | tls) & self.capabilities
    }
}

/// The fixed start of the login packet; alone, it is the request to switch to TLS.
pub fn ssl_request(capabilities: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(32);
    p.extend_from_slice(&capabilities.to_le_bytes());
    p.extend_from_slice(&MAX_PACKET.to_le_bytes());
    p.push(UTF8MB4);
    p.extend_from_slice(&[0; 23]);
    p
}

/// The login packet (`HandshakeResponse41`).
pub fn login(
    capabilities: u32,
    user: &str,
    proof: &[u8],
    database: &str,
    plugin: &str,
) -> io::Result<Zeroizing<Vec<u8>>> {
    let proof_len = u8::try_from(proof.len()).map_err(|_| garbled("a nonce too long"))?;
    let mut p = Zeroizing::new(ssl_request(capabilities));
    for part in [
        user.as_bytes(),
        &[0],
        &[proof_len],
        proof,
        database.as_bytes(),
        &[0],
    ] {
        p.extend_from_slice(part);
    }
    p.extend_from_slice(plugin.as_bytes());
    p.push(0);
    Ok(p)
}

/// The proof of `password` for `plugin` on `nonce`; `None` for a plugin not spoken. No
/// password proves itself with nothing.
pub fn scramble(plugin: &str, password: &[u8], nonce: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let nonce = nonce.get(..20).unwrap_or(nonce);
    let (hash, mix) = match plugin {
        NATIVE => {
            let hash = Zeroizing::new(Sha1::digest(password).to_vec());
            let twice = Sha1::digest(&*hash);
            (
                hash,
                Sha1::new()
                    .chain_update(nonce)
                    .chain_update(twice)
                    .finalize()
                    .to_vec(),
            )
        }
        CACHING_SHA2 => {
            let hash = Zeroizing::new(Sha256::digest(password).to_vec());
            let twice = Sha256::digest(&*hash);
            (
                hash,
                Sha256::new()
                    .chain_update(twice)
                    .chain_update(nonce)
                    .finalize()
                    .to_vec(),
            )
        }
        _ => return None,
    };
    if password.is_empty() {
        return Some(Zeroizing::new(Vec::new()));
    }
    Some(Zeroizing::new(
        hash.iter().zip(mix).map(|(a, b)| a ^ b).collect(),
    ))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A greeting from a server with TLS and multi-statements whose default plugin is
    /// `plugin`.
    pub(in crate::store::sql::mysql) fn greeting_for(plugin: &str) -> Vec<u8> {
        greeting(REQUIRED | SSL | MULTI_STATEMENTS | MULTI_RESULTS, plugin)
    }

    /// A greeting as MariaDB 10.11 sends it (nonce `abcdefgh` + `ijklmnopqrst`).
    fn greeting(capabilities: u32, plugin: &str) -> Vec<u8> {
        let mut p = vec![10];
        p.extend_from_slice(b"5.5.5-10.11.6-MariaDB\0\x07\0\0\0abcdefgh\0");
        p.extend_from_slice(&(capabilities as u16).to_le_bytes());
        p.extend_from_slice(&[45, 2, 0]);
        p.extend_from_slice(&((capabilities >> 16) as u16).to_le_bytes());
        p.push(21);
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(b"ijklmnopqrst\0");
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
        p
    }

    #[test]
    fn the_greeting_gives_nonce_capabilities_and_plugin() {
        let caps = REQUIRED | SSL | MULTI_RESULTS;
        let g = Greeting::parse(&greeting(caps, NATIVE)).unwrap();
        assert_eq!(g.nonce, b"abcdefghijklmnopqrst");
        assert_eq!(g.capabilities, caps);
        assert_eq!(g.plugin, NATIVE);
        assert_eq!(g.client_capabilities(false), REQUIRED | MULTI_RESULTS);
        assert_eq!(g.client_capabilities(true), REQUIRED | MULTI_RESULTS | SSL);
        let old = Greeting::parse(&greeting(PROTOCOL_41, NATIVE))
            .err()
            .unwrap();
        assert!(old.contains("too old"), "{old}");
        let refused = Greeting::parse(b"\xff\x10\x04Too many connections")
            .err()
            .unwrap();
        assert!(refused.ends_with("Too many connections"), "{refused}");
        assert!(Greeting::parse(&greeting(caps, NATIVE)[..30]).is_err());
        assert!(Greeting::parse(b"\x09").is_err());
    }

    #[test]
    fn scrambles_match_the_servers_formulas() {
        // mysql_native_password: SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw))), checked the
        // way the server does: SHA1(proof XOR SHA1(nonce + stored)) == stored.
        let nonce = b"abcdefghijklmnopqrst";
        let proof = scramble(NATIVE, b"secret", nonce).unwrap();
        let stored = Sha1::digest(Sha1::digest(b"secret"));
        let mix = Sha1::new()
            .chain_update(nonce)
            .chain_update(stored)
            .finalize();
        let hash: Vec<u8> = proof.iter().zip(mix).map(|(a, b)| a ^ b).collect();
        assert_eq!(Sha1::digest(hash), stored);
        // caching_sha2_password: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce), checked
        // the same way.
        let proof = scramble(CACHING_SHA2, b"secret", nonce).unwrap();
        let stored = Sha256::digest(Sha256::digest(b"secret"));
        let mix = Sha256::new()
            .chain_update(stored)
            .chain_update(nonce)
            .finalize();
        let hash: Vec<u8> = proof.iter().zip(mix).map(|(a, b)| a ^ b).collect();
        assert_eq!(Sha256::digest(hash), stored);
        assert!(scramble(NATIVE, b"", nonce).unwrap().is_empty());
        assert!(scramble("client_ed25519", b"secret", nonce).is_none());
    }

    #[test]
    fn the_login_packet_names_user_database_and_plugin() {
        let p = login(REQUIRED, "mailmfa", &[1, 2, 3], "mail", NATIVE).unwrap();
        assert_eq!(&p[..4], &REQUIRED.to_le_bytes());
        assert_eq!(p[8], UTF8MB4);
        assert_eq!(
            &p[32..],
            b"mailmfa\0\x03\x01\x02\x03mail\0mysql_native_password\0"
        );
    }
}
