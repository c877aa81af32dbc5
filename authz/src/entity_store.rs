//! Adding the request's entities (the principal, the endpoint) to the bundle's entity store
//! without recomputing the store's transitive closure on every request.
//!
//! Cedar's public `Entities::add_entities` re-derives the ancestors of every entity in the
//! store each time, which cost more than evaluating the policies. An entity that no stored
//! entity has among its ancestors can be added exactly with its closure computed here: its
//! ancestors are its parents plus their (already closed) ancestors, no other entity's ancestors
//! change, and it cannot close a cycle. When the store does name an entity of that type as an
//! ancestor, or already holds that uid, [`EntityStore::add`] takes Cedar's own path.

use cedar_policy::{Entities, Entity, EntityUid, RestrictedExpression};
use cedar_policy_core::ast;
use cedar_policy_core::entities::{Dereference, NoEntitiesSchema, TCComputation};
use cedar_policy_core::extensions::Extensions;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// An entity store with the transitive closure computed, and the entity types it names as
/// ancestors.
#[derive(Debug, Clone)]
pub struct EntityStore {
    entities: Entities,
    ancestor_types: Arc<HashSet<ast::EntityType>>,
}

impl EntityStore {
    /// Wraps a store built by Cedar (whose closure Cedar computed).
    pub fn new(entities: Entities) -> Self {
        let ancestor_types = entities
            .as_ref()
            .iter()
            .flat_map(|entity| entity.ancestors().map(|uid| uid.entity_type().clone()))
            .collect::<HashSet<_>>();
        EntityStore {
            entities,
            ancestor_types: Arc::new(ancestor_types),
        }
    }

    /// The store, for Cedar's authorizer.
    pub fn entities(&self) -> &Entities {
        &self.entities
    }

    /// A copy of the store with the entity `uid` (string attributes `attributes`, member of
    /// `parents`) added. An error when the uid is already stored with other data, or when the
    /// entity closes a cycle; both exactly as Cedar's own `add_entities` reports them.
    pub fn add(
        &self,
        uid: &EntityUid,
        parents: HashSet<EntityUid>,
        attributes: Vec<(&str, String)>,
    ) -> Result<Self, String> {
        let core_uid: &ast::EntityUID = uid.as_ref();
        let stored = self.entities.as_ref();
        let closes_nothing = !self.ancestor_types.contains(core_uid.entity_type())
            && !matches!(stored.entity(core_uid), Dereference::Data(_));
        if !closes_nothing {
            return self.add_recomputing(uid, parents, attributes);
        }
        let parents: HashSet<ast::EntityUID> = parents
            .iter()
            .map(|p| AsRef::<ast::EntityUID>::as_ref(p).clone())
            .collect();
        let mut indirect = HashSet::new();
        for parent in &parents {
            if let Dereference::Data(found) = stored.entity(parent) {
                indirect.extend(found.ancestors().filter(|a| !parents.contains(*a)).cloned());
            }
        }
        let entity = ast::Entity::new_with_attr_partial_value(
            core_uid.clone(),
            attributes
                .into_iter()
                .map(|(name, value)| (name.into(), ast::PartialValue::from(value))),
            indirect,
            parents,
            [],
        );
        let entities = stored
            .clone()
            .add_entities(
                [Arc::new(entity)],
                None::<&NoEntitiesSchema>,
                TCComputation::AssumeAlreadyComputed,
                Extensions::none(),
            )
            .map_err(|e| e.to_string())?;
        Ok(EntityStore {
            entities: Entities::from(entities),
            ancestor_types: Arc::clone(&self.ancestor_types),
        })
    }

