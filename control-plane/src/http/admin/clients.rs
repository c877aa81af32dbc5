//! `/admin/v1/clients`: create, list, read, change and rotate the secret of OAuth clients.

use crate::http::error::ApiError;
use crate::http::extractors::AdminCall;
use crate::http::json::JsonBody;
use crate::oauth::grant::GrantType;
use crate::oauth::service::{self, ClientChanges, ClientSpec};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Paging parameters.
#[derive(Debug, Deserialize)]
pub struct Page {
    after: Option<String>,
    limit: Option<i64>,
}

/// A new client.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    name: String,
    #[serde(default)]
    scopes: String,
    #[serde(default = "default_grants")]
    grant_types: Vec<GrantType>,
    #[serde(default)]
    roles: Vec<String>,
    tenant: Option<String>,
}

fn default_grants() -> Vec<GrantType> {
    vec![GrantType::ClientCredentials]
}

/// `POST /admin/v1/clients`: the secret is in this response only.
pub async fn create_client(
    call: AdminCall,
    JsonBody(body): JsonBody<CreateClient>,
) -> Result<Response, ApiError> {
    let spec = ClientSpec {
        name: body.name,
        scopes: body.scopes,
        grant_types: body.grant_types,
        roles: body.roles,
        tenant: body.tenant,
    };
    let (client, secret) = service::create_client(&call.ctx(), &spec).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"client": client, "client_id": client.client_id, "client_secret": secret})),
    )
        .into_response())
}

/// `GET /admin/v1/clients`: a tenant's administrators list that tenant's clients.
pub async fn list_clients(
    call: AdminCall,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let found =
        service::list_clients(&call.ctx(), page.after.as_deref().unwrap_or(""), page.limit).await?;
    Ok(Json(json!({"clients": found})))
}

/// `GET /admin/v1/clients/{id}`: the client and its token statistics (from the audit log).
pub async fn get_client(call: AdminCall, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let (client, stats) = service::get_client(&call.ctx(), &id).await?;
    Ok(Json(json!({
        "client": client,
        "stats": {"tokens_issued": stats.tokens_issued, "last_issued_at": stats.last_issued_at},
    })))
}

/// Changes to a client.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateClient {
    scopes: Option<String>,
    grant_types: Option<Vec<GrantType>>,
    roles: Option<Vec<String>>,
    tenant: Option<String>,
    disabled: Option<bool>,
}

/// `PATCH /admin/v1/clients/{id}`.
pub async fn update_client(
    call: AdminCall,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateClient>,
) -> Result<Json<Value>, ApiError> {
    let changes = ClientChanges {
        scopes: body.scopes,
        grant_types: body.grant_types,
        roles: body.roles,
        tenant: body.tenant,
        disabled: body.disabled,
    };
    let client = service::update_client(&call.ctx(), &id, &changes).await?;
    Ok(Json(json!({"client": client})))
}

/// `POST /admin/v1/clients/{id}/rotate-secret`: a new secret; the old one works for the
/// overlap window.
pub async fn rotate_client_secret(
    call: AdminCall,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rotated = service::rotate_client_secret(&call.ctx(), &id).await?;
    Ok(Json(json!({
        "client_id": id,
        "client_secret": rotated.secret,
        "previous_secret_expires": rotated.previous_expires,
    })))
}
