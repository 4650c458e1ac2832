//! The sign-in page: mailbox address, and password followed by the current code.

use maud::{html, Markup};

use super::layout::{page, Nav};
use super::{csrf_field, Notice};

/// The sign-in form; `login` refills the address after a refusal (never the password).
pub fn sign_in(csrf: &str, login: &str, notice: &Notice) -> Markup {
    page(
        "Sign in",
        None,
        Nav::None,
        notice,
        html! {
            form.card method="post" action="/sign-in" {
                (csrf_field(csrf))
                div.field {
                    label for="login" { "Mailbox address" }
                    input #login type="email" name="login" value=(login) autocomplete="username"
                        required maxlength="240" autocapitalize="none" spellcheck="false";
                }
                div.field {
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password"
                        required maxlength="1024" aria-describedby="password-hint";
                    p.hint #password-hint {
                        "If MFA is on for your mailbox, type your password followed by the current "
                        "code from your authenticator app, without a space (password "
                        code { "T9D3K!px" } " and code " code { "189145" } " → "
                        code { "T9D3K!px189145" } ")."
                    }
                }
                button #sign-in type="submit" { "Sign in" }
            }
        },
    )
}

/// A page with only a notice (errors outside a form, e.g. an expired form).
pub fn notice_page(title: &str, notice: &Notice, link: (&str, &str)) -> Markup {
    page(
        title,
        None,
        Nav::None,
        notice,
        html! { p { a href=(link.0) { (link.1) } } },
    )
}
