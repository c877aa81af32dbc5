//! The Cedar context of a request, built as Cedar values directly.
//!
//! Cedar's public `Context::from_pairs` takes restricted expressions and evaluates each one
//! into a value, which cost more than evaluating a sliced policy set. The context holds only
//! strings, sets of strings, records of strings and one integer, so it is built as values.

use crate::claims::AccessClaims;
use crate::endpoint;
use cedar_policy::Context;
use cedar_policy_core::ast::{self, Literal, Value};
use smol_str::SmolStr;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A token's context entries: everything but `now` and `source_ip`, which belong to the
/// request.
#[derive(Debug, Clone)]
pub struct ClaimContext {
    entries: Arc<BTreeMap<SmolStr, Value>>,
}

impl ClaimContext {
    /// `scopes`, `api_scopes`, `roles`, `amr`, `client_id` and (when present) `tenant`.
    pub fn new(claims: &AccessClaims) -> Self {
        let string = |s: &str| Value::from(Literal::from(s));
        let set = |items: &[String]| Value::set(items.iter().map(|s| string(s)), None);
        let api_scopes = claims.scopes.iter().filter_map(|scope| {
            let (service, permission) = endpoint::api_scope(scope)?;
            Some(Value::record(
                [
                    ("service", string(service)),
                    ("permission", string(permission)),
                ],
                None,
            ))
        });
        let mut entries = BTreeMap::from([
            (SmolStr::new_static("scopes"), set(&claims.scopes)),
            (
                SmolStr::new_static("api_scopes"),
                Value::set(api_scopes, None),
            ),
            (SmolStr::new_static("roles"), set(&claims.roles)),
            (SmolStr::new_static("amr"), set(&claims.amr)),
            (SmolStr::new_static("client_id"), string(&claims.client_id)),
        ]);
        if let Some(tenant) = &claims.tenant {
            entries.insert(SmolStr::new_static("tenant"), string(tenant));
        }
        ClaimContext {
            entries: Arc::new(entries),
        }
    }

    /// The whole context: these entries plus `now` and, when known, `source_ip`.
    pub fn with_request(&self, now: i64, source_ip: Option<&str>) -> Context {
        let mut entries = (*self.entries).clone();
        entries.insert(SmolStr::new_static("now"), Value::from(Literal::from(now)));
        if let Some(ip) = source_ip {
            entries.insert(
                SmolStr::new_static("source_ip"),
                Value::from(Literal::from(ip)),
            );
        }
        Context::from(ast::Context::Value(Arc::new(entries)))
    }
}
