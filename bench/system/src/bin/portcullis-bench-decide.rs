//! Native cost of one Cedar decision (`PolicyEngine::decide`) at 10, 100 and 1,000 policies,
//! sliced and unsliced, on the same generated sets as `cargo xtask bench edge --policies`.
//! `cargo run --profile bench-native -p portcullis-bench --bin portcullis-bench-decide`. Inside
//! Envoy (V8) the same work costs several times more; this is for finding where the time goes,
//! BENCHMARKS.md has the Envoy numbers.

use portcullis_authz::claims::{AccessClaims, Subject};
use portcullis_authz::policy::{HttpRequest, PolicyEngine};
use std::time::Instant;

const SCHEMA: &str = include_str!("../../../../policies/schema.cedarschema");

fn main() {
    let claims = AccessClaims {
        iss: "i".into(),
        sub: Subject::User("42".into()),
        aud: vec!["a".into()],
        exp: 2_000_000_000,
        nbf: None,
        iat: 1_000_000_000,
        jti: "j".into(),
        client_id: "web".into(),
        sid: None,
        scopes: vec!["api:items:read".into()],
        roles: vec!["viewer".into()],
        tenant: None,
        amr: vec!["pwd".into()],
    };
    let rounds = 20_000;
    // `decide 10` profiles one size, sliced only.
    let only: Option<usize> = std::env::args().nth(1).and_then(|a| a.parse().ok());
    let sizes: Vec<usize> = only.map_or_else(|| vec![10, 100, 1_000], |n| vec![n]);
    for n in sizes {
        let engine = PolicyEngine::new(
            SCHEMA,
            &portcullis_tests::policy_sets::generated(n),
            &serde_json::Value::Null,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let principal = engine.prepare(&claims).unwrap_or_else(|e| panic!("{e}"));
        let modes: &[bool] = if only.is_some() {
            &[true]
        } else {
            &[true, false]
        };
        for &sliced in modes {
            let started = Instant::now();
            for i in 0..rounds {
                let path = format!("/api/items/{i}");
                let request = HttpRequest {
                    method: "GET",
                    path: &path,
                    host: "h",
                    source_ip: None,
                    now: 1_500_000_000,
                };
                // The gate prepares a token once (on verification) and decides every request
                // with the prepared principal.
                let decision = engine.decide_prepared(&principal, &request, sliced);
                assert!(decision.allowed);
            }
            let each = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
            println!(
                "{n:>5} policies, {}: {each:.1} µs per decision",
                if sliced { "sliced  " } else { "unsliced" }
            );
        }
    }
}
