// One concept, the HTML routes of the owner's flows; long because each page is one route here.
//! The HTML routes: the sign-in form, the MFA flow, app passwords, recovery codes, sign-out.
//!
//! Every POST checks the session's CSRF token (the sign-in form: its pre-session's). Actions
//! that reveal a secret or turn MFA off check a code typed on that page (through the account
//! layer, as client "mailmfa-panel"). After a change, a redirect (303) to a page that shows
//! `#message`; a secret (new key, app password, recovery codes) is shown in the answer to the
//! POST itself and never stored in the session, a URL or a hidden field.

// An early-return `Response` (a redirect, an error page) is the natural Err of these helpers.
#![allow(clippy::result_large_err)]

use axum::extract::{Form, FromRequest, FromRequestParts, Request, State};
use axum::http::header::LOCATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use mailmfa::login::Login;
use maud::Markup;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::accounts::{self, AccountError, Accounts, Face, Proof, Who};
use crate::app::{client_of, now, Shared};
use crate::client::{Client, Peer};
use crate::events;
use crate::pages::layout::SignedIn;
use crate::pages::mfa::{EnrolView, MfaView};
use crate::pages::{self, Notice};
use crate::session::{cookie_value, csrf_ok, with_cookie, Flash, Lookup, Session};
use crate::signin::{self, Outcome};

/// The one message of every refused sign-in.
pub const REFUSED: &str = "The address, password or code is not right.";

/// A signed-in request; as an extractor, its rejection is the redirect to the sign-in page.
pub struct Ctx {
    id: String,
    session: Session,
    who: Who,
    secure: bool,
}

impl Ctx {
    fn user(&self) -> SignedIn<'_> {
        SignedIn {
            login: self.who.login.as_str(),
            csrf: &self.session.csrf,
        }
    }

    fn notice(&self) -> Notice {
        notice_of(&self.session.flash)
    }

    /// Runs `f` with the account layer and this request's mailbox on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        app: &Shared,
        f: impl FnOnce(&Accounts, &Who) -> T + Send + 'static,
    ) -> T {
        app.run(&self.who, f).await
    }

    /// Leaves `flash` in the session and sends the browser to `to`.
    fn flash_to(&self, app: &Shared, flash: Flash, to: &str) -> Response {
        app.sessions.flash(&self.id, flash);
        see_other(to)
    }
}

fn notice_of(flash: &Option<Flash>) -> Notice {
    match flash {
        Some(Flash::Message(m)) => Notice::message(m.clone()),
        Some(Flash::Error(e)) => Notice::error(e.clone()),
        None => Notice::default(),
    }
}

/// The status of a refused action (422 when the error has none of its own).
fn refused_status(e: &AccountError) -> StatusCode {
    StatusCode::from_u16(accounts::http_status(e)).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
}

fn page(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

fn see_other(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(LOCATION, HeaderValue::from_str(to).expect("a path"))],
    )
        .into_response()
}

/// A page with only an error notice and a link back to `/`.
fn notice_page(status: StatusCode, title: &str, error: &str, back: &str) -> Response {
    page(
        status,
        pages::sign_in::notice_page(title, &Notice::error(error), ("/", back)),
    )
}

fn internal() -> Response {
    notice_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The panel could not finish this. Please try again; if it keeps happening, tell your mail provider.",
        "Back",
    )
}

/// Sends the browser to the sign-in page with `flash`, on a fresh pre-session.
fn to_sign_in(app: &Shared, client: &Client, flash: Option<Flash>) -> Response {
    match app.sessions.create(None, None, now()) {
        Ok((id, _)) => {
            if let Some(f) = flash {
                app.sessions.flash(&id, f);
            }
            with_cookie(see_other("/sign-in"), &id, client.secure)
        }
        Err(_) => internal(),
    }
}

