//! Authorization codes (RFC 6749 §4.1.2, RFC 7636): opaque 256-bit values stored only as keyed
//! hashes, used at most once, alive for [`CODE_LIFETIME`] seconds, and bound to the client, the
//! redirect URI and the PKCE challenge they were issued with.
//!
//! Redeeming marks a code used in the same statement that finds it, so two concurrent
//! exchanges cannot both succeed. A code presented again is a replay (the code leaked, or an
//! attacker raced the client): the answer names the session the first exchange opened, so the
//! caller can end it and everything issued from it (RFC 6749 §4.1.2: the server SHOULD revoke).

use crate::keys::secrets::{random_secret, HashPurpose, MasterKey, SecretError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use sqlx::{Any, AnyPool, Row as _, Transaction};

/// How long a code lives, in seconds (RFC 6749 §4.1.2 recommends at most 10 minutes; a browser
/// redirect takes well under a second).
pub const CODE_LIFETIME: i64 = 60;

/// What a code was issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The client that asked.
    pub client_id: String,
    /// The user who signed in.
    pub user_id: String,
    /// The redirect URI it was sent to (the exchange must present the same).
    pub redirect_uri: String,
    /// The PKCE `code_challenge` (S256).
    pub code_challenge: String,
    /// Granted scopes, space separated.
    pub scope: String,
    /// Audiences of the grant, space separated.
    pub audience: String,
    /// The OpenID Connect `nonce`, if the client sent one.
    pub nonce: Option<String>,
    /// The OpenID scopes granted, space separated (`openid` asks for an ID token).
    pub openid_scope: String,
    /// How the user authenticated, space separated.
    pub amr: String,
    /// When the user authenticated, epoch seconds.
    pub auth_time: i64,
    /// The browser sign-in it came from.
    pub browser_session_id: Option<String>,
}

/// The outcome of presenting a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// First use: what it was issued for, and its hash (to record the session it opens).
    Fresh {
        /// What the code was issued for.
        issued: Box<Issued>,
        /// When it expires, epoch seconds.
        expires_at: i64,
        /// Its stored hash.
        hash: String,
    },
    /// Used before: the session that first exchange opened, if it opened one.
    Replayed {
        /// The session to end.
        session_id: Option<String>,
        /// The user it was issued to.
        user_id: String,
        /// The client it was issued to.
        client_id: String,
    },
    /// Not a code this server issued (or one pruned long ago).
    Unknown,
}

/// Stores a new code for `issued`; returns the code, which exists only in the redirect.
pub async fn issue(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    issued: &Issued,
) -> Result<String, CodeError> {
    let code = random_secret("pcc_")?;
    sqlx::query(
        "INSERT INTO authorization_codes (code_hash, client_id, user_id, redirect_uri, code_challenge, scope, audience, nonce, amr, auth_time, expires_at, browser_session_id, openid_scope) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(master.keyed_hash(HashPurpose::AuthorizationCode, &code))
    .bind(&issued.client_id)
    .bind(&issued.user_id)
    .bind(&issued.redirect_uri)
    .bind(&issued.code_challenge)
    .bind(&issued.scope)
    .bind(&issued.audience)
    .bind(issued.nonce.clone())
    .bind(&issued.amr)
    .bind(issued.auth_time)
    .bind(crate::now() + CODE_LIFETIME)
    .bind(issued.browser_session_id.clone())
    .bind(&issued.openid_scope)
    .execute(&mut **tx)
    .await?;
    Ok(code)
}

/// Marks `code` used and says what it was.
pub async fn redeem(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    code: &str,
) -> Result<Redeemed, CodeError> {
    if code.len() > 128 {
        return Ok(Redeemed::Unknown);
    }
    let hash = master.keyed_hash(HashPurpose::AuthorizationCode, code);
    let first = sqlx::query(
        "UPDATE authorization_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL",
    )
    .bind(crate::now())
    .bind(&hash)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    let Some(row) = sqlx::query(
        "SELECT client_id, user_id, redirect_uri, code_challenge, scope, audience, nonce, amr, auth_time, expires_at, session_id, browser_session_id, openid_scope \
         FROM authorization_codes WHERE code_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(Redeemed::Unknown);
    };
    if !first {
        return Ok(Redeemed::Replayed {
            session_id: row.try_get("session_id")?,
            user_id: row.try_get("user_id")?,
            client_id: row.try_get("client_id")?,
        });
    }
    Ok(Redeemed::Fresh {
        issued: Box::new(Issued {
            client_id: row.try_get("client_id")?,
            user_id: row.try_get("user_id")?,
            redirect_uri: row.try_get("redirect_uri")?,
            code_challenge: row.try_get("code_challenge")?,
            scope: row.try_get("scope")?,
            audience: row.try_get("audience")?,
            nonce: row.try_get("nonce")?,
            openid_scope: row.try_get("openid_scope")?,
            amr: row.try_get("amr")?,
            auth_time: row.try_get("auth_time")?,
            browser_session_id: row.try_get("browser_session_id")?,
        }),
        expires_at: row.try_get("expires_at")?,
        hash,
    })
}

/// Records the session a code's exchange opened, for [`Redeemed::Replayed`].
pub async fn opened(
    tx: &mut Transaction<'static, Any>,
    hash: &str,
    session_id: &str,
) -> Result<(), CodeError> {
    sqlx::query("UPDATE authorization_codes SET session_id = $1 WHERE code_hash = $2")
        .bind(session_id)
        .bind(hash)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes codes expired for longer than a day (kept that long so a late replay is still
/// recognised and ends its session); returns how many.
pub async fn prune(pool: &AnyPool) -> Result<u64, CodeError> {
    Ok(
        sqlx::query("DELETE FROM authorization_codes WHERE expires_at <= $1")
            .bind(crate::now() - 86_400)
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

/// Whether `verifier` is the PKCE verifier of the S256 `challenge` (RFC 7636 §4.6): 43 to 128
/// unreserved characters whose SHA-256, base64url without padding, is the challenge.
pub fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    well_formed
        && crate::keys::secrets::constant_time_eq(
            &URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
            challenge,
        )
}

/// Whether `challenge` can be an S256 challenge: 43 base64url characters (a SHA-256).
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why a code could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// Randomness failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

#[cfg(test)]
mod tests {
    use super::{is_s256_challenge, pkce_matches};

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_7636_example_verifier_matches_its_challenge() {
        assert!(is_s256_challenge(CHALLENGE));
        assert!(pkce_matches(CHALLENGE, VERIFIER));
    }

    #[test]
    fn a_wrong_short_or_plain_verifier_does_not_match() {
        assert!(!pkce_matches(CHALLENGE, &VERIFIER.replace('d', "e")));
        assert!(!pkce_matches(CHALLENGE, &VERIFIER[..42]));
        // `plain`: the verifier presented as its own challenge.
        assert!(!pkce_matches(VERIFIER, VERIFIER));
        assert!(!is_s256_challenge("short"));
        assert!(!is_s256_challenge(&format!("{}=", &CHALLENGE[..42])));
    }
}
