//! The MariaDB/MySQL wire client (`store::sql::mysql`) against a real MariaDB server
//! (`tests/servers/mariadb.rs`, one per test): logins over TCP, the Unix socket and TLS;
//! refusals that never echo the password; bound values that round-trip exactly and compare
//! under the column's collation; affected-row counts; server errors with their SQLSTATE and a
//! connection still usable after them; scripts; and a server stopped, paused or restarted
//! under an open connection.
//! Owns: tests/sql_mariadb_client.rs. Support: tests/servers/ (mariadb.rs).

mod servers;
mod skip;

use mailmfa::store::net::tls::TlsFiles;
use mailmfa::store::secure::Owners;
use mailmfa::store::sql::address::Address;
use mailmfa::store::sql::client::{Client, Outcome, Param, SqlError};
use mailmfa::store::sql::mysql::{self, Mysql};
use servers::{require_prereqs, MariaDb, MARIADB_PREREQS};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A fresh server, or `None` (the test skipped loudly) when this machine lacks one.
fn server() -> Option<MariaDb> {
    require_prereqs(MARIADB_PREREQS).then(MariaDb::start)
}

fn files(ca_file: Option<&Path>) -> TlsFiles<'_> {
    TlsFiles {
        ca_file,
        cert_file: None,
        key_file: None,
        prefix: "sql_",
        timeout_name: "sql_timeout_ms",
    }
}

/// The running user, who may own the test's files.
fn owners() -> Owners {
    Owners::from(
        std::fs::metadata("/proc/self")
            .expect("stat /proc/self")
            .uid(),
    )
}

fn open_with(
    url: &str,
    password: Option<&str>,
    timeout: Duration,
    ca: Option<&Path>,
) -> Result<Mysql, SqlError> {
    let address = Address::parse(url).expect("a good sql_url");
    mysql::connect(&address, password, timeout, &files(ca), owners())
}

fn open(db: &MariaDb) -> Mysql {
    open_with(&db.url(), Some(db.password()), TIMEOUT, None).expect("log in over TCP")
}

fn rows(outcome: Outcome) -> Vec<Vec<Option<String>>> {
    outcome.rows
}

fn connection_error(result: Result<impl Sized, SqlError>) -> String {
    match result {
        Err(SqlError::Connection(why)) => why,
        Err(other) => panic!("not a connection error: {other:?}"),
        Ok(_) => panic!("no error"),
    }
}

#[test]
fn native_password_logs_in_over_tcp_and_over_the_unix_socket() {
    let Some(db) = server() else { return };
    assert_eq!(
        db.sql("SELECT plugin FROM mysql.user WHERE user = 'mailmfa' LIMIT 1"),
        "mysql_native_password\n"
    );
    let mut tcp = open(&db);
    let who = tcp
        .execute(
            "SELECT CURRENT_USER(), DATABASE(), @@character_set_client",
            &[],
        )
        .unwrap();
    assert_eq!(
        rows(who),
        [[Some("mailmfa@127.0.0.1"), Some("mail"), Some("utf8mb4")].map(|v| v.map(String::from))]
    );
    let mut unix = open_with(&db.socket_url(), Some(db.password()), TIMEOUT, None)
        .expect("log in over the socket");
    let who = unix.execute("SELECT CURRENT_USER()", &[]).unwrap();
    assert_eq!(rows(who), [[Some("mailmfa@localhost".to_string())]]);
}

#[test]
fn a_wrong_or_missing_password_is_refused_without_echoing_it() {
    let Some(db) = server() else { return };
    let wrong = "Wr0ng-pa55word-xyzzy";
    for url in [db.url(), db.socket_url()] {
        let why = connection_error(open_with(&url, Some(wrong), TIMEOUT, None));
        assert!(why.contains("refused"), "{why}");
        assert!(why.contains("Access denied"), "{why}");
        assert!(!why.contains(wrong), "{why}");
        assert!(!why.contains(db.password()), "{why}");
        let why = connection_error(open_with(&url, None, TIMEOUT, None));
        assert!(why.contains("`sql_password_file` is not set"), "{why}");
    }
}

