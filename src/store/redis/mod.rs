//! The state on a Redis/Valkey server shared by every mail server (`state = "redis"`);
//! records stay files ([`FileStore`]), copied to every server by the admin.
//!
//! One key per login, `<redis_prefix>{<login>}:state` (the braces are a Redis Cluster hash
//! tag: every key of one login lands on one shard), holding the same text as a state file.
//! The rules are the ones every store keeps ([`super::writeback`]) and the decisions are the
//! library's own, run here in Rust: atomicity across servers comes from optimistic
//! transactions: `WATCH` the key and `GET` it (one round trip), decide, then `MULTI`, `SET`,
//! `EXEC` (a second): when another server changed the key in between, `EXEC` does nothing
//! and the decision runs again on the new state, so two servers racing on one code accept it
//! exactly once, and each failed code counts once against one shared throttle.
//!
//! Keys expire by themselves: a state that holds only the login window, `reuse_for`
//! sessions and failures lives [`RedisStore::horizon`] after its last write (past it no code it
//! knows of is valid, no session or failure counts); one that remembers app-password uses
//! lives [`KEEP_APP_PASSWORD_USES`]; one that remembers used recovery codes never expires
//! (forgetting them would make them usable again).
//!
//! Every failure (down, slow past `redis_timeout_ms`, refused by ACL, out of memory,
//! garbage) is a [`StoreError::Shared`] with `state_unavailable`: the login is denied. A
//! value that is not a state (damaged, a foreign type) is rebuilt and repaired like a
//! damaged file. The command's record changes still take the per-server lock file in
//! `state_dir`, so two changes on one server never interleave.

pub mod address;
pub mod conn;
pub mod probe;
pub mod resp;

pub use address::Address;

use super::files::FileStore;
use super::secure::{Owners, Walked};
use super::{writeback, StateLoad, Store, StoreError, Writeback};
use crate::config::{RedisSettings, Settings};
use crate::log::Reason;
use crate::login::Login;
use crate::record::Record;
use crate::state::State;
use conn::{ok, Connection, Failure};
use resp::Reply;
use std::sync::Arc;

/// Longest step length a record may have (`period`, seconds).
const LONGEST_PERIOD: u64 = 300;

/// How long a state that remembers app-password uses (shown as "last used") is kept after
/// its last write: 90 days.
pub const KEEP_APP_PASSWORD_USES: u64 = 90 * 86400;

/// Most times one change is decided again because another writer changed the state first
/// (50 processes writing one login's key at once each lose at most 49 times).
const MAX_RACES: u32 = 64;

/// Records as files, state on Redis/Valkey.
#[derive(Clone, Debug)]
pub struct RedisStore {
    files: FileStore,
    redis: RedisSettings,
    owners: Owners,
    horizon: u64,
}

impl RedisStore {
    /// A store for `settings` run by `euid` (the password file may belong to root, `euid` or
    /// the `record_owner`).
    pub fn new(settings: &Settings, euid: u32) -> RedisStore {
        RedisStore::new_in(settings, euid, None)
    }

    /// [`RedisStore::new`] for one login (see [`FileStore::new_in`]).
    pub fn new_in(settings: &Settings, euid: u32, walked: Option<Arc<Walked>>) -> RedisStore {
        // A step accepted at time t is valid at most `window` steps away from it; past two
        // windows of the longest period on either side no code the state knows is valid.
        let codes = 2 * (settings.window + 1) * LONGEST_PERIOD;
        RedisStore {
            files: FileStore::new_in(settings, euid, walked),
            redis: settings.redis.clone(),
            owners: settings.record_owners(euid),
            horizon: codes.max(settings.reuse_for).max(settings.fail_interval) + 60,
        }
    }

    /// The records' file store.
    pub fn files(&self) -> &FileStore {
        &self.files
    }

    /// Seconds a state that remembers only logins is kept after its last write.
    pub fn horizon(&self) -> u64 {
        self.horizon
    }

