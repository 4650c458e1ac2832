//! The notifications section of the login benchmark (issue 18): what `[notify]` costs a
//! login. The module never sends mail; after its decision it appends one line to
//! `<spool_dir>/new/<login>` when a recovery code was used or when wrong codes after the right
//! password reach `alert_after`, 2×`alert_after`, ... A spool that cannot take the line is
//! logged (`notify_spool_failed`) and must neither fail nor slow the login.
//!
//! The [`Module::Notify`] stacks are mailmfa's stack with a `mailmfa.toml` that has
//! `[notify] enabled = true, alert_after = 1` (every wrong code is an alert: the worst case),
//! each with its own spool ([`Spool`]). They run in the rounds beside mailmfa's stack without
//! `[notify]` (off), at the main scale with `pam_permit`, and under callgrind.
//!
//! Here: the spools ([`Pool::make_spools`]), what a pass left in them ([`PassWatch`]), the
//! count of `notify_spool_failed` lines the /dev/log receiver saw ([`World::log_tally`]),
//! the checks made before timing ([`sanity`]) and the report's table.

use super::cases::{Case, Module, Pw, Sample};
use super::mailboxes::{ctx, mkdir_0700, user_name, write_file};
use super::namespace::sys_mount;
use super::pool::Pool;
use super::report::{count, times, us, Report};
use super::world::World;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The spool of a [`Module::Notify`] stack: its `spool_dir`, below the pool's `spool-N/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Spool {
    /// A working spool on the mailbox file system, next to the state.
    Works,
    /// On a full file system: a 64 KiB tmpfs mounted in the run's private namespace and
    /// filled up. Creating `new/<login>` works (tmpfs counts no space for an empty file, as a
    /// full disk with inodes left), writing its line fails with ENOSPC.
    Full,
    /// A `spool_dir` the module refuses: mode 0777 (writable by everyone).
    Refused,
}

impl Spool {
    const ALL: [Spool; 3] = [Spool::Works, Spool::Full, Spool::Refused];

    pub(super) fn key(self) -> &'static str {
        match self {
            Spool::Works => "mailmfa-notify-on",
            Spool::Full => "mailmfa-notify-full",
            Spool::Refused => "mailmfa-notify-refused",
        }
    }

    pub(super) fn title(self) -> &'static str {
        match self {
            Spool::Works => "on, spool works",
            Spool::Full => "on, spool on a full file system",
            Spool::Refused => "on, spool refused (spool_dir mode 0777)",
        }
    }

    /// The timed passes: a right code spools nothing, so only a working spool is timed with
    /// one.
    pub(super) fn cases(self) -> &'static [Case] {
        match self {
            Spool::Works => &[Case::First, Case::Reuse, Case::Wrong],
            Spool::Full | Spool::Refused => &[Case::Wrong],
        }
    }
}

impl Pool {
    fn spool(&self, spool: Spool) -> std::path::PathBuf {
        self.spools.join(spool.key())
    }

    /// Writes the config of each [`Module::Notify`] stack: `base` (the pool's
    /// `mailmfa.toml`) and a `[notify]` table naming its spool.
    pub(super) fn write_notify_configs(&self, base: &str) -> Result<(), String> {
        for spool in Spool::ALL {
            let text = format!(
                "{base}\n[notify]\nenabled = true\nspool_dir = \"{}\"\nalert_after = 1\n",
                self.spool(spool).display()
            );
            let path = self.config_of(Module::Notify(spool));
            ctx(write_file(&path, text.as_bytes()), || {
                path.display().to_string()
            })?;
        }
        Ok(())
    }

    /// Makes the spools, each with its `new/`, and returns the stacks that can run:
    /// [`Spool::Full`] needs the run's private mount namespace (`private`) for its tmpfs.
    pub(super) fn make_spools(&self, private: bool) -> Result<Vec<Module>, String> {
        let _ = fs::remove_dir_all(&self.spools);
        let mut ready = Vec::new();
        for spool in Spool::ALL {
            let dir = self.spool(spool);
            ctx(mkdir_0700(&dir), || dir.display().to_string())?;
            if spool == Spool::Full {
                if !private {
                    continue;
                }
                let options = Some("size=64k,mode=0700");
                sys_mount(Path::new("tmpfs"), &dir, Some("tmpfs"), 0, options)?;
            }
            let new = dir.join("new");
            ctx(mkdir_0700(&new), || new.display().to_string())?;
            match spool {
                Spool::Works => {}
                Spool::Full => fill_up(&dir)?,
                Spool::Refused => ctx(
                    fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)),
                    || dir.display().to_string(),
                )?,
            }
            ready.push(Module::Notify(spool));
        }
        Ok(ready)
    }

    /// Empties the spool's `new/` (untimed), as the notifier does when it claims the lines.
    /// Every pass starts with no line waiting, so each login's line creates `new/<login>` (the
    /// usual case with a notifier that runs when `new/` is not empty), and no file nears the
    /// 64 KiB bound past which the module drops events instead of writing them.
    pub(super) fn empty_spool(&self, spool: Spool) -> Result<(), String> {
        let new = self.spool(spool).join("new");
        for entry in ctx(fs::read_dir(&new), || new.display().to_string())? {
            let path = ctx(entry, || new.display().to_string())?.path();
            ctx(fs::remove_file(&path), || path.display().to_string())?;
        }
        Ok(())
    }

    /// The lines waiting in the spool's `new/`, all logins together.
    fn spooled_lines(&self, spool: Spool) -> usize {
        fs::read_dir(self.spool(spool).join("new"))
            .into_iter()
            .flatten()
            .filter_map(|e| fs::read_to_string(e.ok()?.path()).ok())
            .map(|text| text.lines().count())
            .sum()
    }
}

