//! The HTTP surface: `app(state)` builds the whole router.

pub mod admin;
pub mod authorize;
pub mod bundle;
pub mod code_exchange;
pub mod cors;
pub mod error;
pub mod extractors;
pub mod json;
pub mod login;
pub mod me;
pub mod oauth;
pub mod openapi;
pub mod ops;
pub mod readiness;

use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;

/// Largest request body accepted anywhere, in bytes (policy sets are the largest).
pub const MAX_BODY_BYTES: usize = crate::policy::set::MAX_POLICY_BYTES + 64 * 1024;

/// The service router.
pub fn app(state: AppState) -> Router {
    // What a browser client on another origin calls (see `cors`).
    let browser_client_api = Router::new()
        .route("/oauth2/token", post(oauth::token))
        .route("/oauth2/revoke", post(oauth::revoke))
        .layer(DefaultBodyLimit::max(extractors::MAX_FORM_BYTES))
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata),
        )
        .route(
            "/.well-known/openid-configuration",
            get(oauth::openid_configuration),
        )
        .route("/.well-known/jwks.json", get(oauth::jwks))
        .route(
            "/oauth2/userinfo",
            get(oauth::userinfo).post(oauth::userinfo_post),
        )
        .layer(cors::layer(state.clone()));
    let oauth_forms = Router::new()
        .route("/oauth2/introspect", post(oauth::introspect))
        .route("/oauth2/login", post(login::login))
        .route(
            "/oauth2/logout",
            get(login::logout::logout_get).post(login::logout::logout_post),
        )
        .layer(DefaultBodyLimit::max(extractors::MAX_FORM_BYTES));
    Router::new()
        .merge(browser_client_api)
        .merge(oauth_forms)
        .route("/oauth2/authorize", get(login::authorize))
        .route("/plugin/v1/bundle", get(bundle::bundle))
        .route("/v1/authorize", post(authorize::authorize))
        .route("/v1/me/sessions", get(me::list_sessions))
        .route("/v1/me/sessions/{id}", delete(me::revoke_session))
        .route("/v1/me/password", post(me::change_password))
        .route("/v1/me/totp", post(me::enroll_totp).delete(me::remove_totp))
        .route("/v1/me/totp/confirm", post(me::confirm_totp))
        .merge(admin::routes(state.clone()))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(readiness::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
