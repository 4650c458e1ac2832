//! The module's settings, loaded as trusted and kept between the logins of one process.
//!
//! Dovecot's auth workers and saslauthd's processes serve thousands of logins each, and the
//! module stays mapped between them (`-z nodelete`). Parsing `mailmfa.toml` was a tenth of a
//! login's instructions; here a parsed file is kept with the identity of the file it came
//! from (device, inode, size, modification and change times to the nanosecond), and reused
//! while an `lstat` of the path shows the same identity. Every login still checks the file
//! and every directory above it ([`secure`]) before using what is kept, so a file made unsafe
//! is refused at once; any write to the file changes its change time, so an edit is read at
//! the next login.
//!
//! A file changed within the last two seconds is not kept (as git treats a "racily clean"
//! index entry): on a file system whose times are whole seconds, a second edit within the same
//! second and of the same size could otherwise look unchanged. The store is a short list
//! behind a `Mutex` taken with `try_lock`: a busy or poisoned lock only means parsing again,
//! never waiting, and a child after `fork` can never block on it.

use super::{ModuleArgs, Settings};
use crate::store::secure::{self, Owners, Refusal, Walked};
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// What identifies one version of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    fn of(meta: &Metadata) -> Identity {
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether the file was changed long enough ago (two seconds) that a later change is sure
    /// to change its times.
    fn settled(&self, now: i64) -> bool {
        self.ctime.0.max(self.mtime.0) + 2 <= now
    }
}

/// One parsed file with the pam.d overrides applied.
struct Entry {
    path: PathBuf,
    overrides: Vec<(String, String)>,
    identity: Identity,
    settings: Arc<Settings>,
}

/// Distinct (file, overrides) pairs kept; a process rarely sees more than two.
const KEPT_MAX: usize = 8;

