// One concept, trusting a file (owner, mode, every directory above); long for its 11 tests.
//! Opening files the way the module trusts them (like OpenSSH's StrictModes): no symlinks,
//! regular files only, owned by root or the running user, not group- or world-writable; and
//! the same for every directory above them (like OpenSSH's `secure_filename`), since whoever
//! may rename entries in a parent can swap the directory or file below it.
//!
//! Files are opened with `O_NOFOLLOW | O_NONBLOCK` and checked with `fstat` on the open
//! descriptor, so a FIFO cannot hang a login and a file swapped after the check is not read.
//! Directories above are walked from `/` down with one `lstat` each, symlinks on the way
//! resolved as the kernel would (the checked path itself is never a symlink).

use std::borrow::Cow;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// Largest file the module reads; anything bigger is refused as damaged.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Why a file or directory was refused.
#[derive(Debug)]
pub enum Refusal {
    /// It is not safe to trust (the string says what is wrong and how to fix it).
    Unsafe(String),
    /// It could not be opened or read.
    Io(io::Error),
}

/// Why an owner and a mode are not trusted (see [`trust`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Untrusted {
    /// Owned by this uid, which is neither root nor the running user.
    Owner(u32),
    /// Group or others may write it (its permission bits).
    Writable(u32),
}

/// Who may own a trusted file or directory besides root: the running user, and for the
/// records and pending enrolments the `record_owner` of the settings (the web panel's user).
/// A bare uid converts into the running user alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owners {
    /// The running user.
    pub euid: u32,
    /// Another owner that is trusted, if any.
    pub extra: Option<u32>,
}

impl From<u32> for Owners {
    fn from(euid: u32) -> Owners {
        Owners { euid, extra: None }
    }
}

impl Owners {
    /// The owner that files written here must be given: the extra owner, when root writes
    /// them (root's `mailmfa enable` must leave records the panel's account can still read
    /// and replace). `None` when the running user is the owner anyway.
    pub fn given_by_root(self) -> Option<u32> {
        self.extra.filter(|_| self.euid == 0)
    }

    /// Whether `uid` is root or one of these owners.
    pub fn admit(self, uid: u32) -> bool {
        uid == 0 || uid == self.euid || Some(uid) == self.extra
    }

    /// "the running user (uid N)", and the extra owner if there is one.
    fn said(self) -> String {
        match self.extra {
            Some(extra) => format!(
                "the running user (uid {}) or the record owner (uid {extra})",
                self.euid
            ),
            None => format!("the running user (uid {})", self.euid),
        }
    }
}

/// The sticky bit: in such a directory only an entry's owner (or the directory's) may rename
/// or remove it.
const STICKY: u32 = 0o1000;

/// Whether a file or directory with `owner` and `mode` may be trusted by a process running
/// as `owners.euid`: owned by root or one of `owners`, and not writable by group or others. An `ancestor`
/// (a directory above the checked path) that root owns may be writable by others when it
/// has the sticky bit (like `/tmp`): nobody else can then rename or remove our entry in it.
pub fn trust(
    owner: u32,
    mode: u32,
    owners: impl Into<Owners>,
    ancestor: bool,
) -> Result<(), Untrusted> {
    if !owners.into().admit(owner) {
        return Err(Untrusted::Owner(owner));
    }
    let mode = mode & 0o7777;
    let root_sticky = ancestor && owner == 0 && mode & STICKY != 0;
    if mode & 0o022 != 0 && !root_sticky {
        return Err(Untrusted::Writable(mode));
    }
    Ok(())
}

impl Untrusted {
    /// What is wrong and the fix, for the checked path itself (its path is said before).
    fn explain(self, owners: Owners) -> String {
        match self {
            Untrusted::Owner(uid) => format!(
                "owned by uid {uid}, not by root or {}: chown root",
                owners.said()
            ),
            Untrusted::Writable(mode) => {
                format!("mode {mode:04o} lets group or others write: chmod go-w")
            }
        }
    }

