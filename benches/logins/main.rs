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
//! 8. Records in SQL (issue 15): a PostgreSQL and a MariaDB server started for the run by
//!    the tests' harness (`tests/servers/`, included below), every scale's rows sealed and
//!    loaded into one database per scale in each, and mailmfa with `records = "sql"`
//!    ([`Module::Sql`]) run in the same rounds as the other stacks (reused code, first use,
//!    wrong code), beside mailmfa with record files; `--no-sql` leaves this out. The servers
//!    stop at the end of the run.
//!
//! Every login goes through [`mailmfa::pam::client::login`]: `pam_start_confdir`, PAM_RHOST,
//! `pam_authenticate` with a conversation answering the password, `pam_acct_mgmt`, `pam_end`.
//!
//! The files, one concern each (read them in this order):
//! - `main.rs`: this overview, the constants every part shares, and the modes of the binary.
//! - `options.rs`: the command line (usage text, options and their defaults).
//! - `run.rs`: one run, in order, from the namespace to the report.
//! - `cases.rs`: what is measured: the stacks, the password steps, the cases, the samples.
//! - `mailboxes.rs`: names, secrets, codes, steps, random picks, each module's file text.
//! - `pool.rs`: the enrolled mailboxes of one scale, generated and cached; untimed resets.
//! - `world.rs`: the peers' set-up: the PAM confdir and its services, the pam_pwdfile file.
//! - `namespace.rs`: the private `/dev`, the `/dev/log` receiver and the mailbox ext4 image.
//! - `checks.rs`: the checks made before timing anything.
//! - `driver.rs`: the batches and timed passes of the rounds.
//! - `contention.rs`: P processes released together; the job files.
//! - `callgrind.rs`: instructions per login under valgrind.
//! - `notify.rs`: the notifications section (issue 18).
//! - `sql.rs`: the records in SQL (issue 15): the servers, the rows, the configs, the warm-up.
//! - `sql_report.rs`: the SQL tables of the report.
//! - `tests/servers/`, `tests/skip/`: the tests' server harness, shared, not copied.
//! - `report.rs`: the markdown tables and the ratios.
//! - `targets.rs`: which targets of issues 5, 17 and 15 the run met.

mod callgrind;
mod cases;
mod checks;
mod contention;
mod driver;
mod mailboxes;
mod namespace;
mod notify;
mod options;
mod pool;
mod report;
mod run;
// The tests' server harness (PostgreSQL and MariaDB for `sql.rs`), and the skip rules it
// reaches as `crate::skip`.
#[path = "../../tests/servers/mod.rs"]
mod servers;
#[path = "../../tests/skip/mod.rs"]
mod skip;
mod sql;
mod sql_report;
mod targets;
mod world;

use callgrind::callgrind_one;
use contention::worker;
use namespace::{ns_exec, sink};
use options::USAGE;
use run::run;

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
