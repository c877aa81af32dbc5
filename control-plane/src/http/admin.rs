//! `/admin/v1/…`: users, clients, keys, sessions, policies and the audit log. Every request is
//! authorized by `policies/admin-api.cedar` (each area behind its admin scope — `admin:users`,
//! `admin:clients`, `admin:keys`, `admin:audit`, `admin:policies` — or `admin:full`). Every change
//! is audited in its own transaction.

use super::error::{ApiError, OAuthCode};
use super::json::JsonBody;
use super::oauth::caller;
use crate::audit::{self, Event, Origin};
use crate::sessions::{self, revocations};
use crate::state::AppState;
use crate::users::{self, NewUser, UserPatch};
use crate::{admin_policy, clients, keys, policies};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::{Any, Transaction};

/// Every `/admin/v1` route, behind [`admin_gate`].
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/admin/v1/users", post(create_user).get(list_users))
        .route(
            "/admin/v1/users/{id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/admin/v1/users/{id}/disable", post(disable_user))
        .route("/admin/v1/users/{id}/enable", post(enable_user))
        .route("/admin/v1/users/{id}/export", get(export_user))
        .route("/admin/v1/clients", post(create_client).get(list_clients))
        .route(
            "/admin/v1/clients/{id}",
            get(get_client).patch(update_client),
        )
        .route(
            "/admin/v1/clients/{id}/rotate-secret",
            post(rotate_client_secret),
        )
        .route("/admin/v1/keys", get(list_keys))
        .route("/admin/v1/keys/rotate", post(rotate_keys))
        .route("/admin/v1/audit", get(audit_log))
        .route("/admin/v1/sessions", get(list_sessions))
        .route("/admin/v1/sessions/{id}", delete(revoke_session))
        .route("/admin/v1/policies", get(get_policies).put(put_policies))
        .route("/admin/v1/policies/versions", get(policy_versions))
        .route(
            "/admin/v1/policies/versions/{version}/activate",
            post(activate_policy),
        )
        .route_layer(middleware::from_fn_with_state(state, admin_gate))
}

/// Authorizes every admin request with `policies/admin-api.cedar` before its handler runs.
async fn admin_gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let claims = match caller(&state, request.headers()) {
        Ok(claims) => claims,
        Err(error) => return error.into_response(),
    };
    let decision = admin_policy::decide(
        &claims,
        request.method().as_str(),
        request.uri().path(),
        crate::now(),
    );
    if !decision.allowed {
        return ApiError::oauth(
            OAuthCode::InsufficientScope,
            "the admin policy does not allow this request (each area needs admin:<area> or admin:full)",
        )
        .into_response();
    }
    next.run(request).await
}

/// The verified caller's subject, recorded as the actor of audited changes.
fn actor(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    Ok(caller(state, headers)?.sub.to_string())
}

/// Only `admin:full` may hand out `admin:*` scopes; otherwise a partial administrator could
/// create a client or user with more power than they have.
fn guard_admin_scopes(
    state: &AppState,
    headers: &HeaderMap,
    scopes: Option<&str>,
) -> Result<(), ApiError> {
    let grants_admin =
        scopes.is_some_and(|s| s.split_whitespace().any(|s| s.starts_with("admin:")));
    if !grants_admin {
        return Ok(());
    }
    let claims = caller(state, headers)?;
    if claims.scopes.iter().any(|s| s == "admin:full") {
        Ok(())
    } else {
        Err(ApiError::oauth(
            OAuthCode::InsufficientScope,
            "only admin:full may grant admin:* scopes",
        ))
    }
}

