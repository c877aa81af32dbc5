//! Access tokens in the RFC 9068 profile the edge verifies, and their verification here (same
//! `authz` code as the filter).

use crate::audience::Accept;
use crate::bundle::Published;
use crate::config::Config;
use portcullis_authz::claims::{AccessClaims, ClaimRules};
use portcullis_authz::issue::SigningKey;
use portcullis_authz::jws::{self, TokenError};
use portcullis_authz::revocation::Revoked;
use serde_json::json;

/// Largest token accepted for verification, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8192;
/// Clock skew tolerated when verifying our own tokens.
const LEEWAY: i64 = 60;

/// Who the token is for.
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    /// `user:<id>` or `client:<id>`.
    pub sub: String,
    /// The client it is issued to.
    pub client_id: &'a str,
    /// Its `aud`: one side's audiences (see [`crate::audience`]).
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
pub fn issue(
    key: &SigningKey,
    config: &Config,
    grant: &Grant<'_>,
) -> Result<Issued, crate::secrets::SecretError> {
    let now = crate::now();
    let jti = crate::secrets::random_id()?;
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
        "scope": crate::scopes::join(grant.scopes),
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
        token: key.sign_access_token(&claims),
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
        audiences: crate::audience::accepted(config, accept),
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
