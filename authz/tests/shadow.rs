//! `@shadow` policies are validated with the rest, evaluated and reported, never enforced.

use portcullis_authz::claims::{AccessClaims, Subject};
use portcullis_authz::policy::{HttpRequest, PolicyEngine};

fn schema() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../policies/schema.cedarschema"
    ))
    .unwrap()
}

fn claims(scope: &str) -> AccessClaims {
    AccessClaims {
        iss: "i".into(),
        sub: Subject::User("u".into()),
        aud: vec!["a".into()],
        exp: 2_000_000_000,
        nbf: None,
        iat: 1,
        jti: "j".into(),
        client_id: "c".into(),
        sid: None,
        scopes: scope.split_whitespace().map(str::to_owned).collect(),
        roles: Vec::new(),
        tenant: None,
        amr: Vec::new(),
    }
}

fn get(path: &str) -> HttpRequest<'_> {
    HttpRequest {
        method: "GET",
        path,
        host: "h",
        source_ip: None,
        now: 1,
    }
}

const POLICIES: &str = r#"
@id("items-read")
permit (principal, action in Action::"read", resource)
when { resource.path like "/api/items*" && context.scopes.contains("api:items:read") };

@id("reports-open") @shadow
permit (principal, action in Action::"read", resource)
when { resource.path like "/api/reports*" };

@id("items-closed") @shadow("trying out a lockdown")
forbid (principal, action, resource)
when { resource.path like "/api/items/secret*" };
"#;

#[test]
fn shadows_are_reported_not_enforced() {
    let engine = PolicyEngine::new(&schema(), POLICIES, &serde_json::Value::Null).unwrap();
    assert_eq!(engine.policy_count(), 1);
    assert_eq!(engine.shadow_count(), 2);
    let reader = claims("api:items:read");
    // A shadow permit: still denied, but it would be allowed.
    let reports = engine.decide(&reader, &get("/api/reports/q3"));
    assert!(!reports.allowed);
    assert_eq!(reports.shadow_allowed, Some(true));
    // A shadow forbid: still allowed, but it would be denied.
    let secret = engine.decide(&reader, &get("/api/items/secret-1"));
    assert!(secret.allowed);
    assert_eq!(secret.policy_ids, vec!["items-read".to_string()]);
    assert_eq!(secret.shadow_allowed, Some(false));
    // Unaffected requests agree.
    let items = engine.decide(&reader, &get("/api/items/1"));
    assert_eq!((items.allowed, items.shadow_allowed), (true, Some(true)));
}

#[test]
fn shadows_must_validate_and_are_absent_without_any() {
    let invalid = format!(
        "{POLICIES}\n@shadow\npermit (principal, action, resource) when {{ context.nope }};"
    );
    assert!(PolicyEngine::new(&schema(), &invalid, &serde_json::Value::Null).is_err());
    let plain = "@id(\"p\")\npermit (principal, action, resource);";
    let engine = PolicyEngine::new(&schema(), plain, &serde_json::Value::Null).unwrap();
    assert_eq!(engine.decide(&claims(""), &get("/x")).shadow_allowed, None);
}
