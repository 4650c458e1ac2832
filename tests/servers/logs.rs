// Log capture for the server harness: a /dev/log receiver (Unix datagram socket owned by the
// test) and a reader for the servers' own log files, both with bounded waits for a line.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long `expect` (and `expect_line` in tests/integration/) waits for a line.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// Collects syslog datagrams sent to a socket path. Daemons started through `ns::namespaced`
/// see that path as their /dev/log, so `pam_syslog` lines from PAM modules land here. Each line
/// is kept raw, e.g. `<85>Nov 30 04:40:01 auth[123]: pam_warn(dovecot:auth): ...` (the `<N>` is
/// facility*8+severity: 80..87 is authpriv).
pub struct SyslogReceiver {
    path: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    /// The last marker [`SyslogReceiver::sync`] sent, and the last one the reader received.
    sent: AtomicU64,
    received: Arc<AtomicU64>,
}

/// How a marker datagram of [`SyslogReceiver::sync`] starts; the reader keeps it out of
/// `lines()`.
const MARKER: &str = "mailmfa-test-sync-marker ";

impl SyslogReceiver {
    /// Binds a datagram socket at `path` (mode 0666, so daemons that dropped root can log too)
    /// and starts the reader thread.
    pub fn bind(path: &Path) -> SyslogReceiver {
        let _ = std::fs::remove_file(path);
        let sock = UnixDatagram::bind(path)
            .unwrap_or_else(|e| panic!("bind syslog socket {}: {e}", path.display()));
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
            .expect("chmod syslog socket");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("set syslog socket timeout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let reader = {
            let (lines, stop) = (Arc::clone(&lines), Arc::clone(&stop));
            let received = Arc::clone(&received);
            std::thread::Builder::new()
                .name("syslog-receiver".into())
                .spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    while !stop.load(Ordering::Relaxed) {
                        match sock.recv(&mut buf) {
                            Ok(n) => {
                                let text = String::from_utf8_lossy(&buf[..n]);
                                let line = text.trim_end_matches(['\n', '\0']).to_string();
                                match line.strip_prefix(MARKER).map(str::parse::<u64>) {
                                    Some(Ok(n)) => received.store(n, Ordering::SeqCst),
                                    _ => lines.lock().unwrap().push(line),
                                }
                            }
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock
                                        | std::io::ErrorKind::TimedOut
                                        | std::io::ErrorKind::Interrupted
                                ) => {}
                            Err(e) => panic!("syslog receiver: {e}"),
                        }
                    }
                })
                .expect("spawn syslog reader")
        };
        SyslogReceiver {
            path: path.to_path_buf(),
            lines,
            stop,
            reader: Some(reader),
            sent: AtomicU64::new(0),
            received,
        }
    }

    /// Returns once every datagram sent to the socket before this call has been received:
    /// sends a marker datagram of its own (kept out of `lines()`) and waits until the reader
    /// has taken it. A Unix datagram socket queues datagrams in the order they were sent, so
    /// a line a daemon logged before answering the client (as PAM modules do) is in `lines()`
    /// by then, and a line that is absent was not sent. Use it before checking that a line is
    /// NOT there. Panics if the marker is not received within `DEFAULT_WAIT`.
    pub fn sync(&self) {
        let n = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        let sock = UnixDatagram::unbound().expect("marker socket");
        sock.send_to(format!("{MARKER}{n}").as_bytes(), &self.path)
            .unwrap_or_else(|e| panic!("send a marker to {}: {e}", self.path.display()));
        let got = poll_until(DEFAULT_WAIT, || {
            (self.received.load(Ordering::SeqCst) >= n).then_some(())
        });
        assert!(
            got.is_some(),
            "the syslog receiver at {} did not receive its marker within {DEFAULT_WAIT:?}",
            self.path.display()
        );
    }

    /// The socket path (what the daemons see as /dev/log).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All lines received so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The number of lines received so far: pass it to `wait_for_since` to look only at lines
    /// that arrive after this point.
    pub fn mark(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// Waits up to `timeout` for a line received after `mark` that matches `pred`.
    pub fn wait_for_since(
        &self,
        mark: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        poll_until(timeout, || {
            let lines = self.lines.lock().unwrap();
            lines.iter().skip(mark).find(|l| pred(l)).cloned()
        })
    }

    /// Waits up to `DEFAULT_WAIT` for any line (old or new) matching `pred`; panics with `what`
    /// and every captured line when none comes.
    pub fn expect(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_for_since(0, DEFAULT_WAIT, pred)
            .unwrap_or_else(|| {
                panic!(
                    "no syslog line {what} within {DEFAULT_WAIT:?}; captured:\n{}",
                    self.lines().join("\n")
                )
            })
    }
}

impl Drop for SyslogReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A server's own log file (Dovecot's `log_path`, Postfix's `maillog_file`, saslauthd's
/// stderr), read afresh on every call.
#[derive(Clone, Debug)]
pub struct LogFile {
    path: PathBuf,
}

impl LogFile {
    /// A reader for `path` (the file may not exist yet).
    pub fn new(path: PathBuf) -> LogFile {
        LogFile { path }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's lines now (empty if it does not exist yet).
    pub fn lines(&self) -> Vec<String> {
        match std::fs::read(&self.path) {
            Ok(b) => String::from_utf8_lossy(&b)
                .lines()
                .map(str::to_string)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The number of lines now: skip them to look only at lines written later.
    pub fn mark(&self) -> usize {
        self.lines().len()
    }

    /// Waits up to `DEFAULT_WAIT` for any line matching `pred`; panics with `what` and the
    /// file's tail when none comes.
    pub fn expect(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        poll_until(DEFAULT_WAIT, || self.lines().into_iter().find(|l| pred(l))).unwrap_or_else(
            || {
                panic!(
                    "no line {what} within {DEFAULT_WAIT:?}\n{}",
                    super::tail(&self.path, 60)
                )
            },
        )
    }
}

/// Calls `probe` every 10 ms until it returns Some or `timeout` has passed.
fn poll_until<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
