//! Keys and tokens for tests, and a bundle built from the repository's `policies/`.

use portcullis_authz::bundle::Bundle;
use portcullis_authz::issue::SigningKey;
use portcullis_authz::jwk::Jwks;
use portcullis_test_support::fixtures::{claims_at, with_changes};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

pub use portcullis_test_support::fixtures::{AUDIENCE, ISSUER};

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The default signing key.
pub fn key() -> SigningKey {
    SigningKey::ed25519("key-1", [21; 32])
}

/// The key the test bundle server signs bundles with, as the control plane signs with its
/// active bundle-signing key.
pub fn bundle_key() -> SigningKey {
    SigningKey::ed25519("b-test", [31; 32])
}

/// The filter's `bundle_signing_keys` pinning [`bundle_key`].
pub fn bundle_pins() -> Value {
    json!([bundle_key().public_jwk()])
}

/// The `Portcullis-Bundle-Signature` of `body` by [`bundle_key`].
pub fn bundle_signature(body: &[u8]) -> String {
    portcullis_authz::bundle_signature::sign(&bundle_key(), body)
}

/// The `Portcullis-Bundle-Freshness` of `version` at `at_ms` (ms since the epoch) by
/// [`bundle_key`].
pub fn bundle_freshness(version: u64, at_ms: u64) -> String {
    portcullis_authz::bundle_signature::sign_freshness(&bundle_key(), version, at_ms / 1_000)
}

/// The `"version"` of a bundle document, 0 when it has none.
pub fn bundle_version(body: &[u8]) -> u64 {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|b| b["version"].as_u64())
        .unwrap_or(0)
}

/// Valid claims for `user:42` of tenant `acme` with `scope`, issued now and expiring in 15
/// minutes: the standard claim set with a `jti` of its own.
pub fn claims(scope: &str) -> Value {
    with_changes(
        claims_at(now()),
        json!({"jti": format!("jti-{}", now_nanos()), "scope": scope, "tenant": "acme"}),
    )
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A signed token for `claims`.
pub fn token(claims: &Value) -> String {
    key().sign_access_token(claims)
}

/// A bundle trusting `keys`, with the repository's schema, policies and entities.
pub fn bundle(version: u64, keys: &[&SigningKey]) -> Bundle {
    // The control plane's own loader, so the bundle holds exactly what `portcullis` would serve.
    let set = portcullis_control_plane::policy::set::PolicySet::from_dir(
        &crate::repo_root().join("policies"),
    )
    .unwrap_or_else(|e| panic!("policies/: {e}"));
    Bundle {
        version,
        issuer: ISSUER.into(),
        audiences: vec![AUDIENCE.into()],
        jwks: Jwks {
            keys: keys.iter().map(|k| k.public_jwk()).collect(),
        },
        policies: set.policies,
        schema: set.schema,
        entities: set.entities,
        revoked: Vec::new(),
    }
}
