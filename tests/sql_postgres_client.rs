//! The PostgreSQL wire client (`mailmfa::store::sql::postgres`) against a real server, one per
//! test (`tests/servers/postgres.rs`): SCRAM logins over TCP, the Unix socket and TLS
//! (`sslmode=verify-full`); a wrong or missing password refused without echoing it; bound
//! values that round-trip exactly, however they are quoted; rows changed; server errors that
//! leave the connection usable; scripts; a stopped, paused or restarted server reported as a
//! connection failure (naming `sql_timeout_ms` when nothing answers, and `went_stale` after a
//! restart). Runs as the test's user, or as root with the server as the `postgres` user.
//! Owns: tests/sql_postgres_client.rs. Support: tests/servers/postgres.rs.

mod servers;
mod skip;

use mailmfa::store::net::tls::TlsFiles;
use mailmfa::store::secure::Owners;
use mailmfa::store::sql::address::Address;
use mailmfa::store::sql::client::{Client, Outcome, Param, SqlError};
use mailmfa::store::sql::postgres::{connect, Postgres};
use servers::postgres::have_postgres;
use servers::PostgresServer;
use std::path::Path;
use std::time::Duration;

/// Long enough for any login on a loaded machine.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Connects to `url` with `password`, trusting `server`'s test CA, if any.
fn open_url(
    server: &PostgresServer,
    url: &str,
    password: Option<&str>,
    timeout: Duration,
) -> Result<Postgres, SqlError> {
    let address = Address::parse(url).expect("a good sql_url");
    let files = TlsFiles {
        ca_file: server.tls.as_ref().map(|certs| certs.ca.as_path()),
        cert_file: None,
        key_file: None,
        prefix: "sql_",
        timeout_name: "sql_timeout_ms",
    };
    let owners = Owners::from(mailmfa::pam::sys::effective_uid());
    connect(&address, password, timeout, &files, owners)
}

/// Connects over TCP as `mailmfa` with its password.
fn open(server: &PostgresServer) -> Postgres {
    open_url(server, &server.url(), Some(server.password()), TIMEOUT).expect("log in")
}

