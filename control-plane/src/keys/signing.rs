//! Signing keys: generated here, sealed at rest under the master key, pre-published as `next`
//! before they sign, and kept as `retiring` until every token they signed has expired.
//!
//! States: `next` (published, not signing) → `active` (signing) → `retiring` (published until
//! `retire_after`) → `retired` (gone from the JWKS).
//!
//! The keys that sign the edge bundle and those that sign ID tokens live in their own tables
//! with the same columns and are managed by [`crate::keys::bundle`] and
//! [`crate::keys::id_token`] through the [`KeyStore`] helpers here.

use crate::keys::material::{self, MaterialError};
use crate::keys::secrets::{random_id, MasterKey, SecretError};
use portcullis_authz::issue::SigningKey;
use portcullis_authz::jwk::{Algorithm, Jwk, Jwks};
use serde::Serialize;
use sqlx::{Any, AnyPool, Row as _, Transaction};

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// Randomness or sealing failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A stored key does not decode.
    #[error("stored key {0} is corrupt")]
    Corrupt(String),
    /// A key could not be generated.
    #[error(transparent)]
    Material(#[from] MaterialError),
    /// There is no active key.
    #[error("no active signing key")]
    NoActiveKey,
    /// The next key has not been published long enough for every edge to have it.
    #[error("the next key was published too recently; it may start signing at {ready_at} (epoch seconds)")]
    NotYetPublished {
        /// When rotation becomes possible.
        ready_at: i64,
    },
}

/// A key as listed by the admin API (public parts only).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: String,
    /// `next`, `active`, `retiring` or `retired`.
    pub state: String,
    /// Created, epoch seconds.
    pub created_at: i64,
    /// Became the signing key, epoch seconds.
    pub activated_at: Option<i64>,
    /// Leaves the JWKS after, epoch seconds.
    pub retire_after: Option<i64>,
}

/// Where one kind of key is kept: its table, the algorithm of its keys (a table may hold a
/// chain of keys for each of several algorithms) and the prefix of their key ids.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyStore {
    pub(crate) table: &'static str,
    pub(crate) alg: Algorithm,
    pub(crate) prefix: &'static str,
}

/// Token signing keys.
pub(crate) const TOKEN_KEYS: KeyStore = KeyStore {
    table: "signing_keys",
    alg: Algorithm::EdDsa,
    prefix: "k-",
};

/// Bundle-signing keys (see [`crate::keys::bundle`]).
pub(crate) const BUNDLE_KEYS: KeyStore = KeyStore {
    table: "bundle_signing_keys",
    alg: Algorithm::EdDsa,
    prefix: "b-",
};

/// Creates a key in `store`, sealed under `master`, in `state`; returns its kid.
async fn insert_new(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    store: KeyStore,
    state: &str,
    now: i64,
) -> Result<String, KeyError> {
    let kid = format!("{}{}", store.prefix, &random_id()?[..16]);
    let private = material::generate(store.alg)?;
    let key = material::signing_key(&kid, store.alg, &private)?;
    let jwk =
        serde_json::to_string(&key.public_jwk()).map_err(|_| KeyError::Corrupt(kid.clone()))?;
    let sealed = master.seal(&kid, &private)?;
    sqlx::query(&format!(
        "INSERT INTO {} (kid, alg, sealed_private, public_jwk, state, created_at, activated_at, retire_after) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
        store.table
    ))
    .bind(&kid)
    .bind(store.alg.as_str())
    .bind(&sealed)
    .bind(&jwk)
    .bind(state)
    .bind(now)
    .bind(if state == "active" { Some(now) } else { None })
    .execute(&mut **tx)
    .await?;
    Ok(kid)
}

pub(crate) async fn count_in_state(
    tx: &mut Transaction<'static, Any>,
    store: KeyStore,
    state: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT COUNT(*) FROM {} WHERE state = $1 AND alg = $2",
        store.table
    ))
    .bind(state)
    .bind(store.alg.as_str())
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)
}

/// When the oldest `next` key of `store` was published (`None`: there is none).
pub(crate) async fn next_published(
    tx: &mut Transaction<'static, Any>,
    store: KeyStore,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT MIN(created_at) FROM {} WHERE state = 'next' AND alg = $1",
        store.table
    ))
    .bind(store.alg.as_str())
    .fetch_one(&mut **tx)
    .await?
    .try_get::<Option<i64>, _>(0)
}

/// Makes sure an active and a next key exist, for tokens and for the bundle; returns whether
/// anything was created.
pub async fn ensure(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
) -> Result<bool, KeyError> {
    let mut created = false;
    for store in [TOKEN_KEYS, BUNDLE_KEYS] {
        created |= ensure_in(tx, master, store).await?;
    }
    Ok(created)
}