static KEPT: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// The settings `args` name, for a process running as `euid`: the config file is checked
/// (every directory above it through `walked`, then the file itself) and parsed unless the
/// same version was parsed before. `Err` is the log detail (path and what is wrong).
pub fn load(
    args: &ModuleArgs,
    euid: u32,
    walked: Option<&Walked>,
) -> Result<Arc<Settings>, String> {
    let path = &args.config_path;
    let owners = Owners::from(euid);
    let missing = || format!("{}: does not exist", path.display());
    match secure::check_ancestors_in(path, owners, walked) {
        Err(Refusal::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        checked => checked.map_err(|r| refused(path, r))?,
    }
    let Some(meta) = secure::stat_checked(path, owners).map_err(|r| refused(path, r))? else {
        return Err(missing());
    };
    if let Some(settings) = kept(args, Identity::of(&meta)) {
        return Ok(settings);
    }
    let Some((file, meta)) = secure::open_checked(path, owners).map_err(|r| refused(path, r))?
    else {
        return Err(missing());
    };
    let text = secure::read_opened(file, &meta).map_err(|r| refused(path, r))?;
    let settings = Arc::new(args.settings(&text).map_err(|e| e.to_string())?);
    keep(args, Identity::of(&meta), &settings);
    Ok(settings)
}

/// A file the module may not trust or read, as a log `detail`: its path and what is wrong.
pub fn refused(path: &Path, refusal: Refusal) -> String {
    match refusal {
        Refusal::Unsafe(why) => format!("{}: {why}", path.display()),
        Refusal::Io(e) => format!("{}: {e}", path.display()),
    }
}

/// The settings kept for `args` if they came from this version of the file.
fn kept(args: &ModuleArgs, identity: Identity) -> Option<Arc<Settings>> {
    let entries = KEPT.try_lock().ok()?;
    entries
        .iter()
        .find(|e| {
            e.identity == identity && e.path == args.config_path && e.overrides == args.overrides
        })
        .map(|e| Arc::clone(&e.settings))
}

/// Keeps `settings`, parsed from this version of the file, unless it changed too recently.
fn keep(args: &ModuleArgs, identity: Identity, settings: &Arc<Settings>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if !identity.settled(now) {
        return;
    }
    let Ok(mut entries) = KEPT.try_lock() else {
        return;
    };
    entries.retain(|e| !(e.path == args.config_path && e.overrides == args.overrides));
    if entries.len() >= KEPT_MAX {
        entries.remove(0);
    }
    entries.push(Entry {
        path: args.config_path.clone(),
        overrides: args.overrides.clone(),
        identity,
        settings: Arc::clone(settings),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::args;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    /// A config file (mode 0600) in `dir`.
    fn config(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("mailmfa.toml");
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    fn module_args(path: &Path, extra: &str) -> ModuleArgs {
        args(&format!("verify config={} {extra}", path.display())).unwrap()
    }

    #[test]
    fn a_file_is_parsed_once_settled_and_an_edit_or_unsafe_mode_is_seen_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let euid = crate::pam::sys::effective_uid();
        let path = config(dir.path(), "window = 2\n");
        let a = module_args(&path, "");
        // Changed just now: parsed at every login.
        let first = load(&a, euid, None).unwrap();
        assert!(!Arc::ptr_eq(&first, &load(&a, euid, None).unwrap()));
        std::thread::sleep(std::time::Duration::from_millis(2100));
        let settled = load(&a, euid, None).unwrap();
        assert!(
            Arc::ptr_eq(&settled, &load(&a, euid, None).unwrap()),
            "kept"
        );
        // An edit of the same size, in place: read at the next login.
        fs::write(&path, "window = 3\n").unwrap();
        assert_eq!(load(&a, euid, None).unwrap().window, 3);
        // Made unsafe: refused although a version is kept.
        std::thread::sleep(std::time::Duration::from_millis(2100));
        load(&a, euid, None).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        let err = load(&a, euid, None).unwrap_err();
        assert!(err.contains("chmod go-w"), "{err}");
    }

    #[test]
    fn a_missing_file_or_directory_is_said_so_and_a_file_in_a_directory_s_place_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let euid = crate::pam::sys::effective_uid();
        let gone = module_args(&dir.path().join("gone").join("mailmfa.toml"), "");
        let err = load(&gone, euid, None).unwrap_err();
        assert!(err.ends_with("mailmfa.toml: does not exist"), "{err}");
        let missing = module_args(&dir.path().join("mailmfa.toml"), "");
        let err = load(&missing, euid, None).unwrap_err();
        assert!(err.ends_with("mailmfa.toml: does not exist"), "{err}");
        let file = config(dir.path(), "window = 2\n");
        let below_a_file = module_args(&file.join("mailmfa.toml"), "");
        let err = load(&below_a_file, euid, None).unwrap_err();
        assert!(!err.contains("does not exist"), "{err}");
    }

    /// Entries kept for `path` (the store is shared by the tests running at once).
    fn entries_for(path: &Path) -> usize {
        KEPT.lock()
            .unwrap()
            .iter()
            .filter(|e| e.path == path)
            .count()
    }

    #[test]
    fn a_new_version_replaces_the_kept_one_of_its_file_and_overrides_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(dir.path(), "window = 2\n");
        let mut old = Identity::of(&fs::symlink_metadata(&path).unwrap());
        old.ctime.0 -= 10;
        old.mtime.0 -= 10;
        let mut new = old;
        new.size += 1;
        let plain = module_args(&path, "");
        let wide = module_args(&path, "window=4");
        let settings = Arc::new(plain.settings("window = 2\n").unwrap());
        keep(&plain, old, &settings);
        keep(&wide, old, &settings);
        keep(&plain, new, &settings);
        assert_eq!(entries_for(&path), 2, "one per (file, overrides)");
        assert!(kept(&plain, old).is_none() && kept(&plain, new).is_some());
        assert!(
            kept(&wide, old).is_some(),
            "the other overrides' version stays"
        );
    }

    #[test]
    fn kept_settings_are_per_file_version_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(dir.path(), "window = 2\n");
        let mut id = Identity::of(&fs::symlink_metadata(&path).unwrap());
        id.ctime.0 -= 10;
        id.mtime.0 -= 10;
        let plain = module_args(&path, "");
        let wide = module_args(&path, "window=4");
        let settings = Arc::new(plain.settings("window = 2\n").unwrap());
        keep(&plain, id, &settings);
        assert!(kept(&plain, id).is_some_and(|s| Arc::ptr_eq(&s, &settings)));
        assert!(kept(&wide, id).is_none(), "other overrides, other settings");
        let mut other = id;
        other.ctime.1 += 1;
        assert!(kept(&plain, other).is_none(), "another version of the file");
        // A version changed within the last two seconds is not kept.
        let fresh = Identity::of(&fs::symlink_metadata(&path).unwrap());
        keep(&wide, fresh, &settings);
        assert!(kept(&wide, fresh).is_none());
    }
}