/// One row of text from `sql`.
fn one_row(pg: &mut Postgres, sql: &str, params: &[Param<'_>]) -> Vec<Option<String>> {
    let mut outcome = pg.execute(sql, params).expect(sql);
    assert_eq!(outcome.rows.len(), 1, "{sql}: {outcome:?}");
    outcome.rows.remove(0)
}

fn text(value: &str) -> Option<String> {
    Some(value.to_string())
}

/// Asserts that a login with the `wrong` password is refused (`28P01`) without echoing it.
fn refuses_without_echoing(server: &PostgresServer, wrong: &str) {
    let why = open_url(server, &server.url(), Some(wrong), TIMEOUT)
        .err()
        .unwrap();
    assert!(
        format!("{why}").contains("28P01") && !format!("{why}").contains(wrong),
        "{why}"
    );
}

/// A PostgreSQL server for one test; `None` (a loud skip) when it cannot run here.
fn server() -> Option<PostgresServer> {
    have_postgres().then(PostgresServer::start)
}

#[test]
fn scram_logins_over_tcp_and_the_unix_socket_name_the_role_and_database() {
    let Some(server) = server() else { return };
    assert_eq!(
        server.psql(
            "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'mailmfa'"
        ),
        "t\n",
        "the password is stored with SCRAM, so SCRAM is what the server asks for"
    );
    for url in [server.url(), server.socket_url()] {
        let mut pg = open_url(&server, &url, Some(server.password()), TIMEOUT)
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let sql = "SELECT current_user, current_database(), application_name, \
                   current_setting('client_encoding') FROM pg_stat_activity \
                   WHERE pid = pg_backend_pid()";
        assert_eq!(
            one_row(&mut pg, sql, &[]),
            [text("mailmfa"), text("mail"), text("mailmfa"), text("UTF8")],
            "{url}"
        );
        assert!(!pg.went_stale());
    }
}

#[test]
fn a_wrong_or_missing_password_is_refused_without_echoing_it() {
    let Some(server) = server() else { return };
    let wrong = "Wr0ng-s3cret-guess";
    for url in [server.url(), server.socket_url()] {
        let Err(SqlError::Connection(why)) = open_url(&server, &url, Some(wrong), TIMEOUT) else {
            panic!("{url}: a wrong password logged in");
        };
        assert!(why.contains("28P01"), "{url}: {why}");
        assert!(!why.contains(wrong), "{url}: {why}");
        assert!(!why.contains(server.password()), "{url}: {why}");
        let Err(SqlError::Connection(why)) = open_url(&server, &url, None, TIMEOUT) else {
            panic!("{url}: no password logged in");
        };
        assert!(why.contains("sql_password_file"), "{url}: {why}");
    }
}

#[test]
fn cleartext_and_trust_logins_work_and_md5_is_refused_with_a_hint() {
    if !have_postgres() {
        return;
    }
    let mut server = PostgresServer::start();
    let wrong = "Wr0ng-s3cret-guess";
    server.set_auth("password");
    let mut pg = open(&server);
    assert_eq!(
        one_row(&mut pg, "SELECT current_user", &[]),
        [text("mailmfa")]
    );
    refuses_without_echoing(&server, wrong);
    // MD5 is what the server asks for only when the password is stored that way.
    server.psql(&format!(
        "SET password_encryption = 'md5'; ALTER ROLE mailmfa PASSWORD '{}'",
        server.password()
    ));
    server.set_auth("md5");
    assert_eq!(
        server.psql("SELECT rolpassword LIKE 'md5%' FROM pg_authid WHERE rolname = 'mailmfa'"),
        "t\n"
    );
    // mailmfa sends no MD5 hash: the error says how to store the password as SCRAM, and
    // holds no password, right or wrong.
    let hint = "the server asks for MD5 passwords, which mailmfa does not send: store the \
                password as SCRAM (password_encryption = 'scram-sha-256', then set it again)";
    for url in [server.url(), server.socket_url()] {
        for password in [server.password(), wrong] {
            let Err(SqlError::Connection(why)) = open_url(&server, &url, Some(password), TIMEOUT)
            else {
                panic!("{url}: an MD5 login did not fail as a connection error");
            };
            assert_eq!(why, hint, "{url}");
        }
    }
    server.set_auth("trust");
    let mut pg = open_url(&server, &server.url(), None, TIMEOUT).expect("trust needs no password");
    assert_eq!(
        one_row(&mut pg, "SELECT current_user", &[]),
        [text("mailmfa")]
    );
}

#[test]
fn bound_values_round_trip_exactly_and_are_never_taken_for_sql() {
    let Some(server) = server() else { return };
    let mut pg = open(&server);
    pg.script("CREATE TABLE x (id int); CREATE TABLE t (k text PRIMARY KEY, v text, n bigint)")
        .expect("create tables");
    let values = [
        "it's",
        "back\\slash \\' \\\\",
        "'; DROP TABLE x; --",
        "\"double\" $1 ? %s",
        "ünïcødé ✓ 🎉 日本語",
        "",
        "tab\tnew\nline",
    ];
    for (i, value) in values.iter().enumerate() {
        let n = [i64::MAX, i64::MIN, 0, -1][i % 4];
        let outcome = pg
            .execute(
                "INSERT INTO t (k, v, n) VALUES ($1, $2, $3)",
                &[
                    Param::Text(&i.to_string()),
                    Param::Text(value),
                    Param::Int(n),
                ],
            )
            .expect("insert");
        assert_eq!(outcome.affected, 1);
        let row = one_row(
            &mut pg,
            "SELECT v, n, length(v) FROM t WHERE k = $1",
            &[Param::Text(&i.to_string())],
        );
        assert_eq!(
            row,
            [
                text(value),
                Some(n.to_string()),
                Some(value.chars().count().to_string())
            ],
            "{value:?}"
        );
        // Straight back, not through a table.
        assert_eq!(
            one_row(
                &mut pg,
                "SELECT $1::text, $2::bigint",
                &[Param::Text(value), Param::Int(n)]
            ),
            [text(value), Some(n.to_string())]
        );
    }
    assert_eq!(
        one_row(&mut pg, "SELECT NULL::text, ''::text, count(*) FROM x", &[]),
        [None, text(""), text("0")],
        "a NULL column is None, an empty string is not, and the table x is still there"
    );
    assert_eq!(server.psql("SELECT count(*) FROM t"), "7\n");
    // PostgreSQL's text has no NUL: the server refuses it, without echoing the value.
    let err = pg
        .execute("SELECT $1::text", &[Param::Text("s3cret\0value")])
        .unwrap_err();
    assert!(
        matches!(&err, SqlError::Server { code, .. } if code == "22021"),
        "{err:?}"
    );
    assert!(!format!("{err:?}").contains("s3cret"), "{err:?}");
    assert_eq!(one_row(&mut pg, "SELECT 1", &[]), [text("1")]);
}

#[test]
fn inserts_updates_and_deletes_count_the_rows_they_change_and_queries_none() {
    let Some(server) = server() else { return };
    let mut pg = open(&server);
    pg.script("CREATE TABLE t (k int, v text)").expect("create");
    let insert = pg
        .execute(
            "INSERT INTO t SELECT g, 'a' FROM generate_series(1, $1::int) g",
            &[Param::Int(5)],
        )
        .expect("insert");
    assert_eq!(
        insert,
        Outcome {
            rows: vec![],
            affected: 5
        }
    );
    let update = pg
        .execute(
            "UPDATE t SET v = $1 WHERE k <= $2",
            &[Param::Text("b"), Param::Int(3)],
        )
        .expect("update");
    assert_eq!(update.affected, 3);
    let none = pg
        .execute("UPDATE t SET v = 'c' WHERE k > 100", &[])
        .expect("update nothing");
    assert_eq!(none.affected, 0);
    let returning = pg
        .execute(
            "DELETE FROM t WHERE v = $1 RETURNING k",
            &[Param::Text("b")],
        )
        .expect("delete");
    assert_eq!(returning.affected, 3);
    assert_eq!(returning.rows, [[text("1")], [text("2")], [text("3")]]);
    let select = pg
        .execute("SELECT k FROM t ORDER BY k", &[])
        .expect("select");
    assert_eq!(select.affected, 0);
    assert_eq!(select.rows, [[text("4")], [text("5")]]);
}

#[test]
fn a_missing_table_is_a_server_error_and_the_connection_still_works() {
    let Some(server) = server() else { return };
    let mut pg = open(&server);
    let secret = "s3cret-bound-value";
    match pg.execute("SELECT * FROM nowhere WHERE k = $1", &[Param::Text(secret)]) {
        Err(SqlError::Server { code, message }) => {
            assert_eq!(code, "42P01");
            assert!(message.contains("nowhere"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    pg.script("CREATE TABLE t (k text PRIMARY KEY)")
        .expect("create");
    pg.execute("INSERT INTO t VALUES ($1)", &[Param::Text(secret)])
        .expect("insert");
    // The detail ("Key (k)=(...) already exists.") would echo the value: it is left out.
    let err = pg
        .execute("INSERT INTO t VALUES ($1)", &[Param::Text(secret)])
        .unwrap_err();
    assert!(
        matches!(&err, SqlError::Server { code, .. } if code == "23505"),
        "{err:?}"
    );
    assert!(!format!("{err:?}").contains(secret), "{err:?}");
    assert_eq!(one_row(&mut pg, "SELECT 1", &[]), [text("1")]);
    assert!(!pg.went_stale());
}

#[test]
fn scripts_run_several_statements_and_report_the_first_error() {
    let Some(server) = server() else { return };
    let mut pg = open(&server);
    pg.script(
        "CREATE TABLE a (k int);\nCREATE TABLE b (k int);\n\
         INSERT INTO a VALUES (1), (2);\nINSERT INTO b SELECT k * 10 FROM a;",
    )
    .expect("script");
    assert_eq!(server.psql("SELECT sum(k) FROM b"), "30\n");
    // A simple-protocol script is one implicit transaction: nothing of it stays.
    let err = pg
        .script("INSERT INTO a VALUES (3); SELECT * FROM nowhere; INSERT INTO a VALUES (4)")
        .unwrap_err();
    assert!(
        matches!(&err, SqlError::Server { code, .. } if code == "42P01"),
        "{err:?}"
    );
    assert_eq!(server.psql("SELECT count(*) FROM a"), "2\n");
    pg.script("").expect("an empty script");
    assert_eq!(one_row(&mut pg, "SELECT count(*) FROM a", &[]), [text("2")]);
}

#[test]
fn a_stopped_server_is_a_connection_error() {
    if !have_postgres() {
        return;
    }
    let mut server = PostgresServer::start();
    let mut pg = open(&server);
    server.stop();
    match pg.execute("SELECT 1", &[]) {
        Err(SqlError::Connection(why)) => assert!(!why.is_empty()),
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(pg.execute("SELECT 1", &[]), Err(SqlError::Connection(_))),
        "a failed connection is not used again"
    );
    for url in [server.url(), server.socket_url()] {
        match open_url(&server, &url, Some(server.password()), TIMEOUT) {
            Err(SqlError::Connection(why)) => assert!(why.contains("cannot connect"), "{why}"),
            Err(other) => panic!("{url}: {other:?}"),
            Ok(_) => panic!("{url}: connected to a stopped server"),
        }
    }
}

#[test]
fn a_paused_server_is_a_connection_error_naming_sql_timeout_ms() {
    if !have_postgres() {
        return;
    }
    let mut server = PostgresServer::start();
    let short = Duration::from_millis(500);
    let mut pg = open_url(&server, &server.url(), Some(server.password()), short).expect("log in");
    server.pause();
    match pg.execute("SELECT 1", &[]) {
        Err(SqlError::Connection(why)) => assert!(why.contains("sql_timeout_ms"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(!pg.went_stale(), "a timeout is not the server going away");
    match open_url(&server, &server.url(), Some(server.password()), short) {
        Err(SqlError::Connection(why)) => assert!(why.contains("sql_timeout_ms"), "{why}"),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("logged in to a paused server"),
    }
    server.resume();
    assert_eq!(one_row(&mut open(&server), "SELECT 1", &[]), [text("1")]);
}

#[test]
fn after_a_restart_the_old_connection_went_stale_and_a_new_one_works() {
    if !have_postgres() {
        return;
    }
    let mut server = PostgresServer::start();
    let mut pg = open(&server);
    pg.script("CREATE TABLE t (k int); INSERT INTO t VALUES (7)")
        .expect("create");
    server.stop();
    server.start_again();
    match pg.execute("SELECT k FROM t", &[]) {
        Err(SqlError::Connection(_)) => {}
        other => panic!("{other:?}"),
    }
    assert!(pg.went_stale(), "the server closed the old connection");
    let mut fresh = open(&server);
    assert_eq!(one_row(&mut fresh, "SELECT k FROM t", &[]), [text("7")]);
    assert!(!fresh.went_stale());
    assert!(server.dump().contains("CREATE TABLE public.t"));
}

#[test]
fn tls_with_verify_full_checks_the_server_and_a_server_without_tls_is_refused() {
    if !have_postgres() || !skip::require(servers::find_program("openssl").is_some(), "openssl") {
        return;
    }
    let server = PostgresServer::start_with_tls();
    assert!(server.url().ends_with("?sslmode=verify-full"));
    let mut pg = open(&server);
    assert_eq!(
        one_row(
            &mut pg,
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[]
        ),
        [text("t")]
    );
    // The system's CAs did not sign the test server's certificate.
    let address = Address::parse(&server.url()).unwrap();
    let files = TlsFiles {
        ca_file: Some(Path::new("/etc/ssl/certs/ca-certificates.crt")),
        cert_file: None,
        key_file: None,
        prefix: "sql_",
        timeout_name: "sql_timeout_ms",
    };
    if Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        let owners = Owners::from(mailmfa::pam::sys::effective_uid());
        let err = connect(&address, Some(server.password()), TIMEOUT, &files, owners)
            .err()
            .expect("a certificate no known CA signed is refused");
        assert!(format!("{err}").contains("TLS handshake"), "{err}");
    }
    let plain = PostgresServer::start();
    let url = format!("{}?sslmode=verify-full", plain.url());
    match open_url(&server, &url, Some(plain.password()), TIMEOUT) {
        Err(SqlError::Connection(why)) => assert_eq!(why, "the server does not offer TLS"),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("no TLS, yet connected"),
    }
}
