//! Native cost of the filter's whole per-request pipeline (`Gate::decide`): a token never seen
//! before (both caches off) and a cached one, with the bench-edge bundle and policy.
//! `cargo run --profile bench-native -p portcullis-tests --bin portcullis-bench-gate [uncached]`.
//! For finding where the time goes under `perf`; BENCHMARKS.md has the Envoy numbers.

use portcullis_authz::bundle::Snapshot;
use portcullis_authz::config::PluginConfig;
use portcullis_authz::gate::{Gate, Outcome, RequestInput};
use portcullis_tests::tokens::{bundle, claims, key, now};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let only_uncached = std::env::args().any(|a| a == "uncached");
    let only_cached = std::env::args().any(|a| a == "cached");
    let mut edge_bundle = bundle(1, &[&key()]);
    edge_bundle.policies = "@id(\"items-read\")\npermit (principal, action in Action::\"read\", resource)\nwhen { context.scopes.contains(\"api:items:read\") };\n".into();
    let snapshot = Arc::new(Snapshot::from_bundle(&edge_bundle).unwrap_or_else(|e| panic!("{e}")));
    let tokens: Vec<String> = (0..2_000)
        .map(|_| key().sign_access_token(&claims("api:items:read")))
        .collect();
    let cases: &[(&str, &str)] = if only_cached {
        &[("cached", r#"{"cluster":"c","credential":"x"}"#)]
    } else if only_uncached {
        &[(
            "uncached",
            r#"{"cluster":"c","credential":"x","token_cache_size":0,"decision_cache_size":0}"#,
        )]
    } else {
        &[
            (
                "uncached",
                r#"{"cluster":"c","credential":"x","token_cache_size":0,"decision_cache_size":0}"#,
            ),
            ("cached", r#"{"cluster":"c","credential":"x"}"#),
        ]
    };
    if !only_cached {
        stages(&snapshot, &tokens);
    }
    if std::env::args().any(|a| a.starts_with("engine")) {
        return;
    }
    for (name, config) in cases {
        let config = PluginConfig::from_json(config.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let mut gate = Gate::new(Arc::clone(&snapshot), &config);
        let rounds = if only_uncached || only_cached {
            100_000
        } else {
            20_000
        };
        let started = Instant::now();
        for i in 0..rounds {
            let authorization = format!("Bearer {}", tokens[i % tokens.len()]);
            let headers = [authorization.as_bytes()];
            let path = "/api/items/1";
            let target = Gate::normalize_path(path).unwrap_or_else(|e| panic!("{e:?}"));
            let input = RequestInput {
                method: "GET",
                path,
                authority: "localhost",
                authorization: &headers,
                source_ip: Some("127.0.0.1"),
                now: now(),
            };
            assert!(matches!(gate.decide(&input, &target), Outcome::Allow(_)));
        }
        let each = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
        println!("{name}: {each:.1} µs per request");
    }
}

/// The uncached request's parts, each timed alone.
fn stages(snapshot: &Snapshot, tokens: &[String]) {
    let rules = snapshot.claim_rules(60, 86_400);
    let only = std::env::args().nth(1).unwrap_or_default();
    let time = |name: &str, f: &mut dyn FnMut(usize)| {
        if !only.is_empty() && !name.contains(only.as_str()) {
            return;
        }
        let rounds = if only.is_empty() { 10_000 } else { 200_000 };
        let started = Instant::now();
        for i in 0..rounds {
            f(i);
        }
        let each = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
        println!("  {name}: {each:.2} µs");
    };
    let claims: Vec<_> = tokens
        .iter()
        .map(|t| portcullis_authz::jws::verify(t, &snapshot.keys, &rules, now(), 16_384))
        .map(|c| c.unwrap_or_else(|e| panic!("{e}")))
        .collect();
    time("jws::verify (signature + claims)", &mut |i| {
        let t = &tokens[i % tokens.len()];
        assert!(portcullis_authz::jws::verify(t, &snapshot.keys, &rules, now(), 16_384).is_ok());
    });
    time("engine.prepare", &mut |i| {
        assert!(snapshot.engine.prepare(&claims[i % claims.len()]).is_ok());
    });
    let prepared = snapshot
        .engine
        .prepare(&claims[0])
        .unwrap_or_else(|e| panic!("{e}"));
    time("engine.decide_prepared (sliced)", &mut |_| {
        let request = portcullis_authz::policy::HttpRequest {
            method: "GET",
            path: "/api/items/1",
            host: "localhost",
            source_ip: None,
            now: now(),
        };
        assert!(
            snapshot
                .engine
                .decide_prepared(&prepared, &request, true)
                .allowed
        );
    });
}
