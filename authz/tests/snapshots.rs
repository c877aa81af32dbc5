//! A new bundle reuses the compiled policies of the one before when only revocations or keys
//! changed, and compiles anew when the schema, policies or entities changed.

mod common;

use common::*;
use portcullis_authz::bundle::{Bundle, Snapshot};
use portcullis_authz::revocation::RevocationEntry;
use std::sync::Arc;

fn revoked(jti: &str) -> RevocationEntry {
    RevocationEntry {
        jti: Some(jti.into()),
        sid: None,
        sub: None,
        before: None,
        exp: 4_000_000_000,
    }
}

#[test]
fn a_bundle_that_only_adds_a_revocation_shares_the_compiled_policies() {
    let first = Snapshot::from_bundle(&bundle(&[&ed_key()], Vec::new())).unwrap();
    let mut next = bundle(&[&ed_key(), &es_key()], vec![revoked("t-1")]);
    next.version = 2;
    let second = Snapshot::from_bundle_after(&next, Some(&first)).unwrap();
    assert!(
        Arc::ptr_eq(&first.engine, &second.engine),
        "unchanged policies must not be compiled again"
    );
    assert_eq!(second.version, 2, "the rest of the bundle is read anew");
    assert_eq!(second.keys.len(), 2, "the new key set is in force");
    assert!(
        second.revocations.len() > first.revocations.len(),
        "the new revocation is in force"
    );
}

#[test]
fn a_bundle_with_changed_policies_schema_or_entities_is_compiled_anew() {
    let first = Snapshot::from_bundle(&bundle(&[&ed_key()], Vec::new())).unwrap();
    type Change = fn(&mut Bundle);
    let changes: [(&str, Change); 3] = [
        ("policies", |b| {
            b.policies
                .push_str("\n@id(\"extra\") forbid(principal, action, resource) when { false };")
        }),
        ("schema", |b| b.schema.push_str("\nentity Extra;")),
        ("entities", |b| {
            b.entities = serde_json::json!([]);
        }),
    ];
    for (part, change) in changes {
        let mut next = bundle(&[&ed_key()], Vec::new());
        change(&mut next);
        let second = Snapshot::from_bundle_after(&next, Some(&first))
            .unwrap_or_else(|e| panic!("changed {part} must still validate: {e}"));
        assert!(
            !Arc::ptr_eq(&first.engine, &second.engine),
            "changed {part} must be compiled"
        );
        assert_ne!(
            first.policy_digest, second.policy_digest,
            "{part} changes the digest"
        );
    }
}

#[test]
fn a_changed_policy_part_that_does_not_compile_is_refused_even_after_a_good_one() {
    let first = Snapshot::from_bundle(&bundle(&[&ed_key()], Vec::new())).unwrap();
    let mut next = bundle(&[&ed_key()], Vec::new());
    next.policies
        .push_str("\npermit(principal, action, resource) when { context.nope };");
    assert!(
        Snapshot::from_bundle_after(&next, Some(&first)).is_err(),
        "a bad policy is refused however good the snapshot before it was"
    );
}
