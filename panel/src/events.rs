//! The panel's own log lines: sign-ins (ok or refused, with a reason category) and session
//! ends, one `key=value` line each, to syslog (authpriv, ident `mailmfa-panel`) and to
//! stderr (the service manager's journal). Never a password, code, key or session id: the
//! values are a fixed set of words, the client address and the login (cleaned).
//! Changes to a mailbox are audited by the account layer itself, not here.

use std::net::IpAddr;

use mailmfa::log::clean;

/// The syslog ident of the panel's lines.
pub const IDENT: &str = "mailmfa-panel";

/// Writes one event line: `event=<event> result=<result> user=<login> client=<ip> face=<face>
/// [reason=<reason>]`.
pub fn event(
    event: &str,
    result: &str,
    user: &str,
    client: Option<IpAddr>,
    face: &str,
    reason: Option<&str>,
) {
    let mut line = format!(
        "event={event} result={result} user={} face={face}",
        clean(user)
    );
    if let Some(client) = client {
        line.push_str(&format!(" client={client}"));
    }
    if let Some(reason) = reason {
        line.push_str(&format!(" reason={reason}"));
    }
    let priority = if result == "ok" {
        libc::LOG_INFO
    } else {
        libc::LOG_NOTICE
    };
    emit(priority, &line);
}

/// Writes the line of a sign-out by `user` from `client` through `face`.
pub fn signed_out(user: &str, client: IpAddr, face: &str) {
    event("sign_out", "ok", user, Some(client), face, None);
}

/// Writes a line about the panel itself (start, stop, a problem).
pub fn service(line: &str) {
    emit(libc::LOG_INFO, line);
}

fn emit(priority: libc::c_int, line: &str) {
    mailmfa::pam::sys::syslog_authpriv(IDENT, priority, line);
    eprintln!("{IDENT}: {line}");
}
