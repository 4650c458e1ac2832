//! The state on a real Redis server (issue 14), through the real libpam and the built module:
//! several "servers" (fixtures with their own record and state directories, the same Redis)
//! share the replay rules and the throttle; fifty processes racing on one code accept it
//! exactly once; Redis down, stopped (slow), full, refusing the ACL, or an impostor answering
//! garbage deny MFA logins with `state_unavailable` and leave mailboxes without MFA alone;
//! recovery needs nothing; keys carry the login's hash tag and expire, except once a recovery
//! code was used; one connection per process, reused, and a forked child opens its own.
//!
//! redis-server runs as the test's own user on its own port and socket in a temp dir
//! (`tests/servers/redis.rs`); nothing here needs root.

mod fixture;
mod hostile;
mod servers;
mod skip;

use fixture::{code, wait_for_step_margin, Fixture};
use hostile::{assert_replay_rules, logins_at_once};
use mailmfa::credential;
use mailmfa::pam::client::Response;
use mailmfa::record::Record;
use mailmfa::store::Store;
use servers::redis::{impostor, Redis, RedisOpts};
use std::fs;
use std::os::unix::fs::PermissionsExt;

const ALICE: &str = "alice@example.com";
const PLAIN: &str = "bob@example.com";
const PW: &str = "T9D3K!px";
const PROCESSES: usize = 50;
const IP1: Option<&str> = Some("127.0.0.2");
const IP2: Option<&str> = Some("127.0.0.3");
const RECOVERY: &str = "mnbv-cxzl-kjhg";

/// Whether redis-server is here (a loud skip, or a failure under CI, when not).
fn have_redis() -> bool {
    skip::require(
        servers::find_program("redis-server").is_some()
            && servers::find_program("redis-cli").is_some(),
        "redis-server and redis-cli (Debian: redis-server, redis-tools)",
    )
}

/// One mail server of the cluster: its own directories and pam.d, the state on `url`,
/// alice (MFA) and bob (password only) in its password file, alice's record as given (the
/// admin copies records to every server).
fn server(redis_lines: &str, record: Option<&Record>) -> (Fixture, Record) {
    let f = Fixture::with_config(&format!("state = \"redis\"\n{redis_lines}"));
    f.install_example("dovecot-virtual", "mail", "");
    f.add_password(ALICE, PW);
    f.add_password(PLAIN, PW);
    let rec = match record {
        Some(rec) => {
            f.save(ALICE, rec);
            rec.clone()
        }
        None => f.enable(ALICE),
    };
    (f, rec)
}

/// A redis-server with the default options and one mail server ([`server`]) on it.
fn one_server() -> (Redis, Fixture, Record) {
    let redis = Redis::start(RedisOpts::default());
    let (f, rec) = server(&tcp(&redis), None);
    (redis, f, rec)
}

/// A fixture whose state is on the (scripted) server at 127.0.0.1:`port`.
fn scripted_world(port: u16) -> Fixture {
    Fixture::with_config(&format!(
        "state = \"redis\"\nredis_url = \"redis://127.0.0.1:{port}/0\""
    ))
}

/// Rewrites the fixture's `mailmfa.toml`: its directories, the state on `url`, and `extra`.
/// Each variant differs in its settings, so this process opens a new connection for it.
fn rewrite_config(f: &Fixture, url: &str, extra: &str) {
    let text = format!(
        "record_dir = \"{}\"\nstate_dir = \"{}\"\nstate = \"redis\"\nredis_url = \"{url}\"\n{extra}\n",
        f.settings.record_dir.display(),
        f.settings.state_dir.display(),
    );
    fs::write(&f.config, text).unwrap();
}

fn tcp(redis: &Redis) -> String {
    format!("redis_url = \"{}\"", redis.url(0))
}

fn reason(r: &Response) -> &str {
    r.reason.as_deref().unwrap_or("-")
}

