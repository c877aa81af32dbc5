//! Fixtures: keys, tokens consistent with the host clock, bundles from the repository's
//! `policies/`, and a filter already holding a bundle.
#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different subset"
)]

use portcullis_authz::issue::SigningKey;
use portcullis_wasm_host::{load_filter, Host, Outcome, START_MS};
use serde_json::Value;

/// The minimal configuration; [`started_with`] pins the test bundle-signing key into it.
pub const CONFIG: &str = r#"{"cluster":"cp","credential":"s"}"#;
// The end-to-end tests' bundle: the repository's `policies/` through the control plane's loader,
// signed by the key the end-to-end tests' bundle server signs with.
pub use portcullis_tests::tokens::{
    bundle, bundle_freshness, bundle_pins, bundle_signature, bundle_version,
};
// `key` signs the tokens the ready-made bundles trust; `other_key` is a second token key.
pub use portcullis_test_support::fixtures::{
    ed_key as key, other_ed_key as other_key, AUDIENCE, ISSUER,
};
/// The host clock at start, in seconds: tokens are issued then.
pub const NOW: i64 = (START_MS / 1_000) as i64;

/// A valid claim set for user 42 with the items read scope, issued at the host's start time.
pub fn claims() -> Value {
    portcullis_test_support::fixtures::claims_at(NOW)
}

pub fn token(key: &SigningKey) -> String {
    key.sign_access_token(&claims())
}

pub fn bundle_json(version: u64, keys: &[&SigningKey]) -> Vec<u8> {
    serde_json::to_vec(&bundle(version, keys)).unwrap()
}

/// A started filter (not yet ticked: no bundle requested).
pub fn started() -> Host {
    started_with(CONFIG)
}

/// A filter started with `config`, with [`bundle_key`] pinned unless `config` pins keys itself.
pub fn started_with(config: &str) -> Host {
    let mut config: Value = serde_json::from_str(config).unwrap();
    if let Some(object) = config.as_object_mut() {
        object
            .entry("bundle_signing_keys")
            .or_insert_with(bundle_pins);
    }
    let config = config.to_string();
    let config = config.as_str();
    let mut host = load_filter();
    assert!(
        host.start(config).unwrap(),
        "a valid configuration was refused: {config}"
    );
    host
}

/// The only pending call's token, with the path it asks for.
pub fn only_call(host: &Host) -> (u32, String) {
    let calls = host.pending_calls();
    assert_eq!(
        calls.len(),
        1,
        "expected exactly one pending call: {calls:?}"
    );
    (calls[0].token, calls[0].header(":path").unwrap())
}

/// Answers the bundle request `call` with `200`, `etag` and `body` signed by [`bundle_key`].
pub fn respond_signed(host: &mut Host, call: u32, etag: &str, body: &[u8]) {
    let signature = bundle_signature(body);
    let fresh = bundle_freshness(bundle_version(body), host.now_ms());
    let headers = [
        ("etag", etag),
        ("portcullis-bundle-signature", signature.as_str()),
        ("portcullis-bundle-freshness", fresh.as_str()),
    ];
    host.respond(call, 200, &headers, body).unwrap();
}

/// Answers the bundle request `call` with `304` and a freshness statement for `version` signed
/// now by [`bundle_key`], as the control plane does.
pub fn respond_not_modified(host: &mut Host, call: u32, version: u64) {
    let fresh = bundle_freshness(version, host.now_ms());
    host.respond(
        call,
        304,
        &[("portcullis-bundle-freshness", fresh.as_str())],
        b"",
    )
    .unwrap();
}

/// A filter holding bundle version 1 with [`key`].
pub fn ready() -> Host {
    ready_with(CONFIG)
}

/// Like [`ready`], started with `config`.
pub fn ready_with(config: &str) -> Host {
    let mut host = started_with(config);
    host.tick().unwrap();
    let (call, _) = only_call(&host);
    respond_signed(&mut host, call, "\"v1\"", &bundle_json(1, &[&key()]));
    host
}

/// Like [`ready`], holding bundle version 1 with `policy` added to the repository's policies.
pub fn ready_with_policy(policy: &str) -> Host {
    let mut host = started();
    host.tick().unwrap();
    let (call, _) = only_call(&host);
    let mut bundle = bundle(1, &[&key()]);
    bundle.policies.push('\n');
    bundle.policies.push_str(policy);
    respond_signed(
        &mut host,
        call,
        "\"v1\"",
        &serde_json::to_vec(&bundle).unwrap(),
    );
    assert_eq!(
        status(&get(&mut host, None, &[])),
        401,
        "the bundle with the added policy was not taken"
    );
    host
}

/// `GET /api/items/7` with `authorization` (if any) and extra headers.
pub fn get(host: &mut Host, authorization: Option<&str>, extra: &[(&str, &str)]) -> Outcome {
    request(host, "GET", "/api/items/7", authorization, extra)
}

pub fn request(
    host: &mut Host,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    extra: &[(&str, &str)],
) -> Outcome {
    let bearer = authorization.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        (":method", method),
        (":path", path),
        (":authority", "edge.test"),
        (":scheme", "https"),
    ];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer));
    }
    headers.extend_from_slice(extra);
    host.request(&headers).unwrap()
}

/// The status of a local reply, or 200 for a request let through.
pub fn status(outcome: &Outcome) -> u32 {
    match outcome {
        Outcome::Continue(_) => 200,
        Outcome::Respond(response) => response.status,
    }
}

/// Flushes the filter's counters (it reports them on ticks) and reads one.
pub fn counter(host: &mut Host, name: &str) -> u64 {
    host.tick().unwrap();
    host.metric(&format!("portcullis.{name}")).unwrap_or(0)
}

/// Moves the clock until the poll lease (or backoff) runs out and returns the poll sent.
pub fn next_poll(host: &mut Host) -> u32 {
    for _ in 0..100 {
        host.advance(500);
        host.tick().unwrap();
        if !host.pending_calls().is_empty() {
            let (call, path) = only_call(host);
            assert_eq!(path, "/plugin/v1/bundle?wait=20");
            return call;
        }
    }
    panic!("no poll within 50 s");
}
