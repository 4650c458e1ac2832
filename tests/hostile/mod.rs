//! Support for the hostile tests (issue 7), shared by `tests/hostile_*.rs`: prerequisites that
//! fail under CI and are loudly skipped elsewhere (through `crate::skip`); re-running one test
//! of the current binary as a child (inside a private mount namespace, or as a worker
//! process), checking that the child ran exactly that test; a private `/dev` whose `/dev/log`
//! is a datagram socket the test reads; tmpfs and read-only mounts that exist only inside that
//! namespace; and child processes that are killed when a test fails. Nothing here touches the
//! machine's /dev, /etc/pam.d or mount table: every mount is made after checking that the
//! process runs in its own mount namespace, and dies with it.
#![allow(dead_code)]

use std::ffi::CString;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Environment variable telling a re-executed test binary which part to play.
pub const ROLE: &str = "MAILMFA_HOSTILE_ROLE";
/// Role of a child that runs inside a private mount namespace.
pub const IN_NAMESPACE: &str = "namespace";
/// Role of a worker process (one login, a login loop...).
pub const WORKER: &str = "worker";

/// Whether the run is in CI, where a missing prerequisite fails the test (`crate::skip::ci`).
pub fn ci() -> bool {
    crate::skip::ci()
}

/// `true` when `ok`; otherwise `crate::skip::missing(what)` (fails the test under CI, skips
/// it loudly elsewhere) and `false`. `what` names the missing prerequisite.
pub fn prerequisite(ok: bool, what: &str) -> bool {
    crate::skip::require(ok, what)
}

/// The role this process was started for, if it is a re-executed child.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// A value passed to a child through the environment.
pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child without ${name}"))
}

