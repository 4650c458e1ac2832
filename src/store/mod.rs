//! Where records and state live, behind one interface.
//!
//! Files on the local disk ([`files::FileStore`]), or the state on a Redis/Valkey server shared
//! by several mail servers ([`redis::RedisStore`], records still files); [`backend::Backend`]
//! is the one the settings name, and what the module, the command and the panel use.

pub mod backend;
pub mod files;
pub mod net;
pub mod pending;
pub mod redis;
pub mod secure;
pub mod sql;
pub mod transfer;

use crate::log::Reason;
use crate::login::Login;
use crate::record::{Record, RecordError};
use crate::state::State;
use std::fmt;
use std::path::PathBuf;

/// How the state was found before an update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateLoad {
    /// There was no state yet.
    Fresh,
    /// The state was read.
    Read,
    /// The state was damaged or unusable and was started afresh, as [`State::rebuilt_empty`]
    /// (which the decision repairs first); the string says why (no secret in it).
    Rebuilt(String),
}

/// A storage error: which path, what is wrong, and the log reason it maps to.
#[derive(Debug)]
pub enum StoreError {
    /// A directory is missing, not a directory, or unsafe.
    Dir {
        /// The directory.
        path: PathBuf,
        /// What is wrong and how to fix it.
        why: String,
        /// `RecordDirUnusable` or `StateDirUnusable`.
        reason: Reason,
    },
    /// A file is a symlink, group/world-writable or foreign-owned.
    Unsafe {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        why: String,
    },
    /// A file could not be read, or is not a regular file.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// The record does not parse or validate.
    BadRecord {
        /// The record file.
        path: PathBuf,
        /// The rule that failed.
        error: RecordError,
    },
    /// The state lock could not be taken.
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        why: String,
    },
    /// A shared backend (the Redis/Valkey state, the SQL records) failed, was slow, or
    /// refused a change or a value.
    Shared {
        /// The server and key or row.
        place: String,
        /// What went wrong.
        why: String,
        /// `StateUnavailable`, `StateWriteFailed` for a state the rules refuse to write, or
        /// one of the SQL records' reasons (`RecordsUnavailable`, `RecordsSchema`,
        /// `RecordSealBroken`, `KeyFileUnusable`).
        reason: Reason,
    },
    /// A file could not be written or replaced.
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        why: String,
    },
}

