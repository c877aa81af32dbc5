//! Operational limits: `/metrics` needs the configured bearer token, and one client cannot flood
//! revocations (each changes the bundle every edge follows).

mod common;

use axum::http::{Method, StatusCode};
use common::{config, Call, TestApp, TestDb};
use portcullis_control_plane::state::{REVOKE_BURST, REVOKE_PER_SECOND};

const METRICS_TOKEN: &str = "metrics-token-0123456789";

async fn metrics_token(db: &TestDb) {
    let app = TestApp::start(config(db, &[("PORTCULLIS_METRICS_TOKEN", METRICS_TOKEN)])).await;
    let anonymous = app.get("/metrics").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(anonymous.header("www-authenticate").is_some());
    assert!(
        !anonymous.text.contains("portcullis_"),
        "no counters without the token"
    );
    let wrong = app
        .send(Call::new(Method::GET, "/metrics").bearer("metrics-token-wrong-000000"))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let right = app
        .send(Call::new(Method::GET, "/metrics").bearer(METRICS_TOKEN))
        .await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.text);
    assert!(right.text.contains("portcullis_"), "{}", right.text);

    let open = TestApp::start(config(&TestDb::sqlite(common::test_root()), &[])).await;
    assert_eq!(
        open.get("/metrics").await.status,
        StatusCode::OK,
        "without PORTCULLIS_METRICS_TOKEN the endpoint stays open"
    );
}
both_backends!(metrics_need_the_configured_bearer_token, metrics_token);

async fn revocation_flood(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let flooder = app.client("flooder", "a", &["client_credentials"]).await;
    let other = app.client("other", "a", &["client_credentials"]).await;
    let revoke = |client: &(String, String), token: String| {
        let (app, client) = (app.clone(), client.clone());
        async move {
            app.send(
                Call::new(Method::POST, "/oauth2/revoke")
                    .basic(&client.0, &client.1)
                    .form(&[("token", &token)]),
            )
            .await
        }
    };
    // All at once, so the refill during the flood stays small.
    let started = std::time::Instant::now();
    let flood: Vec<_> = (0..REVOKE_BURST * 3)
        .map(|i| tokio::spawn(revoke(&flooder, format!("not-a-token-{i}"))))
        .collect();
    let mut accepted = 0u32;
    let mut refused = None;
    for (i, task) in flood.into_iter().enumerate() {
        let reply = task.await.unwrap();
        match reply.status {
            StatusCode::OK => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => refused = Some(reply),
            other => panic!("revocation {i}: {other} {}", reply.text),
        }
    }
    let refused = refused.expect("a flood of revocations is never slowed down");
    assert!(refused.header("retry-after").is_some());
    let refilled = started.elapsed().as_secs_f64() * f64::from(REVOKE_PER_SECOND);
    assert!(
        f64::from(accepted) <= f64::from(REVOKE_BURST) + refilled + 1.0,
        "{accepted} revocations passed in {:?}",
        started.elapsed()
    );
    assert!(accepted >= REVOKE_BURST, "the burst passes: {accepted}");
    assert_eq!(
        revoke(&other, "not-a-token".into()).await.status,
        StatusCode::OK,
        "another client keeps its own limit"
    );
}
both_backends!(
    a_client_revoking_beyond_its_limit_is_slowed_down,
    revocation_flood
);
