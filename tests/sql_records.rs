// The SQL records backend (issue 15) against REAL databases: each test runs once with a
// PostgreSQL and once with a MariaDB started for it (initdb/postgres, mariadb-install-db/
// mariadbd from Debian's packages, own port and temp dir, stopped at the end), through the
// real libpam and the real `mailmfa` command: logins with the record in SQL, no secret in a
// dump, records moved from files to SQL and back without loss, a changed or moved row denied,
// the database stopped or at another schema version denied with its own reason, and a key
// rotation. Owns: tests/sql_records.rs. Support: tests/sql/, tests/servers/{postgres,mariadb}.rs.

mod fixture;
mod servers;
mod skip;
mod sql;

use fixture::{code, login, wait_for_step_margin, Fixture};
use mailmfa::pam::client::Response;
use mailmfa::record::Record;
use mailmfa::store::files::FileStore;
use mailmfa::store::sql::seal::Keys;
use mailmfa::store::Store;
use sql::{mailmfa_with, Db, Kind};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

const PW: &str = "T9D3K!px";
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";
const IP: Option<&str> = Some("192.0.2.10");

for_each_backend!(
    a_login_with_password_and_code_passes_with_the_record_in_sql,
    the_tables_hold_no_secret_in_clear,
    records_move_from_files_to_sql_and_back_without_loss,
    a_changed_or_moved_row_is_denied,
    the_database_stopped_denies_every_login_until_it_is_back,
    a_database_that_does_not_answer_denies_the_login,
    a_database_restarted_between_logins_is_reconnected_within_the_next,
    another_schema_version_or_missing_tables_are_refused,
    a_key_rotation_reseals_every_row,
    the_doctor_reports_the_database_and_the_keys,
);

/// `db`'s fixture with the mail stack, ALICE (MFA on, record in SQL) and BOB (password only).
fn mail(db: &Db, extra: &str) -> (Fixture, Record) {
    let f = db.fixture(extra);
    f.install_example("dovecot-virtual", "mail", "");
    f.add_password(ALICE, PW);
    f.add_password(BOB, PW);
    let record = f.enable(ALICE);
    (f, record)
}

/// [`mail`], and ALICE logged in once with a right code: the module's connection is open,
/// with time left in the code's step.
fn connected(db: &Db) -> (Fixture, Record) {
    let (f, record) = mail(db, "");
    wait_for_step_margin(5);
    let r = f.login("mail", ALICE, &with_code(&record), IP);
    assert!(r.success(), "{r:?}");
    (f, record)
}

fn reason(r: &Response) -> &str {
    r.reason.as_deref().unwrap_or("")
}

fn with_code(record: &Record) -> String {
    format!("{PW}{}", code(record, 0))
}

