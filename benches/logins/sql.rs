//! Records in SQL (issue 15): a PostgreSQL and a MariaDB server started for the run by the
//! tests' harness (`tests/servers/`), one database per scale holding every mailbox's sealed
//! row (loaded in bulk), the `mailmfa.toml` of the [`Module::Sql`] stacks (`records = "sql"`,
//! the state in files as for mailmfa's own stack), the untimed warm-up before a batch, and the
//! checks made before timing. The servers stop when [`SqlWorld`] is dropped (end of the run,
//! an error or a panic; the harness's watchdog if the process dies).
//!
//! The report's table is `sql_report.rs`; the goal (p50 within +0.3 ms of files) is judged in
//! `targets.rs`.

use super::cases::{Module, Sample};
use super::driver::cpu_ns;
use super::mailboxes::{ctx, mkdir_0700, record_text, unix_now, user_name, write_file};
use super::pool::Pool;
use super::servers::find_program;
use super::servers::mariadb::{MariaDb, MARIADB_PREREQS};
use super::servers::postgres::{Postgres, POSTGRES_PREREQS};
use super::world::World;
use super::WARMUP_USER;
use mailmfa::config::SqlSettings;
use mailmfa::login::Login;
use mailmfa::store::secure::Owners;
use mailmfa::store::sql::client::Param;
use mailmfa::store::sql::connection::Connection;
use mailmfa::store::sql::schema;
use mailmfa::store::sql::seal::{new_key_line, Keys};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The SQL server of a [`Module::Sql`] stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Engine {
    /// PostgreSQL (Debian's postgresql-15), over TCP on 127.0.0.1, SCRAM-SHA-256.
    Postgres,
    /// MariaDB (Debian's mariadb-server), over TCP on 127.0.0.1, mysql_native_password.
    Mariadb,
}

impl Engine {
    /// Both servers, in the report's order.
    pub(super) const ALL: [Engine; 2] = [Engine::Postgres, Engine::Mariadb];

    /// The stack's name: its service file and config are named after it.
    pub(super) fn key(self) -> &'static str {
        match self {
            Engine::Postgres => "mailmfa-sql-postgres",
            Engine::Mariadb => "mailmfa-sql-mariadb",
        }
    }

    /// The name in the report's tables.
    pub(super) fn title(self) -> &'static str {
        match self {
            Engine::Postgres => "PostgreSQL",
            Engine::Mariadb => "MariaDB",
        }
    }
}

/// A running server of the tests' harness.
enum Server {
    Pg(Postgres),
    My(MariaDb),
}

impl Server {
    fn start(engine: Engine) -> Server {
        match engine {
            Engine::Postgres => Server::Pg(Postgres::start()),
            Engine::Mariadb => Server::My(MariaDb::start()),
        }
    }

    /// Makes the database `mail_<n>` that `mailmfa` may use.
    fn create_database(&self, n: usize) {
        match self {
            Server::Pg(s) => {
                s.psql(&format!("CREATE DATABASE mail_{n} OWNER mailmfa"));
            }
            Server::My(s) => {
                s.sql(&format!(
                    "CREATE DATABASE mail_{n} CHARACTER SET utf8mb4;
                     GRANT ALL ON mail_{n}.* TO 'mailmfa'@'127.0.0.1';"
                ));
            }
        }
    }

    /// The settings of the module (and of the harness's own connection) for `mail_<n>`.
    fn settings(&self, n: usize, key_file: &Path) -> SqlSettings {
        let (url, password_file) = match self {
            Server::Pg(s) => (
                format!("postgresql://mailmfa@127.0.0.1:{}/mail_{n}", s.port()),
                s.password_file(),
            ),
            Server::My(s) => (
                format!("mysql://mailmfa@127.0.0.1:{}/mail_{n}", s.port()),
                s.password_file(),
            ),
        };
        SqlSettings {
            url,
            password_file: Some(password_file),
            key_file: Some(key_file.to_path_buf()),
            timeout_ms: TIMEOUT_MS,
            ..SqlSettings::default()
        }
    }
}

