//! The client's own logic without a server: binding, server errors, and the login's turns
//! (plugin switches, caching_sha2_password's fast path and full authentication) against a
//! scripted fake server on TCP or a Unix socket. Against a real MariaDB:
//! tests/sql_mariadb_client.rs.

use super::*;

#[test]
fn placeholders_become_hex_and_decimal_literals_outside_quotes() {
    let sql = "SELECT '?', \"a\\\"?\", `?` FROM t WHERE a = ? AND b = ? AND c = ?";
    let bound = bind(
        sql,
        &[Param::Text("'; --"), Param::Int(-7), Param::Text("")],
    )
    .unwrap();
    assert_eq!(
        bound,
        "SELECT '?', \"a\\\"?\", `?` FROM t WHERE a = _utf8mb4 X'273B202D2D' AND b = (-7) \
         AND c = _utf8mb4 X''"
    );
    let err = bind("SELECT ?", &[]).unwrap_err().to_string();
    assert!(err.contains("1 placeholders was given 0 values"), "{err}");
    let err = bind("SELECT 1", &[Param::Text("secret")])
        .unwrap_err()
        .to_string();
    assert!(!err.contains("secret"), "{err}");
}

#[test]
fn server_errors_give_their_sqlstate_and_withhold_quoted_values() {
    let missing = b"\xff\x7a\x04#42S02Table 'mail.x' doesn't exist";
    assert_eq!(
        server_error(missing).ok().unwrap(),
        (
            "42S02".to_string(),
            "Table 'mail.x' doesn't exist".to_string()
        )
    );
    let dup = b"\xff\x26\x04#23000Duplicate entry 'alice' for key 'PRIMARY'";
    let (code, message) = server_error(dup).ok().unwrap();
    assert_eq!(code, "23000");
    assert!(!message.contains("alice"), "{message}");
    let old = b"\xff\x10\x04Too many connections";
    assert_eq!(server_error(old).ok().unwrap().0, "HY000");
    assert_eq!(eof_status(b"\xfe\0\0\x0a\0"), Some(0x0a));
    assert_eq!(eof_status(b"\xfe\0\0\x0a\0\0\0\0\0"), None);
}

/// What the fake server does in turn: read one packet from the client, or write one.
enum Step {
    Read,
    Write(&'static [u8]),
}

const OK: &[u8] = b"\x00\x00\x00\x02\x00\x00\x00";
const PASSWORD: &str = "pa55-w0rd";
/// The nonce of [`auth::tests::greeting_for`].
const NONCE: &[u8] = b"abcdefghijklmnopqrst";

/// Serves one connection on `stream`: the greeting (default plugin `plugin`), then `steps`;
/// returns the packets read and every byte the client sent after them.
fn serve(
    mut stream: impl io::Read + io::Write,
    plugin: &str,
    steps: &[Step],
) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut seq = 0;
    packet::write(&mut stream, &mut seq, &auth::tests::greeting_for(plugin)).unwrap();
    let mut read = Vec::new();
    for step in steps {
        match step {
            Step::Read => read.push(packet::read(&mut stream, &mut seq).unwrap()),
            Step::Write(bytes) => packet::write(&mut stream, &mut seq, bytes).unwrap(),
        }
    }
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    (read, rest)
}

