// Two REAL Dovecot servers sharing their login state on a REAL redis-server (issue 14): each
// Dovecot has its own /etc/pam.d (the `dovecot-virtual` stack with the built module), its own
// record directory (the record copied, as an admin's configuration management would) and its
// own state directory; `state = "redis"` points both at one redis-server on 127.0.0.1. A code
// accepted over IMAP on server A is `replayed` on server B from another address; Redis down
// denies MFA logins with `state_unavailable` on both while a mailbox without MFA still logs
// in; when Redis is back, logins work again without touching either server.
// Owns: tests/integration_redis.rs. Support: tests/integration/, tests/servers/ (redis.rs).

mod fixture;
mod integration;
mod servers;
mod skip;

use integration::{expect_line, ip, with_code, World, DOVECOT_PREREQS, PW};
use servers::{imap_login, require_prereqs, Dovecot, Redis, RedisOpts};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

/// One mail server of the pair: its world (config on `redis`) and its Dovecot.
fn server(redis: &Redis) -> (World, Dovecot) {
    let config = format!("state = \"redis\"\nredis_url = \"{}\"", redis.url(0));
    let w = World::new(&config, "dovecot-virtual", &["dovecot"], "");
    let d = w.dovecot("dovecot");
    (w, d)
}

fn imap(d: &Dovecot, from: u8, user: &str, password: &str) -> bool {
    imap_login(d.imap_addr(), ip(from), user, password).is_ok()
}

#[test]
fn two_dovecots_share_one_state_on_redis_and_deny_while_it_is_down() {
    let mut prereqs = DOVECOT_PREREQS.to_vec();
    prereqs.extend(["redis-server", "redis-cli"]);
    if !require_prereqs(&prereqs) {
        return;
    }
    let mut redis = Redis::start(RedisOpts::default());
    let (a, da) = server(&redis);
    let (b, db) = server(&redis);
    let record = a.mfa_user(ALICE);
    b.f.add_password(ALICE, PW);
    b.save(ALICE, &record);
    for w in [&a, &b] {
        w.plain_user(BOB, PW);
    }
    integration::step_margin(8);
    let good = with_code(&record, 0);

    let mark = da.syslog().mark();
    assert!(
        imap(&da, 20, ALICE, &good),
        "server A refused the right code"
    );
    expect_line(
        da.syslog(),
        mark,
        ALICE,
        &ip(20).to_string(),
        "verify",
        "accept",
        "ok",
    );

    let mark = db.syslog().mark();
    assert!(
        !imap(&db, 21, ALICE, &good),
        "server B accepted a code A had used"
    );
    expect_line(
        db.syslog(),
        mark,
        ALICE,
        &ip(21).to_string(),
        "verify",
        "deny",
        "replayed",
    );

    // The same client's next connection lands on B: the same-client rule holds across servers.
    let mark = db.syslog().mark();
    assert!(
        imap(&db, 20, ALICE, &good),
        "the same client was refused on B"
    );
    expect_line(
        db.syslog(),
        mark,
        ALICE,
        &ip(20).to_string(),
        "verify",
        "accept",
        "reused",
    );

    // Redis down: MFA logins are denied on both servers, the plain mailbox is not touched.
    redis.stop();
    let next = with_code(&record, 1);
    for (d, from) in [(&da, 22), (&db, 23)] {
        let mark = d.syslog().mark();
        assert!(
            !imap(d, from, ALICE, &next),
            "a login without the state got in"
        );
        expect_line(
            d.syslog(),
            mark,
            ALICE,
            &ip(from).to_string(),
            "verify",
            "deny",
            "state_unavailable",
        );
        assert!(imap(d, from, BOB, PW), "a mailbox without MFA was refused");
    }

    // Back: nothing to do on either server.
    redis.restart();
    let mark = db.syslog().mark();
    assert!(
        imap(&db, 24, ALICE, &next),
        "B refused a new code after Redis came back"
    );
    expect_line(
        db.syslog(),
        mark,
        ALICE,
        &ip(24).to_string(),
        "verify",
        "accept",
        "ok",
    );
    let mark = da.syslog().mark();
    assert!(
        !imap(&da, 25, ALICE, &next),
        "A accepted the code B had just used"
    );
    expect_line(
        da.syslog(),
        mark,
        ALICE,
        &ip(25).to_string(),
        "verify",
        "deny",
        "replayed",
    );
}
