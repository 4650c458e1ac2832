//! Owns the login benchmark of issue 5: mailmfa against pam_oath and pam_google_authenticator,
//! driven through the real libpam exactly like Dovecot, from one mailbox to a million.
//!
//! Run it through `scripts/bench.sh` (which installs the peers and builds the module), or
//! directly as root: `cargo bench --bench logins -- [run] [--quick] [options]`. It is a
//! `harness = false` target: it asserts nothing about time, it measures and writes a markdown
//! report (tables, ratios, and which targets of the issue were met).
//!
//! What one run does:
//! 1. Enters a private mount namespace with a private `/dev` whose `/dev/log` is a datagram
//!    socket read and discarded by a child process (`sink`), so that every module's syslog
//!    lines cost what they cost with a syslog daemon, and pam_google_authenticator (which opens
//!    syslog with `LOG_CONS`) never falls back to the console. The machine's `/dev` is
//!    untouched; the namespace dies with the process.
//! 2. Generates the enrolled mailboxes of each scale (1, 1k, 100k, 1M) for the three modules:
//!    mailmfa records (TOML, 0600), one pam_oath usersfile, one pam_google_authenticator
//!    secret file per mailbox. The same secret serves a mailbox in all three.
//! 3. Writes a PAM confdir (`pam_start_confdir`, no /etc/pam.d) with one service per module,
//!    password step and scale, each followed by the same password step: `pam_permit` (to
//!    isolate the second factor) or `pam_pwdfile` (the realistic case).
//! 4. Runs rounds; each round runs one small batch of every (module, password step, scale),
//!    in a rotated order, so that drift of the machine hits every stack alike. A batch has up
//!    to three timed passes: first use of a step (state written), right code reused by the same
//!    client, wrong code. Codes are computed, and state is reset, outside the timer.
//! 5. Contention: P = 1, 2, 4, 8 processes released together on one mailbox with the same code
//!    from the same client, and on distinct mailboxes; counts failed logins and lost state
//!    updates.
//! 6. Instructions per login under `valgrind --tool=callgrind` (the harness re-runs itself in
//!    `callgrind-one` mode under valgrind, with n0 and n0 + n logins, and divides the
//!    difference by n, which leaves out process start and the first mapping of the module).
//! 7. Notifications (issue 18), at the main scale: mailmfa with a `[notify]` table
//!    ([`Module::Notify`]: on, `alert_after = 1`, so that every wrong code appends a line to
//!    the spool) beside the same stack without one, and with a spool that cannot take the
//!    line (on a full file system, or refused by the module's checks). `--notify` runs only
//!    this section.
//!
//! Every login goes through [`mailmfa::pam::client::login`]: `pam_start_confdir`, PAM_RHOST,
//! `pam_authenticate` with a conversation answering the password, `pam_acct_mgmt`, `pam_end`.

use mailmfa::otp::{Algorithm, Params};
use mailmfa::pam::client::{self, Request};
use mailmfa::state::State;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// Not benches/notify.rs: Cargo would take that for a benchmark of its own.
#[path = "logins/notify.rs"]
mod notify;
use notify::{PassWatch, Spool};

/// The password every mailbox has (the design's example).
const PASSWORD: &str = "T9D3K!px";
/// PAM_RHOST of the benchmark's client (TEST-NET-1).
const RHOST: &str = "192.0.2.10";
/// A login without MFA, used to map every module once in a fresh process before timing.
const WARMUP_USER: &str = "warmup@bench.test";
/// Version of the generated mailbox files; a cached pool of another version is regenerated.
const POOL_FORMAT: &str = "mailmfa-bench pool v1";
/// Where mailboxes and services live unless `--workdir` says otherwise.
const DEFAULT_WORKDIR: &str = "/var/tmp/mailmfa-bench";
/// The TOTP step length of every generated mailbox.
const PERIOD: u64 = 30;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let result = match args.first().map(String::as_str) {
        Some("sink") => sink(&args[1..]),
        Some("worker") => worker(&args[1..]),
        Some("callgrind-one") => callgrind_one(&args[1..]),
        Some("ns-exec") => ns_exec(&args[1..]),
        Some("run") => run(&args[1..]),
        Some("--help") | Some("-h") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => run(&args),
    };
    if let Err(e) = result {
        eprintln!("logins: {e}");
        std::process::exit(1);
    }
}

const USAGE: &str = "\
usage: cargo bench --bench logins -- [run] [options]      (as root; see scripts/bench.sh)

  --quick            small run: scales 1, 1000, 100000; 3 rounds; fewer logins
  --no-million       leave out the 1,000,000-mailbox scale (it generates 2M small files)
  --scales LIST      comma-separated pool sizes (overrides the above), e.g. 1,1000
  --rounds N         interleaved rounds (default 6; quick 3; --notify 20, quick 6)
  --logins N         logins per timed pass of a batch (default 200; quick 100)
  --pass-secs S      time cap of one pass (default 1.5; quick 1.0)
  --no-callgrind     skip the valgrind measurement
  --module PATH      the PAM module (default target/release/libmailmfa.so)
  --workdir DIR      where mailboxes and services live (default /var/tmp/mailmfa-bench)
  --out FILE         markdown report (default target/bench/logins.md)
  --no-image         keep the mailboxes in WORKDIR itself instead of a fresh ext4 image
  --no-namespace     do not enter a private mount namespace (no /dev/log receiver;
                     implies --no-image; no spool on a full file system)
  --notify           only the notifications section (issue 18): the floor and mailmfa
                     with [notify] off and on (spool working, full, refused), scale
                     1000 unless --scales; no peers, no contention

other modes (used by the run itself, or for profiling by hand):
  ns-exec CMD ARGS...   run CMD with the private /dev, /dev/log receiver and mounted
                        mailbox image (/var/tmp/mailmfa-bench/mnt) of a run
  callgrind-one CONFDIR SERVICE RHOST JOB COUNT   COUNT logins of a job file, no timing
  worker CONFDIR SERVICE RHOST JOB                one contention process
  sink PATH                                       the /dev/log receiver
";

// ---------------------------------------------------------------------------------------------
// What is measured

/// A PAM stack under test (before its password step).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Module {
    /// No second factor: only the password step. What libpam itself costs.
    Floor,
    /// `pam_mailmfa.so split` + password + `pam_mailmfa.so verify`.
    Mailmfa,
    /// Debian's pam_oath: `usersfile=... digits=6 window=1`.
    Oath,
    /// Debian's pam_google_authenticator: `forward_pass secret=... user=root noskewadj`.
    Ga,
    /// pam_google_authenticator with its default time-skew search (no `noskewadj`).
    GaSkew,
    /// mailmfa with `[notify] enabled = true, alert_after = 1` (issue 18) and this spool.
    Notify(Spool),
}

impl Module {
    const ALL: [Module; 5] = [
        Module::Floor,
        Module::Mailmfa,
        Module::Oath,
        Module::Ga,
        Module::GaSkew,
    ];

    fn key(self) -> &'static str {
        match self {
            Module::Floor => "floor",
            Module::Mailmfa => "mailmfa",
            Module::Oath => "oath",
            Module::Ga => "ga",
            Module::GaSkew => "ga-skew",
            Module::Notify(spool) => spool.key(),
        }
    }

    fn title(self) -> &'static str {
        match self {
            Module::Floor => "floor (password step only)",
            Module::Mailmfa => "mailmfa (split, password, verify)",
            Module::Oath => "pam_oath (digits=6 window=1)",
            Module::Ga => "google-auth (forward_pass noskewadj)",
            Module::GaSkew => "google-auth default (skew search on)",
            Module::Notify(spool) => spool.title(),
        }
    }

    /// `pam_mailmfa.so` (split, password, verify), with or without `[notify]`.
    fn is_mailmfa(self) -> bool {
        matches!(self, Module::Mailmfa | Module::Notify(_))
    }

    /// The timed passes of this module's batch, in order.
    fn cases(self) -> &'static [Case] {
        match self {
            Module::Floor => &[Case::Login],
            Module::Mailmfa => &[Case::First, Case::Fresh, Case::Reuse, Case::Wrong],
            Module::Oath | Module::Ga => &[Case::First, Case::Reuse, Case::Wrong],
            Module::GaSkew => &[Case::Wrong],
            Module::Notify(spool) => spool.cases(),
        }
    }
}

/// One timed pass of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Case {
    /// Floor: the password alone.
    Login,
    /// First use of the current step by a returning mailbox (its state holds a step of a
    /// minute ago): the module rewrites its state. What every active mailbox does once a step.
    First,
    /// mailmfa only: the first login ever of a mailbox (no lock file, no state): both created.
    Fresh,
    /// The code already used, again, from the same client (a reconnecting mail client).
    Reuse,
    /// A wrong code after the right password.
    Wrong,
}

impl Case {
    fn title(self) -> &'static str {
        match self {
            Case::Login => "password only",
            Case::First => "first use of a new step (state written)",
            Case::Fresh => "first login ever (lock and state created)",
            Case::Reuse => "right code reused, same client",
            Case::Wrong => "wrong code",
        }
    }
}

/// The password step that follows the second factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Pw {
    /// `pam_permit`: isolates the second factor.
    Permit,
    /// `pam_pwdfile` with a SHA-512 crypt (`openssl passwd -6`) line per mailbox.
    Pwdfile,
}

impl Pw {
    fn key(self) -> &'static str {
        match self {
            Pw::Permit => "permit",
            Pw::Pwdfile => "pwdfile",
        }
    }
}

/// Samples of one (module, password step, scale, case).
#[derive(Default, Clone)]
struct Sample {
    /// Time of each login, ns.
    ns: Vec<u64>,
    /// CPU time (user + system) of this process during each login, ns: what other load on
    /// the machine changes least.
    cpu: Vec<u64>,
    /// Logins whose outcome (success, and mailmfa's reason) was what the case expects.
    as_expected: usize,
    /// mailmfa's published reasons, counted (proves which path ran).
    reasons: BTreeMap<String, usize>,
}

