//! Issue 5's end-to-end scenarios that the other suites do not already cover: MFA at the edge,
//! refresh-token reuse reaching Envoy, a database outage, and two control-plane replicas.

use portcullis_tests::control_plane::{postgres_db, ControlPlane};
use portcullis_tests::http::{get, request};
use portcullis_tests::proxy::CuttableProxy;
use portcullis_tests::stack::{status_within, Stack, PROPAGATION};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn body(reply: &portcullis_tests::http::Response) -> Value {
    reply.json()
}

async fn post(port: u16, path: &str, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    request(port, "POST", path, &[("authorization", auth.as_bytes())])
        .await
        .map(|r| r.status)
        .unwrap_or(0)
}

const LENA_PASSWORD: &str = "correct horse battery";

/// What scenario 1 starts from: an administrator's token, user `lena` (who may read and pay)
/// and the `web` client she logs in through.
struct Lena {
    admin: String,
    user_id: String,
    web: (String, String),
}

async fn lena(plane: &ControlPlane) -> Lena {
    let admin_client = plane
        .create_client(
            "ops",
            "admin:users admin:audit api:items:read api:payments:write",
            &["client_credentials"],
        )
        .await;
    let admin = plane.admin_token(&admin_client).await;
    let created = plane
        .admin(
            "POST",
            "/admin/v1/users",
            &admin,
            Some(&json!({"username": "lena", "password": LENA_PASSWORD, "scopes": "api:items:read api:payments:write"})),
        )
        .await;
    let user_id = body(&created)["user_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let web = plane
        .create_client(
            "web",
            "api:items:read api:payments:write self",
            &["password", "refresh_token"],
        )
        .await;
    Lena {
        admin,
        user_id,
        web,
    }
}

/// `lena`'s password login through `web`, with `extra` parameters.
async fn login(
    plane: &ControlPlane,
    web: &(String, String),
    extra: &[(&str, &str)],
) -> portcullis_tests::http::Response {
    let mut params = vec![
        ("grant_type", "password"),
        ("username", "lena"),
        ("password", LENA_PASSWORD),
    ];
    params.extend_from_slice(extra);
    plane.token(web, &params).await
}

fn access_token(reply: &portcullis_tests::http::Response) -> String {
    body(reply)["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Scenario 1: a user logs in with password, then with TOTP; only the second token may pay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_token_reads_as_the_user_upstream_and_only_a_totp_token_may_pay() {
    let db = postgres_db().await;
    let s = Stack::start(&db.url).await;
    let port = s.envoy.port;
    let Lena { user_id, web, .. } = lena(&s.plane).await;
    let first = access_token(&login(&s.plane, &web, &[]).await);
    // Password only: reads pass, paying is forbidden by the MFA policy.
    let read = get(port, "/api/items", Some(&first)).await;
    assert_eq!(read.status, 200);
    assert_eq!(
        read.json()["headers"]["x-portcullis-sub"],
        format!("user:{user_id}")
    );
    assert_eq!(post(port, "/api/payments", &first).await, 403);
    let (_, code) = s.plane.enrol_totp(&web, "lena", LENA_PASSWORD).await;
    let second = login(&s.plane, &web, &[("otp", code.as_str())]).await;
    assert_eq!(
        second.status,
        200,
        "{}",
        String::from_utf8_lossy(&second.body)
    );
    let strong = access_token(&second);
    assert_eq!(post(port, "/api/payments", &strong).await, 200);
}

/// Scenario 1's logins in the audit log (the control plane alone: no edge is involved).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_login_of_the_user_is_audited_under_their_id() {
    let db = postgres_db().await;
    let plane = ControlPlane::start(&db.url);
    let Lena {
        admin,
        user_id,
        web,
    } = lena(&plane).await;
    login(&plane, &web, &[]).await;
    let (_, code) = plane.enrol_totp(&web, "lena", LENA_PASSWORD).await;
    let second = login(&plane, &web, &[("otp", code.as_str())]).await;
    assert_eq!(
        second.status,
        200,
        "{}",
        String::from_utf8_lossy(&second.body)
    );
    // The audit log names the user.
    let audit = plane
        .admin(
            "GET",
            &format!("/admin/v1/audit?target=user:{user_id}&action=login.succeeded"),
            &admin,
            None,
        )
        .await;
    // Three logins: password only, for self-service, and with the code.
    assert_eq!(body(&audit)["events"].as_array().map(Vec::len), Some(3));
}

/// Scenario 3: reusing a rotated refresh token revokes the family, and Envoy rejects the
/// family's access tokens within the propagation bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_reuse_revokes_the_family_at_envoy() {
    let url = portcullis_tests::control_plane::sqlite_url("reuse");
    let plane = ControlPlane::start_with(
        portcullis_tests::free_port(),
        &url,
        &[("PORTCULLIS_REFRESH_GRACE", "1")],
    );
    let s = Stack::around(plane).await;
    let port = s.envoy.port;
    let web = s
        .plane
        .create_client("web", "api:items:read", &["password", "refresh_token"])
        .await;
    let admin_client = s
        .plane
        .create_client("ops", "admin:users api:items:read", &["client_credentials"])
        .await;
    let admin = s.plane.admin_token(&admin_client).await;
    s.plane
        .admin("POST", "/admin/v1/users", &admin, Some(&json!({"username": "max", "password": "correct horse battery", "scopes": "api:items:read"})))
        .await;
    let login = body(
        &s.plane
            .token(
                &web,
                &[
                    ("grant_type", "password"),
                    ("username", "max"),
                    ("password", "correct horse battery"),
                ],
            )
            .await,
    );
    let old_refresh = login["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let rotated = body(
        &s.plane
            .token(
                &web,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &old_refresh),
                ],
            )
            .await,
    );
    let access = rotated["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(get(port, "/api/items", Some(&access)).await.status, 200);
    // `used_at` has second resolution: past a 1 s grace for certain means 2 s later.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let reuse = s
        .plane
        .token(
            &web,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &old_refresh),
            ],
        )
        .await;
    assert_eq!(body(&reuse)["error"], "invalid_grant");
    let took = status_within(port, "/api/items", &access, 401, PROPAGATION).await;
    assert!(
        took.is_some(),
        "the family's access token still passes Envoy"
    );
    let first_access = login["access_token"].as_str().unwrap_or_default();
    assert_eq!(
        get(port, "/api/items", Some(first_access)).await.status,
        401
    );
}

