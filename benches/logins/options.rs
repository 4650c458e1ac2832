//! The command line of the harness: its usage text and the options of a run (`--quick`,
//! `--scales`, `--notify`, `--no-sql`, ...), with their defaults.

use super::DEFAULT_WORKDIR;
use std::path::PathBuf;

pub(super) const USAGE: &str = "\
usage: cargo bench --bench logins -- [run] [options]      (as root; see scripts/bench.sh)

  --quick            small run: scales 1, 1000, 100000; 3 rounds; fewer logins
  --no-million       leave out the 1,000,000-mailbox scale (it generates 2M small files)
  --scales LIST      comma-separated pool sizes (overrides the above), e.g. 1,1000
  --rounds N         interleaved rounds (default 6; quick 3; --notify 20, quick 6)
  --logins N         logins per timed pass of a batch (default 200; quick 100)
  --pass-secs S      time cap of one pass (default 1.5; quick 1.0)
  --no-callgrind     skip the valgrind measurement
  --no-sql           leave out the records in SQL (issue 15: a PostgreSQL and a MariaDB
                     started for the run, every scale's rows loaded into each)
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

pub(super) struct Options {
    pub(super) quick: bool,
    pub(super) scales: Vec<usize>,
    pub(super) rounds: usize,
    pub(super) logins: usize,
    pub(super) pass_secs: f64,
    pub(super) callgrind: bool,
    pub(super) module: PathBuf,
    pub(super) workdir: PathBuf,
    pub(super) out: PathBuf,
    pub(super) namespace: bool,
    pub(super) image: bool,
    /// Only the notifications section (`--notify`).
    pub(super) notify_only: bool,
    /// The [`super::cases::Module::Sql`] stacks (off with `--no-sql` or `--notify`).
    pub(super) sql: bool,
}

pub(super) fn parse_options(args: &[String]) -> Result<Options, String> {
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
        sql: !notify_only,
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
            "--no-sql" => o.sql = false,
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
