//! One run, in order: the namespace and image, the pools, the SQL servers and their rows,
//! the services, the checks, the interleaved rounds, contention, callgrind, the report; the
//! SQL servers stop when the run's world is dropped.

use super::callgrind::callgrind;
use super::cases::{Key, Module, Pw, Sample};
use super::checks::sanity;
use super::contention::contention;
use super::driver::{batch, Budget};
use super::mailboxes::{ctx, mkdir_0700, Rng};
use super::namespace::{prepare_image, private_dev};
use super::options::parse_options;
use super::pool::Pool;
use super::report::Report;
use super::sql::SqlWorld;
use super::world::World;
use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, Instant};

pub(super) fn run(args: &[String]) -> Result<(), String> {
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
        sql: None,
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
    if o.sql {
        world.sql = Some(SqlWorld::start(&work, &world.pools)?);
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
    // Records in SQL (issue 15): each server's stack at every scale, beside mailmfa's.
    for &scale in &o.scales {
        combos.extend(
            world
                .sql_modules()
                .into_iter()
                .map(|m| (m, Pw::Permit, scale)),
        );
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
