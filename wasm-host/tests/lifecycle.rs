//! Configuration, the first bundle fetch, and failing closed before a bundle arrives.

mod common;

use common::*;
use portcullis_wasm_host::{load_filter, Outcome};

#[test]
fn a_bad_configuration_is_refused() {
    for config in [
        "not json",
        r#"{"cluster":"cp"}"#,
        r#"{"cluster":"cp","credential":"s","typo":1}"#,
        r#"{"cluster":"","credential":"s"}"#,
        // Valid but pinning no bundle-signing key: it would apply any bundle, so it never starts.
        r#"{"cluster":"cp","credential":"s"}"#,
        r#"{"cluster":"cp","credential":"s","bundle_signing_keys":[]}"#,
    ] {
        let mut host = load_filter();
        assert!(!host.start(config).unwrap(), "accepted {config}");
        host.tick().unwrap();
        assert!(
            host.pending_calls().is_empty(),
            "{config} dispatched a call"
        );
    }
}

#[test]
fn a_good_configuration_fetches_the_bundle_once_with_the_credential() {
    let mut host = started();
    assert_eq!(host.tick_period_ms(), 100);
    assert!(
        host.pending_calls().is_empty(),
        "nothing is fetched before the first tick"
    );
    host.tick().unwrap();
    host.tick().unwrap();
    let calls = host.pending_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call.cluster, "cp");
    assert_eq!(call.header(":method").as_deref(), Some("GET"));
    assert_eq!(
        call.header(":path").as_deref(),
        Some("/plugin/v1/bundle?wait=20")
    );
    assert_eq!(call.header("authorization").as_deref(), Some("Bearer s"));
    assert_eq!(call.header("if-none-match"), None);
    assert_eq!(call.timeout_ms, 25_000);
}

#[test]
fn requests_fail_closed_until_a_bundle_arrives() {
    let mut host = started();
    host.tick().unwrap();
    let outcome = get(&mut host, Some(&token(&key())), &[]);
    let Outcome::Respond(response) = outcome else {
        panic!("let through without a bundle: {outcome:?}");
    };
    assert_eq!(response.status, 503);
    assert_eq!(response.header("retry-after").as_deref(), Some("5"));
    assert_eq!(
        host.property("portcullis_decision").as_deref(),
        Some("deny reason=unavailable")
    );
    assert_eq!(counter(&mut host, "denied.unavailable"), 1);
}

#[test]
fn a_failed_first_fetch_is_retried_after_a_backoff() {
    let mut host = started();
    host.tick().unwrap();
    let (call, _) = only_call(&host);
    host.respond(call, 500, &[], b"oops").unwrap();
    assert_eq!(counter(&mut host, "bundle.fetch_failed"), 1);
    assert!(
        host.pending_calls().is_empty(),
        "retried without backing off"
    );
    host.advance(600);
    host.tick().unwrap();
    let (call, _) = only_call(&host);
    host.fail(call).unwrap();
    host.advance(1_100);
    host.tick().unwrap();
    let (call, _) = only_call(&host);
    respond_signed(&mut host, call, "\"v1\"", &bundle_json(1, &[&key()]));
    assert_eq!(status(&get(&mut host, Some(&token(&key())), &[])), 200);
}

#[test]
fn a_trap_in_the_filter_is_an_error_and_poisons_the_host() {
    let mut host = load_filter();
    // No root context yet: the SDK panics creating the HTTP context, which traps the VM.
    let error = host.request(&[(":path", "/")]).unwrap_err().to_string();
    assert!(
        error.contains("the filter trapped in proxy_on_context_create"),
        "{error}"
    );
    let again = host.tick().unwrap_err().to_string();
    assert!(again.contains("the filter trapped earlier"), "{again}");
}

#[test]
fn the_credential_and_the_pins_can_come_from_envoy_environment_variables() {
    let config = r#"{"cluster":"cp","credential_env":"PORTCULLIS_BUNDLE_CREDENTIAL","bundle_signing_keys_env":"PORTCULLIS_BUNDLE_SIGNING_KEYS"}"#;
    let mut unset = load_filter();
    assert!(
        !unset.start(config).unwrap(),
        "started without the variables its configuration names"
    );

    let mut host = load_filter();
    host.set_env("PORTCULLIS_BUNDLE_CREDENTIAL", "from-the-env-file");
    let jwks = serde_json::json!({ "keys": bundle_pins() });
    host.set_env("PORTCULLIS_BUNDLE_SIGNING_KEYS", &jwks.to_string());
    assert!(host.start(config).unwrap(), "{:?}", host.logs());
    host.tick().unwrap();
    let (call, _) = only_call(&host);
    assert_eq!(
        host.pending_calls()[0].header("authorization").as_deref(),
        Some("Bearer from-the-env-file"),
        "the credential is not the variable's"
    );
    respond_signed(&mut host, call, "\"v1\"", &bundle_json(1, &[&key()]));
    assert_eq!(
        status(&get(&mut host, Some(&token(&key())), &[])),
        200,
        "a bundle signed by the key in the variable was not applied"
    );
}
