//! `/v1/authorize` gives the filter's answer: every case of the repository's policy corpus,
//! signed as a real token, is decided as the corpus expects.

mod common;

use axum::http::{Method, StatusCode};
use common::{config, Call, TestApp, TestDb};
use portcullis_control_plane::oauth::tokens::{issue, Grant};
use serde_json::json;

async fn corpus_agreement(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let (rs, rs_secret) = app
        .client("resource-server", "authorize", &["client_credentials"])
        .await;
    let cases = portcullis_authz::folder::corpus(&common::policy_dir()).unwrap();
    assert!(
        cases.len() >= 10,
        "the corpus is too small: {}",
        cases.len()
    );
    let signer = app.state.published().signer.clone().unwrap();
    for corpus_case in &cases {
        let case = &corpus_case.case;
        let scopes: Vec<String> = case
            .token
            .scope
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let token = issue(
            &signer,
            app.state.config(),
            &Grant {
                sub: case.token.sub.clone(),
                client_id: &case.token.client_id,
                audiences: &app.state.config().audiences,
                scopes: &scopes,
                roles: &case.token.roles,
                tenant: case.token.tenant.as_deref(),
                amr: &case.token.amr,
                sid: None,
                ttl: 300,
            },
        )
        .unwrap()
        .token;
        let reply = app
            .send(
                Call::new(Method::POST, "/v1/authorize")
                    .basic(&rs, &rs_secret)
                    .json(&json!({"token": token, "method": case.method, "path": case.path, "host": case.host})),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}: {}",
            corpus_case.file,
            reply.text
        );
        let expected = if corpus_case.expect_allow {
            "allow"
        } else {
            "deny"
        };
        assert_eq!(
            reply.json()["decision"],
            expected,
            "{}: {}",
            corpus_case.file,
            reply.text
        );
    }
}
both_backends!(authorize_agrees_with_the_corpus, corpus_agreement);

#[tokio::test]
async fn authorize_refuses_bad_tokens_and_unauthenticated_callers() {
    let db = TestDb::sqlite(common::test_root());
    let app = TestApp::start(config(&db, &[])).await;
    let (id, secret) = app
        .client("svc", "api:items:read", &["client_credentials"])
        .await;
    let token = app.cc_token(&id, &secret, None).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ask = |token: &str| {
        Call::new(Method::POST, "/v1/authorize")
            .json(&json!({"token": token, "method": "GET", "path": "/api/items"}))
    };
    assert_eq!(app.send(ask(&token)).await.status, StatusCode::UNAUTHORIZED);
    let allowed = app.send(ask(&token).basic(&id, &secret)).await.json();
    assert_eq!(allowed["decision"], "allow");
    assert_eq!(allowed["policy_ids"], json!(["role-viewer"]));
    // Another client's token: only with scope `authorize` (introspection's rule).
    let (other, other_secret) = app.client("other", "", &["client_credentials"]).await;
    let foreign = app
        .send(ask(&token).basic(&other, &other_secret))
        .await
        .json();
    assert_eq!(foreign["decision"], "deny");
    assert_eq!(foreign["reason"], "invalid_token", "{foreign}");
    let (rs, rs_secret) = app.client("rs", "authorize", &["client_credentials"]).await;
    let examined = app.send(ask(&token).basic(&rs, &rs_secret)).await.json();
    assert_eq!(examined["decision"], "allow", "{examined}");
    let garbage = app.send(ask("garbage").basic(&id, &secret)).await.json();
    assert_eq!(garbage["decision"], "deny");
    assert_eq!(garbage["reason"], "invalid_token");
    app.send(
        Call::new(Method::POST, "/oauth2/revoke")
            .basic(&id, &secret)
            .form(&[("token", &token)]),
    )
    .await;
    let revoked = app.send(ask(&token).basic(&id, &secret)).await.json();
    assert_eq!(revoked["reason"], "revoked");
    let bad = app
        .send(
            Call::new(Method::POST, "/v1/authorize")
                .basic(&id, &secret)
                .json(&json!({"token": "x"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}