/// Fills the file system of `dir` (a small tmpfs) with a file `dir/filler`, to the last
/// byte: one more byte anywhere on it fails with ENOSPC.
fn fill_up(dir: &Path) -> Result<(), String> {
    let path = dir.join("filler");
    let mut filler = ctx(fs::File::create(&path), || path.display().to_string())?;
    // `io::copy` writes until the file system refuses a write: the end it wants.
    match io::copy(&mut io::repeat(0x5a), &mut filler) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {}
        other => return Err(format!("filling {}: {other:?}", dir.display())),
    }
    match filler.write(b"x") {
        Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => Ok(()),
        other => Err(format!("{} did not fill up: {other:?}", dir.display())),
    }
}

// ---------------------------------------------------------------------------------------------
// The /dev/log receiver's count of spool failures

/// What the harness sends to the /dev/log receiver to ask for its count (then a number).
pub(super) const TALLY_ASK: &str = "mailmfa-bench tally ";
/// The receiver's answer to an ask: `NUMBER COUNT`.
pub(super) const TALLY_FILE: &str = "/dev/log.tally";
/// The lines the receiver counts: a spool that could not take an event.
pub(super) const SPOOL_FAILED: &[u8] = b"reason=notify_spool_failed";

/// What the receiver (`sink`) does with a line: counts it into `failed` when it is a spool
/// failure, and answers an ask by writing the count to [`TALLY_FILE`].
pub(super) fn tally(line: &[u8], failed: &mut usize) {
    if let Some(seq) = line.strip_prefix(TALLY_ASK.as_bytes()) {
        let tmp = format!("{TALLY_FILE}.tmp");
        let answer = format!("{} {failed}\n", String::from_utf8_lossy(seq));
        let _ = fs::write(&tmp, answer).and_then(|()| fs::rename(&tmp, TALLY_FILE));
    } else if line.windows(SPOOL_FAILED.len()).any(|w| w == SPOOL_FAILED) {
        *failed += 1;
    }
}