    /// The login's key.
    pub fn key(&self, login: &Login) -> String {
        format!("{}{{{login}}}:state", self.redis.prefix)
    }

    /// How long the key of `state` lives (`None`: no expiry).
    fn ttl(&self, state: &State) -> Option<u64> {
        if !state.used_recovery.is_empty() {
            None
        } else if !state.app_password_uses.is_empty() {
            Some(self.horizon.max(KEEP_APP_PASSWORD_USES))
        } else {
            Some(self.horizon)
        }
    }

    /// Runs `work` on the process's connection; a failure becomes `state_unavailable`.
    fn shared<T>(
        &self,
        login: &Login,
        work: &mut dyn FnMut(&mut Connection) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        conn::with_connection(&self.redis, self.owners, work).map_err(|why| StoreError::Shared {
            place: self.place(login),
            why,
            reason: Reason::StateUnavailable,
        })
    }

    /// Removes the user's state key.
    pub fn remove_state(&self, login: &Login) -> Result<(), StoreError> {
        let key = self.key(login);
        self.shared(
            login,
            &mut |conn| match conn.call(&[b"DEL", key.as_bytes()])? {
                Reply::Integer(_) => Ok(()),
                Reply::Error(e) => Err(format!("DEL refused: {e}")),
                _ => Err("DEL: unexpected reply".to_string()),
            },
        )
    }

    fn place(&self, login: &Login) -> String {
        format!("{} key {}", self.redis.url, self.key(login))
    }

    /// One optimistic transaction: `UNWATCH` (whatever an earlier call left), `WATCH`, `GET`;
    /// decide; `MULTI`, `SET`, `EXEC` when there is something to write, again from the start
    /// when another writer came first.
    fn transaction(
        &self,
        login: &Login,
        decide: &mut dyn FnMut(&mut State) -> bool,
    ) -> Result<StateLoad, StoreError> {
        let key = self.key(login);
        let result = self.shared(login, &mut |conn| {
            for race in 0..MAX_RACES {
                back_off(race);
                let replies = conn.pipeline(&[
                    &[b"UNWATCH"],
                    &[b"WATCH", key.as_bytes()],
                    &[b"GET", key.as_bytes()],
                ])?;
                let [unwatch, watch, value] = <[Reply; 3]>::try_from(replies)
                    .map_err(|_| "wrong number of replies".to_string())?;
                ok("UNWATCH", unwatch)?;
                ok("WATCH", watch)?;
                let (mut state, load) = parse(value)?;
                let used_before = state.used_recovery.len();
                let changed = decide(&mut state);
                let (text, _durable) = match writeback(&state, &load, changed, used_before) {
                    Err(why) => return Ok(Err(why)),
                    Ok(Writeback::Keep) => return Ok(Ok(load)),
                    Ok(Writeback::Write { text, durable }) => (text, durable),
                };
                // Durability of a used recovery code is the server's persistence
                // (`appendonly yes`, `appendfsync always`: `mailmfa doctor` checks it).
                let ttl = self.ttl(&state).map(|s| s.to_string());
                let mut set: Vec<&[u8]> = vec![b"SET", key.as_bytes(), text.as_bytes()];
                if let Some(ttl) = &ttl {
                    set.extend([&b"EX"[..], ttl.as_bytes()]);
                }
                let replies = conn.pipeline(&[&[b"MULTI"], &set, &[b"EXEC"]])?;
                let [multi, queued, exec] = <[Reply; 3]>::try_from(replies)
                    .map_err(|_| "wrong number of replies".to_string())?;
                ok("MULTI", multi)?;
                match queued {
                    Reply::Status(s) if s == "QUEUED" => {}
                    Reply::Error(e) => return Err(format!("SET refused: {e}")),
                    _ => return Err("SET: unexpected reply".to_string()),
                }
                match exec {
                    // Another server changed the state after our GET: decide again.
                    Reply::Nil => continue,
                    Reply::Array(replies) => match replies.as_slice() {
                        [Reply::Status(s)] if s == "OK" => return Ok(Ok(load)),
                        [Reply::Error(e)] => return Err(format!("SET failed: {e}")),
                        _ => return Err("EXEC: unexpected reply".to_string()),
                    },
                    Reply::Error(e) => return Err(format!("EXEC refused: {e}")),
                    _ => return Err("EXEC: unexpected reply".to_string()),
                }
            }
            Err(format!(
                "the state changed under this login {MAX_RACES} times in a row"
            ))
        })?;
        result.map_err(|why| StoreError::Shared {
            place: self.place(login),
            why,
            reason: Reason::StateWriteFailed,
        })
    }
}