#[test]
fn bound_values_round_trip_exactly() {
    let Some(db) = server() else { return };
    let mut c = open(&db);
    c.script(
        "CREATE TABLE t (id INT PRIMARY KEY, txt TEXT NULL, n BIGINT NULL) \
         DEFAULT CHARSET utf8mb4",
    )
    .unwrap();
    let texts = [
        "plain",
        "it's \"quoted\"",
        "back\\slash\\",
        "'; DROP TABLE t; --",
        "a ? inside",
        "ünïcødé — 中文 — 😀🔐",
        "",
        "\n\t\0 control",
        "X'41' _utf8mb4 0x41",
    ];
    for (id, text) in texts.iter().enumerate() {
        let id = id as i64;
        let done = c
            .execute(
                "INSERT INTO t (id, txt) VALUES (?, ?)",
                &[Param::Int(id), Param::Text(text)],
            )
            .unwrap();
        assert_eq!(done.affected, 1);
        let back = c
            .execute("SELECT txt, n FROM t WHERE id = ?", &[Param::Int(id)])
            .unwrap();
        assert_eq!(rows(back), [[Some(text.to_string()), None]], "{text:?}");
        let echoed = c.execute("SELECT ?", &[Param::Text(text)]).unwrap();
        assert_eq!(rows(echoed), [[Some(text.to_string())]], "{text:?}");
    }
    // The table survived the value that looks like SQL, and the bytes stored are exactly
    // the UTF-8 given (as the mariadb client sees them).
    assert_eq!(
        db.sql("SELECT COUNT(*) FROM t"),
        format!("{}\n", texts.len())
    );
    let emoji_hex: String = texts[5].bytes().map(|b| format!("{b:02X}")).collect();
    assert_eq!(
        db.sql("SELECT HEX(txt) FROM t WHERE id = 5"),
        emoji_hex + "\n"
    );
    for n in [0, -1, 42, i64::MAX, i64::MIN] {
        c.execute(
            "UPDATE t SET n = ? WHERE id = ?",
            &[Param::Int(n), Param::Int(0)],
        )
        .unwrap();
        let back = c.execute("SELECT n, ? FROM t WHERE id = 0", &[Param::Int(n)]);
        assert_eq!(
            rows(back.unwrap()),
            [[Some(n.to_string()), Some(n.to_string())]]
        );
    }
    let nulls = c.execute("SELECT NULL, ''", &[]).unwrap();
    assert_eq!(rows(nulls), [[None, Some(String::new())]]);
    let miscount = c.execute("SELECT ?", &[]);
    assert!(connection_error(miscount).contains("placeholders"));
    // A value that is not UTF-8 (a binary string) garbles the reply: the connection is
    // dropped.
    let why = connection_error(c.execute("SELECT X'FF'", &[]));
    assert!(why.contains("garbled reply"), "{why}");
    assert!(!c.went_stale());
}

#[test]
fn a_bound_value_matches_a_utf8mb4_varchar_key_under_the_columns_collation() {
    let Some(db) = server() else { return };
    let mut c = open(&db);
    c.script(
        "CREATE TABLE ci (login VARCHAR(255) PRIMARY KEY, v INT) DEFAULT CHARSET utf8mb4; \
         CREATE TABLE bin (login VARCHAR(255) PRIMARY KEY, v INT) \
           DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_bin",
    )
    .unwrap();
    for table in ["ci", "bin"] {
        for (login, v) in [("alice@example.com", 1), ("😀@example.com", 2)] {
            c.execute(
                &format!("INSERT INTO {table} (login, v) VALUES (?, ?)"),
                &[Param::Text(login), Param::Int(v)],
            )
            .unwrap();
        }
    }
    let find = |c: &mut Mysql, table: &str, login: &str| {
        let sql = format!("SELECT v FROM {table} WHERE login = ?");
        rows(c.execute(&sql, &[Param::Text(login)]).unwrap())
    };
    for table in ["ci", "bin"] {
        assert_eq!(
            find(&mut c, table, "alice@example.com"),
            [[Some("1".into())]]
        );
        assert_eq!(find(&mut c, table, "😀@example.com"), [[Some("2".into())]]);
        assert!(find(&mut c, table, "bob@example.com").is_empty());
    }
    // The column's collation decides, not the literal's: case-insensitive in `ci`
    // (utf8mb4_general_ci), exact in `bin`.
    assert_eq!(
        find(&mut c, "ci", "ALICE@example.com"),
        [[Some("1".into())]]
    );
    assert!(find(&mut c, "bin", "ALICE@example.com").is_empty());
}

