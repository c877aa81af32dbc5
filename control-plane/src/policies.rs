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
    /// The policies do not parse or validate: Cedar's diagnostics, rendered with line and caret.
    #[error("{0}")]
    Diagnostics(String),
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
    /// More policies than the limit.
    #[error("policy set has more than {MAX_POLICIES} policies")]
    TooMany,
    /// The formatter could not format the text (it does not parse).
    #[error("format: {0}")]
    Format(String),
    /// The new policies fail test cases (their own, or the stored corpus when they bring none).
    #[error("{}", corpus_message(*.stored, failures))]
    CorpusFails {
        /// Whether the failing cases are the stored corpus.
        stored: bool,
        /// The failing cases.
        failures: Vec<CaseResult>,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn corpus_message(stored: bool, failures: &[CaseResult]) -> String {
    let which = if stored {
        "the stored test corpus (send `tests` to replace it)"
    } else {
        "its own test corpus"
    };
    let cases: Vec<String> = failures
        .iter()
        .map(|f| format!("{} (expected {}, got {})", f.file, f.expected, f.got))
        .collect();
    format!(
        "the policies fail {} case(s) of {which}: {}",
        failures.len(),
        cases.join(", ")
    )
}

/// Largest accepted schema + policies + entities, in bytes.
pub const MAX_POLICY_BYTES: usize = 2 * 1024 * 1024;

/// Most policies accepted in one set (the edge evaluates them in every worker).
pub const MAX_POLICIES: usize = 10_000;

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
    /// The ALLOW/DENY corpus. A push that carries one replaces the stored corpus (and must pass
    /// it); a push without one must pass the corpus stored with the active version.
    #[serde(default)]
    pub tests: Vec<CorpusCase>,
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
        let files = cedar_files(dir)?;
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
            tests: load_corpus(dir)?,
        })
    }

    /// Validates with the edge's engine.
    pub fn validate(&self) -> Result<PolicyEngine, PolicyStoreError> {
        let size = self.schema.len() + self.policies.len() + self.entities.to_string().len();
        if size > MAX_POLICY_BYTES {
            return Err(PolicyStoreError::TooLarge);
        }
        let engine =
            PolicyEngine::new(&self.schema, &self.policies, &self.entities).map_err(|error| {
                // Cedar's diagnostics with line and caret where it has them.
                let files = [("policies".to_owned(), self.policies.clone())];
                let problems = crate::diagnostics::check(&self.schema, &files);
                if problems.is_empty() {
                    PolicyStoreError::Invalid(error)
                } else {
                    PolicyStoreError::Diagnostics(problems.join("\n\n"))
                }
            })?;
        if engine.policy_count() + engine.shadow_count() > MAX_POLICIES {
            return Err(PolicyStoreError::TooMany);
        }
        Ok(engine)
    }
}

/// Every `*.cedar` file of `dir`, sorted by name.
pub fn cedar_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, PolicyStoreError> {
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
    Ok(files)
}

/// Formats Cedar policy text the way `portcullis policy fmt` writes it (comments kept).
pub fn format_policies(text: &str) -> Result<String, PolicyStoreError> {
    let config = cedar_policy_formatter::Config {
        line_width: 100,
        indent_width: 2,
    };
    cedar_policy_formatter::policies_str_to_pretty(text, &config).map_err(|report| {
        PolicyStoreError::Format(
            report
                .chain()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(": "),
        )
    })
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

/// A corpus case with where it came from and what it expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
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
    let results = run_corpus(&engine, &set.tests);
    Ok((set, results))
}
