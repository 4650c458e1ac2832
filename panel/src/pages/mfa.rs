//! The MFA pages: the status with its drop-down, the enrolment (QR code, key, otpauth link,
//! Challenge), turning MFA off, and moving it to a new phone.

use maud::{html, Markup, PreEscaped};

use super::layout::{page, Nav, SignedIn};
use super::{challenge_field, csrf_field, date, Notice};

/// What the MFA page shows.
pub struct MfaView {
    /// MFA is on.
    pub on: bool,
    /// Since when.
    pub created: Option<u64>,
    /// A pending enrolment expires at.
    pub pending_expires: Option<u64>,
    /// App passwords.
    pub app_passwords: usize,
    /// Recovery codes left.
    pub recovery_left: usize,
}

/// The MFA page: status and the Status drop-down with Next.
pub fn mfa(user: &SignedIn, view: &MfaView, notice: &Notice) -> Markup {
    page(
        "MFA",
        Some(user),
        Nav::Mfa,
        notice,
        html! {
            section.card {
                p.status {
                    "MFA (a code from an authenticator app at each sign-in) is "
                    strong #mfa-status .{ @if view.on { "on" } @else { "off" } } {
                        @if view.on { "Enabled" } @else { "Disabled" }
                    }
                    "."
                }
                @if view.on {
                    @if let Some(c) = view.created { p { "On since " (date(c)) "." } }
                    p { "App passwords: " (view.app_passwords) ". Recovery codes left: " (view.recovery_left) "." }
                }
                @if let (false, Some(t)) = (view.on, view.pending_expires) {
                    p { "A setup was started and not finished; it expires at " (date(t)) ". Choose Enabled and Next to start again." }
                }
                form method="post" action="/mfa/next" {
                    (csrf_field(user.csrf))
                    div.field {
                        label for="status" { "Status" }
                        select #status name="status" {
                            option value="enabled" selected[view.on] { "Enabled" }
                            option value="disabled" selected[!view.on] { "Disabled" }
                        }
                    }
                    button #next type="submit" { "Next" }
                }
            }
            section.help {
                h2 { "Before you turn MFA on" }
                p { "You need an authenticator app on your phone, such as Authy, Google Authenticator, "
                    "FreeOTP or Aegis. After MFA is on, sign in to mail with your password followed by the "
                    "six-digit code the app shows. Mail programs that stay signed in all day need an app password." }
            }
        },
    )
}

/// What the enrolment page shows (the pending secret's URI stays server-side otherwise).
pub struct EnrolView<'a> {
    /// The QR code, inline SVG.
    pub svg: &'a str,
    /// The key, base32 in groups.
    pub key: &'a str,
    /// The `otpauth://` URI.
    pub uri: &'a str,
    /// When the setup expires.
    pub expires: u64,
    /// Code length.
    pub digits: u32,
}

/// The enrolment page: scan, or type the key, then the Challenge.
pub fn enrol(user: &SignedIn, view: &EnrolView, notice: &Notice) -> Markup {
    page(
        "Turn on MFA",
        Some(user),
        Nav::Mfa,
        notice,
        html! {
            section.card {
                ol.steps {
                    li { "Open your authenticator app and add an account (often a " strong { "+" } " button)." }
                    li {
                        "Scan this QR code:"
                        div.qr { (PreEscaped(view.svg)) }
                    }
                    li {
                        "Or type this key by hand: "
                        code #key .key { (view.key) }
                    }
                    li {
                        "Reading this on your phone? "
                        a #otpauth href=(view.uri) { "Add it to your authenticator app" }
                    }
                    li { "Type the " (view.digits) "-digit code the app shows, and Save before it changes. "
                         "If it is about to change, wait for the next one." }
                }
                form method="post" action="/mfa/confirm" {
                    (csrf_field(user.csrf))
                    (challenge_field("The code from your authenticator app."))
                    button #save type="submit" { "Save" }
                }
                p.hint { "MFA is on only after a right code. This setup expires at " (date(view.expires)) "." }
            }
        },
    )
}

/// A page that asks for a code before a change: turning MFA off, or a new phone.
pub fn ask_code(user: &SignedIn, title: &str, action: &str, text: &str, notice: &Notice) -> Markup {
    page(
        title,
        Some(user),
        Nav::Mfa,
        notice,
        html! {
            section.card {
                p { (text) }
                form method="post" action=(action) {
                    (csrf_field(user.csrf))
                    (challenge_field("A current code from your authenticator app, or one of your recovery codes."))
                    button #save type="submit" { "Save" }
                }
                p { a href="/mfa" { "Cancel" } }
            }
        },
    )
}
