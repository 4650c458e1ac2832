//! Support for tests/package_deb.rs (issue 16): finding the .deb that scripts/deb.sh built,
//! and a throwaway Debian root to install it in. The root is an overlay whose lower layer is
//! this machine's `/` (read only through the overlay) and whose upper layer is a tmpfs, mounted
//! with /proc, /dev and /sys inside the private mount namespace of a test re-run by
//! `hostile::rerun_in_namespace`: everything the package, dpkg, apt, adduser and the tests
//! write lands on the tmpfs and disappears with the namespace. This machine's /etc/pam.d,
//! /etc/mailmfa, dpkg database and accounts are never written.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Env variable naming the .deb to test instead of the one scripts/deb.sh leaves in
/// `<target>/debian/`.
pub const DEB_ENV: &str = "MAILMFA_DEB";

/// The .deb scripts/deb.sh makes for this version: `mailmfa_<version>-1_amd64.deb` in the
/// target directory's `debian/` (or `$MAILMFA_DEB`).
pub fn deb_path() -> PathBuf {
    if let Some(path) = std::env::var_os(DEB_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("debian").join(deb_name())
}

/// `mailmfa_<version>-1_amd64.deb`: cargo-deb's name, with the revision of debian/changelog.
pub fn deb_name() -> String {
    format!("mailmfa_{}-1_amd64.deb", env!("CARGO_PKG_VERSION"))
}

/// Whether `program` can be run (found on PATH).
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A throwaway Debian root: an overlay of `/` with a tmpfs upper layer, and /proc, /dev
/// (with /dev/pts, which apt wants) and /sys bound in. Only inside a private mount namespace.
pub struct Root {
    /// The tmpfs (upper layer, work dir, mount point); `None` only while being dropped.
    layers: Option<tempfile::TempDir>,
}

impl Root {
    /// Mounts the overlay. Panics unless this process runs in its own mount namespace.
    pub fn new() -> Root {
        crate::hostile::assert_private_mount_namespace();
        let layers = tempfile::Builder::new()
            .prefix("mailmfa-deb-root.")
            .tempdir()
            .unwrap();
        let base = layers.path();
        mount(
            &["-t", "tmpfs", "-o", "size=2g,mode=0700", "mailmfa-deb"],
            base,
        );
        for dir in ["upper", "work", "root"] {
            fs::create_dir(base.join(dir)).unwrap();
        }
        let options = format!(
            "lowerdir=/,upperdir={},workdir={}",
            base.join("upper").display(),
            base.join("work").display()
        );
        mount(
            &["-t", "overlay", "-o", &options, "overlay"],
            &base.join("root"),
        );
        let root = Root {
            layers: Some(layers),
        };
        mount(&["--bind", "/proc"], &root.path("/proc"));
        mount(&["--rbind", "/dev"], &root.path("/dev"));
        mount(&["--bind", "/sys"], &root.path("/sys"));
        root
    }

    /// `path` (absolute, as seen inside the root) as seen from outside it.
    pub fn path(&self, path: &str) -> PathBuf {
        self.layers
            .as_ref()
            .expect("mounted")
            .path()
            .join("root")
            .join(path.trim_start_matches('/'))
    }

    /// Runs `args` inside the root (chroot), with a clean environment, `input` on stdin (from
    /// a file on the throwaway root's tmpfs).
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Output {
        let stdin = self.path("/tmp/mailmfa-package-test.stdin");
        fs::write(&stdin, input).unwrap();
        let out = Command::new("chroot")
            .arg(self.path("/"))
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C.UTF-8")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("MANWIDTH", "80")
            .stdin(fs::File::open(&stdin).unwrap())
            .output()
            .unwrap_or_else(|e| panic!("chroot {args:?}: {e}"));
        fs::remove_file(&stdin).unwrap();
        println!(
            "# {}  -> {}\n{}{}",
            args.join(" "),
            out.status,
            shortened(&out.stdout),
            shortened(&out.stderr)
        );
        out
    }

    /// Runs `args` inside the root with nothing on stdin.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_input(args, "")
    }

    /// Runs `args` inside the root and returns its stdout; panics when it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?} failed: {}", out.status);
        String::from_utf8(out.stdout).unwrap()
    }

    /// Owner name, group name and permission bits of `path` inside the root (names from the
    /// root's own /etc/passwd and /etc/group).
    pub fn owner_mode(&self, path: &str) -> (String, String, u32) {
        let meta = fs::symlink_metadata(self.path(path))
            .unwrap_or_else(|e| panic!("{path} in the throwaway root: {e}"));
        (
            self.name_of("/etc/passwd", meta.uid()),
            self.name_of("/etc/group", meta.gid()),
            meta.mode() & 0o7777,
        )
    }

    fn name_of(&self, db: &str, id: u32) -> String {
        let text = fs::read_to_string(self.path(db)).unwrap();
        text.lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == id.to_string()).then(|| f[0].to_string())
            })
            .unwrap_or_else(|| id.to_string())
    }

    /// Whether `path` exists inside the root (without following a last symlink).
    pub fn exists(&self, path: &str) -> bool {
        fs::symlink_metadata(self.path(path)).is_ok()
    }
}

impl Drop for Root {
    /// Unmounts everything below the tmpfs (the binds of /dev, /proc and /sys first of all)
    /// before the temp dir is removed: removing files through a bind of /dev would delete this
    /// machine's device nodes. If the unmount fails the directory is left behind, not removed.
    fn drop(&mut self) {
        let layers = self.layers.take().expect("mounted");
        let unmounted = Command::new("umount")
            .args(["--recursive", "--lazy"])
            .arg(layers.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            eprintln!(
                "could not unmount {}: left in place, not removed",
                layers.path().display()
            );
            let _ = layers.keep();
        }
    }
}

/// A command's output for the test log: at most 30 lines of at most 200 characters.
fn shortened(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .lines()
        .take(30)
        .map(|l| {
            let cut: String = l.chars().take(200).collect();
            if cut.len() < l.len() {
                format!("{cut}...\n")
            } else {
                format!("{cut}\n")
            }
        })
        .collect();
    if text.lines().count() > 30 {
        out.push_str("...\n");
    }
    out
}

/// `mount ARGS TARGET`, after checking again that this is a private mount namespace.
fn mount(args: &[&str], target: &Path) {
    crate::hostile::assert_private_mount_namespace();
    let status = Command::new("mount")
        .args(args)
        .arg(target)
        .status()
        .expect("mount(8)");
    assert!(
        status.success(),
        "mount {args:?} {}: {status}",
        target.display()
    );
}