fn login(f: &Fixture, user: &str, password: &str, rhost: Option<&str>) -> Response {
    f.login("mail", user, password, rhost)
}

/// Asserts the MFA login is denied for want of the state, and the plain one still works.
fn assert_unavailable(f: &Fixture, rec: &Record, what: &str) {
    let r = login(f, ALICE, &format!("{PW}{}", code(rec, 0)), IP1);
    assert!(!r.success(), "{what}: {r:?}");
    assert_eq!(reason(&r), "state_unavailable", "{what}: {r:?}");
    let r = login(f, PLAIN, PW, IP1);
    assert!(
        r.success(),
        "{what}: a mailbox without MFA is unaffected: {r:?}"
    );
}

#[test]
fn a_code_used_on_one_server_is_replayed_on_another_and_the_throttle_is_shared() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start(RedisOpts::default());
    let lines = format!("{}\nmax_failures = 3", tcp(&redis));
    let (a, rec) = server(&lines, None);
    let (b, _) = server(&lines, Some(&rec));
    wait_for_step_margin(8);
    let good = format!("{PW}{}", code(&rec, 0));
    let r = login(&a, ALICE, &good, IP1);
    assert_eq!((r.success(), reason(&r)), (true, "ok"), "{r:?}");
    let r = login(&b, ALICE, &good, IP2);
    assert_eq!(
        (r.success(), reason(&r)),
        (false, "replayed"),
        "server B knows that A accepted the code: {r:?}"
    );
    let r = login(&b, ALICE, &good, IP1);
    assert_eq!(
        (r.success(), reason(&r)),
        (true, "reused"),
        "the same client's other connection, on B: {r:?}"
    );
    // The throttle: three wrong codes from IP2, spread over both servers, block IP2 on both.
    for (server, wrong) in [(&a, "000001"), (&b, "000002"), (&a, "000003")] {
        let r = login(server, ALICE, &format!("{PW}{wrong}"), IP2);
        assert!(!r.success(), "{r:?}");
    }
    let next = format!("{PW}{}", code(&rec, 1));
    for server in [&a, &b] {
        let r = login(server, ALICE, &next, IP2);
        assert_eq!((r.success(), reason(&r)), (false, "throttled"), "{r:?}");
    }
    let state = a.state(ALICE).expect("a state on Redis");
    assert_eq!(state.failures.len(), 3, "{state:#?}");
    assert_eq!(b.state(ALICE), Some(state), "both servers read one state");
    // Nothing was written to either server's state directory.
    for f in [&a, &b] {
        assert!(!f.state_path(ALICE).exists());
    }
}

/// In the worker role, runs one login and returns `true`.
fn worker() -> bool {
    if hostile::role().as_deref() == Some(hostile::WORKER) {
        hostile::login_worker();
        return true;
    }
    false
}

#[test]
fn fifty_processes_on_shared_state_accept_one_code_exactly_once() {
    if worker() || !have_redis() {
        return;
    }
    let (_redis, f, rec) = one_server();
    wait_for_step_margin(10);
    let password = format!("{PW}{}", code(&rec, 0));
    let logins: Vec<(String, String, String)> = (0..PROCESSES)
        .map(|i| {
            let rhost = format!("127.0.0.{}", 10 + i % 5);
            (ALICE.to_string(), password.clone(), rhost)
        })
        .collect();
    let outcomes = logins_at_once(
        "fifty_processes_on_shared_state_accept_one_code_exactly_once",
        &f.confdir,
        "mail",
        &logins,
    );
    let state = f.state(ALICE).expect("state on Redis");
    assert_replay_rules(&outcomes, &state);
}