/// `sql_timeout_ms` of the stacks: far above a login's round trip, so that no statement times
/// out while the machine is loaded or a login runs under valgrind (the value costs nothing).
const TIMEOUT_MS: u64 = 5000;
/// The module's statement (`src/store/sql/mod.rs`): one round trip per login.
const SELECT: &str = "SELECT key_id, sealed FROM mailmfa_record WHERE login = $1";
/// The busy client work before each spaced round trip of the warm-up: about what a login
/// does around its query (a reused code costs files ~0.15 ms in all).
pub(super) const CLIENT_WORK: Duration = Duration::from_micros(250);
/// Rows per INSERT statement of the bulk load.
const ROWS_PER_INSERT: usize = 1000;

/// The servers of a run, the key file, and the harness's own connection per database.
pub(super) struct SqlWorld {
    /// The servers, by engine; stopped when dropped.
    servers: BTreeMap<Engine, Server>,
    /// The settings of each (engine, scale): what its stack's `mailmfa.toml` says.
    settings: BTreeMap<(Engine, usize), SqlSettings>,
    /// The harness's connection to each database, for the untimed warm-up of a batch.
    conns: RefCell<BTreeMap<(Engine, usize), Connection>>,
    /// The warm-up's round trips: the module's SELECT of one row, timed alone (wall and CPU
    /// time), back to back (`false`) or each after [`CLIENT_WORK`] (`true`).
    pub(super) selects: RefCell<BTreeMap<(Engine, usize, bool), Sample>>,
    /// How long starting both servers took.
    pub(super) started: Duration,
    /// How long loading each scale's rows into both servers took.
    pub(super) loads: Vec<(usize, Duration)>,
}

/// The owners the harness's connections accept for the password file: root only.
const ROOT: Owners = Owners {
    euid: 0,
    extra: None,
};

