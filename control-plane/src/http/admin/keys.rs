//! `/admin/v1/keys`: the token-signing and bundle-signing keys and their rotation.

use crate::http::error::ApiError;
use crate::http::extractors::AdminCall;
use crate::http::json::QueryParams;
use crate::keys::service;
use crate::keys::signing::KeyInfo;
use crate::state::AppState;
use axum::Json;
use portcullis_authz::jwk::Jwk;
use serde::{Deserialize, Serialize};

/// Keys with their states.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    /// The keys.
    pub keys: Vec<KeyInfo>,
    /// The key that signs now, after a rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_kid: Option<String>,
}

/// The bundle-signing keys and the public keys edges pin.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BundleKeys {
    /// The keys with their states.
    pub keys: Vec<KeyInfo>,
    /// The active and the next key: the filter configuration's `bundle_signing_keys`.
    #[schema(value_type = Vec<Object>)]
    pub pins: Vec<Jwk>,
    /// The key that signs now, after a rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_kid: Option<String>,
}

/// `GET /admin/v1/keys`.
#[utoipa::path(
    get,
    path = "/admin/v1/keys",
    tag = "keys",
    security(("bearer" = ["admin:keys"])),
    responses((status = 200, description = "`keys`", body = KeyList), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn list_keys(call: AdminCall) -> Result<Json<KeyList>, ApiError> {
    let keys = crate::keys::signing::list(&call.state().db().pool).await?;
    Ok(Json(KeyList {
        keys,
        active_kid: None,
    }))
}

/// Rotation options.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RotateQuery {
    /// Emergency rotation (a compromised key): skip the pre-publication wait and retire the old
    /// key at once (its tokens stop working); edges that have not fetched the next key yet
    /// reject new tokens until they do.
    #[serde(default)]
    force: bool,
}

/// `POST /admin/v1/keys/rotate[?force=true]`: 409 while the next key is too recently published.
#[utoipa::path(
    post,
    path = "/admin/v1/keys/rotate",
    tag = "keys",
    security(("bearer" = ["admin:keys"])),
    params(RotateQuery),
    responses((status = 200, description = "`active_kid` and `keys`", body = KeyList), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn rotate_keys(
    call: AdminCall,
    QueryParams(query): QueryParams<RotateQuery>,
) -> Result<Json<KeyList>, ApiError> {
    let kid = service::rotate_signing_key(&call.ctx(), query.force).await?;
    let keys = crate::keys::signing::list(&call.state().db().pool).await?;
    Ok(Json(KeyList {
        keys,
        active_kid: Some(kid),
    }))
}

/// The bundle-signing keys with their states, and the public keys edges pin (`pins`: the active
/// and the next key, the `bundle_signing_keys` of the filter configuration).
async fn bundle_keys_view(state: &AppState) -> Result<BundleKeys, ApiError> {
    let pool = &state.db().pool;
    let pins = crate::keys::bundle::pins(pool, state.master()).await?;
    Ok(BundleKeys {
        keys: crate::keys::bundle::list(pool).await?,
        pins: pins.keys,
        active_kid: None,
    })
}

/// `GET /admin/v1/keys/bundle`.
#[utoipa::path(
    get,
    path = "/admin/v1/keys/bundle",
    tag = "keys",
    security(("bearer" = ["admin:keys"])),
    responses((status = 200, description = "`keys` and `pins`", body = BundleKeys), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn list_bundle_keys(call: AdminCall) -> Result<Json<BundleKeys>, ApiError> {
    Ok(Json(bundle_keys_view(call.state()).await?))
}

/// `POST /admin/v1/keys/bundle/rotate[?force=true]`: the next bundle-signing key signs from now
/// on and the active one retires; 409 while the next key is younger than
/// `PORTCULLIS_KEY_PREPUBLISH` (`force` for an emergency). Edges that have not pinned the next key
/// refuse every bundle from here on (keeping their last good one until it goes stale), so pin it
/// everywhere first.
#[utoipa::path(
    post,
    path = "/admin/v1/keys/bundle/rotate",
    tag = "keys",
    security(("bearer" = ["admin:keys"])),
    params(RotateQuery),
    responses((status = 200, description = "`active_kid`, `keys` and `pins`", body = BundleKeys), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn rotate_bundle_keys(
    call: AdminCall,
    QueryParams(query): QueryParams<RotateQuery>,
) -> Result<Json<BundleKeys>, ApiError> {
    let kid = service::rotate_bundle_key(&call.ctx(), query.force).await?;
    let mut view = bundle_keys_view(call.state()).await?;
    view.active_kid = Some(kid);
    Ok(Json(view))
}
