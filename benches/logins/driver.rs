//! The driver that times logins: one batch of a (module, password step, scale), its timed
//! passes (codes computed and state reset outside the timer), each login's wall and CPU time
//! checked against the expected outcome.

use super::cases::{Case, Key, Module, Pw, Sample};
use super::mailboxes::{code, ctx, fresh_step, pick, user_name, wrong_code, Rng};
use super::notify::PassWatch;
use super::world::World;
use super::PASSWORD;
use mailmfa::pam::client;
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// One login to time: who, with what, and what must come out.
struct Attempt {
    pub(super) user: String,
    pub(super) password: String,
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
pub(super) struct Budget {
    pub(super) logins: usize,
    pub(super) cap: Duration,
}

/// One batch of `module` with password step `pw` on the pool of `scale`: its timed passes.
pub(super) fn batch(
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
    if let (Module::Sql(engine), Some(sql)) = (module, &world.sql) {
        sql.warm(world, &service, engine, scale, &picks)?;
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
            (Module::Mailmfa | Module::Notify(_) | Module::Sql(_), Case::First) => {
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
            (Module::Mailmfa | Module::Notify(_) | Module::Sql(_), Case::Reuse) => {
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
pub(super) fn settle(path: &Path) -> Result<(), String> {
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

/// CPU time this process has used, ns (CLOCK_PROCESS_CPUTIME_ID).
pub(super) fn cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