pub(crate) async fn ensure_in(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    store: KeyStore,
) -> Result<bool, KeyError> {
    let now = crate::now();
    let mut created = false;
    for state in ["active", "next"] {
        if count_in_state(tx, store, state).await? == 0 {
            insert_new(tx, master, store, state, now).await?;
            created = true;
        }
    }
    Ok(created)
}

/// Rotates: the pre-published `next` key starts signing, the active one retires after
/// `longest_access` seconds (when its last token has expired), and a new `next` is published.
/// The next key must have been published for `prepublish` seconds, so every edge already trusts
/// it when it starts signing. An emergency rotation (a compromised key) passes `emergency`: no
/// wait, and the old key is retired at once — its tokens stop working everywhere. Returns the new
/// active kid. Also retires keys whose tokens have all expired, and moves the bundle version
/// (first, which serialises concurrent rotations).
pub async fn rotate(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    longest_access: i64,
    prepublish: i64,
    emergency: bool,
) -> Result<String, KeyError> {
    // Serialise rotations (a row lock on Postgres, the single writer on SQLite).
    crate::bundle::bump(tx).await?;
    let prepublish = if emergency { 0 } else { prepublish };
    let now = crate::now();
    ensure(tx, master).await?;
    let published = next_published(tx, TOKEN_KEYS).await?.unwrap_or(now);
    if published + prepublish > now {
        return Err(KeyError::NotYetPublished {
            ready_at: published + prepublish,
        });
    }
    let (old_state, retire_after) = if emergency {
        ("retired", now)
    } else {
        ("retiring", now + longest_access)
    };
    let next = promote_next(tx, master, TOKEN_KEYS, (old_state, retire_after), now).await?;
    crate::keys::id_token::rotate(tx, master, prepublish, (old_state, retire_after), now).await?;
    retire_expired(tx).await?;
    Ok(next)
}

/// The rotation step both kinds of key share: the active key of `store` moves to `old` (its
/// state and `retire_after`), the oldest next key becomes active, and a new next key is created.
/// Returns the new active kid.
pub(crate) async fn promote_next(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    store: KeyStore,
    old: (&str, i64),
    now: i64,
) -> Result<String, KeyError> {
    let table = store.table;
    let alg = store.alg.as_str();
    sqlx::query(&format!(
        "UPDATE {table} SET state = $1, retire_after = $2 WHERE state = 'active' AND alg = $3"
    ))
    .bind(old.0)
    .bind(old.1)
    .bind(alg)
    .execute(&mut **tx)
    .await?;
    let next: String = sqlx::query(&format!(
        "SELECT kid FROM {table} WHERE state = 'next' AND alg = $1 ORDER BY created_at, kid LIMIT 1"
    ))
    .bind(alg)
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?;
    sqlx::query(&format!(
        "UPDATE {table} SET state = 'active', activated_at = $1 WHERE kid = $2"
    ))
    .bind(now)
    .bind(&next)
    .execute(&mut **tx)
    .await?;
    insert_new(tx, master, store, "next", now).await?;
    Ok(next)
}

