//! The versioned policy store: every version is validated with the same Cedar engine the edge
//! filter runs before it is stored, and activating one moves the bundle version forward.

use portcullis_authz::policy::{PolicyEngine, PolicyError};
use serde::Serialize;
use sqlx::{Any, AnyPool, Row as _, Transaction};
use std::path::Path;

/// Why a policy set was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyStoreError {
    /// Schema, policies or entities do not parse or validate.
    #[error(transparent)]
    Invalid(#[from] PolicyError),
    /// The entities are not JSON.
    #[error("entities: {0}")]
    EntitiesJson(String),
    /// A file of the folder could not be read.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// Larger than the limit.
    #[error("policy set is larger than {MAX_POLICY_BYTES} bytes")]
    TooLarge,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Largest accepted schema + policies + entities, in bytes.
pub const MAX_POLICY_BYTES: usize = 2 * 1024 * 1024;

/// A complete policy set as authored in `policies/`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PolicySet {
    /// Cedar schema (human-readable syntax).
    pub schema: String,
    /// Cedar policies.
    pub policies: String,
    /// Cedar entities JSON.
    #[serde(default)]
    pub entities: serde_json::Value,
}

impl PolicySet {
    /// Reads `schema.cedarschema`, every `*.cedar` file (sorted by name) and `entities.json`
    /// (optional) from `dir`.
    pub fn from_dir(dir: &Path) -> Result<Self, PolicyStoreError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|e| PolicyStoreError::File {
                path: path.display().to_string(),
                message: e.to_string(),
            })
        };
        let schema = read(&dir.join("schema.cedarschema"))?;
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| PolicyStoreError::File {
                path: dir.display().to_string(),
                message: e.to_string(),
            })?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "cedar"))
            .collect();
        files.sort();
        let mut policies = String::new();
        for file in files {
            policies.push_str(&read(&file)?);
            policies.push('\n');
        }
        let entities_path = dir.join("entities.json");
        let entities = if entities_path.exists() {
            serde_json::from_str(&read(&entities_path)?)
                .map_err(|e| PolicyStoreError::EntitiesJson(e.to_string()))?
        } else {
            serde_json::Value::Array(Vec::new())
        };
        Ok(PolicySet {
            schema,
            policies,
            entities,
        })
    }

    /// Validates with the edge's engine.
    pub fn validate(&self) -> Result<PolicyEngine, PolicyStoreError> {
        let size = self.schema.len() + self.policies.len() + self.entities.to_string().len();
        if size > MAX_POLICY_BYTES {
            return Err(PolicyStoreError::TooLarge);
        }
        Ok(PolicyEngine::new(
            &self.schema,
            &self.policies,
            &self.entities,
        )?)
    }
}

/// A stored version without its text.
#[derive(Debug, Clone, Serialize)]
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
    set.validate()?;
    let version: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 FROM policy_versions")
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    sqlx::query(
        "INSERT INTO policy_versions (version, schema_text, policies, entities, author, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(version)
    .bind(&set.schema)
    .bind(&set.policies)
    .bind(set.entities.to_string())
    .bind(author)
    .bind(crate::now())
    .execute(&mut **tx)
    .await?;
    activate(tx, version).await?;
    Ok(version)
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
        "SELECT p.version, p.schema_text, p.policies, p.entities FROM policy_versions p \
         JOIN bundle_state b ON b.active_policy_version = p.version WHERE b.id = 1",
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let entities: String = row.try_get(3)?;
    Ok(Some((
        row.try_get(0)?,
        PolicySet {
            schema: row.try_get(1)?,
            policies: row.try_get(2)?,
            entities: serde_json::from_str(&entities).unwrap_or(serde_json::Value::Null),
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

/// A corpus case with where it came from and what it expects.
#[derive(Debug, Clone)]
pub struct CorpusCase {
    /// `ALLOW/<name>.json` or `DENY/<name>.json`.
    pub file: String,
    /// Whether the case expects an allow.
    pub expect_allow: bool,
    /// The case.
    pub case: portcullis_authz::corpus::Case,
}

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case file.
    pub file: String,
    /// Expected decision.
    pub expected: &'static str,
    /// Actual decision.
    pub got: &'static str,
    /// Deciding policies.
    pub policy_ids: Vec<String>,
    /// Evaluation errors.
    pub errors: Vec<String>,
}

impl CaseResult {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.expected == self.got
    }
}

/// Reads `dir/tests/ALLOW/*.json` and `dir/tests/DENY/*.json`, sorted by file name.
pub fn load_corpus(dir: &Path) -> Result<Vec<CorpusCase>, PolicyStoreError> {
    let mut cases = Vec::new();
    for (folder, expect_allow) in [("ALLOW", true), ("DENY", false)] {
        let folder_path = dir.join("tests").join(folder);
        let Ok(entries) = std::fs::read_dir(&folder_path) else {
            continue;
        };
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for path in files {
            let file_error = |message: String| PolicyStoreError::File {
                path: path.display().to_string(),
                message,
            };
            let text = std::fs::read_to_string(&path).map_err(|e| file_error(e.to_string()))?;
            let case = serde_json::from_str(&text).map_err(|e| file_error(e.to_string()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            cases.push(CorpusCase {
                file: format!("{folder}/{name}"),
                expect_allow,
                case,
            });
        }
    }
    Ok(cases)
}

fn label(allowed: bool) -> &'static str {
    if allowed {
        "allow"
    } else {
        "deny"
    }
}

/// Evaluates every case with `engine`.
pub fn run_corpus(engine: &PolicyEngine, cases: &[CorpusCase]) -> Vec<CaseResult> {
    let now = crate::now();
    cases
        .iter()
        .map(|c| {
            let (allowed, policy_ids, errors) = match c.case.evaluate(engine, now) {
                Ok(d) => (d.allowed, d.policy_ids, d.errors),
                Err(e) => (false, Vec::new(), vec![e]),
            };
            CaseResult {
                file: c.file.clone(),
                expected: label(c.expect_allow),
                got: label(allowed),
                policy_ids,
                errors,
            }
        })
        .collect()
}

/// Reads and validates the folder `dir` and runs its corpus: the set and every case's result.
pub fn test_dir(dir: &Path) -> Result<(PolicySet, Vec<CaseResult>), PolicyStoreError> {
    let set = PolicySet::from_dir(dir)?;
    let engine = set.validate()?;
    let results = run_corpus(&engine, &load_corpus(dir)?);
    Ok((set, results))
}
