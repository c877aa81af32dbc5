//! The filter inside a real Envoy: decisions, headers, and the bundle lifecycle.

use portcullis_tests::bundle_server::{BundleServer, Mode};
use portcullis_tests::echo::EchoUpstream;
use portcullis_tests::envoy::{plugin_config, Envoy, EnvoyOptions};
use portcullis_tests::http::{get, request};
use portcullis_tests::tokens::{bundle, bundle_signature, claims, key, now, token};
use serde_json::json;
use std::time::{Duration, Instant};

/// Polls `check` until it returns true or `timeout` passes.
async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Polls `GET path` with `token` until it answers `status`.
async fn status_becomes(
    port: u16,
    path: &str,
    token: &str,
    status: u16,
    timeout: Duration,
) -> bool {
    eventually(timeout, || async move {
        get(port, path, Some(token)).await.status == status
    })
    .await
}

struct Stack {
    upstream: EchoUpstream,
    server: BundleServer,
    envoy: Envoy,
}

async fn stack(options: EnvoyOptions) -> Stack {
    let upstream = EchoUpstream::start().await;
    let server = BundleServer::start(&bundle(1, &[&key()]), 0);
    let envoy = Envoy::start(&options, upstream.port, server.port);
    let port = envoy.port;
    let ready = eventually(Duration::from_secs(20), || async move {
        get(port, "/api/items", None).await.status == 401
    })
    .await;
    assert!(ready, "filter never loaded a bundle:\n{}", envoy.log());
    Stack {
        upstream,
        server,
        envoy,
    }
}

