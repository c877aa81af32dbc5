//! The control plane finds bearer tokens by the README's one rule, with the filter's own code
//! (`portcullis_authz::bearer`): one `Authorization: Bearer` header in any letter case, never a
//! token in the query string, never two headers.

mod common;

use axum::http::{Method, StatusCode};
use common::{config, Call, TestApp, TestDb};

async fn one_rule(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let admin = app.admin_token().await;
    let users = || Call::new(Method::GET, "/admin/v1/users");

    let allowed = app.send(users().bearer(&admin)).await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.text);
    let lower = app
        .send(users().header("authorization", &format!("bearer {admin}")))
        .await;
    assert_eq!(
        lower.status,
        StatusCode::OK,
        "the scheme is case-insensitive: {}",
        lower.text
    );

    let query = app
        .send(
            Call::new(Method::GET, "/admin/v1/users")
                .uri_query(&format!("access_token={admin}"))
                .bearer(&admin),
        )
        .await;
    assert_eq!(query.status, StatusCode::BAD_REQUEST, "{}", query.text);
    assert_eq!(
        query.json()["error"],
        "invalid_request",
        "a token in the query string is refused, even beside a good header: {}",
        query.text
    );
    let twice = app.send(users().bearer(&admin).bearer(&admin)).await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST, "{}", twice.text);
    assert_eq!(twice.json()["error"], "invalid_request", "{}", twice.text);
    let malformed = app
        .send(users().header("authorization", &format!("Bearer {admin} trailing")))
        .await;
    assert_eq!(
        malformed.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        malformed.text
    );
    assert_eq!(
        malformed.json()["error"],
        "invalid_token",
        "{}",
        malformed.text
    );
    let missing = app.send(users()).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED, "{}", missing.text);

    // The same rule on /v1/me and userinfo.
    for path in ["/v1/me/sessions", "/oauth2/userinfo"] {
        let reply = app
            .send(
                Call::new(Method::GET, path)
                    .uri_query("access_token=x")
                    .bearer(&admin),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path} refuses a query-string token: {}",
            reply.text
        );
    }
}
both_backends!(bearer_tokens_follow_the_one_rule_of_the_edge, one_rule);