/// Scenario 8: the database goes away. The token endpoint answers 503 quickly, readiness fails,
/// the edge keeps deciding; after recovery nothing is half-written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_degrades_cleanly() {
    let db = postgres_db().await;
    let proxy = CuttableProxy::start(5432).await;
    let proxied = db.url.replace(":5432/", &format!(":{}/", proxy.port));
    let s = Stack::around(ControlPlane::start(&proxied)).await;
    let port = s.envoy.port;
    let service = s
        .plane
        .create_client("svc", "api:items:read", &["client_credentials"])
        .await;
    let web = s
        .plane
        .create_client("web", "api:items:read", &["password"])
        .await;
    let admin_client = s
        .plane
        .create_client("ops", "admin:users api:items:read", &["client_credentials"])
        .await;
    let admin = s.plane.admin_token(&admin_client).await;
    s.plane
        .admin("POST", "/admin/v1/users", &admin, Some(&json!({"username": "nia", "password": "correct horse battery", "scopes": "api:items:read"})))
        .await;
    let token = s.plane.client_token(&service, None).await;

    proxy.cut();
    let started = Instant::now();
    let reply = s
        .plane
        .token(&service, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(
        reply.status,
        503,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "503 took {:?}",
        started.elapsed()
    );
    assert_eq!(body(&reply)["error"], "temporarily_unavailable");
    let login = s
        .plane
        .token(
            &web,
            &[
                ("grant_type", "password"),
                ("username", "nia"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(login.status, 503);
    assert_eq!(
        s.plane.call("GET", "/readyz", None, None, "").await.status,
        503
    );
    assert_eq!(
        s.plane.call("GET", "/healthz", None, None, "").await.status,
        200
    );
    // The edge is unaffected.
    for _ in 0..5 {
        assert_eq!(get(port, "/api/items", Some(&token)).await.status, 200);
        assert_eq!(get(port, "/api/items", Some("garbage")).await.status, 401);
    }

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if s.plane
            .token(
                &web,
                &[
                    ("grant_type", "password"),
                    ("username", "nia"),
                    ("password", "correct horse battery"),
                ],
            )
            .await
            .status
            == 200
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the control plane never recovered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        s.plane.call("GET", "/readyz", None, None, "").await.status,
        200
    );
    // Nothing half-written: every session has its login audit row, and the chain verifies.
    let pool = portcullis_control_plane::infra::db::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
        .fetch_one(&pool.pool)
        .await
        .unwrap_or(-1);
    let logins: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'login.succeeded'")
            .fetch_one(&pool.pool)
            .await
            .unwrap_or(-2);
    assert_eq!(sessions, logins);
    assert_eq!(sessions, 1);
    assert!(
        portcullis_control_plane::audit::verify(&pool.pool, &test_master_key())
            .await
            .is_ok()
    );
    pool.pool.close().await;
}

/// Scenario 10: two replicas share Postgres; Envoy follows one, tokens come from and are
/// revoked on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_replica_is_enforced_through_the_other() {
    let db = postgres_db().await;
    // Replicas share one public issuer (in production: the load balancer's URL).
    let shared = [("PORTCULLIS_ISSUER", "https://id.portcullis.test")];
    let issuing = ControlPlane::start_with(portcullis_tests::free_port(), &db.url, &shared);
    let s = Stack::around(ControlPlane::start_with(
        portcullis_tests::free_port(),
        &db.url,
        &shared,
    ))
    .await;
    let port = s.envoy.port;
    let service = issuing
        .create_client("svc", "api:items:read", &["client_credentials"])
        .await;
    let token = issuing.client_token(&service, None).await;
    assert_eq!(get(port, "/api/items", Some(&token)).await.status, 200);
    assert_eq!(issuing.revoke(&service, &token).await.status, 200);
    let took = status_within(port, "/api/items", &token, 401, PROPAGATION).await;
    assert!(
        took.is_some(),
        "revocation on replica A never reached Envoy through replica B"
    );
    eprintln!(
        "cross-replica revocation reached Envoy in {:?}",
        took.unwrap_or_default()
    );
    // Tokens from either replica work.
    let from_b = s.plane.client_token(&service, None).await;
    assert_eq!(get(port, "/api/items", Some(&from_b)).await.status, 200);
}

/// Scenario 4 (logout): revoking the refresh token ends the session, and the session's access
/// token is rejected at Envoy within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_at_envoy() {
    let s = Stack::start(&portcullis_tests::control_plane::sqlite_url("logout")).await;
    let port = s.envoy.port;
    let web = s
        .plane
        .create_client("web", "api:items:read", &["password", "refresh_token"])
        .await;
    let admin_client = s
        .plane
        .create_client("ops", "admin:users api:items:read", &["client_credentials"])
        .await;
    let admin = s.plane.admin_token(&admin_client).await;
    s.plane
        .admin("POST", "/admin/v1/users", &admin, Some(&json!({"username": "olga", "password": "correct horse battery", "scopes": "api:items:read"})))
        .await;
    let login = body(
        &s.plane
            .token(
                &web,
                &[
                    ("grant_type", "password"),
                    ("username", "olga"),
                    ("password", "correct horse battery"),
                ],
            )
            .await,
    );
    let access = login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(get(port, "/api/items", Some(&access)).await.status, 200);
    let refresh = login["refresh_token"].as_str().unwrap_or_default();
    assert_eq!(s.plane.revoke(&web, refresh).await.status, 200);
    assert!(status_within(port, "/api/items", &access, 401, PROPAGATION)
        .await
        .is_some());
}

