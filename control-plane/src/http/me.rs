//! `/v1/me/…`: a signed-in user's own sessions, password and second factor. Only a user's
//! control-plane token that carries scope `self` (from a client allowed self-service) opens it.
//! Changing the password or the second factor needs the current password again.

use super::error::{ApiError, OAuthCode};
use super::extractors::Bearer;
use super::json::{JsonBody, PathParam};
use super::oauth::caller;
use crate::audit::action::Action;
use crate::audit::{self, Event, Origin};
use crate::identity::sessions::{self, revocations};
use crate::identity::users;
use crate::oauth::audience::{Accept, SELF_SCOPE};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use portcullis_authz::claims::Subject;
use serde::Deserialize;
use serde_json::{json, Value};

/// The calling user's id and the session of their token.
fn me(state: &AppState, token: &Bearer) -> Result<(String, Option<String>), ApiError> {
    let claims = caller(state, &token.0, Accept::ControlPlane)?;
    if !claims.scopes.iter().any(|s| s == SELF_SCOPE) {
        return Err(ApiError::oauth(
            OAuthCode::InsufficientScope,
            "/v1/me needs a token with scope self (from a client allowed self-service)",
        ));
    }
    match claims.sub {
        Subject::User(id) => Ok((id, claims.sid)),
        Subject::Client(_) => Err(ApiError::oauth(
            OAuthCode::InsufficientScope,
            "only users have a /v1/me",
        )),
    }
}

