//! The HTTP surface: `app(state)` builds the whole router.

pub mod admin;
pub mod authorize;
pub mod edge;
pub mod error;
pub mod json;
pub mod me;
pub mod oauth;
pub mod openapi;
pub mod ops;
pub mod request;

use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;

/// Largest request body accepted anywhere, in bytes (policy sets are the largest).
pub const MAX_BODY_BYTES: usize = crate::policies::MAX_POLICY_BYTES + 64 * 1024;

/// The service router.
pub fn app(state: AppState) -> Router {
    let oauth_forms = Router::new()
        .route("/oauth2/token", post(oauth::token))
        .route("/oauth2/revoke", post(oauth::revoke))
        .route("/oauth2/introspect", post(oauth::introspect))
        .layer(DefaultBodyLimit::max(request::MAX_FORM_BYTES));
    Router::new()
        .merge(oauth_forms)
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata),
        )
        .route("/.well-known/jwks.json", get(oauth::jwks))
        .route("/oauth2/userinfo", get(oauth::userinfo))
        .route("/plugin/v1/bundle", get(edge::bundle))
        .route("/v1/authorize", post(authorize::authorize))
        .route("/v1/me/sessions", get(me::list_sessions))
        .route("/v1/me/sessions/{id}", delete(me::revoke_session))
        .route("/v1/me/password", post(me::change_password))
        .route("/v1/me/totp", post(me::enroll_totp).delete(me::remove_totp))
        .route("/v1/me/totp/confirm", post(me::confirm_totp))
        .route(
            "/admin/v1/users",
            post(admin::create_user).get(admin::list_users),
        )
        .route(
            "/admin/v1/users/{id}",
            get(admin::get_user)
                .patch(admin::update_user)
                .delete(admin::delete_user),
        )
        .route("/admin/v1/users/{id}/disable", post(admin::disable_user))
        .route("/admin/v1/users/{id}/enable", post(admin::enable_user))
        .route("/admin/v1/users/{id}/export", get(admin::export_user))
        .route(
            "/admin/v1/clients",
            post(admin::create_client).get(admin::list_clients),
        )
        .route(
            "/admin/v1/clients/{id}",
            get(admin::get_client).patch(admin::update_client),
        )
        .route(
            "/admin/v1/clients/{id}/rotate-secret",
            post(admin::rotate_client_secret),
        )
        .route("/admin/v1/keys", get(admin::list_keys))
        .route("/admin/v1/keys/rotate", post(admin::rotate_keys))
        .route("/admin/v1/audit", get(admin::audit_log))
        .route("/admin/v1/sessions", get(admin::list_sessions))
        .route("/admin/v1/sessions/{id}", delete(admin::revoke_session))
        .route(
            "/admin/v1/policies",
            get(admin::get_policies).put(admin::put_policies),
        )
        .route("/admin/v1/policies/versions", get(admin::policy_versions))
        .route(
            "/admin/v1/policies/versions/{version}/activate",
            post(admin::activate_policy),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
