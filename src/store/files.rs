//! The file store: records in `record_dir/<login>.toml`, state in `state_dir/<login>.state`.
//!
//! Records are written only by the command: temp file, fsync, rename, fsync of the directory,
//! mode 0600. State is written under an exclusive `flock` on `state_dir/<login>.lock` (never
//! read or written; refused unless a regular file with one link) held across
//! read-decide-write and replaced by an atomic rename of `.<login>.state.tmp`. A write that
//! changes the used recovery codes is durable (fsync of the temp file before the rename and of
//! the directory after it): a used recovery code survives a power cut. Every other state write
//! is not fsynced (an fsync costs milliseconds on every login; a lost update after a power cut
//! reopens at most one code's validity, and a file a crash leaves empty or cut short does not
//! parse and is rebuilt and repaired, see below). Temp names start with `.`, which no login
//! can, so they never collide with a user's files; one fixed temp name per user means a crash
//! leaves at most one behind, unlinked by the next write, which creates its temp file
//! exclusively (`O_EXCL`): a hard link or symlink planted there is never written through.
//!
//! A state file that does not parse, has a wrong version, is unsafe (symlink, mode, owner) or
//! cannot be read (FIFO, directory, over 64 KiB) is handed to the decision as
//! [`State::rebuilt_empty`] ([`StateLoad::Rebuilt`]); the decision repairs it
//! ([`crate::auth::repair_rebuilt`]) and the repaired state replaces the file by rename, which
//! also fixes its type, mode and owner. A state still marked rebuilt is never written.

use super::secure::{self, Owners, Refusal, Walked};
use super::{writeback, StateLoad, Store, StoreError, Writeback};
use crate::config::Settings;
use crate::log::Reason;
use crate::login::Login;
use crate::record::{Record, RecordError};
use crate::state::State;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Records and state as files in two directories.
#[derive(Clone, Debug)]
pub struct FileStore {
    record_dir: PathBuf,
    state_dir: PathBuf,
    euid: u32,
    /// Who may own the record directory and records: root, `euid`, and `record_owner`.
    record_owners: Owners,
    /// The directories one login found trustworthy already (the module's; `None` elsewhere).
    walked: Option<Arc<Walked>>,
}

impl FileStore {
    /// A store over the directories named in `settings`; `euid` is the running user, the only
    /// owner besides root that files may have (and, for the record directory and records
    /// only, the settings' `record_owner`).
    pub fn new(settings: &Settings, euid: u32) -> FileStore {
        FileStore::new_in(settings, euid, None)
    }

    /// [`FileStore::new`] for one login, which skips the directories `walked` vouches for
    /// (see [`Walked`]).
    pub fn new_in(settings: &Settings, euid: u32, walked: Option<Arc<Walked>>) -> FileStore {
        FileStore {
            record_dir: settings.record_dir.clone(),
            state_dir: settings.state_dir.clone(),
            euid,
            record_owners: settings.record_owners(euid),
            walked,
        }
    }

    /// Path of the user's record.
    pub fn record_path(&self, login: &Login) -> PathBuf {
        self.record_dir.join(format!("{login}.toml"))
    }