    /// What is wrong and the fix, for `dir`, a directory (or a symlink) above the checked path.
    fn explain_above(self, dir: &Path, owners: Owners) -> String {
        let dir = dir.display();
        match self {
            Untrusted::Owner(uid) => format!(
                "{dir}, above it, is owned by uid {uid}, not by root or {}, who could swap \
                 what lies below: chown root {dir}",
                owners.said()
            ),
            Untrusted::Writable(mode) => format!(
                "{dir}, above it, has mode {mode:04o}: group or others could swap what lies \
                 below: chmod go-w {dir}"
            ),
        }
    }
}

/// Checks that `meta` is owned by root or the running user and is not group/world-writable.
pub fn check_owner_and_mode(meta: &Metadata, owners: impl Into<Owners>) -> Result<(), Refusal> {
    let owners = owners.into();
    trust(meta.uid(), meta.mode(), owners, false).map_err(|u| Refusal::Unsafe(u.explain(owners)))
}

/// Symlinks followed at most on the way to one path (the kernel's own limit).
const MAX_SYMLINKS: u32 = 40;

/// The directories found trustworthy, with every directory above them, during one login: the
/// config file, the record directory and the state directory share most of their ancestors,
/// so each distinct directory costs one `lstat` per login instead of one per chain. The module
/// keeps one from `split` to `verify` (one PAM transaction); everything else passes `None` and
/// walks afresh. Only chains walked without a symlink are remembered.
#[derive(Debug, Default)]
pub struct Walked(Mutex<Vec<(PathBuf, Owners)>>);

/// At most this many chains are remembered (a login walks three).
const WALKED_MAX: usize = 8;

/// Whether the real path `chain` is `dir` or lies below it (compared as bytes: both are built
/// component by component, without `.`, `..`, doubled or trailing slashes).
fn below_or_at(chain: &[u8], dir: &[u8]) -> bool {
    chain.starts_with(dir)
        && (chain.len() == dir.len() || dir.ends_with(b"/") || chain[dir.len()] == b'/')
}

impl Walked {
    /// Whether `dir` lies on a chain found trustworthy for owners no wider than `owners`.
    fn covers(&self, dir: &Path, owners: Owners) -> bool {
        // A poisoned lock (a panic elsewhere) only means walking again.
        let dir = dir.as_os_str().as_bytes();
        self.0.lock().is_ok_and(|chains| {
            chains.iter().any(|(chain, by)| {
                by.euid == owners.euid
                    && (by.extra.is_none() || by.extra == owners.extra)
                    && below_or_at(chain.as_os_str().as_bytes(), dir)
            })
        })
    }

    /// Remembers `dir` (a real path: no symlink, no `..`) and everything above it as trusted.
    fn add(&self, dir: &Path, owners: Owners) {
        if let Ok(mut chains) = self.0.lock() {
            if chains.len() < WALKED_MAX {
                chains.push((dir.to_path_buf(), owners));
            }
        }
    }
}

/// Checks every directory above `path`, from `/` down to its parent, like OpenSSH's
/// `secure_filename`: each must be a directory that [`trust`] accepts as an ancestor. A
/// symlink on the way is followed (a relative `path` starts from the working directory) and
/// the real directories are checked; the symlink itself must be owned by root or `euid`,
/// since in a sticky directory its owner could re-point it. One `lstat` per component, plus
/// a `readlink` per symlink; no allocation unless `path` is relative or holds a symlink.
pub fn check_ancestors(path: &Path, owners: impl Into<Owners>) -> Result<(), Refusal> {
    walk_ancestors(path, owners.into(), None).map(|_| ())
}

/// [`check_ancestors`], skipping the directories `walked` already vouches for (and adding
/// this chain to it).
pub fn check_ancestors_in(
    path: &Path,
    owners: Owners,
    walked: Option<&Walked>,
) -> Result<(), Refusal> {
    walk_ancestors(path, owners, walked).map(|_| ())
}