    /// Cedar's own path: add, then recompute the closure of the whole store.
    fn add_recomputing(
        &self,
        uid: &EntityUid,
        parents: HashSet<EntityUid>,
        attributes: Vec<(&str, String)>,
    ) -> Result<Self, String> {
        let attributes: HashMap<String, RestrictedExpression> = attributes
            .into_iter()
            .map(|(name, value)| (name.to_owned(), RestrictedExpression::new_string(value)))
            .collect();
        let entity = Entity::new(uid.clone(), attributes, parents).map_err(|e| e.to_string())?;
        let entities = self
            .entities
            .clone()
            .add_entities([entity], None)
            .map_err(|e| e.to_string())?;
        Ok(EntityStore::new(entities))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr as _;

    fn uid(text: &str) -> EntityUid {
        EntityUid::from_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn store(json: serde_json::Value) -> EntityStore {
        EntityStore::new(Entities::from_json_value(json, None).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Both paths must leave the same store: the same entities, ancestors and attributes.
    fn assert_same_as_cedar(base: &EntityStore, entity: &str, parents: &[&str]) {
        let parents: HashSet<EntityUid> = parents.iter().map(|p| uid(p)).collect();
        let attributes = vec![("path", "/a".to_owned())];
        let fast = base.add(&uid(entity), parents.clone(), attributes.clone());
        let cedar = base.add_recomputing(&uid(entity), parents, attributes);
        match (fast, cedar) {
            (Ok(fast), Ok(cedar)) => assert_same_entities(&fast, &cedar),
            (Err(_), Err(_)) => {}
            (fast, cedar) => panic!("fast {fast:?} but Cedar {cedar:?}"),
        }
    }

    /// `Entities` compares uids only; this compares every entity's attributes and ancestors.
    fn assert_same_entities(fast: &EntityStore, cedar: &EntityStore) {
        let (fast, cedar) = (fast.entities().as_ref(), cedar.entities().as_ref());
        assert_eq!(fast.iter().count(), cedar.iter().count());
        for expected in cedar.iter() {
            match fast.entity(expected.uid()) {
                Dereference::Data(found) => assert!(
                    found.deep_eq(expected),
                    "{} differs: {found:?} against Cedar's {expected:?}",
                    expected.uid()
                ),
                _ => panic!("{} is missing", expected.uid()),
            }
        }
    }

    fn hierarchy() -> EntityStore {
        store(serde_json::json!([
            {"uid": {"type": "Role", "id": "sre"}, "attrs": {}, "parents": [{"type": "Role", "id": "ops"}]},
            {"uid": {"type": "Role", "id": "ops"}, "attrs": {}, "parents": [{"type": "Role", "id": "staff"}]},
            {"uid": {"type": "Role", "id": "staff"}, "attrs": {}, "parents": []},
            {"uid": {"type": "Doc", "id": "d"}, "attrs": {}, "parents": [{"type": "User", "id": "owner"}]}
        ]))
    }

    #[test]
    fn a_principal_gets_the_closure_of_its_roles() {
        let base = hierarchy();
        let added = base
            .add(
                &uid(r#"Client::"c""#),
                HashSet::from([uid(r#"Role::"sre""#)]),
                Vec::new(),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let client = added.entities().get(&uid(r#"Client::"c""#));
        let ancestors: HashSet<String> = client
            .map(|c| {
                AsRef::<ast::Entity>::as_ref(c)
                    .ancestors()
                    .map(|a| a.to_string())
                    .collect()
            })
            .unwrap_or_default();
        let expected: HashSet<String> = ["Role::\"sre\"", "Role::\"ops\"", "Role::\"staff\""]
            .map(str::to_owned)
            .into();
        assert_eq!(ancestors, expected);
        assert_same_as_cedar(
            &base,
            r#"Client::"c""#,
            &[r#"Role::"sre""#, r#"Role::"ops""#],
        );
    }

    #[test]
    fn the_fast_path_matches_cedar() {
        let base = hierarchy();
        assert_same_as_cedar(&base, r#"Endpoint::"/a""#, &[]);
        assert_same_as_cedar(&base, r#"Client::"c""#, &[r#"Role::"sre""#]);
        assert_same_as_cedar(&base, r#"Client::"c""#, &[r#"Role::"unknown""#]);
        // A type the store names as an ancestor takes Cedar's path (Doc::"d" is in User::"owner").
        assert_same_as_cedar(&base, r#"User::"owner""#, &[r#"Role::"ops""#]);
        // An uid already stored with other data is refused by both.
        assert_same_as_cedar(&base, r#"Role::"ops""#, &[]);
        // A cycle through the store is refused by both.
        assert_same_as_cedar(&base, r#"User::"owner""#, &[r#"Doc::"d""#]);
    }
}