#[test]
fn affected_counts_the_rows_an_insert_update_or_delete_touched() {
    let Some(db) = server() else { return };
    let mut c = open(&db);
    c.script("CREATE TABLE t (k VARCHAR(50) PRIMARY KEY, v INT) DEFAULT CHARSET utf8mb4")
        .unwrap();
    let mut run = |sql: &str, params: &[Param<'_>]| c.execute(sql, params).unwrap().affected;
    assert_eq!(
        run(
            "INSERT INTO t VALUES (?, 1), (?, 1)",
            &[Param::Text("a"), Param::Text("b")]
        ),
        2
    );
    assert_eq!(run("UPDATE t SET v = ?", &[Param::Int(2)]), 2);
    // CLIENT_FOUND_ROWS: an UPDATE counts the rows it matched, even when nothing changed
    // (as PostgreSQL does).
    assert_eq!(
        run("UPDATE t SET v = 2 WHERE k = ?", &[Param::Text("a")]),
        1
    );
    assert_eq!(
        run("UPDATE t SET v = 3 WHERE k = ?", &[Param::Text("zz")]),
        0
    );
    // MariaDB's upsert: 1 for a new row, 2 for a row updated, and (with FOUND_ROWS) 1 for a
    // row left as it was.
    let upsert = "INSERT INTO t VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)";
    assert_eq!(run(upsert, &[Param::Text("c"), Param::Int(1)]), 1);
    assert_eq!(run(upsert, &[Param::Text("c"), Param::Int(5)]), 2);
    assert_eq!(run(upsert, &[Param::Text("c"), Param::Int(5)]), 1);
    assert_eq!(run("DELETE FROM t WHERE k = ?", &[Param::Text("a")]), 1);
    assert_eq!(run("DELETE FROM t WHERE k = ?", &[Param::Text("a")]), 0);
    assert_eq!(run("SELECT * FROM t", &[]), 0);
}

#[test]
fn a_missing_table_is_a_server_error_and_the_connection_still_works() {
    let Some(db) = server() else { return };
    let mut c = open(&db);
    let missing = c.execute(
        "SELECT * FROM nowhere WHERE k = ?",
        &[Param::Text("s3cr3t")],
    );
    match missing {
        Err(SqlError::Server { code, message }) => {
            assert_eq!(code, "42S02");
            assert!(message.contains("nowhere"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!c.went_stale());
    let one = c.execute("SELECT 1", &[]).unwrap();
    assert_eq!(rows(one), [[Some("1".to_string())]]);
    // A duplicate key names neither the value (the server's message quotes it) nor its hex.
    c.script("CREATE TABLE t (k VARCHAR(50) PRIMARY KEY)")
        .unwrap();
    let insert = "INSERT INTO t VALUES (?)";
    c.execute(insert, &[Param::Text("s3cr3t")]).unwrap();
    let dup = c.execute(insert, &[Param::Text("s3cr3t")]).unwrap_err();
    let SqlError::Server { code, message } = &dup else {
        panic!("{dup:?}")
    };
    assert_eq!(code, "23000");
    for leak in ["s3cr3t", "733363723374"] {
        assert!(
            !message.to_uppercase().contains(&leak.to_uppercase()),
            "{message}"
        );
    }
    assert_eq!(c.execute("SELECT 2", &[]).unwrap().rows.len(), 1);
}

#[test]
fn a_script_runs_every_statement_and_stops_at_the_first_refused() {
    let Some(db) = server() else { return };
    let mut c = open(&db);
    c.script(
        "CREATE TABLE a (n INT PRIMARY KEY);\n\
         INSERT INTO a VALUES (1);\n\
         INSERT INTO a VALUES (2);\n\
         SELECT * FROM a;\n\
         CREATE TABLE b (s VARCHAR(10)) DEFAULT CHARSET utf8mb4;\n",
    )
    .unwrap();
    assert_eq!(db.sql("SELECT COUNT(*) FROM a"), "2\n");
    assert!(db.dump().contains("CREATE TABLE `b`"));
    let failed = c.script(
        "INSERT INTO a VALUES (3); INSERT INTO missing VALUES (1); INSERT INTO a VALUES (4)",
    );
    assert!(
        matches!(&failed, Err(SqlError::Server { code, .. }) if code == "42S02"),
        "{failed:?}"
    );
    // The statements before the refused one ran, those after it did not; the connection is
    // in step.
    assert_eq!(
        db.sql("SELECT GROUP_CONCAT(n ORDER BY n) FROM a"),
        "1,2,3\n"
    );
    assert_eq!(
        c.execute("SELECT COUNT(*) FROM a", &[]).unwrap().rows,
        [[Some("3".into())]]
    );
}

#[test]
fn a_stopped_server_is_a_connection_error() {
    let Some(mut db) = server() else { return };
    let mut c = open(&db);
    db.stop();
    let why = connection_error(c.execute("SELECT 1", &[]));
    assert!(
        why.contains("closed") || why.contains("reset") || why.contains("pipe"),
        "{why}"
    );
    assert!(c.went_stale(), "{why}");
    let why = connection_error(c.execute("SELECT 1", &[]));
    assert!(why.contains("not used again"), "{why}");
    let why = connection_error(open_with(&db.url(), Some(db.password()), TIMEOUT, None));
    assert!(why.contains("cannot connect"), "{why}");
    let why = connection_error(open_with(
        &db.socket_url(),
        Some(db.password()),
        TIMEOUT,
        None,
    ));
    assert!(why.contains("cannot connect"), "{why}");
}

#[test]
fn a_paused_server_is_a_connection_error_naming_sql_timeout_ms() {
    let Some(db) = server() else { return };
    let short = Duration::from_millis(300);
    let mut c = open_with(&db.url(), Some(db.password()), short, None).unwrap();
    db.pause();
    let why = connection_error(c.execute("SELECT 1", &[]));
    assert!(why.contains("sql_timeout_ms"), "{why}");
    assert!(!c.went_stale());
    // The kernel still accepts the connection; the greeting never comes.
    let why = connection_error(open_with(&db.url(), Some(db.password()), short, None));
    assert!(why.contains("sql_timeout_ms"), "{why}");
    db.resume();
    assert!(open(&db).execute("SELECT 1", &[]).is_ok());
}

#[test]
fn after_a_restart_the_old_connection_went_stale() {
    let Some(mut db) = server() else { return };
    let mut c = open(&db);
    c.execute("SELECT 1", &[]).unwrap();
    db.start_again();
    let why = connection_error(c.execute("SELECT 1", &[]));
    assert!(c.went_stale(), "{why}");
    assert!(open(&db).execute("SELECT 1", &[]).is_ok());
}

#[test]
fn an_account_on_a_plugin_not_spoken_is_refused_naming_it() {
    let Some(db) = server() else { return };
    db.sql(
        "INSTALL SONAME 'auth_ed25519'; \
         CREATE USER 'ed'@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('pw'); \
         GRANT ALL ON mail.* TO 'ed'@'127.0.0.1'",
    );
    let url = format!("mysql://ed@127.0.0.1:{}/mail", db.port());
    let why = connection_error(open_with(&url, Some("pw"), TIMEOUT, None));
    assert!(why.contains("`client_ed25519`"), "{why}");
}

#[test]
fn tls_with_verify_identity_checks_the_servers_certificate() {
    if !require_prereqs(&[MARIADB_PREREQS, &["openssl"]].concat()) {
        return;
    }
    let db = MariaDb::start_tls();
    let certs = db.tls.clone().expect("certificates");
    let mut c = open_with(&db.url(), Some(db.password()), TIMEOUT, Some(&certs.ca))
        .expect("log in over TLS");
    let cipher = c.execute("SHOW STATUS LIKE 'Ssl_version'", &[]).unwrap();
    let version = cipher.rows[0][1].clone().unwrap_or_default();
    assert!(version.starts_with("TLSv1."), "{version}");
    // A CA that did not sign the server's certificate: refused at the handshake.
    let other = servers::redis::Certificates::make(&db.dir.mkdir("other", 0o700));
    let why = connection_error(open_with(
        &db.url(),
        Some(db.password()),
        TIMEOUT,
        Some(&other.ca),
    ));
    assert!(why.contains("TLS handshake"), "{why}");
    // A server that offers no TLS: refused, not downgraded.
    let plain = MariaDb::start();
    let url = plain.url() + "?ssl-mode=VERIFY_IDENTITY";
    let why = connection_error(open_with(
        &url,
        Some(plain.password()),
        TIMEOUT,
        Some(&certs.ca),
    ));
    assert!(why.contains("does not offer TLS"), "{why}");
}