/// Whether `unshare -m` works here (it needs root, which [`rerun_in_namespace`] checks first).
pub fn namespaces_work() -> bool {
    Command::new("unshare")
        .args(["-m", "--propagation", "private", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The command that re-runs test `name` (its full path inside the test binary) of this binary.
pub fn self_command(name: &str, role: &str) -> Command {
    let exe = std::env::current_exe().expect("test executable");
    let mut cmd = Command::new(exe);
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(ROLE, role);
    cmd
}

/// Re-runs test `name` inside a private mount namespace (`unshare -m`, private propagation),
/// with `env`, and fails if the child fails or did not run exactly that one test (a renamed
/// test would otherwise make the child run nothing and exit 0). Returns `false` (loudly
/// skipped, see `crate::skip`) when namespaces are not available outside CI.
pub fn rerun_in_namespace(name: &str, env: &[(&str, String)]) -> bool {
    if !crate::skip::require_root()
        || !prerequisite(namespaces_work(), "a working `unshare -m` (util-linux)")
    {
        return false;
    }
    let exe = std::env::current_exe().expect("test executable");
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private"])
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(ROLE, IN_NAMESPACE)
        .env(PARENT_NS, mount_namespace())
        .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = Killer::spawn(&mut cmd);
    let (status, stdout) = child.output();
    // The child's own output, for the parent's report (its stderr is inherited).
    print!("{stdout}");
    assert!(
        status.success(),
        "the namespaced child of {name} failed ({status}); its output is above"
    );
    assert_ran_exactly_one(name, &stdout);
    true
}

/// Checks libtest's summary in a child's stdout: it ran one test and that test passed
/// (`running 1 test` ... `test result: ok. 1 passed; 0 failed; 0 ignored; ...`).
pub fn assert_ran_exactly_one(name: &str, stdout: &str) {
    let counts = test_counts(stdout);
    assert_eq!(
        counts,
        Some((1, 1)),
        "the child re-run of {name} must run exactly that one test and pass it; \
         (tests run, passed) = {counts:?} from its output above"
    );
}

/// From libtest's output: the number in `running N test(s)` and the number passed in the
/// last `test result: ok. N passed; ...` line; `None` when either line is missing.
pub fn test_counts(stdout: &str) -> Option<(u32, u32)> {
    let running = stdout.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("running ")?;
        let (n, word) = rest.split_once(' ')?;
        matches!(word, "test" | "tests").then(|| n.parse().ok())?
    })?;
    let passed = stdout.lines().rev().find_map(|l| {
        let rest = l.trim().strip_prefix("test result: ok. ")?;
        rest.split_once(" passed")?.0.parse().ok()
    })?;
    Some((running, passed))
}

/// A child process that is killed (SIGKILL) and reaped if it is still running when dropped,
/// so a failing test never leaves one behind.
pub struct Killer(Option<Child>);

impl Killer {
    /// Spawns `cmd`.
    pub fn spawn(cmd: &mut Command) -> Killer {
        Killer(Some(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")),
        ))
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.as_ref().expect("running").id()
    }

    /// The child itself (for its pipes).
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("running")
    }

    /// Waits for the child to end.
    pub fn wait(mut self) -> std::process::ExitStatus {
        let mut child = self.0.take().expect("running");
        child.wait().expect("wait for child")
    }

    /// Waits for the child and returns its stdout (it must have been spawned with a piped
    /// stdout).
    pub fn output(mut self) -> (std::process::ExitStatus, String) {
        let child = self.0.take().expect("running");
        let out = child.wait_with_output().expect("wait for child");
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Kills the child with SIGKILL (by its own pid) and reaps it.
    pub fn kill(mut self) -> std::process::ExitStatus {
        let mut child = self.0.take().expect("running");
        let _ = child.kill();
        child.wait().expect("wait for child")
    }
}

impl Drop for Killer {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Lines a worker prints for its parent start with this.
pub const RESULT_PREFIX: &str = "HOSTILE-RESULT ";

/// The `HOSTILE-RESULT` lines of a worker's stdout, without the prefix.
pub fn results(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(RESULT_PREFIX))
        .map(str::to_string)
        .collect()
}

/// The parent's mount namespace, passed to a namespaced child.
const PARENT_NS: &str = "MAILMFA_HOSTILE_PARENT_MNT_NS";

fn mount_namespace() -> String {
    fs::read_link("/proc/self/ns/mnt")
        .expect("/proc/self/ns/mnt")
        .display()
        .to_string()
}

/// Panics unless this process was started by [`rerun_in_namespace`] and runs in a mount
/// namespace other than its parent's: the guard in front of every mount this module makes.
pub fn assert_private_mount_namespace() {
    assert_eq!(role().as_deref(), Some(IN_NAMESPACE));
    let parent = var(PARENT_NS);
    assert_ne!(
        mount_namespace(),
        parent,
        "refusing to mount: this process shares its parent's mount namespace"
    );
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("path without NUL")
}

fn sys_mount(
    source: &str,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) {
    assert_private_mount_namespace();
    let source = CString::new(source).unwrap();
    let target_c = c_path(target);
    let fstype = fstype.map(|t| CString::new(t).unwrap());
    let data = data.map(|d| CString::new(d).unwrap());
    // SAFETY: all pointers are NUL-terminated strings that outlive the call (or null).
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target_c.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |t| t.as_ptr()),
            flags,
            data.as_ref()
                .map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    };
    assert_eq!(
        rc,
        0,
        "mount {source:?} on {}: {}",
        target.display(),
        std::io::Error::last_os_error()
    );
}

/// A mount inside the private namespace, detached again when dropped.
pub struct Mount(PathBuf);

impl Mount {
    /// A size-limited tmpfs (`size_kib` KiB, root-owned, mode 0700) on `path`.
    pub fn tmpfs(path: &Path, size_kib: u64) -> Mount {
        fs::create_dir_all(path).unwrap();
        sys_mount(
            "mailmfa-test",
            path,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(&format!("size={size_kib}k,mode=0700,uid=0,gid=0")),
        );
        Mount(path.to_path_buf())
    }

    /// `path` bind-mounted onto itself read-only (as root, a read-only *directory* is still
    /// writable; a read-only *mount* is not).
    pub fn read_only(path: &Path) -> Mount {
        sys_mount(&path.display().to_string(), path, None, libc::MS_BIND, None);
        let mount = Mount(path.to_path_buf());
        sys_mount(
            "none",
            path,
            None,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
            None,
        );
        mount
    }

