//! Where events wait between the writer that noticed them and the notifier that mails them.
//! All of it lives under `spool_dir` (mode 0700, owned by root or by `record_owner`, checked
//! like the record directory):
//!
//! - `new/<login>` — the writers' side: the module, the command and the panel append one
//!   line per event ([`Spool::append`]) with one `write(2)`, no fsync, no lock. A file that
//!   reached [`MAX_PENDING_BYTES`] takes no more lines: the spool is bounded by the logins
//!   with MFA times that size, and a full spool costs a login one `open` and one `fstat`.
//! - `cur/<login>.<time>.<pid>` — a batch the notifier claimed with `rename(2)`; read once it
//!   is [`SETTLE_SECONDS`] old, so that a writer that opened the file before the rename has
//!   finished its line.
//! - `out/<next>_<tries>_<id>_<login>` — one mail to send, written durably; removed once
//!   sendmail took it, renamed with a later `next` after a failure.
//! - `held/<login>` — `code-wrong` lines waiting until the login's `alert_every` is over;
//!   `sent/<login>` — when the last alert mail for the login went out (`at=<unix>`).
//!
//! The notifier's side of the layout is here too ([`Spool::claim`], [`OutFile`]); what it
//! does with them is `deliver`.

use super::Notice;
use crate::config::Settings;
use crate::login::Login;
use crate::store::files;
use crate::store::secure::{self, Owners, Refusal};
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The most a login's `new/` file (and its `held/` file) may hold: about 300 events.
pub const MAX_PENDING_BYTES: u64 = secure::MAX_FILE_BYTES;

/// How old a claimed batch must be before it is read.
pub const SETTLE_SECONDS: u64 = 1;

/// The subdirectories of the spool.
pub const SUBDIRS: [&str; 5] = ["new", "cur", "out", "held", "sent"];

/// Why an event could not be spooled, or a spool directory used.
#[derive(Debug)]
pub enum SpoolError {
    /// A directory or file is not safe to use (the text says what and the fix).
    Unsafe {
        /// What was refused.
        path: PathBuf,
        /// Why, and the fix.
        why: String,
    },
    /// An operating-system error (full disk, read-only, permissions).
    Io {
        /// What failed.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// The login's file reached [`MAX_PENDING_BYTES`]: the event is dropped.
    Full {
        /// The full file.
        path: PathBuf,
    },
}

impl fmt::Display for SpoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpoolError::Unsafe { path, why } => write!(f, "{}: {why}", path.display()),
            SpoolError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            SpoolError::Full { path } => write!(
                f,
                "{}: holds {MAX_PENDING_BYTES} bytes of events already (is `mailmfa notify` \
                 running?); this event is dropped",
                path.display()
            ),
        }
    }
}

impl std::error::Error for SpoolError {}

/// The spool of the settings' `[notify] spool_dir`, as seen by a process running as `euid`.
#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
    /// Root, the running user and `record_owner` (the panel writes events too).
    owners: Owners,
}

