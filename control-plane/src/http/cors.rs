//! CORS for browser clients: an SPA on its own origin calls the token, revocation and userinfo
//! endpoints and reads the discovery documents and the JWKS (RFC 8414, OpenID Connect Discovery;
//! RFC 6749 §3.2 leaves CORS to the server). Those answer a cross-origin request only from an
//! origin some enabled client registered a redirect URI on, and without credentials: they take a
//! bearer token or a form, never a cookie.
//!
//! Nothing else has CORS headers. The admin API, `/v1/me`, the login and logout pages and the
//! bundle are for this origin, an operator's tools or the edge; a browser keeps every other
//! origin's scripts out of them.

use crate::state::AppState;
use axum::http::{header, HeaderValue, Method};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Longest `Origin` looked at.
const MAX_ORIGIN: usize = 256;

/// The CORS layer of the browser client endpoints.
pub fn layer(state: AppState) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::async_predicate(move |origin, _| {
            let state = state.clone();
            async move { allowed(&state, &origin).await }
        }))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600))
}

async fn allowed(state: &AppState, origin: &HeaderValue) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if origin.len() > MAX_ORIGIN || origin == "null" {
        return false;
    }
    match crate::oauth::clients::is_registered_origin(&state.db().pool, origin).await {
        Ok(registered) => registered,
        Err(error) => {
            tracing::warn!(%error, "CORS origin check");
            false
        }
    }
}
