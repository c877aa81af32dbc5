//! Sessions and credential changes: a user holds at most `PORTCULLIS_MAX_SESSIONS` sessions (the
//! oldest ends); ending the other sessions ends all of them in one go; changing the password or
//! removing TOTP needs a current one-time code when TOTP is enrolled and ends the other sessions;
//! Basic authentication with a different `client_id` in the body is refused.

mod common;

use axum::http::{Method, StatusCode};
use common::{config, Call, TestApp, TestDb};
use serde_json::json;

const PASSWORD: &str = "correct horse battery";

/// Live sessions of `user_id`, counted in the database.
async fn live_sessions(app: &TestApp, user_id: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(user_id)
    .bind(portcullis_control_plane::now())
    .fetch_one(&app.state.db().pool)
    .await
    .unwrap()
}

async fn user_id(app: &TestApp, username: &str) -> String {
    sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
        .bind(username)
        .fetch_one(&app.state.db().pool)
        .await
        .unwrap()
}

/// The stored password hash and sealed TOTP secret.
async fn credentials(app: &TestApp, username: &str) -> (String, Option<String>) {
    sqlx::query_as("SELECT password_hash, totp_secret FROM users WHERE username = $1")
        .bind(username)
        .fetch_one(&app.state.db().pool)
        .await
        .unwrap()
}

async fn refresh(app: &TestApp, client: &(String, String), token: &str) -> StatusCode {
    app.send(
        Call::new(Method::POST, "/oauth2/token")
            .basic(&client.0, &client.1)
            .form(&[("grant_type", "refresh_token"), ("refresh_token", token)]),
    )
    .await
    .status
}

async fn session_cap(db: &TestDb) {
    let app = TestApp::start(config(db, &[("PORTCULLIS_MAX_SESSIONS", "3")])).await;
    let client = app.client("web", "a", &["password", "refresh_token"]).await;
    app.user("sam", PASSWORD, &[], "a").await;
    let mut refresh_tokens = Vec::new();
    for _ in 0..4 {
        let login = app
            .login((&client.0, &client.1), "sam", PASSWORD, &[])
            .await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.text);
        refresh_tokens.push(login.json()["refresh_token"].as_str().unwrap().to_owned());
        // Sessions are ordered by their opening second.
        tokio::time::sleep(std::time::Duration::from_millis(1010)).await;
    }
    assert_eq!(live_sessions(&app, &user_id(&app, "sam").await).await, 3);
    assert_eq!(
        refresh(&app, &client, &refresh_tokens[0]).await,
        StatusCode::BAD_REQUEST,
        "the oldest session ended when the fourth opened"
    );
    for (i, token) in refresh_tokens.iter().enumerate().skip(1) {
        assert_eq!(
            refresh(&app, &client, token).await,
            StatusCode::OK,
            "session {i} is within the cap"
        );
    }
}
both_backends!(
    a_sign_in_beyond_the_session_cap_ends_the_oldest,
    session_cap
);

/// Signs `username` in with scope `self`; the access token.
async fn self_token(
    app: &TestApp,
    client: &(String, String),
    username: &str,
    otp: Option<&str>,
) -> String {
    let mut extra = vec![("scope", "self")];
    if let Some(otp) = otp {
        extra.push(("otp", otp));
    }
    let login = app
        .login((&client.0, &client.1), username, PASSWORD, &extra)
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    common::access_token(&login)
}