impl SqlWorld {
    /// Starts both servers (at once), makes the key file in `work/sql/`, one database per
    /// pool with every mailbox's sealed row, and writes each pool's [`Module::Sql`] configs.
    pub(super) fn start(work: &Path, pools: &BTreeMap<usize, Pool>) -> Result<SqlWorld, String> {
        let missing: Vec<&str> = POSTGRES_PREREQS
            .iter()
            .chain(MARIADB_PREREQS)
            .chain(&["setpriv"])
            .copied()
            .filter(|p| find_program(p).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "SQL records need {} (Debian: postgresql-15 mariadb-server; scripts/bench.sh \
                 installs them), or run with --no-sql",
                missing.join(", ")
            ));
        }
        let t = Instant::now();
        eprintln!("starting PostgreSQL and MariaDB ...");
        let servers = std::thread::scope(|s| {
            let started: Vec<_> = Engine::ALL
                .iter()
                .map(|&e| (e, s.spawn(move || Server::start(e))))
                .collect();
            started
                .into_iter()
                .map(|(e, h)| {
                    h.join()
                        .map(|server| (e, server))
                        .map_err(|_| format!("starting {} failed (see above)", e.title()))
                })
                .collect::<Result<BTreeMap<_, _>, String>>()
        })?;
        let started = t.elapsed();
        let dir = work.join("sql");
        let _ = std::fs::remove_dir_all(&dir);
        ctx(mkdir_0700(&dir), || dir.display().to_string())?;
        let key_file = dir.join("records.key");
        let line = new_key_line(1)?;
        ctx(write_file(&key_file, line.as_bytes()), || {
            key_file.display().to_string()
        })?;
        let keys = Keys::parse(&line)?;
        let mut world = SqlWorld {
            servers,
            settings: BTreeMap::new(),
            conns: RefCell::new(BTreeMap::new()),
            selects: RefCell::new(BTreeMap::new()),
            started,
            loads: Vec::new(),
        };
        for pool in pools.values() {
            let t = Instant::now();
            let mut conns = Vec::new();
            for (&engine, server) in &world.servers {
                server.create_database(pool.n);
                let settings = server.settings(pool.n, &key_file);
                let mut conn = Connection::open(&settings, ROOT).map_err(|f| f.why)?;
                schema::migrate(&mut *conn.client, conn.dialect, 0)
                    .map_err(|e| format!("{}: db init: {e}", engine.title()))?;
                pool.write_sql_config(engine, &settings)?;
                world.settings.insert((engine, pool.n), settings);
                conns.push((engine, conn));
            }
            eprintln!("loading {} rows into each server ...", pool.n);
            load(&keys, pool.n, &mut conns)?;
            let took = t.elapsed();
            eprintln!("  {:.1} s", took.as_secs_f64());
            world.loads.push((pool.n, took));
            world
                .conns
                .get_mut()
                .extend(conns.into_iter().map(|(e, c)| ((e, pool.n), c)));
        }
        Ok(world)
    }

    /// The stacks this run measures, one per server.
    pub(super) fn modules(&self) -> Vec<Module> {
        self.servers.keys().map(|&e| Module::Sql(e)).collect()
    }

    /// Untimed, before a batch of `engine` at `scale`: the rows of `picks` read by the
    /// harness's connection with the module's own statement, so that every scale is measured
    /// with them in the server's cache (as the record files are in the page cache), then read
    /// again, one round trip each, timed alone (for the report): back to back, and each after
    /// [`CLIENT_WORK`] of busy client work, as a login's query follows the rest of its work;
    /// then one login of a mailbox without MFA through the stack, so that the module's
    /// connection (one per process, kept across logins, as in an auth worker) is open before
    /// the timer starts.
    pub(super) fn warm(
        &self,
        world: &World,
        service: &str,
        engine: Engine,
        scale: usize,
        picks: &[usize],
    ) -> Result<(), String> {
        let mut conns = self.conns.borrow_mut();
        let conn = conns
            .get_mut(&(engine, scale))
            .ok_or_else(|| format!("no {} database for {scale}", engine.title()))?;
        let mut selects = self.selects.borrow_mut();
        for (timed, spaced) in [(false, false), (true, false), (true, true)] {
            for &i in picks {
                let name = user_name(i);
                if spaced {
                    let t = Instant::now();
                    while t.elapsed() < CLIENT_WORK {
                        std::hint::spin_loop();
                    }
                }
                let cpu = cpu_ns();
                let t = Instant::now();
                let out = conn
                    .execute(SELECT, &[Param::Text(&name)])
                    .map_err(|e| format!("{}: warm-up: {e}", engine.title()))?;
                if timed {
                    let ns = t.elapsed().as_nanos() as u64;
                    let sample = selects.entry((engine, scale, spaced)).or_default();
                    sample.ns.push(ns);
                    sample.cpu.push(cpu_ns() - cpu);
                }
                if out.rows.len() != 1 {
                    return Err(format!("{}: no row for {name}", engine.title()));
                }
            }
        }
        if !world.login(service, WARMUP_USER, super::PASSWORD) {
            return Err(format!("{service}: the warm-up login failed"));
        }
        Ok(())
    }

    /// The rows in the database of `engine` at `scale` (a check of the load).
    pub(super) fn rows(&self, engine: Engine, scale: usize) -> Result<usize, String> {
        let mut conns = self.conns.borrow_mut();
        let conn = conns
            .get_mut(&(engine, scale))
            .ok_or_else(|| format!("no {} database for {scale}", engine.title()))?;
        let out = conn
            .execute("SELECT COUNT(*) FROM mailmfa_record", &[])
            .map_err(|e| e.to_string())?;
        out.rows
            .first()
            .and_then(|r| r.first()?.as_deref()?.parse().ok())
            .ok_or_else(|| "COUNT(*) returned no number".to_string())
    }

    /// The `sql_url` of `engine` at `scale`.
    pub(super) fn url(&self, engine: Engine, scale: usize) -> &str {
        self.settings
            .get(&(engine, scale))
            .map_or("-", |s| s.url.as_str())
    }
}

/// Seals the records of mailboxes 0..n (the text of their record files) and inserts them into
/// every connection's `mailmfa_record`, in login order (appends to the primary key), in
/// multi-row INSERTs.
fn load(keys: &Keys, n: usize, conns: &mut [(Engine, Connection)]) -> Result<(), String> {
    let mut order: Vec<(String, usize)> = (0..n).map(|i| (user_name(i), i)).collect();
    order.sort_unstable();
    let created = unix_now();
    for chunk in order.chunks(ROWS_PER_INSERT) {
        let mut sql = String::with_capacity(chunk.len() * 400);
        sql.push_str(
            "INSERT INTO mailmfa_record (login, key_id, sealed, created, updated) VALUES ",
        );
        for (k, (name, i)) in chunk.iter().enumerate() {
            let login = Login::parse(name.as_bytes()).map_err(|e| format!("{name}: {e:?}"))?;
            let sealed = keys.seal(&login, record_text(*i, created).as_bytes())?;
            let _ = write!(
                sql,
                "{}('{name}', {}, '{}', {created}, {created})",
                if k > 0 { ", " } else { "" },
                sealed.key_id,
                sealed.text
            );
        }
        for (engine, conn) in conns.iter_mut() {
            conn.client
                .script(&sql)
                .map_err(|e| format!("{}: loading rows: {e}", engine.title()))?;
        }
    }
    Ok(())
}