impl StoreError {
    /// The log reason of this error.
    pub fn reason(&self) -> Reason {
        match self {
            StoreError::Dir { reason, .. } => *reason,
            StoreError::Unsafe { .. } => Reason::UnsafeRecord,
            StoreError::Unreadable { .. } => Reason::RecordUnreadable,
            StoreError::BadRecord { .. } => Reason::BadRecord,
            StoreError::Lock { .. } => Reason::StateLockFailed,
            StoreError::Write { .. } => Reason::StateWriteFailed,
            StoreError::Shared { reason, .. } => *reason,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Dir { path, why, .. } => write!(f, "{}: {why}", path.display()),
            StoreError::Unsafe { path, why } => write!(f, "{}: {why}", path.display()),
            StoreError::Unreadable { path, why } => {
                write!(f, "{}: cannot read: {why}", path.display())
            }
            StoreError::BadRecord { path, error } => write!(f, "{}: {error}", path.display()),
            StoreError::Lock { path, why } => write!(f, "{}: cannot lock: {why}", path.display()),
            StoreError::Write { path, why } => write!(f, "{}: cannot write: {why}", path.display()),
            StoreError::Shared { place, why, .. } => write!(f, "{place}: {why}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// What a store does with a state after the decision ran: the rules of [`Store`], kept once
/// for every backend.
pub(crate) enum Writeback {
    /// Nothing to write.
    Keep,
    /// Write this text (durably when a recovery code was used).
    Write {
        /// The state, serialised.
        text: String,
        /// Whether the write must survive a power cut.
        durable: bool,
    },
}

/// Decides the [`Writeback`] of `state` after `decide` returned `changed` on a state found as
/// `load` with `used_before` used recovery codes. `Err` (why, no secret) when the state must
/// not be written and the change is refused.
pub(crate) fn writeback(
    state: &State,
    load: &StateLoad,
    changed: bool,
    used_before: usize,
) -> Result<Writeback, String> {
    if state.rebuilt {
        // A decision that did not repair the rebuilt state: writing it would forget every
        // one-time use. A change is refused (the login is denied); no change leaves the
        // damaged state for the next reader, which rebuilds it again.
        return if changed {
            Err(
                "a rebuilt state was changed without being repaired first (a bug): \
                 not written"
                    .to_string(),
            )
        } else {
            Ok(Writeback::Keep)
        };
    }
    if !changed && !matches!(load, StateLoad::Rebuilt(_)) {
        return Ok(Writeback::Keep);
    }
    let text = state.to_toml();
    // Never write a state that the next login would refuse as too large and rebuild from
    // empty: that would forget the throttle count (and the last step). Refusing the write
    // denies the login instead (fail closed) until failures age out.
    if text.len() as u64 > secure::MAX_FILE_BYTES {
        return Err(format!(
            "the new state would be larger than {} KiB (too many failed codes or clients \
             within fail_interval): lower max_failures_user",
            secure::MAX_FILE_BYTES / 1024
        ));
    }
    // A used recovery code must outlive a power cut; nothing else is worth an fsync on every
    // login.
    Ok(Writeback::Write {
        text,
        durable: state.used_recovery.len() != used_before,
    })
}

/// Records and state of all users.
///
/// Rules every backend keeps for the state, since it remembers one-time uses:
/// - a stored state that cannot be used (damaged, wrong version, unsafe, unreadable) reaches
///   `decide` as [`State::rebuilt_empty`], with [`StateLoad::Rebuilt`]: never as a plain empty
///   state, which would forget the used recovery codes and the last step. `decide` repairs it
///   first ([`crate::auth::repair_rebuilt`]); a state still marked [`State::rebuilt`] after
///   `decide` is never written (a change to it is refused with [`StoreError::Write`]), and a
///   repaired one is written even when `decide` returns `false`;
/// - a write that changes [`State::used_recovery`] is durable (on disk before the call
///   returns); other writes need not be, so that a TOTP login costs no fsync.
pub trait Store {
    /// The user's record, `None` when the user has none (no MFA).
    fn read_record(&self, login: &Login) -> Result<Option<Record>, StoreError>;

    /// Runs `decide` on the user's state under an exclusive lock held across
    /// read-decide-write, and writes the state back when `decide` returns `true` (or the
    /// state was rebuilt; see the rules above). A shared backend runs `decide` again on the
    /// newer state when another server wrote first, so `decide` leaves in its captures what
    /// its last run found (assigns, never accumulates).
    fn update_state(
        &self,
        login: &Login,
        decide: &mut dyn FnMut(&mut State) -> bool,
    ) -> Result<StateLoad, StoreError>;

    /// Like [`Store::update_state`] for a pure decision, which may run twice: first on a
    /// snapshot read without the lock — if it changes nothing there, that is the answer (no
    /// lock, no write) — else again on a fresh read under the lock. A rebuilt snapshot always
    /// goes to the locked path, so that its repair is written. Only for `decide` closures
    /// without side effects other than capturing their verdict (the module's `verify`).
    fn decide_state(
        &self,
        login: &Login,
        decide: &mut dyn FnMut(&mut State) -> bool,
    ) -> Result<StateLoad, StoreError>;

    /// The user's state for display, without locking (`None`: never logged in). A damaged
    /// state comes back as [`State::rebuilt_empty`], not repaired (nothing is written).
    fn read_state(&self, login: &Login) -> Result<Option<State>, StoreError>;

    /// Writes the user's record durably (temp file, fsync, rename, fsync of the directory).
    fn write_record(&self, login: &Login, record: &Record) -> Result<(), StoreError>;

    /// Removes the user's record and state; `Ok(false)` when there was no record.
    fn remove_user(&self, login: &Login) -> Result<bool, StoreError>;

    /// Every login that has a record.
    fn list_logins(&self) -> Result<Vec<Login>, StoreError>;
}
