//! Signing a mailbox owner in, for the pages and the API alike.
//!
//! 1. The client address must be under the panel's failed sign-in limit.
//! 2. Dovecot checks login and password(+code) with the client address as `rip`: any passdb,
//!    and pam_mailmfa.so checks, consumes and throttles the code as for IMAP.
//! 3. For a mailbox with MFA, the typed string must also end in a current code of the record
//!    (whose step is then used in the panel's own state, so it cannot be typed again on a
//!    page), or in one of its recovery codes (which the module has just used up: the owner
//!    without the phone): an app password (which Dovecot accepts for IMAP) must never sign in
//!    to the panel.
//!
//! Every refusal is the same to the client: it never says which part was wrong, nor whether
//! the mailbox exists or has MFA. The log line says which category (never the password).

use std::net::IpAddr;

use mailmfa::login::Login;
use zeroize::Zeroizing;

use crate::accounts::{blocking, Face, Who};
use crate::app::{now, App};
use crate::dovecot::{self, Answer};
use crate::events;

/// Longest password(+code) accepted, in bytes.
pub const MAX_PASSWORD: usize = 1024;

/// How a sign-in ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Signed in as this mailbox.
    Ok(Login),
    /// Refused (wrong login, password or code, or an app password).
    Refused,
    /// Too many failed sign-ins from this address until this time.
    Limited(u64),
    /// The mail server's check (or the record store) could not answer.
    Unavailable,
}

/// One attempt from `client`: its log lines and its failures counted against the address.
struct Attempt<'a> {
    app: &'a App,
    client: IpAddr,
    face: &'static str,
    login: &'a str,
}

impl<'a> Attempt<'a> {
    /// An attempt to sign `login` in from `client`, logged as `face`.
    fn new(app: &'a App, client: IpAddr, face: &'static str, login: &'a str) -> Self {
        Attempt {
            app,
            client,
            face,
            login,
        }
    }

    fn log(&self, result: &str, reason: Option<&str>) {
        events::event(
            "sign_in",
            result,
            self.login,
            Some(self.client),
            self.face,
            reason,
        )
    }

    fn refuse(&self, reason: &str) -> Outcome {
        self.app.limit.fail(self.client, now());
        self.log("refused", Some(reason));
        Outcome::Refused
    }

    /// Steps 1 and 2: the address's limit, then Dovecot as `service` (`no_penalty`: Dovecot's
    /// auth penalty is left to the login that follows). Ok: Dovecot's name for the mailbox.
    async fn password(
        &self,
        password: &str,
        service: &str,
        no_penalty: bool,
    ) -> Result<Login, Outcome> {
        if let Err(until) = self.app.limit.check(self.client, now()) {
            self.log("refused", Some("limit"));
            return Err(Outcome::Limited(until));
        }
        let Ok(typed) = Login::parse(self.login.as_bytes()) else {
            return Err(self.refuse("bad_login"));
        };
        if password.is_empty() || password.len() > MAX_PASSWORD {
            return Err(self.refuse("bad_password"));
        }
        let request = dovecot::Request {
            socket: &self.app.config.auth_socket,
            service,
            client: self.client,
            login: self.login,
            password,
            no_penalty,
        };
        let user = match dovecot::authenticate(&request).await {
            Ok(Answer::Ok { user }) => user,
            Ok(Answer::Fail) => return Err(self.refuse("auth")),
            Ok(Answer::TempFail) => {
                self.log("refused", Some("auth_temp"));
                return Err(Outcome::Unavailable);
            }
            Err(e) => {
                self.log("refused", Some("auth_unavailable"));
                events::service(&format!(
                    "event=auth_unavailable detail=\"{}\"",
                    mailmfa::log::clean(&e.0)
                ));
                return Err(Outcome::Unavailable);
            }
        };
        // Dovecot's name for the mailbox (after its username_format) is the one the module saw.
        Ok(user
            .and_then(|u| Login::parse(u.as_bytes()).ok())
            .unwrap_or(typed))
    }
}

