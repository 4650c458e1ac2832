//! Crashes (issue 7, item 4, first half): logins killed with SIGKILL at random moments, many
//! of them in the middle of the state update (lock, read, decide, write the temp file,
//! rename). A worker process of this test binary logs in to one mailbox through the real
//! libpam in a tight loop until it is killed; at least 200 workers are killed after random
//! delays, and more until the case the test is about has been seen `CUT_WRITES` times: a kill
//! between the temp file's write and its rename (the temp file is left behind). The worker's
//! logins keep writing the state (half of them an app password from alternating addresses,
//! each noted in the state), so kills keep landing amid writes; the test also reports how many
//! kills came after the worker had changed the state. After every kill: the record is byte-identical, the
//! state parses, and the state directory holds nothing but the user's state, lock and at most
//! one `.<login>.state.tmp`. After all of them the next login decides normally and the state
//! is read, not rebuilt.

mod fixture;
mod hostile;
mod skip;

use fixture::{login, Fixture};
use hostile::{Killer, Rng};
use mailmfa::pam::client::{self, Request};
use mailmfa::record::Record;
use mailmfa::state::State;
use mailmfa::store::{StateLoad, Store};
use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

const ALICE: &str = "alice@example.com";
const PW: &str = "T9D3K!px";
/// Kills at least.
const KILLS: usize = 200;
/// Kills that left the temp file behind (cut between write and rename) needed at least.
const CUT_WRITES: usize = 3;
/// A guard against a hang only: about one kill in 100 to 250 cuts a write here.
const MAX_KILLS: usize = 5000;
/// Alice's app password (the worker's state-writing login).
const APP: &str = "qwxzv-kjhgf-dsapo-iuytr";
const TEST: &str = "two_hundred_logins_killed_at_random_moments";
const W_RECORD: &str = "MAILMFA_W_RECORD";

/// The worker: logins in a loop, forever: half of them Alice's app password from one of two
/// addresses in turn (each use is noted in the state: a state write every time), the rest
/// mostly wrong codes (a new failure, until repeats and the throttle stop counting them) from
/// 40 addresses and some right codes (ok / reused / replayed) from 8 others.
fn login_loop() {
    let confdir = PathBuf::from(hostile::var(hostile::W_CONFDIR));
    let record = Record::parse(&fs::read_to_string(hostile::var(W_RECORD)).unwrap()).unwrap();
    let mut rng = Rng::new(Rng::seed());
    println!("{}READY", hostile::RESULT_PREFIX);
    for n in 0u64.. {
        if n % 2 == 0 {
            client::login(&Request {
                service: "mail",
                user: ALICE.as_bytes(),
                password: APP.as_bytes(),
                confdir: Some(&confdir),
                rhost: Some(&format!("10.0.2.{}", (n / 2) % 2)),
            })
            .expect("login starts");
            continue;
        }
        let step = record.params().step_at(fixture::now());
        let right = String::from_utf8(record.params().code(step).to_vec()).unwrap();
        let (code, rhost) = if rng.below(4) == 0 {
            (right, format!("10.0.1.{}", rng.below(8)))
        } else {
            let wrong = format!("{:06}", 100_000 + rng.below(10) * 77_777);
            if wrong == right {
                continue;
            }
            (wrong, format!("10.0.0.{}", rng.below(40)))
        };
        client::login(&Request {
            service: "mail",
            user: ALICE.as_bytes(),
            password: format!("{PW}{code}").as_bytes(),
            confdir: Some(&confdir),
            rhost: Some(&rhost),
        })
        .expect("login starts");
    }
}