/// The signed-in session of a request, or the redirect to the sign-in page.
fn signed_in(app: &Shared, client: Client, headers: &HeaderMap) -> Result<Ctx, Response> {
    let Some(id) = cookie_value(headers) else {
        return Err(see_other("/sign-in"));
    };
    match app.sessions.get(&id, now()) {
        Ok(session) => match session.login.clone() {
            Some(login) => Ok(Ctx {
                id,
                session,
                who: Who {
                    login,
                    face: Face::Panel,
                    client: client.ip,
                },
                secure: client.secure,
            }),
            None => Err(see_other("/sign-in")),
        },
        Err(ended) => {
            let why = match ended.why {
                Lookup::Unknown => return Err(see_other("/sign-in")),
                Lookup::Idle => "idle",
                Lookup::Lifetime => "lifetime",
            };
            let user = ended.login.as_ref().map(Login::as_str).unwrap_or("");
            events::event(
                "session_end",
                "expired",
                user,
                Some(client.ip),
                "panel",
                Some(why),
            );
            Err(to_sign_in(
                app,
                &client,
                Some(Flash::Error(
                    "Your session has ended. Please sign in again.".to_string(),
                )),
            ))
        }
    }
}

impl FromRequestParts<Shared> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Shared) -> Result<Ctx, Response> {
        let client = client_of(parts, app).await?;
        signed_in(app, client, &parts.headers)
    }
}

/// A form with the CSRF token in its `csrf` field.
pub trait CsrfField {
    /// The token the form carried.
    fn csrf(&self) -> &str;
}

/// A signed-in POST whose form carries the session's CSRF token: the form is parsed first,
/// then the session is checked (the redirect to the sign-in page), then the token (403).
pub struct Post<F>(Ctx, F);

impl<F: CsrfField + DeserializeOwned + Send> FromRequest<Shared> for Post<F> {
    type Rejection = Response;

    async fn from_request(req: Request, app: &Shared) -> Result<Post<F>, Response> {
        let (mut parts, body) = req.into_parts();
        let client = client_of(&mut parts, app).await?;
        let headers = parts.headers.clone();
        let Form(form) = Form::<F>::from_request(Request::from_parts(parts, body), app)
            .await
            .map_err(IntoResponse::into_response)?;
        let ctx = signed_in(app, client, &headers)?;
        if !csrf_ok(&ctx.session, Some(form.csrf())) {
            return Err(expired_form());
        }
        Ok(Post(ctx, form))
    }
}

macro_rules! csrf_field {
    ($($form:ty),*) => {$(
        impl CsrfField for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        }
    )*};
}

csrf_field!(CsrfForm, NextForm, ChallengeForm, AddForm, RevokeForm);

fn expired_form() -> Response {
    notice_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form has expired or did not come from this page. Please open the page again and retry.",
        "Open the panel",
    )
}

/// GET /: to the MFA page when signed in, else (the extractor's rejection) to the sign-in page.
pub async fn root(_: Ctx) -> Response {
    see_other("/mfa")
}

/// GET /sign-in.
pub async fn sign_in_form(
    State(app): State<Shared>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    let client = app.client(Some(&peer), &headers);
    if let Some(id) = cookie_value(&headers) {
        if let Ok(s) = app.sessions.get(&id, now()) {
            if s.login.is_some() {
                return see_other("/mfa");
            }
            let notice = notice_of(&s.flash);
            return page(
                StatusCode::OK,
                pages::sign_in::sign_in(&s.csrf, "", &notice),
            );
        }
    }
    match app.sessions.create(None, None, now()) {
        Ok((id, csrf)) => with_cookie(
            page(
                StatusCode::OK,
                pages::sign_in::sign_in(&csrf, "", &Notice::default()),
            ),
            &id,
            client.secure,
        ),
        Err(_) => internal(),
    }
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: Zeroizing<String>,
}

