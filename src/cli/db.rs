//! `mailmfa db`: the SQL records' tables (init, migrate, status), keys (keygen, rekey) and
//! moving records between files and the database (import, export). The rules live in the
//! library (`store::sql`, `store::transfer`); this file parses and presents.

use super::command::{Db, DbKeygen, DbMove, DbStatus};
use super::doctor::{finding, Finding, Level};
use super::exit::{CliResult, Exit, Failure};
use super::output::print_json;
use super::Context;
use mailmfa::config::RecordsBackend;
use mailmfa::store::backend::Backend;
use mailmfa::store::files::{write_owned, FileStore};
use mailmfa::store::secure;
use mailmfa::store::sql::connection::{Connection, Fault};
use mailmfa::store::sql::schema::{self, SCHEMA_VERSION};
use mailmfa::store::sql::seal::{new_key_line, Keys};
use mailmfa::store::sql::SqlStore;
use mailmfa::store::transfer::copy_records;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// Runs `mailmfa db ...` but `keygen` (which needs no config: [`keygen`]).
pub fn run(ctx: &Context, command: &Db) -> CliResult {
    let store = sql_store(ctx)?;
    match command {
        Db::Init(_) => init(ctx, false),
        Db::Migrate(_) => init(ctx, true),
        Db::Status(a) => status(ctx, &store, a),
        Db::Rekey(_) => {
            let done = store.rekey()?;
            println!(
                "{done} records sealed again with key {}",
                keys(&store)?.current()
            );
            Ok(())
        }
        Db::Import(a) => transfer(ctx, &store, a, true),
        Db::Export(a) => transfer(ctx, &store, a, false),
        Db::Keygen(a) => keygen(a),
    }
}

fn sql_store(ctx: &Context) -> Result<SqlStore, Failure> {
    if ctx.settings.records != RecordsBackend::Sql {
        return Err(Failure::new(
            Exit::Error,
            "the config says `records = \"files\"`: set `records = \"sql\"` and the `sql_*` \
             options first (sql.md)",
        ));
    }
    match ctx.store() {
        Backend::Sql(store) => Ok(store),
        _ => unreachable!("records = \"sql\" opens the SQL store"),
    }
}

fn fault(f: Fault) -> Failure {
    Failure::new(
        Exit::Error,
        format!("the database: {} ({})", f.why, f.reason.name()),
    )
}

fn keys(store: &SqlStore) -> Result<Keys, Failure> {
    store.keys().map_err(fault)
}

fn connect(ctx: &Context) -> Result<Connection, Failure> {
    Connection::open(&ctx.settings.sql, ctx.settings.record_owners(ctx.euid)).map_err(fault)
}

/// `db init` (`upgrade` false) and `db migrate` (true).
fn init(ctx: &Context, upgrade: bool) -> CliResult {
    let mut conn = connect(ctx)?;
    let at = schema::version(&mut *conn.client).map_err(|e| fault(e.into()))?;
    let from = match (at, upgrade) {
        (None, false) => 0,
        (Some(v), false) => {
            return Err(Failure::new(
                Exit::Conflict,
                format!("the tables are there already (schema version {v}): nothing to create"),
            ))
        }
        (None, true) => {
            return Err(Failure::new(
                Exit::Conflict,
                "there are no mailmfa tables to migrate: run `mailmfa db init`",
            ))
        }
        (Some(v), true) if v > SCHEMA_VERSION => {
            return Err(Failure::new(
                Exit::Error,
                format!(
                "the tables are at schema version {v}, newer than this build's {SCHEMA_VERSION}"
            ),
            ))
        }
        (Some(v), true) => v,
    };
    let applied =
        schema::migrate(&mut *conn.client, conn.dialect, from).map_err(|e| fault(e.into()))?;
    match applied.last() {
        Some(to) => println!(
            "schema version {from} -> {to} ({} migrations applied)",
            applied.len()
        ),
        None => println!("schema version {from}: up to date"),
    }
    Ok(())
}

