//! Shared fixtures: keys, a valid claim set, and bundles built from the repository's `policies/`.
#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different subset"
)]

use portcullis_authz::bundle::{Bundle, Snapshot};
use portcullis_authz::config::PluginConfig;
use portcullis_authz::gate::Gate;
use portcullis_authz::issue::SigningKey;
use portcullis_authz::jwk::Jwks;
use portcullis_authz::revocation::RevocationEntry;
use serde_json::Value;
use std::sync::Arc;

pub use portcullis_test_support::fixtures::{
    ed_key, es_key, rs_key, with_changes, AUDIENCE, ISSUER,
};

pub const NOW: i64 = 1_800_000_000;

/// A valid claim set for user 42 with the items read scope.
pub fn claims() -> Value {
    portcullis_test_support::fixtures::claims_at(NOW)
}

pub fn claims_with(changes: Value) -> Value {
    with_changes(claims(), changes)
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
