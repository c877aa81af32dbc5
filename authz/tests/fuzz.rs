//! Property tests over arbitrary input: the pipeline returns a decision for anything and never
//! panics (inside Envoy a panic would trap the filter).

mod common;

use common::*;
use portcullis_authz::config::PathParameters;
use portcullis_authz::gate::{Gate, RequestInput};
use portcullis_authz::path;
use proptest::prelude::*;

fn decide(gate: &mut Gate, method: &str, raw_path: &str, authorization: &[&[u8]]) {
    let input = RequestInput {
        method,
        path: raw_path,
        authority: "h",
        authorization,
        source_ip: None,
        now: NOW,
    };
    if let Ok(target) = Gate::normalize_path(raw_path, PathParameters::Reject) {
        let _ = gate.decide(&input, &target);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_authorization_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut gate = gate();
        let mut header = b"Bearer ".to_vec();
        header.extend_from_slice(&bytes);
        decide(&mut gate, "GET", "/api/items", &[&header]);
        decide(&mut gate, "GET", "/api/items", &[&bytes]);
    }

    #[test]
    fn token_shaped_garbage_never_panics(parts in proptest::collection::vec("[A-Za-z0-9_=+/.-]{0,300}", 1..5)) {
        let mut gate = gate();
        let header = format!("Bearer {}", parts.join("."));
        decide(&mut gate, "GET", "/api/items", &[header.as_bytes()]);
    }

    #[test]
    fn signed_garbage_claims_never_panic(header in "\\PC{0,200}", payload in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut gate = gate();
        let token = ed_key().sign_raw(header.as_bytes(), &payload);
        decide(&mut gate, "GET", "/api/items", &[format!("Bearer {token}").as_bytes()]);
        let json_header = format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"ed-1","x":{:?}}}"#, header);
        let token = ed_key().sign_raw(json_header.as_bytes(), &payload);
        decide(&mut gate, "POST", "/api/items", &[format!("Bearer {token}").as_bytes()]);
    }

    #[test]
    fn arbitrary_paths_and_methods_never_panic(raw in "\\PC{0,300}", method in "[A-Z]{0,10}") {
        let mut gate = gate();
        let token = format!("Bearer {}", ed_key().sign_access_token(&claims()));
        decide(&mut gate, &method, &raw, &[token.as_bytes()]);
        if let Ok(once) = path::normalize(&raw) {
            let twice = path::normalize(&once.request_target()).unwrap();
            prop_assert_eq!(once, twice);
        }
    }

    #[test]
    fn stripping_parameters_leaves_none_and_is_stable(raw in "(/[a-z.;=%23bB]{0,6}){0,6}(\\?[a-z;=]{0,6})?") {
        if let Ok(once) = path::normalize_with(&raw, PathParameters::Strip) {
            prop_assert!(!once.path.contains(';'), "{} left {}", raw, once.path);
            let again = path::normalize(&once.request_target());
            prop_assert_eq!(Ok(once), again, "the stripped path is final: {}", raw);
        }
    }
}
