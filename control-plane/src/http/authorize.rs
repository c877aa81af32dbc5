//! `POST /v1/authorize`: the edge's decision for services that are not behind Envoy. The token
//! is verified and checked for revocation against the published bundle and the request is
//! evaluated by the same `authz` code as the filter, so both give the same answer. Callers
//! authenticate as OAuth clients (HTTP Basic) and follow introspection's rule: a client may ask
//! about its own tokens, and about others' only with scope `authorize`.

use super::error::{ApiError, OAuthCode};
use super::extractors::{authenticate_client, may_examine, OAuthForm, AUTHORIZE_SCOPE};
use super::json::JsonBody;
use crate::oauth::audience::Accept;
use crate::oauth::tokens;
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use portcullis_authz::policy::HttpRequest;
use serde::Deserialize;
use serde_json::{json, Value};

/// The question.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// The caller's access token.
    token: String,
    /// HTTP method.
    method: String,
    /// Path as received (normalised here like the filter does).
    path: String,
    /// Host (defaults to none).
    #[serde(default)]
    host: Option<String>,
    /// Client address.
    #[serde(default)]
    source_ip: Option<String>,
}

fn deny(reason: &str, errors: Vec<String>) -> Json<Value> {
    Json(json!({"decision": "deny", "reason": reason, "policy_ids": [], "errors": errors}))
}

/// `POST /v1/authorize`.
#[utoipa::path(
    post,
    path = "/v1/authorize",
    tag = "edge",
    security(("clientBasic" = []), ()),
    request_body = AuthorizeRequest,
    responses((status = 200, description = "The decision", body = serde_json::Value), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(question): JsonBody<AuthorizeRequest>,
) -> Result<Json<Value>, ApiError> {
    let form = OAuthForm {
        params: Default::default(),
        headers,
    };
    let caller = authenticate_client(&state, &form).await?;
    let published = state.published();
    let Some(served) = &published.served else {
        return Err(ApiError::Unavailable(
            "no policy set has been loaded yet".into(),
        ));
    };
    let claims =
        match tokens::verify_signature(&published, state.config(), Accept::Edge, &question.token) {
            Ok(claims) if may_examine(&caller, &claims.client_id, AUTHORIZE_SCOPE) => claims,
            Ok(_) => return Ok(deny("invalid_token", Vec::new())),
            // Why another client's token fails is that client's business.
            Err(error) if caller.scopes.iter().any(|s| s == AUTHORIZE_SCOPE) => {
                return Ok(deny("invalid_token", vec![error.reason().into()]))
            }
            Err(_) => return Ok(deny("invalid_token", Vec::new())),
        };
    if published.revocations.check(&claims).is_err() {
        return Ok(deny("revoked", Vec::new()));
    }
    let Ok(path) = portcullis_authz::path::normalize(&question.path) else {
        return Ok(deny("bad_path", Vec::new()));
    };
    if question.method.is_empty() || question.method.len() > 32 {
        return Err(ApiError::oauth(
            OAuthCode::InvalidRequest,
            "method must be 1 to 32 characters",
        ));
    }
    let host = question
        .host
        .as_deref()
        .map(portcullis_authz::gate::host_of)
        .unwrap_or_default();
    let decision = served.snapshot.engine.decide(
        &claims,
        &HttpRequest {
            method: &question.method,
            path: &path.path,
            host: &host,
            source_ip: question.source_ip.as_deref(),
            now: crate::now(),
        },
    );
    let (label, reason) = if decision.allowed {
        ("allow", "policy")
    } else {
        ("deny", "policy")
    };
    Ok(Json(json!({
        "decision": label,
        "reason": reason,
        "policy_ids": decision.policy_ids,
        "errors": decision.errors,
        "principal": claims.sub.to_string(),
        "path": path.path,
        "bundle_version": published.version,
    })))
}