/// POST /sign-in.
pub async fn sign_in(
    State(app): State<Shared>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let client = app.client(Some(&peer), &headers);
    let old = cookie_value(&headers);
    let pre = old
        .as_deref()
        .and_then(|id| app.sessions.get(id, now()).ok());
    let Some(pre) = pre.filter(|s| csrf_ok(s, Some(&form.csrf))) else {
        // No (or another) form token: a new form, nothing checked.
        return match app.sessions.create(None, old.as_deref(), now()) {
            Ok((id, csrf)) => with_cookie(
                page(
                    StatusCode::FORBIDDEN,
                    pages::sign_in::sign_in(
                        &csrf,
                        &form.login,
                        &Notice::error("The sign-in form had expired. Please type your password (and code) again."),
                    ),
                ),
                &id,
                client.secure,
            ),
            Err(_) => internal(),
        };
    };
    let login_typed = form.login.clone();
    match signin::sign_in(&app, client.ip, Face::Panel, &form.login, form.password).await {
        Outcome::Ok(login) => match app.sessions.create(Some(login), old.as_deref(), now()) {
            Ok((id, _)) => with_cookie(see_other("/mfa"), &id, client.secure),
            Err(_) => internal(),
        },
        Outcome::Refused => page(
            StatusCode::UNAUTHORIZED,
            pages::sign_in::sign_in(&pre.csrf, &login_typed, &Notice::error(REFUSED)),
        ),
        Outcome::Limited(until) => {
            let minutes = until.saturating_sub(now()).div_ceil(60).max(1);
            page(
                StatusCode::TOO_MANY_REQUESTS,
                pages::sign_in::sign_in(
                    &pre.csrf,
                    &login_typed,
                    &Notice::error(format!(
                        "Too many failed sign-ins from your address. Please wait {minutes} minute{} and try again.",
                        if minutes == 1 { "" } else { "s" }
                    )),
                ),
            )
        }
        Outcome::Unavailable => page(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::sign_in::sign_in(
                &pre.csrf,
                &login_typed,
                &Notice::error("Signing in is not possible right now: the mail server did not answer. Please try again in a few minutes."),
            ),
        ),
    }
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// POST /sign-out.
pub async fn sign_out(State(app): State<Shared>, Post(ctx, _): Post<CsrfForm>) -> Response {
    app.sessions.remove(&ctx.id);
    events::signed_out(ctx.who.login.as_str(), ctx.who.client, "panel");
    to_sign_in(
        &app,
        &Client {
            ip: ctx.who.client,
            secure: ctx.secure,
        },
        Some(Flash::Message("You are signed out.".to_string())),
    )
}

async fn mfa_page(app: &Shared, ctx: &Ctx, notice: Notice) -> Response {
    match ctx.run(app, |accounts, who| accounts.status(who)).await {
        Ok(s) => {
            let view = MfaView {
                on: s.on,
                created: s.created,
                pending_expires: s.pending_expires,
                app_passwords: s.app_passwords,
                recovery_left: s.recovery_left,
            };
            page(StatusCode::OK, pages::mfa::mfa(&ctx.user(), &view, &notice))
        }
        Err(e) => error_page(ctx, &e),
    }
}

fn error_page(ctx: &Ctx, e: &AccountError) -> Response {
    let status =
        StatusCode::from_u16(accounts::http_status(e)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    page(
        status,
        pages::layout::page(
            "MFA",
            Some(&ctx.user()),
            pages::layout::Nav::Mfa,
            &Notice::error(e.to_string()),
            maud::html! { p { a href="/mfa" { "Back to the MFA page" } } },
        ),
    )
}

/// GET /mfa.
pub async fn mfa(State(app): State<Shared>, ctx: Ctx) -> Response {
    mfa_page(&app, &ctx, ctx.notice()).await
}

/// The Status drop-down.
#[derive(Deserialize)]
pub struct NextForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
}

/// A page that asks for a code before an action: its title, form action and explanation.
struct AskCode {
    title: &'static str,
    action: &'static str,
    text: &'static str,
}

const DISABLE: AskCode = AskCode {
    title: "Turn off MFA",
    action: "/mfa/disable",
    text: "To turn MFA off, type a current code from your authenticator app (or one of your recovery codes) and Save.",
};
const REPLACE: AskCode = AskCode {
    title: "New phone",
    action: "/mfa/replace",
    text: "MFA is on. To move it to a new phone, type a current code from your old phone (or a recovery code) and Save; you will then scan a new QR code. Until you confirm the new code, the old phone keeps working.",
};

fn ask_code(ctx: &Ctx, ask: &AskCode, status: StatusCode, notice: &Notice) -> Response {
    page(
        status,
        pages::mfa::ask_code(&ctx.user(), ask.title, ask.action, ask.text, notice),
    )
}

/// POST /mfa/next.
pub async fn next(State(app): State<Shared>, Post(ctx, form): Post<NextForm>) -> Response {
    let status = match ctx.run(&app, |accounts, who| accounts.status(who)).await {
        Ok(s) => s,
        Err(e) => return error_page(&ctx, &e),
    };
    match (form.status.as_str(), status.on) {
        ("enabled", false) => {
            let digits = status.digits;
            match ctx
                .run(&app, |accounts, who| accounts.begin(who, None))
                .await
            {
                Ok(e) => enrol_page(&ctx, &e, digits, Notice::default(), StatusCode::OK),
                Err(e) => mfa_page(&app, &ctx, Notice::error(e.to_string())).await,
            }
        }
        ("enabled", true) => ask_code(&ctx, &REPLACE, StatusCode::OK, &Notice::default()),
        ("disabled", true) => ask_code(&ctx, &DISABLE, StatusCode::OK, &Notice::default()),
        ("disabled", false) => ctx.flash_to(
            &app,
            Flash::Message("MFA is already off; nothing changed.".to_string()),
            "/mfa",
        ),
        _ => {
            mfa_page(
                &app,
                &ctx,
                Notice::error("Choose Enabled or Disabled, then Next."),
            )
            .await
        }
    }
}

/// The digits of an enrolment: its record's, else `fallback`.
fn digits_of(e: &accounts::Enrolment, fallback: u32) -> u32 {
    if e.record.digits > 0 {
        e.record.digits
    } else {
        fallback
    }
}

fn enrol_page(
    ctx: &Ctx,
    e: &accounts::Enrolment,
    digits: u32,
    notice: Notice,
    status: StatusCode,
) -> Response {
    let Some(svg) = pages::qr::svg(&e.uri) else {
        return internal();
    };
    let view = EnrolView {
        svg: &svg,
        key: &e.key,
        uri: &e.uri,
        expires: e.expires_at,
        digits,
    };
    page(status, pages::mfa::enrol(&ctx.user(), &view, &notice))
}

/// The Challenge field.
#[derive(Deserialize)]
pub struct ChallengeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    challenge: Zeroizing<String>,
}

