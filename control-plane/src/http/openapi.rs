//! The OpenAPI 3.1 document, generated from the route table so it lists every route `app`
//! serves (a test checks each one answers).

use serde_json::{json, Map, Value};

/// One documented operation.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// HTTP method, lower case.
    pub method: &'static str,
    /// Path template (`{id}` parameters).
    pub path: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// How the caller authenticates: `none`, `client`, `bearer`, `admin:<scope>`, `bundle`.
    pub auth: &'static str,
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    auth: &'static str,
) -> Operation {
    Operation {
        method,
        path,
        summary,
        auth,
    }
}

/// Every route.
pub const OPERATIONS: &[Operation] = &[
    op(
        "get",
        "/.well-known/oauth-authorization-server",
        "Authorization server metadata (RFC 8414)",
        "none",
    ),
    op(
        "get",
        "/.well-known/jwks.json",
        "Published signing keys (RFC 7517), public parts only",
        "none",
    ),
    op(
        "post",
        "/oauth2/token",
        "Token endpoint: password (+otp), client_credentials, refresh_token (RFC 6749)",
        "client",
    ),
    op(
        "post",
        "/oauth2/revoke",
        "Token revocation (RFC 7009)",
        "client",
    ),
    op(
        "post",
        "/oauth2/introspect",
        "Token introspection (RFC 7662)",
        "client",
    ),
    op(
        "get",
        "/oauth2/userinfo",
        "Claims about the token's user",
        "bearer",
    ),
    op(
        "get",
        "/plugin/v1/bundle",
        "Edge bundle: keys, policies, schema, entities, revocations; ETag and ?wait= long-poll",
        "bundle",
    ),
    op(
        "post",
        "/v1/authorize",
        "The edge's decision for a token + method + path (same code as the filter)",
        "client",
    ),
    op("get", "/v1/me/sessions", "Own sessions", "bearer"),
    op(
        "delete",
        "/v1/me/sessions/{id}",
        "End one of own sessions",
        "bearer",
    ),
    op(
        "post",
        "/v1/me/password",
        "Change own password (current password required)",
        "bearer",
    ),
    op(
        "post",
        "/v1/me/totp",
        "Start TOTP enrolment (current password required)",
        "bearer",
    ),
    op(
        "delete",
        "/v1/me/totp",
        "Remove TOTP (current password required)",
        "bearer",
    ),
    op(
        "post",
        "/v1/me/totp/confirm",
        "Confirm TOTP enrolment with a code",
        "bearer",
    ),
    op("post", "/admin/v1/users", "Create a user", "admin:users"),
    op(
        "get",
        "/admin/v1/users",
        "List users (prefix, after, limit)",
        "admin:users",
    ),
    op("get", "/admin/v1/users/{id}", "Get a user", "admin:users"),
    op(
        "patch",
        "/admin/v1/users/{id}",
        "Update roles, scopes, tenant, e-mail",
        "admin:users",
    ),
    op(
        "delete",
        "/admin/v1/users/{id}",
        "Delete a user and erase personal data",
        "admin:users",
    ),
    op(
        "post",
        "/admin/v1/users/{id}/disable",
        "Disable a user and end every session",
        "admin:users",
    ),
    op(
        "post",
        "/admin/v1/users/{id}/enable",
        "Enable a user",
        "admin:users",
    ),
    op(
        "get",
        "/admin/v1/users/{id}/export",
        "Export a user's data",
        "admin:users",
    ),
    op(
        "post",
        "/admin/v1/clients",
        "Create a client (secret returned once)",
        "admin:clients",
    ),
    op("get", "/admin/v1/clients", "List clients", "admin:clients"),
    op(
        "get",
        "/admin/v1/clients/{id}",
        "Get a client with token statistics",
        "admin:clients",
    ),
    op(
        "patch",
        "/admin/v1/clients/{id}",
        "Update scopes, grants, disabled",
        "admin:clients",
    ),
    op(
        "post",
        "/admin/v1/clients/{id}/rotate-secret",
        "Rotate the secret with an overlap window",
        "admin:clients",
    ),
    op("get", "/admin/v1/keys", "List signing keys", "admin:keys"),
    op(
        "post",
        "/admin/v1/keys/rotate",
        "Rotate signing keys (next becomes active)",
        "admin:keys",
    ),
    op(
        "get",
        "/admin/v1/keys/bundle",
        "Bundle-signing keys and the public keys edges pin (active, next)",
        "admin:keys",
    ),
    op(
        "post",
        "/admin/v1/keys/bundle/rotate",
        "Rotate bundle-signing keys (next signs, active retires)",
        "admin:keys",
    ),
    op(
        "get",
        "/admin/v1/audit",
        "Audit events (actor, action, target, since, until, after, limit, format=ndjson)",
        "admin:audit",
    ),
    op(
        "get",
        "/admin/v1/sessions",
        "Live sessions (user_id)",
        "admin:users",
    ),
    op(
        "delete",
        "/admin/v1/sessions/{id}",
        "Revoke a session",
        "admin:users",
    ),
    op(
        "get",
        "/admin/v1/policies",
        "The policy set in force",
        "admin:policies",
    ),
    op(
        "put",
        "/admin/v1/policies",
        "Publish a validated policy set",
        "admin:policies",
    ),
    op(
        "get",
        "/admin/v1/policies/versions",
        "Policy versions",
        "admin:policies",
    ),
    op(
        "post",
        "/admin/v1/policies/versions/{version}/activate",
        "Activate (roll back to) a version",
        "admin:policies",
    ),
    op("get", "/healthz", "Liveness", "none"),
    op("get", "/readyz", "Readiness: each dependency with its status and latency (503 without database or signing key)", "none"),
    op("get", "/metrics", "Prometheus metrics", "none"),
    op("get", "/openapi.json", "This document", "none"),
];

/// The document for a server at `issuer`.
pub fn document(issuer: &str) -> Value {
    let mut paths = Map::new();
    for operation in OPERATIONS {
        let entry = paths
            .entry(operation.path.to_owned())
            .or_insert_with(|| json!({}));
        let security = match operation.auth {
            "none" => json!([]),
            "client" => json!([{"clientBasic": []}]),
            "bundle" => json!([{"bundleCredential": []}]),
            "bearer" => json!([{"bearer": []}]),
            scope => json!([{"bearer": [scope]}]),
        };
        let parameters: Vec<Value> = operation
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        entry[operation.method] = json!({
            "summary": operation.summary,
            "security": security,
            "parameters": parameters,
            "responses": {"default": {"description": "JSON; errors are {\"error\", \"error_description\"}"}},
        });
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Portcullis control plane", "version": env!("CARGO_PKG_VERSION")},
        "servers": [{"url": issuer}],
        "paths": paths,
        "components": {"securitySchemes": {
            "clientBasic": {"type": "http", "scheme": "basic"},
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "bundleCredential": {"type": "http", "scheme": "bearer"},
        }},
    })
}