async fn all_other_sessions(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let client = app.client("web", "a self", &["password"]).await;
    app.user("tess", PASSWORD, &["self"], "a").await;
    let access = self_token(&app, &client, "tess", None).await;
    let id = user_id(&app, "tess").await;
    // 1,500 other sessions: more than any listing page holds.
    let mut tx = app.state.db().pool.begin().await.unwrap();
    let now = portcullis_control_plane::now();
    for i in 0..1500 {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, client_id, scope, amr, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, 'a', 'pwd', $4, $5, NULL)",
        )
        .bind(format!("bulk-{i}"))
        .bind(&id)
        .bind(&client.0)
        .bind(now - 10)
        .bind(now + 3600)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let changed = app
        .send(
            Call::new(Method::POST, "/v1/me/password")
                .bearer(&access)
                .json(&json!({
                    "current_password": PASSWORD, "new_password": "battery staple horse"
                })),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.json()["sessions_ended"], 1500);
    assert_eq!(
        live_sessions(&app, &id).await,
        1,
        "only the caller's own session lives"
    );
    let revoked: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM revocations WHERE sid LIKE 'bulk-%'")
            .fetch_one(&app.state.db().pool)
            .await
            .unwrap();
    assert_eq!(
        revoked, 1500,
        "every ended session's access tokens are revoked at the edge"
    );
}
both_backends!(
    a_password_change_ends_every_other_session_not_the_first_thousand,
    all_other_sessions
);

async fn code_for_changes(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let client = app.client("web", "a self", &["password"]).await;
    app.user("uma", PASSWORD, &["self"], "a").await;
    let access = self_token(&app, &client, "uma", None).await;
    // A second session, opened before TOTP (so the test needs only two codes).
    self_token(&app, &client, "uma", None).await;
    let (key, step) = common::enrol_totp(&app, &access, PASSWORD).await;
    let code = |step: i64| portcullis_control_plane::identity::totp::code(&key, step);

    let before = credentials(&app, "uma").await;
    for body in [
        json!({"current_password": PASSWORD}),
        json!({"current_password": PASSWORD, "current_otp": "000000"}),
    ] {
        let removed = app
            .send(
                Call::new(Method::DELETE, "/v1/me/totp")
                    .bearer(&access)
                    .json(&body),
            )
            .await;
        assert_eq!(
            removed.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            removed.text
        );
        let changed = app
            .send(Call::new(Method::POST, "/v1/me/password").bearer(&access).json(&json!({
                "current_password": PASSWORD, "current_otp": body["current_otp"], "new_password": "battery staple horse"
            })))
            .await;
        assert_eq!(
            changed.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            changed.text
        );
    }
    assert_eq!(
        credentials(&app, "uma").await,
        before,
        "refused changes changed neither the password nor the second factor"
    );

    let removed = app
        .send(
            Call::new(Method::DELETE, "/v1/me/totp")
                .bearer(&access)
                .json(&json!({"current_password": PASSWORD, "current_otp": code(step + 1)})),
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    assert_eq!(
        removed.json()["sessions_ended"],
        1,
        "removing TOTP ends the other session"
    );
    assert_eq!(live_sessions(&app, &user_id(&app, "uma").await).await, 1);
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'mfa.%' ORDER BY seq")
            .fetch_all(&app.state.db().pool)
            .await
            .unwrap();
    assert_eq!(
        actions,
        vec![
            "mfa.enrolment_started",
            "mfa.enrolled",
            "mfa.failed",
            "mfa.failed",
            "mfa.failed",
            "mfa.failed",
            "mfa.removed"
        ],
        "every step is audited"
    );
}
both_backends!(
    changing_credentials_needs_the_current_code_when_totp_is_enrolled,
    code_for_changes
);

async fn basic_and_body(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let web = app.client("web", "a", &["client_credentials"]).await;
    let other = app.client("other", "a", &["client_credentials"]).await;
    let token = |body_id: String| {
        let (app, web) = (app.clone(), web.clone());
        async move {
            app.send(
                Call::new(Method::POST, "/oauth2/token")
                    .basic(&web.0, &web.1)
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", &body_id),
                    ]),
            )
            .await
        }
    };
    let same = token(web.0.clone()).await;
    assert_eq!(
        same.status,
        StatusCode::OK,
        "its own id repeated: {}",
        same.text
    );
    let different = token(other.0.clone()).await;
    assert_eq!(different.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        different.json()["error"],
        "invalid_request",
        "{}",
        different.text
    );
}
both_backends!(
    basic_auth_with_another_client_id_in_the_body_is_invalid_request,
    basic_and_body
);
