//! `GET /plugin/v1/bundle`: what every edge filter follows. Authenticated with the bundle
//! credential; `ETag`/`If-None-Match` → 304; `?wait=<seconds>` holds the request until the
//! version moves (long-poll), so a change reaches every Envoy in about a second. Every `200`
//! carries `Portcullis-Bundle-Signature`, the detached JWS over its body that edges verify
//! against their pinned keys, and every `200` and `304` carries `Portcullis-Bundle-Freshness`,
//! the signed statement that this version is current now: an edge's freshness is that signed
//! time, so a forged `304` or a replayed old `200` cannot keep it from going stale.

use super::error::{ApiError, OAuthCode};
use super::extractors::bearer;
use crate::http::json::QueryParams;
use crate::keys::secrets::constant_time_eq;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use portcullis_authz::bundle_signature::{sign_freshness, FRESHNESS_HEADER, SIGNATURE_HEADER};
use serde::Deserialize;
use std::time::Duration;

/// Longest long-poll, seconds.
pub const MAX_WAIT_SECONDS: u64 = 60;

/// Query parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BundleQuery {
    /// Hold the request up to this many seconds (more is taken as 60) until the version moves.
    #[param(value_type = Option<i64>, minimum = 0)]
    wait: Option<String>,
}

/// `GET /plugin/v1/bundle`.
#[utoipa::path(
    get,
    path = "/plugin/v1/bundle",
    tag = "edge",
    security(("bundleCredential" = [])),
    params(BundleQuery),
    responses((status = 200, description = "The signed bundle", body = serde_json::Value), (status = 304, description = "Unchanged since If-None-Match"), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn bundle(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    QueryParams(query): QueryParams<BundleQuery>,
) -> Result<Response, ApiError> {
    let Some(expected) = &state.config().bundle_credential else {
        return Err(ApiError::Unavailable(
            "PORTCULLIS_BUNDLE_CREDENTIAL is not set".into(),
        ));
    };
    let presented = bearer(&headers, uri.query());
    if !presented.is_ok_and(|presented| constant_time_eq(presented, expected)) {
        return Err(ApiError::oauth(
            OAuthCode::InvalidToken,
            "a valid bundle credential is required",
        ));
    }
    let wait = match query.wait.as_deref() {
        None => 0,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .and_then(|seconds| u64::try_from(seconds).ok())
            .ok_or_else(|| ApiError::BadRequest("wait must be whole seconds".into()))?
            .min(MAX_WAIT_SECONDS),
    };
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let mut updates = state.subscribe();
    loop {
        let published = updates.borrow_and_update().clone();
        let current = published.served.as_ref().map(|s| s.etag.clone());
        match (&published.served, &if_none_match) {
            (Some(served), Some(tag)) if *tag != served.etag => return Ok(full(served)),
            (Some(served), None) => return Ok(full(served)),
            _ => {}
        }
        let changed = tokio::time::timeout_at(deadline, updates.changed()).await;
        if !matches!(changed, Ok(Ok(()))) {
            return Ok(match current {
                Some(tag) => match &published.served {
                    Some(served) => not_modified(served, &tag),
                    None => ApiError::Unavailable("no policy set has been loaded yet".into())
                        .into_response(),
                },
                None => ApiError::Unavailable("no policy set has been loaded yet".into())
                    .into_response(),
            });
        }
    }
}

fn full(served: &crate::bundle::Served) -> Response {
    let mut response = (StatusCode::OK, served.body.to_vec()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(tag) = HeaderValue::from_str(&served.etag) {
        headers.insert(header::ETAG, tag);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(signature) = HeaderValue::from_str(&served.signature) {
        headers.insert(SIGNATURE_HEADER, signature);
    }
    insert_freshness(headers, served);
    response
}

fn not_modified(served: &crate::bundle::Served, tag: &str) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    if let Ok(tag) = HeaderValue::from_str(tag) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    insert_freshness(response.headers_mut(), served);
    response
}

/// The signed statement that `served` is the current version now.
fn insert_freshness(headers: &mut HeaderMap, served: &crate::bundle::Served) {
    let now = u64::try_from(crate::now()).unwrap_or(0);
    let fresh = sign_freshness(&served.bundle_signer, served.version, now);
    if let Ok(value) = HeaderValue::from_str(&fresh) {
        headers.insert(FRESHNESS_HEADER, value);
    }
}
