//! OAuth 2.0 endpoints: metadata (RFC 8414), JWKS (RFC 7517), token (RFC 6749), revocation
//! (RFC 7009), introspection (RFC 7662) and userinfo.

use super::error::{ApiError, OAuthCode};
use super::extractors::{
    authenticate_client, authenticate_public_or_client, authenticate_token_client, may_examine,
    Bearer, OAuthForm, INTROSPECT_SCOPE,
};
use crate::audit::action::Action;
use crate::audit::{self, Event, Origin};
use crate::identity::login::Login;
use crate::identity::sessions::{self, revocations, Refresh};
use crate::identity::users;
use crate::oauth::audience::{self, Accept};
use crate::oauth::clients::Client;
use crate::oauth::grant::GrantType;
use crate::oauth::tokens::{self, Grant};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use portcullis_authz::claims::{AccessClaims, Subject};
use serde_json::{json, Value};
use std::time::Instant;

/// `GET /.well-known/oauth-authorization-server`.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "oauth",
    responses((status = 200, description = "RFC 8414 metadata", body = serde_json::Value), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn metadata(State(state): State<AppState>) -> Json<Value> {
    Json(server_metadata(&state.config().issuer))
}

/// `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §3): the RFC 8414
/// document with the members an OpenID provider adds.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "oauth",
    responses((status = 200, description = "OpenID Connect Discovery 1.0 metadata", body = serde_json::Value), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn openid_configuration(State(state): State<AppState>) -> Json<Value> {
    let mut document = server_metadata(&state.config().issuer);
    let algorithms: Vec<&str> = crate::oauth::registration::IdTokenAlg::ALL
        .iter()
        .map(|alg| alg.as_str())
        .collect();
    if let Value::Object(members) = &mut document {
        for (name, value) in [
            ("subject_types_supported", json!(["public"])),
            ("id_token_signing_alg_values_supported", json!(algorithms)),
            (
                "scopes_supported",
                json!(crate::oauth::id_token::OPENID_SCOPES),
            ),
            (
                "claims_supported",
                json!([
                    "sub",
                    "iss",
                    "aud",
                    "azp",
                    "exp",
                    "iat",
                    "auth_time",
                    "nonce",
                    "amr",
                    "sid",
                    "at_hash",
                    "preferred_username",
                    "updated_at",
                    "email",
                    "email_verified"
                ]),
            ),
            ("claims_parameter_supported", json!(false)),
            ("request_parameter_supported", json!(false)),
            // Discovery §3: absent means true.
            ("request_uri_parameter_supported", json!(false)),
            ("prompt_values_supported", json!(["none", "login"])),
        ] {
            members.insert(name.into(), value);
        }
    }
    Json(document)
}

/// The authorization server's metadata (RFC 8414 §2).
fn server_metadata(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "userinfo_endpoint": format!("{issuer}/oauth2/userinfo"),
        "grant_types_supported": GrantType::ALL,
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "end_session_endpoint": format!("{issuer}/oauth2/logout"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "token_endpoint_auth_methods_supported": crate::oauth::registration::AuthMethod::ALL,
        "revocation_endpoint_auth_methods_supported": crate::oauth::registration::AuthMethod::ALL,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA"],
        "service_documentation": format!("{issuer}/openapi.json"),
    })
}

/// `GET /.well-known/jwks.json`: the published keys, public parts only.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "oauth",
    responses((status = 200, description = "RFC 7517 key set", body = serde_json::Value), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut response = Json(state.published().public_jwks.clone()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(response)
}

fn no_store(body: Value) -> Response {
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn requested_scopes(form: &OAuthForm) -> Result<Option<Vec<String>>, ApiError> {
    form.get("scope")
        .map(crate::oauth::scopes::parse)
        .transpose()
        .map_err(|e| ApiError::oauth(OAuthCode::InvalidScope, e.to_string()))
}

fn narrowed(requested: Option<Vec<String>>, allowed: &[String]) -> Result<Vec<String>, ApiError> {
    let granted = crate::oauth::scopes::narrow(requested.as_deref(), allowed);
    if requested.is_some_and(|r| !r.is_empty()) && granted.is_empty() {
        return Err(ApiError::oauth(
            OAuthCode::InvalidScope,
            "none of the requested scopes may be granted",
        ));
    }
    Ok(granted)
}

fn signer(state: &AppState) -> Result<crate::oauth::tokens::TokenKey, ApiError> {
    state
        .published()
        .signer
        .clone()
        .ok_or_else(|| ApiError::Unavailable("no active signing key".into()))
}

/// `POST /oauth2/token`.
#[utoipa::path(
    post,
    path = "/oauth2/token",
    tag = "oauth",
    security(("clientBasic" = []), ()),
    request_body(content = crate::http::openapi::TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "OK", body = crate::http::openapi::TokenResponse), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn token(
    State(state): State<AppState>,
    origin: Origin,
    form: OAuthForm,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let grant = GrantType::from_name(form.require("grant_type")?);
    let client = authenticate_token_client(&state, &form, grant).await?;
    let Some(grant) = grant else {
        return Err(ApiError::oauth(
            OAuthCode::UnsupportedGrantType,
            "grant_type must be authorization_code, client_credentials, password or refresh_token",
        ));
    };
    if !client.grant_types.contains(&grant) {
        return Err(ApiError::oauth(
            OAuthCode::UnauthorizedClient,
            format!("this client may not use the {grant} grant"),
        ));
    }
    let response = match grant {
        GrantType::AuthorizationCode => {
            super::code_exchange::exchange(&state, &origin, &form, &client).await?
        }
        GrantType::ClientCredentials => client_credentials(&state, &origin, &form, &client).await?,
        GrantType::Password => password(&state, &origin, &form, &client).await?,
        GrantType::RefreshToken => refresh(&state, &origin, &form, &client).await?,
    };
    state
        .metrics()
        .token_issued(grant.as_str(), started.elapsed());
    Ok(no_store(response))
}

async fn client_credentials(
    state: &AppState,
    origin: &Origin,
    form: &OAuthForm,
    client: &Client,
) -> Result<Value, ApiError> {
    let scopes = narrowed(requested_scopes(form)?, &client.scopes)?;
    let target = audience::target(state.config(), form.get("resource"), &client.scopes, scopes)?;
    let scopes = target.scopes;
    let ttl = state.config().lifetimes.client_access;
    let subject = format!("client:{}", client.client_id);
    let issued = tokens::issue(
        &signer(state)?,
        state.config(),
        &Grant {
            sub: subject.clone(),
            client_id: &client.client_id,
            audiences: &target.audiences,
            scopes: &scopes,
            roles: &client.roles,
            tenant: client.tenant.as_deref(),
            amr: &[],
            sid: None,
            ttl,
        },
    )?;
    state.audit().record(
        origin,
        &Event {
            actor: &subject,
            action: Action::TokenIssued,
            target: &subject,
            outcome: "success",
            detail: json!({"grant": "client_credentials", "jti": issued.jti, "scope": crate::oauth::scopes::join(&scopes)}),
        },
    )
    .await?;
    Ok(json!({
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": crate::oauth::scopes::join(&scopes),
    }))
}

async fn password(
    state: &AppState,
    origin: &Origin,
    form: &OAuthForm,
    client: &Client,
) -> Result<Value, ApiError> {
    let username = form.require("username")?;
    let password = form.require("password")?;
    // Scope and resource are checked against the client before the password, so that their
    // refusal cannot confirm a right password.
    let requested = requested_scopes(form)?;
    let for_client = narrowed(requested.clone(), &client.scopes)?;
    audience::target(
        state.config(),
        form.get("resource"),
        &client.scopes,
        for_client,
    )?;
    let login = Login {
        state,
        origin,
        client,
    };
    let mut signed_in = login.password(username, password).await?;
    signed_in.second_factor(login, form.get("otp")).await?;
    let user = &signed_in.record.user;
    let subject = signed_in.subject();
    let amr = signed_in.amr.clone();
    let scopes = narrowed(requested, &client.scopes_for(user))?;
    let target = audience::target(state.config(), form.get("resource"), &client.scopes, scopes)?;
    let scopes = target.scopes;
    let mut tx = state.db().pool.begin().await?;
    signed_in.confirm(&mut tx).await?;
    let opened = open_session(
        state,
        &mut tx,
        client,
        user,
        &SessionGrant {
            audiences: &target.audiences,
            scopes: &scopes,
            amr: &amr,
            browser_session_id: None,
            openid_scope: "",
        },
    )
    .await?;
    audit::append(&mut tx, state.master(),
        origin,
        &Event {
            actor: &subject,
            action: Action::LoginSucceeded,
            target: &subject,
            outcome: "success",
            detail: json!({"client_id": client.client_id, "sid": opened.session_id, "amr": amr, "jti": opened.jti, "sessions_ended": opened.capped}),
        },
    )
    .await?;
    tx.commit().await?;
    signed_in.succeeded().await;
    opened.answer(state).await
}

/// A new session for a signed-in user and its first tokens, not yet committed.
pub(crate) struct Opened {
    /// The session (`sid`).
    pub session_id: String,
    /// The access token's `jti`.
    pub jti: String,
    /// How many of the user's older sessions the session cap ended.
    pub capped: usize,
    /// The access token (an ID token's `at_hash` is computed over it).
    pub access_token: String,
    body: Value,
}

impl Opened {
    /// Adds the ID token to the token response.
    pub fn with_id_token(mut self, id_token: String) -> Self {
        self.body["id_token"] = json!(id_token);
        self
    }

    /// The token response, once the transaction committed (republishing the bundle when the
    /// cap ended sessions).
    pub async fn answer(self, state: &AppState) -> Result<Value, ApiError> {
        if self.capped > 0 {
            state.republish().await?;
        }
        Ok(self.body)
    }
}

/// What a user's new session grants.
pub(crate) struct SessionGrant<'a> {
    /// Its audiences.
    pub audiences: &'a [String],
    /// Its scopes, already narrowed.
    pub scopes: &'a [String],
    /// How the user authenticated.
    pub amr: &'a [String],
    /// The browser sign-in it comes from, if any.
    pub browser_session_id: Option<&'a str>,
    /// The OpenID scopes granted (space separated; empty outside OpenID Connect).
    pub openid_scope: &'a str,
}

/// Opens a session of `user` through `client` for what `grant` says, applies the session cap,
/// and issues the access token and (if the client may refresh) the refresh token: what the
/// password and authorization code grants give.
pub(crate) async fn open_session(
    state: &AppState,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    client: &Client,
    user: &users::User,
    grant: &SessionGrant<'_>,
) -> Result<Opened, ApiError> {
    let SessionGrant {
        audiences,
        scopes,
        amr,
        browser_session_id,
        openid_scope,
    } = *grant;
    let scope_text = crate::oauth::scopes::join(scopes);
    let lifetimes = &state.config().lifetimes;
    let (session, refresh_token) = sessions::open(
        tx,
        state.master(),
        &sessions::Opening {
            user_id: &user.user_id,
            client_id: &client.client_id,
            scope: &scope_text,
            amr: &amr.join(" "),
            audience: &audiences.join(" "),
            lifetime: lifetimes.refresh,
            browser_session_id,
            openid_scope,
        },
    )
    .await?;
    let capped = sessions::cap(
        tx,
        &user.user_id,
        &session.session_id,
        state.config().max_sessions,
        lifetimes.longest_access(),
    )
    .await?;
    if capped > 0 {
        crate::bundle::bump(tx).await?;
    }
    let issued = tokens::issue(
        &signer(state)?,
        state.config(),
        &Grant {
            sub: format!("user:{}", user.user_id),
            client_id: &client.client_id,
            audiences,
            scopes,
            roles: &client.roles_for(user),
            tenant: user.tenant.as_deref(),
            amr,
            sid: Some(&session.session_id),
            ttl: lifetimes.access,
        },
    )?;
    let mut body = json!({
        "access_token": &issued.token,
        "token_type": "Bearer",
        "expires_in": lifetimes.access,
        "scope": scope_text,
    });
    if !openid_scope.is_empty() {
        // RFC 6749 §5.1: the granted scope, which the client asked for with its OpenID scopes.
        body["scope"] = json!([openid_scope, scope_text.as_str()].join(" ").trim());
    }
    if client.grant_types.contains(&GrantType::RefreshToken) {
        body["refresh_token"] = json!(refresh_token);
    }
    Ok(Opened {
        session_id: session.session_id,
        jti: issued.jti,
        capped,
        access_token: issued.token,
        body,
    })
}

async fn refresh(
    state: &AppState,
    origin: &Origin,
    form: &OAuthForm,
    client: &Client,
) -> Result<Value, ApiError> {
    let presented = form.require("refresh_token")?;
    let requested = requested_scopes(form)?;
    let lifetimes = &state.config().lifetimes;
    let mut tx = state.db().pool.begin().await?;
    let outcome = sessions::rotate(
        &mut tx,
        state.master(),
        presented,
        &client.client_id,
        lifetimes.refresh_grace,
    )
    .await?;
    let invalid = || ApiError::oauth(OAuthCode::InvalidGrant, "refresh token is invalid");
    let (session, next, action) = match outcome {
        Refresh::Rotated(session, next) => (session, next, Action::TokenRefreshed),
        Refresh::Invalid | Refresh::WrongClient => return Err(invalid()),
        // Told apart in the audit log: a retry is also what a thief within the window looks like.
        Refresh::Retried(session, next) => (session, next, Action::TokenRefreshRetried),
        Refresh::ReuseDetected(session) => {
            revocations::session(&mut tx, &session.session_id, lifetimes.longest_access()).await?;
            crate::bundle::bump(&mut tx).await?;
            let subject = format!("user:{}", session.user_id);
            audit::append(
                &mut tx,
                state.master(),
                origin,
                &Event {
                    actor: &format!("client:{}", client.client_id),
                    action: Action::TokenReuseDetected,
                    target: &subject,
                    outcome: "failure",
                    detail: json!({"sid": session.session_id, "family_revoked": true}),
                },
            )
            .await?;
            tx.commit().await?;
            state.metrics().refresh_reuse();
            state.republish().await?;
            return Err(invalid());
        }
    };
    let user = users::get(&mut *tx, &session.user_id).await?;
    let Some(user) = user.filter(|u| !u.disabled && client.admits(u.tenant.as_deref())) else {
        return Err(invalid());
    };
    // Scopes taken away from the user or the client since login are gone from refreshed tokens.
    let held = client.scopes_for(&user);
    let session_scopes: Vec<String> = crate::oauth::scopes::parse(&session.scope)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| held.contains(s))
        .collect();
    let scopes = narrowed(requested, &session_scopes)?;
    let target = audience::refreshed(
        state.config(),
        form.get("resource"),
        &session.audience,
        &client.scopes,
        scopes,
    )?;
    let scopes = target.scopes;
    let amr = crate::infra::db::words(&session.amr);
    let subject = format!("user:{}", user.user_id);
    let issued = tokens::issue(
        &signer(state)?,
        state.config(),
        &Grant {
            sub: subject.clone(),
            client_id: &client.client_id,
            audiences: &target.audiences,
            scopes: &scopes,
            roles: &client.roles_for(&user),
            tenant: user.tenant.as_deref(),
            amr: &amr,
            sid: Some(&session.session_id),
            ttl: lifetimes.access,
        },
    )?;
    audit::append(&mut tx, state.master(),
        origin,
        &Event {
            actor: &subject,
            action,
            target: &subject,
            outcome: "success",
            detail: json!({"client_id": client.client_id, "sid": session.session_id, "jti": issued.jti}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(json!({
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": lifetimes.access,
        "scope": crate::oauth::scopes::join(&scopes),
        "refresh_token": next,
    }))
}

/// `POST /oauth2/revoke` (RFC 7009): always 200 once the client is authenticated, whether or
/// not the token was known, so it cannot be used to probe tokens.
#[utoipa::path(
    post,
    path = "/oauth2/revoke",
    tag = "oauth",
    security(("clientBasic" = []), ()),
    request_body(content = crate::http::openapi::TokenHint, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Revoked, or not a token of this client (RFC 7009 §2.2); no body"), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn revoke(
    State(state): State<AppState>,
    origin: Origin,
    form: OAuthForm,
) -> Result<StatusCode, ApiError> {
    // A public client revokes its own tokens (an SPA signing out) by its client_id alone: what
    // it may revoke is only what was issued to it, which holding the token already allows.
    let client = authenticate_public_or_client(&state, &form, true).await?;
    if let Err(retry_after) = state.revocation_limit().check(&client.client_id) {
        state.metrics().throttled();
        return Err(ApiError::slow_down(retry_after));
    }
    let token = form.require("token")?;
    let actor = format!("client:{}", client.client_id);
    let longest = state.config().lifetimes.longest_access();
    if let Some(session) =
        sessions::by_refresh_token(&state.db().pool, state.master(), token).await?
    {
        if session.client_id == client.client_id {
            let mut tx = state.db().pool.begin().await?;
            if sessions::revoke(&mut tx, &session.session_id).await? {
                revocations::session(&mut tx, &session.session_id, longest).await?;
                crate::bundle::bump(&mut tx).await?;
                audit::append(
                    &mut tx,
                    state.master(),
                    &origin,
                    &Event {
                        actor: &actor,
                        action: Action::TokenRevoked,
                        target: &format!("user:{}", session.user_id),
                        outcome: "success",
                        detail: json!({"token_type": "refresh_token", "sid": session.session_id}),
                    },
                )
                .await?;
            }
            tx.commit().await?;
            state.republish().await?;
        }
        return Ok(StatusCode::OK);
    }
    let published = state.published();
    if let Ok(claims) = tokens::verify(&published, state.config(), Accept::Any, token) {
        if claims.client_id == client.client_id {
            let mut tx = state.db().pool.begin().await?;
            revocations::token(&mut tx, &claims.jti, claims.exp).await?;
            crate::bundle::bump(&mut tx).await?;
            audit::append(
                &mut tx,
                state.master(),
                &origin,
                &Event {
                    actor: &actor,
                    action: Action::TokenRevoked,
                    target: &claims.sub.to_string(),
                    outcome: "success",
                    detail: json!({"token_type": "access_token", "jti": claims.jti}),
                },
            )
            .await?;
            tx.commit().await?;
            state.republish().await?;
        }
    }
    Ok(StatusCode::OK)
}

async fn user_fields(state: &AppState, claims: &AccessClaims) -> Result<Value, ApiError> {
    let Subject::User(id) = &claims.sub else {
        return Ok(json!({}));
    };
    let Some(user) = users::get(&state.db().pool, id).await? else {
        return Ok(json!({}));
    };
    Ok(json!({
        "username": user.username,
        "email": user.email,
    }))
}

/// `POST /oauth2/introspect` (RFC 7662): inactive tokens get exactly `{"active": false}`.
#[utoipa::path(
    post,
    path = "/oauth2/introspect",
    tag = "oauth",
    security(("clientBasic" = []), ()),
    request_body(content = crate::http::openapi::TokenHint, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "RFC 7662 §2.2; inactive tokens are only `active: false`", body = serde_json::Value), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn introspect(
    State(state): State<AppState>,
    form: OAuthForm,
) -> Result<Response, ApiError> {
    let caller = authenticate_client(&state, &form).await?;
    let token = form.require("token")?;
    let inactive = || no_store(json!({"active": false}));
    // RFC 7662 §4: only resource servers (scope `introspect`) may look at other clients' tokens.
    let may_see = |client_id: &str| may_examine(&caller, client_id, INTROSPECT_SCOPE);
    if let Some(session) =
        sessions::by_refresh_token(&state.db().pool, state.master(), token).await?
    {
        if !may_see(&session.client_id) {
            return Ok(inactive());
        }
        let user = users::get(&state.db().pool, &session.user_id).await?;
        let Some(user) = user.filter(|u| !u.disabled) else {
            return Ok(inactive());
        };
        let client = crate::oauth::clients::get(&state.db().pool, &session.client_id).await?;
        let Some(client) = client.filter(|c| !c.disabled) else {
            return Ok(inactive());
        };
        return Ok(no_store(json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": session.client_id,
            "sub": format!("user:{}", user.user_id),
            "username": user.username,
            "email": user.email,
            "roles": client.roles_for(&user),
            "tenant": user.tenant,
            "scope": session.scope,
            "exp": session.expires_at,
            "iat": session.created_at,
        })));
    }
    let published = state.published();
    let Ok(claims) = tokens::verify(&published, state.config(), Accept::Any, token) else {
        return Ok(inactive());
    };
    if !may_see(&claims.client_id) {
        return Ok(inactive());
    }
    let mut body = json!({
        "active": true,
        "token_type": "Bearer",
        "iss": claims.iss,
        "sub": claims.sub.to_string(),
        "aud": claims.aud,
        "client_id": claims.client_id,
        "scope": claims.scopes.join(" "),
        "exp": claims.exp,
        "iat": claims.iat,
        "nbf": claims.nbf,
        "jti": claims.jti,
        "roles": claims.roles,
        "amr": claims.amr,
    });
    if let Some(tenant) = &claims.tenant {
        body["tenant"] = json!(tenant);
    }
    if let Some(sid) = &claims.sid {
        body["sid"] = json!(sid);
    }
    if let (Some(target), Value::Object(extra)) =
        (body.as_object_mut(), user_fields(&state, &claims).await?)
    {
        for (name, value) in extra {
            target.insert(name, value);
        }
    }
    Ok(no_store(body))
}

/// The userinfo answer of a token from an OpenID Connect sign-in (Core §5.3.2, §5.4): `sub` and
/// the standard claims of the scopes granted (`profile`: `preferred_username`, `updated_at`;
/// `email`: `email`, `email_verified`, which is false: no address is verified here). `None`
/// for a token from any other grant, which gets the Portcullis fields instead.
async fn openid_claims(state: &AppState, claims: &AccessClaims) -> Result<Option<Value>, ApiError> {
    let (Subject::User(id), Some(sid)) = (&claims.sub, &claims.sid) else {
        return Ok(None);
    };
    let pool = &state.db().pool;
    let granted = sessions::openid_scope(pool, sid).await?.unwrap_or_default();
    let granted = crate::infra::db::words(&granted);
    if !granted.iter().any(|s| s == "openid") {
        return Ok(None);
    }
    let Some(user) = users::get(pool, id).await? else {
        return Err(ApiError::oauth(
            OAuthCode::InvalidToken,
            "the access token is not valid",
        ));
    };
    let mut body = json!({"sub": claims.sub.to_string()});
    if granted.iter().any(|s| s == "profile") {
        body["preferred_username"] = json!(user.username);
        body["updated_at"] = json!(user.updated_at);
    }
    if granted.iter().any(|s| s == "email") {
        if let Some(email) = &user.email {
            body["email"] = json!(email);
            body["email_verified"] = json!(false);
        }
    }
    Ok(Some(body))
}

/// Verifies a request's bearer token (see [`super::extractors::Bearer`]) for `accept`.
pub fn caller(state: &AppState, token: &str, accept: Accept) -> Result<AccessClaims, ApiError> {
    tokens::verify(&state.published(), state.config(), accept, token)
        .map_err(|_| ApiError::oauth(OAuthCode::InvalidToken, "the access token is not valid"))
}

/// `GET /oauth2/userinfo`.
#[utoipa::path(
    get,
    path = "/oauth2/userinfo",
    tag = "oauth",
    security(("bearer" = [])),
    responses((status = 200, description = "Claims about the token's principal", body = serde_json::Value), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn userinfo(
    State(state): State<AppState>,
    bearer: Bearer,
) -> Result<Json<Value>, ApiError> {
    userinfo_of(&state, bearer).await
}

/// `POST /oauth2/userinfo` (OpenID Connect Core §5.3.1: GET and POST), the token in the
/// `Authorization` header as on GET.
#[utoipa::path(
    post,
    path = "/oauth2/userinfo",
    tag = "oauth",
    security(("bearer" = [])),
    responses((status = 200, description = "Claims about the token's principal", body = serde_json::Value), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn userinfo_post(
    State(state): State<AppState>,
    bearer: Bearer,
) -> Result<Json<Value>, ApiError> {
    userinfo_of(&state, bearer).await
}

async fn userinfo_of(state: &AppState, Bearer(token): Bearer) -> Result<Json<Value>, ApiError> {
    let claims = caller(state, &token, Accept::Any)?;
    if let Some(body) = openid_claims(state, &claims).await? {
        return Ok(Json(body));
    }
    let mut body = json!({"sub": claims.sub.to_string(), "roles": claims.roles});
    if let Some(tenant) = &claims.tenant {
        body["tenant"] = json!(tenant);
    }
    if let (Some(target), Value::Object(extra)) =
        (body.as_object_mut(), user_fields(state, &claims).await?)
    {
        for (name, value) in extra {
            let name = if name == "username" {
                "preferred_username".to_owned()
            } else {
                name
            };
            target.insert(name, value);
        }
    }
    Ok(Json(body))
}
