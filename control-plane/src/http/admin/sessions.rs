//! `/admin/v1/sessions`: live sessions, and ending one.

use crate::http::error::ApiError;
use crate::http::extractors::AdminCall;
use crate::identity::service;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Session listing filter.
#[derive(Debug, Deserialize)]
pub struct SessionQuery {
    user_id: Option<String>,
}

/// `GET /admin/v1/sessions`.
pub async fn list_sessions(
    call: AdminCall,
    Query(query): Query<SessionQuery>,
) -> Result<Json<Value>, ApiError> {
    let found = service::list_sessions(&call.ctx(), query.user_id.as_deref()).await?;
    Ok(Json(json!({"sessions": found})))
}

/// `DELETE /admin/v1/sessions/{id}`: acting on the session's user.
pub async fn revoke_session(
    call: AdminCall,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::revoke_session(&call.ctx(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
