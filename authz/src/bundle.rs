//! The bundle the control plane serves at `GET /plugin/v1/bundle`, and the validated snapshot the
//! filter decides with. A snapshot exists only if every part parsed and validated, so swapping
//! snapshots is all-or-nothing.
//!
//! Compiling the policy part (schema, policies, entities) is the expensive step of reading a
//! bundle, and most new bundles change only revocations or keys: a logout must not make the
//! control plane and every Envoy worker recompile Cedar. So a snapshot remembers a digest of the
//! policy part it was built from, and [`Snapshot::from_bundle_after`] shares the previous
//! snapshot's engine when the digest is the same.

use crate::claims::ClaimRules;
use crate::jwk::{JwkError, Jwks, KeySet};
use crate::policy::{PolicyEngine, PolicyError};
use crate::revocation::{RevocationEntry, RevocationError, Revocations};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;

/// Largest bundle accepted, in bytes.
pub const MAX_BUNDLE_BYTES: usize = 16 * 1024 * 1024;

/// The bundle as it travels. Unknown members are ignored so newer control planes can add fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// Monotonic version.
    pub version: u64,
    /// The issuer tokens must carry in `iss`.
    pub issuer: String,
    /// Audiences this edge accepts.
    pub audiences: Vec<String>,
    /// Verification keys (public parts only).
    pub jwks: Jwks,
    /// Cedar policies (text).
    pub policies: String,
    /// Cedar schema (human-readable schema syntax).
    pub schema: String,
    /// Cedar entities JSON (e.g. the role hierarchy).
    #[serde(default)]
    pub entities: serde_json::Value,
    /// Revocations still covering unexpired tokens.
    #[serde(default)]
    pub revoked: Vec<RevocationEntry>,
}

/// Why a bundle was refused; the previous snapshot stays in force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Larger than [`MAX_BUNDLE_BYTES`].
    #[error("bundle is larger than {MAX_BUNDLE_BYTES} bytes")]
    TooLarge,
    /// Not the expected JSON shape.
    #[error("bundle is not valid JSON: {0}")]
    Json(String),
    /// Empty issuer or no audience.
    #[error("bundle has an empty issuer or no audience")]
    MissingIssuerOrAudience,
    /// No key in the JWKS can be trusted.
    #[error("bundle has no usable signing key")]
    NoUsableKey,
    /// Schema, policies or entities were refused.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A revocation entry is malformed.
    #[error(transparent)]
    Revocation(#[from] RevocationError),
}

/// A fully validated bundle.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Bundle version.
    pub version: u64,
    /// Trusted keys.
    pub keys: KeySet,
    /// Keys left out of `keys`, for logs.
    pub rejected_keys: Vec<JwkError>,
    /// Trusted issuer.
    pub issuer: String,
    /// Accepted audiences.
    pub audiences: Vec<String>,
    /// Policies, schema and entities, shared with the snapshot before when they did not change.
    pub engine: Arc<PolicyEngine>,
    /// SHA-256 over the schema, policies and entities `engine` was built from.
    pub policy_digest: [u8; 32],
    /// Revocations.
    pub revocations: Revocations,
}

/// The digest that tells whether two bundles carry the same policy part: each part
/// length-prefixed, so no two different parts hash alike by moving bytes between them.
fn policy_digest(bundle: &Bundle) -> [u8; 32] {
    let entities = serde_json::to_vec(&bundle.entities).unwrap_or_default();
    let mut hasher = Sha256::new();
    for part in [
        bundle.schema.as_bytes(),
        bundle.policies.as_bytes(),
        &entities,
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

impl Snapshot {
    /// Parses and validates a bundle document.
    pub fn from_json(bytes: &[u8]) -> Result<Self, BundleError> {
        Self::from_json_after(bytes, None)
    }

    /// Parses and validates a bundle document that follows `previous`, whose compiled policies
    /// are reused when the policy part is unchanged.
    pub fn from_json_after(bytes: &[u8], previous: Option<&Snapshot>) -> Result<Self, BundleError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge);
        }
        let bundle: Bundle =
            serde_json::from_slice(bytes).map_err(|e| BundleError::Json(e.to_string()))?;
        Self::from_bundle_after(&bundle, previous)
    }

    /// Validates a parsed bundle.
    pub fn from_bundle(bundle: &Bundle) -> Result<Self, BundleError> {
        Self::from_bundle_after(bundle, None)
    }

    /// Validates a parsed bundle that follows `previous`, sharing its engine when the schema,
    /// policies and entities are the same (everything else is validated anew).
    pub fn from_bundle_after(
        bundle: &Bundle,
        previous: Option<&Snapshot>,
    ) -> Result<Self, BundleError> {
        if bundle.issuer.is_empty() || bundle.audiences.iter().all(String::is_empty) {
            return Err(BundleError::MissingIssuerOrAudience);
        }
        let (keys, rejected_keys) = KeySet::from_jwks(&bundle.jwks);
        if keys.is_empty() {
            return Err(BundleError::NoUsableKey);
        }
        let policy_digest = policy_digest(bundle);
        let engine = match previous {
            Some(previous) if previous.policy_digest == policy_digest => previous.engine.clone(),
            _ => Arc::new(PolicyEngine::new(
                &bundle.schema,
                &bundle.policies,
                &bundle.entities,
            )?),
        };
        Ok(Snapshot {
            version: bundle.version,
            engine,
            policy_digest,
            revocations: Revocations::from_entries(&bundle.revoked)?,
            keys,
            rejected_keys,
            issuer: bundle.issuer.clone(),
            audiences: bundle
                .audiences
                .iter()
                .filter(|a| !a.is_empty())
                .cloned()
                .collect(),
        })
    }

    /// The claim rules of this bundle with the edge's leeway and maximum lifetime.
    pub fn claim_rules(&self, leeway: i64, max_lifetime: i64) -> ClaimRules {
        ClaimRules {
            issuer: self.issuer.clone(),
            audiences: self.audiences.clone(),
            leeway,
            max_lifetime,
        }
    }
}