    /// `source` (a file or directory) bind-mounted over `target`, e.g. a copy of /etc/shadow
    /// with test accounts over the real one, seen only inside this namespace.
    pub fn bind(source: &Path, target: &Path) -> Mount {
        sys_mount(
            &source.display().to_string(),
            target,
            None,
            libc::MS_BIND,
            None,
        );
        Mount(target.to_path_buf())
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let target = c_path(&self.0);
        // SAFETY: a valid NUL-terminated path.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Fills the file system holding `dir` until a write fails with ENOSPC; returns the filler.
pub fn fill_up(dir: &Path) -> PathBuf {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut file = fs::File::create(&filler).unwrap();
    let block = vec![0x5a_u8; 4096];
    loop {
        match file.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", dir.display()),
        }
    }
    // A last byte-sized write must fail too, so the disk is really full.
    let mut last = Ok(0);
    for _ in 0..4 {
        last = file.write(b"x");
        if last.is_err() {
            break;
        }
    }
    assert!(last.is_err(), "{} did not fill up", dir.display());
    filler
}

/// Lines received on this namespace's `/dev/log`.
pub struct LogSink {
    shared: Arc<(Mutex<Vec<Vec<u8>>>, Condvar)>,
    next_marker: Mutex<u64>,
    path: PathBuf,
}

const MARKER: &[u8] = b"mailmfa-hostile-marker ";

/// Gives this private namespace a `/dev` of its own: a small tmpfs holding bind mounts of
/// null, zero, full, random, urandom and tty, `fd` and the std streams as symlinks, and
/// `/dev/log` as a Unix datagram socket read by a thread of this process. The machine's /dev
/// is not touched; everything disappears with the namespace.
pub fn private_dev_log() -> LogSink {
    assert_private_mount_namespace();
    let stage = tempfile::tempdir().unwrap();
    let newdev = stage.path().join("dev");
    fs::create_dir(&newdev).unwrap();
    sys_mount(
        "mailmfa-dev",
        &newdev,
        Some("tmpfs"),
        libc::MS_NOSUID,
        Some("size=256k,mode=0755"),
    );
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = newdev.join(node);
        fs::write(&target, b"").unwrap();
        sys_mount(&format!("/dev/{node}"), &target, None, libc::MS_BIND, None);
    }
    std::os::unix::fs::symlink("/proc/self/fd", newdev.join("fd")).unwrap();
    for (i, name) in ["stdin", "stdout", "stderr"].iter().enumerate() {
        std::os::unix::fs::symlink(format!("/proc/self/fd/{i}"), newdev.join(name)).unwrap();
    }
    sys_mount(
        &newdev.display().to_string(),
        Path::new("/dev"),
        None,
        libc::MS_MOVE,
        None,
    );
    drop(stage);
    let path = PathBuf::from("/dev/log");
    let socket = UnixDatagram::bind(&path).expect("bind /dev/log inside the namespace");
    let shared = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    let reader = Arc::clone(&shared);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let Ok(n) = socket.recv(&mut buf) else { return };
            let (lines, ready) = &*reader;
            lines.lock().unwrap().push(buf[..n].to_vec());
            ready.notify_all();
        }
    });
    LogSink {
        shared,
        next_marker: Mutex::new(0),
        path,
    }
}

impl LogSink {
    /// Every datagram received since the last call (a marker sent through the same socket
    /// guarantees that all lines sent before it were read).
    pub fn take(&self) -> Vec<Vec<u8>> {
        let mut seq = self.next_marker.lock().unwrap();
        *seq += 1;
        let marker = [MARKER, seq.to_string().as_bytes()].concat();
        let client = UnixDatagram::unbound().unwrap();
        client.send_to(&marker, &self.path).expect("send marker");
        let (lines, ready) = &*self.shared;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut guard = lines.lock().unwrap();
        loop {
            if let Some(pos) = guard.iter().position(|l| l == &marker) {
                let mut taken: Vec<Vec<u8>> = guard.drain(..=pos).collect();
                taken.pop();
                taken.retain(|l| !l.starts_with(MARKER));
                return taken;
            }
            assert!(Instant::now() < deadline, "the /dev/log reader is stuck");
            guard = ready
                .wait_timeout(guard, Duration::from_millis(100))
                .unwrap()
                .0;
        }
    }
}

