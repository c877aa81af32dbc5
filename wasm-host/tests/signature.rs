//! Signed bundles: the filter applies only bundles signed by a pinned key over the exact bytes it
//! received; anything else is refused, counted, and the last good bundle keeps deciding.

mod common;

use common::*;
use portcullis_authz::bundle_signature::{sign, sign_with_header, SIGNATURE_TYPE};
use portcullis_authz::issue::SigningKey;
use portcullis_tests::tokens::bundle_key;
use portcullis_wasm_host::Host;
use serde_json::json;

/// The attacker's token key: what a man-in-the-middle would add to the bundle's JWKS.
fn attacker() -> SigningKey {
    SigningKey::ed25519("attacker", [66; 32])
}

/// Answers the next poll with `body` and `signature` (none: the header is left out).
fn serve(host: &mut Host, body: &[u8], signature: Option<&str>) {
    let call = next_poll(host);
    let fresh = bundle_freshness(2, host.now_ms());
    let mut headers = vec![
        ("etag", "\"v2\""),
        ("portcullis-bundle-freshness", fresh.as_str()),
    ];
    headers.extend(signature.map(|s| ("portcullis-bundle-signature", s)));
    host.respond(call, 200, &headers, body).unwrap();
}

/// Asserts the refused bundle changed nothing: version 1 in force, the genuine token allowed,
/// the attacker's denied, and the refusal counted under `reason`.
fn assert_last_good_decides(host: &mut Host, reason: &str) {
    assert_eq!(
        counter(host, &format!("bundle.signature_refused.{reason}")),
        1,
        "the refusal is counted by its reason"
    );
    assert_eq!(
        host.metric("portcullis.bundle.version"),
        Some(1),
        "the refused bundle replaced the last good one"
    );
    assert_eq!(
        status(&get(host, Some(&token(&key())), &[])),
        200,
        "the last good bundle no longer decides"
    );
    assert_eq!(
        status(&get(host, Some(&token(&attacker())), &[])),
        401,
        "a token signed by the injected key was accepted"
    );
    assert!(
        host.logs().iter().any(|l| l
            .message
            .contains("bundle refused, keeping the last good one")),
        "the refusal is logged"
    );
}

/// The genuine version-2 bundle with the attacker's key added to its JWKS.
fn with_injected_key() -> Vec<u8> {
    let mut bundle = bundle(2, &[&key()]);
    bundle.jwks.keys.push(attacker().public_jwk());
    serde_json::to_vec(&bundle).unwrap()
}

#[test]
fn a_bundle_signed_by_a_pinned_key_is_applied() {
    let mut host = ready();
    assert_eq!(host.metric("portcullis.bundle.version"), Some(1));
    assert_eq!(
        status(&get(&mut host, Some(&token(&key())), &[])),
        200,
        "the signed bundle's key does not verify tokens"
    );
    let body = bundle_json(2, &[&key(), &attacker()]);
    serve(&mut host, &body, Some(&bundle_signature(&body)));
    assert_eq!(host.metric("portcullis.bundle.version"), Some(2));
    assert_eq!(
        status(&get(&mut host, Some(&token(&attacker())), &[])),
        200,
        "a key the control plane really signed for is trusted"
    );
}

#[test]
fn a_man_in_the_middle_who_injects_a_key_into_a_signed_bundle_is_refused() {
    let mut host = ready();
    // The genuine signature of the genuine v2 body, sent with the altered body.
    let genuine = bundle_signature(&bundle_json(2, &[&key()]));
    serve(&mut host, &with_injected_key(), Some(&genuine));
    assert_last_good_decides(&mut host, "bad_signature");
    assert_eq!(counter(&mut host, "bundle.rejected"), 1);
    assert!(
        host.shared_data("portcullis|cp|/plugin/v1/bundle|bundle")
            .is_some_and(|b| !b.windows(8).any(|w| w == b"attacker")),
        "the forged bundle reached the other workers"
    );
}

#[test]
fn an_unsigned_bundle_is_refused_and_the_last_good_one_stays() {
    let mut host = ready();
    serve(&mut host, &with_injected_key(), None);
    assert_last_good_decides(&mut host, "unsigned");
}

#[test]
fn a_bundle_signed_by_another_key_under_a_pinned_kid_is_refused() {
    let mut host = ready();
    let impostor = SigningKey::ed25519(bundle_key().kid(), [67; 32]);
    let body = with_injected_key();
    serve(&mut host, &body, Some(&sign(&impostor, &body)));
    assert_last_good_decides(&mut host, "bad_signature");
}

