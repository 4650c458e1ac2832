// A REAL Dovecot whose module reads the records from a REAL PostgreSQL, and from a REAL
// MariaDB (issue 15): the tables made by `mailmfa db init`, the record written by the
// library's store (sealed), an IMAP login with password+code accepted (`reason=ok` in the
// syslog line), a wrong code refused; the database stopped mid-run denies the login with
// `records_unavailable`, and the login works again when it is back, without touching Dovecot.
// Owns: tests/integration_sql.rs. Support: tests/integration/, tests/sql/, tests/servers/.

mod fixture;
mod integration;
mod servers;
mod skip;
mod sql;

use integration::{expect_line, ip, with_code, World, DOVECOT_PREREQS};
use servers::{imap_login, require_prereqs};
use sql::{Db, Kind};

const ALICE: &str = "alice@example.com";

for_each_backend!(a_dovecot_login_reads_the_record_from_sql_and_is_denied_while_it_is_down);

fn a_dovecot_login_reads_the_record_from_sql_and_is_denied_while_it_is_down(kind: Kind) {
    if !require_prereqs(DOVECOT_PREREQS) {
        return;
    }
    let Some(mut db) = Db::start(kind) else {
        return;
    };
    let w = World::new(&db.config(), "dovecot-virtual", &["dovecot"], "");
    w.mailmfa_ok(&["db", "init"]);
    let record = w.mfa_user(ALICE);
    assert!(
        !w.f.record_path(ALICE).exists(),
        "the record went to a file"
    );
    let d = w.dovecot("dovecot");
    integration::step_margin(8);
    // One IMAP login from 192.0.2.FROM and the module's line about it.
    let attempt = |from: u8, password: &str, phase: &str, result: &str, reason: &str| {
        let mark = d.syslog().mark();
        let got_in = imap_login(d.imap_addr(), ip(from), ALICE, password).is_ok();
        assert_eq!(
            got_in,
            result == "accept",
            "the login from {from} ({reason})"
        );
        let rhost = ip(from).to_string();
        expect_line(d.syslog(), mark, ALICE, &rhost, phase, result, reason);
    };
    attempt(20, &with_code(&record, 0), "verify", "accept", "ok");
    attempt(21, &with_code(&record, 5), "verify", "deny", "bad_code");
    // Stopped: denied at once (in split, which reads the record), Dovecot untouched.
    db.stop();
    attempt(
        22,
        &with_code(&record, 0),
        "split",
        "deny",
        "records_unavailable",
    );
    // Back: the next login opens a new connection by itself.
    db.start_again();
    attempt(20, &with_code(&record, 0), "verify", "accept", "reused");
}