impl Sample {
    fn p50(&self) -> f64 {
        percentile(&self.ns, 0.50)
    }
    fn p90(&self) -> f64 {
        percentile(&self.ns, 0.90)
    }
    fn p99(&self) -> f64 {
        percentile(&self.ns, 0.99)
    }
    fn mean(&self) -> f64 {
        if self.ns.is_empty() {
            return f64::NAN;
        }
        self.ns.iter().sum::<u64>() as f64 / self.ns.len() as f64
    }
    fn per_sec(&self) -> f64 {
        1e9 / self.mean()
    }
    fn cpu_p50(&self) -> f64 {
        percentile(&self.cpu, 0.50)
    }
    fn cpu_p90(&self) -> f64 {
        percentile(&self.cpu, 0.90)
    }
}

/// The value at fraction `q` of the samples (nearest rank).
fn percentile(samples: &[u64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}

type Key = (Module, Pw, usize, Case);

// ---------------------------------------------------------------------------------------------
// Mailboxes: names, secrets, codes, files

fn user_name(i: usize) -> String {
    format!("u{i}@bench.test")
}

/// The 160-bit secret of mailbox `i`, the same for all three modules.
fn secret_of(i: usize) -> [u8; 20] {
    let digest = Sha256::digest(format!("mailmfa-bench secret {i}").as_bytes());
    let mut secret = [0u8; 20];
    secret.copy_from_slice(&digest[..20]);
    secret
}

fn base32(secret: &[u8]) -> String {
    base32::encode(base32::Alphabet::Rfc4648 { padding: false }, secret)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The six-digit code of mailbox `i` at time step `step`, computed by mailmfa's own TOTP.
fn code(i: usize, step: u64) -> String {
    let secret = secret_of(i);
    let params = Params {
        secret: &secret,
        algorithm: Algorithm::SHA1,
        digits: 6,
        period: PERIOD,
    };
    String::from_utf8(params.code(step).to_vec()).expect("digits")
}

/// A code that matches none of the steps a module accepts at `step` (±1) for mailbox `i`.
fn wrong_code(i: usize, step: u64, rng: &mut Rng) -> String {
    let valid: Vec<String> = (step - 1..=step + 1).map(|s| code(i, s)).collect();
    loop {
        let c = format!("{:06}", rng.next() % 1_000_000);
        if !valid.contains(&c) {
            return c;
        }
    }
}

/// CPU time this process has used, ns (CLOCK_PROCESS_CPUTIME_ID).
fn cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The current step, after waiting out the last 3 s of a step: everything prepared for a step
/// stays valid (window ±1) for at least 30 s after this returns.
fn fresh_step() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let into = t.as_secs_f64() % PERIOD as f64;
    if PERIOD as f64 - into < 3.0 {
        std::thread::sleep(Duration::from_secs_f64(PERIOD as f64 - into + 0.05));
    }
    unix_now() / PERIOD
}

/// xorshift64*: picks mailboxes and wrong codes.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `k` mailboxes of a pool of `n`: distinct when the pool is big enough, else the pool cycled.
fn pick(rng: &mut Rng, n: usize, k: usize) -> Vec<usize> {
    if n >= k {
        let mut seen = HashSet::with_capacity(k);
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            let i = rng.below(n);
            if seen.insert(i) {
                out.push(i);
            }
        }
        out
    } else {
        (0..k).map(|j| j % n).collect()
    }
}

fn write_file(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

fn mkdir_0700(path: &Path) -> io::Result<()> {
    fs::create_dir_all(path)?;
    fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o700))
}

fn ctx<T>(r: io::Result<T>, what: impl FnOnce() -> String) -> Result<T, String> {
    r.map_err(|e| format!("{}: {e}", what()))
}

/// The mailmfa record of mailbox `i`, in the format of `src/record.rs`.
fn record_text(i: usize, created: u64) -> String {
    format!(
        "version = 1\nsecret = \"{}\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\ncreated = {created}\n",
        base32(&secret_of(i))
    )
}

/// The pam_google_authenticator secret file of mailbox `i`.
fn ga_text(i: usize, disallow_reuse: bool) -> String {
    format!(
        "{}\n\" TOTP_AUTH\n\" WINDOW_SIZE 3\n{}",
        base32(&secret_of(i)),
        if disallow_reuse {
            "\" DISALLOW_REUSE\n"
        } else {
            ""
        }
    )
}

/// The pam_oath usersfile line of mailbox `i` (`+`: the password is checked by the next module).
fn oath_line(i: usize) -> String {
    format!("HOTP/T30/6 {} + {}\n", user_name(i), hex(&secret_of(i)))
}

/// The enrolled mailboxes of one scale, for all three modules.
struct Pool {
    n: usize,
    dir: PathBuf,
    /// mailmfa's state directory: recreated at every run, outside `dir` (see `--no-image`).
    state: PathBuf,
    /// pam_oath's directory (usersfile, its lock and temp files), recreated at every run.
    oath_dir: PathBuf,
    /// The spools of the [`Module::Notify`] stacks (one directory each), made by
    /// [`Pool::make_spools`] at every run.
    spools: PathBuf,
}

impl Pool {
    fn mm(&self) -> PathBuf {
        self.dir.join("mailmfa")
    }
    fn mm_config(&self) -> PathBuf {
        self.mm().join("mailmfa.toml")
    }
    /// The `config=` of a mailmfa stack: `mailmfa.toml`, or that plus a `[notify]` table.
    fn config_of(&self, module: Module) -> PathBuf {
        match module {
            Module::Notify(spool) => self.mm().join(format!("{}.toml", spool.key())),
            _ => self.mm_config(),
        }
    }
    fn mm_users(&self) -> PathBuf {
        self.mm().join("users")
    }
    fn mm_state(&self) -> PathBuf {
        self.state.clone()
    }
    fn ga(&self) -> PathBuf {
        self.dir.join("google-auth")
    }
    fn oath(&self) -> PathBuf {
        self.oath_dir.join("oath.users")
    }
    fn state_file(&self, i: usize) -> PathBuf {
        self.mm_state().join(format!("{}.state", user_name(i)))
    }

    /// Generates what is missing: records and secret files are cached across runs (a marker
    /// names the format and count); the state directory and the usersfile start fresh.
    fn generate(&self) -> Result<Duration, String> {
        let t = Instant::now();
        let marker = self.dir.join(".complete");
        let want = format!("{POOL_FORMAT} {}\n", self.n);
        if fs::read_to_string(&marker).ok().as_deref() != Some(want.as_str()) {
            let _ = fs::remove_dir_all(&self.dir);
            for d in [self.dir.clone(), self.mm(), self.mm_users(), self.ga()] {
                ctx(mkdir_0700(&d), || d.display().to_string())?;
            }
            let threads = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(2, 8)
                * 2;
            let created = unix_now();
            let failed = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        s.spawn(move || -> io::Result<()> {
                            let (users, ga) = (self.mm_users(), self.ga());
                            for i in (t..self.n).step_by(threads) {
                                let name = user_name(i);
                                write_file(
                                    &users.join(format!("{name}.toml")),
                                    record_text(i, created).as_bytes(),
                                )?;
                                write_file(&ga.join(&name), ga_text(i, false).as_bytes())?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().expect("generator thread").err())
                    .next()
            });
            if let Some(e) = failed {
                return Err(format!("generating {}: {e}", self.dir.display()));
            }
            ctx(write_file(&marker, want.as_bytes()), || {
                marker.display().to_string()
            })?;
        }
        for d in [self.mm_state(), self.oath_dir.clone()] {
            let _ = fs::remove_dir_all(&d);
            ctx(mkdir_0700(&d), || d.display().to_string())?;
        }
        let config = format!(
            "record_dir = \"{}\"\nstate_dir = \"{}\"\n",
            self.mm_users().display(),
            self.mm_state().display()
        );
        ctx(write_file(&self.mm_config(), config.as_bytes()), || {
            self.mm_config().display().to_string()
        })?;
        self.write_notify_configs(&config)?;
        self.reset_oath()?;
        Ok(t.elapsed())
    }

    /// Rewrites the pam_oath usersfile: every mailbox unused (no last-OTP time).
    fn reset_oath(&self) -> Result<(), String> {
        let mut text = String::with_capacity(self.n * 80);
        for i in 0..self.n {
            text.push_str(&oath_line(i));
        }
        let tmp = self.oath_dir.join(".oath.users.tmp");
        ctx(write_file(&tmp, text.as_bytes()), || {
            tmp.display().to_string()
        })?;
        ctx(fs::rename(&tmp, self.oath()), || {
            self.oath().display().to_string()
        })
    }

    /// Makes mailbox `i` one that never logged in: no mailmfa state, no lock file.
    fn forget_mailmfa(&self, i: usize) {
        let _ = fs::remove_file(self.state_file(i));
        let _ = fs::remove_file(self.mm_state().join(format!("{}.lock", user_name(i))));
    }

    /// Makes mailbox `i` one that logged in from this client two steps before `step`: its
    /// lock file exists and its state (in the format of `src/state.rs`) holds that older step,
    /// so the next right code is a first use that rewrites the state.
    fn returning_mailmfa(&self, i: usize, step: u64) -> Result<(), String> {
        let lock = self.mm_state().join(format!("{}.lock", user_name(i)));
        if !lock.exists() {
            ctx(write_file(&lock, b""), || lock.display().to_string())?;
        }
        let text = format!(
            "version = 1\nlast_step = {}\nstep_clients = [\"{RHOST}\"]\nlast_success = {}\nlast_client = \"{RHOST}\"\n",
            step - 2,
            (step - 2) * PERIOD + 5
        );
        let path = self.state_file(i);
        ctx(write_file(&path, text.as_bytes()), || {
            path.display().to_string()
        })
    }

    /// Rewrites mailbox `i`'s google-auth file, with or without `DISALLOW_REUSE`.
    fn reset_ga(&self, i: usize, disallow_reuse: bool) -> Result<(), String> {
        let path = self.ga().join(user_name(i));
        ctx(
            write_file(&path, ga_text(i, disallow_reuse).as_bytes()),
            || path.display().to_string(),
        )
    }

