//! The private mount namespace of a run: a private `/dev` whose `/dev/log` is read by a
//! `sink` child, and the mailbox file system (a fresh ext4 image, mounted there). Also the
//! `ns-exec` and `sink` modes.

use super::mailboxes::{ctx, mkdir_0700, write_file};
use super::DEFAULT_WORKDIR;
use std::fs;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Moves this process into a private mount namespace whose /dev holds the machine's device
/// nodes (bind mounts) and a fresh /dev/log socket read by a `sink` child. Must run while the
/// process has one thread.
pub(super) fn private_dev(exe: &Path, image: Option<&(PathBuf, PathBuf)>) -> Result<Child, String> {
    // SAFETY: plain syscalls with valid NUL-terminated strings; the process is single-threaded
    // here (unshare(CLONE_NEWNS) requires it).
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(format!(
                "unshare(CLONE_NEWNS): {}",
                io::Error::last_os_error()
            ));
        }
        if libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(format!(
                "mount --make-rprivate /: {}",
                io::Error::last_os_error()
            ));
        }
    }
    if let Some((img, mnt)) = image {
        ctx(fs::create_dir_all(mnt), || mnt.display().to_string())?;
        let status = ctx(
            Command::new("mount")
                .arg("-o")
                .arg("loop")
                .arg(img)
                .arg(mnt)
                .status(),
            || "mount -o loop".to_string(),
        )?;
        if !status.success() {
            return Err(format!(
                "mount -o loop {} {}: {status}",
                img.display(),
                mnt.display()
            ));
        }
    }
    let stage = std::env::temp_dir().join(format!("mailmfa-bench-dev.{}", std::process::id()));
    ctx(fs::create_dir_all(&stage), || stage.display().to_string())?;
    let mount = |src: &Path, dst: &Path, fstype: Option<&str>, flags: libc::c_ulong| {
        sys_mount(src, dst, fstype, flags, None)
    };
    mount(Path::new("tmpfs"), &stage, Some("tmpfs"), 0)?;
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        let src = Path::new("/dev").join(node);
        if src.exists() {
            let dst = stage.join(node);
            ctx(fs::write(&dst, b""), || dst.display().to_string())?;
            mount(&src, &dst, None, libc::MS_BIND)?;
        }
    }
    for dir in ["pts", "shm", "mqueue"] {
        let src = Path::new("/dev").join(dir);
        if src.is_dir() {
            let dst = stage.join(dir);
            ctx(fs::create_dir(&dst), || dst.display().to_string())?;
            mount(&src, &dst, None, libc::MS_BIND | libc::MS_REC)?;
        }
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        let _ = std::os::unix::fs::symlink(target, stage.join(link));
    }
    mount(&stage, Path::new("/dev"), None, libc::MS_MOVE)?;
    let _ = fs::remove_dir(&stage);
    let child = ctx(
        Command::new(exe)
            .args(["sink", "/dev/log"])
            .stdin(Stdio::null())
            .spawn(),
        || "starting the /dev/log sink".to_string(),
    )?;
    let t = Instant::now();
    while !Path::new("/dev/log").exists() {
        if t.elapsed() > Duration::from_secs(5) {
            return Err("the /dev/log sink did not start".to_string());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(child)
}

/// mount(2) in this process's mount namespace.
pub(super) fn sys_mount(
    src: &Path,
    dst: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), String> {
    let c = |s: &[u8]| std::ffi::CString::new(s).expect("no NUL");
    let (src_c, dst_c) = (
        c(src.as_os_str().as_encoded_bytes()),
        c(dst.as_os_str().as_encoded_bytes()),
    );
    let fstype_c = fstype.map(|f| c(f.as_bytes()));
    let data_c = data.map(|d| c(d.as_bytes()));
    let ptr = |s: &Option<std::ffi::CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: valid C strings (or null) for the duration of the call.
    let rc = unsafe {
        libc::mount(
            src_c.as_ptr(),
            dst_c.as_ptr(),
            ptr(&fstype_c),
            flags,
            ptr(&data_c).cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "mount {} on {}: {}",
            src.display(),
            dst.display(),
            io::Error::last_os_error()
        ))
    }
}