/// POST /mfa/confirm.
pub async fn confirm(State(app): State<Shared>, Post(ctx, form): Post<ChallengeForm>) -> Response {
    let typed = form.challenge;
    let result = ctx
        .run(&app, move |accounts, who| {
            match accounts.confirm(who, &typed) {
                Ok(()) => Ok(()),
                Err(e) => {
                    // A wrong code: show the same QR again (the pending enrolment as it stands).
                    let again = accounts.pending(who).ok().flatten();
                    let digits = accounts.status(who).map(|s| s.digits).unwrap_or(6);
                    Err((e, again, digits))
                }
            }
        })
        .await;
    match result {
        Ok(()) => ctx.flash_to(
            &app,
            Flash::Message("MFA is on. From now on, sign in with your password followed by the current code from your app.".to_string()),
            "/mfa",
        ),
        Err((e, Some(pending), digits)) => {
            let digits = digits_of(&pending, digits);
            enrol_page(
                &ctx,
                &pending,
                digits,
                Notice::error(e.to_string()),
                refused_status(&e),
            )
        }
        Err((e, None, _)) => ctx.flash_to(&app, Flash::Error(e.to_string()), "/mfa"),
    }
}

/// POST /mfa/disable.
pub async fn disable(State(app): State<Shared>, Post(ctx, form): Post<ChallengeForm>) -> Response {
    let proof = Proof::Code(form.challenge);
    match ctx
        .run(&app, move |accounts, who| accounts.disable(who, &proof))
        .await
    {
        Ok(_) => ctx.flash_to(
            &app,
            Flash::Message(
                "MFA is off. You can delete the entry from your authenticator app.".to_string(),
            ),
            "/mfa",
        ),
        Err(e) => ask_code(
            &ctx,
            &DISABLE,
            refused_status(&e),
            &Notice::error(e.to_string()),
        ),
    }
}

/// POST /mfa/replace: a code of the old secret, then the enrolment page of a new one.
pub async fn replace(State(app): State<Shared>, Post(ctx, form): Post<ChallengeForm>) -> Response {
    let proof = Proof::Code(form.challenge);
    match ctx
        .run(&app, move |accounts, who| {
            let digits = accounts.settings().digits;
            accounts.begin(who, Some(&proof)).map(|e| (e, digits))
        })
        .await
    {
        Ok((e, digits)) => {
            let digits = digits_of(&e, digits);
            enrol_page(&ctx, &e, digits, Notice::default(), StatusCode::OK)
        }
        Err(e) => ask_code(
            &ctx,
            &REPLACE,
            refused_status(&e),
            &Notice::error(e.to_string()),
        ),
    }
}