impl Spool {
    /// The spool named in `settings`.
    pub fn new(settings: &Settings, euid: u32) -> Spool {
        Spool {
            dir: settings.notify.spool_dir().to_path_buf(),
            owners: settings.record_owners(euid),
        }
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The subdirectory `name` (one of [`SUBDIRS`]).
    pub fn sub(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn io(path: &Path, error: io::Error) -> SpoolError {
        SpoolError::Io {
            path: path.to_path_buf(),
            error,
        }
    }

    fn refused(path: &Path, refusal: Refusal) -> SpoolError {
        match refusal {
            Refusal::Io(error) => Spool::io(path, error),
            Refusal::Unsafe(why) => SpoolError::Unsafe {
                path: path.to_path_buf(),
                why,
            },
        }
    }

    /// Checks `dir` (and everything above it); creates it, mode 0700 and given to
    /// `record_owner` when root makes it, when it is missing.
    fn ensure_dir(&self, dir: &Path) -> Result<(), SpoolError> {
        match secure::check_dir(dir, self.owners) {
            Ok(()) => return Ok(()),
            Err(Refusal::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
            Err(refusal) => return Err(Spool::refused(dir, refusal)),
        }
        if dir != self.dir {
            self.ensure_dir(&self.dir)?;
        }
        files::make_dir(dir, self.owners.given_by_root()).map_err(|e| Spool::io(dir, e))?;
        secure::check_dir(dir, self.owners).map_err(|r| Spool::refused(dir, r))
    }

    /// Creates and checks the spool directory and all of [`SUBDIRS`] (the notifier's start).
    pub fn ensure_all(&self) -> Result<(), SpoolError> {
        SUBDIRS
            .iter()
            .try_for_each(|sub| self.ensure_dir(&self.sub(sub)))
    }

    /// Appends `notice` to `new/<login>` in one `write(2)`, without fsync: the writers' side,
    /// run by the module on the login path. The file is opened without following a symlink
    /// and refused when it is not a regular file of ours with one link; at
    /// [`MAX_PENDING_BYTES`] the event is dropped ([`SpoolError::Full`]). The caller logs an
    /// error and goes on.
    pub fn append(&self, notice: &Notice) -> Result<(), SpoolError> {
        let new = self.sub("new");
        self.ensure_dir(&new)?;
        let path = new.join(notice.login.as_str());
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| Spool::io(&path, e))?;
        let meta = file.metadata().map_err(|e| Spool::io(&path, e))?;
        if !meta.is_file() || meta.nlink() != 1 {
            return Err(SpoolError::Unsafe {
                path,
                why: "is not a plain file with one link: remove it".to_string(),
            });
        }
        secure::check_owner_and_mode(&meta, self.owners).map_err(|r| Spool::refused(&path, r))?;
        let line = notice.line();
        if meta.len() + line.len() as u64 > MAX_PENDING_BYTES {
            return Err(SpoolError::Full { path });
        }
        if meta.uid() == 0 {
            if let Some(owner) = self.owners.given_by_root() {
                std::os::unix::fs::fchown(&file, Some(owner), None)
                    .map_err(|e| Spool::io(&path, e))?;
            }
        }
        match file.write(line.as_bytes()) {
            Ok(n) if n == line.len() => Ok(()),
            Ok(_) => Err(Spool::io(&path, io::Error::from(io::ErrorKind::WriteZero))),
            Err(e) => Err(Spool::io(&path, e)),
        }
    }

    /// Moves every `new/<login>` to `cur/<login>.<now>.<pid>` (the notifier's claim: a writer
    /// appending after the rename starts a new file), and returns every batch in `cur/` —
    /// those just claimed and those a stopped notifier left. An entry of `new/` that is not
    /// named after a login (no writer makes one) is removed and named in `strays`, so that
    /// `new/` is empty after a claim (the systemd path unit starts the notifier while it is
    /// not).
    pub fn claim(&self, now: u64, strays: &mut Vec<PathBuf>) -> Result<Vec<PathBuf>, SpoolError> {
        let new = self.sub("new");
        let cur = self.sub("cur");
        for name in self.entries("new")? {
            let Some(name) = name.to_str().filter(|n| Login::parse(n.as_bytes()).is_ok()) else {
                let path = new.join(&name);
                match fs::remove_file(&path).or_else(|_| fs::remove_dir_all(&path)) {
                    Ok(()) => strays.push(path),
                    Err(e) => return Err(Spool::io(&path, e)),
                }
                continue;
            };
            let to = cur.join(format!("{name}.{now}.{}", std::process::id()));
            match fs::rename(new.join(name), &to) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Spool::io(&to, e)),
            }
        }
        Ok(self
            .names("cur")?
            .into_iter()
            .map(|name| cur.join(name))
            .collect())
    }

    /// Every entry of a subdirectory.
    fn entries(&self, sub: &str) -> Result<Vec<std::ffi::OsString>, SpoolError> {
        let dir = self.sub(sub);
        let entries = fs::read_dir(&dir).map_err(|e| Spool::io(&dir, e))?;
        entries
            .map(|entry| entry.map(|e| e.file_name()).map_err(|e| Spool::io(&dir, e)))
            .collect()
    }

