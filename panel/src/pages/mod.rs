//! The HTML pages (maud templates, escaped by default). Plain forms that work without
//! JavaScript; one stylesheet from this host (`/static/panel.css`); every POST form carries
//! the session's CSRF token. Element ids are the contract the browser tests drive.
//!
//! - [`layout`]: the frame of every page (header, nav, sign-out, `#message` / `#error`).
//! - [`sign_in`], [`mfa`], [`app_passwords`], [`recovery`]: one file per page family.
//! - [`qr`]: the QR code as inline SVG.

pub mod app_passwords;
pub mod layout;
pub mod mfa;
pub mod qr;
pub mod recovery;
pub mod sign_in;

use maud::{html, Markup};

/// The notices of a page: what happened (green) and what went wrong (red).
#[derive(Default, Clone, Debug)]
pub struct Notice {
    /// `#message`.
    pub message: Option<String>,
    /// `#error`.
    pub error: Option<String>,
}

impl Notice {
    /// Only a message.
    pub fn message(text: impl Into<String>) -> Notice {
        Notice {
            message: Some(text.into()),
            error: None,
        }
    }

    /// Only an error.
    pub fn error(text: impl Into<String>) -> Notice {
        Notice {
            message: None,
            error: Some(text.into()),
        }
    }
}

/// The hidden CSRF field of a form.
pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// The Challenge field: a code from the authenticator app (or a recovery code).
pub fn challenge_field(hint: &str) -> Markup {
    html! {
        div.field {
            label for="challenge" { "Challenge" }
            input #challenge type="text" name="challenge" inputmode="numeric"
                autocomplete="one-time-code" required maxlength="64" aria-describedby="challenge-hint";
            p.hint #challenge-hint { (hint) }
        }
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM UTC`.
pub fn date(t: u64) -> String {
    let secs = t % 86400;
    let (y, m, d) = mailmfa::calendar::civil_from_days((t / 86400) as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// An optional time, or a word for none.
pub fn maybe_date(t: Option<u64>, none: &str) -> String {
    t.map(date).unwrap_or_else(|| none.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc() {
        assert_eq!(date(0), "1970-01-01 00:00 UTC");
        assert_eq!(date(1_709_210_096), "2024-02-29 12:34 UTC");
        assert_eq!(date(951_782_400), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn text_is_escaped() {
        let n = Notice::error("<script>");
        let page = layout::page("t", None, layout::Nav::None, &n, html! {});
        assert!(page.into_string().contains("&lt;script&gt;"));
    }
}