    fn read_state(&self, i: usize) -> Option<State> {
        fs::read_to_string(self.state_file(i))
            .ok()
            .and_then(|t| State::parse(&t).ok())
    }
}

// ---------------------------------------------------------------------------------------------
// The world: confdir, services, pools

struct World {
    work: PathBuf,
    confdir: PathBuf,
    module_so: PathBuf,
    pwdfile: PathBuf,
    exe: PathBuf,
    pools: BTreeMap<usize, Pool>,
    main_scale: usize,
    /// The [`Module::Notify`] stacks this run measures (at the main scale).
    notify: Vec<Module>,
    /// Whether `/dev/log` is the run's receiver (which counts `notify_spool_failed` lines).
    sink: bool,
}

impl World {
    fn pool(&self, n: usize) -> &Pool {
        &self.pools[&n]
    }

    fn service(module: Module, pw: Pw, scale: usize) -> String {
        format!("{}-{}-{scale}", module.key(), pw.key())
    }

    /// The password step line (`use_first_pass` after a module that set PAM_AUTHTOK).
    fn pw_line(&self, pw: Pw, first_pass: bool) -> String {
        match pw {
            Pw::Permit => "auth requisite pam_permit.so\n".to_string(),
            Pw::Pwdfile => format!(
                "auth requisite pam_pwdfile.so pwdfile={} nodelay{}\n",
                self.pwdfile.display(),
                if first_pass { " use_first_pass" } else { "" }
            ),
        }
    }

    /// The text of one service file.
    fn stack(&self, module: Module, pw: Pw, pool: &Pool, extra: &str) -> String {
        let mm = |phase: &str| {
            format!(
                "auth requisite {} {phase} config={}{extra}\n",
                self.module_so.display(),
                pool.config_of(module).display()
            )
        };
        let ga = |skew: bool| {
            format!(
                "auth requisite pam_google_authenticator.so forward_pass secret={}/${{USER}} user=root{}\n",
                pool.ga().display(),
                if skew { "" } else { " noskewadj" }
            )
        };
        let auth = match module {
            Module::Floor => self.pw_line(pw, false),
            Module::Mailmfa | Module::Notify(_) => {
                mm("split") + &self.pw_line(pw, true) + &mm("verify")
            }
            Module::Oath => {
                format!(
                    "auth requisite pam_oath.so usersfile={} digits=6 window=1\n",
                    pool.oath().display()
                ) + &self.pw_line(pw, true)
            }
            Module::Ga => ga(false) + &self.pw_line(pw, true),
            Module::GaSkew => ga(true) + &self.pw_line(pw, true),
        };
        format!("# generated by benches/logins.rs\n{auth}account required pam_permit.so\n")
    }

    fn write_services(&self) -> Result<(), String> {
        let _ = fs::remove_dir_all(&self.confdir);
        ctx(mkdir_0700(&self.confdir), || {
            self.confdir.display().to_string()
        })?;
        let mut files = vec![(
            "other".to_string(),
            "auth required pam_deny.so\naccount required pam_deny.so\n".to_string(),
        )];
        for pool in self.pools.values() {
            let notify = if pool.n == self.main_scale {
                &self.notify[..]
            } else {
                &[]
            };
            for &module in Module::ALL.iter().chain(notify) {
                for pw in [Pw::Permit, Pw::Pwdfile] {
                    files.push((
                        World::service(module, pw, pool.n),
                        self.stack(module, pw, pool, ""),
                    ));
                }
            }
        }
        // The lost-update check counts every failure: no throttle may hide one.
        let main = self.pool(self.main_scale);
        files.push((
            "mailmfa-count-all".to_string(),
            self.stack(
                Module::Mailmfa,
                Pw::Permit,
                main,
                " max_failures=200 max_failures_user=200",
            ),
        ));
        for (name, text) in files {
            let path = self.confdir.join(name);
            ctx(write_file(&path, text.as_bytes()), || {
                path.display().to_string()
            })?;
        }
        Ok(())
    }