/// The walk of [`check_ancestors`]; `Ok(true)` when no symlink was met on the way (so the
/// parent of `path` is a real path that a later walk may skip).
fn walk_ancestors(path: &Path, owners: Owners, walked: Option<&Walked>) -> Result<bool, Refusal> {
    let absolute;
    let path = if path.is_absolute() {
        path
    } else {
        absolute = std::env::current_dir().map_err(Refusal::Io)?.join(path);
        &absolute
    };
    let Some(parent) = path.parent() else {
        return Ok(true);
    };
    let mut real = PathBuf::with_capacity(parent.as_os_str().len() + 1);
    let mut rest = Cow::Borrowed(parent);
    let mut links = 0;
    'walk: loop {
        let mut components = rest.components();
        while let Some(component) = components.next() {
            match component {
                Component::RootDir => {
                    real.as_mut_os_string().clear();
                    real.push("/");
                }
                Component::Normal(name) => real.push(name),
                // `real` holds no symlink, so its parent is the real `..`, checked already.
                Component::ParentDir => {
                    real.pop();
                    continue;
                }
                Component::CurDir | Component::Prefix(_) => continue,
            }
            if links == 0 && walked.is_some_and(|w| w.covers(&real, owners)) {
                continue;
            }
            let meta = std::fs::symlink_metadata(&real).map_err(|e| io_above(&real, e))?;
            if meta.file_type().is_symlink() {
                // A symlink's own mode means nothing: only its owner is checked.
                trust(meta.uid(), 0, owners, true)
                    .map_err(|u| Refusal::Unsafe(u.explain_above(&real, owners)))?;
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io_above(&real, io::Error::from_raw_os_error(libc::ELOOP)));
                }
                let target = std::fs::read_link(&real).map_err(|e| io_above(&real, e))?;
                real.pop();
                rest = Cow::Owned(target.join(components.as_path()));
                continue 'walk;
            }
            if !meta.is_dir() {
                return Err(io_above(&real, io::Error::from_raw_os_error(libc::ENOTDIR)));
            }
            trust(meta.uid(), meta.mode(), owners, true)
                .map_err(|u| Refusal::Unsafe(u.explain_above(&real, owners)))?;
        }
        if links == 0 {
            if let Some(walked) = walked {
                walked.add(&real, owners);
            }
        }
        return Ok(links == 0);
    }
}

/// An I/O error met at `dir` on the way down, naming it (the kind is kept: a missing
/// directory above is still `NotFound`).
fn io_above(dir: &Path, e: io::Error) -> Refusal {
    Refusal::Io(io::Error::new(e.kind(), format!("{}: {e}", dir.display())))
}

/// Checks a directory the module reads from or writes into, and every directory above it
/// ([`check_ancestors`]). The directory itself may not be a symlink, nor sticky and writable
/// by others.
pub fn check_dir(path: &Path, owners: impl Into<Owners>) -> Result<(), Refusal> {
    check_dir_in(path, owners.into(), None)
}

/// [`check_dir`] with the directories `walked` already vouches for skipped; the directory
/// itself is always checked, and then vouched for.
pub fn check_dir_in(path: &Path, owners: Owners, walked: Option<&Walked>) -> Result<(), Refusal> {
    let real = walk_ancestors(path, owners, walked)?;
    let meta = std::fs::symlink_metadata(path).map_err(Refusal::Io)?;
    if meta.file_type().is_symlink() {
        return Err(Refusal::Unsafe(
            "is a symlink: use the real directory".to_string(),
        ));
    }
    if !meta.is_dir() {
        return Err(Refusal::Unsafe("is not a directory".to_string()));
    }
    check_owner_and_mode(&meta, owners)?;
    // Trusted itself (more strictly than an ancestor): files in it need only their own check.
    let plain = path
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if let Some(walked) = walked.filter(|_| real && plain && path.is_absolute()) {
        walked.add(path, owners);
    }
    Ok(())
}

