//! Cedar's authorization of one concrete request, without Cedar's partial-evaluation response.
//!
//! `Authorizer::is_authorized` runs every policy through Cedar's partial evaluator, files the
//! results into a partial response and then concretizes it; inside V8 that bookkeeping costs
//! about as much as evaluating a sliced set. A request built from verified claims has no unknowns,
//! so this evaluates each policy with Cedar's own concrete evaluator and combines the results as
//! Cedar specifies: a satisfied `forbid` denies, otherwise a satisfied `permit` allows, otherwise
//! the request is denied; a policy that errors is skipped and its error reported. The unsliced
//! path keeps Cedar's `Authorizer`, and the slicing tests hold the two to the same decisions,
//! reasons and error messages.

use cedar_policy::{Entities, PolicySet, Request};
use cedar_policy_core::ast::{Effect, PolicyID};
use cedar_policy_core::evaluator::Evaluator;
use cedar_policy_core::extensions::Extensions;

/// What Cedar decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Cedar's decision is Allow (errors aside).
    pub allowed: bool,
    /// The policies that determined the decision, as Cedar displays their ids.
    pub reasons: Vec<String>,
    /// Every evaluation error, worded as Cedar words them.
    pub errors: Vec<String>,
}

/// Evaluates `policies` for `request` over `entities`.
pub fn authorize(request: &Request, policies: &PolicySet, entities: &Entities) -> Authorization {
    let evaluator = Evaluator::new(
        request.as_ref().clone(),
        entities.as_ref(),
        Extensions::all_available(),
    );
    let mut permits = Vec::new();
    let mut forbids = Vec::new();
    let mut errors = Vec::new();
    for policy in policies.as_ref().policies() {
        match evaluator.evaluate(policy) {
            Ok(true) if policy.effect() == Effect::Forbid => forbids.push(display_id(policy.id())),
            Ok(true) => permits.push(display_id(policy.id())),
            Ok(false) => {}
            Err(error) => errors.push(format!(
                "error while evaluating policy `{}`: {error}",
                policy.id()
            )),
        }
    }
    let (allowed, reasons) = if !forbids.is_empty() {
        (false, forbids)
    } else {
        (!permits.is_empty(), permits)
    };
    Authorization {
        allowed,
        reasons,
        errors,
    }
}

/// `id` as Cedar displays it (`escape_debug`), without the formatter when nothing needs escaping.
fn display_id(id: &PolicyID) -> String {
    let raw: &str = id.as_ref();
    let plain = raw
        .bytes()
        .all(|b| (b == b' ' || b.is_ascii_graphic()) && !matches!(b, b'\\' | b'\'' | b'"'));
    if plain {
        raw.to_owned()
    } else {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_ids_read_as_cedar_displays_them() {
        for raw in [
            "items-read",
            "admin:all",
            "with space",
            "quote\"d",
            "it's",
            "back\\slash",
            "new\nline",
            "tab\t",
            "nul\0",
            "é",
            "",
        ] {
            let id = PolicyID::from_string(raw);
            assert_eq!(display_id(&id), id.to_string(), "{raw:?}");
        }
    }
}
