//! `/admin/v1/…`: users, clients, keys, sessions, policies and the audit log. Every request is
//! authorized by `policies/admin-api.cedar` (each area behind its admin scope — `admin:users`,
//! `admin:clients`, `admin:keys`, `admin:audit`, `admin:policies` — or `admin:full`), and every
//! change to a user or client by [`crate::identity::authority`] (no administrator grants or manages more
//! than it holds, nor outside its tenant). Every change is audited in its own transaction.

use super::error::{ApiError, OAuthCode};
use super::json::JsonBody;
use super::oauth::caller;
use crate::audit::action::Action;
use crate::audit::{self, Event, Origin};
use crate::identity::authority::{Authority, Grants};
use crate::identity::sessions::{self, revocations};
use crate::identity::users::{self, NewUser, User, UserPatch};
use crate::keys::signing as keys;
use crate::oauth::audience::Accept;
use crate::oauth::clients;
use crate::oauth::clients::{Client, ClientPatch, NewClient};
use crate::policy::{admin_api as admin_policy, set, store};
use crate::state::AppState;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::{header, request::Parts, StatusCode};
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
        .route("/admin/v1/keys/bundle", get(list_bundle_keys))
        .route("/admin/v1/keys/bundle/rotate", post(rotate_bundle_keys))
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

/// The verified administrator behind an admin request: its token is verified once, by
/// [`admin_gate`], which hands it to the handler.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Its subject, recorded as the actor of audited changes.
    actor: String,
    /// What it may grant and act on.
    authority: Authority,
}

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Admin>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("admin route outside the admin gate".into()))
    }
}

/// Authorizes every admin request with `policies/admin-api.cedar` before its handler runs.
async fn admin_gate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let verified = super::extractors::bearer(request.headers(), request.uri().query())
        .map_err(ApiError::from)
        .and_then(|token| caller(&state, token, Accept::ControlPlane));
    let claims = match verified {
        Ok(claims) => claims,
        Err(error) => return error.into_response(),
    };
    let authority = match Authority::held_by(&state.db().pool, &claims).await {
        Ok(Some(authority)) => authority,
        Ok(None) => {
            return ApiError::oauth(
                OAuthCode::InvalidToken,
                "the token's user or client is gone or disabled",
            )
            .into_response()
        }
        Err(error) => return ApiError::from(error).into_response(),
    };
    // The area is decided on what the token carries and the principal still holds, in the
    // tenant it is in now: a demotion or a move into a tenant takes effect at once.
    let mut current = claims.clone();
    current.scopes.retain(|s| authority.holds(s));
    current.tenant = authority.tenant().map(str::to_owned);
    let decision = admin_policy::decide(
        &current,
        request.method().as_str(),
        request.uri().path(),
        crate::now(),
    );
    if !decision.allowed {
        return ApiError::oauth(
            OAuthCode::InsufficientScope,
            "the admin policy does not allow this request (each area needs admin:<area> or admin:full; keys, policies and the audit log need a token without a tenant)",
        )
        .into_response();
    }
    request.extensions_mut().insert(Admin {
        actor: claims.sub.to_string(),
        authority,
    });
    next.run(request).await
}

/// The user `id` if `admin` may act on it: one outside the admin's tenant does not exist for it
/// (404), one with more power than the admin holds is refused (403).
async fn managed_user(
    tx: &mut Transaction<'static, Any>,
    admin: &Admin,
    id: &str,
) -> Result<User, ApiError> {
    lock_row(tx, "users", id).await?;
    let user = users::get(&mut **tx, id)
        .await?
        .filter(|u| admin.authority.sees(u.tenant.as_deref()))
        .ok_or(ApiError::NotFound)?;
    admin.authority.covers(&Grants {
        scopes: &user.scopes,
        roles: &user.roles,
        tenant: user.tenant.as_deref(),
    })?;
    Ok(user)
}