/// The webmail plugin's first step: is `password` (without a code) the password of `login`?
/// Dovecot checks it as `[panel] precheck_service`, a PAM stack holding only the password
/// module, with the browser's address as `rip` and without Dovecot's auth penalty (the
/// webmail's own login follows at once and pays it). The same refusal for a wrong password
/// and an unknown mailbox; failures count against the browser's address like sign-ins.
pub async fn precheck(
    app: &App,
    client: IpAddr,
    login: &str,
    password: Zeroizing<String>,
) -> Outcome {
    let attempt = Attempt::new(app, client, "webmail", login);
    let service = app.config.precheck_service.as_str();
    match attempt.password(&password, service, true).await {
        Ok(login) => {
            attempt.log("password_ok", None);
            Outcome::Ok(login)
        }
        Err(outcome) => outcome,
    }
}

/// Signs `login` in with `password` from `client`.
pub async fn sign_in(
    app: &App,
    client: IpAddr,
    face: Face,
    login: &str,
    password: Zeroizing<String>,
) -> Outcome {
    let logged_as = match face {
        Face::Panel => "panel",
        Face::Api | Face::Admin | Face::Webmail => "api",
    };
    let attempt = Attempt::new(app, client, logged_as, login);
    let service = app.config.auth_service.as_str();
    let login = match attempt.password(&password, service, false).await {
        Ok(login) => login,
        Err(outcome) => return outcome,
    };
    let who = Who {
        login: login.clone(),
        face,
        client,
    };
    let accounts = app.accounts.clone();
    let tail = code_tail(&password, 8);
    let recovery_tail = last_chars(&password, mailmfa::credential::RECOVERY_CODE_LEN);
    drop(password);
    let checked = blocking(move || {
        let status = accounts.status(&who)?;
        if !status.on {
            return Ok(true);
        }
        // A recovery code the module accepted (and used up) lets an owner without the phone
        // in, to turn MFA off or make new codes; an app password never matches one.
        if accounts.is_sign_in_recovery_code(&who, &recovery_tail)? {
            return Ok(true);
        }
        let digits = status.digits as usize;
        match tail.get(tail.len().saturating_sub(digits)..) {
            Some(code) if tail.len() >= digits => {
                accounts.check_sign_in_code(&who, code).map(|_| true)
            }
            _ => Ok(false),
        }
    })
    .await;
    match checked {
        Ok(true) => {
            attempt.log("ok", None);
            Outcome::Ok(login)
        }
        Ok(false) => attempt.refuse("code"),
        Err(e)
            if crate::accounts::http_status(&e) == 503
                || crate::accounts::http_status(&e) == 500 =>
        {
            attempt.log("refused", Some("storage"));
            Outcome::Unavailable
        }
        Err(e) => attempt.refuse(match e.code() {
            "throttled" => "code_throttled",
            "code_used" => "code_used",
            _ => "code",
        }),
    }
}

/// The last `n` characters of `password` (all of it when shorter).
fn last_chars(password: &str, n: usize) -> Zeroizing<String> {
    let start = password
        .char_indices()
        .rev()
        .nth(n.saturating_sub(1))
        .map_or(0, |(i, _)| i);
    Zeroizing::new(password[start..].to_string())
}

/// The trailing ASCII digits of `password`, at most `max` of them.
fn code_tail(password: &str, max: usize) -> Zeroizing<String> {
    let digits = password
        .bytes()
        .rev()
        .take_while(u8::is_ascii_digit)
        .take(max)
        .count();
    Zeroizing::new(password[password.len() - digits..].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_the_trailing_digits() {
        assert_eq!(code_tail("pw189145", 8).as_str(), "189145");
        assert_eq!(code_tail("12345678901", 8).as_str(), "45678901");
        assert_eq!(code_tail("password", 8).as_str(), "");
        assert_eq!(code_tail("é1", 8).as_str(), "1");
        assert_eq!(
            last_chars("pwabcd-efgh-ijkl", 14).as_str(),
            "abcd-efgh-ijkl"
        );
        assert_eq!(last_chars("é1", 14).as_str(), "é1");
    }
}