async fn audited(
    mut tx: Transaction<'static, Any>,
    origin: &Origin,
    actor: &str,
    action: &str,
    target: &str,
    detail: Value,
) -> Result<(), ApiError> {
    audit::append(
        &mut tx,
        origin,
        &Event {
            actor,
            action,
            target,
            outcome: "success",
            detail,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Paging parameters.
#[derive(Debug, Deserialize)]
pub struct Page {
    after: Option<String>,
    limit: Option<i64>,
    prefix: Option<String>,
}

/// A new user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    username: String,
    password: String,
    email: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    scopes: String,
    tenant: Option<String>,
}

/// `POST /admin/v1/users`.
pub async fn create_user(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateUser>,
) -> Result<Response, ApiError> {
    let actor = actor(&state, &headers)?;
    guard_admin_scopes(&state, &headers, Some(&body.scopes))?;
    crate::passwords::check_policy(&body.password)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    users::check_username(&body.username)?;
    let hash = state.hasher().hash(&body.password).await?;
    let mut tx = state.db().pool.begin().await?;
    let user = users::create(
        &mut tx,
        &NewUser {
            username: body.username,
            password_hash: hash,
            email: body.email,
            roles: body.roles,
            scopes: body.scopes,
            tenant: body.tenant,
        },
    )
    .await?;
    let target = format!("user:{}", user.user_id);
    audited(tx, &origin, &actor, "user.created", &target, json!({})).await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// `GET /admin/v1/users`.
pub async fn list_users(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    actor(&state, &headers)?;
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    let found = users::list(
        &state.db().pool,
        page.prefix.as_deref().unwrap_or(""),
        page.after.as_deref().unwrap_or(""),
        limit,
    )
    .await?;
    let next = (found.len() as i64 == limit)
        .then(|| found.last().map(|u| u.user_id.clone()))
        .flatten();
    Ok(Json(json!({"users": found, "next_after": next})))
}

/// `GET /admin/v1/users/{id}`.
pub async fn get_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<users::User>, ApiError> {
    actor(&state, &headers)?;
    users::get(&state.db().pool, &id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// `PATCH /admin/v1/users/{id}`: roles, scopes, tenant, e-mail.
pub async fn update_user(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<UserPatch>,
) -> Result<Json<users::User>, ApiError> {
    let actor = actor(&state, &headers)?;
    guard_admin_scopes(&state, &headers, patch.scopes.as_deref())?;
    let mut tx = state.db().pool.begin().await?;
    users::update(&mut tx, &id, &patch).await?;
    let fields: Vec<&str> = [
        patch.roles.as_ref().map(|_| "roles"),
        patch.scopes.as_ref().map(|_| "scopes"),
        patch.tenant.as_ref().map(|_| "tenant"),
        patch.email.as_ref().map(|_| "email"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let target = format!("user:{id}");
    audited(
        tx,
        &origin,
        &actor,
        "user.updated",
        &target,
        json!({"fields": fields}),
    )
    .await?;
    users::get(&state.db().pool, &id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// Ends every session of a user, revokes their outstanding access tokens and moves the bundle.
async fn end_all_sessions(
    tx: &mut Transaction<'static, Any>,
    state: &AppState,
    user_id: &str,
) -> Result<usize, ApiError> {
    let ended =
        sessions::end_for_user(tx, user_id, state.config().lifetimes.longest_access()).await?;
    crate::bundle::bump(tx).await?;
    Ok(ended)
}

/// `POST /admin/v1/users/{id}/disable`: the account and every session end now.
pub async fn disable_user(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let actor = actor(&state, &headers)?;
    let mut tx = state.db().pool.begin().await?;
    users::set_disabled(&mut tx, &id, true).await?;
    let ended = end_all_sessions(&mut tx, &state, &id).await?;
    let target = format!("user:{id}");
    audited(
        tx,
        &origin,
        &actor,
        "user.disabled",
        &target,
        json!({"sessions_ended": ended}),
    )
    .await?;
    state.republish().await?;
    Ok(Json(
        json!({"user_id": id, "disabled": true, "sessions_ended": ended}),
    ))
}

/// `POST /admin/v1/users/{id}/enable`.
pub async fn enable_user(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let actor = actor(&state, &headers)?;
    let mut tx = state.db().pool.begin().await?;
    users::set_disabled(&mut tx, &id, false).await?;
    let target = format!("user:{id}");
    audited(tx, &origin, &actor, "user.enabled", &target, json!({})).await?;
    Ok(Json(json!({"user_id": id, "disabled": false})))
}

/// `DELETE /admin/v1/users/{id}`: personal data erased; the audit keeps the random id only.
pub async fn delete_user(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = actor(&state, &headers)?;
    let mut tx = state.db().pool.begin().await?;
    end_all_sessions(&mut tx, &state, &id).await?;
    users::delete(&mut tx, &id).await?;
    let target = format!("user:{id}");
    audited(tx, &origin, &actor, "user.deleted", &target, json!({})).await?;
    state.republish().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /admin/v1/users/{id}/export`: the user's record, sessions and audit trail.
pub async fn export_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    actor(&state, &headers)?;
    let user = users::get(&state.db().pool, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let sessions = sessions::live(&state.db().pool, Some(&id)).await?;
    let events = audit::list(
        &state.db().pool,
        &audit::Filter {
            target: Some(format!("user:{id}")),
            limit: Some(1000),
            ..audit::Filter::default()
        },
    )
    .await?;
    Ok(Json(
        json!({"user": user, "sessions": sessions, "audit": events}),
    ))
}

/// A new client.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    name: String,
    #[serde(default)]
    scopes: String,
    #[serde(default = "default_grants")]
    grant_types: Vec<String>,
}

fn default_grants() -> Vec<String> {
    vec!["client_credentials".into()]
}

/// `POST /admin/v1/clients`: the secret is in this response only.
pub async fn create_client(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateClient>,
) -> Result<Response, ApiError> {
    let actor = actor(&state, &headers)?;
    guard_admin_scopes(&state, &headers, Some(&body.scopes))?;
    let mut tx = state.db().pool.begin().await?;
    let (client, secret) = clients::create(
        &mut tx,
        state.master(),
        &body.name,
        &body.scopes,
        &body.grant_types,
    )
    .await?;
    let target = format!("client:{}", client.client_id);
    audited(
        tx,
        &origin,
        &actor,
        "client.created",
        &target,
        json!({"scopes": client.scopes}),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"client": client, "client_id": client.client_id, "client_secret": secret})),
    )
        .into_response())
}

/// `GET /admin/v1/clients`.
pub async fn list_clients(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    actor(&state, &headers)?;
    let found = clients::list(
        &state.db().pool,
        page.after.as_deref().unwrap_or(""),
        page.limit.unwrap_or(100),
    )
    .await?;
    Ok(Json(json!({"clients": found})))
}

/// `GET /admin/v1/clients/{id}`: the client and its token statistics (from the audit log).
pub async fn get_client(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    actor(&state, &headers)?;
    let client = clients::get(&state.db().pool, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let actor = format!("client:{id}");
    let issued: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE actor = $1 AND action = 'token.issued'",
    )
    .bind(&actor)
    .fetch_one(&state.db().pool)
    .await?;
    let last: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(at) FROM audit_log WHERE actor = $1 AND action = 'token.issued'",
    )
    .bind(&actor)
    .fetch_one(&state.db().pool)
    .await?;
    Ok(Json(json!({
        "client": client,
        "stats": {"tokens_issued": issued, "last_issued_at": last},
    })))
}

/// Changes to a client.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateClient {
    scopes: Option<String>,
    grant_types: Option<Vec<String>>,
    disabled: Option<bool>,
}

/// `PATCH /admin/v1/clients/{id}`.
pub async fn update_client(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateClient>,
) -> Result<Json<Value>, ApiError> {
    let actor = actor(&state, &headers)?;
    guard_admin_scopes(&state, &headers, body.scopes.as_deref())?;
    let mut tx = state.db().pool.begin().await?;
    clients::update(
        &mut tx,
        &id,
        body.scopes.as_deref(),
        body.grant_types.as_deref(),
        body.disabled,
    )
    .await?;
    let target = format!("client:{id}");
    let mut longest = 0;
    if body.disabled == Some(true) {
        // A disabled client's outstanding tokens stop working at the edge too: its own
        // (`client:<id>`) and those of every user session opened through it.
        longest = state.config().lifetimes.longest_access();
        revocations::subject(&mut tx, &target, longest).await?;
        sessions::end_for_client(&mut tx, &id, longest).await?;
        crate::bundle::bump(&mut tx).await?;
    }
    audited(
        tx,
        &origin,
        &actor,
        "client.updated",
        &target,
        json!({"scopes": body.scopes, "grant_types": body.grant_types, "disabled": body.disabled}),
    )
    .await?;
    if longest > 0 {
        state.republish().await?;
    }
    let client = clients::get(&state.db().pool, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(json!({"client": client})))
}

/// `POST /admin/v1/clients/{id}/rotate-secret`: a new secret; the old one works for the
/// overlap window.
pub async fn rotate_client_secret(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let actor = actor(&state, &headers)?;
    let overlap = state.config().lifetimes.secret_overlap;
    let mut tx = state.db().pool.begin().await?;
    let secret = clients::rotate_secret(&mut tx, state.master(), &id, overlap).await?;
    let target = format!("client:{id}");
    audited(
        tx,
        &origin,
        &actor,
        "client.secret_rotated",
        &target,
        json!({"overlap_seconds": overlap}),
    )
    .await?;
    Ok(Json(json!({
        "client_id": id,
        "client_secret": secret,
        "previous_secret_expires": crate::now() + overlap,
    })))
}

/// `GET /admin/v1/keys`.
pub async fn list_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    actor(&state, &headers)?;
    Ok(Json(json!({"keys": keys::list(&state.db().pool).await?})))
}

/// Rotation options.
#[derive(Debug, Default, Deserialize)]
pub struct RotateQuery {
    /// Emergency rotation (a compromised key): skip the pre-publication wait and retire the old
    /// key at once (its tokens stop working); edges that have not fetched the next key yet
    /// reject new tokens until they do.
    #[serde(default)]
    force: bool,
}

/// `POST /admin/v1/keys/rotate[?force=true]`: 409 while the next key is too recently published.
pub async fn rotate_keys(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    Query(query): Query<RotateQuery>,
) -> Result<Json<Value>, ApiError> {
    let actor = actor(&state, &headers)?;
    let lifetimes = &state.config().lifetimes;
    let prepublish = if query.force {
        0
    } else {
        lifetimes.key_prepublish
    };
    let mut tx = state.db().pool.begin().await?;
    let kid = keys::rotate(
        &mut tx,
        state.master(),
        lifetimes.longest_access(),
        prepublish,
        query.force,
    )
    .await?;
    audited(
        tx,
        &origin,
        &actor,
        "key.rotated",
        &format!("key:{kid}"),
        json!({"forced": query.force}),
    )
    .await?;
    state.republish().await?;
    Ok(Json(
        json!({"active_kid": kid, "keys": keys::list(&state.db().pool).await?}),
    ))
}

/// Audit query: the filters plus `format=ndjson`.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    #[serde(flatten)]
    filter: audit::Filter,
    format: Option<String>,
}

/// `GET /admin/v1/audit`.
pub async fn audit_log(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    actor(&state, &headers)?;
    let records = audit::list(&state.db().pool, &query.filter).await?;
    if query.format.as_deref() == Some("ndjson") {
        let mut body = String::new();
        for record in &records {
            body.push_str(
                &serde_json::to_string(record).map_err(|e| ApiError::Internal(e.to_string()))?,
            );
            body.push('\n');
        }
        return Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response());
    }
    let next = records.last().map(|r| r.seq);
    Ok(Json(json!({"events": records, "next_after": next})).into_response())
}

/// Session listing filter.
#[derive(Debug, Deserialize)]
pub struct SessionQuery {
    user_id: Option<String>,
}

/// `GET /admin/v1/sessions`.
pub async fn list_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SessionQuery>,
) -> Result<Json<Value>, ApiError> {
    actor(&state, &headers)?;
    let found = sessions::live(&state.db().pool, query.user_id.as_deref()).await?;
    Ok(Json(json!({"sessions": found})))
}

/// `DELETE /admin/v1/sessions/{id}`.
pub async fn revoke_session(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = actor(&state, &headers)?;
    let mut tx = state.db().pool.begin().await?;
    if !sessions::revoke(&mut tx, &id).await? {
        return Err(ApiError::NotFound);
    }
    revocations::session(&mut tx, &id, state.config().lifetimes.longest_access()).await?;
    crate::bundle::bump(&mut tx).await?;
    audited(
        tx,
        &origin,
        &actor,
        "session.revoked",
        &format!("session:{id}"),
        json!({}),
    )
    .await?;
    state.republish().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /admin/v1/policies`: the set in force.
pub async fn get_policies(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    actor(&state, &headers)?;
    let (version, set) = policies::active(&state.db().pool)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(
        json!({"version": version, "schema": set.schema, "policies": set.policies, "entities": set.entities, "tests": set.tests}),
    ))
}

/// `PUT /admin/v1/policies`: validated with the edge's engine, stored as a new version, made
/// active; refused with Cedar's diagnostics otherwise.
pub async fn put_policies(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    JsonBody(set): JsonBody<policies::PolicySet>,
) -> Result<Json<Value>, ApiError> {
    let actor = actor(&state, &headers)?;
    let mut tx = state.db().pool.begin().await?;
    let version = policies::store_and_activate(&mut tx, &set, &actor).await?;
    audited(
        tx,
        &origin,
        &actor,
        "policy.published",
        &format!("policy:{version}"),
        json!({}),
    )
    .await?;
    state.republish().await?;
    Ok(Json(
        json!({"version": version, "bundle_version": state.published().version}),
    ))
}

/// `GET /admin/v1/policies/versions`.
pub async fn policy_versions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    actor(&state, &headers)?;
    Ok(Json(
        json!({"versions": policies::versions(&state.db().pool).await?}),
    ))
}

/// `POST /admin/v1/policies/versions/{version}/activate`: roll back (or forward).
pub async fn activate_policy(
    State(state): State<AppState>,
    origin: Origin,
    headers: HeaderMap,
    Path(version): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let actor = actor(&state, &headers)?;
    let exists = policies::versions(&state.db().pool)
        .await?
        .iter()
        .any(|v| v.version == version);
    if !exists {
        return Err(ApiError::NotFound);
    }
    let mut tx = state.db().pool.begin().await?;
    policies::activate(&mut tx, version).await?;
    audited(
        tx,
        &origin,
        &actor,
        "policy.activated",
        &format!("policy:{version}"),
        json!({}),
    )
    .await?;
    state.republish().await?;
    Ok(Json(
        json!({"version": version, "bundle_version": state.published().version}),
    ))
}
