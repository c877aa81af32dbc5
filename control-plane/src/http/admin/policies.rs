//! `/admin/v1/policies`: the set in force, publishing a new one, the stored versions and
//! activating one.

use crate::http::error::ApiError;
use crate::http::extractors::AdminCall;
use crate::http::json::{JsonBody, PathParam};
use crate::policy::service;
use crate::policy::set::PolicySet;
use crate::policy::store::VersionInfo;
use axum::Json;
use serde::Serialize;

/// The policy set in force and its version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActivePolicies {
    /// Its version.
    pub version: i64,
    /// The set.
    #[serde(flatten)]
    pub set: PolicySet,
}

/// The version a change made active, and the bundle version that carries it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Activated {
    /// The policy version in force.
    pub version: i64,
    /// The bundle version this control plane serves.
    pub bundle_version: i64,
}

/// Every stored version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionList {
    /// Newest first.
    pub versions: Vec<VersionInfo>,
}

/// `GET /admin/v1/policies`: the set in force.
#[utoipa::path(
    get,
    path = "/admin/v1/policies",
    tag = "policies",
    security(("bearer" = ["admin:policies"])),
    responses((status = 200, description = "The set in force with its version", body = ActivePolicies), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn get_policies(call: AdminCall) -> Result<Json<ActivePolicies>, ApiError> {
    let (version, set) = crate::policy::store::active(&call.state().db().pool)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(ActivePolicies { version, set }))
}

/// `PUT /admin/v1/policies`: validated with the edge's engine, stored as a new version, made
/// active; refused with Cedar's diagnostics otherwise.
#[utoipa::path(
    put,
    path = "/admin/v1/policies",
    tag = "policies",
    security(("bearer" = ["admin:policies"])),
    request_body = PolicySet,
    responses((status = 200, description = "`version` and `bundle_version`", body = Activated), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn put_policies(
    call: AdminCall,
    JsonBody(set): JsonBody<PolicySet>,
) -> Result<Json<Activated>, ApiError> {
    let version = service::publish(&call.ctx(), &set).await?;
    Ok(Json(Activated {
        version,
        bundle_version: call.state().published().version,
    }))
}

/// `GET /admin/v1/policies/versions`.
#[utoipa::path(
    get,
    path = "/admin/v1/policies/versions",
    tag = "policies",
    security(("bearer" = ["admin:policies"])),
    responses((status = 200, description = "`versions`", body = VersionList), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn policy_versions(call: AdminCall) -> Result<Json<VersionList>, ApiError> {
    let versions = crate::policy::store::versions(&call.state().db().pool).await?;
    Ok(Json(VersionList { versions }))
}

/// `POST /admin/v1/policies/versions/{version}/activate`: roll back (or forward).
#[utoipa::path(
    post,
    path = "/admin/v1/policies/versions/{version}/activate",
    tag = "policies",
    security(("bearer" = ["admin:policies"])),
    params(("version" = i64, Path, minimum = 1, description = "Policy version")),
    responses((status = 200, description = "`version` and `bundle_version`", body = Activated), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn activate_policy(
    call: AdminCall,
    PathParam(version): PathParam<i64>,
) -> Result<Json<Activated>, ApiError> {
    service::activate(&call.ctx(), version).await?;
    Ok(Json(Activated {
        version,
        bundle_version: call.state().published().version,
    }))
}
