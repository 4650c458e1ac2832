//! Concurrency (issue 7, item 3): many processes logging in to one mailbox at the same moment,
//! each a separate process of this test binary driving the real libpam with the built
//! module, as Dovecot's auth workers do. Proves that the replay and reuse rules hold exactly
//! (one client address wins the step; only that address's other connections are `reused`;
//! every other address is `replayed`), also while the record is rewritten with
//! `Store::write_record` (what `mailmfa` does); that no failed code is lost from the throttle
//! when 50 arrive at once; and that state and record always parse meanwhile. Also owns the
//! check that the throttle count survives a state file as large as the documented limits
//! allow.

mod fixture;
mod hostile;
mod skip;

use fixture::{code, login, wait_for_step_margin, Fixture};
use hostile::{assert_replay_rules, logins_at_once};
use mailmfa::auth::{decide_verify, Attempt};
use mailmfa::config::Settings;
use mailmfa::log::Reason;
use mailmfa::record::Record;
use mailmfa::state::State;
use mailmfa::store::{StateLoad, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const ALICE: &str = "alice@example.com";
const PW: &str = "T9D3K!px";
const PROCESSES: usize = 50;

fn world(args: &str) -> (Fixture, Record) {
    let f = Fixture::new();
    f.install_example("dovecot-virtual", "mail", args);
    f.add_password(ALICE, PW);
    let rec = f.enable(ALICE);
    (f, rec)
}

/// In the worker role, runs one login and returns `true`.
fn worker() -> bool {
    if hostile::role().as_deref() == Some(hostile::WORKER) {
        hostile::login_worker();
        return true;
    }
    false
}

/// Client address of process `i`: five addresses, ten processes each.
fn client(i: usize) -> String {
    format!("127.0.0.{}", 10 + i % 5)
}

/// Rewrites alice's record (same secret, new `created`) in a loop, and checks from another
/// thread that the record and the state always parse, until `stop`. Returns the number of
/// rewrites and checks.
struct Rewriter {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<usize>>,
}

impl Rewriter {
    fn start(f: &Fixture, rec: &Record) -> Rewriter {
        let stop = Arc::new(AtomicBool::new(false));
        let store = f.store();
        let secret = rec.params().secret.to_vec();
        let (algorithm, digits, period) = (rec.algorithm, rec.digits, rec.period);
        let s = Arc::clone(&stop);
        let writer = std::thread::spawn(move || {
            let mut n = 0;
            while !s.load(Ordering::SeqCst) {
                let r = Record::new(
                    secret.clone(),
                    algorithm,
                    digits,
                    period,
                    1_000_000 + n as u64,
                )
                .unwrap();
                store
                    .write_record(&login(ALICE), &r)
                    .expect("record rewrite");
                n += 1;
            }
            n
        });
        let s = Arc::clone(&stop);
        let record_path = f.record_path(ALICE);
        let state_path = f.state_path(ALICE);
        let want = rec.params().secret.to_vec();
        let checker = std::thread::spawn(move || {
            let mut n = 0;
            while !s.load(Ordering::SeqCst) {
                let text = fs::read_to_string(&record_path).expect("the record is always there");
                let r = Record::parse(&text).expect("the record always parses");
                assert_eq!(r.params().secret, want.as_slice());
                match fs::read_to_string(&state_path) {
                    Ok(text) => {
                        State::parse(&text).expect("the state always parses");
                    }
                    Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
                }
                n += 1;
            }
            n
        });
        Rewriter {
            stop,
            threads: vec![writer, checker],
        }
    }

    fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        let mut counts = self.threads.into_iter().map(|t| t.join().expect("thread"));
        (counts.next().unwrap(), counts.next().unwrap())
    }
}

fn same_code_logins(rec: &Record) -> Vec<(String, String, String)> {
    let password = format!("{PW}{}", code(rec, 0));
    (0..PROCESSES)
        .map(|i| (ALICE.to_string(), password.clone(), client(i)))
        .collect()
}

#[test]
fn fifty_processes_one_code_several_clients() {
    if worker() {
        return;
    }
    let (f, rec) = world("");
    wait_for_step_margin(10);
    let outcomes = logins_at_once(
        "fifty_processes_one_code_several_clients",
        &f.confdir,
        "mail",
        &same_code_logins(&rec),
    );
    let state = f.state(ALICE).expect("state written");
    assert_replay_rules(&outcomes, &state);
}