/// Re-authentication for a change to the account's credentials: the current password and, when
/// TOTP is enrolled, a current one-time code (a stolen access token plus a phished password must
/// not be enough to remove the second factor). Throttled like a login, so a stolen access token
/// does not become an unlimited password oracle.
async fn reauthenticate(
    state: &AppState,
    origin: &Origin,
    user_id: &str,
    password: &str,
    otp: Option<&str>,
) -> Result<users::Credentials, ApiError> {
    let user = users::get(&state.db().pool, user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let now = crate::now();
    let attempt = state
        .throttle()
        .start(&user.username, &origin.client_ip, now)
        .await
        .map_err(ApiError::throttled)?;
    let record = users::credentials(&state.db().pool, &user.username)
        .await?
        .ok_or(ApiError::NotFound)?;
    let verified = state
        .hasher()
        .verify(Some(&record.password_hash), password)
        .await?;
    let wrong = || {
        ApiError::oauth(
            OAuthCode::InvalidGrant,
            "the current password or one-time code is wrong",
        )
    };
    let subject = format!("user:{user_id}");
    // Both refusals do the same work (a code-cap read, a failure, an audit row), so that their
    // timing does not tell a right password from a wrong one.
    let refuse = async |action: Action, wrong_code: bool| -> Result<(), ApiError> {
        attempt.failed(now).await;
        if wrong_code {
            attempt.otp_failed(now).await;
        }
        state
            .audit()
            .record(
                origin,
                &Event {
                    actor: &subject,
                    action,
                    target: &subject,
                    outcome: "failure",
                    detail: json!({"reauthentication": true}),
                },
            )
            .await?;
        Ok(())
    };
    if !verified.matches {
        let _ = attempt.otp_allowed(now).await;
        refuse(Action::LoginFailed, false).await?;
        return Err(wrong());
    }
    if let Some(sealed) = &record.totp_secret {
        let secret = state.master().open(&format!("totp:{user_id}"), sealed)?;
        let step = match otp {
            Some(otp) if attempt.otp_allowed(now).await => {
                crate::identity::totp::verify(&secret, otp, now, record.totp_last_step)
            }
            _ => None,
        };
        let claimed = match step {
            Some(step) => users::claim_totp_step(&state.db().pool, user_id, step).await?,
            None => false,
        };
        if !claimed {
            refuse(Action::MfaFailed, otp.is_some()).await?;
            return Err(wrong());
        }
    }
    attempt.succeeded(now).await;
    Ok(record)
}

/// Finishes a change to the user's credentials in `tx`: every session but `current` ends (their
/// access tokens revoked at the edge), `action` is audited with the count, and the bundle moves.
/// Returns how many sessions ended.
async fn end_other_sessions(
    mut tx: sqlx::Transaction<'static, sqlx::Any>,
    state: &AppState,
    origin: &Origin,
    user_id: &str,
    current: Option<&str>,
    action: Action,
) -> Result<usize, ApiError> {
    let longest = state.config().lifetimes.longest_access();
    let ended = sessions::end_others(&mut tx, user_id, current, longest).await?;
    crate::bundle::bump(&mut tx).await?;
    record(
        &mut tx,
        state.master(),
        origin,
        user_id,
        action,
        json!({"sessions_ended": ended}),
    )
    .await?;
    tx.commit().await?;
    state.republish().await?;
    Ok(ended)
}

async fn record(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    master: &crate::keys::secrets::MasterKey,
    origin: &Origin,
    user_id: &str,
    action: Action,
    detail: Value,
) -> Result<(), ApiError> {
    let subject = format!("user:{user_id}");
    audit::append(
        tx,
        master,
        origin,
        &Event {
            actor: &subject,
            action,
            target: &subject,
            outcome: "success",
            detail,
        },
    )
    .await?;
    Ok(())
}

/// `GET /v1/me/sessions`.
#[utoipa::path(
    get,
    path = "/v1/me/sessions",
    operation_id = "list_own_sessions",
    tag = "me",
    security(("bearer" = [])),
    responses((status = 200, description = "Own live sessions", body = serde_json::Value), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn list_sessions(
    State(state): State<AppState>,
    bearer: Bearer,
) -> Result<Json<Value>, ApiError> {
    let (user_id, current) = me(&state, &bearer)?;
    let found = sessions::live(&state.db().pool, Some(&user_id), None).await?;
    Ok(Json(json!({"sessions": found, "current": current})))
}

/// `DELETE /v1/me/sessions/{id}`.
#[utoipa::path(
    delete,
    path = "/v1/me/sessions/{id}",
    operation_id = "revoke_own_session",
    tag = "me",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Ended"), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn revoke_session(
    State(state): State<AppState>,
    origin: Origin,
    bearer: Bearer,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    let (user_id, _) = me(&state, &bearer)?;
    let owned = sessions::live(&state.db().pool, Some(&user_id), None)
        .await?
        .iter()
        .any(|s| s.session_id == id);
    if !owned {
        return Err(ApiError::NotFound);
    }
    let mut tx = state.db().pool.begin().await?;
    sessions::revoke(&mut tx, &id).await?;
    revocations::session(&mut tx, &id, state.config().lifetimes.longest_access()).await?;
    crate::bundle::bump(&mut tx).await?;
    record(
        &mut tx,
        state.master(),
        &origin,
        &user_id,
        Action::SessionRevoked,
        json!({"sid": id}),
    )
    .await?;
    tx.commit().await?;
    state.republish().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A password change. It always ends the user's other sessions; `end_other_sessions` is
/// accepted for older clients and may not be `false`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    /// Required when TOTP is enrolled.
    #[serde(default)]
    current_otp: Option<String>,
    new_password: String,
    #[serde(default)]
    end_other_sessions: Option<bool>,
}

/// `POST /v1/me/password`.
#[utoipa::path(
    post,
    path = "/v1/me/password",
    tag = "me",
    security(("bearer" = [])),
    request_body = PasswordChange,
    responses((status = 200, description = "Changed", body = serde_json::Value), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn change_password(
    State(state): State<AppState>,
    origin: Origin,
    bearer: Bearer,
    JsonBody(body): JsonBody<PasswordChange>,
) -> Result<Json<Value>, ApiError> {
    let (user_id, current) = me(&state, &bearer)?;
    if body.end_other_sessions == Some(false) {
        return Err(ApiError::BadRequest(
            "a password change always ends the other sessions".into(),
        ));
    }
    reauthenticate(
        &state,
        &origin,
        &user_id,
        &body.current_password,
        body.current_otp.as_deref(),
    )
    .await?;
    crate::identity::passwords::check_policy(&body.new_password)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let hash = state.hasher().hash(&body.new_password).await?;
    let mut tx = state.db().pool.begin().await?;
    users::set_password_hash(&mut tx, &user_id, &hash).await?;
    let ended = end_other_sessions(
        tx,
        &state,
        &origin,
        &user_id,
        current.as_deref(),
        Action::PasswordChanged,
    )
    .await?;
    Ok(Json(json!({"sessions_ended": ended})))
}

/// Re-authentication for TOTP changes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reauth {
    current_password: String,
    /// Required when TOTP is enrolled (removing it).
    #[serde(default)]
    current_otp: Option<String>,
}

/// `POST /v1/me/totp`: starts enrolment; the secret becomes active once a code confirms it.
#[utoipa::path(
    post,
    path = "/v1/me/totp",
    tag = "me",
    security(("bearer" = [])),
    request_body = Reauth,
    responses((status = 200, description = "The secret and otpauth URI to confirm", body = serde_json::Value), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn enroll_totp(
    State(state): State<AppState>,
    origin: Origin,
    bearer: Bearer,
    JsonBody(body): JsonBody<Reauth>,
) -> Result<Json<Value>, ApiError> {
    let (user_id, _) = me(&state, &bearer)?;
    let credentials = reauthenticate(
        &state,
        &origin,
        &user_id,
        &body.current_password,
        body.current_otp.as_deref(),
    )
    .await?;
    if credentials.totp_secret.is_some() {
        return Err(ApiError::Conflict(
            "a second factor is already enrolled".into(),
        ));
    }
    let secret = crate::keys::secrets::random_bytes::<20>()?;
    let sealed = state.master().seal(&format!("totp:{user_id}"), &secret)?;
    let mut tx = state.db().pool.begin().await?;
    users::set_pending_totp(&mut tx, &user_id, &sealed).await?;
    record(
        &mut tx,
        state.master(),
        &origin,
        &user_id,
        Action::MfaEnrolmentStarted,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({
        "secret": crate::identity::totp::base32(&secret),
        "otpauth_uri": crate::identity::totp::uri(&secret, "Portcullis", &credentials.user.username),
    })))
}

/// A code confirming enrolment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Confirm {
    code: String,
}