/// Runs `connect` as `user` against a fake server that plays `steps` over TCP (or a Unix
/// socket); returns what `connect` returned (the connection dropped) and what the server
/// read.
fn login(
    unix: bool,
    plugin: &'static str,
    steps: &'static [Step],
) -> (Result<(), SqlError>, Vec<Vec<u8>>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (target, server) = if unix {
        let path = dir.path().join("mysqld.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || serve(listener.accept().unwrap().0, plugin, steps));
        (Target::Unix(path), server)
    } else {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || serve(listener.accept().unwrap().0, plugin, steps));
        (Target::Tcp("127.0.0.1".to_string(), port), server)
    };
    let address = Address {
        dialect: super::super::address::Dialect::Mysql,
        user: "mailmfa".to_string(),
        target,
        database: "mail".to_string(),
        tls: false,
    };
    let files = TlsFiles {
        ca_file: None,
        cert_file: None,
        key_file: None,
        prefix: "sql_",
        timeout_name: TIMEOUT,
    };
    let timeout = Duration::from_secs(5);
    let result = connect(&address, Some(PASSWORD), timeout, &files, Owners::from(0)).map(drop);
    let (read, rest) = server.join().unwrap();
    (result, read, rest)
}

/// The proof and plugin in a login packet (after the fixed part, the user and the database).
fn proof_and_plugin(login: &[u8]) -> (Vec<u8>, String) {
    let mut c = Cursor::new(&login[32..]);
    assert_eq!(c.nul(), b"mailmfa");
    let proof = c.lenenc_bytes().unwrap().unwrap().to_vec();
    assert_eq!(c.nul(), b"mail");
    (proof, String::from_utf8(c.nul().to_vec()).unwrap())
}

#[test]
fn caching_sha2_fast_path_proves_the_password_without_sending_it() {
    use Step::*;
    let (result, read, _) = login(
        false,
        auth::CACHING_SHA2,
        &[Read, Write(b"\x01\x03"), Write(OK)],
    );
    result.unwrap();
    let (proof, plugin) = proof_and_plugin(&read[0]);
    assert_eq!(plugin, auth::CACHING_SHA2);
    let want = auth::scramble(auth::CACHING_SHA2, PASSWORD.as_bytes(), NONCE).unwrap();
    assert_eq!(proof, *want);
}

#[test]
fn caching_sha2_full_authentication_sends_the_password_only_over_a_unix_socket() {
    use Step::*;
    let steps = &[Read, Write(b"\x01\x04")];
    let (result, _, rest) = login(false, auth::CACHING_SHA2, steps);
    let Err(SqlError::Connection(why)) = result else {
        panic!("{result:?}")
    };
    assert!(why.contains("only over TLS or a Unix socket"), "{why}");
    assert!(!why.contains(PASSWORD), "{why}");
    let sent = String::from_utf8_lossy(&rest);
    assert!(!sent.contains(PASSWORD), "{sent:?}");
    let steps = &[Read, Write(b"\x01\x04"), Read, Write(OK)];
    let (result, read, _) = login(true, auth::CACHING_SHA2, steps);
    result.unwrap();
    assert_eq!(read[1], format!("{PASSWORD}\0").as_bytes());
}

#[test]
fn a_plugin_switch_is_answered_with_the_new_plugins_proof() {
    use Step::*;
    const SWITCH: &[u8] = b"\xfemysql_native_password\0ZYXWVUTSRQPONMLKJIHG\0";
    let (result, read, _) = login(
        false,
        "client_ed25519",
        &[Read, Write(SWITCH), Read, Write(OK)],
    );
    result.unwrap();
    // A default plugin not spoken is answered with the native one.
    assert_eq!(proof_and_plugin(&read[0]).1, auth::NATIVE);
    let want = auth::scramble(auth::NATIVE, PASSWORD.as_bytes(), b"ZYXWVUTSRQPONMLKJIHG").unwrap();
    assert_eq!(read[1], *want);
    const REFUSAL: &[u8] = b"\xff\x15\x04#28000Access denied for user 'mailmfa'";
    let (result, _, _) = login(false, auth::NATIVE, &[Read, Write(REFUSAL)]);
    let why = result.unwrap_err().to_string();
    assert!(
        why.starts_with("login as mailmfa refused: Access denied"),
        "{why}"
    );
    let (result, _, _) = login(false, auth::NATIVE, &[Read, Write(b"\x07junk")]);
    assert!(result.unwrap_err().to_string().contains("garbled reply"));
}
