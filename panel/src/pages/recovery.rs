//! The recovery codes page: how many are left, make a new set (shown once).

use maud::{html, Markup};

use super::layout::{page, Nav, SignedIn};
use super::{challenge_field, csrf_field, Notice};

/// The page; `codes` is the new set, shown once.
pub fn recovery(
    user: &SignedIn,
    on: bool,
    left: usize,
    total: usize,
    codes: Option<&[String]>,
    notice: &Notice,
) -> Markup {
    page(
        "Recovery codes",
        Some(user),
        Nav::Recovery,
        notice,
        html! {
            @if let Some(codes) = codes {
                section.card.secret {
                    p { "Your new recovery codes. Print them or keep them in a password manager: they are shown only this once, "
                        "each works once, and the old ones no longer work." }
                    ol #recovery-codes { @for c in codes { li { code { (c) } } } }
                }
            }
            section.card {
                p { "A recovery code stands in for a code from your phone when the phone is lost: type it "
                    "instead of the code to sign in, or to turn MFA off." }
                @if on {
                    p { "Recovery codes left: " strong #recovery-left { (left) } " of " (total) "." }
                    form method="post" action="/recovery-codes" {
                        (csrf_field(user.csrf))
                        (challenge_field("A current code from your authenticator app."))
                        button #generate type="submit" { "Make new recovery codes" }
                    }
                } @else {
                    p { "Recovery codes left: " strong #recovery-left { "0" } ". They come with MFA. " a href="/mfa" { "Turn MFA on" } "." }
                }
            }
        },
    )
}
