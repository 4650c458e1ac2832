//! The checks made before timing anything: each module does what its cases assume (first use
//! accepted and state rewritten, reuse accepted or refused, wrong code refused, the password
//! step working), and the harness's codes agree with oathtool.

use super::cases::{Module, Pw};
use super::mailboxes::{code, fresh_step, hex, secret_of, unix_now, user_name, wrong_code, Rng};
use super::world::World;
use super::{PASSWORD, PERIOD};
use std::fs;
use std::path::Path;
use std::process::Command;

/// Checks, before timing anything, that each module does what its cases assume, and says so.
pub(super) fn sanity(world: &World) -> Result<Vec<String>, String> {
    let pool = world.pool(world.main_scale);
    let mut notes = Vec::new();
    let step = fresh_step();
    let i = 7 % pool.n;
    let right = format!("{PASSWORD}{}", code(i, step));
    let user = user_name(i);
    // oathtool agrees with the codes the harness computes.
    if let Ok(out) = Command::new("oathtool")
        .args(["--totp", "-d", "6", &hex(&secret_of(i))])
        .output()
    {
        let theirs = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let ours = code(i, unix_now() / PERIOD);
        if theirs != ours && theirs != code(i, step) {
            return Err(format!(
                "oathtool says {theirs}, the harness computed {ours}"
            ));
        }
        notes.push("oathtool agrees with the harness's codes".to_string());
    }
    let s = |m| World::service(m, Pw::Permit, pool.n);
    let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut check = |what: &str, ok: bool| -> Result<(), String> {
        if ok {
            notes.push(format!("ok: {what}"));
            Ok(())
        } else {
            Err(format!("sanity check failed: {what}"))
        }
    };
    check(
        "floor logs in with the password alone",
        world.login(&s(Module::Floor), &user, PASSWORD),
    )?;
    pool.forget_mailmfa(i);
    check(
        "mailmfa: first login ever accepted",
        world.login(&s(Module::Mailmfa), &user, &right),
    )?;
    check(
        "mailmfa: first login ever wrote the state",
        pool.read_state(i)
            .is_some_and(|st| st.last_step == Some(step)),
    )?;
    pool.returning_mailmfa(i, step)?;
    check(
        "mailmfa: the state the harness writes for a returning mailbox parses",
        pool.read_state(i)
            .is_some_and(|st| st.last_step == Some(step - 2)),
    )?;
    check(
        "mailmfa: first use of a new step by a returning mailbox accepted",
        world.login(&s(Module::Mailmfa), &user, &right),
    )?;
    check(
        "mailmfa: first use of a new step rewrote the state",
        pool.read_state(i)
            .is_some_and(|st| st.last_step == Some(step)),
    )?;
    check(
        "mailmfa: reuse from the same client accepted",
        world.login(&s(Module::Mailmfa), &user, &right),
    )?;
    pool.reset_oath()?;
    let before = fs::read_to_string(pool.oath()).unwrap_or_default();
    check(
        "pam_oath: first use accepted",
        world.login(&s(Module::Oath), &user, &right),
    )?;
    check(
        "pam_oath: first use rewrote the usersfile",
        fs::read_to_string(pool.oath()).unwrap_or_default() != before,
    )?;
    check(
        "pam_oath: reuse of the same code refused (it cannot allow reuse)",
        !world.login(&s(Module::Oath), &user, &right),
    )?;
    pool.reset_oath()?;
    pool.reset_ga(i, true)?;
    let ga_file = pool.ga().join(&user);
    let before = fs::read_to_string(&ga_file).unwrap_or_default();
    check(
        "google-auth (DISALLOW_REUSE): first use accepted",
        world.login(&s(Module::Ga), &user, &right),
    )?;
    check(
        "google-auth (DISALLOW_REUSE): first use rewrote the secret file",
        fs::read_to_string(&ga_file).unwrap_or_default() != before,
    )?;
    check(
        "google-auth (DISALLOW_REUSE): reuse refused",
        !world.login(&s(Module::Ga), &user, &right),
    )?;
    pool.reset_ga(i, false)?;
    let before = (
        fs::read_to_string(&ga_file).unwrap_or_default(),
        mtime(&ga_file),
    );
    check(
        "google-auth (reuse allowed): accepted",
        world.login(&s(Module::Ga), &user, &right),
    )?;
    check(
        "google-auth (reuse allowed): accepted again",
        world.login(&s(Module::Ga), &user, &right),
    )?;
    check(
        "google-auth (reuse allowed): secret file not rewritten",
        (
            fs::read_to_string(&ga_file).unwrap_or_default(),
            mtime(&ga_file),
        ) == before,
    )?;
    let mut rng = Rng::new();
    let wrong = format!("{PASSWORD}{}", wrong_code(i, step, &mut rng));
    for m in [Module::Mailmfa, Module::Oath, Module::Ga, Module::GaSkew] {
        check(
            &format!("{}: wrong code refused", m.key()),
            !world.login(&s(m), &user, &wrong),
        )?;
    }
    let pw = |m| World::service(m, Pw::Pwdfile, pool.n);
    pool.forget_mailmfa(i);
    check(
        "pwdfile: floor accepts the password",
        world.login(&pw(Module::Floor), &user, PASSWORD),
    )?;
    check(
        "pwdfile: floor refuses a wrong password",
        !world.login(&pw(Module::Floor), &user, "nope"),
    )?;
    check(
        "pwdfile: mailmfa accepts password+code",
        world.login(&pw(Module::Mailmfa), &user, &right),
    )?;
    check(
        "pwdfile: mailmfa refuses a wrong password with the right code",
        !world.login(
            &pw(Module::Mailmfa),
            &user,
            &format!("nope{}", code(i, step)),
        ),
    )?;
    pool.reset_ga(i, false)?;
    check(
        "pwdfile: google-auth accepts password+code",
        world.login(&pw(Module::Ga), &user, &right),
    )?;
    check(
        "pwdfile: pam_oath accepts password+code",
        world.login(&pw(Module::Oath), &user, &right),
    )?;
    for (what, ok) in super::notify::sanity(world, i, step, &right, &wrong)? {
        check(&what, ok)?;
    }
    for (what, ok) in super::sql::sanity(world, i, step, &right, &wrong)? {
        check(&what, ok)?;
    }
    pool.reset_oath()?;
    pool.forget_mailmfa(i);
    Ok(notes)
}
