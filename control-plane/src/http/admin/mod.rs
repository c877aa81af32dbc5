//! `/admin/v1/…`: users, clients, keys, sessions, policies and the audit log. Every request is
//! authorized by `policies/admin-api.cedar` (each area behind its admin scope — `admin:users`,
//! `admin:clients`, `admin:keys`, `admin:audit`, `admin:policies` — or `admin:full`), and every
//! change to a user or client by [`crate::identity::authority`] (no administrator grants or manages more
//! than it holds, nor outside its tenant). Every change is audited in its own transaction.

use super::error::{ApiError, OAuthCode};
use super::oauth::caller;
use crate::identity::authority::Authority;
use crate::oauth::audience::Accept;
use crate::policy::admin_api as admin_policy;
use crate::service::Actor;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;

pub mod audit;
pub mod clients;
pub mod keys;
pub mod policies;
pub mod sessions;
pub mod users;

/// Every `/admin/v1` route, behind [`admin_gate`].
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/admin/v1/users",
            post(users::create_user).get(users::list_users),
        )
        .route(
            "/admin/v1/users/{id}",
            get(users::get_user)
                .patch(users::update_user)
                .delete(users::delete_user),
        )
        .route("/admin/v1/users/{id}/disable", post(users::disable_user))
        .route("/admin/v1/users/{id}/enable", post(users::enable_user))
        .route("/admin/v1/users/{id}/export", get(users::export_user))
        .route(
            "/admin/v1/clients",
            post(clients::create_client).get(clients::list_clients),
        )
        .route(
            "/admin/v1/clients/{id}",
            get(clients::get_client).patch(clients::update_client),
        )
        .route(
            "/admin/v1/clients/{id}/rotate-secret",
            post(clients::rotate_client_secret),
        )
        .route("/admin/v1/keys", get(keys::list_keys))
        .route("/admin/v1/keys/rotate", post(keys::rotate_keys))
        .route("/admin/v1/keys/bundle", get(keys::list_bundle_keys))
        .route(
            "/admin/v1/keys/bundle/rotate",
            post(keys::rotate_bundle_keys),
        )
        .route("/admin/v1/audit", get(audit::audit_log))
        .route("/admin/v1/sessions", get(sessions::list_sessions))
        .route("/admin/v1/sessions/{id}", delete(sessions::revoke_session))
        .route(
            "/admin/v1/policies",
            get(policies::get_policies).put(policies::put_policies),
        )
        .route(
            "/admin/v1/policies/versions",
            get(policies::policy_versions),
        )
        .route(
            "/admin/v1/policies/versions/{version}/activate",
            post(policies::activate_policy),
        )
        .route_layer(middleware::from_fn_with_state(state, admin_gate))
}

/// Authorizes every admin request with `policies/admin-api.cedar` before its handler runs.
async fn admin_gate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let verified = super::extractors::bearer(request.headers(), request.uri().query())
        .map_err(ApiError::from)
        .and_then(|token| caller(&state, token, Accept::ControlPlane));
    let claims = match verified {
        Ok(claims) => claims,
        Err(error) => return error.into_response(),
    };
    let authority = match Authority::held_by(&state.db().pool, &claims).await {
        Ok(Some(authority)) => authority,
        Ok(None) => {
            return ApiError::oauth(
                OAuthCode::InvalidToken,
                "the token's user or client is gone or disabled",
            )
            .into_response()
        }
        Err(error) => return ApiError::from(error).into_response(),
    };
    // The area is decided on what the token carries and the principal still holds, in the
    // tenant it is in now: a demotion or a move into a tenant takes effect at once.
    let mut current = claims.clone();
    current.scopes.retain(|s| authority.holds(s));
    current.tenant = authority.tenant().map(str::to_owned);
    let decision = admin_policy::decide(
        &current,
        request.method().as_str(),
        request.uri().path(),
        crate::now(),
    );
    if !decision.allowed {
        return ApiError::oauth(
            OAuthCode::InsufficientScope,
            "the admin policy does not allow this request (each area needs admin:<area> or admin:full; keys, policies and the audit log need a token without a tenant)",
        )
        .into_response();
    }
    request.extensions_mut().insert(Actor {
        subject: claims.sub.to_string(),
        authority,
    });
    next.run(request).await
}
