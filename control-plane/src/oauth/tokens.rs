//! Access tokens in the RFC 9068 profile the edge verifies, and their verification here (same
//! `authz` code as the filter).
//!
//! Tokens are signed with `jsonwebtoken`, the well-kept crate, and verified with
//! `portcullis_authz::jws`, which is stricter than it (a fixed algorithm per key, `typ` must be
//! `at+jwt`, no `crit`, duplicate members refused, a size bound before any decoding) and faster
//! (precomputed Ed25519 tables) — see that module's doc. A differential test
//! (`authz/tests/differential.rs`) holds the edge to never accepting what `jsonwebtoken` refuses.

use crate::bundle::Published;
use crate::infra::config::Config;
use crate::oauth::audience::Accept;
use portcullis_authz::claims::{AccessClaims, ClaimRules};
use portcullis_authz::jwk::Algorithm;
use portcullis_authz::jws::{self, TokenError};
use portcullis_authz::revocation::Revoked;
use serde_json::json;

/// Largest token accepted for verification, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8192;
/// Clock skew tolerated when verifying our own tokens.
const LEEWAY: i64 = 60;

/// A key that signs tokens through `jsonwebtoken`, with its `kid` and algorithm: the
/// access-token key (EdDSA) or an ID-token key.
#[derive(Clone)]
pub struct TokenKey {
    kid: String,
    alg: Algorithm,
    encoding: jsonwebtoken::EncodingKey,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg.as_str())
            .finish_non_exhaustive()
    }
}

impl TokenKey {
    /// The key `encoding` of `alg`, named `kid`.
    pub fn new(kid: &str, alg: Algorithm, encoding: jsonwebtoken::EncodingKey) -> Self {
        TokenKey {
            kid: kid.to_owned(),
            alg,
            encoding,
        }
    }

    /// The Ed25519 key with this 32-byte seed.
    pub fn ed25519(kid: &str, seed: &[u8; 32]) -> Self {
        Self::new(
            kid,
            Algorithm::EdDsa,
            crate::keys::material::ed25519_encoding_key(seed),
        )
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Signs `claims` as an RFC 9068 access token (`typ: at+jwt`, this key's `alg` and `kid`).
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String, IssueError> {
        self.sign_typed("at+jwt", claims)
    }

    /// Signs `claims` with the header `typ`, this key's `alg` and `kid`.
    pub fn sign_typed(&self, typ: &str, claims: &serde_json::Value) -> Result<String, IssueError> {
        let mut header =
            jsonwebtoken::Header::new(crate::keys::material::jsonwebtoken_algorithm(self.alg));
        header.typ = Some(typ.into());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| IssueError::Sign(e.to_string()))
    }
}

/// Why a token could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// No randomness for the `jti`.
    #[error(transparent)]
    Random(#[from] crate::keys::secrets::SecretError),
    /// The key did not sign.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// Who the token is for.
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    /// `user:<id>` or `client:<id>`.
    pub sub: String,
    /// The client it is issued to.
    pub client_id: &'a str,
    /// Its `aud`: one side's audiences (see [`crate::oauth::audience`]).
    pub audiences: &'a [String],
    /// Granted scopes.
    pub scopes: &'a [String],
    /// Roles.
    pub roles: &'a [String],
    /// Tenant.
    pub tenant: Option<&'a str>,
    /// Authentication methods.
    pub amr: &'a [String],
    /// Session (refresh family), for user tokens.
    pub sid: Option<&'a str>,
    /// Lifetime in seconds.
    pub ttl: i64,
}

/// A signed access token.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The compact JWS.
    pub token: String,
    /// Its `jti`.
    pub jti: String,
    /// Its `exp`.
    pub exp: i64,
}

/// Signs an access token for `grant`.
pub fn issue(key: &TokenKey, config: &Config, grant: &Grant<'_>) -> Result<Issued, IssueError> {
    let now = crate::now();
    let jti = crate::keys::secrets::random_id()?;
    let exp = now + grant.ttl;
    let mut claims = json!({
        "iss": config.issuer,
        "sub": grant.sub,
        "aud": grant.audiences,
        "exp": exp,
        "iat": now,
        "nbf": now,
        "jti": jti,
        "client_id": grant.client_id,
        "scope": crate::oauth::scopes::join(grant.scopes),
        "roles": grant.roles,
        "amr": grant.amr,
    });
    if let Some(object) = claims.as_object_mut() {
        if let Some(sid) = grant.sid {
            object.insert("sid".into(), json!(sid));
        }
        if let Some(tenant) = grant.tenant {
            object.insert("tenant".into(), json!(tenant));
        }
    }
    Ok(Issued {
        token: key.sign(&claims)?,
        jti,
        exp,
    })
}

/// Why a presented access token is not active.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Inactive {
    /// It does not verify.
    #[error("invalid token: {0}")]
    Invalid(TokenError),
    /// It was revoked.
    #[error("token revoked")]
    Revoked(Revoked),
}

/// Verifies one of our access tokens for `accept` against the published keys and revocations.
pub fn verify(
    published: &Published,
    config: &Config,
    accept: Accept,
    token: &str,
) -> Result<AccessClaims, Inactive> {
    let claims = verify_signature(published, config, accept, token).map_err(Inactive::Invalid)?;
    published
        .revocations
        .check(&claims)
        .map_err(Inactive::Revoked)?;
    Ok(claims)
}

/// Verifies signature and claims only, not revocation: for endpoints that must know whose token
/// it is before they may say whether it was revoked.
pub fn verify_signature(
    published: &Published,
    config: &Config,
    accept: Accept,
    token: &str,
) -> Result<AccessClaims, TokenError> {
    let rules = ClaimRules {
        issuer: config.issuer.clone(),
        audiences: crate::oauth::audience::accepted(config, accept),
        leeway: LEEWAY,
        max_lifetime: config.lifetimes.longest_access() + LEEWAY,
    };
    jws::verify(
        token,
        &published.keys,
        &rules,
        crate::now(),
        MAX_TOKEN_BYTES,
    )
}

#[cfg(test)]
mod tests {
    use super::TokenKey;
    use portcullis_authz::claims::ClaimRules;
    use portcullis_authz::issue::SigningKey;
    use portcullis_authz::jwk::{Jwks, KeySet};

    #[test]
    fn a_token_signed_through_jsonwebtoken_verifies_at_the_edge_as_rfc_9068() {
        let seed = [9; 32];
        let token = TokenKey::ed25519("k-1", &seed)
            .sign(
                &serde_json::json!({"iss": "https://id.test", "sub": "user:1", "aud": ["edge"],
                "iat": 1_800_000_000, "exp": 1_800_000_300, "jti": "j", "client_id": "web"}),
            )
            .unwrap();
        let header: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                token.split('.').next().unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(header["typ"], "at+jwt", "{header}");
        assert_eq!(header["alg"], "EdDSA", "{header}");
        assert_eq!(header["kid"], "k-1", "{header}");
        // The same seed's public key, as the JWKS publishes it.
        let (keys, _) = KeySet::from_jwks(&Jwks {
            keys: vec![SigningKey::ed25519("k-1", seed).public_jwk()],
        });
        let rules = ClaimRules {
            issuer: "https://id.test".into(),
            audiences: vec!["edge".into()],
            leeway: 0,
            max_lifetime: 600,
        };
        let claims = portcullis_authz::jws::verify(&token, &keys, &rules, 1_800_000_100, 8192)
            .expect("the edge verifies what the control plane signs");
        assert_eq!(
            claims.sub,
            portcullis_authz::claims::Subject::User("1".into())
        );
    }
}
