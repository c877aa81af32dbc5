//! A policy set (schema, policies, entities and its test corpus), its limits and its
//! validation with the engine the edge runs.

use super::corpus::CaseResult;
use portcullis_authz::folder::{CorpusCase, Folder, FolderError};
use portcullis_authz::policy::{PolicyEngine, PolicyError};
use serde::Serialize;
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
    /// A file of the folder could not be read or parsed.
    #[error(transparent)]
    Folder(#[from] FolderError),
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
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
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
    #[schema(value_type = Vec<Object>)]
    pub tests: Vec<CorpusCase>,
}

impl PolicySet {
    /// Reads the policy folder `dir` (see [`portcullis_authz::folder`]).
    pub fn from_dir(dir: &Path) -> Result<Self, PolicyStoreError> {
        let folder = Folder::read(dir)?;
        Ok(PolicySet {
            policies: folder.policies(),
            schema: folder.schema,
            entities: folder.entities,
            tests: folder.tests,
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
                let problems = crate::policy::diagnostics::check(&self.schema, &files);
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