#[test]
fn a_bundle_signed_with_an_unpinned_kid_is_refused() {
    let mut host = ready();
    let body = with_injected_key();
    serve(&mut host, &body, Some(&sign(&attacker(), &body)));
    assert_last_good_decides(&mut host, "unpinned_kid");
}

#[test]
fn a_malformed_signature_is_refused_without_trapping() {
    let body = with_injected_key();
    let key = bundle_key();
    let no_type = json!({"alg": "EdDSA", "kid": key.kid()}).to_string();
    let token_typed = json!({"alg": "EdDSA", "kid": key.kid(), "typ": "at+jwt"}).to_string();
    let unencoded = json!({"alg": "EdDSA", "kid": key.kid(), "typ": SIGNATURE_TYPE, "b64": false});
    let attached = {
        let detached = bundle_signature(&body);
        let (header, signature) = detached.split_once("..").unwrap();
        format!("{header}.e30.{signature}")
    };
    let cases = [
        ("garbage".to_owned(), "malformed"),
        (attached, "malformed"),
        ("x".repeat(4_000), "malformed"),
        (
            sign_with_header(&key, no_type.as_bytes(), &body),
            "wrong_typ",
        ),
        (
            sign_with_header(&key, token_typed.as_bytes(), &body),
            "wrong_typ",
        ),
        (
            sign_with_header(&key, unencoded.to_string().as_bytes(), &body),
            "unsupported_extension",
        ),
    ];
    for (signature, reason) in cases {
        let mut host = ready();
        serve(&mut host, &body, Some(&signature));
        assert_last_good_decides(&mut host, reason);
    }
}

#[test]
fn with_the_next_key_pinned_too_a_bundle_key_rotation_needs_no_restart() {
    let next = SigningKey::ed25519("b-next", [32; 32]);
    let pins = json!([bundle_key().public_jwk(), next.public_jwk()]);
    let config = json!({"cluster": "cp", "credential": "s", "bundle_signing_keys": pins});
    let mut host = ready_with(&config.to_string());
    // The control plane rotated: the next key signs now.
    let body = bundle_json(2, &[&key(), &other_key()]);
    serve(&mut host, &body, Some(&sign(&next, &body)));
    assert_eq!(
        host.metric("portcullis.bundle.version"),
        Some(2),
        "a bundle signed by the pinned next key was refused"
    );
    assert_eq!(
        status(&get(&mut host, Some(&token(&other_key())), &[])),
        200
    );
}

/// Puts `body` with `signature` into shared data as bundle version 2, as the worker holding the
/// fetch lease (or anything else writing the VM's shared data) would.
fn share(host: &mut Host, body: &[u8], signature: &str) {
    let mut stored = (signature.len() as u32).to_le_bytes().to_vec();
    stored.extend_from_slice(signature.as_bytes());
    stored.extend_from_slice(body);
    host.set_shared_data("portcullis|cp|/plugin/v1/bundle|bundle", &stored);
    let mut state = 2u64.to_le_bytes().to_vec();
    state.extend_from_slice(&host.now_ms().to_le_bytes());
    state.extend_from_slice(b"\"v2\"");
    host.set_shared_data("portcullis|cp|/plugin/v1/bundle|state", &state);
    host.tick().unwrap();
}

#[test]
fn a_bundle_in_shared_data_is_verified_before_a_worker_applies_it() {
    let mut host = ready();
    let body = with_injected_key();
    share(&mut host, &body, &sign(&attacker(), &body));
    assert_eq!(
        host.metric("portcullis.bundle.version"),
        Some(1),
        "a worker applied a shared bundle its pins do not vouch for"
    );
    assert_eq!(
        status(&get(&mut host, Some(&token(&attacker())), &[])),
        401,
        "a token signed by the key injected through shared data was accepted"
    );
    assert_eq!(
        counter(&mut host, "bundle.signature_refused.unpinned_kid"),
        1
    );
    assert!(host
        .logs()
        .iter()
        .any(|l| l.message.contains("shared bundle refused")));
}

#[test]
fn a_signed_bundle_in_shared_data_is_applied_by_the_other_workers() {
    let mut host = ready();
    let body = bundle_json(2, &[&key(), &attacker()]);
    share(&mut host, &body, &bundle_signature(&body));
    assert_eq!(
        host.metric("portcullis.bundle.version"),
        Some(2),
        "the worker did not pick up the signed shared bundle"
    );
}
