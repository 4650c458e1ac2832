//! `mailmfa check --service SERVICE LOGIN`: runs the whole PAM stack of a service the way
//! Dovecot does (authenticate, then account management; PAM_RHOST from `--rhost`), and prints
//! the result and mailmfa's reason. The admin's way to test a pam.d file.
//!
//! The password (password + code) is read with echo off from the terminal, or as one line
//! from stdin when stdin is not a terminal. It is never printed.

use super::command::Check;
use super::exit::{CliResult, Exit, Failure};
use super::output::print_json;
use super::prompt;
use mailmfa::pam::client::{self, Request};
use serde_json::json;
use std::path::Path;

/// Runs `check`. `--config` is accepted like everywhere, but the stack reads whatever its
/// pam.d lines name.
pub fn run(p: &Check) -> CliResult {
    let user = &p.login;
    let service = p.service.as_str();
    if service.is_empty() || service.contains('/') {
        return Err(Failure::usage(
            "check: --service is a file name in the pam.d directory",
        ));
    }
    let confdir = p.confdir.as_deref().map(Path::new);
    if let Some(dir) = confdir {
        if !dir.join(service).is_file() {
            return Err(Failure::new(
                Exit::Error,
                format!("{}: no such service file", dir.join(service).display()),
            ));
        }
    }
    let password = prompt::hidden(&format!("Password followed by the code for {user}: "))?
        .ok_or_else(|| Failure::usage("check: no password given on stdin"))?;
    let request = Request {
        service,
        user: user.as_bytes(),
        password: password.as_bytes(),
        confdir,
        rhost: p.rhost.as_deref(),
    };
    let response = client::login(&request).map_err(|e| Failure::new(Exit::Error, e.to_string()))?;
    let code = response.account.unwrap_or(response.authenticate);
    let result = if response.success() {
        "success"
    } else {
        "failure"
    };
    let text = client::strerror(code);
    let reason = response.reason.clone().unwrap_or_else(|| "-".to_string());
    if p.json {
        print_json(&json!({
            "result": result,
            "pam": text,
            "authenticate": client::strerror(response.authenticate),
            "account": response.account.map(client::strerror),
            "reason": response.reason,
            "messages": response.messages,
        }));
    } else {
        println!("result: {result} ({text})");
        println!("reason: {reason}");
        for message in &response.messages {
            println!("message: {message}");
        }
    }
    if response.success() {
        Ok(())
    } else {
        Err(Failure::new(
            Exit::LoginRefused,
            format!(
                "the {service} stack refused {} (reason: {reason})",
                mailmfa::login::printable(user.as_bytes())
            ),
        ))
    }
}
