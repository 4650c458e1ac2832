//! The report's tables of the records in SQL (issue 15): mailmfa with `records = "sql"` in
//! each server beside mailmfa with record files, in the same run: the main scale in detail,
//! and p50 by scale with the difference to files in ms. The goal is judged in `targets.rs`.

use super::cases::{Case, Module, Pw, Sample};
use super::report::{count, times, us, Report};
use super::sql::CLIENT_WORK;
use std::fmt::Write as _;

/// The cases the SQL stacks run, in the report's order.
pub(super) const SQL_CASES: [Case; 3] = [Case::Reuse, Case::First, Case::Wrong];

/// SQL − files, p50, in ms with a sign.
pub(super) fn delta_ms(sql: &Sample, files: &Sample) -> String {
    format!("{:+.3}", (sql.p50() - files.p50()) / 1e6)
}

impl Report<'_> {
    /// The SQL tables, if the run had the SQL stacks.
    pub(super) fn sql_tables(&self, r: &mut String) {
        let Some(sql) = &self.world.sql else {
            return;
        };
        let modules = self.world.sql_modules();
        let scale = self.world.main_scale;
        let loads: Vec<String> = sql
            .loads
            .iter()
            .map(|(n, d)| format!("{} rows {:.1} s", count(*n), d.as_secs_f64()))
            .collect();
        let _ = writeln!(
            r,
            "### Records in SQL (issue 15): mailmfa with `records = \"sql\"` beside record files, {} mailboxes, `pam_permit`\n\n\
             The same stack and state files as mailmfa's row (\"files\"); the record is one sealed row read \
             from PostgreSQL 15 or MariaDB 10.11 on 127.0.0.1 (TCP), started for the run by the tests' harness \
             (`tests/servers/`; servers started in {:.1} s; rows loaded into both: {}). Before each batch, \
             untimed: the picked rows are read by the harness with the module's statement (so they are in the \
             server's cache, as the record files are in the page cache), then read again, one round trip each, \
             timed alone (the last rows of the next table: back to back, and each after busy client work as in \
             a login), and one login without MFA opens the module's \
             connection (one per process, kept across logins). \"SQL − files\" compares p50 with the files row of the same case in this run.\n\n\
             | case | records | as expected | what happened | logins/s | p50 µs | p90 µs | p99 µs | CPU p50 µs | SQL − files (p50) ms | SQL ÷ files (p50) | SQL − files (CPU p50) ms |\n\
             |---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            count(scale),
            sql.started.as_secs_f64(),
            loads.join(", ")
        );
        for case in SQL_CASES {
            let Some(files) = self.get(Module::Mailmfa, Pw::Permit, scale, case) else {
                continue;
            };
            for m in std::iter::once(Module::Mailmfa).chain(modules.iter().copied()) {
                let Some(s) = self.get(m, Pw::Permit, scale, case) else {
                    continue;
                };
                let happened: Vec<String> =
                    s.reasons.iter().map(|(k, v)| format!("{k} {v}")).collect();
                let compared = match m {
                    Module::Sql(_) => format!(
                        " {} | {} | {:+.3} |",
                        delta_ms(s, files),
                        times(s.p50() / files.p50()),
                        (s.cpu_p50() - files.cpu_p50()) / 1e6
                    ),
                    _ => " | | |".to_string(),
                };
                let _ = writeln!(
                    r,
                    "| {} | {} | {}/{} | {} | {:.0} | {} | {} | {} | {} |{compared}",
                    case.title(),
                    match m {
                        Module::Sql(engine) => engine.title(),
                        _ => "files",
                    },
                    s.as_expected,
                    s.ns.len(),
                    happened.join(", "),
                    s.per_sec(),
                    us(s.p50()),
                    us(s.p90()),
                    us(s.p99()),
                    us(s.cpu_p50()),
                );
            }
        }
        let _ = writeln!(r);
        self.sql_scale_table(r, &modules);
    }

    /// p50 by scale: files, then each server with its difference to files.
    fn sql_scale_table(&self, r: &mut String, modules: &[Module]) {
        let scales: Vec<usize> = self.world.pools.keys().copied().collect();
        let mut head = "| case | records |".to_string();
        let mut rule = "|---|---|".to_string();
        for &s in &scales {
            let _ = write!(head, " {} |", count(s));
            rule.push_str("---:|");
        }
        let _ = writeln!(
            r,
            "### Records in SQL by scale: wall p50 µs (CPU p50), and SQL − files (p50) in ms, `pam_permit`\n\n{head}\n{rule}"
        );
        for case in SQL_CASES {
            for m in std::iter::once(Module::Mailmfa).chain(modules.iter().copied()) {
                let mut line = format!(
                    "| {} | {} |",
                    case.title(),
                    match m {
                        Module::Sql(engine) => engine.title(),
                        _ => "files",
                    }
                );
                for &scale in &scales {
                    let s = self.get(m, Pw::Permit, scale, case);
                    let files = self.get(Module::Mailmfa, Pw::Permit, scale, case);
                    match (s, files, m) {
                        (Some(s), Some(f), Module::Sql(_)) => {
                            let _ = write!(
                                line,
                                " {} ({}) {} |",
                                us(s.p50()),
                                us(s.cpu_p50()),
                                delta_ms(s, f)
                            );
                        }
                        (Some(s), _, _) => {
                            let _ = write!(line, " {} ({}) |", us(s.p50()), us(s.cpu_p50()));
                        }
                        (None, _, _) => line.push_str(" - |"),
                    }
                }
                let _ = writeln!(r, "{line}");
            }
        }
        let Some(sql) = &self.world.sql else {
            return;
        };
        let selects = sql.selects.borrow();
        for m in modules {
            let Module::Sql(engine) = *m else { continue };
            for spaced in [false, true] {
                let how = if spaced {
                    format!(
                        "each after {} µs of busy client work",
                        CLIENT_WORK.as_micros()
                    )
                } else {
                    "back to back".to_string()
                };
                let mut line = format!(
                    "| the module's SELECT alone (harness, same wire client), {how} | {} |",
                    engine.title()
                );
                for &scale in &scales {
                    match selects.get(&(engine, scale, spaced)) {
                        Some(alone) => {
                            let _ =
                                write!(line, " {} ({}) |", us(alone.p50()), us(alone.cpu_p50()));
                        }
                        None => line.push_str(" - |"),
                    }
                }
                let _ = writeln!(r, "{line}");
            }
        }
        let _ = writeln!(r);
    }
}