#[test]
fn fifty_wrong_codes_at_once_all_count_on_the_shared_throttle() {
    if worker() || !have_redis() {
        return;
    }
    let redis = Redis::start(RedisOpts::default());
    let (f, rec) = server(&format!("{}\nmax_failures_user = 200", tcp(&redis)), None);
    wait_for_step_margin(10);
    let near: Vec<String> = (-3..=3).map(|s| code(&rec, s)).collect();
    let logins: Vec<(String, String, String)> = (0u64..)
        .map(|i| format!("{:06}", (i * 7919 + 104_729) % 1_000_000))
        .filter(|c| !near.contains(c))
        .take(PROCESSES)
        .enumerate()
        .map(|(i, c)| (ALICE.to_string(), format!("{PW}{c}"), format!("10.0.1.{i}")))
        .collect();
    let outcomes = logins_at_once(
        "fifty_wrong_codes_at_once_all_count_on_the_shared_throttle",
        &f.confdir,
        "mail",
        &logins,
    );
    assert!(
        outcomes.iter().all(|o| o.reason == "bad_code"),
        "{outcomes:#?}"
    );
    let state = f.state(ALICE).expect("state on Redis");
    assert_eq!(
        state.failures.len(),
        PROCESSES,
        "no failure lost: {state:#?}"
    );
}

#[test]
fn redis_down_or_stopped_denies_mfa_logins_and_recovery_needs_nothing() {
    if !have_redis() {
        return;
    }
    let mut redis = Redis::start(RedisOpts::default());
    let (f, rec) = server(&format!("{}\nredis_timeout_ms = 200", tcp(&redis)), None);
    wait_for_step_margin(12);
    let r = login(&f, ALICE, &format!("{PW}{}", code(&rec, 0)), IP1);
    assert!(r.success(), "{r:?}");

    // Stopped (SIGSTOP): the connection is open but nothing answers: a timeout.
    let pid = redis.pid().to_string();
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    };
    signal("-STOP");
    assert_unavailable(&f, &rec, "redis stopped");
    signal("-CONT");
    // The next login opens a new connection by itself.
    let r = login(&f, ALICE, &format!("{PW}{}", code(&rec, 0)), IP1);
    assert_eq!((r.success(), reason(&r)), (true, "reused"), "{r:?}");

    // Down: nothing listens on the port.
    redis.stop();
    assert_unavailable(&f, &rec, "redis down");
    // Back on the same port, empty (no persistence in this test): the step is unknown to the
    // new server, but the module needs nothing to use it.
    redis.restart();
    let r = login(&f, ALICE, &format!("{PW}{}", code(&rec, 0)), IP1);
    assert!(r.success(), "after the restart: {r:?}");
    assert!(f.state(ALICE).is_some());
    // A restart between two logins: the kept connection was closed by the old server; the
    // next login finds that out on it and goes on over a new one, without a refusal.
    redis.restart();
    let r = login(&f, ALICE, &format!("{PW}{}", code(&rec, 0)), IP1);
    assert!(
        r.success(),
        "right after a restart, on a stale connection: {r:?}"
    );
}

#[test]
fn a_full_redis_and_a_garbage_answer_deny() {
    if !have_redis() {
        return;
    }
    let (redis, f, rec) = one_server();
    wait_for_step_margin(8);
    assert_eq!(
        redis.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]),
        "OK"
    );
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory", "1"]), "OK");
    assert_unavailable(&f, &rec, "maxmemory reached with noeviction");
    let err = f
        .backend()
        .update_state(&fixture::login(ALICE), &mut |_| true)
        .unwrap_err();
    assert!(err.to_string().contains("SET refused: OOM"), "{err}");

    for (what, reply, hang) in [
        (
            "an HTTP server",
            &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
            false,
        ),
        ("a bulk string that never ends", &b"$9999\r\nabc"[..], true),
        ("silence", &b""[..], true),
    ] {
        let port = impostor(reply, hang);
        let (g, rec) = server(
            &format!("redis_url = \"redis://127.0.0.1:{port}/0\"\nredis_timeout_ms = 100"),
            None,
        );
        assert_unavailable(&g, &rec, what);
    }
}

