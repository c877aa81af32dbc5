//! The keys that sign ID tokens (OpenID Connect Core §2): a chain of keys for each algorithm a
//! client may ask for (`id_token_signed_response_alg`: RS256 by default, which Core §15.1
//! requires every provider to support and many relying parties take alone; ES256; EdDSA), with
//! the lifecycle of token keys (sealed at rest, pre-published as `next`, rotated with the token
//! keys, `retiring` until their tokens expired).
//!
//! The rule: these keys are published in `/.well-known/jwks.json` beside the access-token keys,
//! but never carried in the bundle. The reason: an ID token tells a client who signed in and is
//! not a credential for an API; an edge that trusted the ID-token keys would be one header
//! (`typ`) away from taking an ID token as an access token.
//!
//! A chain is created when a client that can use the authorization code grant is registered
//! with its algorithm (or at start, for clients registered before), not at every start: an RSA
//! key takes a noticeable moment to generate, and installations without browser sign-in never
//! need one.

use crate::keys::secrets::MasterKey;
use crate::keys::signing::{
    active_token_key, count_in_state, ensure_in, next_published, promote_next, published_in,
    KeyError, KeyStore,
};
use crate::oauth::tokens::TokenKey;
use portcullis_authz::jwk::{Algorithm, Jwks, KeySet};
use sqlx::{Any, AnyPool, Row as _, Transaction};

const TABLE: &str = "id_token_keys";

/// The algorithms ID tokens may be signed with.
pub const ALGORITHMS: [Algorithm; 3] = [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa];

/// The chain of `alg`.
fn store(alg: Algorithm) -> KeyStore {
    KeyStore {
        table: TABLE,
        alg,
        prefix: match alg {
            Algorithm::Rs256 => "rs-",
            Algorithm::Es256 => "es-",
            Algorithm::EdDsa => "ed-",
        },
    }
}

/// Makes sure `alg` has an active and a next key; returns whether anything was created.
pub async fn ensure(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    alg: Algorithm,
) -> Result<bool, KeyError> {
    ensure_in(tx, master, store(alg)).await
}

/// Makes sure every algorithm that an authorization-code client asks for has its keys.
pub async fn ensure_in_use(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
) -> Result<bool, KeyError> {
    let mut created = false;
    for alg in crate::oauth::clients::id_token_algorithms_in_use(&mut **tx).await? {
        created |= ensure(tx, master, alg).await?;
    }
    Ok(created)
}

/// Rotates every chain that exists: its next key signs if it has been published for
/// `prepublish` seconds (a chain whose next key is younger rotates at the next rotation), and
/// the active one moves to `old` (its state and `retire_after`).
pub async fn rotate(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    prepublish: i64,
    old: (&str, i64),
    now: i64,
) -> Result<(), KeyError> {
    for alg in ALGORITHMS {
        let chain = store(alg);
        if count_in_state(tx, chain, "active").await? == 0 {
            continue;
        }
        ensure_in(tx, master, chain).await?;
        let published = next_published(tx, chain).await?.unwrap_or(now);
        if published + prepublish <= now {
            promote_next(tx, master, chain, old, now).await?;
        }
    }
    Ok(())
}

/// The key that signs ID tokens with `alg` now, unsealed; `None` when the chain does not
/// exist yet.
pub async fn signer(
    pool: &AnyPool,
    master: &MasterKey,
    alg: Algorithm,
) -> Result<Option<TokenKey>, KeyError> {
    match active_token_key(pool, master, store(alg)).await {
        Ok(key) => Ok(Some(key)),
        Err(KeyError::NoActiveKey) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The published ID-token keys, public parts only.
pub async fn jwks(pool: &AnyPool, master: &MasterKey) -> Result<Jwks, KeyError> {
    let prefixes = ALGORITHMS.map(|alg| store(alg).prefix);
    published_in(pool, master, TABLE, &prefixes).await
}

/// The ID-token keys as the running service uses them: the signers, the key set logout hints
/// verify with, and their part of the public JWKS.
#[derive(Debug, Clone, Default)]
pub struct InUse {
    /// `(kid, state)` of every key in kid order: what tells whether the keys changed.
    versions: Vec<(String, String)>,
    /// The keys that sign now, one per algorithm that has a chain.
    pub signers: Vec<TokenKey>,
    /// The published keys (next, active, retiring).
    pub keys: KeySet,
    /// The same as a JWKS.
    pub jwks: Jwks,
}

impl InUse {
    /// The key that signs ID tokens with `alg`, if that algorithm has keys.
    pub fn signer(&self, alg: Algorithm) -> Option<&TokenKey> {
        self.signers.iter().find(|k| k.algorithm() == alg)
    }
}

/// The keys in use: `previous` again when no key was added or changed state since it was read.
/// The bundle is republished at every revocation, and unsealing (and parsing) every RSA key each
/// time would slow that path for keys that did not change.
pub async fn in_use(
    pool: &AnyPool,
    master: &MasterKey,
    previous: Option<&InUse>,
) -> Result<InUse, KeyError> {
    let versions = sqlx::query(&format!("SELECT kid, state FROM {TABLE} ORDER BY kid"))
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<Vec<(String, String)>, sqlx::Error>>()?;
    if let Some(previous) = previous.filter(|p| p.versions == versions) {
        return Ok(previous.clone());
    }
    let jwks = self::jwks(pool, master).await?;
    let mut signers = Vec::new();
    for alg in ALGORITHMS {
        signers.extend(signer(pool, master, alg).await?);
    }
    let (keys, _) = KeySet::from_jwks(&jwks);
    Ok(InUse {
        versions,
        signers,
        keys,
        jwks,
    })
}
