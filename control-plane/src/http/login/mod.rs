//! Browser sign-in: the authorization endpoint (`GET /oauth2/authorize`, RFC 6749 §4.1 with
//! PKCE, RFC 7636) and the hosted login page it shows (`POST /oauth2/login`): a username and
//! password, then a one-time code when the user has TOTP, through the same
//! [`crate::identity::login`] procedure as every other sign-in. A successful sign-in sends the
//! browser back to the client's registered redirect URI with a code, which the client exchanges
//! at the token endpoint ([`crate::http::code_exchange`]).

pub mod cookies;
pub mod csrf;
pub mod logout;
pub mod page;
pub mod request;

use crate::audit::action::Action;
use crate::audit::{self, Event, Origin};
use crate::http::extractors::OAuthForm;
use crate::identity::browser_sessions::{self, BrowserSession};
use crate::identity::login::{Authenticated, Login, LoginError};
use crate::identity::users::{self, User};
use crate::oauth::audience;
use crate::oauth::codes::{self, Issued};
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use csrf::LoginCookie;
use request::{Authorization, Refused};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What the code step carries, sealed: whose password was accepted, for which client and
/// which browser (its CSRF token), until when.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    username: String,
    client_id: String,
    csrf: String,
    expires_at: i64,
}

/// How long the code step may follow the password, in seconds.
const PENDING_LIFETIME: i64 = 300;
const PENDING_CONTEXT: &str = "login pending v1";
const UNAVAILABLE: &str = "Sign-in is unavailable right now; please try again in a moment.";
const EXPIRED: &str =
    "This sign-in form has expired. Go back to the application and sign in again.";
const BAD_LOGIN: &str = "The username, password or code is not right.";

/// `GET /oauth2/authorize`: checks the request, then shows the login page.
#[utoipa::path(
    get,
    path = "/oauth2/authorize",
    tag = "oauth",
    params(
        ("client_id" = String, Query, description = "The client"),
        ("redirect_uri" = Option<String>, Query, description = "A registered redirect URI (may be left out when one is registered)"),
        ("response_type" = String, Query, description = "`code`"),
        ("code_challenge" = String, Query, description = "PKCE S256 challenge (required)"),
        ("code_challenge_method" = String, Query, description = "`S256`"),
        ("scope" = Option<String>, Query, description = "Space-separated scopes"),
        ("state" = Option<String>, Query, description = "Returned as given"),
        ("nonce" = Option<String>, Query, description = "OpenID Connect nonce"),
        ("resource" = Option<String>, Query, description = "RFC 8707 resource"),
        ("prompt" = Option<String>, Query, description = "`none` or `login`"),
        ("login_hint" = Option<String>, Query, description = "Prefills the username"),
        ("max_age" = Option<i64>, Query, description = "Seconds since the last sign-in beyond which the user signs in again"),
    ),
    responses(
        (status = 200, description = "The login page", content_type = "text/html"),
        (status = 303, description = "Back to the redirect URI: with a code when the browser's sign-in session stands for a new sign-in (single sign-on), or with an error (RFC 6749 §4.1.2.1)"),
        (status = 400, description = "An error page: the client or the redirect URI is not known good, so the browser is sent nowhere", content_type = "text/html"),
    )
)]
pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match request::parameters(query.unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(name) => {
            return page::error(
                StatusCode::BAD_REQUEST,
                &format!("The request repeats the parameter {name}."),
            )
        }
    };
    let authorization = match request::check(&state, &params).await {
        Ok(authorization) => authorization,
        Err(refused) => return refusal(&state, refused),
    };
    match live_session(&state, &headers, &authorization).await {
        Ok(Some((session, user))) => {
            return single_sign_on(&state, &authorization, &session, &user).await
        }
        Ok(None) => {}
        Err(error) => {
            tracing::error!(%error, "single sign-on");
            return page::error(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE);
        }
    }
    if authorization.prompt_none {
        return refusal(
            &state,
            Refused::Redirect {
                redirect_uri: authorization.redirect_uri.clone(),
                error: "login_required",
                description: "the user must sign in".into(),
                state: authorization.state.clone(),
            },
        );
    }
    let Ok(cookie) = LoginCookie::of(&headers, secure(&state)) else {
        return page::error(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE);
    };
    let hidden = hidden(&state, &authorization, &cookie, None);
    page::page(
        StatusCode::OK,
        "Sign in",
        &page::password_form(&page::Form {
            client_name: &authorization.client.name,
            hidden: &hidden,
            error: None,
            username: authorization.login_hint.as_deref(),
        }),
        cookie.set_cookie.clone(),
    )
}

