//! `/admin/v1/users`: create, list, read, change, disable, enable, erase and export users.

use crate::audit::Record;
use crate::http::error::ApiError;
use crate::http::extractors::AdminCall;
use crate::http::json::{JsonBody, PathParam, QueryParams};
use crate::identity::service::{self, UserSpec};
use crate::identity::sessions::Session;
use crate::identity::users::{User, UserPatch};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// Paging parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    after: Option<String>,
    /// Page size, default 100, taken into 1 to 1000.
    limit: Option<i64>,
    prefix: Option<String>,
}

/// A page of users.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserList {
    /// The users, by id.
    pub users: Vec<User>,
    /// The `after` of the next page, while the page is full.
    pub next_after: Option<String>,
}

/// A user's disabled state after a change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserState {
    /// The user.
    pub user_id: String,
    /// Whether it is disabled now.
    pub disabled: bool,
    /// Sessions ended by disabling it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions_ended: Option<usize>,
}

/// A user's data.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserExport {
    /// The record.
    pub user: User,
    /// Every session, live or ended.
    pub sessions: Vec<Session>,
    /// A page of the audit rows whose actor or target is the user.
    pub audit: Vec<Record>,
    /// The `after` of the next page, while more rows follow.
    pub next_after: Option<i64>,
}

/// A new user.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// 1 to 64 letters, digits or `. _ - @`.
    #[schema(pattern = r"^[\w.@-]{1,64}$", min_length = 1, max_length = 64)]
    username: String,
    /// 8 to 128 characters, not on the list of common passwords.
    #[schema(min_length = 8, max_length = 128)]
    password: String,
    email: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::identity::users::roles_schema)]
    roles: Vec<String>,
    #[serde(default, deserialize_with = "crate::oauth::scopes::from_list_or_text")]
    #[schema(schema_with = crate::oauth::scopes::request_schema)]
    scopes: String,
    /// ASCII letters, digits or `. _ -` (up to 64); empty or absent: the creator's own.
    #[schema(pattern = r"^[A-Za-z0-9._-]{0,64}$")]
    tenant: Option<String>,
}

/// `POST /admin/v1/users`.
#[utoipa::path(
    post,
    path = "/admin/v1/users",
    tag = "users",
    security(("bearer" = ["admin:users"])),
    request_body = CreateUser,
    responses((status = 201, description = "Created", body = User), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn create_user(
    call: AdminCall,
    JsonBody(body): JsonBody<CreateUser>,
) -> Result<Response, ApiError> {
    let spec = UserSpec {
        username: body.username,
        password: body.password,
        email: body.email,
        roles: body.roles,
        scopes: body.scopes,
        tenant: body.tenant,
    };
    let user = service::create_user(&call.ctx(), spec).await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// `GET /admin/v1/users`: a tenant's administrators list that tenant's users.
#[utoipa::path(
    get,
    path = "/admin/v1/users",
    tag = "users",
    security(("bearer" = ["admin:users"])),
    params(Page),
    responses((status = 200, description = "`users` and `next_after`", body = UserList), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn list_users(
    call: AdminCall,
    QueryParams(page): QueryParams<Page>,
) -> Result<Json<UserList>, ApiError> {
    let found = service::list_users(
        &call.ctx(),
        page.prefix.as_deref().unwrap_or(""),
        page.after.as_deref().unwrap_or(""),
        page.limit,
    )
    .await?;
    Ok(Json(UserList {
        users: found.users,
        next_after: found.next_after,
    }))
}

/// `GET /admin/v1/users/{id}`.
#[utoipa::path(
    get,
    path = "/admin/v1/users/{id}",
    tag = "users",
    security(("bearer" = ["admin:users"])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "OK", body = User), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn get_user(
    call: AdminCall,
    PathParam(id): PathParam<String>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(service::get_user(&call.ctx(), &id).await?))
}

/// `PATCH /admin/v1/users/{id}`: roles, scopes, tenant, e-mail.
#[utoipa::path(
    patch,
    path = "/admin/v1/users/{id}",
    tag = "users",
    security(("bearer" = ["admin:users"])),
    params(("id" = String, Path, description = "User id")),
    request_body = UserPatch,
    responses((status = 200, description = "OK", body = User), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn update_user(
    call: AdminCall,
    PathParam(id): PathParam<String>,
    JsonBody(patch): JsonBody<UserPatch>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(service::update_user(&call.ctx(), &id, &patch).await?))
}

/// `POST /admin/v1/users/{id}/disable`: the account and every session end now.
#[utoipa::path(
    post,
    path = "/admin/v1/users/{id}/disable",
    tag = "users",
    security(("bearer" = ["admin:users"])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "OK", body = UserState), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn disable_user(
    call: AdminCall,
    PathParam(id): PathParam<String>,
) -> Result<Json<UserState>, ApiError> {
    let ended = service::disable_user(&call.ctx(), &id).await?;
    Ok(Json(UserState {
        user_id: id,
        disabled: true,
        sessions_ended: Some(ended),
    }))
}

/// `POST /admin/v1/users/{id}/enable`.
#[utoipa::path(
    post,
    path = "/admin/v1/users/{id}/enable",
    tag = "users",
    security(("bearer" = ["admin:users"])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "OK", body = UserState), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn enable_user(
    call: AdminCall,
    PathParam(id): PathParam<String>,
) -> Result<Json<UserState>, ApiError> {
    service::enable_user(&call.ctx(), &id).await?;
    Ok(Json(UserState {
        user_id: id,
        disabled: false,
        sessions_ended: None,
    }))
}

/// `DELETE /admin/v1/users/{id}`: personal data erased (the user, sessions, the client addresses
/// of the user's audit rows); the audit keeps the random id and the addresses' pseudonyms.
#[utoipa::path(
    delete,
    path = "/admin/v1/users/{id}",
    tag = "users",
    security(("bearer" = ["admin:users"])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Done"), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn delete_user(
    call: AdminCall,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    service::delete_user(&call.ctx(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Paging of a user export's audit rows.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportPage {
    /// Audit rows after this sequence number.
    after: Option<i64>,
    /// Audit rows per page, default 1000, taken into 1 to 1000.
    limit: Option<i64>,
}

/// `GET /admin/v1/users/{id}/export`: the user's record, every session (live or ended) and every
/// audit row whose actor or target is the user, paged by `after` (`next_after` is set while more
/// rows follow).
#[utoipa::path(
    get,
    path = "/admin/v1/users/{id}/export",
    tag = "users",
    security(("bearer" = ["admin:users"])),
    params(("id" = String, Path, description = "User id"), ExportPage),
    responses((status = 200, description = "`user`, `sessions`, `audit`, `next_after`", body = UserExport), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn export_user(
    call: AdminCall,
    PathParam(id): PathParam<String>,
    QueryParams(page): QueryParams<ExportPage>,
) -> Result<Json<UserExport>, ApiError> {
    let export = service::export_user(&call.ctx(), &id, page.after, page.limit).await?;
    Ok(Json(UserExport {
        user: export.user,
        sessions: export.sessions,
        audit: export.audit,
        next_after: export.next_after,
    }))
}