/// Scenario 9: the control plane restarts (same Postgres, same port); revocations, sessions,
/// keys, policies and the audit chain are all intact, and Envoy keeps deciding the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_loses_nothing() {
    let db = postgres_db().await;
    let port_cp = portcullis_tests::free_port();
    let mut s = Stack::around(ControlPlane::start_with(port_cp, &db.url, &[])).await;
    let port = s.envoy.port;
    let service = s
        .plane
        .create_client("svc", "api:items:read", &["client_credentials"])
        .await;
    let web = s
        .plane
        .create_client("web", "api:items:read", &["password", "refresh_token"])
        .await;
    let ops = s
        .plane
        .create_client("ops", "admin:full", &["client_credentials"])
        .await;
    let admin = s.plane.admin_token(&ops).await;
    s.plane
        .admin("POST", "/admin/v1/users", &admin, Some(&json!({"username": "pia", "password": "correct horse battery", "scopes": "api:items:read"})))
        .await;
    let login = body(
        &s.plane
            .token(
                &web,
                &[
                    ("grant_type", "password"),
                    ("username", "pia"),
                    ("password", "correct horse battery"),
                ],
            )
            .await,
    );
    let revoked = s.plane.client_token(&service, None).await;
    let kept = s.plane.client_token(&service, None).await;
    s.plane.revoke(&service, &revoked).await;
    assert!(
        status_within(port, "/api/items", &revoked, 401, PROPAGATION)
            .await
            .is_some()
    );
    let jwks_before = s
        .plane
        .call("GET", "/.well-known/jwks.json", None, None, "")
        .await
        .json();
    let policies_before = body(
        &s.plane
            .admin("GET", "/admin/v1/policies/versions", &admin, None)
            .await,
    );

    s.plane.stop();
    s.plane = ControlPlane::start_with(port_cp, &db.url, &[]);

    assert_eq!(
        s.plane
            .call("GET", "/.well-known/jwks.json", None, None, "")
            .await
            .json(),
        jwks_before
    );
    let admin = s.plane.admin_token(&ops).await;
    assert_eq!(
        body(
            &s.plane
                .admin("GET", "/admin/v1/policies/versions", &admin, None)
                .await
        ),
        policies_before
    );
    // The session survives: its refresh token still rotates.
    let refreshed = s
        .plane
        .token(
            &web,
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    login["refresh_token"].as_str().unwrap_or_default(),
                ),
            ],
        )
        .await;
    assert_eq!(
        refreshed.status,
        200,
        "{}",
        String::from_utf8_lossy(&refreshed.body)
    );
    // The revocation survives, at Envoy and in the control plane's own verification.
    assert_eq!(get(port, "/api/items", Some(&revoked)).await.status, 401);
    assert_eq!(get(port, "/api/items", Some(&kept)).await.status, 200);
    let authorize = s
        .plane
        .call(
            "POST",
            "/v1/authorize",
            Some(&portcullis_tests::control_plane::basic(&service)),
            Some("application/json"),
            &json!({"token": revoked, "method": "GET", "path": "/api/items"}).to_string(),
        )
        .await;
    assert_eq!(body(&authorize)["reason"], "revoked");
    // The audit chain verifies across the restart.
    let pool = portcullis_control_plane::infra::db::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let rows = portcullis_control_plane::audit::verify(&pool.pool, &test_master_key())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(rows >= 5, "{rows}");
    pool.pool.close().await;
}

/// The master key every test control plane runs with.
fn test_master_key() -> portcullis_control_plane::keys::secrets::MasterKey {
    portcullis_control_plane::keys::secrets::MasterKey::from_base64(
        portcullis_tests::control_plane::MASTER_KEY,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}