#[test]
fn an_acl_user_logs_in_with_a_private_password_file_and_nothing_else() {
    if !have_redis() {
        return;
    }
    let password = "redis-Passw0rd-for-mailmfa";
    let redis = Redis::start(RedisOpts {
        conf: vec![
            format!(
                "user mailmfa on >{password} ~mailmfa:* resetchannels -@all \
                 +get +set +del +watch +unwatch +multi +exec +ping"
            ),
            "user default off".to_string(),
        ],
        ..Default::default()
    });
    let (f, rec) = server("", None);
    let file = f.dir.path().join("redis.password");
    fs::write(&file, format!("{password}\n")).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    let url = format!("unix:{}", redis.socket.display());
    let config =
        |extra: &str| rewrite_config(&f, &url, &format!("redis_user = \"mailmfa\"\n{extra}"));
    wait_for_step_margin(8);
    config(&format!("redis_password_file = \"{}\"", file.display()));
    let r = login(&f, ALICE, &format!("{PW}{}", code(&rec, 0)), IP1);
    assert_eq!(
        (r.success(), reason(&r)),
        (true, "ok"),
        "over the Unix socket: {r:?}"
    );

    // The password file is read when a connection opens: other settings (here the timeout)
    // make this process open a new one. A password file others may read is refused, and so
    // is a wrong password.
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    config(&format!(
        "redis_password_file = \"{}\"\nredis_timeout_ms = 251",
        file.display()
    ));
    assert_unavailable(&f, &rec, "a group-readable password file");
    fs::write(&file, "not-the-password\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    assert_unavailable(&f, &rec, "a wrong password");
    // `redis_user` without a password file: refused before anything is sent.
    config("");
    assert_unavailable(&f, &rec, "redis_user without a password file");
}

#[test]
fn keys_carry_the_login_as_hash_tag_and_expire_until_a_recovery_code_is_used() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start(RedisOpts::default());
    let (f, mut rec) = server(&format!("{}\nredis_prefix = \"mx:\"", tcp(&redis)), None);
    rec.recovery_codes = vec![credential::hash(
        &credential::recovery_letters(RECOVERY.as_bytes()),
        &[7; 16],
    )];
    f.save(ALICE, &rec);
    wait_for_step_margin(8);
    let key = format!("mx:{{{ALICE}}}:state");
    let r = login(&f, ALICE, &format!("{PW}{}", code(&rec, 0)), IP1);
    assert!(r.success(), "{r:?}");
    assert_eq!(redis.cli(&["KEYS", "*"]), key);
    let horizon = mailmfa::store::redis::RedisStore::new(&f.settings, 0).horizon();
    let ttl: u64 = redis.cli(&["TTL", &key]).parse().unwrap();
    assert!(ttl > 0 && ttl <= horizon, "TTL {ttl} within {horizon}");
    // An app password's last use is kept for the panel's "last used" far longer.
    let app = "qwxzv-kjhgf-dsapo-iuytr";
    rec.app_passwords.push(fixture::app_password("phone", app));
    f.save(ALICE, &rec);
    let r = login(&f, ALICE, app, IP1);
    assert_eq!(reason(&r), "app_password", "{r:?}");
    let ttl: u64 = redis.cli(&["TTL", &key]).parse().unwrap();
    let keep = mailmfa::store::redis::KEEP_APP_PASSWORD_USES;
    assert!(
        ttl > horizon && ttl <= keep && keep == 90 * 86400,
        "TTL {ttl} with an app-password use"
    );
    // A used recovery code is remembered for good.
    let r = login(&f, ALICE, &format!("{PW}{RECOVERY}"), IP1);
    assert_eq!(reason(&r), "recovery_code", "{r:?}");
    assert_eq!(redis.cli(&["TTL", &key]), "-1");
    let r = login(&f, ALICE, &format!("{PW}{RECOVERY}"), IP1);
    assert!(!r.success(), "a used recovery code stays used: {r:?}");
}