impl Pool {
    /// The (empty) `record_dir` of the [`Module::Sql`] stacks: a record can only come from
    /// the database.
    fn sql_record_dir(&self) -> PathBuf {
        self.mm().join("sql-pending")
    }

    /// Writes the `mailmfa.toml` of `engine`'s stack: the state where mailmfa's own stack
    /// keeps it, the records in SQL.
    fn write_sql_config(&self, engine: Engine, s: &SqlSettings) -> Result<(), String> {
        let pending = self.sql_record_dir();
        let _ = std::fs::remove_dir_all(&pending);
        ctx(mkdir_0700(&pending), || pending.display().to_string())?;
        let path = self.config_of(Module::Sql(engine));
        let text = format!(
            "record_dir = \"{}\"\nstate_dir = \"{}\"\nrecords = \"sql\"\nsql_url = \"{}\"\n\
             sql_password_file = \"{}\"\nsql_key_file = \"{}\"\nsql_timeout_ms = {}\n",
            pending.display(),
            self.state.display(),
            s.url,
            s.password_file
                .as_deref()
                .unwrap_or(Path::new(""))
                .display(),
            s.key_file.as_deref().unwrap_or(Path::new("")).display(),
            s.timeout_ms
        );
        ctx(write_file(&path, text.as_bytes()), || {
            path.display().to_string()
        })
    }
}

/// The checks of the SQL stacks before timing, at the main scale with mailbox `i`: the load
/// is complete, a returning mailbox's right code is accepted and its state (a file) rewritten,
/// the reuse accepted, a wrong code refused; the stack's `record_dir` is empty, so the record
/// came from the database.
pub(super) fn sanity(
    world: &World,
    i: usize,
    step: u64,
    right: &str,
    wrong: &str,
) -> Result<Vec<(String, bool)>, String> {
    let Some(sql) = &world.sql else {
        return Ok(Vec::new());
    };
    let pool = world.pool(world.main_scale);
    let user = user_name(i);
    let mut checks = Vec::new();
    for m in sql.modules() {
        let Module::Sql(engine) = m else { continue };
        let service = World::service(m, super::cases::Pw::Permit, pool.n);
        let title = engine.title();
        for (&n, _) in world.pools.iter() {
            let rows = sql.rows(engine, n)?;
            checks.push((format!("{title}: mail_{n} holds {rows} rows"), rows == n));
        }
        let empty = std::fs::read_dir(pool.sql_record_dir()).is_ok_and(|mut d| d.next().is_none());
        pool.returning_mailmfa(i, step)?;
        let (ok, reason) = world.login_reason(&service, &user, right);
        checks.push((
            format!(
                "{title}: first use of a new step accepted (ok), the record read from {} (record_dir empty)",
                sql.url(engine, pool.n)
            ),
            empty && ok && reason.as_deref() == Some("ok"),
        ));
        checks.push((
            format!("{title}: first use of a new step rewrote the state file"),
            pool.read_state(i)
                .is_some_and(|st| st.last_step == Some(step)),
        ));
        let (ok, reason) = world.login_reason(&service, &user, right);
        checks.push((
            format!("{title}: reuse from the same client accepted (reused)"),
            ok && reason.as_deref() == Some("reused"),
        ));
        pool.returning_mailmfa(i, step)?;
        let (ok, reason) = world.login_reason(&service, &user, wrong);
        checks.push((
            format!("{title}: wrong code refused (bad_code)"),
            !ok && reason.as_deref() == Some("bad_code"),
        ));
    }
    pool.forget_mailmfa(i);
    Ok(checks)
}
