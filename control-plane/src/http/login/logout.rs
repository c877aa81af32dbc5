//! RP-Initiated Logout 1.0 (`GET|POST /oauth2/logout`): ends the browser's sign-in session and
//! every session opened through it, whose access tokens the edge then rejects (their `sid`s are
//! revoked in the next bundle), and clears the session cookie.
//!
//! The rules and their reasons:
//! - A logout request is a link any site can make a browser follow. One with a valid
//!   `id_token_hint` of the browser's own sign-in (an ID token this server issued for that
//!   sign-in: one of its clients asked) is carried out at once; any other, a hint of another
//!   user's or another sign-in's included, is confirmed by the user on a page of our own, whose
//!   form carries the login pages' CSRF token (§2: the OP asks when the hint is not of the
//!   current session; an attacker's own ID token must not sign visitors out).
//! - The browser is sent back only to a `post_logout_redirect_uri` that the client named by the
//!   hint (or by `client_id`) registered, compared exactly, with `state` (§3); anything else
//!   gets a page and no redirect, so logout is no open redirector.
//! - With a hint, the sign-in the hint names (`sid`) is ended too when it is that user's, even
//!   if this browser no longer holds its cookie.

use super::csrf::LoginCookie;
use super::{cookies, page, redirect, request, secure};
use crate::audit::action::Action;
use crate::audit::{self, Event, Origin};
use crate::http::extractors::OAuthForm;
use crate::identity::{browser_sessions, sessions};
use crate::oauth::clients;
use crate::oauth::id_token::{self, Hint};
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;
use std::collections::HashMap;

/// The parameters a confirmation form carries to its POST.
const CARRIED: [&str; 4] = [
    "id_token_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
];
const UNAVAILABLE: &str = "Sign-out is unavailable right now; please try again in a moment.";

/// `GET /oauth2/logout`.
#[utoipa::path(
    get,
    path = "/oauth2/logout",
    tag = "oauth",
    params(
        ("id_token_hint" = Option<String>, Query, description = "An ID token this server issued to the client asking"),
        ("client_id" = Option<String>, Query, description = "The client asking (when there is no hint)"),
        ("post_logout_redirect_uri" = Option<String>, Query, description = "One the client registered; needs the hint or client_id"),
        ("state" = Option<String>, Query, description = "Returned as given"),
    ),
    responses(
        (status = 200, description = "Signed out (a page), or a page asking the user to confirm when there is no hint", content_type = "text/html"),
        (status = 303, description = "Signed out, back at the registered post_logout_redirect_uri"),
        (status = 400, description = "An error page: the hint, the client or the redirect URI is not known good", content_type = "text/html"),
    )
)]
pub async fn logout_get(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match request::parameters(query.unwrap_or_default().as_bytes()) {
        Ok(params) => logout(&state, &origin, &headers, &params, false).await,
        Err(name) => page::error(
            StatusCode::BAD_REQUEST,
            &format!("The request repeats the parameter {name}."),
        ),
    }
}

/// `POST /oauth2/logout`: the same request as a form, or the confirmation page's answer.
#[utoipa::path(
    post,
    path = "/oauth2/logout",
    tag = "oauth",
    request_body(content = serde_json::Value, content_type = "application/x-www-form-urlencoded", description = "The parameters of GET, or the confirmation form (with `csrf`)"),
    responses(
        (status = 200, description = "Signed out, or the confirmation page", content_type = "text/html"),
        (status = 303, description = "Signed out, back at the registered post_logout_redirect_uri"),
        (status = 400, description = "An error page", content_type = "text/html"),
        (status = 403, description = "The confirmation form is stale or not from this server (CSRF)", content_type = "text/html"),
    )
)]
pub async fn logout_post(
    State(state): State<AppState>,
    origin: Origin,
    form: Result<OAuthForm, crate::http::error::ApiError>,
) -> Response {
    let Ok(form) = form else {
        return page::error(
            StatusCode::BAD_REQUEST,
            "The sign-out form could not be read.",
        );
    };
    let confirmed = match form.get("csrf") {
        None => false,
        Some(token) => {
            let cookie = LoginCookie::sent(&form.headers, secure(&state));
            if !cookie.is_some_and(|c| c.accepts(state.master(), Some(token))) {
                return page::error(
                    StatusCode::FORBIDDEN,
                    "This sign-out form has expired. Please try again.",
                );
            }
            true
        }
    };
    logout(&state, &origin, &form.headers, &form.params, confirmed).await
}