/// `total_connections_received` of the server.
fn connections(redis: &Redis) -> u64 {
    redis
        .cli(&["INFO", "stats"])
        .lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .expect("INFO stats")
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn one_connection_per_process_is_reused_and_a_forked_child_opens_its_own() {
    if !have_redis() {
        return;
    }
    let (redis, f, rec) = one_server();
    wait_for_step_margin(10);
    let good = format!("{PW}{}", code(&rec, 0));
    assert!(login(&f, ALICE, &good, IP1).success());
    // Each reading of the counter is itself one connection (redis-cli).
    let before = connections(&redis);
    for _ in 0..3 {
        assert!(login(&f, ALICE, &good, IP1).success());
    }
    assert_eq!(
        connections(&redis),
        before + 1,
        "three more logins in this process reused its connection"
    );
    let before = connections(&redis);
    let child = fork_login(&f, &good);
    assert_eq!(child, "reused", "the child's login");
    assert_eq!(
        connections(&redis),
        before + 2,
        "the child opened its own connection"
    );
    let before = connections(&redis);
    let r = login(&f, ALICE, &good, IP1);
    assert_eq!(
        reason(&r),
        "reused",
        "the parent's connection still works: {r:?}"
    );
    assert_eq!(connections(&redis), before + 1);
}

/// Forks this process; the child logs in once through libpam and reports the reason on a
/// pipe. Returns the child's reason.
fn fork_login(f: &Fixture, password: &str) -> String {
    use std::io::{Read, Write};
    let (mut reader, mut writer) = std::io::pipe().unwrap();
    // SAFETY: the child only logs in through libpam (which the parent already loaded), writes
    // one line on the pipe and leaves with _exit, running no destructor or atexit handler.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let r = login(f, ALICE, password, IP1);
        let _ = writer.write_all(reason(&r).as_bytes());
        drop(writer);
        // SAFETY: ends the child without unwinding into the test harness.
        unsafe { libc::_exit(0) };
    }
    drop(writer);
    let mut out = String::new();
    reader.read_to_string(&mut out).unwrap();
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    out
}

