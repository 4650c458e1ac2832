//! `mailmfa recovery-codes LOGIN`: one-time codes for an owner who lost the phone, made by
//! `mailmfa::account::recovery` (which says how they work) and printed here once.

use super::command::RecoveryCodes;
use super::exit::CliResult;
use super::output::print_json;
use super::{parse_login, Context};
use mailmfa::account::recovery;
use serde_json::json;

/// Runs `recovery-codes LOGIN`: a new set of codes replaces the old one.
pub fn run(ctx: &Context, p: &RecoveryCodes) -> CliResult {
    let login = parse_login(&p.login)?;
    ctx.check_dirs()?;
    let (codes, replaced) =
        recovery::replace_recovery_codes(&ctx.acct(), &login).map_err(ctx.failure(&login))?;
    if p.json {
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