/// Opens `path` for reading if it is a safe regular file, with its `fstat`. `Ok(None)` when it
/// does not exist.
pub fn open_checked(
    path: &Path,
    owners: impl Into<Owners>,
) -> Result<Option<(File, Metadata)>, Refusal> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Refusal::Unsafe(SYMLINK.to_string()))
        }
        Err(e) => return Err(Refusal::Io(e)),
    };
    let meta = file.metadata().map_err(Refusal::Io)?;
    check_file(&meta, owners.into())?;
    Ok(Some((file, meta)))
}

/// What [`open_checked`] checks of an opened file: a regular file, owner and mode.
fn check_file(meta: &Metadata, owners: Owners) -> Result<(), Refusal> {
    if !meta.is_file() {
        return Err(Refusal::Io(io::Error::other("not a regular file")));
    }
    check_owner_and_mode(meta, owners)
}

/// The `lstat` of `path` if it is a file [`open_checked`] would open (not a symlink, a regular
/// file, owner and mode), without opening it: for a file whose contents are kept from an
/// earlier read while this stays the same. `Ok(None)` when it does not exist.
pub fn stat_checked(path: &Path, owners: Owners) -> Result<Option<Metadata>, Refusal> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Refusal::Io(e)),
    };
    if meta.file_type().is_symlink() {
        return Err(Refusal::Unsafe(SYMLINK.to_string()));
    }
    check_file(&meta, owners)?;
    Ok(Some(meta))
}

/// What a symlink where a file belongs is told.
const SYMLINK: &str = "is a symlink: replace it with the file itself";

