//! `mailmfa status` and `mailmfa list`: on/off/pending, last code, throttle — never a secret.

mod cli_support;
mod skip;

use cli_support::*;

#[test]
fn status_and_list_show_on_pending_and_off_without_secrets() {
    let env = Env::new();
    let (alice, _) = env.enabled("alice");
    env.run(&["enable", "bob", "--begin", "--label", "bob's phone"])
        .assert_code(0);
    let bob = env.pending("bob").unwrap().record;
    let secrets = [
        alice.secret_base32().to_string(),
        bob.secret_base32().to_string(),
    ];

    let a = env.run(&["status", "alice", "--json"]);
    a.assert_code(0);
    let a = a.json();
    assert_eq!(a["mfa"], "on");
    assert_eq!(a["algorithm"], "SHA1");
    assert_eq!(a["digits"], 6);
    assert_eq!(a["period"], 30);
    assert_eq!(a["last_client"], "mailmfa-enable");
    assert_eq!(a["throttled"], false);
    assert!(a["created"].as_u64().unwrap() + 60 > now());

    let b = env.run(&["status", "BOB", "--json"]).json();
    assert_eq!(b["login"], "bob");
    assert_eq!(b["mfa"], "pending");
    assert_eq!(b["pending"]["expired"], false);

    assert_eq!(env.run(&["status", "carol", "--json"]).json()["mfa"], "off");

    let list = env.run(&["list", "--json"]);
    list.assert_code(0);
    let list = list.json();
    let logins: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["login"].as_str().unwrap())
        .collect();
    assert_eq!(logins, ["alice", "bob"]);

    let mut outputs = String::new();
    for args in [
        &["status", "alice"][..],
        &["status", "alice", "--json"],
        &["status", "bob"],
        &["status", "bob", "--json"],
        &["list"],
        &["list", "--json"],
    ] {
        let run = env.run(args);
        run.assert_code(0);
        outputs.push_str(&run.stdout);
        outputs.push_str(&run.stderr);
    }
    assert!(
        outputs.contains("alice") && outputs.contains("pending"),
        "{outputs}"
    );
    for secret in &secrets {
        assert!(!outputs.contains(secret.as_str()), "a secret was shown");
        assert!(
            !outputs.contains(&secret[..8]),
            "part of a secret was shown"
        );
    }
}

#[test]
fn list_reports_a_damaged_record_and_fails() {
    let env = Env::new();
    env.enabled("alice");
    std::fs::write(env.record_path("mallory"), "not a record").unwrap();
    let run = env.run(&["list", "--json"]);
    run.assert_code(1);
    let list = run.json();
    assert_eq!(list[0]["mfa"], "on");
    assert_eq!(list[1]["login"], "mallory");
    assert_eq!(list[1]["mfa"], "error");
    env.run(&["status", "mallory"]).assert_code(1);
}

#[test]
fn status_text_names_the_last_client() {
    let env = Env::new();
    env.enabled("alice");
    let run = env.run(&["status", "alice"]);
    run.assert_code(0);
    run.assert_stdout("mfa:         on (since ");
    run.assert_stdout("from mailmfa-enable");
    run.assert_stdout("throttled:   no");
}
