//! The frame of every page: head, header with the navigation and the sign-out button (when
//! signed in), `<main>` with the title and the notices.

use maud::{html, Markup, DOCTYPE};

use super::{csrf_field, Notice};

/// Which navigation entry is the current page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// None (sign-in, errors).
    None,
    /// The MFA page.
    Mfa,
    /// App passwords.
    AppPasswords,
    /// Recovery codes.
    Recovery,
}

/// The signed-in mailbox and its CSRF token, for the header.
pub struct SignedIn<'a> {
    /// The mailbox.
    pub login: &'a str,
    /// The session's CSRF token (for the sign-out form).
    pub csrf: &'a str,
}

/// A whole page.
pub fn page(
    title: &str,
    signed_in: Option<&SignedIn>,
    nav: Nav,
    notice: &Notice,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · Mail security" }
                link rel="stylesheet" href="/static/panel.css";
            }
            body {
                header.top {
                    span.brand { "Mail security" }
                    @if let Some(s) = signed_in {
                        nav aria-label="Main" {
                            a #nav-mfa href="/mfa" aria-current=[(nav == Nav::Mfa).then_some("page")] { "MFA" }
                            a #nav-app-passwords href="/app-passwords" aria-current=[(nav == Nav::AppPasswords).then_some("page")] { "App passwords" }
                            a #nav-recovery href="/recovery-codes" aria-current=[(nav == Nav::Recovery).then_some("page")] { "Recovery codes" }
                        }
                        div.account {
                            span.who { (s.login) }
                            form method="post" action="/sign-out" {
                                (csrf_field(s.csrf))
                                button #sign-out type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    @if let Some(m) = &notice.message {
                        p #message .notice.ok role="status" { (m) }
                    }
                    @if let Some(e) = &notice.error {
                        p #error .notice.bad role="alert" { (e) }
                    }
                    (body)
                }
            }
        }
    }
}
