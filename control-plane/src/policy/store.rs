//! The versioned policy store: every version is validated with the same Cedar engine the edge
//! filter runs before it is stored, and activating one moves the bundle version forward.

use super::corpus::{run_corpus, CaseResult};
use super::set::{PolicySet, PolicyStoreError};
use portcullis_authz::folder::CorpusCase;
use serde::Serialize;
use sqlx::{Any, AnyPool, Row as _, Transaction};

/// A stored version without its text.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    /// Policy version.
    pub version: i64,
    /// Who stored it.
    pub author: String,
    /// When, epoch seconds.
    pub created_at: i64,
    /// Whether it is the one in force.
    pub active: bool,
}

/// Validates and stores `set` as a new version and activates it; returns the version.
pub async fn store_and_activate(
    tx: &mut Transaction<'static, Any>,
    set: &PolicySet,
    author: &str,
) -> Result<i64, PolicyStoreError> {
    let engine = set.validate()?;
    let stored = set.tests.is_empty();
    let tests = if stored {
        active_tests(tx).await?
    } else {
        set.tests.clone()
    };
    let failures: Vec<CaseResult> = run_corpus(&engine, &tests)
        .into_iter()
        .filter(|result| !result.passed())
        .collect();
    if !failures.is_empty() {
        return Err(PolicyStoreError::CorpusFails { stored, failures });
    }
    let tests_json =
        serde_json::to_string(&tests).map_err(|e| PolicyStoreError::EntitiesJson(e.to_string()))?;
    let version: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 FROM policy_versions")
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    sqlx::query(
        "INSERT INTO policy_versions (version, schema_text, policies, entities, author, created_at, tests) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(version)
    .bind(&set.schema)
    .bind(&set.policies)
    .bind(set.entities.to_string())
    .bind(author)
    .bind(crate::now())
    .bind(tests_json)
    .execute(&mut **tx)
    .await?;
    activate(tx, version).await?;
    Ok(version)
}

/// The corpus stored with the active version (empty when there is none).
async fn active_tests(
    tx: &mut Transaction<'static, Any>,
) -> Result<Vec<CorpusCase>, PolicyStoreError> {
    let row = sqlx::query(
        "SELECT p.tests FROM policy_versions p \
         JOIN bundle_state b ON b.active_policy_version = p.version WHERE b.id = 1",
    )
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(Vec::new());
    };
    let text: String = row.try_get(0)?;
    serde_json::from_str(&text).map_err(|e| PolicyStoreError::EntitiesJson(e.to_string()))
}

/// Makes `version` the one in force (also used to roll back) and bumps the bundle version.
pub async fn activate(tx: &mut Transaction<'static, Any>, version: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE bundle_state SET active_policy_version = $1 WHERE id = 1")
        .bind(version)
        .execute(&mut **tx)
        .await?;
    crate::bundle::bump(tx).await?;
    Ok(())
}

/// The policy set in force, if any.
pub async fn active(pool: &AnyPool) -> Result<Option<(i64, PolicySet)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT p.version, p.schema_text, p.policies, p.entities, p.tests FROM policy_versions p \
         JOIN bundle_state b ON b.active_policy_version = p.version WHERE b.id = 1",
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let entities: String = row.try_get(3)?;
    let tests: String = row.try_get(4)?;
    Ok(Some((
        row.try_get(0)?,
        PolicySet {
            schema: row.try_get(1)?,
            policies: row.try_get(2)?,
            entities: serde_json::from_str(&entities).unwrap_or(serde_json::Value::Null),
            tests: serde_json::from_str(&tests).unwrap_or_default(),
        },
    )))
}

/// Every stored version, newest first.
pub async fn versions(pool: &AnyPool) -> Result<Vec<VersionInfo>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT p.version, p.author, p.created_at, b.active_policy_version FROM policy_versions p \
         CROSS JOIN bundle_state b WHERE b.id = 1 ORDER BY p.version DESC",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let version: i64 = row.try_get(0)?;
            let active: i64 = row.try_get(3)?;
            Ok(VersionInfo {
                version,
                author: row.try_get(1)?,
                created_at: row.try_get(2)?,
                active: version == active,
            })
        })
        .collect()
}