/// `POST /v1/me/totp/confirm`.
#[utoipa::path(
    post,
    path = "/v1/me/totp/confirm",
    tag = "me",
    security(("bearer" = [])),
    request_body = Confirm,
    responses((status = 200, description = "Enabled", body = serde_json::Value), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn confirm_totp(
    State(state): State<AppState>,
    origin: Origin,
    bearer: Bearer,
    JsonBody(body): JsonBody<Confirm>,
) -> Result<Json<Value>, ApiError> {
    let (user_id, _) = me(&state, &bearer)?;
    let pending = users::pending_totp(&state.db().pool, &user_id)
        .await?
        .ok_or_else(|| ApiError::BadRequest("no enrolment in progress".into()))?;
    let secret = state.master().open(&format!("totp:{user_id}"), &pending)?;
    let step = crate::identity::totp::verify(&secret, &body.code, crate::now(), None)
        .ok_or_else(|| ApiError::BadRequest("the code does not match".into()))?;
    let mut tx = state.db().pool.begin().await?;
    users::confirm_totp(&mut tx, &user_id, step).await?;
    record(
        &mut tx,
        state.master(),
        &origin,
        &user_id,
        Action::MfaEnrolled,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({"totp_enabled": true})))
}

/// `DELETE /v1/me/totp` (body: current password).
#[utoipa::path(
    delete,
    path = "/v1/me/totp",
    tag = "me",
    security(("bearer" = [])),
    request_body = Reauth,
    responses((status = 200, description = "Removed", body = serde_json::Value), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn remove_totp(
    State(state): State<AppState>,
    origin: Origin,
    bearer: Bearer,
    JsonBody(body): JsonBody<Reauth>,
) -> Result<Json<Value>, ApiError> {
    let (user_id, current) = me(&state, &bearer)?;
    reauthenticate(
        &state,
        &origin,
        &user_id,
        &body.current_password,
        body.current_otp.as_deref(),
    )
    .await?;
    let mut tx = state.db().pool.begin().await?;
    users::remove_totp(&mut tx, &user_id).await?;
    let ended = end_other_sessions(
        tx,
        &state,
        &origin,
        &user_id,
        current.as_deref(),
        Action::MfaRemoved,
    )
    .await?;
    Ok(Json(
        json!({"totp_enabled": false, "sessions_ended": ended}),
    ))
}
