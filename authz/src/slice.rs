//! Policy slicing: at bundle load, index every policy by what its head (principal, action,
//! resource constraints) can match, so a request evaluates only the policies that could apply to
//! it instead of every policy in the set.
//!
//! Cedar evaluates a policy's head before its conditions and skips the conditions when the head
//! does not match, so a policy whose head cannot match a request can neither decide it nor report
//! an error for it: leaving it out changes nothing. The index is therefore conservative — a
//! policy goes into every slice its head *might* match:
//! - action: `Action::"GET"` matches a head that is unconstrained, names `GET`, or names a group
//!   `GET` belongs to in the schema (`read`);
//! - principal: a head naming one principal (`principal == User::"a"`) is filed under that
//!   principal; `is`/`is … in` heads under their type; `in` heads (roles) under every type;
//! - resource: a head naming one endpoint (`resource == Endpoint::"/p"`) is filed under that
//!   endpoint; every other resource head is general.
//!
//! Slices are built per (action, principal type) once; a request with a principal- or
//! resource-specific policy gets a small set assembled from the general slice and those policies.

use cedar_policy::{
    ActionConstraint, Entities, EntityTypeName, EntityUid, Policy, PolicySet, PrincipalConstraint,
    ResourceConstraint, Schema,
};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// A policy set indexed by the heads of its policies.
#[derive(Debug, Clone)]
pub struct SlicedPolicies {
    /// Policies that may match any principal of a type and any resource, per (action, type).
    general: HashMap<(EntityUid, EntityTypeName), PolicySet>,
    /// Policies whose head names one principal, per (action, principal).
    by_principal: HashMap<(EntityUid, EntityUid), Vec<Policy>>,
    /// Policies whose head names one resource (and no single principal), per (action, resource).
    by_resource: HashMap<(EntityUid, EntityUid), Vec<Policy>>,
    empty: PolicySet,
}

impl SlicedPolicies {
    /// Indexes `policies` for the actions and principal types of `schema`.
    pub fn new(policies: &PolicySet, schema: &Schema, principal_types: &[EntityTypeName]) -> Self {
        let action_groups = action_groups(schema);
        let mut general: HashMap<(EntityUid, EntityTypeName), PolicySet> = HashMap::new();
        let mut by_principal: HashMap<(EntityUid, EntityUid), Vec<Policy>> = HashMap::new();
        let mut by_resource: HashMap<(EntityUid, EntityUid), Vec<Policy>> = HashMap::new();
        for (action, groups) in &action_groups {
            for principal_type in principal_types {
                general.insert((action.clone(), principal_type.clone()), PolicySet::new());
            }
            for policy in policies.policies() {
                if !action_matches(&policy.action_constraint(), action, groups) {
                    continue;
                }
                let resource = match policy.resource_constraint() {
                    ResourceConstraint::Eq(uid) => Some(uid),
                    _ => None,
                };
                match policy.principal_constraint() {
                    PrincipalConstraint::Eq(uid) => {
                        by_principal
                            .entry((action.clone(), uid))
                            .or_default()
                            .push(policy.clone());
                    }
                    head => {
                        if let Some(resource) = resource {
                            by_resource
                                .entry((action.clone(), resource))
                                .or_default()
                                .push(policy.clone());
                            continue;
                        }
                        for principal_type in principal_types {
                            let may_match = match &head {
                                PrincipalConstraint::Is(t) | PrincipalConstraint::IsIn(t, _) => {
                                    t == principal_type
                                }
                                _ => true,
                            };
                            if !may_match {
                                continue;
                            }
                            if let Some(set) =
                                general.get_mut(&(action.clone(), principal_type.clone()))
                            {
                                // Ids are unique in the source set, so adding cannot fail.
                                let _ = set.add(policy.clone());
                            }
                        }
                    }
                }
            }
        }
        SlicedPolicies {
            general,
            by_principal,
            by_resource,
            empty: PolicySet::new(),
        }
    }

    /// The policies whose heads may match a request by `principal` doing `action` on `resource`.
    pub fn for_request(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
    ) -> Cow<'_, PolicySet> {
        let general = self
            .general
            .get(&(action.clone(), principal.type_name().clone()))
            .unwrap_or(&self.empty);
        let for_principal = self.by_principal.get(&(action.clone(), principal.clone()));
        let for_resource = self.by_resource.get(&(action.clone(), resource.clone()));
        if for_principal.is_none() && for_resource.is_none() {
            return Cow::Borrowed(general);
        }
        let mut set = general.clone();
        for policy in for_principal.into_iter().chain(for_resource).flatten() {
            let _ = set.add(policy.clone());
        }
        Cow::Owned(set)
    }
}

/// Every action of the schema with the groups it belongs to (transitively).
fn action_groups(schema: &Schema) -> Vec<(EntityUid, HashSet<EntityUid>)> {
    let entities: Entities = schema
        .action_entities()
        .unwrap_or_else(|_| Entities::empty());
    schema
        .actions()
        .map(|action| {
            let groups = entities
                .ancestors(action)
                .map(|ancestors| ancestors.cloned().collect())
                .unwrap_or_default();
            (action.clone(), groups)
        })
        .collect()
}

fn action_matches(
    head: &ActionConstraint,
    action: &EntityUid,
    groups: &HashSet<EntityUid>,
) -> bool {
    match head {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(uid) => uid == action,
        ActionConstraint::In(uids) => uids.iter().any(|uid| uid == action || groups.contains(uid)),
    }
}
