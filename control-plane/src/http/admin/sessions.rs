//! `/admin/v1/sessions`: live sessions, and ending one.

use crate::http::error::ApiError;
use crate::http::extractors::AdminCall;
use crate::http::json::{PathParam, QueryParams};
use crate::identity::service;
use crate::identity::sessions::Session;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

/// Session listing filter.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionQuery {
    user_id: Option<String>,
}

/// Live sessions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionList {
    /// The sessions.
    pub sessions: Vec<Session>,
}

/// `GET /admin/v1/sessions`.
#[utoipa::path(
    get,
    path = "/admin/v1/sessions",
    tag = "sessions",
    security(("bearer" = ["admin:users"])),
    params(SessionQuery),
    responses((status = 200, description = "`sessions`", body = SessionList), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn list_sessions(
    call: AdminCall,
    QueryParams(query): QueryParams<SessionQuery>,
) -> Result<Json<SessionList>, ApiError> {
    let found = service::list_sessions(&call.ctx(), query.user_id.as_deref()).await?;
    Ok(Json(SessionList { sessions: found }))
}

/// `DELETE /admin/v1/sessions/{id}`: acting on the session's user.
#[utoipa::path(
    delete,
    path = "/admin/v1/sessions/{id}",
    tag = "sessions",
    security(("bearer" = ["admin:users"])),
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Done"), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn revoke_session(
    call: AdminCall,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    service::revoke_session(&call.ctx(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