/// What `db status` and the doctor read from the database: its schema version and how many
/// rows each key sealed.
struct Summary {
    schema: Option<u32>,
    keys_used: BTreeMap<u16, u64>,
}

fn summary(ctx: &Context) -> Result<Summary, Failure> {
    let mut conn = connect(ctx)?;
    let schema = schema::version(&mut *conn.client).map_err(|e| fault(e.into()))?;
    let mut keys_used = BTreeMap::new();
    if schema.is_some() {
        let rows = conn
            .execute(
                "SELECT key_id, COUNT(*) FROM mailmfa_record GROUP BY key_id",
                &[],
            )
            .map_err(|e| fault(e.into()))?
            .rows;
        for row in rows {
            let cell = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
            keys_used.insert(cell(0).parse().unwrap_or(0), cell(1).parse().unwrap_or(0));
        }
    }
    Ok(Summary { schema, keys_used })
}

fn status(ctx: &Context, store: &SqlStore, a: &DbStatus) -> CliResult {
    let Summary { schema, keys_used } = summary(ctx)?;
    let rows: u64 = keys_used.values().sum();
    let key_file = store.keys().map(|k| k.ids());
    if a.json {
        let used: BTreeMap<String, u64> = keys_used
            .iter()
            .map(|(id, n)| (id.to_string(), *n))
            .collect();
        print_json(&json!({
            "url": ctx.settings.sql.url,
            "schema": schema,
            "want": SCHEMA_VERSION,
            "rows": rows,
            "keys_used": used,
            "key_file": key_file.as_ref().ok(),
        }));
    } else {
        println!("database:   {}", ctx.settings.sql.url);
        match schema {
            Some(v) => println!("schema:     version {v} (this build: {SCHEMA_VERSION})"),
            None => println!("schema:     no tables (run `mailmfa db init`)"),
        }
        println!("records:    {rows}");
        for (id, n) in &keys_used {
            println!("  key {id}:    {n} rows");
        }
        match &key_file {
            Ok(ids) => println!(
                "key file:   keys {} (new records sealed with {})",
                ids.iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                ids.last().copied().unwrap_or_default()
            ),
            Err(f) => println!("key file:   unusable: {}", f.why),
        }
    }
    Ok(())
}

/// The doctor's findings on the SQL records (`records = "sql"`): the key file, the
/// connection, the schema version, and rows the key file cannot open or an old key sealed.
pub fn doctor_findings(ctx: &Context) -> Vec<Finding> {
    let Ok(store) = sql_store(ctx) else {
        return Vec::new();
    };
    let mut findings = Vec::new();
    let ids = match store.keys() {
        Ok(keys) => {
            findings.push(finding(
                Level::Ok,
                format!(
                    "sql: the key file holds keys {:?}; key {} seals",
                    keys.ids(),
                    keys.current()
                ),
                None,
            ));
            keys.ids()
        }
        Err(f) => {
            findings.push(finding(
                Level::Error,
                format!("sql: {} (every login is denied)", f.why),
                Some("mailmfa db keygen FILE, and sql_key_file = FILE"),
            ));
            Vec::new()
        }
    };
    let summary = match summary(ctx) {
        Ok(summary) => summary,
        Err(f) => {
            findings.push(finding(
                Level::Error,
                format!("sql: {} (every login is denied)", f.message),
                None,
            ));
            return findings;
        }
    };
    match summary.schema {
        Some(SCHEMA_VERSION) => findings.push(finding(
            Level::Ok,
            format!("sql: {} answers, schema version {SCHEMA_VERSION}", ctx.settings.sql.url),
            None,
        )),
        Some(v) => findings.push(finding(
            Level::Error,
            format!("sql: the tables are at schema version {v}, this build needs {SCHEMA_VERSION} (every login is denied)"),
            Some("mailmfa db migrate (or upgrade mailmfa when the database is newer)"),
        )),
        None => findings.push(finding(
            Level::Error,
            "sql: the mailmfa tables are missing (every login is denied)",
            Some("mailmfa db init"),
        )),
    }
    let current = ids.last().copied();
    for (id, n) in &summary.keys_used {
        if !ids.contains(id) && !ids.is_empty() {
            findings.push(finding(
                Level::Error,
                format!("sql: {n} rows are sealed with key {id}, which the key file does not hold: those logins are denied"),
                Some("put the key's line back into sql_key_file"),
            ));
        } else if Some(*id) != current && !ids.is_empty() {
            findings.push(finding(
                Level::Info,
                format!("sql: {n} rows are still sealed with the older key {id}"),
                Some("mailmfa db rekey, then remove the old line from every server's key file"),
            ));
        }
    }
    findings
}

