//! `mailmfa recovery-codes LOGIN`: one-time codes for an owner who lost the phone, and the
//! check of one such code for `mailmfa disable`.
//!
//! Ten codes `abcd-efgh-ijkl` (56 bits each) are shown once; the record keeps only their
//! salted hashes (`mailmfa::credential`), and a new set replaces the old one. A code is typed
//! after the password in place of the six-digit code, works once, and is checked like a login
//! code: under the state lock, under the throttle, marked used in the state.

use super::args::{Parsed, Spec};
use super::exit::{CliResult, Exit, Failure};
use super::output::print_json;
use super::{audit_ok, change_record, parse_login, Context};
use mailmfa::credential::{self, RECOVERY_CODE_COUNT, RECOVERY_LETTERS};
use serde_json::json;
use zeroize::Zeroizing;

/// What `recovery-codes` accepts.
pub const SPEC: Spec = Spec {
    command: "recovery-codes",
    flags: &["json"],
    values: &[],
    positionals: &["LOGIN"],
};

/// Runs `recovery-codes LOGIN`: a new set of codes replaces the old one.
pub fn run(ctx: &Context, p: &Parsed) -> CliResult {
    let login = parse_login(&p.positionals[0])?;
    ctx.check_dirs()?;
    let random = |e: getrandom::Error| {
        Failure::new(Exit::Error, format!("the OS random source failed: {e}"))
    };
    let mut codes: Vec<Zeroizing<String>> = Vec::with_capacity(RECOVERY_CODE_COUNT);
    let mut hashes = Vec::with_capacity(RECOVERY_CODE_COUNT);
    while codes.len() < RECOVERY_CODE_COUNT {
        let code = credential::random_letters(RECOVERY_LETTERS, 4).map_err(random)?;
        if codes.contains(&code) {
            continue;
        }
        let salt = credential::random_salt().map_err(random)?;
        hashes.push(credential::hash(
            &credential::recovery_letters(code.as_bytes()),
            &salt,
        ));
        codes.push(code);
    }
    let replaced = change_record(ctx, &login, &mut |record, state| {
        let old = std::mem::replace(&mut record.recovery_codes, hashes.clone());
        // The used marks of the old set mean nothing any more.
        state.used_recovery.clear();
        Ok(old.len())
    })?;
    audit_ok("recovery-codes", &login, None);
    if p.flag("json") {
        let codes: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
        print_json(&json!({
            "login": login.as_str(),
            "codes": codes,
            "replaced": replaced,
        }));
        return Ok(());
    }
    println!(
        "Recovery codes for {login} (shown once; each works once{}):\n",
        if replaced > 0 {
            "; the earlier codes no longer work"
        } else {
            ""
        }
    );
    for code in &codes {
        println!("    {}", code.as_str());
    }
    println!(
        "\nKeep them apart from the phone. Log in with the password followed by one code in \
         place of the six-digit code:\n  password T9D3K!px and code abcd-efgh-ijkl -> \
         T9D3K!pxabcd-efgh-ijkl\nOne also turns MFA off: mailmfa disable {login} --code CODE"
    );
    Ok(())
}