/// Reads the config file at `path`: every directory above it checked ([`check_ancestors`]),
/// the file itself by [`read_checked`]. `Ok(None)` when it, or a directory above it, does not
/// exist.
pub fn read_trusted(
    path: &Path,
    owners: impl Into<Owners>,
) -> Result<Option<zeroize::Zeroizing<String>>, Refusal> {
    let owners = owners.into();
    match check_ancestors(path, owners) {
        Err(Refusal::Io(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        checked => checked?,
    }
    read_checked(path, owners)
}

/// Reads a checked file into a string (at most [`MAX_FILE_BYTES`], UTF-8). The buffer is
/// sized from `fstat`, so a file is read in one `read` (and one more that sees its end).
pub fn read_checked(
    path: &Path,
    owners: impl Into<Owners>,
) -> Result<Option<zeroize::Zeroizing<String>>, Refusal> {
    let Some((file, meta)) = open_checked(path, owners)? else {
        return Ok(None);
    };
    read_opened(file, &meta).map(Some)
}

/// Reads a secret (a password file): like [`read_trusted`], and also refused when group or
/// others may read it, since everyone who can read it holds the secret. A missing file is an
/// error here: a secret the settings name must be there.
pub fn read_secret(
    path: &Path,
    owners: impl Into<Owners>,
) -> Result<zeroize::Zeroizing<String>, Refusal> {
    let (file, meta) = open_named(path, owners.into())?;
    if meta.mode() & 0o077 != 0 {
        return Err(Refusal::Unsafe(format!(
            "mode {:04o} lets group or others read a secret: chmod 0600",
            meta.mode() & 0o7777
        )));
    }
    read_opened(file, &meta)
}

/// Reads public data the module must still trust (CA certificates: whoever could change them
/// could put their own CA in), checked like [`read_trusted`], of at most `limit` bytes. A
/// missing file is an error: the settings name it.
pub fn read_public(path: &Path, owners: impl Into<Owners>, limit: u64) -> Result<Vec<u8>, Refusal> {
    let (file, _) = open_named(path, owners.into())?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(Refusal::Io)?;
    if bytes.len() as u64 > limit {
        return Err(Refusal::Io(io::Error::other(format!(
            "larger than {} KiB",
            limit / 1024
        ))));
    }
    Ok(bytes)
}

/// Opens a file the settings name (so a missing one is an error), checked with every
/// directory above it.
fn open_named(path: &Path, owners: Owners) -> Result<(File, Metadata), Refusal> {
    check_ancestors(path, owners)?;
    open_checked(path, owners)?
        .ok_or_else(|| Refusal::Io(io::Error::new(io::ErrorKind::NotFound, "does not exist")))
}

/// Reads an opened, checked file into a string (at most [`MAX_FILE_BYTES`], UTF-8).
///
/// Sized from `fstat` (at most the limit and one byte), so that the text is read in place and
/// no reallocation leaves a copy of a secret behind; whatever the size says, at most the limit
/// and one byte are read, and one byte too many refuses the file. A read that returns fewer
/// bytes than asked, having reached the size `fstat` gave, is the whole file: files here are
/// replaced whole by rename, never grown in place, so the read that would only see the end is
/// saved. Otherwise reading goes on to the end.
pub fn read_opened(mut file: File, meta: &Metadata) -> Result<zeroize::Zeroizing<String>, Refusal> {
    let size = meta.len().min(MAX_FILE_BYTES) as usize;
    let mut bytes = zeroize::Zeroizing::new(vec![0u8; size + 1]);
    let mut filled = 0;
    loop {
        if filled == bytes.len() {
            if filled as u64 > MAX_FILE_BYTES {
                return Err(Refusal::Io(io::Error::other("larger than 64 KiB")));
            }
            // Grown since `fstat`: room for the rest, up to the limit and one byte.
            let more = (filled * 2).min(MAX_FILE_BYTES as usize + 1);
            let mut grown = zeroize::Zeroizing::new(vec![0u8; more]);
            grown[..filled].copy_from_slice(&bytes[..filled]);
            bytes = grown;
        }
        match file.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if filled == size && filled < bytes.len() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Refusal::Io(e)),
        }
    }
    bytes.truncate(filled);
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(zeroize::Zeroizing::new(text)),
        Err(e) => {
            // The bytes go back into the zeroizing buffer, wiped on drop.
            *bytes = e.into_bytes();
            Err(Refusal::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Asserts `result` is a refusal as unsafe whose text holds `fix`.
    fn assert_refused(result: Result<(), Refusal>, fix: &str) {
        match result {
            Err(Refusal::Unsafe(why)) => assert!(why.contains(fix), "`{fix}` not in: {why}"),
            other => panic!("not refused as unsafe: {other:?}"),
        }
    }

    #[test]
    fn trust_decides_from_owner_and_mode() {
        assert_eq!(trust(0, 0o40700, 1000, false), Ok(()));
        assert_eq!(trust(1000, 0o755, 1000, false), Ok(()));
        assert_eq!(trust(7, 0o700, 1000, true), Err(Untrusted::Owner(7)));
        assert_eq!(trust(0, 0o775, 0, true), Err(Untrusted::Writable(0o775)));
        // The sticky exception: root-owned ancestors only, never the checked path itself.
        assert_eq!(trust(0, 0o1777, 0, true), Ok(()));
        assert_eq!(trust(0, 0o1777, 0, false), Err(Untrusted::Writable(0o1777)));
        assert_eq!(
            trust(1000, 0o1777, 1000, true),
            Err(Untrusted::Writable(0o1777))
        );
    }

    #[test]
    fn an_extra_owner_is_trusted_only_where_given() {
        let owners = Owners {
            euid: 0,
            extra: Some(998),
        };
        assert_eq!(trust(998, 0o700, owners, false), Ok(()));
        assert_eq!(trust(998, 0o700, owners, true), Ok(()));
        assert_eq!(trust(998, 0o700, 0, false), Err(Untrusted::Owner(998)));
        assert_eq!(trust(997, 0o700, owners, false), Err(Untrusted::Owner(997)));
        assert_eq!(
            trust(998, 0o770, owners, false),
            Err(Untrusted::Writable(0o770))
        );
    }

    #[test]
    fn root_gives_its_writes_to_the_extra_owner_and_names_both() {
        let panel = Owners {
            euid: 0,
            extra: Some(998),
        };
        assert_eq!(panel.given_by_root(), Some(998));
        // The extra owner running itself, or root without one: nothing to give.
        let as_panel = Owners {
            euid: 998,
            extra: Some(998),
        };
        assert_eq!(as_panel.given_by_root(), None);
        assert_eq!(Owners::from(0).given_by_root(), None);
        assert_eq!(
            panel.said(),
            "the running user (uid 0) or the record owner (uid 998)"
        );
        assert_eq!(Owners::from(1000).said(), "the running user (uid 1000)");
    }

    /// One login's [`Walked`]: each directory of a chain is looked at once, for owners no
    /// wider than those it was checked for, and only chains walked without a symlink count.
    #[test]
    fn a_walk_vouches_for_its_chain_within_one_login_only() {
        let euid = crate::pam::sys::effective_uid();
        let top = tempfile::tempdir().unwrap();
        let a = top.path().join("a");
        let b = a.join("b");
        fs::create_dir_all(&b).unwrap();
        chmod(&a, 0o700);
        chmod(&b, 0o700);
        let walked = Walked::default();
        check_dir_in(&b, euid.into(), Some(&walked)).unwrap();
        assert!(walked.covers(&a, euid.into()) && walked.covers(&b, euid.into()));
        let wider = Owners {
            euid,
            extra: Some(54321),
        };
        assert!(
            walked.covers(&a, wider),
            "checked for fewer owners: good for more"
        );
        let by_wider = Walked::default();
        check_dir_in(&b, wider, Some(&by_wider)).unwrap();
        assert!(
            !by_wider.covers(&a, euid.into()),
            "checked for more owners: not for fewer"
        );
        // Within the login a directory is not looked at again; the next login sees the change.
        chmod(&a, 0o777);
        check_ancestors_in(&b.join("f"), euid.into(), Some(&walked)).unwrap();
        assert_refused(check_ancestors(&b.join("f"), euid), "chmod go-w");
        chmod(&a, 0o700);
        // A chain through a symlink is checked but not remembered.
        let link = top.path().join("link");
        symlink(&b, &link).unwrap();
        let through = Walked::default();
        check_ancestors_in(&link.join("c").join("f"), euid.into(), Some(&through)).unwrap_err();
        fs::create_dir(b.join("c")).unwrap();
        chmod(&b.join("c"), 0o700);
        check_ancestors_in(&link.join("c").join("f"), euid.into(), Some(&through)).unwrap();
        assert!(!through.covers(&link, euid.into()));
        assert!(!through.covers(&b, euid.into()), "nor its real directories");
        // Nor a directory named with `..`.
        let dotted = Walked::default();
        check_dir_in(
            &b.join("c").join("..").join("c"),
            euid.into(),
            Some(&dotted),
        )
        .unwrap();
        assert!(!dotted.covers(&b.join("c"), euid.into()));
        assert!(below_or_at(b"/var/lib", b"/") && below_or_at(b"/var/lib", b"/var"));
        assert!(below_or_at(b"/var", b"/var") && !below_or_at(b"/variable", b"/var"));
        assert!(!below_or_at(b"/var", b"/var/lib"));
    }

    /// A file that grew after its `fstat` (here: the `fstat` of a smaller file) is read to its
    /// end, up to the limit; one byte over it is refused.
    #[test]
    fn a_file_grown_since_its_fstat_is_read_whole_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        fs::write(&small, "").unwrap();
        let small_meta = fs::metadata(&small).unwrap();
        for len in [100, MAX_FILE_BYTES as usize] {
            let path = dir.path().join(format!("f{len}"));
            let text: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            fs::write(&path, &text).unwrap();
            let read = read_opened(File::open(&path).unwrap(), &small_meta).unwrap();
            assert_eq!(read.as_str(), text, "{len} bytes");
        }
        let over = dir.path().join("over");
        fs::write(&over, vec![b'a'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(read_opened(File::open(&over).unwrap(), &small_meta).is_err());
    }

    /// `O_NOFOLLOW` answers `ELOOP` for a symlink: only that is called one; other errors
    /// opening the file stay I/O errors with their own cause.
    #[test]
    fn only_a_symlink_is_refused_as_one() {
        let euid = crate::pam::sys::effective_uid();
        let top = tempfile::tempdir().unwrap();
        symlink("target", top.path().join("link")).unwrap();
        assert_refused(
            open_checked(&top.path().join("link"), euid).map(|_| ()),
            "is a symlink",
        );
        let too_long = top.path().join("n".repeat(300));
        assert!(matches!(
            open_checked(&too_long, euid),
            Err(Refusal::Io(e)) if e.raw_os_error() == Some(libc::ENAMETOOLONG)
        ));
    }

    /// `read_trusted` says "no file" for a missing file or a missing directory above it, and
    /// an error for anything else on the way (a file where a directory should be).
    #[test]
    fn read_trusted_says_none_only_for_what_is_missing() {
        let euid = crate::pam::sys::effective_uid();
        let top = tempfile::tempdir().unwrap();
        let missing = top.path().join("nope").join("mailmfa.toml");
        assert!(matches!(read_trusted(&missing, euid), Ok(None)));
        assert!(matches!(
            read_trusted(&top.path().join("mailmfa.toml"), euid),
            Ok(None)
        ));
        fs::write(top.path().join("file"), "x").unwrap();
        let below_a_file = top.path().join("file").join("mailmfa.toml");
        assert!(matches!(
            read_trusted(&below_a_file, euid),
            Err(Refusal::Io(e)) if e.raw_os_error().is_none() && e.kind() != io::ErrorKind::NotFound
        ));
    }

    /// A file of exactly `MAX_FILE_BYTES` is read whole; one byte more is refused.
    #[test]
    fn a_file_of_exactly_the_limit_is_read_whole_and_one_byte_more_is_refused() {
        let euid = crate::pam::sys::effective_uid();
        let top = tempfile::tempdir().unwrap();
        let path = top.path().join("big");
        fs::write(&path, "a".repeat(MAX_FILE_BYTES as usize)).unwrap();
        chmod(&path, 0o600);
        let text = read_checked(&path, euid).unwrap().unwrap();
        assert_eq!(text.len() as u64, MAX_FILE_BYTES);
        fs::write(&path, "a".repeat(MAX_FILE_BYTES as usize + 1)).unwrap();
        assert!(matches!(read_checked(&path, euid), Err(Refusal::Io(_))));
    }

    /// `read_public` reads up to its limit and refuses one byte more; a missing file is an
    /// error, not "none".
    #[test]
    fn read_public_holds_its_limit_and_wants_the_file() {
        let euid = crate::pam::sys::effective_uid();
        let top = tempfile::tempdir().unwrap();
        let path = top.path().join("ca.crt");
        fs::write(&path, "x".repeat(100)).unwrap();
        chmod(&path, 0o644);
        assert_eq!(read_public(&path, euid, 100).unwrap().len(), 100);
        assert!(matches!(read_public(&path, euid, 99), Err(Refusal::Io(_))));
        assert!(matches!(
            read_public(&top.path().join("nope"), euid, 100),
            Err(Refusal::Io(e)) if e.kind() == io::ErrorKind::NotFound
        ));
        chmod(&path, 0o666);
        assert_refused(read_public(&path, euid, 100).map(|_| ()), "chmod go-w");
    }

    /// A chain of symlinks above the path resolves up to the kernel's own limit (40, as
    /// `MAXSYMLINKS` in Linux), and one more is `ELOOP`.
    #[test]
    fn symlinks_above_resolve_up_to_the_kernels_limit() {
        let euid = crate::pam::sys::effective_uid();
        let top = tempfile::tempdir().unwrap();
        let leaf = top.path().join("real").join("users");
        fs::create_dir_all(&leaf).unwrap();
        // l0 -> l1 -> ... -> l40 -> real: from l0, 41 links; from l1, 40.
        let total = MAX_SYMLINKS as usize + 1;
        for i in 0..total {
            let target = if i + 1 == total {
                "real".to_string()
            } else {
                format!("l{}", i + 1)
            };
            symlink(target, top.path().join(format!("l{i}"))).unwrap();
        }
        assert!(check_dir(&top.path().join("l1").join("users"), euid).is_ok());
        assert!(fs::metadata(top.path().join("l1").join("users")).is_ok());
        assert!(matches!(
            check_dir(&top.path().join("l0").join("users"), euid),
            Err(Refusal::Io(e)) if e.raw_os_error().is_none() && e.to_string().contains("Too many levels")
        ));
    }

    /// The chain walk over real directories. `euid` is this process's, so that the tree
    /// (made by this process) is trusted; the foreign owner is a chown as root, or else a
    /// different `euid` (which makes our own directories foreign).
    #[test]
    fn the_chain_walk_checks_every_directory_above() {
        let euid = crate::pam::sys::effective_uid();
        let top = tempfile::tempdir().unwrap();
        let base = top.path().join("base");
        let leaf = base.join("lib").join("users");
        fs::create_dir_all(&leaf).unwrap();
        for dir in [&base, &base.join("lib"), &leaf] {
            chmod(dir, 0o700);
        }
        assert!(check_dir(&leaf, euid).is_ok(), "a healthy chain");

        // A root-owned sticky ancestor (the test runs below /tmp, one too) is accepted...
        chmod(&base, 0o1777);
        if euid == 0 {
            assert!(check_dir(&leaf, euid).is_ok(), "root-owned sticky ancestor");
        }
        // ...never as the directory itself.
        chmod(&leaf, 0o1777);
        assert_refused(check_dir(&leaf, euid), "chmod go-w");
        chmod(&leaf, 0o700);

        // A group-writable ancestor without the sticky bit.
        chmod(&base, 0o770);
        assert_refused(
            check_dir(&leaf, euid),
            &format!("chmod go-w {}", base.display()),
        );
        chmod(&base, 0o700);

        // A foreign owner.
        let foreign_euid = if euid == 0 {
            std::os::unix::fs::chown(base.join("lib"), Some(12345), None).unwrap();
            0
        } else {
            euid + 1
        };
        assert_refused(
            check_dir(&leaf, foreign_euid),
            &format!("chown root {}", base.join("lib").display()),
        );
        if euid == 0 {
            std::os::unix::fs::chown(base.join("lib"), Some(0), None).unwrap();
        }

        // A symlinked ancestor (Debian's `/lib -> usr/lib`) is resolved and the real chain
        // checked; the directory itself may still not be a symlink.
        symlink("base/lib", top.path().join("link")).unwrap();
        let through_link = top.path().join("link").join("users");
        assert!(check_dir(&through_link, euid).is_ok());
        chmod(&base, 0o777);
        // The real directory is named, not the link.
        assert_refused(
            check_dir(&through_link, euid),
            &format!("chmod go-w {}", base.display()),
        );
        chmod(&base, 0o700);
        symlink(&leaf, top.path().join("users-link")).unwrap();
        assert_refused(check_dir(&top.path().join("users-link"), euid), "symlink");

        // `..` after a symlink is the real parent; a loop ends with an error, not a hang.
        let dotdot = top.path().join("link").join("..").join("lib").join("users");
        assert!(check_dir(&dotdot, euid).is_ok());
        symlink("loop", top.path().join("loop")).unwrap();
        assert!(matches!(
            check_dir(&top.path().join("loop").join("x"), euid),
            Err(Refusal::Io(_))
        ));
        // A missing directory above is still `NotFound` (callers say how to create it).
        let missing = top.path().join("nope").join("users");
        assert!(matches!(
            check_dir(&missing, euid),
            Err(Refusal::Io(e)) if e.kind() == io::ErrorKind::NotFound
        ));
    }
}