#[test]
fn fifty_processes_while_the_record_is_rewritten() {
    if worker() {
        return;
    }
    let (f, rec) = world("");
    wait_for_step_margin(10);
    let logins = same_code_logins(&rec);
    let rewriter = Rewriter::start(&f, &rec);
    let outcomes = logins_at_once(
        "fifty_processes_while_the_record_is_rewritten",
        &f.confdir,
        "mail",
        &logins,
    );
    let (writes, checks) = rewriter.finish();
    assert!(
        writes > 0 && checks > 0,
        "{writes} rewrites, {checks} checks"
    );
    let state = f.state(ALICE).expect("state written");
    assert_replay_rules(&outcomes, &state);
    Record::parse(&fs::read_to_string(f.record_path(ALICE)).unwrap()).unwrap();
}

/// Codes that are wrong at every step near now.
fn wrong_codes(rec: &Record, n: usize) -> Vec<String> {
    let near: BTreeSet<String> = (-3..=3).map(|s| code(rec, s)).collect();
    (0..)
        .map(|i: u64| format!("{:06}", (i * 7919 + 104_729) % 1_000_000))
        .filter(|c| !near.contains(c))
        .take(n)
        .collect()
}

#[test]
fn fifty_distinct_failures_at_once_are_all_counted_while_the_record_is_rewritten() {
    if worker() {
        return;
    }
    let (f, rec) = world("max_failures_user=200");
    wait_for_step_margin(10);
    let logins: Vec<(String, String, String)> = wrong_codes(&rec, PROCESSES)
        .into_iter()
        .enumerate()
        .map(|(i, c)| (ALICE.to_string(), format!("{PW}{c}"), format!("10.0.1.{i}")))
        .collect();
    let rewriter = Rewriter::start(&f, &rec);
    let outcomes = logins_at_once(
        "fifty_distinct_failures_at_once_are_all_counted_while_the_record_is_rewritten",
        &f.confdir,
        "mail",
        &logins,
    );
    rewriter.finish();
    let reasons: BTreeMap<&str, usize> = outcomes.iter().fold(BTreeMap::new(), |mut m, o| {
        *m.entry(o.reason.as_str()).or_default() += 1;
        m
    });
    assert_eq!(reasons, BTreeMap::from([("bad_code", PROCESSES)]));
    let state = f.state(ALICE).expect("state written");
    assert_eq!(
        state.failures.len(),
        PROCESSES,
        "no failure lost: {state:#?}"
    );
    let clients: BTreeSet<&str> = state.failures.iter().map(|f| f.client.as_str()).collect();
    assert_eq!(clients.len(), PROCESSES);
}

/// Every failure is one entry in the state file, and the module reads at most 64 KiB of it.
/// At the highest `max_failures_user` and with the longest PAM_RHOST values (253-byte host
/// names, which the module stores hashed), the state must still fit: an attacker who has the
/// password and guesses codes from many addresses never gets a fresh throttle because the
/// state grew too large to read, and the right code is refused once the limit is reached.
/// (Runs the module's own path: `FileStore::update_state` around `auth::decide_verify`.)
#[test]
fn the_throttle_count_is_never_lost_to_a_state_too_large_to_read() {
    let (f, rec) = world("");
    let store = f.store();
    let alice = login(ALICE);
    let client = |i: usize| format!("h{i:05}.{}.example.net", "dyn-pool".repeat(28));
    let limit = mailmfa::config::MAX_FAILURES_LIMIT as u32;
    let settings = Settings {
        max_failures: limit,
        max_failures_user: limit,
        ..f.settings.clone()
    };
    let guess = |code: &[u8], client: &str| {
        let now = fixture::now();
        let mut reason = None;
        let load = store.update_state(&alice, &mut |state| {
            let v = decide_verify(&rec, state, Attempt::totp(code, client, now), &settings);
            reason = Some(v.reason);
            v.state_changed
        });
        (
            load.expect("the state is always written and read back"),
            reason,
        )
    };
    for (i, c) in wrong_codes(&rec, limit as usize).iter().enumerate() {
        let (load, reason) = guess(c.as_bytes(), &client(i));
        assert!(
            !matches!(load, StateLoad::Rebuilt(_)),
            "the state was rebuilt after {i} failures: the throttle count was lost"
        );
        assert_eq!(reason, Some(Reason::BadCode), "guess {i}");
    }
    let size = fs::metadata(f.state_path(ALICE)).unwrap().len();
    assert!(
        size < mailmfa::store::secure::MAX_FILE_BYTES,
        "a full state ({size} bytes) must fit in what the module reads"
    );
    assert_eq!(f.state(ALICE).unwrap().failures.len(), limit as usize);
    // Now even the right code, from a fresh address, must not get in.
    let right = rec.params().code(rec.params().step_at(fixture::now()));
    let (load, reason) = guess(&right, "203.0.113.1");
    assert!(!matches!(load, StateLoad::Rebuilt(_)));
    assert_eq!(reason, Some(Reason::Throttled));
}