/// `db import` (`into_sql`) and `db export`.
fn transfer(ctx: &Context, store: &SqlStore, a: &DbMove, into_sql: bool) -> CliResult {
    let mut settings = ctx.settings.clone();
    if let Some(dir) = &a.dir {
        settings.record_dir = dir.clone();
    }
    super::check_dir(&settings.record_dir, settings.record_owners(ctx.euid))?;
    let files = FileStore::new(&settings, ctx.euid);
    let done = if into_sql {
        copy_records(&files, store, a.replace)?
    } else {
        copy_records(store, &files, a.replace)?
    };
    let conflicts: Vec<&str> = done.conflicts.iter().map(|l| l.as_str()).collect();
    if a.json {
        print_json(&json!({
            "read": done.read,
            "written": done.written,
            "same": done.same,
            "conflicts": conflicts,
        }));
    } else {
        println!(
            "{} records read, {} written and read back equal, {} already there, {} held \
             differently by the target",
            done.read,
            done.written,
            done.same,
            conflicts.len()
        );
        for login in &conflicts {
            println!("  differs, left alone: {login}");
        }
    }
    if conflicts.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(
            Exit::Conflict,
            format!(
                "{} records differ in the target and were left alone (--replace replaces them)",
                conflicts.len()
            ),
        ))
    }
}

/// `db keygen FILE [--add]`: the file is written whole, by rename, mode 0600.
pub fn keygen(a: &DbKeygen) -> CliResult {
    let euid = mailmfa::pam::sys::effective_uid();
    let shown = a.file.display();
    let (text, id) = if a.add {
        let old = secure::read_secret(&a.file, euid)
            .map_err(|r| Failure::new(Exit::Error, mailmfa::store::net::refused(&a.file, r)))?;
        let keys = Keys::parse(&old)
            .map_err(|why| Failure::new(Exit::Error, format!("{shown}: {why}")))?;
        let id = keys.current().checked_add(1).ok_or_else(|| {
            Failure::new(
                Exit::Error,
                format!("{shown}: key id 65535 is the last one"),
            )
        })?;
        let mut text = zeroize::Zeroizing::new(old.to_string());
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&new_key_line(id).map_err(|why| Failure::new(Exit::Error, why))?);
        (text, id)
    } else {
        if a.file.symlink_metadata().is_ok() {
            return Err(Failure::new(
                Exit::Conflict,
                format!("{shown}: exists; `--add` adds a key to it"),
            ));
        }
        let mut text = zeroize::Zeroizing::new(
            "# mailmfa sql_key_file: `<id> <key>`, the last line seals (sql.md). Keep it 0600.\n"
                .to_string(),
        );
        text.push_str(&new_key_line(1).map_err(|why| Failure::new(Exit::Error, why))?);
        (text, 1)
    };
    let dir = a
        .file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = a
        .file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Failure::usage(format!("{shown}: not a file name")))?;
    write_owned(dir, name, text.as_bytes(), true, None)
        .map_err(|e| Failure::new(Exit::Error, format!("{shown}: {e}")))?;
    println!("{shown}: key {id} written (it seals new records from now on)");
    Ok(())
}
