//! The app passwords page: the list (with last use and a revoke button each), the add form,
//! and the new password shown once.

use maud::{html, Markup};

use super::layout::{page, Nav, SignedIn};
use super::{challenge_field, csrf_field, date, maybe_date, Notice};
use crate::accounts::{AppPasswordInfo, NewAppPassword};

/// The page; `new` is shown once, right after it was made.
pub fn app_passwords(
    user: &SignedIn,
    on: bool,
    list: &[AppPasswordInfo],
    new: Option<&NewAppPassword>,
    notice: &Notice,
) -> Markup {
    page(
        "App passwords",
        Some(user),
        Nav::AppPasswords,
        notice,
        html! {
            @if let Some(n) = new {
                section.card.secret #new-app-password-box {
                    p { "The app password " strong { (n.name) } ":" }
                    p { code #new-app-password { (n.password.as_str()) } }
                    p { "Type it into your mail program instead of your password now: it is shown only this once." }
                }
            }
            p { "A mail program that stays signed in (phone mail app, Thunderbird, Outlook) cannot type a new "
                "code every 30 seconds. Give each one its own app password; revoke it when the device is gone." }
            section.card {
                h2 { "Your app passwords" }
                div.table-wrap {
                    table #app-passwords {
                        thead { tr { th scope="col" { "Name" } th scope="col" { "Services" } th scope="col" { "Created" }
                                     th scope="col" { "Expires" } th scope="col" { "Last use" } th scope="col" { span.sr { "Revoke" } } } }
                        tbody {
                            @for p in list {
                                tr {
                                    td { (p.name) }
                                    td { @if p.services.is_empty() { "all" } @else { (p.services.join(", ")) } }
                                    td { (date(p.created)) }
                                    td { (maybe_date(p.expires, "never")) }
                                    td {
                                        (maybe_date(p.last_used, "never"))
                                        @if let Some(c) = &p.last_client { " from " (c) }
                                    }
                                    td {
                                        form method="post" action="/app-passwords/revoke" {
                                            (csrf_field(user.csrf))
                                            input type="hidden" name="name" value=(p.name);
                                            button.revoke #{"revoke-" (p.name)} type="submit" value=(p.name) data-name=(p.name)
                                                aria-label={"Revoke " (p.name)} { "Revoke" }
                                        }
                                    }
                                }
                            }
                            @if list.is_empty() {
                                tr { td colspan="6" { "No app passwords yet." } }
                            }
                        }
                    }
                }
            }
            @if on {
                section.card {
                    h2 { "Add an app password" }
                    form method="post" action="/app-passwords" {
                        (csrf_field(user.csrf))
                        div.field {
                            label for="label" { "Name" }
                            input #label type="text" name="label" required maxlength="64" placeholder="phone"
                                aria-describedby="label-hint";
                            p.hint #label-hint { "Letters, digits, - and _, e.g. the device: phone, laptop." }
                        }
                        div.field {
                            label for="services" { "Services" }
                            input #services type="text" name="services" placeholder="imap,smtp" aria-describedby="services-hint";
                            p.hint #services-hint { "Comma-separated (imap, pop3, smtp); empty: all." }
                        }
                        div.field {
                            label for="expires" { "Expires" }
                            select #expires name="expires" {
                                option value="" { "never" }
                                option value="30d" { "in 30 days" }
                                option value="90d" { "in 90 days" }
                                option value="365d" { "in a year" }
                            }
                        }
                        (challenge_field("A current code from your authenticator app."))
                        button #add type="submit" { "Add" }
                    }
                }
            } @else {
                p { "App passwords need MFA to be on. " a href="/mfa" { "Turn MFA on" } "." }
            }
        },
    )
}
