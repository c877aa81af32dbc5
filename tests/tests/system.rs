//! The whole system: the real control plane issuing tokens and serving the bundle, a real Envoy
//! running the release filter that follows it, and an upstream that echoes what it received.

use portcullis_tests::control_plane::{postgres_db, sqlite_url, ControlPlane};
use portcullis_tests::http::{get, request};
use portcullis_tests::stack::{status_within, Stack, PROPAGATION};
use serde_json::json;
use std::time::Duration;

async fn system(database_url: &str) -> Stack {
    Stack::start(database_url).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_token_is_enforced_and_revocation_reaches_envoy() {
    let s = system(&sqlite_url("service")).await;
    let client = s
        .plane
        .create_client("inventory", "api:items:read", &["client_credentials"])
        .await;
    let token = s.plane.client_token(&client, None).await;
    let port = s.envoy.port;
    // Allowed by its scope, with trusted identity upstream.
    let allowed = get(port, "/api/items/7", Some(&token)).await;
    assert_eq!(allowed.status, 200, "{}", s.envoy.log());
    let echoed = allowed.json();
    assert_eq!(
        echoed["headers"]["x-portcullis-sub"],
        format!("client:{}", client.0)
    );
    assert_eq!(
        echoed["headers"]["x-portcullis-client-id"],
        client.0.as_str()
    );
    assert_eq!(echoed["headers"]["x-portcullis-scopes"], "api:items:read");
    // Outside its scopes: 403.
    let auth = format!("Bearer {token}");
    let write = request(
        port,
        "POST",
        "/api/items",
        &[("authorization", auth.as_bytes())],
    )
    .await
    .unwrap();
    assert_eq!(write.status, 403);
    // Revoked at the control plane → rejected at Envoy within the bound.
    assert_eq!(s.plane.revoke(&client, &token).await.status, 200);
    let took = status_within(port, "/api/items/7", &token, 401, PROPAGATION).await;
    assert!(took.is_some(), "revocation never reached Envoy");
    eprintln!("revocation reached Envoy in {:?}", took.unwrap_or_default());
    // A fresh token still works.
    let fresh = s.plane.client_token(&client, None).await;
    assert_eq!(get(port, "/api/items/7", Some(&fresh)).await.status, 200);
    drop(s.upstream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_push_is_enforced_without_restart_and_bad_pushes_change_nothing() {
    let s = system(&sqlite_url("policy")).await;
    let port = s.envoy.port;
    let admin_client = s
        .plane
        .create_client("policy-admin", "admin:policies", &["client_credentials"])
        .await;
    let admin = s.plane.admin_token(&admin_client).await;
    let reports = s
        .plane
        .create_client("reports", "reports:read", &["client_credentials"])
        .await;
    let token = s.plane.client_token(&reports, None).await;
    assert_eq!(get(port, "/reports/q3", Some(&token)).await.status, 403);

    let current = s
        .plane
        .admin("GET", "/admin/v1/policies", &admin, None)
        .await
        .json();
    let mut policies = current["policies"].as_str().unwrap_or_default().to_owned();
    policies.push_str(
        "\n// Reports are readable with the reports scope.\n@id(\"reports-read\")\npermit (principal, action in Action::\"read\", resource)\nwhen { resource.path like \"/reports/*\" && context.scopes.contains(\"reports:read\") };\n",
    );
    let push =
        json!({"schema": current["schema"], "policies": policies, "entities": current["entities"]});
    let reply = s
        .plane
        .admin("PUT", "/admin/v1/policies", &admin, Some(&push))
        .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let took = status_within(port, "/reports/q3", &token, 200, PROPAGATION).await;
    assert!(took.is_some(), "pushed policy never enforced");
    eprintln!(
        "policy push enforced at Envoy in {:?}",
        took.unwrap_or_default()
    );

    // A push that does not validate is refused with Cedar's diagnostics; enforcement is unchanged.
    let bad = json!({"schema": current["schema"], "policies": "permit (principal, action, resource) when { context.nope };", "entities": current["entities"]});
    let reply = s
        .plane
        .admin("PUT", "/admin/v1/policies", &admin, Some(&bad))
        .await;
    assert_eq!(reply.status, 400);
    assert!(String::from_utf8_lossy(&reply.body).contains("nope"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(get(port, "/reports/q3", Some(&token)).await.status, 200);
    // Roll back to the first version: the permit disappears again.
    let reply = s
        .plane
        .admin(
            "POST",
            "/admin/v1/policies/versions/1/activate",
            &admin,
            None,
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(status_within(port, "/reports/q3", &token, 403, PROPAGATION)
        .await
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_login_then_disable_on_postgres() {
    let db = postgres_db().await;
    let s = system(&db.url).await;
    let port = s.envoy.port;
    let admin_client = s
        .plane
        .create_client_with_roles(
            "user-admin",
            "admin:users api:items:read",
            &["client_credentials"],
            &["sre"],
        )
        .await;
    let admin = s.plane.admin_token(&admin_client).await;
    let created = s
        .plane
        .admin(
            "POST",
            "/admin/v1/users",
            &admin,
            Some(&json!({"username": "ivy", "password": "correct horse battery", "roles": ["sre"], "scopes": "api:items:read", "tenant": "acme"})),
        )
        .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let user_id = created.json()["user_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let web = s
        .plane
        .create_client_with_roles(
            "web",
            "api:items:read",
            &["password", "refresh_token"],
            &["sre"],
        )
        .await;
    let login = s
        .plane
        .token(
            &web,
            &[
                ("grant_type", "password"),
                ("username", "ivy"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(login.status, 200);
    let access = login.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let allowed = get(port, "/api/items", Some(&access)).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.json()["headers"]["x-portcullis-sub"],
        format!("user:{user_id}")
    );
    assert_eq!(allowed.json()["headers"]["x-portcullis-tenant"], "acme");
    // The ops area is open to the sre role through the role hierarchy in entities.json.
    assert_eq!(get(port, "/ops/dashboard", Some(&access)).await.status, 200);
    // Disabled → its unexpired token is rejected at Envoy within the bound.
    let disabled = s
        .plane
        .admin(
            "POST",
            &format!("/admin/v1/users/{user_id}/disable"),
            &admin,
            None,
        )
        .await;
    assert_eq!(disabled.status, 200);
    assert!(status_within(port, "/api/items", &access, 401, PROPAGATION)
        .await
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_keeps_enforcing_while_the_control_plane_is_down_and_catches_up() {
    let url = sqlite_url("outage");
    let mut s = system(&url).await;
    let port = s.envoy.port;
    let client = s
        .plane
        .create_client("svc", "api:items:read", &["client_credentials"])
        .await;
    let token = s.plane.client_token(&client, None).await;
    let second = s.plane.client_token(&client, None).await;
    let plane_port = s.plane.port;
    s.plane.stop();
    // Down: valid tokens still pass, bad ones are still refused, for several refresh periods.
    for _ in 0..10 {
        assert_eq!(get(port, "/api/items", Some(&token)).await.status, 200);
        assert_eq!(
            get(port, "/api/items", Some("not-a-token")).await.status,
            401
        );
        assert_eq!(get(port, "/api/items", None).await.status, 401);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Back on the same port and store: a revocation made now reaches the edge.
    let plane = ControlPlane::start_with(plane_port, &url, &[]);
    assert_eq!(plane.revoke(&client, &second).await.status, 200);
    assert!(
        status_within(port, "/api/items", &second, 401, Duration::from_secs(40))
            .await
            .is_some(),
        "edge never caught up after the restart:\n{}",
        s.envoy.log()
    );
    assert_eq!(get(port, "/api/items", Some(&token)).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_under_traffic_fails_no_request() {
    // Keys must be published for 3 s before they sign (300 s by default). The window must exceed
    // the propagation time to every edge: 1 s proved too short with the whole suite running on
    // two cores.
    let plane = ControlPlane::start_with(
        portcullis_tests::free_port(),
        &sqlite_url("rotation"),
        &[("PORTCULLIS_KEY_PREPUBLISH", "3")],
    );
    let s = Stack::around(plane).await;
    let port = s.envoy.port;
    let client = s
        .plane
        .create_client("svc", "api:items:read", &["client_credentials"])
        .await;
    let keys_admin = s
        .plane
        .create_client("keys-admin", "admin:keys", &["client_credentials"])
        .await;
    let admin = s.plane.admin_token(&keys_admin).await;
    let (mut served, mut rotations, mut refused) = (0, 0, 0);
    let mut failures = Vec::new();
    let started = std::time::Instant::now();
    // Continuous traffic with fresh tokens while rotating as often as pre-publication allows.
    while rotations < 3 && started.elapsed() < Duration::from_secs(60) {
        let reply = s
            .plane
            .admin("POST", "/admin/v1/keys/rotate", &admin, None)
            .await;
        match reply.status {
            200 => rotations += 1,
            409 => refused += 1,
            other => panic!("rotation answered {other}"),
        }
        for _ in 0..5 {
            let token = s.plane.client_token(&client, None).await;
            let status = get(port, "/api/items", Some(&token)).await.status;
            served += 1;
            if status != 200 {
                failures.push((rotations, status));
            }
        }
    }
    assert_eq!(rotations, 3, "rotations refused {refused} times");
    assert!(refused > 0, "pre-publication was never enforced");
    assert!(
        failures.is_empty(),
        "requests failed during rotation: {failures:?}"
    );
    eprintln!("{served} requests, {rotations} rotations, {refused} early rotations refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_key_rotation_reaches_envoy_without_a_restart() {
    // Envoy pins what `portcullis keys bundle-public` prints: the active and the next key.
    let s = system(&sqlite_url("bundle-rotation")).await;
    let port = s.envoy.port;
    let keys_admin = s
        .plane
        .create_client("key-admin", "admin:keys", &["client_credentials"])
        .await;
    let admin = s.plane.admin_token(&keys_admin).await;
    let rotated = s
        .plane
        .admin(
            "POST",
            "/admin/v1/keys/bundle/rotate?force=true",
            &admin,
            None,
        )
        .await;
    assert_eq!(
        rotated.status,
        200,
        "{}",
        String::from_utf8_lossy(&rotated.body)
    );
    // Bundles are signed by the former next key now; a change still reaches Envoy.
    let client = s
        .plane
        .create_client("inventory", "api:items:read", &["client_credentials"])
        .await;
    let token = s.plane.client_token(&client, None).await;
    let allowed = status_within(port, "/api/items/7", &token, 200, PROPAGATION).await;
    assert!(
        allowed.is_some(),
        "a fresh token was refused:\n{}",
        s.envoy.log()
    );
    assert_eq!(s.plane.revoke(&client, &token).await.status, 200);
    let took = status_within(port, "/api/items/7", &token, 401, PROPAGATION).await;
    assert!(
        took.is_some(),
        "a bundle signed by the rotated-in key never reached Envoy:\n{}",
        s.envoy.log()
    );
    assert!(
        !s.envoy.log().contains("bundle refused"),
        "Envoy refused a bundle during the rotation:\n{}",
        s.envoy.log()
    );
}
