//! Operations endpoints: liveness, Prometheus metrics and the OpenAPI document (readiness is
//! `readiness.rs`).

use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use subtle::ConstantTimeEq as _;

/// `GET /healthz`: the process is serving.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    responses((status = 200, description = "Serving", body = String, content_type = "text/plain"))
)]
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /metrics`; with `PORTCULLIS_METRICS_TOKEN`, only for a bearer of that token (the
/// counters show login failures and traffic, which an outsider should not watch).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    security((), ("metricsToken" = [])),
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"), (status = 401, description = "A metrics token is configured and was not presented", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.config().metrics_token {
        let presented = super::extractors::bearer(&headers, None).unwrap_or_default();
        let matches: bool = presented.as_bytes().ct_eq(expected.as_bytes()).into();
        if !matches {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")],
                "a metrics bearer token is required",
            )
                .into_response();
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics().render(state.published().version),
    )
        .into_response()
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    responses((status = 200, description = "This document", body = serde_json::Value), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn openapi(State(state): State<AppState>) -> Json<Value> {
    Json(super::openapi::document(&state.config().issuer))
}