/// `mailmfa --config CONFIG recovery-codes LOGIN --json`: the new codes.
fn new_recovery_codes(f: &Fixture) -> Vec<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailmfa"))
        .arg("--config")
        .arg(&f.config)
        .args(["recovery-codes", ALICE, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_server_whose_record_is_behind_still_refuses_a_used_recovery_code_after_a_new_set() {
    if !have_redis() {
        return;
    }
    let (redis, a, mut rec) = one_server();
    rec.recovery_codes = vec![credential::hash(
        &credential::recovery_letters(RECOVERY.as_bytes()),
        &[7; 16],
    )];
    a.save(ALICE, &rec);
    // Server B got this copy of the record and not the next one.
    let (b, _) = server(&tcp(&redis), Some(&rec));
    let r = login(&a, ALICE, &format!("{PW}{RECOVERY}"), IP1);
    assert_eq!(reason(&r), "recovery_code", "{r:?}");
    // The owner prints a new set on server A.
    let fresh = new_recovery_codes(&a);
    let r = login(&b, ALICE, &format!("{PW}{RECOVERY}"), IP2);
    assert!(
        !r.success(),
        "the used code of the old set works again on the lagging server: {r:?}"
    );
    let r = login(&a, ALICE, &format!("{PW}{}", fresh[0]), IP1);
    assert_eq!(reason(&r), "recovery_code", "a code of the new set: {r:?}");
}

#[test]
fn rediss_checks_the_servers_certificate_and_shows_a_client_certificate() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start(RedisOpts {
        tls_auth_clients: Some("yes"),
        ..Default::default()
    });
    let certs = redis.tls.clone().expect("TLS certificates");
    let (f, rec) = server("", None);
    let config = |extra: &str| rewrite_config(&f, &redis.url(0), extra);
    let ca = format!("redis_tls_ca_file = \"{}\"", certs.ca.display());
    let client = format!(
        "redis_tls_cert_file = \"{}\"\nredis_tls_key_file = \"{}\"",
        certs.client.0.display(),
        certs.client.1.display()
    );
    wait_for_step_margin(8);
    config(&format!("{ca}\n{client}"));
    let r = login(&f, ALICE, &format!("{PW}{}", code(&rec, 0)), IP1);
    assert_eq!((r.success(), reason(&r)), (true, "ok"), "over TLS: {r:?}");
    assert!(redis
        .cli(&["GET", &format!("mailmfa:{{{ALICE}}}:state")])
        .contains("last_step"));

    // The server wants a client certificate.
    config(&format!("{ca}\nredis_timeout_ms = 300"));
    assert_unavailable(&f, &rec, "no client certificate");
    // The system's CAs do not know the test CA.
    config(&format!("{client}\nredis_timeout_ms = 301"));
    assert_unavailable(&f, &rec, "a server certificate of an unknown CA");
    // A client key others may read is refused.
    fs::set_permissions(&certs.client.1, fs::Permissions::from_mode(0o644)).unwrap();
    config(&format!("{ca}\n{client}\nredis_timeout_ms = 302"));
    assert_unavailable(&f, &rec, "a client key others may read");
    fs::set_permissions(&certs.client.1, fs::Permissions::from_mode(0o600)).unwrap();
    config(&format!("{ca}\n{client}\nredis_timeout_ms = 303"));
    let r = login(&f, ALICE, &format!("{PW}{}", code(&rec, 0)), IP1);
    assert_eq!((r.success(), reason(&r)), (true, "reused"), "{r:?}");
}

#[test]
fn a_failure_names_the_server_and_the_key() {
    // Nothing listens on a leased port: the store's error says where it looked.
    let lease = servers::free_port();
    let f = Fixture::with_config(&format!(
        "state = \"redis\"\nredis_url = \"redis://127.0.0.1:{}/3\"\nredis_prefix = \"pfx:\"",
        lease.port()
    ));
    let err = f
        .backend()
        .update_state(&fixture::login(ALICE), &mut |_| true)
        .unwrap_err();
    assert_eq!(err.reason(), mailmfa::log::Reason::StateUnavailable);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "redis://127.0.0.1:{}/3 key pfx:{{{ALICE}}}:state: ",
            lease.port()
        )),
        "{text}"
    );
}

#[test]
fn replies_a_real_server_never_sends_are_refused_with_what_was_wrong() {
    // Round one answers UNWATCH, WATCH and GET (no state yet); round two MULTI, SET, EXEC.
    const FRESH: &[u8] = b"+OK\r\n+OK\r\n$-1\r\n";
    for (exec_round, expected) in [
        (
            &b"+OK\r\n+NOTQUEUED\r\n*1\r\n+OK\r\n"[..],
            "SET: unexpected reply",
        ),
        (
            b"+OK\r\n+QUEUED\r\n*1\r\n+WEIRD\r\n",
            "EXEC: unexpected reply",
        ),
        (
            b"+OK\r\n+QUEUED\r\n*1\r\n-ERR boom\r\n",
            "SET failed: ERR boom",
        ),
        (
            b"+OK\r\n+QUEUED\r\n-EXECABORT x\r\n",
            "EXEC refused: EXECABORT x",
        ),
    ] {
        let port = servers::redis::scripted(vec![(3, FRESH), (3, exec_round)]);
        let f = scripted_world(port);
        let err = f
            .backend()
            .update_state(&fixture::login(ALICE), &mut |_| true)
            .unwrap_err();
        assert_eq!(err.reason(), mailmfa::log::Reason::StateUnavailable);
        assert!(err.to_string().ends_with(expected), "{err}");
    }
    // A GET refused for another reason than the key's type is an error, not a damaged state.
    let port = servers::redis::scripted(vec![(3, b"+OK\r\n+OK\r\n-ERR nope\r\n")]);
    let f = scripted_world(port);
    let err = f
        .backend()
        .update_state(&fixture::login(ALICE), &mut |_| false)
        .unwrap_err();
    assert!(err.to_string().ends_with("GET refused: ERR nope"), "{err}");
}