    /// Removes the user's state file, under the same lock the module takes, so a login in
    /// flight cannot write it back afterwards. The empty lock file stays: removing it would
    /// let two processes lock two different files.
    pub fn remove_state(&self, login: &Login) -> Result<(), StoreError> {
        if secure::check_dir(&self.state_dir, self.euid).is_ok() {
            let _lock = self.lock(login)?;
            let path = self.state_path(login);
            remove_if_present(&path).map_err(|e| StoreError::Write {
                path,
                why: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// Path of the user's state.
    pub fn state_path(&self, login: &Login) -> PathBuf {
        self.state_dir.join(format!("{login}.state"))
    }

    fn lock_path(&self, login: &Login) -> PathBuf {
        self.state_dir.join(format!("{login}.lock"))
    }

    /// Read-decide-write of the state under the exclusive lock (the directory was checked).
    fn update_state_locked(
        &self,
        login: &Login,
        decide: &mut dyn FnMut(&mut State) -> bool,
    ) -> Result<StateLoad, StoreError> {
        let lock = self.lock(login)?;
        let (mut state, load) = self.read_state_unlocked(login)?;
        // Decisions only ever add used recovery codes: a longer list is a new use.
        let used_before = state.used_recovery.len();
        let changed = decide(&mut state);
        let refused = |why: String| StoreError::Write {
            path: self.state_path(login),
            why,
        };
        if let Writeback::Write { text, durable } =
            writeback(&state, &load, changed, used_before).map_err(refused)?
        {
            let name = format!("{login}.state");
            write_atomic(&self.state_dir, &name, text.as_bytes(), durable)
                .map_err(|e| refused(e.to_string()))?;
        }
        // The lock is released when `lock` is dropped (closed), after the rename.
        drop(lock);
        Ok(load)
    }

    /// Checks the state directory and takes the user's lock there (released when the returned
    /// file is dropped): what a shared state backend still does on each server, so that the
    /// command's record changes on one server never interleave.
    pub(super) fn lock_state(&self, login: &Login) -> Result<File, StoreError> {
        self.check_dir(&self.state_dir, Reason::StateDirUnusable)?;
        self.lock(login)
    }

    /// Opens the user's lock file and takes the exclusive lock (released when the returned
    /// file is dropped).
    fn lock(&self, login: &Login) -> Result<File, StoreError> {
        let path = self.lock_path(login);
        let lock = self.open_lock(&path)?;
        lock.lock().map_err(|e| StoreError::Lock {
            path,
            why: e.to_string(),
        })?;
        Ok(lock)
    }

    /// Opens (creating it, mode 0600, if missing) the lock file. It is never read or written:
    /// only `flock`ed. It is refused unless it is a regular file of its own (one link: a hard
    /// link planted at its name would make us open and lock another file), owned by root or
    /// the running user and not group/world-writable. `O_NOFOLLOW` refuses a symlink;
    /// `O_NONBLOCK | O_NOCTTY`: a FIFO or a device neither hangs the login nor becomes the
    /// process's terminal.
    fn open_lock(&self, path: &Path) -> Result<File, StoreError> {
        let refuse = |why: String| StoreError::Lock {
            path: path.to_path_buf(),
            why,
        };
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| refuse(e.to_string()))?;
        let meta = lock.metadata().map_err(|e| refuse(e.to_string()))?;
        if !meta.is_file() {
            return Err(refuse("not a regular file: remove it".to_string()));
        }
        if meta.nlink() != 1 {
            return Err(refuse(format!(
                "has {} links (a hard link to another file?): remove it, the next login \
                 creates it afresh",
                meta.nlink()
            )));
        }
        secure::check_owner_and_mode(&meta, self.euid).map_err(|r| match r {
            Refusal::Unsafe(why) => refuse(why),
            Refusal::Io(e) => refuse(e.to_string()),
        })?;
        Ok(lock)
    }

    fn check_dir(&self, dir: &Path, reason: Reason) -> Result<(), StoreError> {
        let owners = if reason == Reason::RecordDirUnusable {
            self.record_owners
        } else {
            Owners::from(self.euid)
        };
        secure::check_dir_in(dir, owners, self.walked.as_deref()).map_err(|r| StoreError::Dir {
            path: dir.to_path_buf(),
            why: match r {
                Refusal::Unsafe(why) => why,
                Refusal::Io(e) if e.kind() == io::ErrorKind::NotFound => format!(
                    "does not exist: create it with `install -d -m 0700 -o root {}`",
                    dir.display()
                ),
                Refusal::Io(e) => e.to_string(),
            },
            reason,
        })
    }

    fn read_state_unlocked(&self, login: &Login) -> Result<(State, StateLoad), StoreError> {
        let path = self.state_path(login);
        // A damaged or unsafe state file is rebuilt, marked so that the decision repairs it
        // (see the module comment): it holds no secret, and the repaired state replaces it by
        // rename, which also fixes its mode and owner.
        let rebuilt = |why: String| (State::rebuilt_empty(), StateLoad::Rebuilt(why));
        match secure::read_checked(&path, self.euid) {
            Ok(None) => Ok((State::default(), StateLoad::Fresh)),
            Ok(Some(text)) => Ok(match State::parse(&text) {
                Ok(state) => (state, StateLoad::Read),
                Err(why) => rebuilt(why),
            }),
            Err(Refusal::Unsafe(why)) => Ok(rebuilt(why)),
            Err(Refusal::Io(e)) => Ok(rebuilt(e.to_string())),
        }
    }
}

/// Writes `contents` to `dir/name` through `dir/.name.tmp` and a rename; fsyncs the file and
/// the directory when `durable`. On any error the temp file is removed.
pub fn write_atomic(dir: &Path, name: &str, contents: &[u8], durable: bool) -> io::Result<()> {
    write_owned(dir, name, contents, durable, None)
}

/// [`write_atomic`], with the new file given to `owner` (before it gets its name) when one
/// is named: how root writes a record or pending file that belongs to `record_owner`.
pub fn write_owned(
    dir: &Path,
    name: &str,
    contents: &[u8],
    durable: bool,
    owner: Option<u32>,
) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let mut file = create_fresh(&tmp)?;
        if let Some(owner) = owner {
            std::os::unix::fs::fchown(&file, Some(owner), None)?;
        }
        file.write_all(contents)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&tmp, dir.join(name))?;
        if durable {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` as a new file, mode 0600, for writing, with `O_CREAT | O_EXCL | O_NOFOLLOW`,
/// so nothing that was at that name is ever written through. Whatever is there (a temp file
/// left by a crash, or a hard link or symlink someone planted) is unlinked and the create
/// tried again, twice at most (something may appear between the unlink and the create). The
/// usual case, nothing there, costs the one `open`.
fn create_fresh(path: &Path) -> io::Result<File> {
    let mut tries = 0;
    loop {
        let created = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path);
        match created {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 2 => {
                tries += 1;
                remove_if_present(path)?;
            }
            created => return created,
        }
    }
}

/// The logins that have a `<login>.toml` in `dir`, sorted (files whose stem is not a
/// normalised login are left out).
pub(super) fn logins_in(dir: &Path) -> Result<Vec<Login>, StoreError> {
    let entries = fs::read_dir(dir).map_err(|e| StoreError::Unreadable {
        path: dir.to_path_buf(),
        why: e.to_string(),
    })?;
    let mut logins: Vec<Login> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            let stem = name.to_str()?.strip_suffix(".toml")?.to_string();
            Login::parse(stem.as_bytes())
                .ok()
                .filter(|l| l.as_str() == stem)
        })
        .collect();
    logins.sort();
    Ok(logins)
}

/// Reads a checked file (see [`secure::read_checked`]) and parses it with `parse`; `Ok(None)`
/// when it does not exist. Shared by records and pending enrolments.
pub(super) fn read_parsed<T>(
    path: &Path,
    owners: Owners,
    parse: impl FnOnce(&str) -> Result<T, RecordError>,
) -> Result<Option<T>, StoreError> {
    let path = path.to_path_buf();
    let text = match secure::read_checked(&path, owners) {
        Ok(Some(text)) => text,
        Ok(None) => return Ok(None),
        Err(Refusal::Unsafe(why)) => return Err(StoreError::Unsafe { path, why }),
        Err(Refusal::Io(e)) => {
            return Err(StoreError::Unreadable {
                path,
                why: e.to_string(),
            })
        }
    };
    parse(&text)
        .map(Some)
        .map_err(|error| StoreError::BadRecord { path, error })
}

/// Creates `dir` with mode 0700 unless it exists, and gives it to `owner` when one is named
/// (root making a directory for `record_owner`: [`Owners::given_by_root`]). The caller checks
/// the directory afterwards, as it would a directory it found.
pub(crate) fn make_dir(dir: &Path, owner: Option<u32>) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => match owner {
            Some(owner) => std::os::unix::fs::chown(dir, Some(owner), None),
            None => Ok(()),
        },
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes `path`; `Ok(false)` when it was not there.
pub(crate) fn remove_if_present(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

impl Store for FileStore {
    fn read_record(&self, login: &Login) -> Result<Option<Record>, StoreError> {
        self.check_dir(&self.record_dir, Reason::RecordDirUnusable)?;
        read_parsed(&self.record_path(login), self.record_owners, Record::parse)
    }

    fn update_state(
        &self,
        login: &Login,
        decide: &mut dyn FnMut(&mut State) -> bool,
    ) -> Result<StateLoad, StoreError> {
        self.check_dir(&self.state_dir, Reason::StateDirUnusable)?;
        self.update_state_locked(login, decide)
    }

    fn decide_state(
        &self,
        login: &Login,
        decide: &mut dyn FnMut(&mut State) -> bool,
    ) -> Result<StateLoad, StoreError> {
        self.check_dir(&self.state_dir, Reason::StateDirUnusable)?;
        // State files are only ever replaced whole by rename, so an unlocked read sees one
        // complete version. A decision that changes nothing in it (a reuse, a repeated
        // refusal) is final without the lock; anything that changes the state is decided
        // again on a fresh read under the lock.
        let (mut snapshot, load) = self.read_state_unlocked(login)?;
        if !matches!(load, StateLoad::Rebuilt(_)) && !decide(&mut snapshot) {
            return Ok(load);
        }
        self.update_state_locked(login, decide)
    }

    fn read_state(&self, login: &Login) -> Result<Option<State>, StoreError> {
        self.check_dir(&self.state_dir, Reason::StateDirUnusable)?;
        match self.read_state_unlocked(login)? {
            (_, StateLoad::Fresh) => Ok(None),
            (state, _) => Ok(Some(state)),
        }
    }

    fn write_record(&self, login: &Login, record: &Record) -> Result<(), StoreError> {
        self.check_dir(&self.record_dir, Reason::RecordDirUnusable)?;
        let name = format!("{login}.toml");
        let contents = record.to_toml();
        let owner = self.record_owners.given_by_root();
        write_owned(&self.record_dir, &name, contents.as_bytes(), true, owner).map_err(|e| {
            StoreError::Write {
                path: self.record_dir.join(&name),
                why: e.to_string(),
            }
        })
    }

    fn remove_user(&self, login: &Login) -> Result<bool, StoreError> {
        self.check_dir(&self.record_dir, Reason::RecordDirUnusable)?;
        let path = self.record_path(login);
        let had = remove_if_present(&path).map_err(|e| StoreError::Write {
            path: path.clone(),
            why: e.to_string(),
        })?;
        File::open(&self.record_dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::Write {
                path: self.record_dir.clone(),
                why: e.to_string(),
            })?;
        self.remove_state(login)?;
        Ok(had)
    }

    fn list_logins(&self) -> Result<Vec<Login>, StoreError> {
        self.check_dir(&self.record_dir, Reason::RecordDirUnusable)?;
        logins_in(&self.record_dir)
    }
}
