//! The issuer and audience test bundles trust, the standard claim set, and the named test keys.
//!
//! Every key here is derived from a fixed seed (or a committed test-only PEM), so tokens and
//! their expected outcomes are the same on every run.

use portcullis_authz::issue::SigningKey;
use serde_json::{json, Value};

/// The issuer test bundles trust and test tokens name.
pub const ISSUER: &str = "https://id.portcullis.test";
/// The audience test bundles accept and test tokens name.
pub const AUDIENCE: &str = "portcullis-edge";

/// The standard valid claim set issued at `now` (seconds since the epoch): `user:42` of client
/// `web` with the items read scope and role `viewer`, valid for 15 minutes.
pub fn claims_at(now: i64) -> Value {
    json!({
        "iss": ISSUER, "sub": "user:42", "aud": [AUDIENCE], "exp": now + 900, "iat": now,
        "jti": "jti-1", "client_id": "web", "sid": "sess-1",
        "scope": "api:items:read", "roles": ["viewer"], "amr": ["pwd"]
    })
}

/// `value` with each member of `changes` set, or removed where it is `null`.
///
/// # Panics
/// If `value` or `changes` is not a JSON object.
pub fn with_changes(mut value: Value, changes: Value) -> Value {
    let Value::Object(changes) = changes else {
        panic!("changes must be a JSON object: {changes}");
    };
    let Some(members) = value.as_object_mut() else {
        panic!("only a JSON object can be changed: {value}");
    };
    for (name, change) in changes {
        if change.is_null() {
            members.remove(&name);
        } else {
            members.insert(name, change);
        }
    }
    value
}

/// The Ed25519 key `ed-1` (seed `[11; 32]`).
pub fn ed_key() -> SigningKey {
    SigningKey::ed25519("ed-1", [11; 32])
}

/// A second Ed25519 key, `ed-2` (seed `[22; 32]`): for key rotations, and for tokens a bundle
/// holding only [`ed_key`] does not trust.
pub fn other_ed_key() -> SigningKey {
    SigningKey::ed25519("ed-2", [22; 32])
}

/// The ES256 key `es-1` (scalar `[12; 32]`).
pub fn es_key() -> SigningKey {
    SigningKey::es256("es-1", [12; 32]).unwrap_or_else(|e| panic!("es-1: {e}"))
}

/// The RS256 key `rs-1`, from the 2048-bit test-only PEM under `fixtures/`.
pub fn rs_key() -> SigningKey {
    SigningKey::rs256_from_pkcs8_pem("rs-1", include_str!("../fixtures/rsa2048-test-only.pem"))
        .unwrap_or_else(|e| panic!("rs-1: {e}"))
}