async fn logout(
    state: &AppState,
    origin: &Origin,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    confirmed: bool,
) -> Response {
    let get = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let refused = |message: &str| page::error(StatusCode::BAD_REQUEST, message);
    let hint = match get("id_token_hint") {
        None => None,
        Some(token) => {
            let published = state.published();
            match id_token::verify_hint(&published.id_tokens.keys, &state.config().issuer, token) {
                Some(hint) => Some(hint),
                None => return refused("The sign-out request is not valid."),
            }
        }
    };
    let client_id = match (
        hint.as_ref().map(|h| h.client_id.as_str()),
        get("client_id"),
    ) {
        (Some(hinted), Some(named)) if hinted != named => {
            return refused("The sign-out request names two applications.")
        }
        (hinted, named) => hinted.or(named),
    };
    let return_to = match get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = match client_id {
                None => false,
                Some(id) => match clients::get(&state.db().pool, id).await {
                    Ok(client) => client.is_some_and(|c| {
                        !c.disabled && c.post_logout_redirect_uris.iter().any(|r| r == uri)
                    }),
                    Err(error) => {
                        tracing::error!(%error, "logout client");
                        return page::error(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE);
                    }
                },
            };
            if !registered {
                return refused(
                    "The application asked to return to an address it has not registered.",
                );
            }
            Some(uri.to_owned())
        }
    };
    if !confirmed {
        match hint_is_of_this_sign_in(state, headers, hint.as_ref()).await {
            Ok(true) => {}
            Ok(false) => return confirmation(state, headers, params),
            Err(error) => {
                tracing::error!(%error, "logout session");
                return page::error(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE);
            }
        }
    }
    if let Err(error) = end(state, origin, headers, hint.as_ref()).await {
        tracing::error!(%error, "logout");
        return page::error(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE);
    }
    let mut response = match return_to {
        Some(uri) => {
            let client_state: Vec<(&str, &str)> =
                get("state").map(|s| vec![("state", s)]).unwrap_or_default();
            redirect(request::redirect_to(&uri, &client_state))
        }
        None => page::page(
            StatusCode::OK,
            "Signed out",
            "<h1>Signed out</h1><p>You are signed out. You may close this window.</p>",
            None,
        ),
    };
    let cleared = cookies::SESSION.set("", 0, secure(state));
    if let Ok(value) = HeaderValue::from_str(&cleared) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Whether `hint` was issued for the sign-in this browser holds (or the browser holds none, so
/// that only the hint's own sign-in can end).
async fn hint_is_of_this_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    hint: Option<&Hint>,
) -> Result<bool, sqlx::Error> {
    let Some(hint) = hint else {
        return Ok(false);
    };
    let Some(cookie) = cookies::SESSION.read(headers, secure(state)) else {
        return Ok(true);
    };
    Ok(
        match browser_sessions::of_cookie(&state.db().pool, state.master(), &cookie).await? {
            None => true,
            Some((id, user_id)) => user_id == hint.user_id && hint.sid.as_deref() == Some(&id),
        },
    )
}

/// The page that asks the user to confirm a logout nobody proved a client asked for.
fn confirmation(
    state: &AppState,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Response {
    let Ok(cookie) = LoginCookie::of(headers, secure(state)) else {
        return page::error(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE);
    };
    let mut hidden: Vec<(&str, String)> = CARRIED
        .iter()
        .filter_map(|name| params.get(*name).map(|value| (*name, value.clone())))
        .collect();
    hidden.push(("csrf", cookie.token(state.master())));
    page::page(
        StatusCode::OK,
        "Sign out",
        &page::logout_form(&hidden),
        cookie.set_cookie.clone(),
    )
}

/// Ends the browser's sign-in (its cookie) and the one the hint names, if it is the hint's
/// user's, with every session opened through them; revokes their tokens at the edge.
async fn end(
    state: &AppState,
    origin: &Origin,
    headers: &HeaderMap,
    hint: Option<&Hint>,
) -> Result<(), EndError> {
    let master = state.master();
    let longest = state.config().lifetimes.longest_access();
    let mut tx = state.db().pool.begin().await?;
    let mut ended: Vec<(String, String)> = Vec::new();
    if let Some(cookie) = cookies::SESSION.read(headers, secure(state)) {
        ended.extend(browser_sessions::end_by_cookie(&mut tx, master, &cookie).await?);
    }
    if let Some(Hint {
        user_id,
        sid: Some(sid),
        ..
    }) = hint
    {
        if browser_sessions::end_of_user(&mut tx, sid, user_id).await? {
            ended.push((sid.clone(), user_id.clone()));
        }
    }
    if ended.is_empty() {
        tx.commit().await?;
        return Ok(());
    }
    for (sign_in, user_id) in &ended {
        let sessions_ended = sessions::end_for_browser_session(&mut tx, sign_in, longest).await?;
        let subject = format!("user:{user_id}");
        audit::append(
            &mut tx,
            master,
            origin,
            &Event {
                actor: &subject,
                action: Action::LoggedOut,
                target: &subject,
                outcome: "success",
                detail: json!({"sign_in": sign_in, "client_id": hint.map(|h| &h.client_id), "sessions_ended": sessions_ended}),
            },
        )
        .await?;
    }
    crate::bundle::bump(&mut tx).await?;
    tx.commit().await?;
    state.republish().await?;
    Ok(())
}

/// Why a logout could not be carried out.
#[derive(Debug, thiserror::Error)]
enum EndError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Publish(#[from] crate::bundle::AssembleError),
}
