//! `mailmfa doctor` and `mailmfa status` with `state = "redis"`, against a real redis-server
//! (Debian's package, one per test from `servers::redis`): a healthy server passes; an
//! evicting `maxmemory-policy`, an ACL user without `+watch` and a server that is down are
//! errors named with their fix; AOF off is a warning; `status` shows the URL, key, TTL and
//! the state written through the library, and fails clearly when the server is down. No
//! output ever holds the Redis password.

mod cli_support;
// The harness re-exports every server's types; this binary uses only Redis's.
#[allow(unused_imports)]
mod servers;
mod skip;

use cli_support::*;
use mailmfa::config::Settings;
use mailmfa::login::Login;
use mailmfa::store::backend::Backend;
use mailmfa::store::Store;
use servers::{Redis, RedisOpts};
use std::fs;
use std::os::unix::fs::PermissionsExt;

/// The pam.d stack the docs give (so that the PAM checks are all ok).
const GOOD: &str =
    "auth [success=done ignore=ignore auth_err=bad default=die] pam_mailmfa.so split\n\
     auth requisite pam_pwdfile.so pwdfile=/etc/dovecot/passwd.pam\n\
     auth required pam_mailmfa.so verify\n\
     account required pam_mailmfa.so account pwdfile=/etc/dovecot/passwd.pam\n";

/// The Redis password of the ACL tests: must never be shown.
const PASSWORD: &str = "redis-s3cret-Pw0rd";

/// Whether redis-server can run here (skips loudly, or fails under CI).
fn have_redis() -> bool {
    skip::require(
        servers::find_program("redis-server").is_some()
            && servers::find_program("redis-cli").is_some(),
        "redis-server and redis-cli (apt-get install redis-server)",
    )
}

/// A healthy server for the state: nothing evicted, AOF on, fsync on every write.
fn healthy() -> Vec<String> {
    vec![
        "maxmemory-policy noeviction".to_string(),
        "appendonly yes".to_string(),
        "appendfsync always".to_string(),
    ]
}

/// An installation whose state lives at `url`, with `extra` config lines.
fn env_for(url: &str, extra: &str) -> Env {
    let env = Env::with_settings(&format!(
        "state = \"redis\"\nredis_url = \"{url}\"\n{extra}"
    ));
    let pam = env.dir.path().join("pam.d");
    fs::create_dir(&pam).unwrap();
    fs::write(pam.join("dovecot"), GOOD).unwrap();
    env
}

/// `redis_user` and a 0600 `redis_password_file` holding [`PASSWORD`], as config lines.
fn acl_login(dir: &std::path::Path, user: &str) -> String {
    let file = dir.join("redis.pw");
    fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    format!(
        "redis_user = \"{user}\"\nredis_password_file = \"{}\"\n",
        file.display()
    )
}

/// `doctor --json` with the test's pam.d, no saslauthd and no Dovecot config.
fn doctor(env: &Env) -> Run {
    let dir = env.dir.path();
    env.run(&[
        "doctor",
        "--json",
        "--pam-dir",
        dir.join("pam.d").to_str().unwrap(),
        "--saslauthd-defaults",
        dir.join("no-saslauthd").to_str().unwrap(),
        "--dovecot-config",
        dir.join("no-dovecot.conf").to_str().unwrap(),
    ])
}

