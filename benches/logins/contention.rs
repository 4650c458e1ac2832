//! The contention section: P = 1, 2, 4, 8 worker processes (the harness re-run in `worker`
//! mode) released together, on one mailbox and on distinct mailboxes; failed logins and lost
//! state updates. Also the job files the workers and callgrind runs read.

use super::cases::{Module, Pw, Sample};
use super::driver::settle;
use super::mailboxes::{code, ctx, fresh_step, user_name, write_file, Rng};
use super::world::World;
use super::{PASSWORD, RHOST, WARMUP_USER};
use mailmfa::pam::client::{self, Request};
use std::collections::HashSet;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A job file: one `user<TAB>password` line per login.
pub(super) fn write_job(path: &Path, logins: &[(String, String)]) -> Result<(), String> {
    let text: String = logins.iter().map(|(u, p)| format!("{u}\t{p}\n")).collect();
    ctx(write_file(path, text.as_bytes()), || {
        path.display().to_string()
    })
}

pub(super) fn read_job(path: &str) -> Result<Vec<(String, String)>, String> {
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
pub(super) fn worker(args: &[String]) -> Result<(), String> {
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

/// What P processes released together did.
pub(super) struct Contention {
    pub(super) logins: usize,
    pub(super) failed: usize,
    pub(super) wall: Duration,
    pub(super) sample: Sample,
}

/// One job a worker: the client address, and the logins (user, password) it makes in turn.
type Job = (String, Vec<(String, String)>);

/// `p` jobs of `per_worker` logins each, all as mailbox `u` with the code of `step`, from
/// RHOST.
fn same_code_jobs(u: usize, step: u64, p: usize, per_worker: usize) -> Vec<Job> {
    let password = format!("{PASSWORD}{}", code(u, step));
    (0..p)
        .map(|_| {
            (
                RHOST.to_string(),
                vec![(user_name(u), password.clone()); per_worker],
            )
        })
        .collect()
}

/// Lets the main pool's files settle, then runs one worker per job through `service`, all
/// released at once.
fn contend(world: &World, service: &str, jobs: &[Job]) -> Result<Contention, String> {
    settle(&world.pool(world.main_scale).dir)?;
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
pub(super) struct ContentionRow {
    pub(super) scenario: String,
    pub(super) p: usize,
    pub(super) run: Contention,
    /// Lost state updates, when the scenario can count them.
    pub(super) lost: Option<usize>,
    pub(super) note: String,
}

pub(super) fn contention(world: &World, quick: bool) -> Result<Vec<ContentionRow>, String> {
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
        let service = World::service(Module::Mailmfa, Pw::Permit, main.n);
        let run = contend(world, &service, &same_code_jobs(u, step, p, per_worker))?;
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
        let service = World::service(Module::Ga, Pw::Permit, main.n);
        let run = contend(world, &service, &same_code_jobs(u, step, p, per_worker))?;
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