#[test]
fn a_key_of_another_type_is_a_damaged_state_rebuilt_and_repaired() {
    if !have_redis() {
        return;
    }
    let (redis, f, rec) = one_server();
    let key = format!("mailmfa:{{{ALICE}}}:state");
    assert_eq!(redis.cli(&["HSET", &key, "last_step", "1"]), "1");
    let state = f.state(ALICE).expect("a state");
    assert!(state.rebuilt, "read as rebuilt: {state:?}");
    // The next login repairs it (the codes valid now are refused) and a string replaces it.
    wait_for_step_margin(8);
    let r = login(&f, ALICE, &format!("{PW}{}", code(&rec, 0)), IP1);
    assert_eq!(reason(&r), "replayed", "{r:?}");
    assert_eq!(redis.cli(&["TYPE", &key]), "string");
}

#[test]
fn records_and_removal_go_through_the_redis_store() {
    if !have_redis() {
        return;
    }
    let (redis, f, rec) = one_server();
    let store = f.backend();
    let alice = fixture::login(ALICE);
    let key = format!("mailmfa:{{{ALICE}}}:state");
    // Records are the files, read and written through the Redis store.
    assert_eq!(store.read_record(&alice).unwrap(), Some(rec.clone()));
    let mut changed = rec.clone();
    changed.label = Some("new phone".to_string());
    store.write_record(&alice, &changed).unwrap();
    assert_eq!(store.read_record(&alice).unwrap(), Some(changed));
    assert_eq!(store.list_logins().unwrap(), vec![alice.clone()]);
    // No state yet is `None`, not an empty state.
    assert_eq!(store.read_state(&alice).unwrap(), None);
    store
        .update_state(&alice, &mut |s| {
            s.last_success = Some(1);
            true
        })
        .unwrap();
    assert_eq!(redis.cli(&["EXISTS", &key]), "1");
    // Removal: the record file and the key; a second removal finds nothing.
    assert!(store.remove_user(&alice).unwrap());
    assert_eq!(redis.cli(&["EXISTS", &key]), "0");
    assert!(!f.record_path(ALICE).exists());
    assert!(!store.remove_user(&alice).unwrap());
}

#[test]
fn a_stored_state_over_64_kib_is_damaged_and_one_of_exactly_64_kib_is_read() {
    if !have_redis() {
        return;
    }
    let (redis, f, _) = one_server();
    let key = format!("mailmfa:{{{ALICE}}}:state");
    let limit = mailmfa::store::secure::MAX_FILE_BYTES as usize;
    // A valid state padded with a TOML comment to exactly the limit, then one byte more.
    let head = "version = 1\nlast_success = 7\n#";
    let exact = format!("{head}{}\n", "x".repeat(limit - head.len() - 1));
    assert_eq!(exact.len(), limit);
    assert_eq!(redis.cli(&["SET", &key, &exact]), "OK");
    let state = f.state(ALICE).expect("a state");
    assert!(!state.rebuilt, "exactly 64 KiB is read");
    assert_eq!(state.last_success, Some(7));
    let over = format!("{head}{}\n", "x".repeat(limit - head.len()));
    assert_eq!(redis.cli(&["SET", &key, &over]), "OK");
    assert!(
        f.state(ALICE).expect("a state").rebuilt,
        "over 64 KiB is damaged"
    );
}

#[test]
fn a_refused_del_is_an_error_naming_it() {
    // The record file goes first; then the scripted server refuses the DEL.
    let port = servers::redis::scripted(vec![(1, b"-ERR no del\r\n")]);
    let f = scripted_world(port);
    f.enable(ALICE);
    let err = f.backend().remove_user(&fixture::login(ALICE)).unwrap_err();
    assert!(
        err.to_string().ends_with("DEL refused: ERR no del"),
        "{err}"
    );
}
