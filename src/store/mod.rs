//! Where records and state live, behind one interface.
//!
//! Files on the local disk ([`files::FileStore`]) today; a shared backend for clusters
//! (Redis/Valkey for state, SQL/LDAP for records) will implement the same [`Store`] trait.

pub mod files;
pub mod pending;
pub mod secure;

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
        }
    }
}

impl std::error::Error for StoreError {}

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
    /// state was rebuilt; see the rules above).
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
