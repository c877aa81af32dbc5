//! ID tokens (OpenID Connect Core §2, §3.1.3.6): what the authorization code exchange gives a
//! client that asked for the `openid` scope, signed with the algorithm the client registered
//! (see [`crate::keys::id_token`]).
//!
//! `sub` is the same `user:<id>` the access token and userinfo name; `aud` is the client alone
//! and `azp` names it too (Core §2: required when `aud` could be more than one party); `sid` is
//! the browser sign-in (the session RP-Initiated Logout ends), not the refresh-token session an
//! access token's `sid` names; `at_hash` binds the access token issued with it (§3.1.3.6).

use crate::oauth::tokens::{IssueError, TokenKey, MAX_TOKEN_BYTES};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use portcullis_authz::jwk::{Algorithm, KeySet};
use serde_json::{json, Value};
use sha2::Digest as _;

/// OpenID Connect's own scopes: they ask for claims about the user, not for access.
pub const OPENID_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The claims of one ID token.
#[derive(Debug, Clone)]
pub struct IdTokenClaims<'a> {
    /// The issuer.
    pub issuer: &'a str,
    /// The user.
    pub user_id: &'a str,
    /// The client it is for.
    pub client_id: &'a str,
    /// The authorization request's `nonce`.
    pub nonce: Option<&'a str>,
    /// When the user authenticated, epoch seconds.
    pub auth_time: i64,
    /// How.
    pub amr: &'a [String],
    /// The browser sign-in.
    pub sid: Option<&'a str>,
    /// The access token issued with it.
    pub access_token: &'a str,
    /// Lifetime, seconds.
    pub ttl: i64,
}

/// `at_hash` (Core §3.1.3.6): the left half of the hash of the access token's ASCII, with the
/// hash of the signing algorithm (SHA-256 for RS256 and ES256; SHA-512 for EdDSA on Ed25519, as
/// the OpenID Foundation's errata fix for an algorithm without its own hash).
pub fn at_hash(alg: Algorithm, access_token: &str) -> String {
    let digest = match alg {
        Algorithm::Rs256 | Algorithm::Es256 => sha2::Sha256::digest(access_token).to_vec(),
        Algorithm::EdDsa => sha2::Sha512::digest(access_token).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// Signs an ID token with `key`.
pub fn sign(key: &TokenKey, claims: &IdTokenClaims<'_>) -> Result<String, IssueError> {
    let now = crate::now();
    let mut body = json!({
        "iss": claims.issuer,
        "sub": format!("user:{}", claims.user_id),
        "aud": claims.client_id,
        "azp": claims.client_id,
        "exp": now + claims.ttl,
        "iat": now,
        "auth_time": claims.auth_time,
        "amr": claims.amr,
        "at_hash": at_hash(key.algorithm(), claims.access_token),
    });
    if let Some(object) = body.as_object_mut() {
        if let Some(nonce) = claims.nonce {
            object.insert("nonce".into(), json!(nonce));
        }
        if let Some(sid) = claims.sid {
            object.insert("sid".into(), json!(sid));
        }
    }
    key.sign_typed("JWT", &body)
}

/// What a verified `id_token_hint` says: which client's sign-in of which user, in which browser
/// sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// The client it was issued to (`aud`).
    pub client_id: String,
    /// The user (`sub` without `user:`).
    pub user_id: String,
    /// The browser sign-in (`sid`).
    pub sid: Option<String>,
}

/// Verifies an ID token this server issued, presented as a logout hint (RP-Initiated Logout
/// §2): signed by one of `keys` with that key's algorithm, from `issuer`. Its expiry is not
/// checked: an expired ID token still proves which client of which user asked.
pub fn verify_hint(keys: &KeySet, issuer: &str, token: &str) -> Option<Hint> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let mut parts = token.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).ok();
    let header: Value = serde_json::from_slice(&decode(header)?).ok()?;
    let key = keys.get(header.get("kid")?.as_str()?)?;
    if header.get("alg")?.as_str()? != key.algorithm().as_str()
        || header.get("typ").and_then(Value::as_str) != Some("JWT")
    {
        return None;
    }
    let signed = &token[..token.len() - signature.len() - 1];
    if !key.verify(signed.as_bytes(), &decode(signature)?) {
        return None;
    }
    let claims: Value = serde_json::from_slice(&decode(payload)?).ok()?;
    let client_id = claims.get("aud")?.as_str()?;
    if claims.get("iss")?.as_str()? != issuer
        || claims.get("azp").and_then(Value::as_str) != Some(client_id)
    {
        return None;
    }
    Some(Hint {
        client_id: client_id.to_owned(),
        user_id: claims
            .get("sub")?
            .as_str()?
            .strip_prefix("user:")?
            .to_owned(),
        sid: claims.get("sid").and_then(Value::as_str).map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::at_hash;
    use portcullis_authz::jwk::Algorithm;

    #[test]
    fn at_hash_is_the_left_half_of_the_algorithms_hash() {
        // OpenID Connect Core §A.3's access token and at_hash (RS256).
        assert_eq!(
            at_hash(
                Algorithm::Rs256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(
            at_hash(Algorithm::Es256, "x").len(),
            22,
            "16 bytes of SHA-256"
        );
        assert_eq!(
            at_hash(Algorithm::EdDsa, "x").len(),
            43,
            "32 bytes of SHA-512"
        );
    }
}