/// One test: the counters and the access log checked at the end count the allowed, refused and
/// cached decisions made before them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_forward_the_verified_identity_and_are_counted_and_logged() {
    let stack = stack(EnvoyOptions::default()).await;
    let port = stack.envoy.port;
    let read = token(&claims("api:items:read"));

    let spoofed = format!("Bearer {read}");
    let allowed = request(
        port,
        "GET",
        "/api/items/7",
        &[
            ("authorization", spoofed.as_bytes()),
            ("x-portcullis-sub", b"user:admin"),
            ("X-Portcullis-Roles", b"admin"),
            ("x-portcullis-extra", b"1"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        allowed.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&allowed.body)
    );
    let echoed = allowed.json();
    let headers = &echoed["headers"];
    assert_eq!(
        headers["x-portcullis-sub"], "user:42",
        "spoofed identity must be replaced"
    );
    assert_eq!(headers["x-portcullis-roles"], "viewer");
    assert_eq!(headers["x-portcullis-client-id"], "web");
    assert_eq!(headers["x-portcullis-scopes"], "api:items:read");
    assert_eq!(headers["x-portcullis-tenant"], "acme");
    assert!(
        headers.get("x-portcullis-extra").is_none(),
        "unknown identity headers are stripped too"
    );
    assert!(
        headers.get("authorization").is_none(),
        "the bearer token must stay at the edge"
    );

    let invalid = get(port, "/api/items", Some("not.a.token")).await;
    assert_eq!(invalid.status, 401);
    assert_eq!(
        invalid.header("www-authenticate"),
        Some("Bearer realm=\"portcullis\", error=\"invalid_token\"")
    );
    assert_eq!(invalid.json(), json!({"error": "invalid_token"}));

    let forbidden = request(
        port,
        "POST",
        "/api/items",
        &[
            ("authorization", spoofed.as_bytes()),
            ("content-length", b"0"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(forbidden.status, 403);
    assert_eq!(
        forbidden.header("www-authenticate"),
        Some("Bearer realm=\"portcullis\", error=\"insufficient_scope\"")
    );

    let lower = request(
        port,
        "GET",
        "/api/items",
        &[("authorization", format!("bearer {read}").as_bytes())],
    )
    .await
    .unwrap();
    assert_eq!(lower.status, 200, "the scheme is case-insensitive");

    let mut metrics_ok = false;
    for _ in 0..40 {
        if stack
            .envoy
            .stat("wasmcustom.portcullis.allowed")
            .unwrap_or(0)
            >= 2
            && stack.envoy.stat("wasmcustom.portcullis.denied.forbidden") == Some(1)
            && stack
                .envoy
                .stat("wasmcustom.portcullis.token_cache.hit")
                .unwrap_or(0)
                >= 1
            && stack.envoy.stat("wasmcustom.portcullis.bundle.version") == Some(1)
        {
            metrics_ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let stats =
        portcullis_tests::envoy::admin_get(stack.envoy.admin_port, "/stats?filter=portcullis")
            .unwrap_or_default();
    assert!(metrics_ok, "metrics missing:\n{stats}");

    let log_ok = eventually(Duration::from_secs(10), || async {
        let log = stack.envoy.access_log();
        log.contains("decision=\"allow sub=user:42 policies=role-viewer\"")
            && log.contains("decision=\"deny reason=forbidden\"")
            && log.contains("decision=\"deny reason=invalid_token detail=malformed\"")
    })
    .await;
    assert!(
        log_ok,
        "access log lacks decisions:\n{}",
        stack.envoy.access_log()
    );
    drop(stack.upstream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_read_from_one_authorization_header_and_not_on_bypass_routes() {
    let stack = stack(EnvoyOptions::default()).await;
    let port = stack.envoy.port;
    let read = token(&claims("api:items:read"));

    let spoofed = format!("Bearer {read}");
    let missing = get(port, "/api/items", None).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("www-authenticate"),
        Some("Bearer realm=\"portcullis\"")
    );

    let query = get(port, &format!("/api/items?access_token={read}"), None).await;
    assert_eq!(query.status, 400);

    let twice = request(
        port,
        "GET",
        "/api/items",
        &[
            ("authorization", spoofed.as_bytes()),
            ("authorization", spoofed.as_bytes()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(twice.status, 400, "two Authorization headers are refused");

    let health = get(port, "/healthz", Some(&read)).await;
    assert_eq!(health.status, 200, "bypass route");
    assert_eq!(
        health.json()["headers"]["authorization"],
        spoofed.as_str(),
        "a bypass route passes untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_serves_the_path_cedar_judged() {
    // Envoy's own normalisation is off here: the filter alone must make the upstream see the
    // path it authorised.
    let options = EnvoyOptions {
        envoy_normalizes_paths: false,
        ..EnvoyOptions::default()
    };
    let stack = stack(options).await;
    let port = stack.envoy.port;
    let read = token(&claims("api:items:read"));
    for sneaky in [
        "//admin",
        "/api/items/../../admin",
        "/api/items/%2e%2e/%2e%2e/admin",
        "/public/../admin/x",
    ] {
        let response = get(port, sneaky, Some(&read)).await;
        assert_eq!(response.status, 403, "{sneaky}");
    }
    let response = get(port, "/public/./a//b/../c?x=1", Some(&read)).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["path"], "/public/a/c?x=1");
    let encoded = get(port, "/public/..%2Fadmin", Some(&read)).await;
    assert_eq!(encoded.status, 400);
    // A Tomcat or Spring upstream would serve `..;` as `..`: refused by default.
    for parameter in [
        "/api/items/..;/admin",
        "/api/items;v=2/7",
        "/api/items/..%3B/admin",
    ] {
        let response = get(port, parameter, Some(&read)).await;
        assert_eq!(response.status, 400, "{parameter}");
        assert_eq!(
            response.json(),
            json!({"error": "invalid_request"}),
            "{parameter}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripped_path_parameters_reach_the_upstream_as_cedar_judged_them() {
    let options = EnvoyOptions {
        envoy_normalizes_paths: false,
        plugin_config: plugin_config(json!({"path_parameters": "strip"})),
        ..EnvoyOptions::default()
    };
    let stack = stack(options).await;
    let port = stack.envoy.port;
    let read = token(&claims("api:items:read"));
    let stripped = get(port, "/api/items;v=2/7;jsessionid=x?a=1;b", Some(&read)).await;
    assert_eq!(stripped.status, 200);
    assert_eq!(
        stripped.json()["path"],
        "/api/items/7?a=1;b",
        "the upstream must see the path without its parameters, the query as sent"
    );
    let traversal = get(port, "/api/items/..;/admin", Some(&read)).await;
    assert_eq!(
        traversal.status, 403,
        "`..;` is resolved as `..` once stripped: /api/admin is judged"
    );
    let public = get(port, "/public/x/..;p=1/a", Some(&read)).await;
    assert_eq!(public.status, 200);
    assert_eq!(public.json()["path"], "/public/a");
    let encoded = get(port, "/api/items/..%3B/admin", Some(&read)).await;
    assert_eq!(
        encoded.status, 400,
        "an encoded `;` is refused under strip too"
    );
    drop(stack.upstream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrowed_outputs_send_only_what_is_configured() {
    let options = EnvoyOptions {
        plugin_config: plugin_config(json!({
            "identity_headers": ["sub", "tenant"],
            "decision_record": "denied",
            "forward_token": true,
        })),
        ..EnvoyOptions::default()
    };
    let stack = stack(options).await;
    let port = stack.envoy.port;
    let read = token(&claims("api:items:read"));
    let allowed = get(port, "/api/items/7?allowed", Some(&read)).await;
    assert_eq!(allowed.status, 200);
    let echoed = allowed.json();
    assert_eq!(
        echoed["headers"]["authorization"],
        format!("Bearer {read}"),
        "forward_token keeps the token for the upstream"
    );
    let identity: Vec<&String> = echoed["headers"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|name| name.starts_with("x-portcullis-"))
        .collect();
    assert_eq!(identity, ["x-portcullis-sub", "x-portcullis-tenant"]);
    assert_eq!(get(port, "/api/items/7?denied", None).await.status, 401);
    let logged = eventually(Duration::from_secs(10), || async {
        let log = stack.envoy.access_log();
        log.contains("?allowed\" 200 decision=\"-\"")
            && log.contains("?denied\" 401 decision=\"deny reason=missing_token\"")
    })
    .await;
    assert!(logged, "access log:\n{}", stack.envoy.access_log());
    drop(stack.upstream);
}

/// Routes ahead of the catch-all: one for tenant `acme`'s identity header, one for a path.
fn steerable_routes() -> Vec<serde_json::Value> {
    let answer = |body: &str| json!({"status": 200, "body": {"inline_string": body}});
    vec![
        json!({
            "match": {"prefix": "/", "headers": [
                {"name": "x-portcullis-tenant", "string_match": {"exact": "acme"}}
            ]},
            "direct_response": answer("acme route")
        }),
        json!({"match": {"path": "/public/b"}, "direct_response": answer("public b route")}),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_see_the_headers_as_the_filter_leaves_them() {
    let options = EnvoyOptions {
        envoy_normalizes_paths: false,
        routes: steerable_routes(),
        ..EnvoyOptions::default()
    };
    let stack = stack(options).await;
    let port = stack.envoy.port;
    let mut globex = claims("api:items:read");
    globex["tenant"] = "globex".into();
    let globex = token(&globex);
    let bearer = format!("Bearer {globex}");

    let spoofed = request(
        port,
        "GET",
        "/api/items/7",
        &[
            ("authorization", bearer.as_bytes()),
            ("x-portcullis-tenant", b"acme"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(spoofed.status, 200);
    assert_ne!(
        spoofed.body, b"acme route",
        "a spoofed header chose the route"
    );
    assert_eq!(spoofed.json()["headers"]["x-portcullis-tenant"], "globex");

    let acme = token(&claims("api:items:read"));
    let verified = get(port, "/api/items/7", Some(&acme)).await;
    assert_eq!(
        String::from_utf8_lossy(&verified.body),
        "acme route",
        "routes can match the verified identity headers"
    );

    let rewritten = get(port, "/public/a/../b", Some(&globex)).await;
    assert_eq!(rewritten.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&rewritten.body),
        "public b route",
        "the route of the path Cedar judged serves it"
    );
    drop(stack.upstream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_policy_is_enforced_without_restart() {
    let stack = stack(EnvoyOptions::default()).await;
    let port = stack.envoy.port;
    let write = token(&claims("api:reports:write"));
    assert_eq!(get(port, "/api/reports", Some(&write)).await.status, 403);

    let mut next = bundle(2, &[&key()]);
    next.policies.push_str(
        "\n@id(\"reports-read\")\npermit (principal, action in Action::\"read\", resource)\nwhen { resource.path like \"/api/reports*\" && context.scopes.contains(\"api:reports:write\") };\n",
    );
    let changed_at = Instant::now();
    stack.server.set_bundle(&next, true);
    let enforced = status_becomes(port, "/api/reports", &write, 200, Duration::from_secs(5)).await;
    assert!(enforced, "new policy not enforced:\n{}", stack.envoy.log());
    assert!(
        changed_at.elapsed() < Duration::from_secs(3),
        "propagation took {:?}",
        changed_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_reading_the_clock_through_an_escaped_name_is_never_answered_from_the_cache() {
    let stack = stack(EnvoyOptions::default()).await;
    let port = stack.envoy.port;
    let closes_at = now() + 5;
    let mut next = bundle(2, &[&key()]);
    // `\u{6e}ow` is `now`: the filter must see that decisions depend on the time.
    next.policies.push_str(&format!(
        "\n@id(\"closed-later\")\nforbid (principal, action, resource)\nwhen {{ context[\"\\u{{6e}}ow\"] > {closes_at} }};\n"
    ));
    stack.server.set_bundle(&next, true);
    let loaded = eventually(Duration::from_secs(5), || async {
        stack.envoy.stat("wasmcustom.portcullis.bundle.version") == Some(2)
    })
    .await;
    assert!(loaded, "bundle 2 never loaded:\n{}", stack.envoy.log());
    // The gauge can come from the fetching thread; give the worker its 100 ms tick to load it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let read = token(&claims("api:items:read"));
    for _ in 0..2 {
        assert_eq!(
            get(port, "/api/items", Some(&read)).await.status,
            200,
            "refused before the policy's time (the bundle took too long?)"
        );
    }
    assert!(
        now() < closes_at,
        "too slow to test before the policy's time"
    );
    let closed = status_becomes(port, "/api/items", &read, 403, Duration::from_secs(10)).await;
    assert!(
        closed,
        "a decision taken before the policy's time kept being served after it"
    );
    // Counters are reported on the worker's next tick.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        stack
            .envoy
            .stat("wasmcustom.portcullis.decision_cache.hit")
            .unwrap_or(0),
        0,
        "a time-dependent decision was cached"
    );
    drop(stack.upstream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_good_bundle_survives_garbage_and_a_dead_control_plane() {
    let mut stack = stack(EnvoyOptions::default()).await;
    let port = stack.envoy.port;
    let read = token(&claims("api:items:read"));

    stack.server.set_mode(Mode::Garbage);
    let rejected = eventually(Duration::from_secs(10), || async {
        stack
            .envoy
            .stat("wasmcustom.portcullis.bundle.rejected")
            .unwrap_or(0)
            >= 1
    })
    .await;
    assert!(
        rejected,
        "garbage bundle never fetched:\n{}",
        stack.envoy.log()
    );
    assert_eq!(get(port, "/api/items", Some(&read)).await.status, 200);
    assert_eq!(get(port, "/api/items", Some("x.y.z")).await.status, 401);
    assert!(stack
        .envoy
        .log()
        .contains("bundle rejected, keeping the last good one"));

    stack.server.set_mode(Mode::Unavailable);
    tokio::time::sleep(Duration::from_millis(600)).await;
    stack.server.kill();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for _ in 0..20 {
        assert_eq!(get(port, "/api/items", Some(&read)).await.status, 200);
        assert_eq!(get(port, "/api/items", None).await.status, 401);
        assert_eq!(
            get(port, "/api/items", Some(&token(&claims("other"))))
                .await
                .status,
            403
        );
    }
    assert!(
        stack
            .envoy
            .stat("wasmcustom.portcullis.bundle.fetch_failed")
            .unwrap_or(0)
            >= 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_bundle_fails_closed_except_opted_out_routes() {
    let upstream = EchoUpstream::start().await;
    let server = BundleServer::start(&bundle(1, &[&key()]), 0);
    server.set_mode(Mode::Unavailable);
    let options = EnvoyOptions {
        plugin_config: plugin_config(json!({"fail_open_paths": ["/public/*"]})),
        ..EnvoyOptions::default()
    };
    let envoy = Envoy::start(&options, upstream.port, server.port);
    let read = token(&claims("api:items:read"));
    let closed = get(envoy.port, "/api/items", Some(&read)).await;
    assert_eq!(closed.status, 503);
    assert_eq!(closed.header("retry-after"), Some("5"));
    assert_eq!(
        get(envoy.port, "/public/page", None).await.status,
        200,
        "fail-open route"
    );
    assert_eq!(
        get(envoy.port, "/healthz", None).await.status,
        200,
        "bypass route"
    );

    server.set_mode(Mode::Serve);
    let port = envoy.port;
    let recovered = status_becomes(port, "/api/items", &read, 200, Duration::from_secs(40)).await;
    assert!(
        recovered,
        "never recovered once the control plane came back:\n{}",
        envoy.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_bundle_fails_closed() {
    let upstream = EchoUpstream::start().await;
    let mut server = BundleServer::start(&bundle(1, &[&key()]), 0);
    let options = EnvoyOptions {
        plugin_config: plugin_config(json!({"staleness_limit_seconds": 2, "long_poll_seconds": 1})),
        ..EnvoyOptions::default()
    };
    let envoy = Envoy::start(&options, upstream.port, server.port);
    let port = envoy.port;
    let read = token(&claims("api:items:read"));
    let up = status_becomes(port, "/api/items", &read, 200, Duration::from_secs(20)).await;
    assert!(up, "{}", envoy.log());
    server.kill();
    let closed = status_becomes(port, "/api/items", &read, 503, Duration::from_secs(10)).await;
    assert!(closed, "stale bundle kept being enforced:\n{}", envoy.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_triggers_one_rate_limited_refresh() {
    // Long-polls last 30 s, so only the unknown-kid refresh can bring the new key in time.
    let options = EnvoyOptions {
        plugin_config: plugin_config(
            json!({"long_poll_seconds": 30, "unknown_kid_refresh_seconds": 5}),
        ),
        ..EnvoyOptions::default()
    };
    let stack = stack(options).await;
    let port = stack.envoy.port;
    let rotated = portcullis_authz::issue::SigningKey::ed25519("key-2", [22; 32]);
    let new_token = rotated.sign_access_token(&claims("api:items:read"));
    // Let the first fetch and the long-poll that follows it start before counting.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let before = stack.server.requests();

    stack
        .server
        .set_bundle(&bundle(2, &[&key(), &rotated]), false);
    for _ in 0..20 {
        let status = get(port, "/api/items", Some(&new_token)).await.status;
        if status == 200 {
            break;
        }
        assert_eq!(status, 401);
    }
    let accepted =
        status_becomes(port, "/api/items", &new_token, 200, Duration::from_secs(5)).await;
    assert!(accepted, "new key never fetched:\n{}", stack.envoy.log());
    let unknown = portcullis_authz::issue::SigningKey::ed25519("key-unknown", [23; 32])
        .sign_access_token(&claims("x"));
    for _ in 0..30 {
        assert_eq!(get(port, "/api/items", Some(&unknown)).await.status, 401);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let extra = stack.server.requests() - before;
    assert_eq!(
        extra, 1,
        "31 unknown-kid rejections within the rate-limit window caused {extra} bundle requests"
    );
    assert_eq!(
        stack.envoy.stat("wasmcustom.portcullis.bundle.kid_refresh"),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_share_one_poller() {
    // Long-polling off: each fetch returns at once, so the request count shows how many pollers run.
    let options = EnvoyOptions {
        concurrency: 2,
        plugin_config: plugin_config(json!({"long_poll_seconds": 0, "refresh_interval_ms": 200})),
        ..EnvoyOptions::default()
    };
    let stack = stack(options).await;
    let start = stack.server.requests();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let polls = stack.server.requests() - start;
    // One poller at 200 ms does about 15 requests in 3 s; two independent ones would do about 30.
    assert!((8..=20).contains(&polls), "{polls} bundle requests in 3 s");
    let read = token(&claims("api:items:read"));
    for _ in 0..10 {
        assert_eq!(
            get(stack.envoy.port, "/api/items", Some(&read))
                .await
                .status,
            200
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_never_crash_envoy() {
    let mut stack = stack(EnvoyOptions::default()).await;
    let port = stack.envoy.port;
    let big = format!("Bearer {}", "a".repeat(64 * 1024));
    let huge = format!("Bearer {}", "a.".repeat(512 * 1024));
    let cases: Vec<Vec<(&str, &[u8])>> = vec![
        vec![("authorization", b"Bearer \xff\xfe\xfd")],
        vec![("authorization", big.as_bytes())],
        vec![("authorization", huge.as_bytes())],
        vec![("authorization", b"Bearer eyJhbGciOiJub25lIn0.e30.")],
        vec![("authorization", b"Bearer ")],
        vec![("x-portcullis-sub", b"\xff")],
    ];
    for headers in &cases {
        // Envoy itself may refuse oversize headers (431) or close the connection; either is fine.
        if let Ok(response) = request(port, "GET", "/api/items", headers).await {
            assert!(
                matches!(response.status, 400 | 401 | 431),
                "{}",
                response.status
            );
        }
    }
    for garbage in 0..200u32 {
        let t = format!("{}.{}.{}", garbage, "e30", "x".repeat(garbage as usize));
        assert_eq!(get(port, "/api/items", Some(&t)).await.status, 401);
    }
    assert!(stack.envoy.is_running());
    assert_eq!(
        get(port, "/api/items", Some(&token(&claims("api:items:read"))))
            .await
            .status,
        200
    );
    assert!(
        !stack.envoy.log().contains("panic"),
        "{}",
        stack.envoy.log()
    );
}

/// The policy corpus through the real filter: every ALLOW case passes Envoy, every DENY case is
/// refused — the same decisions `portcullis policy test` and `/v1/authorize` give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_corpus_decides_the_same_inside_envoy() {
    let stack = stack(EnvoyOptions::default()).await;
    let port = stack.envoy.port;
    let cases = portcullis_authz::folder::corpus(&portcullis_tests::repo_root().join("policies"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(cases.len() >= 10);
    let mut mismatches = Vec::new();
    for corpus_case in &cases {
        let case = &corpus_case.case;
        let mut claims = claims(&case.token.scope);
        claims["sub"] = json!(case.token.sub);
        claims["roles"] = json!(case.token.roles);
        claims["amr"] = json!(case.token.amr);
        claims["client_id"] = json!(case.token.client_id);
        match &case.token.tenant {
            Some(tenant) => claims["tenant"] = json!(tenant),
            None => {
                if let Some(object) = claims.as_object_mut() {
                    object.remove("tenant");
                }
            }
        }
        let auth = format!("Bearer {}", token(&claims));
        let status = request(
            port,
            &case.method,
            &case.path,
            &[("authorization", auth.as_bytes())],
        )
        .await
        .map(|r| r.status)
        .unwrap_or(0);
        // A deny is a 403 from the filter, or a 400 when Envoy itself refuses the request line.
        let agrees = if corpus_case.expect_allow {
            status == 200
        } else {
            status == 403 || status == 400
        };
        if !agrees {
            mismatches.push(format!("{} → {status}", corpus_case.file));
        }
    }
    assert!(
        mismatches.is_empty(),
        "Envoy disagrees with the corpus: {mismatches:?}\n{}",
        stack.envoy.access_log()
    );
    drop(stack.upstream);
    drop(stack.server);
}

/// `@shadow` policies inside Envoy: decisions are unchanged, the filter counts what would have
/// changed and writes it into the access-log record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_policies_are_counted_not_enforced() {
    let stack = stack(EnvoyOptions::default()).await;
    let port = stack.envoy.port;
    let mut next = bundle(2, &[&key()]);
    next.policies.push_str(
        "\n// Trying out a lockdown of secret items before enforcing it.\n@id(\"secret-items-closed\")\n@shadow\nforbid (principal, action, resource)\nwhen { resource.path like \"/api/items/secret*\" };\n",
    );
    stack.server.set_bundle(&next, true);
    let mut loaded = false;
    for _ in 0..40 {
        if stack.envoy.stat("wasmcustom.portcullis.bundle.version") == Some(2) {
            loaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(loaded, "bundle 2 never loaded:\n{}", stack.envoy.log());
    // The gauge can come from the fetching thread; give the worker its 100 ms tick to load it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let read = token(&claims("api:items:read"));
    // Enforcement is unchanged: the shadow forbid does not deny.
    assert_eq!(
        get(port, "/api/items/secret-1", Some(&read)).await.status,
        200
    );
    assert_eq!(get(port, "/api/items/1", Some(&read)).await.status, 200);
    let mut counted = false;
    for _ in 0..40 {
        if stack.envoy.stat("wasmcustom.portcullis.shadow.would_deny") == Some(1)
            && stack
                .envoy
                .stat("wasmcustom.portcullis.shadow.same")
                .unwrap_or(0)
                >= 1
        {
            counted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        counted,
        "shadow metrics missing: {:?}",
        portcullis_tests::envoy::admin_get(stack.envoy.admin_port, "/stats?filter=portcullis")
    );
    // Envoy flushes file access logs every 10 s by default.
    let mut log = String::new();
    for _ in 0..150 {
        log = stack.envoy.access_log();
        if log.contains("shadow=deny") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        log.contains("\"GET /api/items/secret-1\" 200") && log.contains("shadow=deny"),
        "{log}"
    );
    drop(stack.upstream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_man_in_the_middle_cannot_inject_a_key_through_envoy() {
    let stack = stack(EnvoyOptions::default()).await;
    let port = stack.envoy.port;
    let read = token(&claims("api:items:read"));
    let attacker = portcullis_authz::issue::SigningKey::ed25519("attacker", [66; 32]);
    let forged_token = attacker.sign_access_token(&claims("api:items:read"));
    assert_eq!(
        get(port, "/api/items", Some(&forged_token)).await.status,
        401
    );

    // The genuine v2 bundle's signature, sent with the attacker's key added to the body; then
    // the forged body with no signature at all.
    let mut forged = bundle(2, &[&key()]);
    let genuine = bundle_signature(serde_json::to_string(&forged).unwrap().as_bytes());
    forged.jwks.keys.push(attacker.public_jwk());
    let forged = serde_json::to_string(&forged).unwrap();
    for (signature, reason) in [(Some(genuine), "bad_signature"), (None, "unsigned")] {
        stack.server.set_raw(forged.clone(), signature);
        let stat = format!("wasmcustom.portcullis.bundle.signature_refused.{reason}");
        let refused = eventually(Duration::from_secs(20), || async {
            stack.envoy.stat(&stat).unwrap_or(0) >= 1
        })
        .await;
        assert!(
            refused,
            "the forged bundle was never refused ({reason}):\n{}",
            stack.envoy.log()
        );
        assert_eq!(
            get(port, "/api/items", Some(&forged_token)).await.status,
            401,
            "the injected key verified a token ({reason})"
        );
        assert_eq!(
            get(port, "/api/items", Some(&read)).await.status,
            200,
            "the last good bundle stopped deciding ({reason})"
        );
        assert_eq!(
            stack.envoy.stat("wasmcustom.portcullis.bundle.version"),
            Some(1),
            "a forged bundle replaced the last good one ({reason})"
        );
    }
    assert!(stack
        .envoy
        .log()
        .contains("bundle refused, keeping the last good one"));

    // The control plane's own next bundle, signed, is applied as usual.
    stack
        .server
        .set_bundle(&bundle(3, &[&key(), &attacker]), true);
    let applied = status_becomes(
        port,
        "/api/items",
        &forged_token,
        200,
        Duration::from_secs(20),
    )
    .await;
    assert!(
        applied,
        "a signed bundle was not applied after the refusals:\n{}",
        stack.envoy.log()
    );
}