/// Locks the row `id` of `table` until `tx` ends, so that the principal checked is the one acted
/// on: without it, another administrator could promote the principal between the check and the
/// change. A no-op `UPDATE` is the portable row lock (`FOR UPDATE` on Postgres; SQLite takes its
/// write lock). A missing row locks nothing and is answered by the read that follows.
async fn lock_row(
    tx: &mut Transaction<'static, Any>,
    table: &'static str,
    id: &str,
) -> Result<(), ApiError> {
    sqlx::query(&format!("UPDATE {table} SET id = id WHERE id = $1"))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The client `id` if `admin` may act on it (as [`managed_user`]).
async fn managed_client(
    tx: &mut Transaction<'static, Any>,
    admin: &Admin,
    id: &str,
) -> Result<Client, ApiError> {
    lock_row(tx, "clients", id).await?;
    let client = clients::get(&mut **tx, id)
        .await?
        .filter(|c| admin.authority.sees(c.tenant.as_deref()))
        .ok_or(ApiError::NotFound)?;
    admin.authority.covers(&Grants {
        scopes: &client.scopes,
        roles: &client.roles,
        tenant: client.tenant.as_deref(),
    })?;
    Ok(client)
}

/// A scope list as it will be stored, for the authority check before the store parses it.
fn scope_list(text: &str) -> Result<Vec<String>, ApiError> {
    crate::oauth::scopes::parse(text).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// The tenant a new principal gets: the one asked for, else the creating admin's own.
fn new_tenant<'a>(admin: &'a Admin, asked: Option<&'a str>) -> Option<&'a str> {
    match asked {
        Some("") | None => admin.authority.tenant(),
        Some(tenant) => Some(tenant),
    }
}

/// A tenant after a patch: `Some("")` clears it, `None` keeps `current`.
fn patched_tenant<'a>(current: Option<&'a str>, patch: Option<&'a str>) -> Option<&'a str> {
    match patch {
        None => current,
        Some("") => None,
        Some(tenant) => Some(tenant),
    }
}

async fn audited(
    mut tx: Transaction<'static, Any>,
    state: &AppState,
    origin: &Origin,
    actor: &str,
    action: Action,
    target: &str,
    detail: Value,
) -> Result<(), ApiError> {
    audit::append(
        &mut tx,
        state.master(),
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
    admin: Admin,
    JsonBody(body): JsonBody<CreateUser>,
) -> Result<Response, ApiError> {
    let tenant = new_tenant(&admin, body.tenant.as_deref()).map(str::to_owned);
    admin.authority.covers(&Grants {
        scopes: &scope_list(&body.scopes)?,
        roles: &body.roles,
        tenant: tenant.as_deref(),
    })?;
    crate::identity::passwords::check_policy(&body.password)
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
            tenant,
        },
    )
    .await?;
    let target = format!("user:{}", user.user_id);
    audited(
        tx,
        &state,
        &origin,
        &admin.actor,
        Action::UserCreated,
        &target,
        json!({}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// `GET /admin/v1/users`: a tenant's administrators list that tenant's users.
pub async fn list_users(
    State(state): State<AppState>,
    admin: Admin,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    let found = users::list(
        &state.db().pool,
        admin.authority.tenant(),
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
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    users::get(&state.db().pool, &id)
        .await?
        .filter(|u| admin.authority.sees(u.tenant.as_deref()))
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// `PATCH /admin/v1/users/{id}`: roles, scopes, tenant, e-mail.
pub async fn update_user(
    State(state): State<AppState>,
    origin: Origin,
    admin: Admin,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<UserPatch>,
) -> Result<Json<User>, ApiError> {
    let mut tx = state.db().pool.begin().await?;
    let current = managed_user(&mut tx, &admin, &id).await?;
    let scopes = match &patch.scopes {
        Some(text) => scope_list(text)?,
        None => current.scopes.clone(),
    };
    admin.authority.covers(&Grants {
        scopes: &scopes,
        roles: patch.roles.as_deref().unwrap_or(&current.roles),
        tenant: patched_tenant(current.tenant.as_deref(), patch.tenant.as_deref()),
    })?;
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
        &state,
        &origin,
        &admin.actor,
        Action::UserUpdated,
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
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut tx = state.db().pool.begin().await?;
    managed_user(&mut tx, &admin, &id).await?;
    users::set_disabled(&mut tx, &id, true).await?;
    let ended = end_all_sessions(&mut tx, &state, &id).await?;
    let target = format!("user:{id}");
    audited(
        tx,
        &state,
        &origin,
        &admin.actor,
        Action::UserDisabled,
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
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut tx = state.db().pool.begin().await?;
    managed_user(&mut tx, &admin, &id).await?;
    users::set_disabled(&mut tx, &id, false).await?;
    let target = format!("user:{id}");
    audited(
        tx,
        &state,
        &origin,
        &admin.actor,
        Action::UserEnabled,
        &target,
        json!({}),
    )
    .await?;
    Ok(Json(json!({"user_id": id, "disabled": false})))
}

/// `DELETE /admin/v1/users/{id}`: personal data erased (the user, sessions, the client addresses
/// of the user's audit rows); the audit keeps the random id and the addresses' pseudonyms.
pub async fn delete_user(
    State(state): State<AppState>,
    origin: Origin,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.db().pool.begin().await?;
    managed_user(&mut tx, &admin, &id).await?;
    end_all_sessions(&mut tx, &state, &id).await?;
    sessions::erase_for_user(&mut tx, &id).await?;
    users::delete(&mut tx, &id).await?;
    let target = format!("user:{id}");
    let addresses_erased = crate::audit::erase_addresses(&mut tx, &target).await?;
    audited(
        tx,
        &state,
        &origin,
        &admin.actor,
        Action::UserDeleted,
        &target,
        json!({"addresses_erased": addresses_erased}),
    )
    .await?;
    state.republish().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Paging of a user export's audit rows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportPage {
    /// Audit rows after this sequence number.
    after: Option<i64>,
    /// Audit rows per page (default and most 1000).
    limit: Option<i64>,
}

/// `GET /admin/v1/users/{id}/export`: the user's record, every session (live or ended) and every
/// audit row whose actor or target is the user, paged by `after` (`next_after` is set while more
/// rows follow).
pub async fn export_user(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(page): Query<ExportPage>,
) -> Result<Json<Value>, ApiError> {
    let mut tx = state.db().pool.begin().await?;
    let user = managed_user(&mut tx, &admin, &id).await?;
    tx.commit().await?;
    let sessions = sessions::all_of_user(&state.db().pool, &id).await?;
    let limit = page.limit.unwrap_or(1000).clamp(1, 1000);
    let events = audit::list(
        &state.db().pool,
        &audit::Filter {
            subject: Some(format!("user:{id}")),
            after: page.after,
            limit: Some(limit),
            ..audit::Filter::default()
        },
    )
    .await?;
    let next_after = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.seq))
        .flatten();
    Ok(Json(
        json!({"user": user, "sessions": sessions, "audit": events, "next_after": next_after}),
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
    #[serde(default)]
    roles: Vec<String>,
    tenant: Option<String>,
}

fn default_grants() -> Vec<String> {
    vec!["client_credentials".into()]
}

/// `POST /admin/v1/clients`: the secret is in this response only.
pub async fn create_client(
    State(state): State<AppState>,
    origin: Origin,
    admin: Admin,
    JsonBody(body): JsonBody<CreateClient>,
) -> Result<Response, ApiError> {
    let tenant = new_tenant(&admin, body.tenant.as_deref());
    admin.authority.covers(&Grants {
        scopes: &scope_list(&body.scopes)?,
        roles: &body.roles,
        tenant,
    })?;
    let mut tx = state.db().pool.begin().await?;
    let (client, secret) = clients::create(
        &mut tx,
        state.master(),
        &NewClient {
            name: &body.name,
            scopes: &body.scopes,
            grants: &body.grant_types,
            roles: &body.roles,
            tenant,
        },
    )
    .await?;
    let target = format!("client:{}", client.client_id);
    audited(
        tx,
        &state,
        &origin,
        &admin.actor,
        Action::ClientCreated,
        &target,
        json!({"scopes": client.scopes, "roles": client.roles}),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"client": client, "client_id": client.client_id, "client_secret": secret})),
    )
        .into_response())
}

/// `GET /admin/v1/clients`: a tenant's administrators list that tenant's clients.
pub async fn list_clients(
    State(state): State<AppState>,
    admin: Admin,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let found = clients::list(
        &state.db().pool,
        admin.authority.tenant(),
        page.after.as_deref().unwrap_or(""),
        page.limit.unwrap_or(100),
    )
    .await?;
    Ok(Json(json!({"clients": found})))
}

/// `GET /admin/v1/clients/{id}`: the client and its token statistics (from the audit log).
pub async fn get_client(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let client = clients::get(&state.db().pool, &id)
        .await?
        .filter(|c| admin.authority.sees(c.tenant.as_deref()))
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
    roles: Option<Vec<String>>,
    tenant: Option<String>,
    disabled: Option<bool>,
}

/// `PATCH /admin/v1/clients/{id}`.
pub async fn update_client(
    State(state): State<AppState>,
    origin: Origin,
    admin: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateClient>,
) -> Result<Json<Value>, ApiError> {
    let mut tx = state.db().pool.begin().await?;
    let current = managed_client(&mut tx, &admin, &id).await?;
    let scopes = match &body.scopes {
        Some(text) => scope_list(text)?,
        None => current.scopes.clone(),
    };
    admin.authority.covers(&Grants {
        scopes: &scopes,
        roles: body.roles.as_deref().unwrap_or(&current.roles),
        tenant: patched_tenant(current.tenant.as_deref(), body.tenant.as_deref()),
    })?;
    clients::update(
        &mut tx,
        &id,
        &ClientPatch {
            scopes: body.scopes.as_deref(),
            grants: body.grant_types.as_deref(),
            roles: body.roles.as_deref(),
            tenant: body.tenant.as_deref(),
            disabled: body.disabled,
        },
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
    audited(tx, &state,
        &origin,
        &admin.actor,
        Action::ClientUpdated,
        &target,
        json!({"scopes": body.scopes, "grant_types": body.grant_types, "roles": body.roles, "tenant_changed": body.tenant.is_some(), "disabled": body.disabled}),
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
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let overlap = state.config().lifetimes.secret_overlap;
    let mut tx = state.db().pool.begin().await?;
    managed_client(&mut tx, &admin, &id).await?;
    let secret = clients::rotate_secret(&mut tx, state.master(), &id, overlap).await?;
    let target = format!("client:{id}");
    audited(
        tx,
        &state,
        &origin,
        &admin.actor,
        Action::ClientSecretRotated,
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
pub async fn list_keys(State(state): State<AppState>, _: Admin) -> Result<Json<Value>, ApiError> {
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
    admin: Admin,
    Query(query): Query<RotateQuery>,
) -> Result<Json<Value>, ApiError> {
    let actor = admin.actor;
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
        &state,
        &origin,
        &actor,
        Action::KeyRotated,
        &format!("key:{kid}"),
        json!({"forced": query.force}),
    )
    .await?;
    state.republish().await?;
    Ok(Json(
        json!({"active_kid": kid, "keys": keys::list(&state.db().pool).await?}),
    ))
}

/// The bundle-signing keys with their states, and the public keys edges pin (`pins`: the active
/// and the next key, the `bundle_signing_keys` of the filter configuration).
async fn bundle_keys_view(state: &AppState) -> Result<Value, ApiError> {
    let pool = &state.db().pool;
    let pins = crate::keys::bundle::pins(pool, state.master()).await?;
    Ok(json!({"keys": crate::keys::bundle::list(pool).await?, "pins": pins.keys}))
}

/// `GET /admin/v1/keys/bundle`.
pub async fn list_bundle_keys(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(bundle_keys_view(&state).await?))
}

/// `POST /admin/v1/keys/bundle/rotate[?force=true]`: the next bundle-signing key signs from now
/// on and the active one retires; 409 while the next key is younger than
/// `PORTCULLIS_KEY_PREPUBLISH` (`force` for an emergency). Edges that have not pinned the next key
/// refuse every bundle from here on (keeping their last good one until it goes stale), so pin it
/// everywhere first.
pub async fn rotate_bundle_keys(
    State(state): State<AppState>,
    origin: Origin,
    admin: Admin,
    Query(query): Query<RotateQuery>,
) -> Result<Json<Value>, ApiError> {
    let prepublish = if query.force {
        0
    } else {
        state.config().lifetimes.key_prepublish
    };
    let mut tx = state.db().pool.begin().await?;
    let kid = crate::keys::bundle::rotate(&mut tx, state.master(), prepublish).await?;
    audited(
        tx,
        &state,
        &origin,
        &admin.actor,
        Action::BundleKeyRotated,
        &format!("key:{kid}"),
        json!({"forced": query.force}),
    )
    .await?;
    state.republish().await?;
    let mut view = bundle_keys_view(&state).await?;
    view["active_kid"] = json!(kid);
    Ok(Json(view))
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
    _: Admin,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ApiError> {
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
    admin: Admin,
    Query(query): Query<SessionQuery>,
) -> Result<Json<Value>, ApiError> {
    let found = sessions::live(
        &state.db().pool,
        query.user_id.as_deref(),
        admin.authority.tenant(),
    )
    .await?;
    Ok(Json(json!({"sessions": found})))
}

/// `DELETE /admin/v1/sessions/{id}`: acting on the session's user.
pub async fn revoke_session(
    State(state): State<AppState>,
    origin: Origin,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.db().pool.begin().await?;
    let owner = sessions::owner(&mut tx, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    managed_user(&mut tx, &admin, &owner).await?;
    if !sessions::revoke(&mut tx, &id).await? {
        return Err(ApiError::NotFound);
    }
    revocations::session(&mut tx, &id, state.config().lifetimes.longest_access()).await?;
    crate::bundle::bump(&mut tx).await?;
    audited(
        tx,
        &state,
        &origin,
        &admin.actor,
        Action::SessionRevoked,
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
    _: Admin,
) -> Result<Json<Value>, ApiError> {
    let (version, set) = store::active(&state.db().pool)
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
    admin: Admin,
    JsonBody(set): JsonBody<set::PolicySet>,
) -> Result<Json<Value>, ApiError> {
    let actor = admin.actor;
    let mut tx = state.db().pool.begin().await?;
    let version = store::store_and_activate(&mut tx, &set, &actor).await?;
    audited(
        tx,
        &state,
        &origin,
        &actor,
        Action::PolicyPublished,
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
    _: Admin,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({"versions": store::versions(&state.db().pool).await?}),
    ))
}

/// `POST /admin/v1/policies/versions/{version}/activate`: roll back (or forward).
pub async fn activate_policy(
    State(state): State<AppState>,
    origin: Origin,
    admin: Admin,
    Path(version): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let actor = admin.actor;
    let exists = store::versions(&state.db().pool)
        .await?
        .iter()
        .any(|v| v.version == version);
    if !exists {
        return Err(ApiError::NotFound);
    }
    let mut tx = state.db().pool.begin().await?;
    store::activate(&mut tx, version).await?;
    audited(
        tx,
        &state,
        &origin,
        &actor,
        Action::PolicyActivated,
        &format!("policy:{version}"),
        json!({}),
    )
    .await?;
    state.republish().await?;
    Ok(Json(
        json!({"version": version, "bundle_version": state.published().version}),
    ))
}
