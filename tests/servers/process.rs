// Daemon processes for the server harness: spawned with output to files, stopped (process group
// and all) on Drop even when the test panics, and by a watchdog if the test binary itself dies.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The watchdog: blocks reading a pipe whose only writer is the test process. EOF means the test
/// binary is gone (killed, aborted, timed out) without stopping the daemon, so it stops the
/// daemon's process group itself. It ignores the terminal's signals (Ctrl-C kills the test
/// binary; the watchdog must outlive it). $1 = daemon PID (= its process group ID). Written for
/// dash, whose `kill` wants `-s SIG --` before a negative PID.
const WATCHDOG: &str = r#"trap '' INT TERM HUP
read -r _
kill -s TERM -- "-$1" "$1" 2>/dev/null
sleep 2
kill -s KILL -- "-$1" "$1" 2>/dev/null
"#;

/// How a daemon is put in a process group and stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Spawned in a new process group; stopped with SIGTERM (5 s grace, then SIGKILL).
    Graceful,
    /// Calls setsid() itself, which a process-group leader cannot do (Postfix's master), so
    /// spawned in the caller's group; stopped like `Graceful`.
    SessionLeader,
    /// Spawned in a new process group; stopped with SIGKILL at once. For saslauthd, which
    /// sometimes deadlocks in its SIGTERM/SIGCHLD handlers (seen: stuck in a futex after
    /// logging "child exited" twice) and has nothing to flush.
    KillOnStop,
}

/// A running daemon that leads its own process group, stopped (group and all) on Drop.
pub struct Daemon {
    name: String,
    kind: Kind,
    child: Child,
    output: PathBuf,
    watchdog: Option<(Child, ChildStdin)>,
}

impl Daemon {
    /// Spawns `cmd` with stdin from /dev/null and stdout+stderr appended to `output`, plus its
    /// watchdog.
    pub fn spawn(name: &str, kind: Kind, mut cmd: Command, output: &Path) -> Daemon {
        let out = File::options()
            .create(true)
            .append(true)
            .open(output)
            .unwrap_or_else(|e| panic!("open {}: {e}", output.display()));
        let err = out.try_clone().expect("dup output file");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        if kind != Kind::SessionLeader {
            cmd.process_group(0);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let mut watchdog = Command::new(super::program("sh"))
            .arg("-c")
            .arg(WATCHDOG)
            .arg("mailmfa-test-watchdog")
            .arg(child.id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn watchdog for {name}: {e}"));
        let pipe = watchdog.stdin.take().expect("watchdog stdin");
        Daemon {
            name: name.to_string(),
            kind,
            child,
            output: output.to_path_buf(),
            watchdog: Some((watchdog, pipe)),
        }
    }

    /// The PID of the spawned process (which is also its process group ID).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Err with the exit status and the output file's tail if the process has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited early ({status})\n{}",
                self.name,
                super::tail(&self.output, 40)
            )),
            Err(e) => Err(format!("{}: wait: {e}", self.name)),
        }
    }

    /// Stops the daemon: SIGTERM to its process group (SIGKILL for `Kind::KillOnStop`), up to
    /// 5 s for the leader to exit (then SIGKILL), reaps it, and SIGKILLs any group member still
    /// left. Safe to call twice.
    pub fn stop(&mut self) {
        // Retire the watchdog first, so it never signals a reused PID later.
        if let Some((mut watchdog, pipe)) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
            drop(pipe);
        }
        let pid = self.child.id() as libc::pid_t;
        let signal_all = |sig| unsafe {
            libc::kill(-pid, sig);
            libc::kill(pid, sig);
        };
        if matches!(self.child.try_wait(), Ok(None)) {
            signal_all(if self.kind == Kind::KillOnStop {
                libc::SIGKILL
            } else {
                libc::SIGTERM
            });
            // SIGTERM again every 250 ms: a child forked just as the first one was sent (Dovecot
            // starts auth workers on demand) missed it, and the master waits for it.
            let started = Instant::now();
            let mut last_term = started;
            while matches!(self.child.try_wait(), Ok(None)) {
                if started.elapsed() >= Duration::from_secs(5) {
                    eprintln!("{} did not stop within 5 s of SIGTERM: SIGKILL", self.name);
                    signal_all(libc::SIGKILL);
                    break;
                }
                if last_term.elapsed() >= Duration::from_millis(250) {
                    unsafe { libc::kill(-pid, libc::SIGTERM) };
                    last_term = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = self.child.wait();
        }
        // Children the leader did not wait for (Postfix's master does not); zombies among them
        // are reaped by init, which may take a second or two here.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a short command to completion; Err holds its exit status, stdout and stderr.
pub fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{cmd:?} failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Stops a helper process this harness started as a process-group leader (chromedriver,
/// nginx, `php -S`): `signal` to the group, up to `grace` for the leader to exit, then
/// SIGKILL to whatever of the group is left, and reaps the leader.
pub fn stop_group(child: &mut std::process::Child, signal: libc::c_int, grace: Duration) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: signals to the process group the harness created for this child.
    unsafe { libc::kill(-pid, signal) };
    let deadline = Instant::now() + grace;
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let _ = child.wait();
}
