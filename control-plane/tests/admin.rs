//! Admin API, self-service and the audit chain over SQLite and PostgreSQL.

mod common;

use axum::http::{Method, StatusCode};
use common::{config, Call, Reply, TestApp, TestDb};
use serde_json::json;

async fn admin_scopes(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    assert_eq!(
        app.get("/admin/v1/users").await.status,
        StatusCode::UNAUTHORIZED
    );
    let (id, secret) = app
        .client("reader", "admin:audit", &["client_credentials"])
        .await;
    let audit_only = app.cc_token(&id, &secret, None).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let denied = app
        .send(Call::new(Method::GET, "/admin/v1/users").bearer(&audit_only))
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(denied
        .header("www-authenticate")
        .unwrap()
        .contains("insufficient_scope"));
    let allowed = app
        .send(Call::new(Method::GET, "/admin/v1/audit").bearer(&audit_only))
        .await;
    assert_eq!(allowed.status, StatusCode::OK);
    // A forged token (right shape, unknown key) is refused.
    let forged = portcullis_authz::issue::SigningKey::ed25519("k-forged", [9; 32]).sign_access_token(&json!({
        "iss": common::ISSUER, "sub": "client:x", "aud": ["portcullis-edge"], "exp": portcullis_control_plane::now() + 60,
        "iat": portcullis_control_plane::now(), "jti": "j", "client_id": "x", "scope": "admin:full"
    }));
    let reply = app
        .send(Call::new(Method::GET, "/admin/v1/users").bearer(&forged))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}
both_backends!(admin_api_needs_admin_scopes, admin_scopes);

async fn no_escalation(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let (id, secret) = app
        .client(
            "client-admin",
            "admin:clients admin:users api:items:read",
            &["client_credentials"],
        )
        .await;
    let partial = app.control_plane_token(&id, &secret).await;
    // A partial administrator cannot mint a more powerful client or user…
    let client = app
        .send(
            Call::new(Method::POST, "/admin/v1/clients")
                .bearer(&partial)
                .json(&json!({"name": "x", "scopes": "admin:full"})),
        )
        .await;
    assert_eq!(client.status, StatusCode::FORBIDDEN, "{}", client.text);
    let user = app
        .send(Call::new(Method::POST, "/admin/v1/users").bearer(&partial).json(&json!({"username": "evil", "password": "correct horse battery", "scopes": "admin:keys"})))
        .await;
    assert_eq!(user.status, StatusCode::FORBIDDEN);
    // …but may grant scopes it holds, and admin:full may grant admin scopes.
    let ordinary = app
        .send(
            Call::new(Method::POST, "/admin/v1/clients")
                .bearer(&partial)
                .json(&json!({"name": "y", "scopes": "api:items:read"})),
        )
        .await;
    assert_eq!(ordinary.status, StatusCode::CREATED);
    let full = app.admin_token().await;
    let granted = app
        .send(
            Call::new(Method::POST, "/admin/v1/clients")
                .bearer(&full)
                .json(&json!({"name": "z", "scopes": "admin:audit"})),
        )
        .await;
    assert_eq!(granted.status, StatusCode::CREATED);
}
both_backends!(partial_admins_cannot_grant_admin_scopes, no_escalation);

const FRANK_PASSWORD: &str = "correct horse battery";

/// An app and an admin token for it.
async fn app_and_admin(db: &TestDb) -> (TestApp, String) {
    let app = TestApp::start(config(db, &[])).await;
    let admin = app.admin_token().await;
    (app, admin)
}

/// Creates `frank` (every field given) through the admin API.
async fn create_frank(app: &TestApp, admin: &str) -> Reply {
    app.send(
        Call::new(Method::POST, "/admin/v1/users")
            .bearer(admin)
            .json(&json!({
                "username": "frank", "password": FRANK_PASSWORD, "email": "frank@example.test",
                "roles": ["viewer"], "scopes": "a b", "tenant": "acme"
            })),
    )
    .await
}

/// `frank`'s id, for tests about what comes after his creation.
async fn frank(app: &TestApp, admin: &str) -> String {
    let created = create_frank(app, admin).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    created.json()["user_id"].as_str().unwrap().to_owned()
}

