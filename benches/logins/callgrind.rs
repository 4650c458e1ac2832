//! Instructions per login: the harness re-runs itself under `valgrind --tool=callgrind` in
//! `callgrind-one` mode with n0 and n0 + n logins of one case, and divides the difference by n.

use super::cases::{Case, Module, Pw};
use super::contention::{read_job, write_job};
use super::driver::settle;
use super::mailboxes::{code, ctx, fresh_step, user_name, wrong_code, Rng};
use super::world::World;
use super::{PASSWORD, RHOST};
use mailmfa::pam::client::{self, Request};
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `callgrind-one CONFDIR SERVICE RHOST JOB COUNT`: runs the job's first COUNT logins and
/// prints how many succeeded (run under valgrind by the main process).
pub(super) fn callgrind_one(args: &[String]) -> Result<(), String> {
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

/// Instructions per login of one (module, case) under callgrind.
pub(super) struct CgRow {
    pub(super) module: Module,
    pub(super) case: Case,
    pub(super) per_login: f64,
    pub(super) n: usize,
    pub(super) ok: String,
}

/// `notify_only`: the floor, mailmfa and the notify stacks only.
pub(super) fn callgrind(
    world: &World,
    quick: bool,
    notify_only: bool,
) -> Result<Vec<CgRow>, String> {
    let main = world.pool(world.main_scale);
    let dir = world.work.join("callgrind");
    let _ = fs::remove_dir_all(&dir);
    ctx(fs::create_dir_all(&dir), || dir.display().to_string())?;
    let n0 = 5;
    let mut rows = Vec::new();
    let mut plan = Case::COMPARED.to_vec();
    for &module in &world.notify {
        plan.extend(module.cases().iter().map(|&case| (module, case)));
    }
    // Records in SQL (issue 15): a reused code, the cheapest success.
    plan.extend(world.sql_modules().into_iter().map(|m| (m, Case::Reuse)));
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
                    Module::Mailmfa | Module::Notify(_) | Module::Sql(_) => {
                        main.returning_mailmfa(i, step)?
                    }
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
