//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` attributes and the
//! request and response types they name: every route with its parameters, body, responses and
//! security (with the admin scope each area needs). A test checks that every documented
//! operation answers, and `schemathesis` (run by `cargo xtask test`) that the server does what
//! the document says.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::{Modify, OpenApi, ToSchema};

/// The document's root: every operation and the security schemes they use.
#[derive(OpenApi)]
#[openapi(
    info(title = "Portcullis control plane"),
    paths(
        super::oauth::metadata,
        super::oauth::openid_configuration,
        super::login::logout::logout_get,
        super::login::logout::logout_post,
        super::oauth::jwks,
        super::login::authorize,
        super::login::login,
        super::oauth::token,
        super::oauth::revoke,
        super::oauth::introspect,
        super::oauth::userinfo,
        super::oauth::userinfo_post,
        super::bundle::bundle,
        super::authorize::authorize,
        super::me::list_sessions,
        super::me::revoke_session,
        super::me::change_password,
        super::me::enroll_totp,
        super::me::remove_totp,
        super::me::confirm_totp,
        super::admin::users::create_user,
        super::admin::users::list_users,
        super::admin::users::get_user,
        super::admin::users::update_user,
        super::admin::users::delete_user,
        super::admin::users::disable_user,
        super::admin::users::enable_user,
        super::admin::users::export_user,
        super::admin::clients::create_client,
        super::admin::clients::list_clients,
        super::admin::clients::get_client,
        super::admin::clients::update_client,
        super::admin::clients::rotate_client_secret,
        super::admin::keys::list_keys,
        super::admin::keys::rotate_keys,
        super::admin::keys::list_bundle_keys,
        super::admin::keys::rotate_bundle_keys,
        super::admin::audit::audit_log,
        super::admin::sessions::list_sessions,
        super::admin::sessions::revoke_session,
        super::admin::policies::get_policies,
        super::admin::policies::put_policies,
        super::admin::policies::policy_versions,
        super::admin::policies::activate_policy,
        super::ops::healthz,
        super::readiness::readyz,
        super::ops::metrics,
        super::ops::openapi,
    ),
    modifiers(&SecuritySchemes),
)]
struct Document;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = || {
            let mut scheme = Http::new(HttpAuthScheme::Bearer);
            scheme.bearer_format = Some("JWT".into());
            SecurityScheme::Http(scheme)
        };
        components.add_security_scheme("bearer", bearer());
        components.add_security_scheme(
            "clientBasic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        components.add_security_scheme(
            "bundleCredential",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "metricsToken",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document for a server at `issuer`.
pub fn document(issuer: &str) -> Value {
    let mut openapi = Document::openapi();
    openapi.info.version = env!("CARGO_PKG_VERSION").into();
    openapi.servers = Some(vec![Server::new(issuer)]);
    let mut document = serde_json::to_value(&openapi).unwrap_or(Value::Null);
    // RFC 6749 §3.1: unknown form parameters are ignored, but no parameter may repeat, so an
    // extra one is a single string.
    for form in ["TokenRequest", "TokenHint"] {
        if let Some(schema) = document["components"]["schemas"].get_mut(form) {
            schema["additionalProperties"] = serde_json::json!({"type": "string"});
        }
    }
    document
}

/// A token request (RFC 6749 §4.3, §4.4, §6), form encoded; the client authenticates with HTTP
/// Basic or with `client_id` and `client_secret` in the body, never both.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// `client_credentials`, `password` or `refresh_token`.
    pub grant_type: crate::oauth::grant::GrantType,
    /// Space-separated scopes (narrowed to what the client and user hold).
    pub scope: Option<String>,
    /// RFC 8707 resource indicator: the audience the token is for.
    pub resource: Option<String>,
    /// `password` grant: the username.
    pub username: Option<String>,
    /// `password` grant: the password.
    pub password: Option<String>,
    /// `password` grant: the TOTP code, when the user has TOTP.
    pub otp: Option<String>,
    /// `refresh_token` grant: the refresh token.
    pub refresh_token: Option<String>,
    /// Client authentication in the body (instead of Basic).
    pub client_id: Option<String>,
    /// Client authentication in the body (instead of Basic).
    pub client_secret: Option<String>,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The RFC 9068 access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The granted scopes, space separated.
    pub scope: String,
    /// A refresh token, for clients allowed the `refresh_token` grant.
    pub refresh_token: Option<String>,
}

/// A token to revoke or introspect (RFC 7009 §2.1, RFC 7662 §2.1), form encoded.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenHint {
    /// The token.
    pub token: String,
    /// `access_token` or `refresh_token`.
    pub token_type_hint: Option<String>,
    /// Client authentication in the body (instead of Basic).
    pub client_id: Option<String>,
    /// Client authentication in the body (instead of Basic).
    pub client_secret: Option<String>,
}
