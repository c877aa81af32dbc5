//! The filter's per-request pipeline timed without Envoy, natively or inside V8.
//!
//! - Native: `cargo run --profile bench-native -p portcullis-bench-gate [stage]`.
//! - V8: `cargo xtask bench gate [stage]` builds this binary for wasm32-wasip1 and runs it in
//!   Node with Liftoff off (as Envoy's V8 runs filters), so what the filter's own code costs in
//!   V8 can be told apart from what Envoy's wasm plumbing costs (`cargo xtask bench edge`).
//!
//! Stages: `jws::verify` (an EdDSA signature and the claims), `key load` (a bundle's new
//! Ed25519 key: its verification table is built), `prepare` (the token's half of
//! the Cedar request), `decide` (one sliced Cedar decision), and whole requests through
//! `Gate::decide` with both caches off (`uncached`) and on (`cached`). A stage name as the
//! argument runs only the stages containing it. Each figure is the best of five rounds.
//! `--smoke`: one short round of each stage, which still asserts every stage's outcome.

use portcullis_authz::bundle::{Bundle, Snapshot};
use portcullis_authz::claims::AccessClaims;
use portcullis_authz::config::PluginConfig;
use portcullis_authz::gate::{Gate, Outcome, RequestInput};
use portcullis_authz::issue::SigningKey;
use portcullis_authz::jwk::{Jwks, KeySet};
use portcullis_authz::policy::HttpRequest;
use std::sync::Arc;
use std::time::Instant;

const NOW: i64 = 1_800_000_000;
const TOKENS: usize = 200;
const POLICY: &str = "@id(\"items-read\")\npermit (principal, action in Action::\"read\", resource)\nwhen { context.scopes.contains(\"api:items:read\") };\n";

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let only = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_default();
    let key = SigningKey::ed25519("key-1", [21; 32]);
    let entities = serde_json::from_str(include_str!("../../../policies/entities.json"))
        .unwrap_or_else(|e| panic!("policies/entities.json: {e}"));
    let bundle = Bundle {
        version: 1,
        issuer: "https://id.portcullis.test".into(),
        audiences: vec!["portcullis-edge".into()],
        jwks: Jwks {
            keys: vec![key.public_jwk()],
        },
        policies: POLICY.into(),
        schema: include_str!("../../../policies/schema.cedarschema").into(),
        entities,
        revoked: Vec::new(),
    };
    let snapshot = Arc::new(Snapshot::from_bundle(&bundle).unwrap_or_else(|e| panic!("{e}")));
    let tokens: Vec<String> = (0..TOKENS)
        .map(|i| key.sign_access_token(&claims(i)))
        .collect();
    let rules = snapshot.claim_rules(60, 86_400);
    let verify = |token: &str| {
        portcullis_authz::jws::verify(token, &snapshot.keys, &rules, NOW, 16_384)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let verified: Vec<AccessClaims> = tokens.iter().map(|t| verify(t)).collect();
    let time = |name: &str, rounds: usize, f: &mut dyn FnMut(usize)| {
        if !name.contains(only.as_str()) {
            return;
        }
        let (repeats, rounds) = if smoke {
            (1, rounds.div_ceil(100))
        } else {
            (5, rounds)
        };
        let best = (0..repeats)
            .map(|_| {
                let started = Instant::now();
                for i in 0..rounds {
                    f(i);
                }
                started.elapsed().as_secs_f64() * 1e6 / rounds as f64
            })
            .fold(f64::MAX, f64::min);
        println!("{name}: {best:.1} µs");
    };

    time("jws::verify", 500, &mut |i| {
        verify(&tokens[i % TOKENS]);
    });
    // A key the process has not seen: its comb table is built (what a bundle bringing a new key
    // costs each worker once).
    let new_keys: Vec<Jwks> = (0..50u8)
        .map(|i| Jwks {
            keys: vec![SigningKey::ed25519("fresh", [i; 32]).public_jwk()],
        })
        .collect();
    time("key load (new Ed25519 key)", 10, &mut |i| {
        let (keys, rejected) = KeySet::from_jwks(&new_keys[i % new_keys.len()]);
        assert!(rejected.is_empty() && keys.len() == 1);
    });
    time("prepare", 5_000, &mut |i| {
        assert!(snapshot.engine.prepare(&verified[i % TOKENS]).is_ok());
    });
    let prepared = snapshot
        .engine
        .prepare(&verified[0])
        .unwrap_or_else(|e| panic!("{e}"));
    time("decide (sliced)", 5_000, &mut |_| {
        let request = HttpRequest {
            method: "GET",
            path: "/api/items/1",
            host: "localhost",
            source_ip: None,
            now: NOW,
        };
        assert!(
            snapshot
                .engine
                .decide_prepared(&prepared, &request, true)
                .allowed
        );
    });
    let authorizations: Vec<String> = tokens.iter().map(|t| format!("Bearer {t}")).collect();
    let cases = [
        (
            "request uncached",
            500,
            r#"{"token_cache_size":0,"decision_cache_size":0}"#,
        ),
        ("request cached", 20_000, "{}"),
    ];
    for (name, rounds, caches) in cases {
        let mut config: serde_json::Value =
            serde_json::from_str(caches).unwrap_or_else(|e| panic!("{e}"));
        config["cluster"] = "control_plane".into();
        config["credential"] = "bench".into();
        config["bundle_signing_keys"] =
            serde_json::json!([SigningKey::ed25519("bundle", [5; 32]).public_jwk()]);
        let config = PluginConfig::from_json(config.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut gate = Gate::new(Arc::clone(&snapshot), &config);
        time(name, rounds, &mut |i| {
            let authorization = [authorizations[i % TOKENS].as_bytes()];
            let path = "/api/items/1";
            let target = Gate::normalize_path(path, config.path_parameters)
                .unwrap_or_else(|e| panic!("{e:?}"));
            let input = RequestInput {
                method: "GET",
                path,
                authority: "localhost",
                authorization: &authorization,
                source_ip: None,
                now: NOW,
            };
            assert!(matches!(gate.decide(&input, &target), Outcome::Allow(_)));
        });
    }
}

fn claims(i: usize) -> serde_json::Value {
    serde_json::json!({
        "iss": "https://id.portcullis.test", "sub": "user:42", "aud": ["portcullis-edge"],
        "exp": NOW + 900, "iat": NOW, "jti": format!("jti-{i}"), "client_id": "web",
        "sid": "sess-1", "scope": "api:items:read", "roles": ["viewer"], "tenant": "acme",
        "amr": ["pwd"]
    })
}
