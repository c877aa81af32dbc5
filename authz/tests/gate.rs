//! The whole pipeline as the filter runs it: bearer → verify (cached) → revocation → Cedar.

mod common;

use common::*;
use portcullis_authz::bearer::BearerError;
use portcullis_authz::config::PathParameters;
use portcullis_authz::gate::{DenyReason, Gate, Outcome, RequestInput};
use portcullis_authz::jws::TokenError;
use portcullis_authz::path::PathError;
use portcullis_authz::revocation::{RevocationEntry, Revoked};
use serde_json::{json, Value};

fn run(gate: &mut Gate, method: &str, path: &str, authorization: &[&str], now: i64) -> Outcome {
    let headers: Vec<&[u8]> = authorization.iter().map(|h| h.as_bytes()).collect();
    let input = RequestInput {
        method,
        path,
        authority: "API.example:443",
        authorization: &headers,
        source_ip: Some("10.0.0.1"),
        now,
    };
    match Gate::normalize_path(path, PathParameters::Reject) {
        Ok(target) => gate.decide(&input, &target),
        Err(reason) => Outcome::Deny(portcullis_authz::gate::Denied {
            reason,
            decision: None,
        }),
    }
}

fn bearer(claims: &Value) -> String {
    format!("Bearer {}", ed_key().sign_access_token(claims))
}

fn status(outcome: &Outcome) -> u32 {
    match outcome {
        Outcome::Allow(_) => 200,
        Outcome::Deny(denied) => denied.reason.status(),
    }
}

fn reason(outcome: Outcome) -> DenyReason {
    match outcome {
        Outcome::Allow(_) => panic!("expected a denial"),
        Outcome::Deny(denied) => denied.reason,
    }
}

#[test]
fn allows_with_identity_and_deciding_policy() {
    let mut gate = gate();
    let outcome = run(&mut gate, "GET", "/api/items/7", &[&bearer(&claims())], NOW);
    let Outcome::Allow(allowed) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(allowed.claims.sub.to_string(), "user:42");
    assert_eq!(allowed.decision.policy_ids, ["role-viewer"]);
    assert_eq!(allowed.rewritten_path, None);
    assert!(!allowed.token_cache_hit);
}

#[test]
fn denials_carry_the_rfc6750_shape() {
    let mut gate = gate();
    let token = bearer(&claims());
    let missing = reason(run(&mut gate, "GET", "/api/items", &[], NOW));
    assert_eq!(
        (missing.status(), missing.challenge().as_deref()),
        (401, Some("Bearer realm=\"portcullis\""))
    );
    let write = reason(run(&mut gate, "POST", "/api/items", &[&token], NOW));
    assert_eq!(write, DenyReason::Forbidden);
    assert_eq!(
        write.challenge().as_deref(),
        Some("Bearer realm=\"portcullis\", error=\"insufficient_scope\"")
    );
    let bad = reason(run(&mut gate, "GET", "/api/items", &["Bearer x.y.z"], NOW));
    assert_eq!(bad, DenyReason::Token(TokenError::Malformed));
    assert_eq!(
        bad.challenge().as_deref(),
        Some("Bearer realm=\"portcullis\", error=\"invalid_token\"")
    );
    let query = reason(run(
        &mut gate,
        "GET",
        "/api/items?access_token=abc",
        &[],
        NOW,
    ));
    assert_eq!(
        (query.status(), query.error_code()),
        (400, Some("invalid_request"))
    );
    let two = reason(run(&mut gate, "GET", "/api/items", &[&token, &token], NOW));
    assert_eq!(two, DenyReason::Bearer(BearerError::MultipleHeaders));
}

#[test]
fn cedar_sees_the_normalised_path() {
    let mut gate = gate();
    let admin_read = bearer(&claims());
    for sneaky in [
        "//admin",
        "/a/../admin",
        "/api/items/%2e%2e/../admin",
        "/%61dmin/x",
        "/public/../admin",
    ] {
        assert_eq!(
            reason(run(&mut gate, "GET", sneaky, &[&admin_read], NOW)),
            DenyReason::Forbidden,
            "{sneaky}"
        );
    }
    let escaped = reason(run(
        &mut gate,
        "GET",
        "/public%2F..%2Fadmin",
        &[&admin_read],
        NOW,
    ));
    assert_eq!(escaped, DenyReason::BadPath(PathError::EncodedSlash));
    let Outcome::Allow(allowed) = run(
        &mut gate,
        "GET",
        "/x/../api//items?q=1",
        &[&admin_read],
        NOW,
    ) else {
        panic!()
    };
    assert_eq!(allowed.rewritten_path.as_deref(), Some("/api/items?q=1"));
}

#[test]
fn forbid_wins_and_mfa_is_enforced() {
    let mut gate = gate();
    let pay = claims_with(json!({"scope": "api:payments:write"}));
    assert_eq!(
        reason(run(
            &mut gate,
            "POST",
            "/api/payments",
            &[&bearer(&pay)],
            NOW
        )),
        DenyReason::Forbidden
    );
    let pay_otp =
        claims_with(json!({"scope": "api:payments:write", "amr": ["pwd", "otp"], "jti": "j2"}));
    assert_eq!(
        status(&run(
            &mut gate,
            "POST",
            "/api/payments",
            &[&bearer(&pay_otp)],
            NOW
        )),
        200
    );
    let admin = claims_with(json!({"scope": "api:system:admin", "jti": "j3"}));
    let outcome = run(
        &mut gate,
        "DELETE",
        "/admin/users/1",
        &[&bearer(&admin)],
        NOW,
    );
    assert_eq!(status(&outcome), 200);
}