/// What the state directory may hold.
fn check_state_dir(f: &Fixture) -> bool {
    let names: BTreeSet<String> = fs::read_dir(&f.settings.state_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let allowed: BTreeSet<String> = [
        "alice@example.com.state",
        "alice@example.com.lock",
        ".alice@example.com.state.tmp",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert!(names.is_subset(&allowed), "unexpected files: {names:?}");
    if let Ok(text) = fs::read_to_string(f.state_path(ALICE)) {
        State::parse(&text).unwrap_or_else(|e| panic!("the state does not parse: {e}\n{text}"));
    }
    names.contains(".alice@example.com.state.tmp")
}

#[test]
fn two_hundred_logins_killed_at_random_moments() {
    if hostile::role().as_deref() == Some(hostile::WORKER) {
        login_loop();
        return;
    }
    let f = Fixture::with_config("max_failures = 200\nmax_failures_user = 200\n");
    f.install_example("dovecot-virtual", "mail", "");
    f.add_password(ALICE, PW);
    let mut record = f.enable(ALICE);
    record
        .app_passwords
        .push(fixture::app_password("phone", APP));
    f.store().write_record(&login(ALICE), &record).unwrap();
    let record_path = f.record_path(ALICE);
    let record_bytes = fs::read(&record_path).unwrap();
    let seed = Rng::seed();
    println!("seed {seed}");
    let mut rng = Rng::new(seed);
    let mut temp_left = 0;
    let mut state_changed = 0;
    let mut kill = 0;
    while kill < KILLS || temp_left < CUT_WRITES {
        assert!(
            kill < MAX_KILLS,
            "{kill} kills, and only {temp_left} of them cut a state write (left the temp file)"
        );
        let state_before = fs::read(f.state_path(ALICE)).ok();
        let mut cmd = hostile::self_command(TEST, hostile::WORKER);
        cmd.env(hostile::W_CONFDIR, &f.confdir)
            .env(W_RECORD, &record_path)
            .stdout(Stdio::piped());
        let mut worker = Killer::spawn(&mut cmd);
        hostile::read_until(worker.child(), &format!("{}READY", hostile::RESULT_PREFIX));
        std::thread::sleep(Duration::from_micros(rng.below(25_000)));
        let status = worker.kill();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "kill {kill}: the worker must have been running until killed ({status})"
        );
        assert_eq!(fs::read(&record_path).unwrap(), record_bytes, "kill {kill}");
        if check_state_dir(&f) {
            temp_left += 1;
        }
        if fs::read(f.state_path(ALICE)).ok() != state_before {
            state_changed += 1;
        }
        kill += 1;
    }
    println!(
        "{kill} kills; {temp_left} left a temp file behind (killed between write and rename); \
         after {state_changed} the state had changed (the worker was writing it)"
    );
    assert!(temp_left >= CUT_WRITES);
    // The next login reads the state (not rebuilt) and decides as usual.
    let state_before = f.state(ALICE).expect("the loop wrote state");
    let mut load = None;
    f.store()
        .update_state(&login(ALICE), &mut |_| false)
        .map(|l| load = Some(l))
        .unwrap();
    assert_eq!(load, Some(StateLoad::Read));
    let r = f.login("mail", ALICE, &format!("{PW}999999x"), Some("10.9.9.9"));
    assert_eq!(r.reason.as_deref(), Some("no_code"));
    let r = f.login(
        "mail",
        ALICE,
        &format!("{PW}{}", fixture::code(&f_record(&f), 0)),
        Some("10.9.9.9"),
    );
    assert!(
        // The loop's wrong codes may have reached max_failures_user (200): then the right
        // code is throttled, also a normal decision on an intact state.
        matches!(r.reason.as_deref(), Some("ok" | "replayed" | "throttled")),
        "a right code is decided normally: {r:?}"
    );
    let after = f.state(ALICE).unwrap();
    assert!(after.last_step >= state_before.last_step);
    check_state_dir(&f);
    assert_eq!(fs::read(&record_path).unwrap(), record_bytes);
}

fn f_record(f: &Fixture) -> Record {
    Record::parse(&fs::read_to_string(f.record_path(ALICE)).unwrap()).unwrap()
}
