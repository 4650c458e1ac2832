//! Opening files the way the module trusts them (like OpenSSH's StrictModes): no symlinks,
//! regular files only, owned by root or the running user, not group- or world-writable.
//!
//! Files are opened with `O_NOFOLLOW | O_NONBLOCK` and checked with `fstat` on the open
//! descriptor, so a FIFO cannot hang a login and a file swapped after the check is not read.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

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

/// Checks that `meta` is owned by root or the running user and is not group/world-writable.
pub fn check_owner_and_mode(meta: &Metadata, euid: u32) -> Result<(), Refusal> {
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(Refusal::Unsafe(format!(
            "owned by uid {}, not by root or the running user (uid {euid}): chown root",
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Refusal::Unsafe(format!(
            "mode {mode:04o} lets group or others write: chmod go-w"
        )));
    }
    Ok(())
}

/// Checks a directory the module reads from or writes into.
pub fn check_dir(path: &Path, euid: u32) -> Result<(), Refusal> {
    let meta = std::fs::symlink_metadata(path).map_err(Refusal::Io)?;
    if meta.file_type().is_symlink() {
        return Err(Refusal::Unsafe(
            "is a symlink: use the real directory".to_string(),
        ));
    }
    if !meta.is_dir() {
        return Err(Refusal::Unsafe("is not a directory".to_string()));
    }
    check_owner_and_mode(&meta, euid)
}

/// Opens `path` for reading if it is a safe regular file, with its `fstat`. `Ok(None)` when it
/// does not exist.
pub fn open_checked(path: &Path, euid: u32) -> Result<Option<(File, Metadata)>, Refusal> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Refusal::Unsafe(
                "is a symlink: replace it with the file itself".to_string(),
            ))
        }
        Err(e) => return Err(Refusal::Io(e)),
    };
    let meta = file.metadata().map_err(Refusal::Io)?;
    if !meta.is_file() {
        return Err(Refusal::Io(io::Error::other("not a regular file")));
    }
    check_owner_and_mode(&meta, euid)?;
    Ok(Some((file, meta)))
}

/// Reads a checked file into a string (at most [`MAX_FILE_BYTES`], UTF-8). The buffer is
/// sized from `fstat`, so a file is read in one `read` (and one more that sees its end).
pub fn read_checked(path: &Path, euid: u32) -> Result<Option<zeroize::Zeroizing<String>>, Refusal> {
    let Some((file, meta)) = open_checked(path, euid)? else {
        return Ok(None);
    };
    let size = meta.len();
    if size > MAX_FILE_BYTES {
        return Err(Refusal::Io(io::Error::other("larger than 64 KiB")));
    }
    let mut text = zeroize::Zeroizing::new(String::with_capacity(size as usize + 1));
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(Refusal::Io)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(Refusal::Io(io::Error::other("larger than 64 KiB")));
    }
    Ok(Some(text))
}