async fn app_passwords_page(
    app: &Shared,
    ctx: &Ctx,
    new: Option<accounts::NewAppPassword>,
    notice: Notice,
    status: StatusCode,
) -> Response {
    let loaded = ctx
        .run(app, |accounts, who| {
            let s = accounts.status(who)?;
            let list = if s.on {
                accounts.list_app_passwords(who)?
            } else {
                Vec::new()
            };
            Ok::<_, AccountError>((s.on, list))
        })
        .await;
    match loaded {
        Ok((on, list)) => page(
            status,
            pages::app_passwords::app_passwords(&ctx.user(), on, &list, new.as_ref(), &notice),
        ),
        Err(e) => error_page(ctx, &e),
    }
}

/// GET /app-passwords.
pub async fn app_passwords(State(app): State<Shared>, ctx: Ctx) -> Response {
    app_passwords_page(&app, &ctx, None, ctx.notice(), StatusCode::OK).await
}

/// The add form.
#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    services: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    challenge: Zeroizing<String>,
}

/// POST /app-passwords.
pub async fn add_app_password(
    State(app): State<Shared>,
    Post(ctx, form): Post<AddForm>,
) -> Response {
    let expires = match form.expires.trim() {
        "" => None,
        text => match mailmfa::config::parse_duration(text) {
            Some(d) if d > 0 => Some(now() + d),
            _ => {
                return app_passwords_page(
                    &app,
                    &ctx,
                    None,
                    Notice::error("Choose when the app password expires."),
                    StatusCode::BAD_REQUEST,
                )
                .await
            }
        },
    };
    let result = ctx
        .run(&app, move |accounts, who| {
            let services = accounts::parse_services(form.services.trim())?;
            accounts.check_code(who, &form.challenge)?;
            accounts.add_app_password(who, form.label.trim(), &services, expires)
        })
        .await;
    match result {
        Ok(new) => {
            let notice = Notice::message(format!("The app password {} is ready.", new.name));
            app_passwords_page(&app, &ctx, Some(new), notice, StatusCode::OK).await
        }
        Err(e) => {
            let status = refused_status(&e);
            app_passwords_page(&app, &ctx, None, Notice::error(e.to_string()), status).await
        }
    }
}

/// The revoke button's form.
#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// POST /app-passwords/revoke.
pub async fn revoke_app_password(
    State(app): State<Shared>,
    Post(ctx, form): Post<RevokeForm>,
) -> Response {
    let name = form.name.clone();
    let flash = match ctx
        .run(&app, move |accounts, who| {
            accounts.revoke_app_password(who, &name)
        })
        .await
    {
        Ok(()) => Flash::Message(format!(
            "The app password {} is revoked: a mail program that uses it can no longer sign in.",
            form.name
        )),
        Err(e) => Flash::Error(e.to_string()),
    };
    ctx.flash_to(&app, flash, "/app-passwords")
}

async fn recovery_page(
    app: &Shared,
    ctx: &Ctx,
    codes: Option<Vec<String>>,
    notice: Notice,
    status: StatusCode,
) -> Response {
    match ctx.run(app, |accounts, who| accounts.status(who)).await {
        Ok(s) => page(
            status,
            pages::recovery::recovery(
                &ctx.user(),
                s.on,
                s.recovery_left,
                s.recovery_total,
                codes.as_deref(),
                &notice,
            ),
        ),
        Err(e) => error_page(ctx, &e),
    }
}

/// GET /recovery-codes.
pub async fn recovery(State(app): State<Shared>, ctx: Ctx) -> Response {
    recovery_page(&app, &ctx, None, ctx.notice(), StatusCode::OK).await
}

/// POST /recovery-codes.
pub async fn new_recovery_codes(
    State(app): State<Shared>,
    Post(ctx, form): Post<ChallengeForm>,
) -> Response {
    let result = ctx
        .run(&app, move |accounts, who| {
            accounts.check_code(who, &form.challenge)?;
            accounts.new_recovery_codes(who)
        })
        .await;
    match result {
        Ok(codes) => {
            let codes: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
            let notice =
                Notice::message("New recovery codes are ready; the old ones no longer work.");
            recovery_page(&app, &ctx, Some(codes), notice, StatusCode::OK).await
        }
        Err(e) => {
            let status = refused_status(&e);
            recovery_page(&app, &ctx, None, Notice::error(e.to_string()), status).await
        }
    }
}