/// The message of a syslog datagram: what follows `<PRI>TIMESTAMP IDENT: ` (glibc's format;
/// the timestamp's colons are never followed by a space).
pub fn message(line: &[u8]) -> &[u8] {
    line.windows(2)
        .position(|w| w == b": ")
        .map(|p| &line[p + 2..])
        .unwrap_or(line)
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The mailmfa decision lines among `lines` (their messages).
pub fn mailmfa_lines(lines: &[Vec<u8>]) -> Vec<String> {
    lines
        .iter()
        .map(|l| message(l))
        .filter(|m| contains(m, b" phase=") || m.starts_with(b"phase="))
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect()
}

/// The `key=value` fields of a mailmfa line (after its `pam_syslog` prefix); panics when the
/// line is not exactly the documented fields, each once, in order.
pub fn fields(line: &str) -> Vec<(String, String)> {
    let start = line.find("phase=").expect("a phase= field");
    let body = &line[start..];
    let (plain, detail) = match body.find(" detail=\"") {
        Some(p) => (&body[..p], Some(&body[p + 1..])),
        None => (body, None),
    };
    let mut out: Vec<(String, String)> = plain
        .split(' ')
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .unwrap_or_else(|| panic!("not key=value: {kv:?} in {line:?}"));
            (k.to_string(), v.to_string())
        })
        .collect();
    let keys: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["phase", "user", "service", "rhost", "result", "reason"],
        "fields of {line:?}"
    );
    if let Some(detail) = detail {
        let value = detail
            .strip_prefix("detail=\"")
            .and_then(|d| d.strip_suffix('"'))
            .unwrap_or_else(|| panic!("detail not quoted to the end: {line:?}"));
        assert!(!value.contains('"'), "quote inside detail: {line:?}");
        out.push(("detail".to_string(), value.to_string()));
    }
    out
}

/// The value of `key` in a mailmfa line.
pub fn field(line: &str, key: &str) -> String {
    fields(line)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// Creates a FIFO at `path`.
pub fn mkfifo(path: &Path) {
    let p = c_path(path);
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(p.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}

/// Reads a child's stdout line by line until one starts with `prefix`; returns it.
pub fn read_until(child: &mut Child, prefix: &str) -> String {
    let out = child.stdout.as_mut().expect("piped stdout");
    let mut reader = BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("child ended before printing {prefix:?}");
        }
        if line.starts_with(prefix) {
            return line.trim_end().to_string();
        }
    }
}

/// A small deterministic pseudo-random generator (xorshift), so that failures reproduce from
/// the printed seed without another dependency.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `seed` (0 is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// A seed from the clock and the pid.
    pub fn seed() -> u64 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        t ^ (u64::from(std::process::id()) << 32)
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Environment of a [`login_worker`]: the PAM confdir, service, user, password, client
/// address (empty: none) and the file whose appearance starts the login.
pub const W_CONFDIR: &str = "MAILMFA_W_CONFDIR";
/// See [`W_CONFDIR`].
pub const W_SERVICE: &str = "MAILMFA_W_SERVICE";
/// See [`W_CONFDIR`].
pub const W_USER: &str = "MAILMFA_W_USER";
/// See [`W_CONFDIR`].
pub const W_PASSWORD: &str = "MAILMFA_W_PASSWORD";
/// See [`W_CONFDIR`].
pub const W_RHOST: &str = "MAILMFA_W_RHOST";
/// See [`W_CONFDIR`].
pub const W_GO: &str = "MAILMFA_W_GO";

/// Prints `READY`, waits for the go file, runs one login through libpam and prints
/// `HOSTILE-RESULT <success> <reason> <rhost>`.
pub fn login_worker() {
    let confdir = PathBuf::from(var(W_CONFDIR));
    let rhost = var(W_RHOST);
    let go = PathBuf::from(var(W_GO));
    println!("{RESULT_PREFIX}READY");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !go.exists() {
        assert!(Instant::now() < deadline, "never got the go");
        std::thread::sleep(Duration::from_micros(500));
    }
    let r = mailmfa::pam::client::login(&mailmfa::pam::client::Request {
        service: &var(W_SERVICE),
        user: var(W_USER).as_bytes(),
        password: var(W_PASSWORD).as_bytes(),
        confdir: Some(&confdir),
        rhost: (!rhost.is_empty()).then_some(rhost.as_str()),
    })
    .expect("login starts");
    println!(
        "{RESULT_PREFIX}{} {} {}",
        r.success(),
        r.reason.as_deref().unwrap_or("-"),
        rhost
    );
}

