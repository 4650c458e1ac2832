// One connection to the SQL records per process (issue 15), against a REAL PostgreSQL and a
// REAL MariaDB: logins in one process reuse one session of the database, a forked child opens
// its own (it never writes on its parent's), and the parent's still works afterwards. Sessions
// are counted by the server (pg_stat_activity, the process list). A binary of its own, its
// tests one at a time: the connection slot is per process, and a test on another server in
// the same process would replace it. Owns: tests/sql_connection.rs. Support: tests/sql/.

mod fixture;
mod servers;
mod skip;
mod sql;

use fixture::{code, wait_for_step_margin, Fixture};
use sql::{Db, Kind};
use std::io::{Read, Write};
use std::sync::Mutex;

const PW: &str = "T9D3K!px";
const ALICE: &str = "alice@example.com";
const IP: Option<&str> = Some("192.0.2.10");

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

for_each_backend!(one_connection_per_process_is_reused_and_a_forked_child_opens_its_own);

fn one_connection_per_process_is_reused_and_a_forked_child_opens_its_own(kind: Kind) {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(db) = Db::start(kind) else { return };
    let f = db.fixture("");
    f.install_example("dovecot-virtual", "mail", "");
    f.add_password(ALICE, PW);
    let record = f.enable(ALICE);
    wait_for_step_margin(10);
    let good = format!("{PW}{}", code(&record, 0));
    // The test's own writes hold a session of their own: the library linked into this test
    // and the module libpam loads are two copies, each with its connection.
    let own = db.sessions();
    for _ in 0..4 {
        let r = f.login("mail", ALICE, &good, IP);
        assert!(r.success(), "{r:?}");
    }
    assert_eq!(
        db.sessions(),
        own + 1,
        "four logins in one process, one session"
    );
    let (child_reason, sessions_meanwhile) = fork_login(&f, &good, &db);
    assert_eq!(child_reason, "reused", "the child's login");
    assert_eq!(
        sessions_meanwhile,
        own + 2,
        "the child opened its own session"
    );
    let r = f.login("mail", ALICE, &good, IP);
    assert_eq!(
        r.reason.as_deref(),
        Some("reused"),
        "the parent's still works: {r:?}"
    );
}

/// Forks this process; the child logs in once through libpam, reports the reason on a pipe
/// and waits (its connection open) until the parent has counted the sessions. Returns the
/// child's reason and the sessions counted while it waited.
fn fork_login(f: &Fixture, password: &str, db: &Db) -> (String, usize) {
    let (mut from_child, mut to_parent) = std::io::pipe().unwrap();
    let (mut from_parent, to_child) = std::io::pipe().unwrap();
    // SAFETY: the child only logs in through libpam (which the parent already loaded), writes
    // on one pipe, reads from another and leaves with _exit, running no destructor.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        drop(to_child);
        let r = f.login("mail", ALICE, password, IP);
        let _ = to_parent.write_all(format!("{}\n", r.reason.unwrap_or_default()).as_bytes());
        let mut go = [0u8; 1];
        let _ = from_parent.read(&mut go);
        // SAFETY: ends the child without unwinding into the test harness.
        unsafe { libc::_exit(0) };
    }
    drop(to_parent);
    drop(from_parent);
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while from_child.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let sessions = db.sessions();
    drop(to_child);
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    (String::from_utf8_lossy(&line).into_owned(), sessions)
}
