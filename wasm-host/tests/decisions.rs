//! Per-request decisions once a bundle is in force.

mod common;

use common::*;
use portcullis_authz::issue::SigningKey;
use portcullis_wasm_host::state::header;
use portcullis_wasm_host::Outcome;

#[test]
fn a_valid_token_goes_upstream_with_identity_headers_and_no_spoofed_ones() {
    let mut host = ready();
    let outcome = get(
        &mut host,
        Some(&token(&key())),
        &[
            ("x-portcullis-roles", "admin"),
            ("X-Portcullis-Tenant", "evil"),
            ("x-other", "kept"),
        ],
    );
    let Outcome::Continue(headers) = outcome else {
        panic!("valid token refused: {outcome:?}");
    };
    let identity = |name: &str| header(&headers, &format!("x-portcullis-{name}"));
    assert_eq!(identity("sub").as_deref(), Some("user:42"));
    assert_eq!(identity("client-id").as_deref(), Some("web"));
    assert_eq!(identity("scopes").as_deref(), Some("api:items:read"));
    assert_eq!(
        identity("roles").as_deref(),
        Some("viewer"),
        "client-sent roles kept"
    );
    assert_eq!(identity("tenant"), None, "client-sent tenant kept");
    assert_eq!(header(&headers, "x-other").as_deref(), Some("kept"));
    assert_eq!(header(&headers, ":path").as_deref(), Some("/api/items/7"));
    let record = host.property("portcullis_decision").unwrap();
    assert!(
        record.starts_with("allow sub=user:42 policies=role-viewer"),
        "{record}"
    );
    assert_eq!(counter(&mut host, "allowed"), 1);
    assert_eq!(counter(&mut host, "token_cache.miss"), 1);

    assert_eq!(status(&get(&mut host, Some(&token(&key())), &[])), 200);
    assert_eq!(counter(&mut host, "allowed"), 2);
    assert_eq!(counter(&mut host, "token_cache.hit"), 1);
}

#[test]
fn several_scopes_and_roles_go_upstream_joined_and_the_tenant_with_them() {
    let mut host = ready();
    let mut claims = claims();
    claims["scope"] = "api:items:read api:items:write".into();
    claims["roles"] = serde_json::json!(["viewer", "auditor"]);
    claims["tenant"] = "acme".into();
    let outcome = get(&mut host, Some(&key().sign_access_token(&claims)), &[]);
    let Outcome::Continue(headers) = outcome else {
        panic!("valid token refused: {outcome:?}");
    };
    let identity = |name: &str| header(&headers, &format!("x-portcullis-{name}"));
    assert_eq!(
        identity("scopes").as_deref(),
        Some("api:items:read api:items:write")
    );
    assert_eq!(identity("roles").as_deref(), Some("viewer,auditor"));
    assert_eq!(identity("tenant").as_deref(), Some("acme"));
    assert_eq!(identity("sub").as_deref(), Some("user:42"));
}