/// The doctor's findings about Redis: (level, what, fix).
fn redis_findings(run: &Run) -> Vec<(String, String, String)> {
    run.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["what"].as_str().unwrap().starts_with("redis: "))
        .map(|f| {
            (
                f["level"].as_str().unwrap().to_string(),
                f["what"].as_str().unwrap().to_string(),
                f["fix"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn has(found: &[(String, String, String)], level: &str, text: &str) -> bool {
    found.iter().any(|(l, w, _)| l == level && w.contains(text))
}

fn assert_no_password(run: &Run) {
    assert!(
        !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
        "the Redis password was shown: {run:?}"
    );
}

/// The settings of `env`'s config, as the module reads them.
fn settings(env: &Env) -> Settings {
    Settings::from_toml(&fs::read_to_string(&env.config).unwrap(), &env.config).unwrap()
}

#[test]
fn doctor_passes_a_healthy_redis() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start(RedisOpts {
        conf: healthy(),
        ..Default::default()
    });
    let env = env_for(&redis.url(2), "");
    let run = doctor(&env);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["errors"], 0, "{json:#}");
    assert_eq!(json["warnings"], 0, "{json:#}");
    let found = redis_findings(&run);
    let url = redis.url(2);
    assert!(has(&found, "ok", &format!("{url} answers")), "{found:#?}");
    assert!(has(&found, "info", "server: Redis "), "{found:#?}");
    assert!(
        has(
            &found,
            "ok",
            "may run UNWATCH, WATCH, GET, MULTI, SET, EXEC, DEL on mailmfa:*"
        ),
        "{found:#?}"
    );
    assert!(
        has(&found, "ok", "maxmemory-policy is noeviction"),
        "{found:#?}"
    );
    assert!(
        has(&found, "ok", "AOF is on with appendfsync always"),
        "{found:#?}"
    );
    assert_eq!(found.len(), 5, "{found:#?}");
    // The probe key is gone, from the database of the URL too.
    assert_eq!(redis.cli(&["-n", "2", "DBSIZE"]), "0");
    assert_eq!(redis.cli(&["DBSIZE"]), "0");

    // The text form: one line per finding, the version as `info:`.
    let dir = env.dir.path();
    let text = env.run(&[
        "doctor",
        "--pam-dir",
        dir.join("pam.d").to_str().unwrap(),
        "--saslauthd-defaults",
        dir.join("none").to_str().unwrap(),
        "--dovecot-config",
        dir.join("none.conf").to_str().unwrap(),
    ]);
    text.assert_code(0);
    text.assert_stdout("info:    redis: server: Redis ");
    text.assert_stdout("0 error(s), 0 warning(s)");
}

#[test]
fn doctor_fails_an_evicting_maxmemory_policy() {
    if !have_redis() {
        return;
    }
    let mut conf = healthy();
    conf.push("maxmemory-policy allkeys-lru".to_string());
    let redis = Redis::start(RedisOpts {
        conf,
        ..Default::default()
    });
    let env = env_for(&redis.url(0), "");
    let run = doctor(&env);
    run.assert_code(1);
    let found = redis_findings(&run);
    let eviction = found
        .iter()
        .find(|(_, w, _)| w.contains("maxmemory-policy"))
        .unwrap_or_else(|| panic!("{found:#?}"));
    assert_eq!(eviction.0, "error", "{found:#?}");
    assert!(eviction.1.contains("allkeys-lru"), "{found:#?}");
    assert!(eviction.1.contains("used recovery codes"), "{found:#?}");
    assert!(eviction.2.contains("noeviction"), "{found:#?}");
    assert_eq!(run.json()["errors"], 1, "{found:#?}");
}

#[test]
fn doctor_names_the_command_an_acl_user_lacks() {
    if !have_redis() {
        return;
    }
    let mut conf = healthy();
    conf.push(format!(
        "user mailmfa on >{PASSWORD} ~mailmfa:* +get +set +unwatch +multi +exec +del +ping"
    ));
    let redis = Redis::start(RedisOpts {
        conf,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(&redis.url(0), &acl_login(dir.path(), "mailmfa"));
    let run = doctor(&env);
    run.assert_code(1);
    assert_no_password(&run);
    let found = redis_findings(&run);
    assert!(
        has(&found, "ok", "answers (connect, AUTH as mailmfa"),
        "{found:#?}"
    );
    let acl = found
        .iter()
        .find(|(l, w, _)| l == "error" && w.contains("ACL of user mailmfa"))
        .unwrap_or_else(|| panic!("{found:#?}"));
    assert!(acl.1.contains("refuses WATCH,"), "{found:#?}");
    assert!(acl.2.contains("ACL SETUSER mailmfa +watch"), "{found:#?}");
    assert!(
        acl.2.contains("user mailmfa on >PASSWORD ~mailmfa:* "),
        "{found:#?}"
    );
    // CONFIG and INFO are not the store's: the doctor says it could not look.
    assert!(
        has(
            &found,
            "warning",
            "cannot read maxmemory-policy (CONFIG not allowed): make sure it is noeviction"
        ),
        "{found:#?}"
    );
    assert!(
        has(&found, "warning", "cannot read the persistence settings"),
        "{found:#?}"
    );
    assert_eq!(run.json()["errors"], 1, "{found:#?}");
    assert_eq!(redis.cli(&["DBSIZE"]), "0", "the probe key was left");

    // With +watch the same user passes the ACL check.
    redis.cli(&["ACL", "SETUSER", "mailmfa", "+watch"]);
    let run = doctor(&env);
    assert_no_password(&run);
    let found = redis_findings(&run);
    assert!(
        has(&found, "ok", "user mailmfa may run UNWATCH, WATCH"),
        "{found:#?}"
    );
    run.assert_code(0);
}

#[test]
fn doctor_warns_when_aof_is_off() {
    if !have_redis() {
        return;
    }
    let mut conf = healthy();
    conf.push("appendonly no".to_string());
    let redis = Redis::start(RedisOpts {
        conf,
        ..Default::default()
    });
    let env = env_for(&redis.url(0), "");
    let run = doctor(&env);
    run.assert_code(0);
    let found = redis_findings(&run);
    assert!(
        has(&found, "warning", "AOF is off (appendonly no)"),
        "{found:#?}"
    );
    assert_eq!(run.json()["errors"], 0, "{found:#?}");
    assert_eq!(run.json()["warnings"], 1, "{found:#?}");

    // AOF on, but fsync once a second: a used recovery code can be lost in a crash.
    redis.cli(&["CONFIG", "SET", "appendonly", "yes"]);
    redis.cli(&["CONFIG", "SET", "appendfsync", "everysec"]);
    let found = redis_findings(&doctor(&env));
    assert!(
        has(&found, "warning", "appendfsync is everysec"),
        "{found:#?}"
    );
}

#[test]
fn doctor_fails_clearly_when_redis_is_down() {
    // No server: only a port leased and nothing listening on it.
    let lease = servers::free_port();
    assert!(!servers::redis::listening(lease.port()));
    let url = format!("redis://127.0.0.1:{}/0", lease.port());
    let env = env_for(&url, "");
    let run = doctor(&env);
    run.assert_code(1);
    let found = redis_findings(&run);
    assert_eq!(found.len(), 1, "{found:#?}");
    let (level, what, fix) = &found[0];
    assert_eq!(level, "error");
    assert!(
        what.contains(&format!("cannot use the shared state at {url}")),
        "{what}"
    );
    assert!(what.contains("Connection refused"), "{what}");
    assert!(what.contains("state_unavailable"), "{what}");
    assert!(fix.contains("start the Redis/Valkey server"), "{fix}");
}

#[test]
fn status_shows_where_the_shared_state_lives_and_its_ttl() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start(RedisOpts {
        conf: healthy(),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    redis.cli(&[
        "ACL",
        "SETUSER",
        "mailmfa",
        "on",
        &format!(">{PASSWORD}"),
        "~mailmfa:*",
        "+ping",
        "+select",
        "+get",
        "+set",
        "+del",
        "+watch",
        "+unwatch",
        "+multi",
        "+exec",
        "+ttl",
    ]);
    let url = redis.url(1);
    let env = env_for(&url, &acl_login(dir.path(), "mailmfa"));

    // Nothing stored yet.
    let run = env.run(&["status", "alice"]);
    run.assert_code(0);
    assert!(
        run.stdout
            .contains(&format!("state:       {url} key mailmfa:{{alice}}:state\n")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("key ttl:     no key (nothing remembered)"),
        "{}",
        run.stdout
    );

    // A state written through the library, as a login on another server would.
    let settings = settings(&env);
    let alice = Login::parse(b"alice").unwrap();
    let store = Backend::open(&settings, mailmfa::pam::sys::effective_uid());
    let written = now() - 5;
    store
        .update_state(&alice, &mut |state| {
            state.last_success = Some(written);
            state.last_client = Some("192.0.2.7".to_string());
            true
        })
        .unwrap();
    let run = env.run(&["status", "alice"]);
    run.assert_code(0);
    assert_no_password(&run);
    run.assert_stdout("from 192.0.2.7");
    let ttl = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("key ttl:     "))
        .and_then(|t| t.strip_suffix(" s left"))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no TTL in seconds: {}", run.stdout));
    let horizon = mailmfa::store::redis::RedisStore::new(&settings, 0).horizon();
    assert!(ttl > 0 && ttl <= horizon, "{ttl} of {horizon}");
    let json = env.run(&["status", "alice", "--json"]).json();
    assert_eq!(json["last_client"], "192.0.2.7");
    assert_eq!(json["shared_state"]["url"], url.as_str());
    assert_eq!(json["shared_state"]["key"], "mailmfa:{alice}:state");
    assert_eq!(json["shared_state"]["expiry"], "expires");
    assert!(json["shared_state"]["ttl"].as_u64().unwrap() <= horizon);

    // A used recovery code: the key is kept for good.
    store
        .update_state(&alice, &mut |state| {
            state.used_recovery.push("3f1a09c2d4e5b6a7".to_string());
            true
        })
        .unwrap();
    let run = env.run(&["status", "alice"]);
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("key ttl:     kept (recovery codes used)"),
        "{}",
        run.stdout
    );
    assert_eq!(
        env.run(&["status", "alice", "--json"]).json()["shared_state"]["expiry"],
        "kept"
    );
    assert_eq!(
        redis.cli(&["-n", "1", "TTL", "mailmfa:{alice}:state"]),
        "-1"
    );
}

#[test]
fn status_fails_clearly_when_redis_is_down() {
    let lease = servers::free_port();
    assert!(!servers::redis::listening(lease.port()));
    let url = format!("redis://127.0.0.1:{}/0", lease.port());
    let env = env_for(&url, "");
    let run = env.run(&["status", "alice"]);
    run.assert_code(1);
    run.assert_stderr(&format!("the shared state server {url} cannot be used"));
    run.assert_stderr("Connection refused");
    run.assert_stderr("state_unavailable");
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}