/// Waits a little after the `race`-th lost race (not at all before the first try), longer
/// each time and different in each process, so that writers that keep colliding on one key
/// spread out (at most ~2 ms).
fn back_off(race: u32) {
    let jitter = u64::from(std::process::id().wrapping_mul(2_654_435_761) % 97);
    let micros = u64::from(race.min(16)) * (50 + jitter);
    std::thread::sleep(std::time::Duration::from_micros(micros));
}

/// The state in a `GET` reply. A value that is not a state (does not parse, wrong version,
/// too large, not text, or a key of another type) is rebuilt, like a damaged state file.
fn parse(reply: Reply) -> Result<(State, StateLoad), Failure> {
    let rebuilt = |why: String| Ok((State::rebuilt_empty(), StateLoad::Rebuilt(why)));
    match reply {
        Reply::Nil => Ok((State::default(), StateLoad::Fresh)),
        Reply::Bulk(bytes) if bytes.len() as u64 > super::secure::MAX_FILE_BYTES => {
            rebuilt("the stored state is larger than 64 KiB".to_string())
        }
        Reply::Bulk(bytes) => match String::from_utf8(bytes) {
            Ok(text) => match State::parse(&text) {
                Ok(state) => Ok((state, StateLoad::Read)),
                Err(why) => rebuilt(why),
            },
            Err(_) => rebuilt("the stored state is not UTF-8 text".to_string()),
        },
        Reply::Error(e) if e.starts_with("WRONGTYPE") => {
            rebuilt("the state key holds a value of another type".to_string())
        }
        Reply::Error(e) => Err(format!("GET refused: {e}")),
        _ => Err("GET: unexpected reply".to_string()),
    }
}

impl Store for RedisStore {
    fn read_record(&self, login: &Login) -> Result<Option<Record>, StoreError> {
        self.files.read_record(login)
    }

    fn update_state(
        &self,
        login: &Login,
        decide: &mut dyn FnMut(&mut State) -> bool,
    ) -> Result<StateLoad, StoreError> {
        let _lock = self.files.lock_state(login)?;
        self.transaction(login, decide)
    }

    fn decide_state(
        &self,
        login: &Login,
        decide: &mut dyn FnMut(&mut State) -> bool,
    ) -> Result<StateLoad, StoreError> {
        // The watched read is the snapshot: a decision that changes nothing ends after one
        // round trip; one that changes the state is written only if nobody wrote first.
        self.transaction(login, decide)
    }

    fn read_state(&self, login: &Login) -> Result<Option<State>, StoreError> {
        let key = self.key(login);
        let (state, load) = self.shared(login, &mut |conn| {
            parse(conn.call(&[b"GET", key.as_bytes()])?)
        })?;
        Ok(match load {
            StateLoad::Fresh => None,
            _ => Some(state),
        })
    }

    fn write_record(&self, login: &Login, record: &Record) -> Result<(), StoreError> {
        self.files.write_record(login, record)
    }

    fn remove_user(&self, login: &Login) -> Result<bool, StoreError> {
        // The record goes first: a state removed while its record stays would forget the
        // used recovery codes.
        let had = self.files.remove_user(login)?;
        self.remove_state(login)?;
        Ok(had)
    }

    fn list_logins(&self) -> Result<Vec<Login>, StoreError> {
        self.files.list_logins()
    }
}