/// `POST /oauth2/login`: the login form's answer.
#[utoipa::path(
    post,
    path = "/oauth2/login",
    tag = "oauth",
    request_body(content = serde_json::Value, content_type = "application/x-www-form-urlencoded", description = "The login form: the authorization request's parameters, `csrf`, and `username` and `password`, or `pending` and `otp`"),
    responses(
        (status = 200, description = "The next step's page (the one-time code)", content_type = "text/html"),
        (status = 303, description = "Back to the redirect URI with a code"),
        (status = 400, description = "An error page", content_type = "text/html"),
        (status = 401, description = "The login page again, with a generic error", content_type = "text/html"),
        (status = 403, description = "The form is stale or not from this server (CSRF)", content_type = "text/html"),
        (status = 429, description = "Too many attempts", content_type = "text/html"),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    origin: Origin,
    form: Result<OAuthForm, crate::http::error::ApiError>,
) -> Response {
    let Ok(form) = form else {
        return page::error(
            StatusCode::BAD_REQUEST,
            "The sign-in form could not be read.",
        );
    };
    let master = state.master();
    let cookie = LoginCookie::sent(&form.headers, secure(&state));
    let Some(cookie) = cookie.filter(|c| c.accepts(master, form.get("csrf"))) else {
        return page::error(StatusCode::FORBIDDEN, EXPIRED);
    };
    let authorization = match request::check(&state, &form.params).await {
        Ok(authorization) => authorization,
        Err(refused) => return refusal(&state, refused),
    };
    let login = Login {
        state: &state,
        origin: &origin,
        client: &authorization.client,
    };
    let (step, outcome) = match form.get("pending") {
        Some(sealed) => {
            let Some(pending) = open_pending(&state, sealed, &authorization, &cookie) else {
                return page::error(StatusCode::FORBIDDEN, EXPIRED);
            };
            let outcome = async {
                let mut signed_in = login.resume(&pending.username).await?;
                signed_in.second_factor(login, form.get("otp")).await?;
                Ok(signed_in)
            }
            .await;
            (Step::Code(sealed.to_owned()), outcome)
        }
        None => {
            let username = form.get("username").unwrap_or("");
            let outcome = login
                .password(username, form.get("password").unwrap_or(""))
                .await;
            match outcome {
                Ok(signed_in) if signed_in.needs_code() => {
                    signed_in.awaiting_code().await;
                    return code_step(&state, &authorization, &cookie, username);
                }
                outcome => (Step::Password(username.to_owned()), outcome),
            }
        }
    };
    match outcome {
        Ok(signed_in) => finish(&state, &origin, &form.headers, &authorization, signed_in).await,
        Err(LoginError::Refused) => step.again(&state, &authorization, &cookie),
        Err(LoginError::Throttled(retry_after)) => {
            let mut response = page::error(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-in attempts. Please wait a little and try again.",
            );
            if let Ok(value) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Err(error) => {
            tracing::error!(%error, "login page");
            page::error(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE)
        }
    }
}

/// Which form a refused attempt returns to.
enum Step {
    Password(String),
    Code(String),
}

impl Step {
    fn again(
        self,
        state: &AppState,
        authorization: &Authorization,
        cookie: &LoginCookie,
    ) -> Response {
        match self {
            Step::Password(username) => {
                let hidden = hidden(state, authorization, cookie, None);
                page::page(
                    StatusCode::UNAUTHORIZED,
                    "Sign in",
                    &page::password_form(&page::Form {
                        client_name: &authorization.client.name,
                        hidden: &hidden,
                        error: Some(BAD_LOGIN),
                        username: Some(&username),
                    }),
                    None,
                )
            }
            Step::Code(sealed) => {
                let hidden = hidden(state, authorization, cookie, Some(sealed));
                page::page(
                    StatusCode::UNAUTHORIZED,
                    "Enter your code",
                    &page::code_form(&page::Form {
                        client_name: &authorization.client.name,
                        hidden: &hidden,
                        error: Some(BAD_LOGIN),
                        username: None,
                    }),
                    None,
                )
            }
        }
    }
}

/// Whether cookies must be `Secure` (the issuer is https).
fn secure(state: &AppState) -> bool {
    state.config().issuer.starts_with("https://")
}

/// The login form's hidden fields: the request's parameters, the CSRF token, and the sealed
/// pending sign-in on the code step.
fn hidden(
    state: &AppState,
    authorization: &Authorization,
    cookie: &LoginCookie,
    pending: Option<String>,
) -> Vec<(&'static str, String)> {
    let mut fields = authorization.carried.clone();
    fields.push(("csrf", cookie.token(state.master())));
    if let Some(pending) = pending {
        fields.push(("pending", pending));
    }
    fields
}

fn code_step(
    state: &AppState,
    authorization: &Authorization,
    cookie: &LoginCookie,
    username: &str,
) -> Response {
    let pending = Pending {
        username: username.to_owned(),
        client_id: authorization.client.client_id.clone(),
        csrf: cookie.token(state.master()),
        expires_at: crate::now() + PENDING_LIFETIME,
    };
    let sealed = serde_json::to_vec(&pending)
        .ok()
        .and_then(|bytes| state.master().seal(PENDING_CONTEXT, &bytes).ok());
    let Some(sealed) = sealed else {
        return page::error(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE);
    };
    let hidden = hidden(state, authorization, cookie, Some(sealed));
    page::page(
        StatusCode::OK,
        "Enter your code",
        &page::code_form(&page::Form {
            client_name: &authorization.client.name,
            hidden: &hidden,
            error: None,
            username: None,
        }),
        None,
    )
}

fn open_pending(
    state: &AppState,
    sealed: &str,
    authorization: &Authorization,
    cookie: &LoginCookie,
) -> Option<Pending> {
    let bytes = state.master().open(PENDING_CONTEXT, sealed).ok()?;
    let pending: Pending = serde_json::from_slice(&bytes).ok()?;
    let master = state.master();
    (pending.expires_at > crate::now()
        && pending.client_id == authorization.client.client_id
        && cookie.accepts(master, Some(&pending.csrf)))
    .then_some(pending)
}

/// What a code for `user` grants the client: the requested scopes narrowed to what the client
/// and the user hold, for the requested resource; or the error to send the browser back with.
fn code_grant(
    state: &AppState,
    authorization: &Authorization,
    user: &User,
    signed_in: (&str, i64),
    browser_session_id: &str,
) -> Result<Issued, Box<Response>> {
    let client = &authorization.client;
    let requested = authorization.scopes.clone();
    let scopes = crate::oauth::scopes::narrow(requested.as_deref(), &client.scopes_for(user));
    if requested.is_some_and(|r| !r.is_empty()) && scopes.is_empty() {
        return Err(Box::new(back(
            state,
            authorization,
            "invalid_scope",
            "none of the requested scopes may be granted",
        )));
    }
    let target = audience::target(
        state.config(),
        authorization.resource.as_deref(),
        &client.scopes,
        scopes,
    )
    .map_err(|_| {
        Box::new(back(
            state,
            authorization,
            "invalid_target",
            "the scopes do not fit the resource",
        ))
    })?;
    let (amr, auth_time) = signed_in;
    Ok(Issued {
        client_id: client.client_id.clone(),
        user_id: user.user_id.clone(),
        redirect_uri: authorization.redirect_uri.clone(),
        code_challenge: authorization.code_challenge.clone(),
        scope: crate::oauth::scopes::join(&target.scopes),
        audience: target.audiences.join(" "),
        nonce: authorization.nonce.clone(),
        openid_scope: authorization.openid_scopes.join(" "),
        amr: amr.to_owned(),
        auth_time,
        browser_session_id: Some(browser_session_id.to_owned()),
    })
}

/// The browser back at the client with `error`.
fn back(
    state: &AppState,
    authorization: &Authorization,
    error: &'static str,
    description: &str,
) -> Response {
    refusal(
        state,
        Refused::Redirect {
            redirect_uri: authorization.redirect_uri.clone(),
            error,
            description: description.to_owned(),
            state: authorization.state.clone(),
        },
    )
}

/// The browser back at the client with `code`.
fn with_code(state: &AppState, authorization: &Authorization, code: &str) -> Response {
    let issuer = state.config().issuer.as_str();
    let mut params = vec![("code", code), ("iss", issuer)];
    if let Some(client_state) = &authorization.state {
        params.push(("state", client_state));
    }
    redirect(request::redirect_to(&authorization.redirect_uri, &params))
}

fn session_limits(state: &AppState) -> browser_sessions::Limits {
    let lifetimes = &state.config().lifetimes;
    browser_sessions::Limits {
        idle: lifetimes.session_idle,
        max: lifetimes.session_max,
    }
}

/// Single sign-on: the browser's live sign-in session, if it may stand for a new sign-in for
/// this request (no `prompt=login`, within `max_age`, its user enabled and admitted by the
/// client), and that user.
///
/// Never for a public client returning to a native app's URI: any app on the device can send
/// the browser here with that client's id and a loopback or private-use redirect URI it
/// listens on, and its own PKCE challenge; a code given without the user seeing a page would
/// be its tokens (RFC 8252 §8.6). The user signs in again instead.
async fn live_session(
    state: &AppState,
    headers: &HeaderMap,
    authorization: &Authorization,
) -> Result<Option<(BrowserSession, User)>, sqlx::Error> {
    let client = &authorization.client;
    if authorization.prompt_login
        || (client.token_endpoint_auth_method.is_public()
            && crate::oauth::registration::is_native(&authorization.redirect_uri))
    {
        return Ok(None);
    }
    let Some(cookie) = cookies::SESSION.read(headers, secure(state)) else {
        return Ok(None);
    };
    let pool = &state.db().pool;
    let limits = session_limits(state);
    let Some(session) = browser_sessions::resume(pool, state.master(), &cookie, limits).await?
    else {
        return Ok(None);
    };
    if authorization
        .max_age
        .is_some_and(|max_age| max_age == 0 || crate::now() - session.auth_time > max_age)
    {
        return Ok(None);
    }
    let user = users::get(pool, &session.user_id).await?;
    Ok(user
        .filter(|u| !u.disabled && authorization.client.admits(u.tenant.as_deref()))
        .map(|user| (session, user)))
}

/// A code from a live sign-in session, without a login page.
async fn single_sign_on(
    state: &AppState,
    authorization: &Authorization,
    session: &BrowserSession,
    user: &User,
) -> Response {
    let issued = match code_grant(
        state,
        authorization,
        user,
        (&session.amr, session.auth_time),
        &session.id,
    ) {
        Ok(issued) => issued,
        Err(response) => return *response,
    };
    let stored = async {
        let mut tx = state.db().pool.begin().await?;
        let code = codes::issue(&mut tx, state.master(), &issued).await?;
        tx.commit().await?;
        Ok::<_, FinishError>(code)
    }
    .await;
    match stored {
        Ok(code) => with_code(state, authorization, &code),
        Err(error) => {
            tracing::error!(%error, "single sign-on");
            page::error(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE)
        }
    }
}

/// The sign-in succeeded: a new sign-in session (a new cookie: whatever the browser held
/// before is ended), a code for the client, and the browser sent back with it.
async fn finish(
    state: &AppState,
    origin: &Origin,
    headers: &HeaderMap,
    authorization: &Authorization,
    signed_in: Authenticated<'_>,
) -> Response {
    let client = &authorization.client;
    let user = &signed_in.record.user;
    let subject = signed_in.subject();
    let amr = signed_in.amr.join(" ");
    let secure = secure(state);
    let previous = cookies::SESSION.read(headers, secure);
    let stored = async {
        let mut tx = state.db().pool.begin().await?;
        signed_in.confirm(&mut tx).await?;
        let (session, cookie) = browser_sessions::open(
            &mut tx,
            state.master(),
            &user.user_id,
            &amr,
            session_limits(state),
            previous.as_deref(),
        )
        .await?;
        browser_sessions::cap(&mut tx, &user.user_id, state.config().max_sessions).await?;
        let issued = match code_grant(
            state,
            authorization,
            user,
            (&amr, session.auth_time),
            &session.id,
        ) {
            Ok(issued) => issued,
            Err(response) => return Ok(Err(response)),
        };
        let code = codes::issue(&mut tx, state.master(), &issued).await?;
        audit::append(
            &mut tx,
            state.master(),
            origin,
            &Event {
                actor: &subject,
                action: Action::LoginSucceeded,
                target: &subject,
                outcome: "success",
                detail: json!({"client_id": client.client_id, "amr": signed_in.amr, "via": "authorization_code", "sid": session.id}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok::<_, FinishError>(Ok((code, cookie)))
    }
    .await;
    match stored {
        Ok(Ok((code, cookie))) => {
            signed_in.succeeded().await;
            let mut response = with_code(state, authorization, &code);
            let set = cookies::SESSION.set(&cookie, state.config().lifetimes.session_max, secure);
            if let Ok(value) = HeaderValue::from_str(&set) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Ok(Err(response)) => *response,
        Err(FinishError::Login(LoginError::Refused)) => {
            page::error(StatusCode::UNAUTHORIZED, BAD_LOGIN)
        }
        Err(error) => {
            tracing::error!(%error, "login page");
            page::error(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE)
        }
    }
}

/// Why a successful sign-in could not be turned into a code.
#[derive(Debug, thiserror::Error)]
enum FinishError {
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error(transparent)]
    Code(#[from] codes::CodeError),
    #[error(transparent)]
    Session(#[from] browser_sessions::BrowserSessionError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn refusal(state: &AppState, refused: Refused) -> Response {
    match refused {
        Refused::Page(message) => page::error(StatusCode::BAD_REQUEST, &message),
        Refused::Redirect {
            redirect_uri,
            error,
            description,
            state: client_state,
        } => {
            let issuer = state.config().issuer.as_str();
            let mut params = vec![
                ("error", error),
                ("error_description", description.as_str()),
                ("iss", issuer),
            ];
            if let Some(client_state) = &client_state {
                params.push(("state", client_state));
            }
            redirect(request::redirect_to(&redirect_uri, &params))
        }
    }
}

fn redirect(location: Option<String>) -> Response {
    let location = location.and_then(|l| HeaderValue::from_str(&l).ok());
    let Some(location) = location else {
        return page::error(StatusCode::BAD_REQUEST, "The redirect URI cannot be used.");
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