/// Moves retiring keys whose tokens have all expired to `retired`; returns how many.
pub async fn retire_expired(tx: &mut Transaction<'static, Any>) -> Result<u64, sqlx::Error> {
    let mut retired = 0;
    for table in ["signing_keys", "id_token_keys"] {
        retired += sqlx::query(&format!(
            "UPDATE {table} SET state = 'retired' WHERE state = 'retiring' AND retire_after <= $1"
        ))
        .bind(crate::now())
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    Ok(retired)
}

/// The active token-signing key, unsealed.
pub async fn active(
    pool: &AnyPool,
    master: &MasterKey,
) -> Result<crate::oauth::tokens::TokenKey, KeyError> {
    active_token_key(pool, master, TOKEN_KEYS).await
}

/// The active key of `store`, unsealed, as `jsonwebtoken` signs with it.
pub(crate) async fn active_token_key(
    pool: &AnyPool,
    master: &MasterKey,
    store: KeyStore,
) -> Result<crate::oauth::tokens::TokenKey, KeyError> {
    let (kid, private) = active_material(pool, master, store).await?;
    Ok(crate::oauth::tokens::TokenKey::new(
        &kid,
        store.alg,
        material::encoding_key(store.alg, &private)?,
    ))
}

/// The active key of `store`, unsealed.
pub(crate) async fn active_in(
    pool: &AnyPool,
    master: &MasterKey,
    store: KeyStore,
) -> Result<SigningKey, KeyError> {
    let (kid, private) = active_material(pool, master, store).await?;
    Ok(material::signing_key(&kid, store.alg, &private)?)
}

/// The `kid` and unsealed private material of the active key of `store`.
async fn active_material(
    pool: &AnyPool,
    master: &MasterKey,
    store: KeyStore,
) -> Result<(String, Vec<u8>), KeyError> {
    let row = sqlx::query(&format!(
        "SELECT kid, sealed_private FROM {} WHERE state = 'active' AND alg = $1 ORDER BY activated_at DESC, kid LIMIT 1",
        store.table
    ))
    .bind(store.alg.as_str())
    .fetch_optional(pool)
    .await?
    .ok_or(KeyError::NoActiveKey)?;
    let kid: String = row.try_get(0)?;
    let sealed: String = row.try_get(1)?;
    let private = master.open(&kid, &sealed)?;
    Ok((kid, private))
}

/// The published access-token keys (next, active, retiring): public parts only. This is what
/// the bundle carries: an edge trusts no key that signs anything else.
pub async fn jwks(pool: &AnyPool, master: &MasterKey) -> Result<Jwks, KeyError> {
    published_in(pool, master, "signing_keys", &[TOKEN_KEYS.prefix]).await
}

/// The published keys of `table` (next, active, retiring), public parts only; their ids start
/// with one of `prefixes`.
pub(crate) async fn published_in(
    pool: &AnyPool,
    master: &MasterKey,
    table: &str,
    prefixes: &[&str],
) -> Result<Jwks, KeyError> {
    let rows = sqlx::query(&format!(
        "SELECT kid, public_jwk, sealed_private, alg FROM {table} WHERE state IN ('next', 'active', 'retiring') ORDER BY created_at, kid"
    ))
    .fetch_all(pool)
    .await?;
    jwks_from_rows(&rows, master, prefixes)
}

/// The JWKS of `(kid, public_jwk, sealed_private, alg)` rows whose ids start with one of
/// `prefixes` (each kind of key has its own: a row copied into another kind's table is refused). Each public key is derived from
/// its sealed private key, and a row whose stored public key differs is refused as corrupt: the
/// public column alone could be written by anyone with database access, who could then plant a
/// key of their own among the published ones; the sealed key needs the master key.
pub(crate) fn jwks_from_rows(
    rows: &[sqlx::any::AnyRow],
    master: &MasterKey,
    prefixes: &[&str],
) -> Result<Jwks, KeyError> {
    let mut keys = Vec::with_capacity(rows.len());
    for row in rows {
        let kid: String = row.try_get(0)?;
        let text: String = row.try_get(1)?;
        let sealed: String = row.try_get(2)?;
        let alg: String = row.try_get(3)?;
        let corrupt = || KeyError::Corrupt(kid.clone());
        if !prefixes.iter().any(|p| kid.starts_with(p)) {
            return Err(corrupt());
        }
        let stored: Jwk = serde_json::from_str(&text).map_err(|_| corrupt())?;
        let alg = Algorithm::from_name(&alg).ok_or_else(corrupt)?;
        let private = master.open(&kid, &sealed)?;
        let derived = material::signing_key(&kid, alg, &private)
            .map_err(|_| corrupt())?
            .public_jwk();
        let public = |k: &Jwk| {
            (
                k.kty.clone(),
                k.crv.clone(),
                k.x.clone(),
                k.y.clone(),
                k.n.clone(),
                k.e.clone(),
            )
        };
        // What the JWKS publishes besides the key must be the row's own: a row copied from
        // another table or another algorithm's chain keeps its sealed key, not its name.
        if public(&derived) != public(&stored)
            || stored.kid.as_deref() != Some(kid.as_str())
            || stored.alg.as_deref() != Some(alg.as_str())
        {
            return Err(corrupt());
        }
        keys.push(stored);
    }
    Ok(Jwks { keys })
}

/// Every key with its state, newest first.
pub async fn list(pool: &AnyPool) -> Result<Vec<KeyInfo>, sqlx::Error> {
    list_in(pool, TOKEN_KEYS).await
}

/// Every key of `store` with its state, newest first.
pub(crate) async fn list_in(pool: &AnyPool, store: KeyStore) -> Result<Vec<KeyInfo>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT kid, alg, state, created_at, activated_at, retire_after FROM {} ORDER BY created_at DESC, kid",
        store.table
    ))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(KeyInfo {
                kid: row.try_get(0)?,
                alg: row.try_get(1)?,
                state: row.try_get(2)?,
                created_at: row.try_get(3)?,
                activated_at: row.try_get(4)?,
                retire_after: row.try_get(5)?,
            })
        })
        .collect()
}
