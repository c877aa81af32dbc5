//! Running a policy set's ALLOW/DENY corpus: what `policy test`, `policy diff` and every push
//! check.

use super::set::{PolicySet, PolicyStoreError};
use portcullis_authz::folder::CorpusCase;
use portcullis_authz::policy::PolicyEngine;
use serde::Serialize;
use std::path::Path;

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