/// Total inodes of the mailbox image: two files per mailbox of every scale up to 1M, state,
/// lock and temp files, and room to spare.
const IMAGE_INODES: u64 = 3_000_000;
/// Apparent size of the (sparse) mailbox image; it uses about 10 GB with the 1M scale.
const IMAGE_BYTES: u64 = 24 << 30;

/// Creates `WORKDIR/mailboxes.ext4`, a fresh ext4 file system (mkfs defaults, inode tables
/// written up front so that no lazy-init thread writes during the run), unless one of this
/// layout exists. Mounted privately by [`private_dev`] at `WORKDIR/mnt`. Why: creating a file
/// on a file system whose block groups near the directory are full costs hundreds of µs more
/// (measured on the test machine's root file system after the 1M pools were generated in
/// it), so results would depend on the machine's history; a dedicated file system makes the
/// state directories, created fresh at the image's top level on every run, comparable
/// between runs and machines.
pub(super) fn prepare_image(workdir: &Path) -> Result<(PathBuf, PathBuf), String> {
    ctx(mkdir_0700(workdir), || workdir.display().to_string())?;
    let img = workdir.join("mailboxes.ext4");
    let marker = workdir.join("mailboxes.ext4.layout");
    let want = format!("ext4 image v1 inodes={IMAGE_INODES} bytes={IMAGE_BYTES}\n");
    if fs::read_to_string(&marker).ok().as_deref() != Some(want.as_str()) || !img.exists() {
        eprintln!("creating the mailbox file system {} ...", img.display());
        let _ = fs::remove_file(&img);
        let file = ctx(fs::File::create(&img), || img.display().to_string())?;
        ctx(file.set_len(IMAGE_BYTES), || img.display().to_string())?;
        drop(file);
        let status = ctx(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-L", "mailmfa-bench", "-N"])
                .arg(IMAGE_INODES.to_string())
                .args(["-E", "lazy_itable_init=0,lazy_journal_init=0"])
                .arg(&img)
                .status(),
            || "mkfs.ext4 (install e2fsprogs)".to_string(),
        )?;
        if !status.success() {
            return Err(format!("mkfs.ext4 {}: {status}", img.display()));
        }
        ctx(write_file(&marker, want.as_bytes()), || {
            marker.display().to_string()
        })?;
    }
    Ok((img, workdir.join("mnt")))
}

/// `ns-exec CMD ARGS...`: runs a command inside the private /dev of a run (for profiling a
/// stack by hand with valgrind or perf, with every module's log lines received).
pub(super) fn ns_exec(args: &[String]) -> Result<(), String> {
    let (cmd, rest) = args.split_first().ok_or("ns-exec CMD ARGS...")?;
    let exe = ctx(std::env::current_exe(), || "current_exe".to_string())?;
    // The mailbox image of a default run, when there is one, mounted as during the run.
    let workdir = PathBuf::from(DEFAULT_WORKDIR);
    let image = (workdir.join("mailboxes.ext4"), workdir.join("mnt"));
    let _sink = private_dev(&exe, image.0.exists().then_some(&image))?;
    let status = ctx(Command::new(cmd).args(rest).status(), || cmd.clone())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd}: {status}"))
    }
}

/// `sink PATH`: binds a datagram socket at PATH and discards what arrives, until the parent
/// dies; counts the spool failures of issue 18 and answers the harness's asks for the count
/// ([`super::notify::tally`]).
pub(super) fn sink(args: &[String]) -> Result<(), String> {
    let path = args.first().ok_or("sink PATH")?;
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let _ = fs::remove_file(path);
    let socket = ctx(UnixDatagram::bind(path), || path.clone())?;
    let _ = fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut buf = vec![0u8; 65536];
    let mut failed = 0usize;
    loop {
        if let Ok(n) = socket.recv(&mut buf) {
            super::notify::tally(&buf[..n], &mut failed);
        }
    }
}
