//! The keys that sign the edge bundle (see `portcullis_authz::bundle_signature`).
//!
//! The rule: every bundle the control plane serves is signed with the one `active`
//! bundle-signing key; a `next` key always exists beside it, and `portcullis keys
//! bundle-public` (or `GET /admin/v1/keys/bundle`) prints both, for operators to pin in every
//! filter configuration. A rotation makes `next` sign, retires the old active key at once and
//! creates a new `next`. Keys are Ed25519, generated here and sealed at rest under the master
//! key like token keys, but never the same keys and never in the token JWKS.
//!
//! The reason: an edge trusts a bundle only through a key its own configuration pins, so the
//! key that will sign next must be pinned before it signs. With both keys pinned, a rotation
//! needs no edge restart: edges keep applying bundles, and operators replace the retired pin
//! with the new `next` at their own pace. A bundle key never signs tokens, so a token key leak
//! cannot forge bundles and a bundle key leak cannot forge tokens.

use crate::keys::secrets::MasterKey;
use crate::keys::signing::{
    active_in, jwks_from_rows, list_in, next_published, promote_next, KeyError, KeyInfo,
    BUNDLE_KEYS,
};
use portcullis_authz::issue::SigningKey;
use portcullis_authz::jwk::Jwks;
use sqlx::{Any, AnyPool, Transaction};

/// The key that signs bundles now, unsealed.
pub async fn signer(pool: &AnyPool, master: &MasterKey) -> Result<SigningKey, KeyError> {
    active_in(pool, master, BUNDLE_KEYS).await
}

/// The public keys to pin: the active key, then the next one.
pub async fn pins(pool: &AnyPool, master: &MasterKey) -> Result<Jwks, KeyError> {
    let rows = sqlx::query(
        "SELECT kid, public_jwk, sealed_private, alg FROM bundle_signing_keys WHERE state IN ('active', 'next') \
         ORDER BY CASE state WHEN 'active' THEN 0 ELSE 1 END, created_at, kid",
    )
    .fetch_all(pool)
    .await?;
    jwks_from_rows(&rows, master, &[BUNDLE_KEYS.prefix])
}

/// Every bundle-signing key with its state, newest first (`retire_after` is when it retired).
pub async fn list(pool: &AnyPool) -> Result<Vec<KeyInfo>, sqlx::Error> {
    list_in(pool, BUNDLE_KEYS).await
}

/// Rotates: the next key starts signing, the active one is retired, and a new next key is
/// created (pin it beside the new active one). The next key must have existed for `prepublish`
/// seconds (0 for an emergency): two rotations in a row would otherwise make a key no edge has
/// pinned yet sign, and every edge would refuse every bundle from then on. Moves the bundle
/// version first, which serialises concurrent rotations and makes every edge fetch a bundle
/// signed by the new key. Returns the new active kid.
pub async fn rotate(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    prepublish: i64,
) -> Result<String, KeyError> {
    crate::bundle::bump(tx).await?;
    crate::keys::signing::ensure(tx, master).await?;
    let now = crate::now();
    let published = next_published(tx, BUNDLE_KEYS).await?.unwrap_or(now);
    if published + prepublish > now {
        return Err(KeyError::NotYetPublished {
            ready_at: published + prepublish,
        });
    }
    promote_next(tx, master, BUNDLE_KEYS, ("retired", now), now).await
}