#[test]
fn role_hierarchy_comes_from_bundle_entities() {
    let mut gate = gate();
    let sre = claims_with(json!({"roles": ["sre"], "scope": ""}));
    assert_eq!(
        status(&run(&mut gate, "GET", "/ops/dash", &[&bearer(&sre)], NOW)),
        200
    );
    let viewer = claims_with(json!({"roles": ["viewer"], "scope": "", "jti": "j9"}));
    assert_eq!(
        status(&run(
            &mut gate,
            "GET",
            "/ops/dash",
            &[&bearer(&viewer)],
            NOW
        )),
        403
    );
}

#[test]
fn unknown_methods_deny_as_policy_errors() {
    let mut gate = gate();
    let outcome = run(&mut gate, "TRACE", "/api/items", &[&bearer(&claims())], NOW);
    let Outcome::Deny(denied) = outcome else {
        panic!()
    };
    assert_eq!(denied.reason, DenyReason::PolicyError);
    assert!(!denied.decision.unwrap().errors.is_empty());
}

#[test]
fn repeated_tokens_hit_both_caches_until_they_expire() {
    let mut gate = gate();
    let token = bearer(&claims());
    assert!(
        matches!(run(&mut gate, "GET", "/api/items", &[&token], NOW), Outcome::Allow(a) if !a.token_cache_hit)
    );
    let Outcome::Allow(again) = run(&mut gate, "GET", "/api/items", &[&token], NOW) else {
        panic!()
    };
    assert!(again.token_cache_hit && again.decision_cache_hit);
    let Outcome::Allow(other_path) = run(&mut gate, "GET", "/api/items/2", &[&token], NOW) else {
        panic!()
    };
    assert!(other_path.token_cache_hit && !other_path.decision_cache_hit);
    let later = reason(run(
        &mut gate,
        "GET",
        "/api/items",
        &[&token],
        NOW + 900 + 61,
    ));
    assert_eq!(
        later,
        DenyReason::Token(TokenError::Claims(
            portcullis_authz::claims::ClaimsError::Expired
        ))
    );
}

#[test]
fn a_policy_reading_now_through_an_escaped_name_is_never_answered_from_the_cache() {
    let mut bundle = bundle(&[&ed_key()], Vec::new());
    // `\u{6e}ow` is `now`: a text search for the word misses it, Cedar's AST does not.
    bundle.policies.push_str(&format!(
        "\n@id(\"closed-later\")\nforbid (principal, action, resource)\nwhen {{ context[\"\\u{{6e}}ow\"] > {} }};\n",
        NOW + 10
    ));
    let snapshot = portcullis_authz::bundle::Snapshot::from_bundle(&bundle).unwrap();
    assert!(
        snapshot.engine.reads_now(),
        "the escaped read of `now` was missed"
    );
    let mut gate = Gate::new(std::sync::Arc::new(snapshot), &config());
    let token = bearer(&claims());
    for _ in 0..2 {
        let outcome = run(&mut gate, "GET", "/api/items", &[&token], NOW);
        assert!(
            matches!(&outcome, Outcome::Allow(a) if !a.decision_cache_hit),
            "{outcome:?}"
        );
    }
    let later = reason(run(&mut gate, "GET", "/api/items", &[&token], NOW + 11));
    assert_eq!(
        later,
        DenyReason::Forbidden,
        "a decision taken before the policy's time was reused after it"
    );
}

#[test]
fn revocations_apply_even_to_cached_tokens() {
    let revoked = |entry: RevocationEntry| {
        let mut gate = gate_with(vec![entry]);
        reason(run(
            &mut gate,
            "GET",
            "/api/items",
            &[&bearer(&claims())],
            NOW,
        ))
    };
    let exp = NOW + 900;
    assert_eq!(
        revoked(RevocationEntry {
            jti: Some("jti-1".into()),
            exp,
            ..Default::default()
        }),
        DenyReason::Revoked(Revoked::Token)
    );
    assert_eq!(
        revoked(RevocationEntry {
            sid: Some("sess-1".into()),
            exp,
            ..Default::default()
        }),
        DenyReason::Revoked(Revoked::Session)
    );
    assert_eq!(
        revoked(RevocationEntry {
            sub: Some("user:42".into()),
            before: Some(NOW + 1),
            exp,
            ..Default::default()
        }),
        DenyReason::Revoked(Revoked::Subject)
    );
}

#[test]
fn clients_are_a_separate_namespace() {
    let mut gate = gate();
    let client =
        claims_with(json!({"sub": "client:42", "sid": null, "roles": ["sre"], "scope": ""}));
    let Outcome::Allow(allowed) = run(&mut gate, "GET", "/ops/x", &[&bearer(&client)], NOW) else {
        panic!()
    };
    assert_eq!(allowed.claims.sub.to_string(), "client:42");
}
