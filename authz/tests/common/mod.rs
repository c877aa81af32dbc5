//! Shared fixtures: keys, a valid claim set, and bundles built from the repository's `policies/`.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use portcullis_authz::bundle::{Bundle, Snapshot};
use portcullis_authz::config::PluginConfig;
use portcullis_authz::gate::Gate;
use portcullis_authz::issue::SigningKey;
use portcullis_authz::jwk::Jwks;
use portcullis_authz::revocation::RevocationEntry;
use serde_json::{json, Value};
use std::sync::Arc;

pub const NOW: i64 = 1_800_000_000;
pub const ISSUER: &str = "https://id.portcullis.test";
pub const AUDIENCE: &str = "portcullis-edge";

pub fn ed_key() -> SigningKey {
    SigningKey::ed25519("ed-1", [11; 32])
}

pub fn es_key() -> SigningKey {
    SigningKey::es256("es-1", [12; 32]).unwrap()
}

pub fn rs_key() -> SigningKey {
    SigningKey::rs256_from_pkcs8_pem("rs-1", include_str!("../fixtures/rsa2048-test-only.pem"))
        .unwrap()
}

/// A valid claim set for user 42 with the items read scope.
pub fn claims() -> Value {
    json!({
        "iss": ISSUER, "sub": "user:42", "aud": [AUDIENCE], "exp": NOW + 900, "iat": NOW,
        "jti": "jti-1", "client_id": "web", "sid": "sess-1",
        "scope": "api:items:read", "roles": ["viewer"], "amr": ["pwd"]
    })
}

pub fn claims_with(changes: Value) -> Value {
    with_changes(claims(), changes)
}

/// `value` with each member of `changes` set, or removed where it is `null`.
pub fn with_changes(mut value: Value, changes: Value) -> Value {
    for (name, change) in changes.as_object().unwrap() {
        if change.is_null() {
            value.as_object_mut().unwrap().remove(name);
        } else {
            value[name] = change.clone();
        }
    }
    value
}

pub fn policies_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

pub fn bundle(keys: &[&SigningKey], revoked: Vec<RevocationEntry>) -> Bundle {
    let folder = portcullis_authz::folder::Folder::read(&policies_dir()).unwrap();
    Bundle {
        version: 1,
        issuer: ISSUER.into(),
        audiences: vec![AUDIENCE.into()],
        jwks: Jwks {
            keys: keys.iter().map(|k| k.public_jwk()).collect(),
        },
        policies: folder.policies(),
        schema: folder.schema,
        entities: folder.entities,
        revoked,
    }
}

pub fn config() -> PluginConfig {
    let pin = SigningKey::ed25519("b-1", [5; 32]).public_jwk();
    let config =
        serde_json::json!({"cluster": "cp", "credential": "s", "bundle_signing_keys": [pin]});
    PluginConfig::from_json(config.to_string().as_bytes()).unwrap()
}

pub fn gate_with(revoked: Vec<RevocationEntry>) -> Gate {
    let snapshot = Snapshot::from_bundle(&bundle(&[&ed_key(), &es_key()], revoked)).unwrap();
    Gate::new(Arc::new(snapshot), &config())
}

pub fn gate() -> Gate {
    gate_with(Vec::new())
}
