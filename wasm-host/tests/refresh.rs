//! Bundle refreshes: bad bundles never replace a good one; unknown keys refresh, rate-limited.

mod common;

use common::*;
use portcullis_authz::issue::SigningKey;
use portcullis_wasm_host::Host;

#[test]
fn bad_bundles_keep_the_last_good_one_and_a_good_one_replaces_it() {
    let mut host = ready();
    let valid = token(&key());
    let mut broken_policy = bundle(3, &[&key()]);
    broken_policy.policies.push_str("permit (");
    let bad_bodies = [
        b"garbage".to_vec(),
        b"{}".to_vec(),
        bundle_json(2, &[]),
        serde_json::to_vec(&broken_policy).unwrap(),
    ];
    for (n, body) in bad_bodies.iter().enumerate() {
        let call = next_poll(&mut host);
        assert_eq!(
            host.pending_calls()[0].header("if-none-match").as_deref(),
            Some("\"v1\"")
        );
        respond_signed(&mut host, call, "\"bad\"", body);
        assert_eq!(counter(&mut host, "bundle.rejected"), n as u64 + 1);
        assert_eq!(
            status(&get(&mut host, Some(&valid), &[])),
            200,
            "after bad bundle {n}"
        );
    }
    assert_eq!(host.metric("portcullis.bundle.version"), Some(1));

    let call = next_poll(&mut host);
    respond_signed(&mut host, call, "\"v0\"", &bundle_json(0, &[&other_key()]));
    assert_eq!(counter(&mut host, "bundle.refused_older"), 1);
    assert_eq!(status(&get(&mut host, Some(&valid), &[])), 200);

    let call = next_poll(&mut host);
    respond_signed(&mut host, call, "\"v2\"", &bundle_json(2, &[&other_key()]));
    assert_eq!(host.metric("portcullis.bundle.version"), Some(2));
    assert_eq!(
        status(&get(&mut host, Some(&valid), &[])),
        401,
        "a retired key still works"
    );
    assert_eq!(
        status(&get(&mut host, Some(&token(&other_key())), &[])),
        200
    );
}

#[test]
fn an_unknown_kid_triggers_at_most_one_extra_fetch_per_interval() {
    let mut host = ready();
    let kid_refreshes = |host: &Host| {
        let calls = host.pending_calls().iter();
        let paths: Vec<String> = calls.filter_map(|c| c.header(":path")).collect();
        paths.iter().filter(|p| *p == "/plugin/v1/bundle").count()
    };
    let newcomer = token(&other_key());
    for _ in 0..20 {
        assert_eq!(status(&get(&mut host, Some(&newcomer), &[])), 401);
        host.tick().unwrap();
        host.advance(400);
    }
    assert_eq!(kid_refreshes(&host), 1, "{:?}", host.pending_calls());
    assert_eq!(counter(&mut host, "invalid_token.unknown_kid"), 20);
    assert_eq!(counter(&mut host, "bundle.kid_refresh"), 1);

    let refresh = host
        .pending_calls()
        .iter()
        .find(|c| c.header(":path").as_deref() == Some("/plugin/v1/bundle"));
    let token_id = refresh.unwrap().token;
    let body = bundle_json(2, &[&key(), &other_key()]);
    respond_signed(&mut host, token_id, "\"v2\"", &body);
    assert_eq!(status(&get(&mut host, Some(&newcomer), &[])), 200);

    // Once the interval (10 s) has passed, another unknown key may refresh again.
    host.advance(10_000);
    let stranger = SigningKey::ed25519("ed-3", [33; 32]);
    assert_eq!(status(&get(&mut host, Some(&token(&stranger)), &[])), 401);
    host.tick().unwrap();
    assert_eq!(kid_refreshes(&host), 1);
    assert_eq!(counter(&mut host, "bundle.kid_refresh"), 2);
}
