//! The report: the markdown tables (per case, per scale, the password step, contention,
//! callgrind, notifications) and the ratios; which targets were met is `targets.rs`, the
//! records in SQL's tables `sql_report.rs`.

use super::callgrind::CgRow;
use super::cases::{Case, Key, Module, Pw, Sample};
use super::contention::ContentionRow;
use super::options::Options;
use super::world::World;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::process::Command;
use std::time::Duration;

pub(super) struct Report<'a> {
    pub(super) o: &'a Options,
    pub(super) world: &'a World,
    pub(super) results: &'a BTreeMap<Key, Sample>,
    pub(super) contention: &'a [ContentionRow],
    pub(super) cg: Option<&'a [CgRow]>,
    pub(super) generation: &'a [(usize, Duration)],
    pub(super) sanity: &'a [String],
    pub(super) took: Duration,
}

pub(super) fn us(ns: f64) -> String {
    let us = ns / 1000.0;
    if us.is_nan() {
        "-".to_string()
    } else if us < 100.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

pub(super) fn times(x: f64) -> String {
    if x.is_nan() || x.is_infinite() {
        "-".to_string()
    } else if x < 10.0 {
        format!("×{x:.2}")
    } else {
        format!("×{x:.0}")
    }
}

pub(super) fn count(n: usize) -> String {
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
    pub(super) fn get(&self, m: Module, pw: Pw, scale: usize, c: Case) -> Option<&Sample> {
        self.results
            .get(&(m, pw, scale, c))
            .filter(|s| !s.ns.is_empty())
    }

    pub(super) fn render(&self) -> String {
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
        self.sql_tables(&mut r);
        if !self.o.notify_only {
            self.scale_table(&mut r);
            self.contention_table(&mut r);
        }
        self.cg_table(&mut r);
        if !self.o.notify_only {
            self.targets(&mut r);
            self.targets_17(&mut r);
            self.targets_15(&mut r);
        }
        let _ = writeln!(r, "### Checks made before timing\n");
        for line in self.sanity {
            let _ = writeln!(r, "- {line}");
        }
        r
    }

    pub(super) fn machine(&self, r: &mut String) {
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
                "postgresql-15",
                "mariadb-server",
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
        for (m, c) in Case::COMPARED {
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
}
