//! `/admin/v1/policies`: the set in force, publishing a new one, the stored versions and
//! activating one.

use crate::http::error::ApiError;
use crate::http::extractors::AdminCall;
use crate::http::json::JsonBody;
use crate::policy::service;
use crate::policy::set::PolicySet;
use axum::extract::Path;
use axum::Json;
use serde_json::{json, Value};

/// `GET /admin/v1/policies`: the set in force.
#[utoipa::path(
    get,
    path = "/admin/v1/policies",
    tag = "policies",
    security(("bearer" = ["admin:policies"])),
    responses((status = 200, description = "The set in force with its version", body = serde_json::Value), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn get_policies(call: AdminCall) -> Result<Json<Value>, ApiError> {
    let (version, set) = crate::policy::store::active(&call.state().db().pool)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(
        json!({"version": version, "schema": set.schema, "policies": set.policies, "entities": set.entities, "tests": set.tests}),
    ))
}

/// `PUT /admin/v1/policies`: validated with the edge's engine, stored as a new version, made
/// active; refused with Cedar's diagnostics otherwise.
#[utoipa::path(
    put,
    path = "/admin/v1/policies",
    tag = "policies",
    security(("bearer" = ["admin:policies"])),
    request_body = PolicySet,
    responses((status = 200, description = "`version` and `bundle_version`", body = serde_json::Value), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn put_policies(
    call: AdminCall,
    JsonBody(set): JsonBody<PolicySet>,
) -> Result<Json<Value>, ApiError> {
    let version = service::publish(&call.ctx(), &set).await?;
    Ok(Json(
        json!({"version": version, "bundle_version": call.state().published().version}),
    ))
}

/// `GET /admin/v1/policies/versions`.
#[utoipa::path(
    get,
    path = "/admin/v1/policies/versions",
    tag = "policies",
    security(("bearer" = ["admin:policies"])),
    responses((status = 200, description = "`versions`", body = serde_json::Value), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn policy_versions(call: AdminCall) -> Result<Json<Value>, ApiError> {
    let versions = crate::policy::store::versions(&call.state().db().pool).await?;
    Ok(Json(json!({"versions": versions})))
}

/// `POST /admin/v1/policies/versions/{version}/activate`: roll back (or forward).
#[utoipa::path(
    post,
    path = "/admin/v1/policies/versions/{version}/activate",
    tag = "policies",
    security(("bearer" = ["admin:policies"])),
    params(("version" = i64, Path, description = "Policy version")),
    responses((status = 200, description = "`version` and `bundle_version`", body = serde_json::Value), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn activate_policy(
    call: AdminCall,
    Path(version): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    service::activate(&call.ctx(), version).await?;
    Ok(Json(
        json!({"version": version, "bundle_version": call.state().published().version}),
    ))
}
