//! The bundle every edge filter follows: assembled from the database, published in memory as
//! ready-to-serve bytes, and advanced whenever the bundle version in the database moves (a
//! change here, or on another replica sharing the database).
//!
//! [`fanout`] wakes the other replicas through Redis.

pub mod fanout;

use crate::infra::config::Config;
use portcullis_authz::bundle::{Bundle, Snapshot};
use portcullis_authz::jwk::KeySet;
use portcullis_authz::revocation::{RevocationEntry, Revocations};
use sqlx::{Any, AnyPool, Row as _, Transaction};
use std::sync::Arc;

/// Moves the bundle version forward inside `tx`; returns the new version.
pub async fn bump(tx: &mut Transaction<'static, Any>) -> Result<i64, sqlx::Error> {
    sqlx::query("UPDATE bundle_state SET version = version + 1 WHERE id = 1 RETURNING version")
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)
}

/// The bundle version in the database.
pub async fn current_version(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT version FROM bundle_state WHERE id = 1")
        .fetch_one(pool)
        .await?
        .try_get(0)
}

/// Revocation entries still covering tokens an edge may accept (unexpired, or expired less than
/// the largest edge leeway ago).
pub async fn live_revocations(
    pool: &AnyPool,
    now: i64,
) -> Result<Vec<RevocationEntry>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT jti, sid, sub, sub_before, exp FROM revocations WHERE exp > $1 ORDER BY created_at, id",
    )
    // Kept past `exp` by the largest leeway an edge may apply, or a revoked token would be
    // accepted again between its expiry and the end of the edge's leeway.
    .bind(now - portcullis_authz::config::MAX_LEEWAY_SECONDS)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(RevocationEntry {
                jti: row.try_get(0)?,
                sid: row.try_get(1)?,
                sub: row.try_get(2)?,
                before: row.try_get(3)?,
                exp: row.try_get(4)?,
            })
        })
        .collect()
}

/// One published state: what verification on this node uses, and the bundle bytes the edge
/// fetches (absent while no policy set has been loaded).
#[derive(Debug)]
pub struct Published {
    /// Bundle version.
    pub version: i64,
    /// Keys that verify our tokens (next, active, retiring).
    pub keys: KeySet,
    /// Revocations in force.
    pub revocations: Revocations,
    /// Serialized bundle and its snapshot, when policies exist.
    pub served: Option<Served>,
    /// The key that signs new tokens.
    pub signer: Option<crate::oauth::tokens::TokenKey>,
    /// The ID-token keys: their signers and the key set logout hints verify with.
    pub id_tokens: crate::keys::id_token::InUse,
    /// `/.well-known/jwks.json`: the access-token keys, then the ID-token keys.
    pub public_jwks: portcullis_authz::jwk::Jwks,
}

/// A bundle ready to serve.
#[derive(Debug)]
pub struct Served {
    /// The JSON document.
    pub body: Arc<[u8]>,
    /// Its entity tag.
    pub etag: String,
    /// The detached JWS over `body` by the active bundle-signing key, sent as the
    /// `Portcullis-Bundle-Signature` header (see `portcullis_authz::bundle_signature`).
    pub signature: String,
    /// The bundle's version.
    pub version: u64,
    /// The version of the policy set in it.
    pub policy_version: i64,
    /// The key that signed it, which also signs each response's freshness statement.
    pub bundle_signer: portcullis_authz::issue::SigningKey,
    /// The validated snapshot (what `/v1/authorize` decides with).
    pub snapshot: Arc<Snapshot>,
}

/// Why the bundle could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// Keys could not be read.
    #[error(transparent)]
    Keys(#[from] crate::keys::signing::KeyError),
    /// The assembled bundle does not validate (should never happen: parts are validated on
    /// the way in).
    #[error("assembled bundle is invalid: {0}")]
    Invalid(String),
}

impl Published {
    /// Whether this state compiled its policies rather than sharing them with `before`.
    pub fn compiled_after(&self, before: &Published) -> bool {
        match (&self.served, &before.served) {
            (Some(now), Some(then)) => !Arc::ptr_eq(&now.snapshot.engine, &then.snapshot.engine),
            (now, _) => now.is_some(),
        }
    }
}

/// Reads everything and builds the published state at the current version. The policies of
/// `previous` are reused when the policy set in force is unchanged (a revocation, a key), so
/// only a new policy version is compiled.
pub async fn assemble(
    pool: &AnyPool,
    config: &Config,
    master: &crate::keys::secrets::MasterKey,
    previous: Option<&Published>,
) -> Result<Published, AssembleError> {
    let version = current_version(pool).await?;
    let signer = match crate::keys::signing::active(pool, master).await {
        Ok(key) => Some(key),
        Err(crate::keys::signing::KeyError::NoActiveKey) => None,
        Err(e) => return Err(e.into()),
    };
    let jwks = crate::keys::signing::jwks(pool, master).await?;
    let id_tokens =
        crate::keys::id_token::in_use(pool, master, previous.map(|p| &p.id_tokens)).await?;
    let mut public_jwks = jwks.clone();
    public_jwks.keys.extend(id_tokens.jwks.keys.iter().cloned());
    let revoked = live_revocations(pool, crate::now()).await?;
    let policies = crate::policy::store::active(pool).await?;
    let (keys, _) = KeySet::from_jwks(&jwks);
    let revocations =
        Revocations::from_entries(&revoked).map_err(|e| AssembleError::Invalid(e.to_string()))?;
    let served = match policies {
        None => None,
        Some((policy_version, set)) => {
            let bundle = Bundle {
                version: u64::try_from(version).unwrap_or(0),
                issuer: config.issuer.clone(),
                audiences: config.audiences.clone(),
                jwks,
                policies: set.policies,
                schema: set.schema,
                entities: set.entities,
                revoked,
            };
            let before = previous
                .and_then(|p| p.served.as_ref())
                .map(|served| served.snapshot.as_ref());
            let snapshot = Snapshot::from_bundle_after(&bundle, before)
                .map_err(|e| AssembleError::Invalid(e.to_string()))?;
            let body =
                serde_json::to_vec(&bundle).map_err(|e| AssembleError::Invalid(e.to_string()))?;
            let bundle_signer = crate::keys::bundle::signer(pool, master).await?;
            Some(Served {
                signature: portcullis_authz::bundle_signature::sign(&bundle_signer, &body),
                version: u64::try_from(version).unwrap_or(0),
                policy_version,
                bundle_signer,
                body: body.into(),
                etag: format!("\"v{version}\""),
                snapshot: Arc::new(snapshot),
            })
        }
    };
    Ok(Published {
        version,
        keys,
        revocations,
        served,
        signer,
        id_tokens,
        public_jwks,
    })
}
