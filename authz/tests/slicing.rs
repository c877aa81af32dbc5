//! Slicing never changes a decision: sliced and unsliced evaluation agree on the repository's
//! corpus and on generated policy sets whose heads use every constraint shape. The sliced path
//! also evaluates with `evaluation::authorize` and the unsliced one with Cedar's `Authorizer`,
//! so these tests hold the two to the same decisions, reasons and error messages.

mod common;

use portcullis_authz::claims::{AccessClaims, Subject};
use portcullis_authz::corpus::Case;
use portcullis_authz::policy::{Decision, HttpRequest, PolicyEngine};
use proptest::prelude::*;

const SCHEMA: &str = include_str!("../../policies/schema.cedarschema");

fn normalised(mut decision: Decision) -> Decision {
    decision.policy_ids.sort();
    decision.errors.sort();
    decision
}

fn corpus() -> Vec<Case> {
    portcullis_authz::folder::corpus(&common::policies_dir())
        .unwrap()
        .into_iter()
        .map(|c| c.case)
        .collect()
}

#[test]
fn the_corpus_decides_the_same_sliced_and_unsliced() {
    let bundle = common::bundle(&[&common::ed_key()], Vec::new());
    let engine = PolicyEngine::new(&bundle.schema, &bundle.policies, &bundle.entities).unwrap();
    let cases = corpus();
    assert!(cases.len() >= 30, "the corpus shrank to {}", cases.len());
    for case in cases {
        let claims = case.claims(common::NOW).unwrap();
        let Ok(path) = portcullis_authz::path::normalize(&case.path) else {
            continue;
        };
        let request = HttpRequest {
            method: &case.method,
            path: &path.path,
            host: &case.host,
            source_ip: None,
            now: common::NOW,
        };
        assert_eq!(
            normalised(engine.decide(&claims, &request)),
            normalised(engine.decide_unsliced(&claims, &request)),
            "{}",
            case.description
        );
    }
}

const PRINCIPALS: [&str; 4] = [
    "User::\"a\"",
    "User::\"b\"",
    "Client::\"c\"",
    "Role::\"ops\"",
];
const METHODS: [&str; 8] = [
    "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE",
];
const PATHS: [&str; 3] = ["/api/items", "/api/items/7", "/ops/x"];

fn principal_head() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("principal".to_owned()),
        (0..3usize).prop_map(|i| format!("principal == {}", PRINCIPALS[i])),
        Just("principal in Role::\"ops\"".to_owned()),
        Just("principal is User".to_owned()),
        Just("principal is Client in Role::\"ops\"".to_owned()),
    ]
}

fn action_head() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("action".to_owned()),
        (0..7usize).prop_map(|i| format!("action == Action::\"{}\"", METHODS[i])),
        Just("action in Action::\"read\"".to_owned()),
        Just("action in [Action::\"write\", Action::\"GET\"]".to_owned()),
    ]
}

fn resource_head() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("resource".to_owned()),
        (0..3usize).prop_map(|i| format!("resource == Endpoint::\"{}\"", PATHS[i])),
        Just("resource is Endpoint".to_owned()),
    ]
}

fn condition() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(""),
        Just(" when { context.scopes.contains(\"x\") }"),
        // Overflows at run time: an erroring policy must stay erroring when sliced.
        Just(" when { context.now * 9223372036854775807 > 0 }"),
        Just(" when { principal in Role::\"ops\" && context.client_id like \"c*\" }"),
        Just(" unless { resource has tenant && resource.tenant == \"acme\" }"),
    ]
}

fn policy_set() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::bool::ANY,
            principal_head(),
            action_head(),
            resource_head(),
            condition(),
        ),
        1..12,
    )
    .prop_map(|policies| {
        policies
            .into_iter()
            .enumerate()
            .map(|(i, (permit, p, a, r, c))| {
                let effect = if permit { "permit" } else { "forbid" };
                format!("@id(\"p{i}\")\n{effect} ({p}, {a}, {r}){c};\n")
            })
            .collect()
    })
}

fn claims(principal: usize, scope: bool) -> AccessClaims {
    let sub = match principal {
        0 => Subject::User("a".into()),
        1 => Subject::User("b".into()),
        _ => Subject::Client("c".into()),
    };
    AccessClaims {
        iss: "i".into(),
        sub,
        aud: vec!["a".into()],
        exp: common::NOW + 60,
        nbf: None,
        iat: common::NOW,
        jti: "j".into(),
        client_id: "c".into(),
        sid: None,
        scopes: if scope { vec!["x".into()] } else { Vec::new() },
        roles: if principal == 1 {
            vec!["ops".into()]
        } else {
            Vec::new()
        },
        tenant: None,
        amr: Vec::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn generated_policy_sets_decide_the_same_sliced_and_unsliced(
        policies in policy_set(),
        principal in 0..3usize,
        method in 0..METHODS.len(),
        path in 0..PATHS.len(),
        scope in prop::bool::ANY,
    ) {
        let entities = serde_json::json!([
            {"uid": {"type": "Role", "id": "ops"}, "attrs": {}, "parents": []}
        ]);
        let engine = PolicyEngine::new(SCHEMA, &policies, &entities).unwrap();
        let claims = claims(principal, scope);
        let request = HttpRequest {
            method: METHODS[method],
            path: PATHS[path],
            host: "h",
            source_ip: None,
            now: common::NOW,
        };
        prop_assert_eq!(
            normalised(engine.decide(&claims, &request)),
            normalised(engine.decide_unsliced(&claims, &request))
        );
    }
}