/// One login of many run at once.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Whether it got in.
    pub success: bool,
    /// mailmfa's last reason.
    pub reason: String,
    /// The client address it came from.
    pub rhost: String,
}

/// Runs `logins` (user, password, rhost) as separate processes of this test binary (test
/// `name`, which must call [`login_worker`] in the worker role), all started first and then
/// released at once; returns their outcomes in the same order.
pub fn logins_at_once(
    name: &str,
    confdir: &Path,
    service: &str,
    logins: &[(String, String, String)],
) -> Vec<Outcome> {
    let gate = tempfile::tempdir().unwrap();
    let go = gate.path().join("go");
    let mut workers: Vec<Killer> = logins
        .iter()
        .map(|(user, password, rhost)| {
            let mut cmd = self_command(name, WORKER);
            cmd.env(W_CONFDIR, confdir)
                .env(W_SERVICE, service)
                .env(W_USER, user)
                .env(W_PASSWORD, password)
                .env(W_RHOST, rhost)
                .env(W_GO, &go)
                .stdout(Stdio::piped());
            Killer::spawn(&mut cmd)
        })
        .collect();
    // Wait until every worker is up, so the logins really overlap.
    let mut readers: Vec<BufReader<std::process::ChildStdout>> = workers
        .iter_mut()
        .map(|w| BufReader::new(w.child().stdout.take().unwrap()))
        .collect();
    for r in &mut readers {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(r.read_line(&mut line).unwrap() > 0, "a worker died early");
            if line.starts_with(&format!("{RESULT_PREFIX}READY")) {
                break;
            }
        }
    }
    fs::write(&go, b"").unwrap();
    let mut outcomes = Vec::new();
    for (w, mut r) in workers.into_iter().zip(readers) {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut r, &mut rest).unwrap();
        let status = w.wait();
        assert!(status.success(), "a worker failed: {status}\n{rest}");
        let line = results(&rest)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no result from a worker: {rest}"));
        let mut parts = line.splitn(3, ' ');
        outcomes.push(Outcome {
            success: parts.next() == Some("true"),
            reason: parts.next().unwrap_or("").to_string(),
            rhost: parts.next().unwrap_or("").to_string(),
        });
    }
    outcomes
}

/// The exact replay/reuse rules for one step used by many clients at once.
pub fn assert_replay_rules(outcomes: &[Outcome], state: &mailmfa::state::State) {
    let ok: Vec<&Outcome> = outcomes.iter().filter(|o| o.reason == "ok").collect();
    assert_eq!(
        ok.len(),
        1,
        "exactly one login wins the step: {outcomes:#?}"
    );
    let winner = &ok[0].rhost;
    for o in outcomes {
        if o.reason == "ok" {
            continue;
        }
        if &o.rhost == winner {
            assert_eq!(o.reason, "reused", "the winner's address reuses: {o:?}");
            assert!(o.success, "{o:?}");
        } else {
            assert_eq!(o.reason, "replayed", "other addresses are refused: {o:?}");
            assert!(!o.success, "{o:?}");
        }
    }
    assert_eq!(state.step_clients, vec![winner.clone()]);
    assert_eq!(state.last_client.as_deref(), Some(winner.as_str()));
    // Each other address counts one failure (the same string repeated counts once).
    let failed: std::collections::BTreeSet<&str> =
        state.failures.iter().map(|f| f.client.as_str()).collect();
    let others: std::collections::BTreeSet<&str> = outcomes
        .iter()
        .map(|o| o.rhost.as_str())
        .filter(|r| r != winner)
        .collect();
    assert_eq!(failed, others, "{state:#?}");
    assert_eq!(state.failures.len(), others.len(), "{state:#?}");
}