    /// The pam_pwdfile file: every mailbox of the main scale, one SHA-512 crypt of PASSWORD.
    fn write_pwdfile(&self) -> Result<(), String> {
        let mut child = ctx(
            Command::new("openssl")
                .args(["passwd", "-6", "-stdin"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn(),
            || "openssl passwd -6 (install openssl)".to_string(),
        )?;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(PASSWORD.as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || !hash.starts_with("$6$") {
            return Err("openssl passwd -6 failed".to_string());
        }
        let mut text = format!("{WARMUP_USER}:{hash}\n");
        for i in 0..self.main_scale {
            let _ = writeln!(text, "{}:{hash}", user_name(i));
        }
        ctx(write_file(&self.pwdfile, text.as_bytes()), || {
            self.pwdfile.display().to_string()
        })
    }

    fn request<'a>(&'a self, service: &'a str, user: &'a str, password: &'a str) -> Request<'a> {
        Request {
            service,
            user: user.as_bytes(),
            password: password.as_bytes(),
            confdir: Some(&self.confdir),
            rhost: Some(RHOST),
        }
    }

    /// One untimed login; whether it succeeded.
    fn login(&self, service: &str, user: &str, password: &str) -> bool {
        self.login_reason(service, user, password).0
    }

    /// One untimed login; whether it succeeded, and the reason mailmfa published.
    fn login_reason(&self, service: &str, user: &str, password: &str) -> (bool, Option<String>) {
        client::login(&self.request(service, user, password))
            .map(|r| (r.success(), r.reason))
            .unwrap_or((false, None))
    }
}

// ---------------------------------------------------------------------------------------------
// Timed passes

/// One login to time: who, with what, and what must come out.
struct Attempt {
    user: String,
    password: String,
    /// The mailbox's index, for the untimed reset before the login.
    index: usize,
    expect_success: bool,
    /// mailmfa's expected `MAILMFA_REASON`.
    expect_reason: Option<&'static str>,
}

/// Runs `attempts` until done or `cap` is spent (at least one), calling `before` untimed in
/// front of each login, and adds the timings to `out`.
fn timed_pass(
    world: &World,
    service: &str,
    attempts: &[Attempt],
    cap: Duration,
    out: &mut Sample,
    before: &mut dyn FnMut(&Attempt) -> Result<(), String>,
) -> Result<usize, String> {
    let start = Instant::now();
    let mut done = 0;
    for a in attempts {
        if done > 0 && start.elapsed() > cap {
            break;
        }
        before(a)?;
        let request = world.request(service, &a.user, &a.password);
        let cpu = cpu_ns();
        let t = Instant::now();
        let response = client::login(&request);
        let ns = t.elapsed().as_nanos() as u64;
        let cpu = cpu_ns() - cpu;
        let response = response.map_err(|e| e.to_string())?;
        out.ns.push(ns);
        out.cpu.push(cpu);
        let reason = response.reason.clone().unwrap_or_default();
        let ok = response.success() == a.expect_success
            && a.expect_reason.is_none_or(|want| want == reason);
        out.as_expected += usize::from(ok);
        if !reason.is_empty() {
            *out.reasons.entry(reason).or_default() += 1;
        }
        done += 1;
    }
    Ok(done)
}

/// Batch sizes and time caps.
#[derive(Clone, Copy)]
struct Budget {
    logins: usize,
    cap: Duration,
}

/// One batch of `module` with password step `pw` on the pool of `scale`: its timed passes.
fn batch(
    world: &World,
    module: Module,
    pw: Pw,
    scale: usize,
    budget: Budget,
    rng: &mut Rng,
    results: &mut BTreeMap<Key, Sample>,
) -> Result<(), String> {
    let pool = world.pool(scale);
    let service = World::service(module, pw, scale);
    let picks = pick(rng, pool.n, budget.logins);
    let step = fresh_step();
    let attempt =
        |i: usize, code: Option<String>, ok: bool, reason: Option<&'static str>| Attempt {
            user: user_name(i),
            password: format!("{PASSWORD}{}", code.unwrap_or_default()),
            index: i,
            expect_success: ok,
            expect_reason: if module.is_mailmfa() { reason } else { None },
        };
    let right: Vec<Attempt> = picks
        .iter()
        .map(|&i| attempt(i, Some(code(i, step)), true, Some("ok")))
        .collect();
    // State is prepared outside the timer and then settled (syncfs), as it is in production
    // where a mailbox's files were written a step or more ago and are long on disk: a file
    // written just before a login would make the module's rename over it pay for the
    // pending write. With a pool smaller than the batch the same mailbox repeats, so it is
    // prepared (and settled) before each login instead.
    // The picked mailboxes' files are read once, untimed, so that every scale is measured
    // with them in the page cache, as for mailboxes that log in all day. (Cold, a login also
    // waits for a disk read: in one run straight after mounting the image, mailmfa's first
    // use at 1M mailboxes took 691 µs p50 instead of ~350 µs.)
    for &i in &picks {
        let name = user_name(i);
        let _ = fs::read(pool.mm_users().join(format!("{name}.toml")));
        let _ = fs::read(pool.ga().join(&name));
    }
    let distinct = pool.n >= picks.len();
    let prepare = |f: &dyn Fn(usize) -> Result<(), String>| -> Result<(), String> {
        if distinct {
            for &i in &picks {
                f(i)?;
            }
            settle(&pool.dir)?;
        }
        Ok(())
    };
    let each = |f: &dyn Fn(usize) -> Result<(), String>, i: usize| -> Result<(), String> {
        if !distinct {
            f(i)?;
            settle(&pool.dir)?;
        }
        Ok(())
    };
    let returning = |i: usize| pool.returning_mailmfa(i, step);
    let forget = |i: usize| {
        pool.forget_mailmfa(i);
        Ok(())
    };
    let ga_once = |i: usize| pool.reset_ga(i, true);
    let oath_fresh = |_: usize| pool.reset_oath();
    let mut first_done = 0;
    for &case in module.cases() {
        let sample = results.entry((module, pw, scale, case)).or_default();
        let watch = PassWatch::start(world, pool, module)?;
        match (module, case) {
            (Module::Floor, _) => {
                let plain: Vec<Attempt> = picks
                    .iter()
                    .map(|&i| attempt(i, None, true, None))
                    .collect();
                timed_pass(world, &service, &plain, budget.cap, sample, &mut |_| Ok(()))?;
            }
            (Module::Mailmfa | Module::Notify(_), Case::First) => {
                prepare(&returning)?;
                first_done = timed_pass(world, &service, &right, budget.cap, sample, &mut |a| {
                    each(&returning, a.index)
                })?;
            }
            (Module::Mailmfa, Case::Fresh) => {
                prepare(&forget)?;
                let done = timed_pass(world, &service, &right, budget.cap, sample, &mut |a| {
                    each(&forget, a.index)
                })?;
                first_done = first_done.max(done);
            }
            (Module::Mailmfa | Module::Notify(_), Case::Reuse) => {
                // Mailboxes the first passes did not reach (their cap) log in once, untimed.
                let seen: HashSet<usize> = right[..first_done].iter().map(|a| a.index).collect();
                for a in right[first_done..]
                    .iter()
                    .filter(|a| !seen.contains(&a.index))
                {
                    pool.returning_mailmfa(a.index, step)?;
                    world.login(&service, &a.user, &a.password);
                }
                settle(&pool.dir)?;
                let reuse: Vec<Attempt> = picks
                    .iter()
                    .map(|&i| attempt(i, Some(code(i, step)), true, Some("reused")))
                    .collect();
                timed_pass(world, &service, &reuse, budget.cap, sample, &mut |_| Ok(()))?;
            }
            (Module::Oath, Case::First) => {
                // One usersfile for all mailboxes: reset once when the mailboxes are distinct.
                pool.reset_oath()?;
                settle(&pool.dir)?;
                first_done = timed_pass(world, &service, &right, budget.cap, sample, &mut |a| {
                    each(&oath_fresh, a.index)
                })?;
            }
            (Module::Oath, Case::Reuse) => {
                // pam_oath refuses a code it has seen: the reconnecting client is locked out.
                let replays: Vec<Attempt> = right[..first_done.max(1)]
                    .iter()
                    .map(|a| attempt(a.index, Some(code(a.index, step)), false, None))
                    .collect();
                timed_pass(world, &service, &replays, budget.cap, sample, &mut |_| {
                    Ok(())
                })?;
            }
            (Module::Ga, Case::First) => {
                prepare(&ga_once)?;
                timed_pass(world, &service, &right, budget.cap, sample, &mut |a| {
                    each(&ga_once, a.index)
                })?;
            }
            (Module::Ga, Case::Reuse) => {
                let distinct: HashSet<usize> = picks.iter().copied().collect();
                for &i in &distinct {
                    pool.reset_ga(i, false)?;
                }
                settle(&pool.dir)?;
                let reuse: Vec<Attempt> = picks
                    .iter()
                    .map(|&i| attempt(i, Some(code(i, step)), true, None))
                    .collect();
                timed_pass(world, &service, &reuse, budget.cap, sample, &mut |_| Ok(()))?;
            }
            (_, Case::Wrong) => {
                // mailmfa: a returning mailbox without recent failures each time, so that the
                // failure is recorded (state written) and the throttle never answers in place
                // of the code check.
                let wrong: Vec<Attempt> = picks
                    .iter()
                    .map(|&i| attempt(i, Some(wrong_code(i, step, rng)), false, Some("bad_code")))
                    .collect();
                let mm = module.is_mailmfa();
                if mm {
                    prepare(&returning)?;
                }
                timed_pass(world, &service, &wrong, budget.cap, sample, &mut |a| {
                    if mm {
                        each(&returning, a.index)?;
                    }
                    Ok(())
                })?;
            }
            (m, c) => return Err(format!("no pass for {m:?} {c:?}")),
        }
        if let Some(watch) = watch {
            watch.finish(world, pool, sample)?;
        }
    }
    Ok(())
}

/// Writes every dirty page of the file system holding `path` to disk (syncfs), outside the
/// timer.
fn settle(path: &Path) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let dir = ctx(fs::File::open(path), || path.display().to_string())?;
    // SAFETY: syncfs on an open descriptor.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(format!(
            "syncfs {}: {}",
            path.display(),
            io::Error::last_os_error()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Private /dev with a /dev/log receiver

/// Moves this process into a private mount namespace whose /dev holds the machine's device
/// nodes (bind mounts) and a fresh /dev/log socket read by a `sink` child. Must run while the
/// process has one thread.
fn private_dev(exe: &Path, image: Option<&(PathBuf, PathBuf)>) -> Result<Child, String> {
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
fn sys_mount(
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
fn prepare_image(workdir: &Path) -> Result<(PathBuf, PathBuf), String> {
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
fn ns_exec(args: &[String]) -> Result<(), String> {
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
/// ([`notify::tally`]).
fn sink(args: &[String]) -> Result<(), String> {
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
            notify::tally(&buf[..n], &mut failed);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Worker processes (contention) and callgrind runs

/// A job file: one `user<TAB>password` line per login.
fn write_job(path: &Path, logins: &[(String, String)]) -> Result<(), String> {
    let text: String = logins.iter().map(|(u, p)| format!("{u}\t{p}\n")).collect();
    ctx(write_file(path, text.as_bytes()), || {
        path.display().to_string()
    })
}

fn read_job(path: &str) -> Result<Vec<(String, String)>, String> {
    let text = ctx(fs::read_to_string(path), || path.to_string())?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(u, p)| (u.to_string(), p.to_string()))
        .collect())
}

/// `worker CONFDIR SERVICE RHOST JOB`: maps the stack with one untimed login of a mailbox
/// without MFA, says `ready`, waits for a byte on stdin, runs the job's logins, and prints
/// `ok N fail M`, then the latencies in ns.
fn worker(args: &[String]) -> Result<(), String> {
    let [confdir, service, rhost, job] = args else {
        return Err("worker CONFDIR SERVICE RHOST JOB".to_string());
    };
    let logins = read_job(job)?;
    let confdir = PathBuf::from(confdir);
    let request = |user: &'_ str, password: &'_ str| -> bool {
        client::login(&Request {
            service,
            user: user.as_bytes(),
            password: password.as_bytes(),
            confdir: Some(&confdir),
            rhost: Some(rhost),
        })
        .map(|r| r.success())
        .unwrap_or(false)
    };
    request(WARMUP_USER, PASSWORD);
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "ready")
        .and_then(|_| stdout.flush())
        .map_err(|e| e.to_string())?;
    let mut go = [0u8; 1];
    let _ = io::stdin().read(&mut go);
    let mut ns = Vec::with_capacity(logins.len());
    let mut ok = 0;
    for (user, password) in &logins {
        let t = Instant::now();
        let success = request(user, password);
        ns.push(t.elapsed().as_nanos() as u64);
        ok += usize::from(success);
    }
    let lat: Vec<String> = ns.iter().map(u64::to_string).collect();
    writeln!(
        stdout,
        "ok {ok} fail {}\n{}",
        logins.len() - ok,
        lat.join(" ")
    )
    .map_err(|e| e.to_string())
}

/// `callgrind-one CONFDIR SERVICE RHOST JOB COUNT`: runs the job's first COUNT logins and
/// prints how many succeeded (run under valgrind by the main process).
fn callgrind_one(args: &[String]) -> Result<(), String> {
    let [confdir, service, rhost, job, count] = args else {
        return Err("callgrind-one CONFDIR SERVICE RHOST JOB COUNT".to_string());
    };
    let count: usize = count.parse().map_err(|_| "COUNT must be a number")?;
    let logins = read_job(job)?;
    let confdir = PathBuf::from(confdir);
    let mut ok = 0;
    for (user, password) in logins.iter().take(count) {
        let r = client::login(&Request {
            service,
            user: user.as_bytes(),
            password: password.as_bytes(),
            confdir: Some(&confdir),
            rhost: Some(rhost),
        });
        ok += usize::from(r.map(|r| r.success()).unwrap_or(false));
    }
    println!("ok {ok} of {count}");
    Ok(())
}

/// What P processes released together did.
struct Contention {
    logins: usize,
    failed: usize,
    wall: Duration,
    sample: Sample,
}

/// Runs one worker per job, all released at once.
fn contend(
    world: &World,
    service: &str,
    jobs: &[(String, Vec<(String, String)>)],
) -> Result<Contention, String> {
    let dir = world.work.join("jobs");
    ctx(fs::create_dir_all(&dir), || dir.display().to_string())?;
    let mut children = Vec::new();
    for (n, (rhost, logins)) in jobs.iter().enumerate() {
        let job = dir.join(format!("job{n}"));
        write_job(&job, logins)?;
        let child = ctx(
            Command::new(&world.exe)
                .arg("worker")
                .arg(&world.confdir)
                .args([service, rhost])
                .arg(&job)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn(),
            || "starting a worker".to_string(),
        )?;
        children.push(child);
    }
    let mut readers = Vec::new();
    for child in &mut children {
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        if line.trim() != "ready" {
            return Err(format!("a worker failed to start: {line:?}"));
        }
        readers.push(reader);
    }
    let t = Instant::now();
    for child in &mut children {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"g").map_err(|e| e.to_string())?;
    }
    let mut result = Contention {
        logins: 0,
        failed: 0,
        wall: Duration::ZERO,
        sample: Sample::default(),
    };
    let mut outputs = Vec::new();
    for (child, mut reader) in children.iter_mut().zip(readers) {
        let mut text = String::new();
        reader
            .read_to_string(&mut text)
            .map_err(|e| e.to_string())?;
        child.wait().map_err(|e| e.to_string())?;
        outputs.push(text);
    }
    result.wall = t.elapsed();
    for text in outputs {
        let mut lines = text.lines();
        let head: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
        let (Some(ok), Some(fail)) = (head.get(1), head.get(3)) else {
            return Err(format!("a worker said {text:?}"));
        };
        let ok: usize = ok.parse().map_err(|_| "worker output")?;
        let fail: usize = fail.parse().map_err(|_| "worker output")?;
        result.logins += ok + fail;
        result.failed += fail;
        result.sample.as_expected += ok;
        result.sample.ns.extend(
            lines
                .next()
                .unwrap_or("")
                .split_whitespace()
                .filter_map(|n| n.parse::<u64>().ok()),
        );
    }
    Ok(result)
}

/// One contention scenario's row.
struct ContentionRow {
    scenario: String,
    p: usize,
    run: Contention,
    /// Lost state updates, when the scenario can count them.
    lost: Option<usize>,
    note: String,
}

fn contention(world: &World, quick: bool) -> Result<Vec<ContentionRow>, String> {
    let main = world.pool(world.main_scale);
    let per_worker = if quick { 100 } else { 300 };
    let distinct_each = if quick { 25 } else { 50 };
    let mut rows = Vec::new();
    let mut rng = Rng::new();
    for p in [1usize, 2, 4, 8] {
        // 1. One mailbox, the same code, the same client: the race on the first use included.
        let step = fresh_step();
        let u = 0;
        main.returning_mailmfa(u, step)?;
        let password = format!("{PASSWORD}{}", code(u, step));
        let jobs: Vec<_> = (0..p)
            .map(|_| {
                (
                    RHOST.to_string(),
                    vec![(user_name(u), password.clone()); per_worker],
                )
            })
            .collect();
        settle(&main.dir)?;
        let run = contend(
            world,
            &World::service(Module::Mailmfa, Pw::Permit, main.n),
            &jobs,
        )?;
        let state = main.read_state(u);
        let consistent = state.as_ref().is_some_and(|s| {
            s.last_step == Some(step)
                && s.step_clients == [RHOST.to_string()]
                && s.failures.is_empty()
        });
        rows.push(ContentionRow {
            scenario: "mailmfa: one mailbox, same code, same client".to_string(),
            p,
            run,
            lost: Some(usize::from(!consistent)),
            note: "state after: last_step = the code's step, one client, no failure".to_string(),
        });

        // 2. Lost updates: one mailbox, each process its own client and its own wrong codes;
        //    every failure must be in the state afterwards.
        let step = fresh_step();
        main.forget_mailmfa(u);
        let valid: Vec<String> = (step - 1..=step + 1).map(|s| code(u, s)).collect();
        // At most 160 failures in all: under the module's cap of 200 (MAX_FAILURES_LIMIT), so
        // that the throttle never answers and every failure must be recorded.
        let wrongs_each = if quick { 10 } else { 20 };
        let mut next = rng.below(1_000_000) as u64;
        let jobs: Vec<_> = (0..p)
            .map(|w| {
                let logins = (0..wrongs_each)
                    .map(|_| loop {
                        next = (next + 7919) % 1_000_000;
                        let c = format!("{next:06}");
                        if !valid.contains(&c) {
                            break (user_name(u), format!("{PASSWORD}{c}"));
                        }
                    })
                    .collect();
                (format!("192.0.2.{}", 100 + w), logins)
            })
            .collect();
        settle(&main.dir)?;
        let run = contend(world, "mailmfa-count-all", &jobs)?;
        let recorded = main.read_state(u).map_or(0, |s| s.failures.len());
        let expected = p * wrongs_each;
        rows.push(ContentionRow {
            scenario: "mailmfa: one mailbox, each process its own client and wrong codes"
                .to_string(),
            p,
            run,
            lost: Some(expected.saturating_sub(recorded)),
            note: format!(
                "every login fails by design; {recorded} of {expected} failures recorded"
            ),
        });
        main.forget_mailmfa(u);

        // 3. Distinct mailboxes, first use each (state written), mailmfa and the peers.
        for module in [Module::Mailmfa, Module::Oath, Module::Ga] {
            let step = fresh_step();
            let count = if module == Module::Oath {
                distinct_each.min(20)
            } else {
                distinct_each
            };
            let users: Vec<Vec<usize>> = (0..p)
                .map(|w| (0..count).map(|j| 1 + w * count + j).collect())
                .collect();
            match module {
                Module::Oath => main.reset_oath()?,
                _ => {
                    for &i in users.iter().flatten() {
                        main.returning_mailmfa(i, step)?;
                        main.reset_ga(i, true)?;
                    }
                }
            }
            let jobs: Vec<_> = users
                .iter()
                .map(|us| {
                    let logins = us
                        .iter()
                        .map(|&i| (user_name(i), format!("{PASSWORD}{}", code(i, step))))
                        .collect();
                    (RHOST.to_string(), logins)
                })
                .collect();
            settle(&main.dir)?;
            let run = contend(world, &World::service(module, Pw::Permit, main.n), &jobs)?;
            let lost = match module {
                Module::Mailmfa => users
                    .iter()
                    .flatten()
                    .filter(|&&i| main.read_state(i).is_none_or(|s| s.last_step != Some(step)))
                    .count(),
                Module::Ga => users
                    .iter()
                    .flatten()
                    .filter(|&&i| {
                        let text =
                            fs::read_to_string(main.ga().join(user_name(i))).unwrap_or_default();
                        !text
                            .lines()
                            .any(|l| l.starts_with("\" DISALLOW_REUSE ") && l.len() > 17)
                    })
                    .count(),
                _ => {
                    let text = fs::read_to_string(main.oath()).unwrap_or_default();
                    let used: HashSet<&str> = text
                        .lines()
                        .filter(|l| l.split_whitespace().count() > 4)
                        .filter_map(|l| l.split_whitespace().nth(1))
                        .collect();
                    users
                        .iter()
                        .flatten()
                        .filter(|&&i| !used.contains(user_name(i).as_str()))
                        .count()
                }
            };
            // A login that failed wrote nothing: only successes can be lost.
            let lost = lost.saturating_sub(run.failed);
            let name = match module {
                Module::Mailmfa => "mailmfa",
                Module::Oath => "pam_oath",
                _ => "google-auth (DISALLOW_REUSE)",
            };
            rows.push(ContentionRow {
                scenario: format!("{name}: distinct mailboxes, first use each"),
                p,
                run,
                lost: Some(lost),
                note: "lost = successful logins whose use is missing from the state".to_string(),
            });
        }

        // 4. google-auth, one mailbox, same code, same client (no DISALLOW_REUSE: no state).
        let step = fresh_step();
        main.reset_ga(u, false)?;
        let password = format!("{PASSWORD}{}", code(u, step));
        let jobs: Vec<_> = (0..p)
            .map(|_| {
                (
                    RHOST.to_string(),
                    vec![(user_name(u), password.clone()); per_worker],
                )
            })
            .collect();
        settle(&main.dir)?;
        let run = contend(
            world,
            &World::service(Module::Ga, Pw::Permit, main.n),
            &jobs,
        )?;
        rows.push(ContentionRow {
            scenario: "google-auth: one mailbox, same code, same client".to_string(),
            p,
            run,
            lost: None,
            note: "without DISALLOW_REUSE it keeps no state".to_string(),
        });
    }
    Ok(rows)
}

/// Instructions per login of one (module, case) under callgrind.
struct CgRow {
    module: Module,
    case: Case,
    per_login: f64,
    n: usize,
    ok: String,
}

/// `notify_only`: the floor, mailmfa and the notify stacks only.
fn callgrind(world: &World, quick: bool, notify_only: bool) -> Result<Vec<CgRow>, String> {
    let main = world.pool(world.main_scale);
    let dir = world.work.join("callgrind");
    let _ = fs::remove_dir_all(&dir);
    ctx(fs::create_dir_all(&dir), || dir.display().to_string())?;
    let n0 = 5;
    let mut rows = Vec::new();
    let mut plan = vec![
        (Module::Floor, Case::Login),
        (Module::Mailmfa, Case::Reuse),
        (Module::Mailmfa, Case::First),
        (Module::Mailmfa, Case::Fresh),
        (Module::Mailmfa, Case::Wrong),
        (Module::Oath, Case::First),
        (Module::Oath, Case::Wrong),
        (Module::Ga, Case::Reuse),
        (Module::Ga, Case::First),
        (Module::Ga, Case::Wrong),
        (Module::GaSkew, Case::Wrong),
    ];
    for &module in &world.notify {
        plan.extend(module.cases().iter().map(|&case| (module, case)));
    }
    if notify_only {
        plan.retain(|(m, _)| *m == Module::Floor || m.is_mailmfa());
    }
    let mut rng = Rng::new();
    for (module, case) in plan {
        let n = match (module, quick) {
            (Module::GaSkew, true) => 3,
            (Module::GaSkew, false) => 10,
            (_, true) => 30,
            (_, false) => 100,
        };
        let service = World::service(module, Pw::Permit, main.n);
        let mut totals = Vec::new();
        let mut ok = String::new();
        for count in [n0, n0 + n] {
            // Prepared afresh for each run: distinct mailboxes, state reset, codes for now.
            let step = fresh_step();
            let users: Vec<usize> = (0..count).map(|j| 500 + j).collect();
            let mut logins = Vec::new();
            for &i in &users {
                let password = match case {
                    Case::Login => PASSWORD.to_string(),
                    Case::Wrong => format!("{PASSWORD}{}", wrong_code(i, step, &mut rng)),
                    _ => format!("{PASSWORD}{}", code(i, step)),
                };
                match module {
                    Module::Mailmfa if case == Case::Fresh => main.forget_mailmfa(i),
                    Module::Mailmfa | Module::Notify(_) => main.returning_mailmfa(i, step)?,
                    Module::Ga | Module::GaSkew => main.reset_ga(i, case == Case::First)?,
                    _ => {}
                }
                if module.is_mailmfa() && case == Case::Reuse {
                    world.login(&service, &user_name(i), &password);
                }
                logins.push((user_name(i), password));
            }
            if module == Module::Oath {
                main.reset_oath()?;
            }
            if let Module::Notify(spool) = module {
                main.empty_spool(spool)?;
            }
            settle(&main.dir)?;
            let job = dir.join("job");
            write_job(&job, &logins)?;
            let out_file = dir.join(format!("{}-{case:?}-{count}.out", module.key()));
            let out = ctx(
                Command::new("valgrind")
                    .args(["--tool=callgrind", "--trace-children=no"])
                    .arg(format!("--callgrind-out-file={}", out_file.display()))
                    .arg(&world.exe)
                    .arg("callgrind-one")
                    .arg(&world.confdir)
                    .args([service.as_str(), RHOST])
                    .arg(&job)
                    .arg(count.to_string())
                    .stderr(Stdio::null())
                    .output(),
                || "valgrind (install valgrind)".to_string(),
            )?;
            if !out.status.success() {
                return Err(format!("valgrind failed for {service} {case:?}"));
            }
            ok = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let text = ctx(fs::read_to_string(&out_file), || {
                out_file.display().to_string()
            })?;
            let total = text
                .lines()
                .find_map(|l| {
                    l.strip_prefix("summary:")
                        .or_else(|| l.strip_prefix("totals:"))
                })
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .ok_or_else(|| format!("no totals in {}", out_file.display()))?;
            totals.push(total);
        }
        let per_login = (totals[1] as f64 - totals[0] as f64) / n as f64;
        eprintln!(
            "  callgrind {:<8} {:<6} {per_login:>12.0} instructions/login ({ok})",
            module.key(),
            format!("{case:?}")
        );
        rows.push(CgRow {
            module,
            case,
            per_login,
            n,
            ok,
        });
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// The run

struct Options {
    quick: bool,
    scales: Vec<usize>,
    rounds: usize,
    logins: usize,
    pass_secs: f64,
    callgrind: bool,
    module: PathBuf,
    workdir: PathBuf,
    out: PathBuf,
    namespace: bool,
    image: bool,
    /// Only the notifications section (`--notify`).
    notify_only: bool,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let quick = args.iter().any(|a| a == "--quick");
    let notify_only = args.iter().any(|a| a == "--notify");
    let mut o = Options {
        quick,
        scales: if notify_only {
            vec![1_000]
        } else if quick {
            vec![1, 1_000, 100_000]
        } else {
            vec![1, 1_000, 100_000, 1_000_000]
        },
        // The notifications section alone is small: more rounds in the same time.
        rounds: match (notify_only, quick) {
            (true, true) => 6,
            (true, false) => 20,
            (false, true) => 3,
            (false, false) => 6,
        },
        logins: if quick { 100 } else { 200 },
        pass_secs: if quick { 1.0 } else { 1.5 },
        callgrind: true,
        module: repo.join("target/release/libmailmfa.so"),
        workdir: PathBuf::from(DEFAULT_WORKDIR),
        out: repo.join("target/bench/logins.md"),
        namespace: true,
        image: true,
        notify_only,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--quick" | "--notify" => {}
            "--no-million" => o.scales.retain(|&s| s < 1_000_000),
            "--scales" => {
                o.scales = value()?
                    .split(',')
                    .map(|s| s.trim().replace('_', "").parse::<usize>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| "--scales takes numbers like 1,1000")?
            }
            "--rounds" => o.rounds = value()?.parse().map_err(|_| "--rounds N")?,
            "--logins" => o.logins = value()?.parse().map_err(|_| "--logins N")?,
            "--pass-secs" => o.pass_secs = value()?.parse().map_err(|_| "--pass-secs S")?,
            "--no-callgrind" => o.callgrind = false,
            "--module" => o.module = PathBuf::from(value()?),
            "--workdir" => o.workdir = PathBuf::from(value()?),
            "--out" => o.out = PathBuf::from(value()?),
            "--no-namespace" => o.namespace = false,
            "--no-image" => o.image = false,
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    o.scales.sort_unstable();
    o.scales.dedup();
    if o.scales.is_empty() || o.scales[0] == 0 {
        return Err("--scales needs pool sizes of at least 1".to_string());
    }
    Ok(o)
}

fn run(args: &[String]) -> Result<(), String> {
    let o = parse_options(args)?;
    let exe = ctx(std::env::current_exe(), || "current_exe".to_string())?;
    let module_so = ctx(fs::canonicalize(&o.module), || {
        format!("{} (build it: cargo build --release)", o.module.display())
    })?;
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(
            "run as root (the peers read root-owned files; see scripts/bench.sh)".to_string(),
        );
    }
    let image = if o.image {
        if !o.namespace {
            return Err("--no-namespace needs --no-image (the image is mounted privately)".into());
        }
        Some(prepare_image(&o.workdir)?)
    } else {
        None
    };
    let work = image
        .as_ref()
        .map_or_else(|| o.workdir.clone(), |(_, mnt)| mnt.clone());
    let _sink = if o.namespace {
        Some(private_dev(&exe, image.as_ref())?)
    } else {
        eprintln!("warning: no private /dev/log: log lines are lost, google-auth may stall on the console");
        None
    };
    let started = Instant::now();
    // The main scale: 1,000 mailboxes (or the nearest run) carries the case tables.
    let main_scale = *o
        .scales
        .iter()
        .min_by_key(|&&s| (s as i64 - 1000).unsigned_abs())
        .expect("a scale");
    let mut world = World {
        confdir: work.join("pam.d"),
        pwdfile: work.join("passwd.pam"),
        work: work.clone(),
        module_so,
        exe,
        pools: BTreeMap::new(),
        main_scale,
        notify: Vec::new(),
        sink: o.namespace,
    };
    ctx(mkdir_0700(&work), || work.display().to_string())?;
    let mut generation = Vec::new();
    for &n in &o.scales {
        let pool = Pool {
            n,
            dir: work.join(format!("pool-{n}")),
            state: work.join(format!("state-{n}")),
            oath_dir: work.join(format!("oath-{n}")),
            spools: work.join(format!("spool-{n}")),
        };
        eprintln!("generating {n} mailboxes in {} ...", pool.dir.display());
        let took = pool.generate()?;
        eprintln!("  {:.1} s", took.as_secs_f64());
        if n == main_scale {
            world.notify = pool.make_spools(o.namespace)?;
        }
        generation.push((n, took));
        world.pools.insert(n, pool);
    }
    world.write_services()?;
    world.write_pwdfile()?;
    let sanity = sanity(&world)?;
    for line in &sanity {
        eprintln!("  {line}");
    }

    let budget = Budget {
        logins: o.logins,
        cap: Duration::from_secs_f64(o.pass_secs),
    };
    let pw_budget = Budget {
        logins: (o.logins / 4).max(10),
        cap: budget.cap,
    };
    let mut results: BTreeMap<Key, Sample> = BTreeMap::new();
    let mut rng = Rng::new();
    let mut combos: Vec<(Module, Pw, usize)> = Vec::new();
    for &scale in &o.scales {
        for module in Module::ALL {
            if o.notify_only && !matches!(module, Module::Floor | Module::Mailmfa) {
                continue;
            }
            combos.push((module, Pw::Permit, scale));
            if scale == main_scale && !o.notify_only {
                combos.push((module, Pw::Pwdfile, scale));
            }
        }
    }
    // Notifications (issue 18): the notify stacks beside mailmfa's, at the main scale.
    combos.extend(world.notify.iter().map(|&m| (m, Pw::Permit, main_scale)));
    for round in 0..o.rounds {
        eprintln!(
            "round {}/{} ({:.0} s so far)",
            round + 1,
            o.rounds,
            started.elapsed().as_secs_f64()
        );
        let shift = round * combos.len() / o.rounds;
        for k in 0..combos.len() {
            let (module, pw, scale) = combos[(k + shift) % combos.len()];
            let b = if pw == Pw::Pwdfile { pw_budget } else { budget };
            batch(&world, module, pw, scale, b, &mut rng, &mut results)?;
        }
    }
    let contention = if o.notify_only {
        Vec::new()
    } else {
        eprintln!(
            "contention ({:.0} s so far)",
            started.elapsed().as_secs_f64()
        );
        contention(&world, o.quick)?
    };
    let cg = if o.callgrind {
        eprintln!(
            "callgrind ({:.0} s so far)",
            started.elapsed().as_secs_f64()
        );
        Some(callgrind(&world, o.quick, o.notify_only)?)
    } else {
        None
    };
    let report = Report {
        o: &o,
        world: &world,
        results: &results,
        contention: &contention,
        cg: cg.as_deref(),
        generation: &generation,
        sanity: &sanity,
        took: started.elapsed(),
    }
    .render();
    if let Some(parent) = o.out.parent() {
        let _ = fs::create_dir_all(parent);
    }
    ctx(fs::write(&o.out, &report), || o.out.display().to_string())?;
    println!("{report}");
    eprintln!(
        "report written to {} ({:.0} s)",
        o.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Checks, before timing anything, that each module does what its cases assume, and says so.
fn sanity(world: &World) -> Result<Vec<String>, String> {
    let pool = world.pool(world.main_scale);
    let mut notes = Vec::new();
    let step = fresh_step();
    let i = 7 % pool.n;
    let right = format!("{PASSWORD}{}", code(i, step));
    let user = user_name(i);
    // oathtool agrees with the codes the harness computes.
    if let Ok(out) = Command::new("oathtool")
        .args(["--totp", "-d", "6", &hex(&secret_of(i))])
        .output()
    {
        let theirs = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let ours = code(i, unix_now() / PERIOD);
        if theirs != ours && theirs != code(i, step) {
            return Err(format!(
                "oathtool says {theirs}, the harness computed {ours}"
            ));
        }
        notes.push("oathtool agrees with the harness's codes".to_string());
    }
    let s = |m| World::service(m, Pw::Permit, pool.n);
    let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut check = |what: &str, ok: bool| -> Result<(), String> {
        if ok {
            notes.push(format!("ok: {what}"));
            Ok(())
        } else {
            Err(format!("sanity check failed: {what}"))
        }
    };
    check(
        "floor logs in with the password alone",
        world.login(&s(Module::Floor), &user, PASSWORD),
    )?;
    pool.forget_mailmfa(i);
    check(
        "mailmfa: first login ever accepted",
        world.login(&s(Module::Mailmfa), &user, &right),
    )?;
    check(
        "mailmfa: first login ever wrote the state",
        pool.read_state(i)
            .is_some_and(|st| st.last_step == Some(step)),
    )?;
    pool.returning_mailmfa(i, step)?;
    check(
        "mailmfa: the state the harness writes for a returning mailbox parses",
        pool.read_state(i)
            .is_some_and(|st| st.last_step == Some(step - 2)),
    )?;
    check(
        "mailmfa: first use of a new step by a returning mailbox accepted",
        world.login(&s(Module::Mailmfa), &user, &right),
    )?;
    check(
        "mailmfa: first use of a new step rewrote the state",
        pool.read_state(i)
            .is_some_and(|st| st.last_step == Some(step)),
    )?;
    check(
        "mailmfa: reuse from the same client accepted",
        world.login(&s(Module::Mailmfa), &user, &right),
    )?;
    pool.reset_oath()?;
    let before = fs::read_to_string(pool.oath()).unwrap_or_default();
    check(
        "pam_oath: first use accepted",
        world.login(&s(Module::Oath), &user, &right),
    )?;
    check(
        "pam_oath: first use rewrote the usersfile",
        fs::read_to_string(pool.oath()).unwrap_or_default() != before,
    )?;
    check(
        "pam_oath: reuse of the same code refused (it cannot allow reuse)",
        !world.login(&s(Module::Oath), &user, &right),
    )?;
    pool.reset_oath()?;
    pool.reset_ga(i, true)?;
    let ga_file = pool.ga().join(&user);
    let before = fs::read_to_string(&ga_file).unwrap_or_default();
    check(
        "google-auth (DISALLOW_REUSE): first use accepted",
        world.login(&s(Module::Ga), &user, &right),
    )?;
    check(
        "google-auth (DISALLOW_REUSE): first use rewrote the secret file",
        fs::read_to_string(&ga_file).unwrap_or_default() != before,
    )?;
    check(
        "google-auth (DISALLOW_REUSE): reuse refused",
        !world.login(&s(Module::Ga), &user, &right),
    )?;
    pool.reset_ga(i, false)?;
    let before = (
        fs::read_to_string(&ga_file).unwrap_or_default(),
        mtime(&ga_file),
    );
    check(
        "google-auth (reuse allowed): accepted",
        world.login(&s(Module::Ga), &user, &right),
    )?;
    check(
        "google-auth (reuse allowed): accepted again",
        world.login(&s(Module::Ga), &user, &right),
    )?;
    check(
        "google-auth (reuse allowed): secret file not rewritten",
        (
            fs::read_to_string(&ga_file).unwrap_or_default(),
            mtime(&ga_file),
        ) == before,
    )?;
    let mut rng = Rng::new();
    let wrong = format!("{PASSWORD}{}", wrong_code(i, step, &mut rng));
    for m in [Module::Mailmfa, Module::Oath, Module::Ga, Module::GaSkew] {
        check(
            &format!("{}: wrong code refused", m.key()),
            !world.login(&s(m), &user, &wrong),
        )?;
    }
    let pw = |m| World::service(m, Pw::Pwdfile, pool.n);
    pool.forget_mailmfa(i);
    check(
        "pwdfile: floor accepts the password",
        world.login(&pw(Module::Floor), &user, PASSWORD),
    )?;
    check(
        "pwdfile: floor refuses a wrong password",
        !world.login(&pw(Module::Floor), &user, "nope"),
    )?;
    check(
        "pwdfile: mailmfa accepts password+code",
        world.login(&pw(Module::Mailmfa), &user, &right),
    )?;
    check(
        "pwdfile: mailmfa refuses a wrong password with the right code",
        !world.login(
            &pw(Module::Mailmfa),
            &user,
            &format!("nope{}", code(i, step)),
        ),
    )?;
    pool.reset_ga(i, false)?;
    check(
        "pwdfile: google-auth accepts password+code",
        world.login(&pw(Module::Ga), &user, &right),
    )?;
    check(
        "pwdfile: pam_oath accepts password+code",
        world.login(&pw(Module::Oath), &user, &right),
    )?;
    for (what, ok) in notify::sanity(world, i, step, &right, &wrong)? {
        check(&what, ok)?;
    }
    pool.reset_oath()?;
    pool.forget_mailmfa(i);
    Ok(notes)
}

// ---------------------------------------------------------------------------------------------
// The report

struct Report<'a> {
    o: &'a Options,
    world: &'a World,
    results: &'a BTreeMap<Key, Sample>,
    contention: &'a [ContentionRow],
    cg: Option<&'a [CgRow]>,
    generation: &'a [(usize, Duration)],
    sanity: &'a [String],
    took: Duration,
}

fn us(ns: f64) -> String {
    let us = ns / 1000.0;
    if us.is_nan() {
        "-".to_string()
    } else if us < 100.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

fn times(x: f64) -> String {
    if x.is_nan() || x.is_infinite() {
        "-".to_string()
    } else if x < 10.0 {
        format!("×{x:.2}")
    } else {
        format!("×{x:.0}")
    }
}

fn count(n: usize) -> String {
    match n {
        1_000_000 => "1M".to_string(),
        n if n >= 1000 && n % 1000 == 0 => format!("{}k", n / 1000),
        n => n.to_string(),
    }
}

fn shell(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

impl Report<'_> {
    fn get(&self, m: Module, pw: Pw, scale: usize, c: Case) -> Option<&Sample> {
        self.results
            .get(&(m, pw, scale, c))
            .filter(|s| !s.ns.is_empty())
    }

    fn render(&self) -> String {
        let mut r = String::new();
        let main = self.world.main_scale;
        let _ = writeln!(
            r,
            "## Results ({} run)\n",
            if self.o.quick { "quick" } else { "full" }
        );
        self.machine(&mut r);
        for pw in [Pw::Permit, Pw::Pwdfile] {
            self.case_table(&mut r, pw, main);
        }
        self.notify_table(&mut r, main);
        if !self.o.notify_only {
            self.scale_table(&mut r);
            self.contention_table(&mut r);
        }
        self.cg_table(&mut r);
        if !self.o.notify_only {
            self.targets(&mut r);
        }
        let _ = writeln!(r, "### Checks made before timing\n");
        for line in self.sanity {
            let _ = writeln!(r, "- {line}");
        }
        r
    }

    fn machine(&self, r: &mut String) {
        let cpu = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
            })
            .unwrap_or_default();
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let debian = fs::read_to_string("/etc/debian_version").unwrap_or_default();
        let versions = shell(
            "dpkg-query",
            &[
                "-W",
                "-f=${Package} ${Version}, ",
                "libpam0g",
                "libpam-oath",
                "libpam-google-authenticator",
                "libpam-pwdfile",
                "valgrind",
            ],
        );
        let so_size = fs::metadata(&self.world.module_so)
            .map(|m| m.len())
            .unwrap_or(0);
        let fs_type = shell(
            "findmnt",
            &[
                "-no",
                "FSTYPE",
                "-T",
                &self.world.work.display().to_string(),
            ],
        );
        let _ = writeln!(
            r,
            "Machine: {cpu}, {cores} cores, Linux {}, Debian {}; {}; module {} ({} KB); mailboxes on {fs_type} in {}.\n\
             Run: rounds {}, up to {} logins per pass (pam_pwdfile: a quarter), pass cap {} s, took {:.0} s. \
             Generation: {}.\n",
            kernel.trim(),
            debian.trim(),
            versions.trim_end_matches([',', ' ']),
            self.world.module_so.display(),
            so_size / 1024,
            self.world.work.display(),
            self.o.rounds,
            self.o.logins,
            self.o.pass_secs,
            self.took.as_secs_f64(),
            self.generation
                .iter()
                .map(|(n, d)| format!("{} mailboxes {:.1} s", count(*n), d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    fn case_table(&self, r: &mut String, pw: Pw, scale: usize) {
        let Some(floor) = self.get(Module::Floor, pw, scale, Case::Login) else {
            return;
        };
        let _ = writeln!(
            r,
            "### {} mailboxes, password step `{}`\n\n\
             logins/s = 1 ÷ mean wall time of one sequential process. Ratios use p50: \
             \"÷ floor\" of wall time and of this process's CPU time (user + system) per login, \
             \"mailmfa faster\" = this row's wall p50 ÷ mailmfa's in the same case.\n\n\
             | case | module | as expected | logins/s | p50 µs | p99 µs | CPU p50 µs | ÷ floor | ÷ floor (CPU) | mailmfa faster |\n\
             |---|---|---|---:|---:|---:|---:|---:|---:|---:|",
            count(scale),
            match pw {
                Pw::Permit => "pam_permit",
                Pw::Pwdfile => "pam_pwdfile (SHA-512 crypt)",
            }
        );
        let row = |r: &mut String, case: Case, title: String, s: &Sample, faster: String| {
            let _ = writeln!(
                r,
                "| {} | {title} | {}/{} | {:.0} | {} | {} | {} | {} | {} | {faster} |",
                case.title(),
                s.as_expected,
                s.ns.len(),
                s.per_sec(),
                us(s.p50()),
                us(s.p99()),
                us(s.cpu_p50()),
                times(s.p50() / floor.p50()),
                times(s.cpu_p50() / floor.cpu_p50()),
            );
        };
        row(
            r,
            Case::Login,
            Module::Floor.title().to_string(),
            floor,
            String::new(),
        );
        for case in [Case::Reuse, Case::First, Case::Fresh, Case::Wrong] {
            let mm = self.get(Module::Mailmfa, pw, scale, case);
            for m in [Module::Mailmfa, Module::Oath, Module::Ga, Module::GaSkew] {
                let Some(s) = self.get(m, pw, scale, case) else {
                    continue;
                };
                let faster = match (m, mm) {
                    (Module::Mailmfa, _) | (_, None) => String::new(),
                    (_, Some(mm)) => times(s.p50() / mm.p50()),
                };
                let note = match (m, case) {
                    (Module::Oath, Case::Reuse) => {
                        " — refuses the reuse (0 logins in): the client is locked out"
                    }
                    (Module::Ga, Case::Reuse) => " — without DISALLOW_REUSE",
                    (Module::Ga, Case::First) => " — DISALLOW_REUSE",
                    _ => "",
                };
                row(r, case, format!("{}{note}", m.title()), s, faster);
            }
        }
        let _ = writeln!(r);
    }

    fn scale_table(&self, r: &mut String) {
        let scales: Vec<usize> = self.world.pools.keys().copied().collect();
        let _ = writeln!(
            r,
            "### Scale: wall p50 (CPU p50) µs per login by enrolled mailboxes, password step `pam_permit`\n"
        );
        let mut head = "| module | case |".to_string();
        let mut rule = "|---|---|".to_string();
        for &s in &scales {
            let _ = write!(head, " {} |", count(s));
            rule.push_str("---:|");
        }
        let _ = writeln!(r, "{head} largest ÷ 1 (wall / CPU) |\n{rule}---:|");
        for (m, c) in [
            (Module::Floor, Case::Login),
            (Module::Mailmfa, Case::Reuse),
            (Module::Mailmfa, Case::First),
            (Module::Mailmfa, Case::Fresh),
            (Module::Mailmfa, Case::Wrong),
            (Module::Oath, Case::First),
            (Module::Oath, Case::Wrong),
            (Module::Ga, Case::Reuse),
            (Module::Ga, Case::First),
            (Module::Ga, Case::Wrong),
            (Module::GaSkew, Case::Wrong),
        ] {
            let mut line = format!("| {} | {} |", m.key(), c.title());
            for &s in &scales {
                match self.get(m, Pw::Permit, s, c) {
                    Some(x) => {
                        let _ = write!(line, " {} ({}) |", us(x.p50()), us(x.cpu_p50()));
                    }
                    None => line.push_str(" - |"),
                }
            }
            let first = self.get(m, Pw::Permit, scales[0], c);
            let last = self.get(m, Pw::Permit, *scales.last().expect("a scale"), c);
            match (first, last) {
                (Some(a), Some(b)) if scales.len() > 1 => {
                    let _ = write!(
                        line,
                        " {} / {} |",
                        times(b.p50() / a.p50()),
                        times(b.cpu_p50() / a.cpu_p50())
                    );
                }
                _ => line.push_str(" |"),
            }
            let _ = writeln!(r, "{line}");
        }
        let _ = writeln!(r);
    }

    fn contention_table(&self, r: &mut String) {
        let _ = writeln!(
            r,
            "### Contention ({} mailboxes, `pam_permit`): P processes released together\n\n\
             | scenario | P | logins | failed | lost updates | logins/s (all P) | p50 µs | p99 µs | check |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---|",
            count(self.world.main_scale)
        );
        for row in self.contention {
            let _ = writeln!(
                r,
                "| {} | {} | {} | {} | {} | {:.0} | {} | {} | {} |",
                row.scenario,
                row.p,
                row.run.logins,
                row.run.failed,
                row.lost.map_or("-".to_string(), |l| l.to_string()),
                row.run.logins as f64 / row.run.wall.as_secs_f64(),
                us(row.run.sample.p50()),
                us(row.run.sample.p99()),
                row.note
            );
        }
        let _ = writeln!(r);
    }

    fn cg_table(&self, r: &mut String) {
        let Some(rows) = self.cg else {
            return;
        };
        let floor = rows
            .iter()
            .find(|x| x.module == Module::Floor)
            .map_or(f64::NAN, |x| x.per_login);
        let _ = writeln!(
            r,
            "### Instructions per login (valgrind --tool=callgrind, {} mailboxes, `pam_permit`)\n\n\
             (instructions of n0 + n logins − instructions of n0 logins) ÷ n, n0 = 5: process start and \
             the module's first mapping are left out.\n\n\
             | module | case | instructions/login | ÷ floor | this ÷ mailmfa (same case) | n | logins ok |\n\
             |---|---|---:|---:|---:|---:|---|",
            count(self.world.main_scale)
        );
        for row in rows {
            let mm = rows
                .iter()
                .find(|x| x.module == Module::Mailmfa && x.case == row.case)
                .map_or(f64::NAN, |x| x.per_login);
            let _ = writeln!(
                r,
                "| {} | {} | {:.0} | {} | {} | {} | {} |",
                row.module.key(),
                row.case.title(),
                row.per_login,
                times(row.per_login / floor),
                if row.module == Module::Mailmfa {
                    String::new()
                } else {
                    times(row.per_login / mm)
                },
                row.n,
                row.ok
            );
        }
        let _ = writeln!(r);
    }

    fn targets(&self, r: &mut String) {
        let main = self.world.main_scale;
        let g = |m, c| self.get(m, Pw::Permit, main, c);
        let verdict = |ok: bool| if ok { "**met**" } else { "**missed**" };
        let _ = writeln!(r, "### Targets of issue 5 (ratios from this run)\n");
        if let (Some(f), Some(mm), Some(ga), Some(oath)) = (
            g(Module::Floor, Case::Login),
            g(Module::Mailmfa, Case::Reuse),
            g(Module::Ga, Case::Reuse),
            g(Module::Oath, Case::First),
        ) {
            let ok = mm.p50() <= 1.5 * f.p50() && mm.p50() < ga.p50() && mm.p50() < oath.p50();
            let _ = writeln!(
                r,
                "- Right code, same client, ≤ 1.5× the floor and below both peers: {} — p50 {} µs = {} the floor ({} µs; CPU time {}); google-auth {} µs ({} CPU µs against mailmfa's {}); pam_oath cannot reuse a code (it locks the client out), its cheapest success (first use) {} µs.",
                verdict(ok),
                us(mm.p50()),
                times(mm.p50() / f.p50()),
                us(f.p50()),
                times(mm.cpu_p50() / f.cpu_p50()),
                us(ga.p50()),
                us(ga.cpu_p50()),
                us(mm.cpu_p50()),
                us(oath.p50())
            );
        }
        if let (Some(mm), Some(oath)) = (
            g(Module::Mailmfa, Case::First),
            g(Module::Oath, Case::First),
        ) {
            let x = mm.per_sec() / oath.per_sec();
            let _ = writeln!(
                r,
                "- First use of a step ≥ 2× pam_oath's logins/s: {} — {:.0} against {:.0} logins/s = {} (p50 {}).",
                verdict(x >= 2.0),
                mm.per_sec(),
                oath.per_sec(),
                times(x),
                times(oath.p50() / mm.p50())
            );
        }
        if let (Some(mm), Some(gas)) = (
            g(Module::Mailmfa, Case::Wrong),
            g(Module::GaSkew, Case::Wrong),
        ) {
            let x = mm.per_sec() / gas.per_sec();
            let _ = writeln!(
                r,
                "- Wrong code ≥ 5× google-auth default's logins/s: {} — {:.0} against {:.0} logins/s = {}.",
                verdict(x >= 5.0),
                mm.per_sec(),
                gas.per_sec(),
                times(x)
            );
        }
        let scales: Vec<usize> = self.world.pools.keys().copied().collect();
        let (lo, hi) = (scales[0], *scales.last().expect("a scale"));
        for c in [Case::Reuse, Case::First, Case::Fresh, Case::Wrong] {
            if let (Some(a), Some(b)) = (
                self.get(Module::Mailmfa, Pw::Permit, lo, c),
                self.get(Module::Mailmfa, Pw::Permit, hi, c),
            ) {
                let (p, cpu, m) = (
                    b.p50() / a.p50(),
                    b.cpu_p50() / a.cpu_p50(),
                    b.mean() / a.mean(),
                );
                let _ = writeln!(
                    r,
                    "- Per-login cost at {} within 10% of {} mailbox ({}): {} — p50 {} → {} µs ({}); CPU p50 {} → {} µs ({}); mean {} → {} µs ({}, moved by other load).",
                    count(hi),
                    count(lo),
                    c.title(),
                    verdict(p <= 1.10),
                    us(a.p50()),
                    us(b.p50()),
                    times(p),
                    us(a.cpu_p50()),
                    us(b.cpu_p50()),
                    times(cpu),
                    us(a.mean()),
                    us(b.mean()),
                    times(m)
                );
            }
        }
        let p8: Vec<&ContentionRow> = self
            .contention
            .iter()
            .filter(|row| row.p == 8 && row.scenario.starts_with("mailmfa"))
            .collect();
        if !p8.is_empty() {
            let failed: usize = p8
                .iter()
                .filter(|row| !row.scenario.contains("wrong codes"))
                .map(|row| row.run.failed)
                .sum();
            let lost: usize = p8.iter().filter_map(|row| row.lost).sum();
            let _ = writeln!(
                r,
                "- Contention at P = 8: zero failed legitimate logins and zero lost updates: {} — {failed} failed, {lost} lost.",
                verdict(failed == 0 && lost == 0)
            );
        }
        if let Some(rows) = self.cg {
            let get = |m, c| {
                rows.iter()
                    .find(|x| x.module == m && x.case == c)
                    .map(|x| x.per_login)
            };
            if let (Some(mr), Some(mf), Some(gr), Some(gf)) = (
                get(Module::Mailmfa, Case::Reuse),
                get(Module::Mailmfa, Case::First),
                get(Module::Ga, Case::Reuse),
                get(Module::Ga, Case::First),
            ) {
                let _ = writeln!(
                    r,
                    "- Instructions per successful login ≤ google-auth's: {} — reuse {mr:.0} against {gr:.0} ({}), first use {mf:.0} against {gf:.0} ({}).",
                    verdict(mr <= gr && mf <= gf),
                    times(mr / gr),
                    times(mf / gf)
                );
            }
        }
        let _ = writeln!(r);
    }
}
