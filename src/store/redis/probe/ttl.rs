//! How long a login's key still lives on the shared state server (`TTL`), for
//! `mailmfa status`.

use crate::config::Settings;
use crate::login::Login;
use crate::store::redis::conn::{self, Failure};
use crate::store::redis::resp::Reply;
use crate::store::redis::RedisStore;

/// How long a login's key lives, as `TTL` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyTtl {
    /// No key: the server remembers nothing of the login.
    Missing,
    /// No expiry: the state remembers used recovery codes.
    Kept,
    /// Expires in this many seconds.
    Seconds(u64),
    /// The server refused `TTL` (not in the ACL): the error.
    Refused(String),
}

/// The key of `login`'s state and how long it lives. `Err`: the server could not be used
/// (down, slow, `AUTH` refused...), with why.
pub fn key_ttl(settings: &Settings, euid: u32, login: &Login) -> Result<(String, KeyTtl), Failure> {
    let key = RedisStore::new(settings, euid).key(login);
    let ttl =
        conn::with_connection(
            &settings.redis,
            settings.record_owners(euid),
            &mut |conn| match conn.call(&[b"TTL", key.as_bytes()])? {
                Reply::Integer(-2) => Ok(KeyTtl::Missing),
                Reply::Integer(-1) => Ok(KeyTtl::Kept),
                Reply::Integer(n) if n >= 0 => Ok(KeyTtl::Seconds(n as u64)),
                Reply::Error(e) => Ok(KeyTtl::Refused(e)),
                _ => Err("TTL: unexpected reply".to_string()),
            },
        )?;
    Ok((key, ttl))
}