fn a_login_with_password_and_code_passes_with_the_record_in_sql(kind: Kind) {
    let Some(db) = Db::start(kind) else { return };
    let (f, record) = mail(&db, "");
    assert!(!f.record_path(ALICE).exists(), "the record went to a file");
    assert_eq!(db.query("SELECT login FROM mailmfa_record").trim(), ALICE);
    wait_for_step_margin(3);
    let r = f.login("mail", ALICE, &with_code(&record), IP);
    assert!(r.success(), "{r:?}");
    assert_eq!(reason(&r), "ok");
    let wrong = format!(
        "{PW}{:06}",
        (code(&record, 0).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    let r = f.login("mail", ALICE, &wrong, Some("192.0.2.11"));
    assert!(!r.success());
    assert_eq!(reason(&r), "bad_code");
    let r = f.login("mail", BOB, PW, IP);
    assert!(r.success(), "{r:?}");
    assert_eq!(reason(&r), "no_mfa");
    // The command reads the same record.
    let status = mailmfa_with(&f, &["status", ALICE, "--json"]);
    assert_eq!(json(&status)["mfa"], "on", "{status}");
}

fn the_tables_hold_no_secret_in_clear(kind: Kind) {
    let Some(db) = Db::start(kind) else { return };
    let (f, mut record) = mail(&db, "");
    let codes = f.add_recovery_codes(ALICE, &mut record);
    let dump = db.dump();
    assert!(
        dump.contains("mailmfa_record") && dump.contains(ALICE),
        "not a dump: {dump}"
    );
    let secret = record.secret_base32().to_string();
    let hex: String = fixture::secret_of(ALICE)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for (what, needle) in [
        ("the secret (base32)", secret.as_str()),
        ("the secret (hex)", hex.as_str()),
        ("a recovery code hash", record.recovery_codes[0].as_str()),
        ("a recovery code", codes[0].as_str()),
        ("the algorithm line", "algorithm"),
    ] {
        assert!(!dump.contains(needle), "the dump holds {what}");
    }
}

fn records_move_from_files_to_sql_and_back_without_loss(kind: Kind) {
    let Some(db) = Db::start(kind) else { return };
    // Three records in files, as an installation has them before the move.
    let files = Fixture::new();
    let mut originals = vec![files.enable(ALICE), files.enable(BOB), files.enable(CAROL)];
    files.add_recovery_codes(BOB, &mut originals[1]);
    let mut carol = originals[2].clone();
    carol
        .app_passwords
        .push(fixture::app_password("phone", "abcde-fghij-klmno-pqrst"));
    files.save(CAROL, &carol);
    originals[2] = carol;
    let from = files.settings.record_dir.to_str().unwrap().to_string();

    let f = db.fixture("");
    let moved = mailmfa_with(&f, &["db", "import", "--dir", &from, "--json"]);
    assert_eq!(
        json(&moved),
        json(r#"{"read":3,"written":3,"same":0,"conflicts":[]}"#)
    );
    let again = mailmfa_with(&f, &["db", "import", "--dir", &from, "--json"]);
    assert_eq!(
        json(&again),
        json(r#"{"read":3,"written":0,"same":3,"conflicts":[]}"#)
    );
    assert_eq!(db.query("SELECT COUNT(*) FROM mailmfa_record").trim(), "3");

    // A record changed in SQL since is not overwritten without --replace.
    let mut changed = originals[0].clone();
    changed.label = Some("changed in SQL".to_string());
    f.save(ALICE, &changed);
    let out = Command::new(env!("CARGO_BIN_EXE_mailmfa"))
        .args([
            "--config",
            f.config.to_str().unwrap(),
            "db",
            "import",
            "--dir",
            &from,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(ALICE));
    mailmfa_with(&f, &["db", "import", "--dir", &from, "--replace"]);

    // And back to files: byte for byte what was there.
    let back = tempfile::tempdir().unwrap();
    fs::set_permissions(back.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let to = back.path().to_str().unwrap();
    let out = mailmfa_with(&f, &["db", "export", "--dir", to, "--json"]);
    assert_eq!(
        json(&out),
        json(r#"{"read":3,"written":3,"same":0,"conflicts":[]}"#)
    );
    let mut settings = files.settings.clone();
    settings.record_dir = back.path().to_path_buf();
    let exported = FileStore::new(&settings, mailmfa::pam::sys::effective_uid());
    for (user, original) in [ALICE, BOB, CAROL].iter().zip(&originals) {
        assert_eq!(
            exported.read_record(&login(user)).unwrap().as_ref(),
            Some(original)
        );
        assert_eq!(
            fs::read(files.record_path(user)).unwrap(),
            fs::read(exported.record_path(&login(user))).unwrap(),
            "{user}"
        );
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn a_changed_or_moved_row_is_denied(kind: Kind) {
    let Some(db) = Db::start(kind) else { return };
    let (f, record) = mail(&db, "");
    wait_for_step_margin(3);
    // A row copied to another login (BOB has no MFA of his own) does not open.
    db.query(&format!(
        "INSERT INTO mailmfa_record (login, key_id, sealed, created, updated) SELECT '{BOB}', \
         key_id, sealed, created, updated FROM mailmfa_record WHERE login = '{ALICE}'"
    ));
    for password in [with_code(&record), PW.to_string()] {
        let r = f.login("mail", BOB, &password, IP);
        assert!(!r.success(), "a moved row let BOB in");
        assert_eq!(reason(&r), "record_seal_broken");
    }
    // One changed character of ALICE's sealed record: denied, with the right code.
    let sealed = db.query(&format!(
        "SELECT sealed FROM mailmfa_record WHERE login = '{ALICE}'"
    ));
    let sealed = sealed.trim();
    let flipped = match sealed.as_bytes()[40] {
        b'0' => "1",
        _ => "0",
    };
    let changed = format!("{}{flipped}{}", &sealed[..40], &sealed[41..]);
    db.query(&format!(
        "UPDATE mailmfa_record SET sealed = '{changed}' WHERE login = '{ALICE}'"
    ));
    let r = f.login("mail", ALICE, &with_code(&record), IP);
    assert!(!r.success(), "a changed row let ALICE in");
    assert_eq!(reason(&r), "record_seal_broken");
}

fn the_database_stopped_denies_every_login_until_it_is_back(kind: Kind) {
    let Some(mut db) = Db::start(kind) else {
        return;
    };
    let (f, record) = connected(&db);
    db.stop();
    for (user, password) in [(ALICE, with_code(&record)), (BOB, PW.to_string())] {
        let r = f.login("mail", user, &password, IP);
        assert!(!r.success(), "{user} got in with the records down");
        assert_eq!(reason(&r), "records_unavailable", "{user}");
    }
    db.start_again();
    let r = f.login("mail", ALICE, &with_code(&record), IP);
    assert!(r.success(), "{r:?}");
    assert!(f.login("mail", BOB, PW, IP).success());
}

fn a_database_that_does_not_answer_denies_the_login(kind: Kind) {
    let Some(mut db) = Db::start(kind) else {
        return;
    };
    let (f, record) = connected(&db);
    // The open connection, then a new one: both wait at most sql_timeout_ms (1 s here) and
    // deny; the test would hang if they waited for the server.
    db.pause();
    for _ in 0..2 {
        let r = f.login("mail", ALICE, &with_code(&record), IP);
        assert!(
            !r.success(),
            "a login got in while the database did not answer"
        );
        assert_eq!(reason(&r), "records_unavailable");
    }
    db.resume();
    assert!(f.login("mail", ALICE, &with_code(&record), IP).success());
}

fn a_database_restarted_between_logins_is_reconnected_within_the_next(kind: Kind) {
    let Some(mut db) = Db::start(kind) else {
        return;
    };
    let (f, record) = connected(&db);
    // The process's connection went stale while idle (the server restarted): the next login
    // finds it closed, opens a new one and still gets its answer.
    db.stop();
    db.start_again();
    let r = f.login("mail", ALICE, &with_code(&record), IP);
    assert!(r.success(), "{r:?}");
    assert_eq!(reason(&r), "reused");
}

fn another_schema_version_or_missing_tables_are_refused(kind: Kind) {
    let Some(db) = Db::start(kind) else { return };
    let (_, record) = mail(&db, "");
    db.query("UPDATE mailmfa_schema SET version = 2");
    // Another sql_timeout_ms is another connection, which checks the version afresh.
    let f = fixture_with_timeout(&db, 999);
    let r = f.login("mail", ALICE, &with_code(&record), IP);
    assert!(!r.success());
    assert_eq!(reason(&r), "records_schema");
    let out = Command::new(env!("CARGO_BIN_EXE_mailmfa"))
        .args(["--config", f.config.to_str().unwrap(), "db", "migrate"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("newer than this build"),
        "{out:?}"
    );
    db.query("UPDATE mailmfa_schema SET version = 1");
    db.query("DROP TABLE mailmfa_record");
    let f = fixture_with_timeout(&db, 998);
    let r = f.login("mail", ALICE, &with_code(&record), IP);
    assert!(!r.success());
    assert_eq!(reason(&r), "records_schema");
}

/// A fixture on `db`'s tables (made already) with `sql_timeout_ms = ms`, the mail stack and
/// ALICE's password.
fn fixture_with_timeout(db: &Db, ms: u32) -> Fixture {
    let config = db
        .config()
        .replace("sql_timeout_ms = 1000", &format!("sql_timeout_ms = {ms}"));
    let f = Fixture::with_config(&config);
    f.install_example("dovecot-virtual", "mail", "");
    f.add_password(ALICE, PW);
    f
}

fn a_key_rotation_reseals_every_row(kind: Kind) {
    let Some(db) = Db::start(kind) else { return };
    let (f, record) = mail(&db, "");
    f.enable(BOB);
    // And 1,100 more, sealed as the store seals them, so that the rotation walks the table in
    // several batches.
    let keys = Keys::load(&db.key_file, f.settings.record_owners(0)).unwrap();
    let rows: Vec<String> = (0..1100)
        .map(|n| {
            let user = format!("user{n:04}@example.com");
            let sealed = keys
                .seal(&login(&user), record.to_toml().as_bytes())
                .unwrap();
            format!("('{user}', {}, '{}', 1, 1)", sealed.key_id, sealed.text)
        })
        .collect();
    for chunk in rows.chunks(100) {
        db.query(&format!(
            "INSERT INTO mailmfa_record (login, key_id, sealed, created, updated) VALUES {}",
            chunk.join(", ")
        ));
    }
    let status = json(&mailmfa_with(&f, &["db", "status", "--json"]));
    assert_eq!(status["keys_used"], json(r#"{"1":1102}"#));
    sql::mailmfa(&["db", "keygen", "--add", db.key_file.to_str().unwrap()]);
    let out = mailmfa_with(&f, &["db", "rekey"]);
    assert!(
        out.starts_with("1102 records sealed again with key 2"),
        "{out}"
    );
    let status = json(&mailmfa_with(&f, &["db", "status", "--json"]));
    assert_eq!(status["keys_used"], json(r#"{"2":1102}"#));
    assert_eq!(status["key_file"], json("[1,2]"));
    // Key 1 can go now: the records open with key 2 alone.
    keep_only_key_2(&db);
    wait_for_step_margin(3);
    let r = f.login("mail", ALICE, &with_code(&record), IP);
    assert!(r.success(), "{r:?}");
}

/// Removes every line but key 2's from `db`'s key file (the end of a rotation).
fn keep_only_key_2(db: &Db) {
    let text = fs::read_to_string(&db.key_file).unwrap();
    let only_new: String = text.lines().filter(|l| l.starts_with("2 ")).collect();
    fs::write(&db.key_file, only_new + "\n").unwrap();
}

/// `mailmfa doctor --json`'s findings about SQL, as `level: what` lines.
fn doctor_sql(f: &Fixture) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_mailmfa"))
        .args(["--config", f.config.to_str().unwrap(), "doctor", "--json"])
        .output()
        .unwrap();
    let report = json(&String::from_utf8_lossy(&out.stdout));
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|x| x["what"].as_str().unwrap_or("").starts_with("sql: "))
        .map(|x| {
            format!(
                "{}: {}",
                x["level"].as_str().unwrap(),
                x["what"].as_str().unwrap()
            )
        })
        .collect()
}

fn the_doctor_reports_the_database_and_the_keys(kind: Kind) {
    let Some(db) = Db::start(kind) else { return };
    let (f, _) = mail(&db, "");
    let found = doctor_sql(&f);
    assert!(
        found
            .iter()
            .any(|l| l.starts_with("ok: sql: ") && l.contains("schema version 1")),
        "{found:?}"
    );
    sql::mailmfa(&["db", "keygen", "--add", db.key_file.to_str().unwrap()]);
    let found = doctor_sql(&f);
    assert!(
        found
            .iter()
            .any(|l| l.contains("still sealed with the older key 1")),
        "{found:?}"
    );
    // A key file without the key that sealed the rows: those logins would be denied.
    keep_only_key_2(&db);
    let found = doctor_sql(&f);
    assert!(
        found
            .iter()
            .any(|l| l.starts_with("error: ")
                && l.contains("key 1, which the key file does not hold")),
        "{found:?}"
    );
    db.query("DROP TABLE mailmfa_schema");
    let found = doctor_sql(&f);
    assert!(
        found
            .iter()
            .any(|l| l.starts_with("error: ") && l.contains("tables are missing")),
        "{found:?}"
    );
}