/// A password-and-refresh client for `frank`'s scopes.
async fn web_client(app: &TestApp) -> (String, String) {
    app.client("web", "a b", &["password", "refresh_token"])
        .await
}

/// `frank` with a row in every table erasure clears: a session that disabling him ended, and a
/// refused sign-in from 203.0.113.7 afterwards; his id.
async fn disabled_frank(app: &TestApp, admin: &str) -> String {
    let user_id = frank(app, admin).await;
    let (web_id, web_secret) = web_client(app).await;
    let login = app
        .login((&web_id, &web_secret), "frank", FRANK_PASSWORD, &[])
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    let disabled = app
        .send(Call::new(Method::POST, &format!("/admin/v1/users/{user_id}/disable")).bearer(admin))
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.text);
    let attempt = app
        .send(
            Call::new(Method::POST, "/oauth2/token")
                .basic(&web_id, &web_secret)
                .client_ip("203.0.113.7")
                .form(&[
                    ("grant_type", "password"),
                    ("username", "frank"),
                    ("password", "not the password"),
                ]),
        )
        .await;
    assert_eq!(attempt.json()["error"], "invalid_grant");
    user_id
}

async fn user_creation(db: &TestDb) {
    let (app, admin) = app_and_admin(db).await;
    let call = |method: Method, path: &str| Call::new(method, path).bearer(&admin);
    // Weak and common passwords are refused.
    let weak = app
        .send(
            call(Method::POST, "/admin/v1/users")
                .json(&json!({"username": "frank", "password": "password1"})),
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert_eq!(weak.json()["error"], "invalid_request");
    let created = create_frank(&app, &admin).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert!(!created.text.contains("argon2"));
    let user_id = created.json()["user_id"].as_str().unwrap().to_owned();
    let dup = app
        .send(
            call(Method::POST, "/admin/v1/users")
                .json(&json!({"username": "frank", "password": FRANK_PASSWORD})),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    // Malformed JSON and unknown fields: clear 400s.
    let bad = app
        .send(call(Method::POST, "/admin/v1/users").raw("application/json", "{not json"))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let unknown = app
        .send(
            call(Method::PATCH, &format!("/admin/v1/users/{user_id}"))
                .json(&json!({"is_admin": true})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}
both_backends!(
    users_need_a_strong_password_a_free_name_and_a_well_formed_body,
    user_creation
);

async fn user_update(db: &TestDb) {
    let (app, admin) = app_and_admin(db).await;
    let user_id = frank(&app, &admin).await;
    let updated = app
        .send(
            Call::new(Method::PATCH, &format!("/admin/v1/users/{user_id}"))
                .bearer(&admin)
                .json(&json!({"roles": ["developer"], "tenant": "globex"})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.json()["roles"], json!(["developer"]));
    assert_eq!(updated.json()["tenant"], "globex");
}
both_backends!(an_update_changes_a_users_roles_and_tenant, user_update);

async fn user_paging(db: &TestDb) {
    let (app, admin) = app_and_admin(db).await;
    let call = |method: Method, path: &str| Call::new(method, path).bearer(&admin);
    frank(&app, &admin).await;
    app.user("frida", FRANK_PASSWORD, &[], "").await;
    app.user("zed", FRANK_PASSWORD, &[], "").await;
    let page = app
        .send(call(Method::GET, "/admin/v1/users?prefix=fr&limit=1"))
        .await
        .json();
    assert_eq!(page["users"].as_array().unwrap().len(), 1);
    let after = page["next_after"].as_str().unwrap();
    let page2 = app
        .send(call(
            Method::GET,
            &format!("/admin/v1/users?prefix=fr&limit=10&after={after}"),
        ))
        .await
        .json();
    assert_eq!(page2["users"].as_array().unwrap().len(), 1);
}
both_backends!(users_are_listed_by_prefix_page_after_page, user_paging);

async fn user_disable(db: &TestDb) {
    let (app, admin) = app_and_admin(db).await;
    let call = |method: Method, path: &str| Call::new(method, path).bearer(&admin);
    let user_id = frank(&app, &admin).await;
    let (web_id, web_secret) = web_client(&app).await;
    let login = app
        .login((&web_id, &web_secret), "frank", FRANK_PASSWORD, &[])
        .await
        .json();
    let access = login["access_token"].as_str().unwrap().to_owned();
    let sessions = app
        .send(call(
            Method::GET,
            &format!("/admin/v1/sessions?user_id={user_id}"),
        ))
        .await
        .json();
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);
    let disabled = app
        .send(call(
            Method::POST,
            &format!("/admin/v1/users/{user_id}/disable"),
        ))
        .await;
    assert_eq!(disabled.json()["sessions_ended"], 1);
    assert_eq!(
        app.introspect((&web_id, &web_secret), &access).await,
        json!({"active": false})
    );
    let refresh = app
        .send(
            Call::new(Method::POST, "/oauth2/token")
                .basic(&web_id, &web_secret)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", login["refresh_token"].as_str().unwrap()),
                ]),
        )
        .await;
    assert_eq!(refresh.json()["error"], "invalid_grant");
    let relogin = app
        .login((&web_id, &web_secret), "frank", FRANK_PASSWORD, &[])
        .await;
    assert_eq!(relogin.json()["error"], "invalid_grant");
}
both_backends!(
    disabling_a_user_ends_their_sessions_and_refuses_their_tokens,
    user_disable
);

async fn user_export(db: &TestDb) {
    let (app, admin) = app_and_admin(db).await;
    let call = |method: Method, path: &str| Call::new(method, path).bearer(&admin);
    let user_id = disabled_frank(&app, &admin).await;
    let export = app
        .send(call(
            Method::GET,
            &format!("/admin/v1/users/{user_id}/export"),
        ))
        .await
        .json();
    assert_eq!(export["user"]["username"], "frank");
    assert!(export["audit"].as_array().unwrap().len() >= 2);
    assert_eq!(
        export["sessions"].as_array().unwrap().len(),
        1,
        "the export holds ended sessions too"
    );
    assert!(
        export["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == format!("user:{user_id}").as_str()),
        "the export holds what the user did, not only what was done to them"
    );
    // Paged: page by page, the same rows as in one piece.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = app
            .send(call(
                Method::GET,
                &format!("/admin/v1/users/{user_id}/export?limit=1&after={after}"),
            ))
            .await
            .json();
        paged.extend(
            page["audit"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].clone()),
        );
        match page["next_after"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    let whole: Vec<_> = export["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].clone())
        .collect();
    assert_eq!(paged, whole);
}
both_backends!(
    a_users_export_holds_their_sessions_and_audit_in_one_piece_or_paged,
    user_export
);

async fn user_erasure(db: &TestDb) {
    let (app, admin) = app_and_admin(db).await;
    let call = |method: Method, path: &str| Call::new(method, path).bearer(&admin);
    let user_id = disabled_frank(&app, &admin).await;
    let deleted = app
        .send(call(Method::DELETE, &format!("/admin/v1/users/{user_id}")))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    for table in ["sessions", "refresh_tokens"] {
        let left: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&app.state.db().pool)
            .await
            .unwrap();
        assert_eq!(left, 0, "erasure leaves no {table} rows");
    }
    let revoked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM revocations WHERE sid IS NOT NULL")
        .fetch_one(&app.state.db().pool)
        .await
        .unwrap();
    assert!(
        revoked >= 1,
        "the edge still refuses the erased user's tokens"
    );
    assert_eq!(
        app.send(call(Method::GET, &format!("/admin/v1/users/{user_id}")))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let audit = app
        .send(call(Method::GET, "/admin/v1/audit?format=ndjson"))
        .await;
    assert_eq!(
        audit.header("content-type").as_deref(),
        Some("application/x-ndjson")
    );
    assert!(audit.text.contains(&format!("user:{user_id}")));
    assert!(audit.text.contains("user.deleted"));
    assert!(
        !audit.text.contains("frank"),
        "audit must not keep the deleted user's name"
    );
    assert!(!audit.text.contains("correct horse"));
    assert!(
        !audit.text.contains("203.0.113.7"),
        "erasure blanks the addresses of the user's audit rows"
    );
    let about_user: Vec<serde_json::Value> = audit
        .text
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|row| row["target"] == format!("user:{user_id}").as_str())
        .collect();
    assert!(
        about_user.iter().all(|row| row["client_ip_pseudonym"]
            .as_str()
            .is_some_and(|p| p.len() == 32)),
        "the user's rows keep a pseudonym of their address: {about_user:?}"
    );
    assert_eq!(
        portcullis_control_plane::audit::verify(&app.state.db().pool, app.state.master())
            .await
            .map(|rows| rows > 0),
        Ok(true),
        "the chain still verifies after the erasure"
    );
    let filtered = app
        .send(call(Method::GET, "/admin/v1/audit?action=user.disabled"))
        .await
        .json();
    let events = filtered["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["target"], format!("user:{user_id}"));
}
both_backends!(
    erasing_a_user_leaves_a_verifiable_audit_trail_without_their_personal_data,
    user_erasure
);

async fn client_lifecycle(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let admin = app.admin_token().await;
    let call = |method: Method, path: &str| Call::new(method, path).bearer(&admin);
    let created = app
        .send(
            call(Method::POST, "/admin/v1/clients")
                .json(&json!({"name": "billing", "scopes": "a b"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let body = created.json();
    let (id, secret) = (
        body["client_id"].as_str().unwrap().to_owned(),
        body["client_secret"].as_str().unwrap().to_owned(),
    );
    // ≥ 128 bits of secret.
    assert!(secret.len() >= 4 + 43);
    assert_eq!(
        app.cc_token(&id, &secret, None).await.status,
        StatusCode::OK
    );
    // Listing never shows secrets.
    let listed = app.send(call(Method::GET, "/admin/v1/clients")).await;
    assert!(!listed.text.contains(&secret));
    // Rotation: both secrets work during the overlap.
    let rotated = app
        .send(call(
            Method::POST,
            &format!("/admin/v1/clients/{id}/rotate-secret"),
        ))
        .await
        .json();
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(
        app.cc_token(&id, &new_secret, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.cc_token(&id, &secret, None).await.status,
        StatusCode::OK
    );
    // Narrow the scopes.
    let updated = app
        .send(call(Method::PATCH, &format!("/admin/v1/clients/{id}")).json(&json!({"scopes": "a"})))
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(
        app.cc_token(&id, &new_secret, None).await.json()["scope"],
        "a"
    );
    // Statistics.
    let stats = app
        .send(call(Method::GET, &format!("/admin/v1/clients/{id}")))
        .await
        .json();
    assert_eq!(stats["stats"]["tokens_issued"], 4);
    // Disable: no more tokens, and its outstanding tokens are revoked.
    let token = app.cc_token(&id, &new_secret, None).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.send(
        call(Method::PATCH, &format!("/admin/v1/clients/{id}")).json(&json!({"disabled": true})),
    )
    .await;
    assert_eq!(
        app.cc_token(&id, &new_secret, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let (rs, rs_secret) = app
        .client("rs", "introspect", &["client_credentials"])
        .await;
    assert_eq!(
        app.introspect((&rs, &rs_secret), &token).await,
        json!({"active": false})
    );
}
both_backends!(client_lifecycle_with_rotation_and_disable, client_lifecycle);

async fn totp_flow(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let (id, secret) = app
        .client("web", "a self", &["password", "refresh_token"])
        .await;
    app.user("gina", "correct horse battery", &[], "a").await;
    let login = app
        .login(
            (&id, &secret),
            "gina",
            "correct horse battery",
            &[("scope", "self")],
        )
        .await
        .json();
    let access = login["access_token"].as_str().unwrap().to_owned();
    // Enrolment needs the current password.
    let wrong = app
        .send(
            Call::new(Method::POST, "/v1/me/totp")
                .bearer(&access)
                .json(&json!({"current_password": "nope nope nope"})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let enrol = app
        .send(
            Call::new(Method::POST, "/v1/me/totp")
                .bearer(&access)
                .json(&json!({"current_password": "correct horse battery"})),
        )
        .await
        .json();
    let base32 = enrol["secret"].as_str().unwrap();
    assert!(enrol["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    let key = portcullis_control_plane::identity::totp::decode_base32(base32).unwrap();
    let now = portcullis_control_plane::now();
    // Confirm with the current step and log in with the next: both stay inside the server's
    // ±1 window even if a step boundary passes meanwhile, and the login step is a later one.
    let step = now / 30;
    let confirm = app
        .send(
            Call::new(Method::POST, "/v1/me/totp/confirm")
                .bearer(&access)
                .json(&json!({"code": portcullis_control_plane::identity::totp::code(&key, step)})),
        )
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.text);
    // Now a password alone is not enough.
    let no_otp = app
        .login((&id, &secret), "gina", "correct horse battery", &[])
        .await;
    assert_eq!(no_otp.json()["error"], "invalid_grant");
    let code = portcullis_control_plane::identity::totp::code(&key, step + 1);
    let with_otp = app
        .login(
            (&id, &secret),
            "gina",
            "correct horse battery",
            &[("otp", &code), ("scope", "self")],
        )
        .await;
    assert_eq!(with_otp.status, StatusCode::OK, "{}", with_otp.text);
    let claims = with_otp.json()["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .map(|p| {
            use base64::Engine as _;
            serde_json::from_slice::<serde_json::Value>(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .unwrap(),
            )
            .unwrap()
        })
        .unwrap();
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    // The same code again: refused (single use).
    let replay = app
        .login(
            (&id, &secret),
            "gina",
            "correct horse battery",
            &[("otp", &code)],
        )
        .await;
    assert_eq!(replay.json()["error"], "invalid_grant");
    // Own sessions, and ending one.
    let sessions = app
        .send(Call::new(Method::GET, "/v1/me/sessions").bearer(&access))
        .await
        .json();
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 2);
    // Password change ends the other sessions.
    let new_access = with_otp.json()["access_token"].as_str().unwrap().to_owned();
    // It needs a current code too (the login took step + 1).
    let (next_code, _) = common::totp_code_after(&key, step + 1).await;
    let changed = app
        .send(
            Call::new(Method::POST, "/v1/me/password")
                .bearer(&new_access)
                .json(&json!({
                    "current_password": "correct horse battery", "current_otp": next_code,
                    "new_password": "battery staple horse", "end_other_sessions": true
                })),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.json()["sessions_ended"], 1);
    assert_eq!(
        app.introspect((&id, &secret), &access).await,
        json!({"active": false})
    );
    assert_eq!(
        app.introspect((&id, &secret), &new_access).await["active"],
        true
    );
}
both_backends!(totp_enrolment_login_and_self_service, totp_flow);

async fn audit_chain(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let (id, secret) = app.client("svc", "a", &["client_credentials"]).await;
    for _ in 0..5 {
        app.cc_token(&id, &secret, None).await;
    }
    let pool = &app.state.db().pool;
    let verified = portcullis_control_plane::audit::verify(pool, app.state.master())
        .await
        .unwrap();
    assert!(verified >= 6, "{verified}");
    // Tampering with one row is detected.
    sqlx::query("UPDATE audit_log SET outcome = 'failure' WHERE seq = 3")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        portcullis_control_plane::audit::verify(pool, app.state.master()).await,
        Err(portcullis_control_plane::audit::ChainError::Broken(3))
    );
    sqlx::query("UPDATE audit_log SET outcome = 'success' WHERE seq = 3")
        .execute(pool)
        .await
        .unwrap();
    assert!(
        portcullis_control_plane::audit::verify(pool, app.state.master())
            .await
            .is_ok()
    );
    // Deleting the newest row is detected through the head.
    sqlx::query("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        portcullis_control_plane::audit::verify(pool, app.state.master()).await,
        Err(portcullis_control_plane::audit::ChainError::Head)
    );
}
both_backends!(audit_chain_detects_tampering, audit_chain);

async fn operations(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
    let (id, secret) = app.client("svc", "a", &["client_credentials"]).await;
    app.cc_token(&id, &secret, None).await;
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics.contains("portcullis_tokens_issued_total{grant=\"client_credentials\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("portcullis_token_request_seconds_bucket"));
    // Every documented route exists (no 404/405 from the router).
    let doc = app.get("/openapi.json").await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("the document has paths");
    let mut operations = 0;
    for (template, methods) in paths {
        for (method, operation) in methods.as_object().unwrap() {
            operations += 1;
            assert!(
                operation["responses"].is_object(),
                "{method} {template} documents its responses"
            );
            let path = template.replace("{id}", "x").replace("{version}", "1");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let reply = app.send(Call::new(method.clone(), &path)).await;
            assert!(
                reply.status != StatusCode::NOT_FOUND
                    && reply.status != StatusCode::METHOD_NOT_ALLOWED
                    || reply.json()["error"] == "not_found",
                "{method} {template} → {}",
                reply.status
            );
        }
    }
    assert!(operations >= 42, "every route is documented: {operations}");
    for scheme in ["bearer", "clientBasic", "bundleCredential"] {
        assert!(
            doc["components"]["securitySchemes"][scheme].is_object(),
            "{scheme} is a security scheme"
        );
    }
    let create_user = &doc["paths"]["/admin/v1/users"]["post"];
    assert_eq!(
        create_user["security"][0]["bearer"][0], "admin:users",
        "an admin operation names the scope it needs"
    );
    assert!(
        create_user["requestBody"]["content"]["application/json"]["schema"].is_object(),
        "a request body has a schema: {create_user}"
    );
}
both_backends!(health_metrics_and_openapi, operations);

async fn disabling_a_client_ends_its_user_sessions(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let admin = app.admin_token().await;
    let (web, web_secret) = app.client("web", "a", &["password", "refresh_token"]).await;
    app.user("rita", "correct horse battery", &[], "a").await;
    let login = app
        .login((&web, &web_secret), "rita", "correct horse battery", &[])
        .await
        .json();
    let access = login["access_token"].as_str().unwrap().to_owned();
    let (rs, rs_secret) = app
        .client("rs", "introspect", &["client_credentials"])
        .await;
    assert_eq!(
        app.introspect((&rs, &rs_secret), &access).await["active"],
        true
    );
    let reply = app
        .send(
            Call::new(Method::PATCH, &format!("/admin/v1/clients/{web}"))
                .bearer(&admin)
                .json(&json!({"disabled": true})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    // The user's token, issued through that client, is revoked with it.
    assert_eq!(
        app.introspect((&rs, &rs_secret), &access).await,
        json!({"active": false})
    );
    let sessions = app
        .send(Call::new(Method::GET, "/admin/v1/sessions").bearer(&admin))
        .await
        .json();
    assert_eq!(sessions["sessions"].as_array().map(Vec::len), Some(0));
}
both_backends!(
    disabling_a_client_ends_user_sessions_through_it,
    disabling_a_client_ends_its_user_sessions
);

async fn scope_shapes(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let admin = app.admin_token().await;
    let create = |username: &str, scopes: serde_json::Value| {
        Call::new(Method::POST, "/admin/v1/users").bearer(&admin).json(
            &json!({"username": username, "password": "correct horse battery", "scopes": scopes}),
        )
    };
    let listed = app
        .send(create("listed", json!(["api:read", "self"])))
        .await;
    assert_eq!(listed.status, StatusCode::CREATED, "{}", listed.text);
    assert_eq!(
        listed.json()["scopes"],
        json!(["api:read", "self"]),
        "a list in the request comes back as the same list"
    );
    let spaced = app.send(create("spaced", json!("api:read self"))).await;
    assert_eq!(spaced.status, StatusCode::CREATED, "{}", spaced.text);
    assert_eq!(
        spaced.json()["scopes"],
        json!(["api:read", "self"]),
        "the space-separated form is still accepted and reads the same"
    );
    let id = listed.json()["user_id"].as_str().unwrap().to_owned();
    let patched = app
        .send(
            Call::new(Method::PATCH, &format!("/admin/v1/users/{id}"))
                .bearer(&admin)
                .json(&json!({"scopes": ["self"]})),
        )
        .await;
    assert_eq!(
        patched.json()["scopes"],
        json!(["self"]),
        "{}",
        patched.text
    );
    let blank = app.send(create("blank", json!(["api:read", "a b"]))).await;
    assert_eq!(
        blank.status,
        StatusCode::BAD_REQUEST,
        "a list item with a space is not one scope: {}",
        blank.text
    );
}
both_backends!(scopes_are_a_list_in_requests_as_in_responses, scope_shapes);