#[test]
fn only_the_configured_identity_headers_and_records_are_written() {
    let mut host = ready_with(
        r#"{"cluster":"cp","credential":"s","identity_headers":["tenant","sub"],"decision_record":"denied"}"#,
    );
    let mut claims = claims();
    claims["tenant"] = "acme".into();
    let outcome = get(
        &mut host,
        Some(&key().sign_access_token(&claims)),
        &[("x-portcullis-roles", "admin")],
    );
    let Outcome::Continue(headers) = outcome else {
        panic!("valid token refused: {outcome:?}");
    };
    let identity: Vec<(&str, &[u8])> = headers
        .iter()
        .filter(|(name, _)| name.starts_with("x-portcullis-"))
        .map(|(name, value)| (name.as_str(), value.as_slice()))
        .collect();
    assert_eq!(
        identity,
        [
            ("x-portcullis-tenant", b"acme".as_slice()),
            ("x-portcullis-sub", b"user:42".as_slice())
        ],
        "the configured headers, in the configured order, and no spoofed one"
    );
    assert_eq!(host.property("portcullis_decision"), None);
    assert_eq!(counter(&mut host, "allowed"), 1);

    assert_eq!(status(&get(&mut host, None, &[])), 401);
    let record = host.property("portcullis_decision").unwrap();
    assert!(record.starts_with("deny reason=missing_token"), "{record}");

    let mut silent = ready_with(r#"{"cluster":"cp","credential":"s","decision_record":"none"}"#);
    assert_eq!(status(&get(&mut silent, None, &[])), 401);
    assert_eq!(silent.property("portcullis_decision"), None);
    assert_eq!(counter(&mut silent, "denied.missing_token"), 1);

    // Without a bundle: a fail-open pass and a 503, recorded under `denied`, not under `none`.
    for (record, expected) in [
        (
            "denied",
            (Some("fail_open"), Some("deny reason=unavailable")),
        ),
        ("none", (None, None)),
    ] {
        let config = format!(
            r#"{{"cluster":"cp","credential":"s","fail_open_paths":["/public/*"],"decision_record":"{record}"}}"#
        );
        let mut host = started_with(&config);
        let passed = request(&mut host, "GET", "/public/a", None, &[]);
        assert_eq!(status(&passed), 200, "{record}");
        let fail_open = host.property("portcullis_decision");
        assert_eq!(status(&get(&mut host, None, &[])), 503, "{record}");
        let unavailable = host.property("portcullis_decision");
        assert_eq!(
            (fail_open.as_deref(), unavailable.as_deref()),
            expected,
            "{record}"
        );
    }
}

#[test]
fn missing_forged_and_garbage_tokens_get_401_with_a_challenge() {
    let mut host = ready();
    let forger = SigningKey::ed25519("ed-1", [99; 32]);
    for (authorization, metric) in [
        (None, "denied.missing_token"),
        (
            Some(forger.sign_access_token(&claims())),
            "invalid_token.bad_signature",
        ),
        (Some("garbage".to_owned()), "invalid_token.malformed"),
        (Some("a.b.c".to_owned()), "denied.invalid_token"),
    ] {
        let outcome = get(&mut host, authorization.as_deref(), &[]);
        let Outcome::Respond(response) = outcome else {
            panic!("{authorization:?} let through: {outcome:?}");
        };
        assert_eq!(response.status, 401, "{authorization:?}");
        let challenge = response.header("www-authenticate").unwrap();
        assert!(
            challenge.starts_with("Bearer realm=\"portcullis\""),
            "{challenge}"
        );
        assert!(counter(&mut host, metric) >= 1, "{metric} did not move");
    }
    assert_eq!(counter(&mut host, "denied.invalid_token"), 3);
    assert_eq!(counter(&mut host, "allowed"), 0);
}

#[test]
fn a_policy_deny_gets_403() {
    let mut host = ready();
    let outcome = request(&mut host, "POST", "/api/items", Some(&token(&key())), &[]);
    let Outcome::Respond(response) = outcome else {
        panic!("write with a read scope let through: {outcome:?}");
    };
    assert_eq!(response.status, 403);
    assert_eq!(
        String::from_utf8_lossy(&response.body),
        r#"{"error":"insufficient_scope"}"#
    );
    assert!(host
        .property("portcullis_decision")
        .unwrap()
        .starts_with("deny reason=forbidden"));
    assert_eq!(counter(&mut host, "denied.forbidden"), 1);
    assert_eq!(status(&get(&mut host, Some(&token(&key())), &[])), 200);
}

#[test]
fn an_expired_token_is_refused_once_the_host_clock_passes_exp() {
    let mut host = ready();
    let token = token(&key());
    assert_eq!(status(&get(&mut host, Some(&token), &[])), 200);
    host.advance((900 + 61) * 1_000);
    // The bundle must stay fresh across the jump: answer the poll it triggers.
    host.tick().unwrap();
    let (call, _) = only_call(&host);
    respond_not_modified(&mut host, call, 1);
    assert_eq!(status(&get(&mut host, Some(&token), &[])), 401);
    assert_eq!(counter(&mut host, "invalid_token.expired"), 1);
}

#[test]
fn a_path_segment_with_a_parameter_is_refused_by_default() {
    let mut host = ready();
    let token = token(&key());
    for path in [
        "/api/items/..;/admin",
        "/api/items;v=2/7",
        "/api/items/7%3B",
        "/healthz;x",
    ] {
        let outcome = request(&mut host, "GET", path, Some(&token), &[]);
        let Outcome::Respond(response) = outcome else {
            panic!("{path} let through: {outcome:?}");
        };
        assert_eq!(response.status, 400, "{path}");
        assert_eq!(
            String::from_utf8_lossy(&response.body),
            r#"{"error":"invalid_request"}"#,
            "{path}"
        );
        assert_eq!(
            response.header("www-authenticate"),
            None,
            "a bad path is no token problem: {path}"
        );
    }
    assert_eq!(counter(&mut host, "denied.bad_path"), 4);
    let query = request(&mut host, "GET", "/api/items/7?a=1;b=2", Some(&token), &[]);
    assert_eq!(
        status(&query),
        200,
        "a `;` in the query string is no path parameter"
    );
}

#[test]
fn stripped_path_parameters_are_judged_and_sent_upstream_without_them() {
    let mut host = ready_with(r#"{"cluster":"cp","credential":"s","path_parameters":"strip"}"#);
    let token = token(&key());
    let outcome = request(
        &mut host,
        "GET",
        "/api/items;v=2/7;jsessionid=x?a=1;b",
        Some(&token),
        &[],
    );
    let Outcome::Continue(headers) = outcome else {
        panic!("a path with parameters refused under strip: {outcome:?}");
    };
    assert_eq!(
        header(&headers, ":path").as_deref(),
        Some("/api/items/7?a=1;b"),
        "the upstream must get the path Cedar judged, query untouched"
    );
    let traversal = request(&mut host, "GET", "/api/items/..;/admin", Some(&token), &[]);
    assert_eq!(
        status(&traversal),
        403,
        "`..;` is `..` once stripped: /api/admin was judged, not an items path"
    );
    let encoded = request(
        &mut host,
        "GET",
        "/api/items/..%3B/admin",
        Some(&token),
        &[],
    );
    assert_eq!(
        status(&encoded),
        400,
        "an encoded `;` is refused under strip too"
    );
}

#[test]
fn a_policy_reading_the_clock_through_an_escaped_name_is_never_answered_from_the_cache() {
    // `\u{6e}ow` is `now`: the filter must see that the policy depends on the time.
    let policy = format!(
        "@id(\"closed-later\")\nforbid (principal, action, resource)\nwhen {{ context[\"\\u{{6e}}ow\"] > {} }};\n",
        NOW + 10
    );
    let mut host = ready_with_policy(&policy);
    let token = token(&key());
    assert_eq!(status(&get(&mut host, Some(&token), &[])), 200);
    assert_eq!(status(&get(&mut host, Some(&token), &[])), 200);
    host.advance(11_000);
    assert_eq!(
        status(&get(&mut host, Some(&token), &[])),
        403,
        "a decision taken before the policy's time was reused after it"
    );
    assert_eq!(
        counter(&mut host, "decision_cache.hit"),
        0,
        "a time-dependent decision was cached"
    );
}

#[test]
fn the_token_stays_at_the_edge_unless_forward_token_is_set() {
    let mut host = ready();
    let token = token(&key());
    for attempt in ["verified", "cached"] {
        let outcome = get(&mut host, Some(&token), &[]);
        let Outcome::Continue(headers) = outcome else {
            panic!("valid token refused: {outcome:?}");
        };
        assert_eq!(
            header(&headers, "authorization"),
            None,
            "the bearer token went upstream ({attempt})"
        );
        assert_eq!(
            header(&headers, "x-portcullis-sub").as_deref(),
            Some("user:42"),
            "the identity goes upstream instead ({attempt})"
        );
    }
    assert_eq!(counter(&mut host, "decision_cache.hit"), 1);

    let mut forwarding = ready_with(r#"{"cluster":"cp","credential":"s","forward_token":true}"#);
    let outcome = get(&mut forwarding, Some(&token), &[]);
    let Outcome::Continue(headers) = outcome else {
        panic!("valid token refused: {outcome:?}");
    };
    assert_eq!(
        header(&headers, "authorization"),
        Some(format!("Bearer {token}")),
        "forward_token must keep the header as the client sent it"
    );
    assert_eq!(
        header(&headers, "x-portcullis-sub").as_deref(),
        Some("user:42"),
        "identity headers go upstream with the token too"
    );
}

#[test]
fn bypass_routes_keep_the_authorization_header_and_fail_open_passes_do_not() {
    let config = r#"{"cluster":"cp","credential":"s","bypass_paths":["/oauth2/*"],"fail_open_paths":["/public/*"]}"#;
    let basic = [("authorization", "Basic Y2xpZW50OnNlY3JldA==")];
    let token = token(&key());
    // No bundle yet: the fail-open route passes undecided, and without the token.
    let mut host = started_with(config);
    let outcome = request(&mut host, "GET", "/public/a", Some(&token), &[]);
    let Outcome::Continue(headers) = outcome else {
        panic!("fail-open route refused: {outcome:?}");
    };
    assert_eq!(
        header(&headers, "authorization"),
        None,
        "an unverified token went upstream on a fail-open pass"
    );
    let outcome = request(&mut host, "POST", "/oauth2/token", None, &basic);
    let Outcome::Continue(headers) = outcome else {
        panic!("bypass route refused: {outcome:?}");
    };
    assert_eq!(
        header(&headers, "authorization").as_deref(),
        Some(basic[0].1),
        "a bypass route authenticates by itself and must get its credentials"
    );
}