    /// The names of the entries of a subdirectory, sorted (no dot files, no names that are
    /// not UTF-8).
    pub fn names(&self, sub: &str) -> Result<Vec<String>, SpoolError> {
        let mut names: Vec<String> = self
            .entries(sub)?
            .into_iter()
            .filter_map(|name| name.into_string().ok())
            .filter(|name| !name.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The text of a spool file, checked like a record (ours, not writable by others, not a
    /// symlink, at most [`MAX_PENDING_BYTES`]); `None` when it is gone.
    pub fn read(&self, path: &Path) -> Result<Option<String>, SpoolError> {
        secure::read_checked(path, self.owners)
            .map(|text| text.map(|t| t.to_string()))
            .map_err(|r| Spool::refused(path, r))
    }

    /// Writes `sub/name` durably through a temp file and a rename (given to `record_owner`
    /// when root writes it).
    pub fn write(&self, sub: &str, name: &str, contents: &str) -> Result<(), SpoolError> {
        let dir = self.sub(sub);
        files::write_owned(
            &dir,
            name,
            contents.as_bytes(),
            true,
            self.owners.given_by_root(),
        )
        .map_err(|e| Spool::io(&dir.join(name), e))
    }

    /// Removes `path`; a file already gone is fine.
    pub fn remove(&self, path: &Path) -> Result<(), SpoolError> {
        files::remove_if_present(path)
            .map(drop)
            .map_err(|e| Spool::io(path, e))
    }

    /// Renames `from` to `sub/name`.
    pub fn rename(&self, from: &Path, sub: &str, name: &str) -> Result<(), SpoolError> {
        let to = self.sub(sub).join(name);
        fs::rename(from, &to).map_err(|e| Spool::io(&to, e))
    }
}

/// A mail waiting in `out/`: `<next>_<tries>_<id>_<login>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutFile {
    /// Not to be tried before this Unix time.
    pub next: u64,
    /// Failed tries so far.
    pub tries: u32,
    /// Unique among the spool's mails: `<made>-<pid>-<seq>`.
    pub id: String,
    /// To whom.
    pub login: Login,
}

impl OutFile {
    /// The file name.
    pub fn name(&self) -> String {
        format!("{}_{}_{}_{}", self.next, self.tries, self.id, self.login)
    }

    /// Reads a file name; `None` for anything else (a temp file, a stranger).
    pub fn parse(name: &str) -> Option<OutFile> {
        let mut parts = name.splitn(4, '_');
        let next = parts.next()?.parse().ok()?;
        let tries = parts.next()?.parse().ok()?;
        let id = parts.next()?;
        let valid_id = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit() || b == b'-');
        let login = Login::parse(parts.next()?.as_bytes()).ok()?;
        valid_id.then(|| OutFile {
            next,
            tries,
            id: id.to_string(),
            login,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Kind;
    use std::os::unix::fs::PermissionsExt;

    fn spool(dir: &Path) -> Spool {
        let mut settings = Settings::default();
        settings.notify.set_spool_dir(dir.join("spool"));
        Spool::new(&settings, crate::pam::sys::effective_uid())
    }

    fn notice(login: &str, at: u64) -> Notice {
        Notice::new(
            Kind::MfaEnabled,
            at,
            &Login::parse(login.as_bytes()).unwrap(),
            "command",
        )
    }

    #[test]
    fn appends_lines_per_login_and_claims_them() {
        let tmp = tempfile::tempdir().unwrap();
        let s = spool(tmp.path());
        s.append(&notice("alice@example.com", 1)).unwrap();
        s.append(&notice("alice@example.com", 2)).unwrap();
        s.append(&notice("bob@example.com", 3)).unwrap();
        let alice = s.sub("new").join("alice@example.com");
        let text = fs::read_to_string(&alice).unwrap();
        assert_eq!(text.lines().count(), 2);
        let mode = fs::metadata(&alice).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(s.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);

        s.ensure_all().unwrap();
        fs::write(s.sub("new").join(".stray"), "x").unwrap();
        let mut strays = Vec::new();
        let claimed = s.claim(100, &mut strays).unwrap();
        assert_eq!(claimed.len(), 2);
        assert_eq!(strays, [s.sub("new").join(".stray")]);
        assert!(s.names("new").unwrap().is_empty());
        let first = s.read(&claimed[0]).unwrap().unwrap();
        assert_eq!(first, text, "claimed whole");
        // A line after the claim starts a new file.
        s.append(&notice("alice@example.com", 4)).unwrap();
        assert_eq!(s.names("new").unwrap(), ["alice@example.com"]);
    }

    #[test]
    fn a_full_file_drops_the_event_and_a_symlink_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let s = spool(tmp.path());
        s.append(&notice("alice@example.com", 1)).unwrap();
        let path = s.sub("new").join("alice@example.com");
        let file = OpenOptions::new().append(true).open(&path).unwrap();
        file.set_len(MAX_PENDING_BYTES - 10).unwrap();
        assert!(matches!(
            s.append(&notice("alice@example.com", 2)),
            Err(SpoolError::Full { .. })
        ));
        assert_eq!(fs::metadata(&path).unwrap().len(), MAX_PENDING_BYTES - 10);

        std::os::unix::fs::symlink("/etc/passwd", s.sub("new").join("bob@example.com")).unwrap();
        assert!(s.append(&notice("bob@example.com", 1)).is_err());
        let hard = s.sub("new").join("carol@example.com");
        fs::hard_link(&path, &hard).unwrap();
        let e = s.append(&notice("carol@example.com", 1)).unwrap_err();
        assert!(e.to_string().contains("one link"), "{e}");
    }

    #[test]
    fn an_open_spool_dir_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let s = spool(tmp.path());
        s.ensure_all().unwrap();
        fs::set_permissions(s.dir(), fs::Permissions::from_mode(0o777)).unwrap();
        let e = s.append(&notice("alice@example.com", 1)).unwrap_err();
        assert!(matches!(e, SpoolError::Unsafe { .. }), "{e}");
    }

    #[test]
    fn out_file_names_read_back() {
        let out = OutFile {
            next: 1_765_040_060,
            tries: 2,
            id: "1765040000-42-7".to_string(),
            login: Login::parse(b"a_b@example.com").unwrap(),
        };
        assert_eq!(OutFile::parse(&out.name()), Some(out));
        for bad in [".x.tmp", "1_2_3", "x_1_2_a@b", "1_1__a", "1_1_1-2_../etc"] {
            assert_eq!(OutFile::parse(bad), None, "{bad}");
        }
    }
}