impl World {
    /// How many `notify_spool_failed` lines the /dev/log receiver has had so far (`None`
    /// without it). Asked with a datagram of our own: it queues behind every line sent
    /// before it, so the count holds the lines of every login that has returned.
    fn log_tally(&self) -> Result<Option<usize>, String> {
        if !self.sink {
            return Ok(None);
        }
        static ASKED: AtomicU64 = AtomicU64::new(0);
        let seq = ASKED.fetch_add(1, Ordering::Relaxed).to_string();
        let socket = ctx(UnixDatagram::unbound(), || "socket".to_string())?;
        let ask = format!("{TALLY_ASK}{seq}");
        ctx(socket.send_to(ask.as_bytes(), "/dev/log"), || {
            "asking /dev/log for its count".to_string()
        })?;
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            let answer = fs::read_to_string(TALLY_FILE).unwrap_or_default();
            if let Some((got, n)) = answer.split_once(' ') {
                if got == seq {
                    return n.trim().parse().map(Some).map_err(|_| answer.clone());
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Err("the /dev/log receiver did not answer".to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// Passes and checks

/// In a [`Module::Notify`] sample's `reasons`: the lines its passes left in the spool.
const SPOOLED: &str = "lines spooled";
/// In a [`Module::Notify`] sample's `reasons`: the `notify_spool_failed` lines logged.
const LOGGED: &str = "notify_spool_failed logged";

/// Around one timed pass of a [`Module::Notify`] stack (nothing for the others): the spool
/// emptied before (settled with the state by the pass's preparation), and what the pass did
/// added to its sample's `reasons` after.
pub(super) struct PassWatch {
    spool: Spool,
    logged: Option<usize>,
}

impl PassWatch {
    pub(super) fn start(
        world: &World,
        pool: &Pool,
        module: Module,
    ) -> Result<Option<PassWatch>, String> {
        let Module::Notify(spool) = module else {
            return Ok(None);
        };
        pool.empty_spool(spool)?;
        Ok(Some(PassWatch {
            spool,
            logged: world.log_tally()?,
        }))
    }

    pub(super) fn finish(
        self,
        world: &World,
        pool: &Pool,
        sample: &mut Sample,
    ) -> Result<(), String> {
        *sample.reasons.entry(SPOOLED.to_string()).or_default() += pool.spooled_lines(self.spool);
        if let (Some(before), Some(after)) = (self.logged, world.log_tally()?) {
            *sample.reasons.entry(LOGGED.to_string()).or_default() += after - before;
        }
        Ok(())
    }
}

/// The checks made before timing, `(what, whether it held)`: a right code spools nothing;
/// with `alert_after = 1` a wrong code spools one line, or, when the spool cannot take it,
/// is refused all the same (`bad_code`) and the failure is logged. `i` is a mailbox of the
/// main pool, `right` and `wrong` its password with a right and a wrong code of `step`.
pub(super) fn sanity(
    world: &World,
    i: usize,
    step: u64,
    right: &str,
    wrong: &str,
) -> Result<Vec<(String, bool)>, String> {
    let pool = world.pool(world.main_scale);
    let user = user_name(i);
    let mut checks = Vec::new();
    for &m in &world.notify {
        let Module::Notify(spool) = m else {
            continue;
        };
        let service = World::service(m, Pw::Permit, pool.n);
        pool.returning_mailmfa(i, step)?;
        pool.empty_spool(spool)?;
        let key = m.key();
        if spool == Spool::Works {
            let ok = world.login(&service, &user, right);
            checks.push((
                format!("{key}: right code accepted, nothing spooled"),
                ok && pool.spooled_lines(spool) == 0,
            ));
        }
        let logged = world.log_tally()?;
        let (ok, reason) = world.login_reason(&service, &user, wrong);
        checks.push((
            format!("{key}: wrong code refused (bad_code)"),
            !ok && reason.as_deref() == Some("bad_code"),
        ));
        let failures = match (logged, world.log_tally()?) {
            (Some(before), Some(after)) => Some(after - before),
            _ => None,
        };
        if spool == Spool::Works {
            let text = fs::read_to_string(pool.spool(spool).join("new").join(&user));
            checks.push((
                format!("{key}: the wrong code spooled one line: kind=code-wrong, count=1"),
                text.is_ok_and(|t| {
                    t.lines().count() == 1
                        && t.contains(" kind=code-wrong ")
                        && t.contains(" count=1")
                }),
            ));
        } else {
            checks.push((
                format!(
                    "{key}: nothing spooled; notify_spool_failed lines logged: {}",
                    failures.map_or("- (no /dev/log receiver)".to_string(), |n| n.to_string())
                ),
                pool.spooled_lines(spool) == 0 && failures.is_none_or(|n| n == 1),
            ));
        }
    }
    Ok(checks)
}

// ---------------------------------------------------------------------------------------------
// The report's table

impl Report<'_> {
    /// mailmfa's rows without `[notify]` (off) and with it, per case, at `scale`.
    pub(super) fn notify_table(&self, r: &mut String, scale: usize) {
        if self.world.notify.is_empty() {
            return;
        }
        let _ = writeln!(
            r,
            "### Notifications (issue 18): mailmfa with `[notify]` off and on, {} mailboxes, `pam_permit`\n\n\
             off: no `[notify]` table (the default). on: `enabled = true`, `alert_after = 1`: every \
             wrong code is an alert, one line appended to `new/<login>`; a right code spools nothing. \
             `new/` is emptied (untimed) before every pass. \"what happened\": mailmfa's published \
             reasons, the lines found in `new/` after the passes, and the `notify_spool_failed` \
             lines the /dev/log receiver counted. \"on − off\" and \"on ÷ off\" compare p50 with the \
             off row of the same case in this run.\n\n\
             | case | `[notify]` | as expected | what happened | p50 µs | p90 µs | CPU p50 µs | CPU p90 µs | on − off (p50) µs | on ÷ off (p50) | on ÷ off (CPU p50) |\n\
             |---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
            count(scale)
        );
        for case in [Case::Reuse, Case::First, Case::Wrong] {
            let Some(off) = self.get(Module::Mailmfa, Pw::Permit, scale, case) else {
                continue;
            };
            let rows = std::iter::once(Module::Mailmfa).chain(self.world.notify.iter().copied());
            for m in rows {
                let Some(s) = self.get(m, Pw::Permit, scale, case) else {
                    continue;
                };
                let happened: Vec<String> =
                    s.reasons.iter().map(|(k, v)| format!("{k} {v}")).collect();
                let compared = match m {
                    Module::Notify(_) => format!(
                        " {:+.1} | {} | {} |",
                        (s.p50() - off.p50()) / 1000.0,
                        times(s.p50() / off.p50()),
                        times(s.cpu_p50() / off.cpu_p50())
                    ),
                    _ => " | | |".to_string(),
                };
                let _ = writeln!(
                    r,
                    "| {} | {} | {}/{} | {} | {} | {} | {} | {} |{compared}",
                    case.title(),
                    match m {
                        Module::Notify(spool) => spool.title(),
                        _ => "off",
                    },
                    s.as_expected,
                    s.ns.len(),
                    happened.join(", "),
                    us(s.p50()),
                    us(s.p90()),
                    us(s.cpu_p50()),
                    us(s.cpu_p90()),
                );
            }
        }
        let _ = writeln!(r);
    }
}
