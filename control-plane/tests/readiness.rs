//! `/readyz` says what is wrong: each dependency with its status and latency; 503 only when the
//! control plane cannot work (no database), `degraded` when an optional part is down (Redis).

mod common;

use axum::http::StatusCode;
use common::{config, TestApp, TestDb};
use serde_json::Value;

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    &report["checks"][name]
}

async fn ready(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    let reply = app.get("/readyz").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let report = reply.json();
    assert_eq!(report["status"], "ready", "{report}");
    assert_eq!(check(&report, "database")["status"], "up");
    assert!(
        check(&report, "database")["latency_ms"].as_f64().is_some(),
        "the database check says how long it took: {report}"
    );
    assert_eq!(check(&report, "signing_key")["status"], "up");
    assert_eq!(check(&report, "policies")["status"], "up");
    assert_eq!(
        check(&report, "policies")["version"],
        1,
        "the active policy version is named: {report}"
    );
    assert!(
        check(&report, "redis").is_null(),
        "no Redis check without Redis: {report}"
    );
}
both_backends!(a_healthy_control_plane_reports_each_dependency_up, ready);

async fn redis_down(db: &TestDb) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{closed}");
    let app = TestApp::start(config(db, &[("REDIS_URL", &url)])).await;
    let reply = app.get("/readyz").await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "replicas work without Redis, so the node still takes traffic: {}",
        reply.text
    );
    let report = reply.json();
    assert_eq!(report["status"], "degraded", "{report}");
    assert_eq!(check(&report, "redis")["status"], "down", "{report}");
    assert!(
        check(&report, "redis")["error"].as_str().is_some(),
        "the Redis check says why: {report}"
    );
    assert_eq!(check(&report, "database")["status"], "up");
}
both_backends!(
    an_unreachable_redis_is_reported_as_degraded_not_unavailable,
    redis_down
);

async fn database_down(db: &TestDb) {
    let app = TestApp::start(config(db, &[])).await;
    app.state.db().pool.close().await;
    let reply = app.get("/readyz").await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text
    );
    let report = reply.json();
    assert_eq!(report["status"], "unavailable", "{report}");
    assert_eq!(check(&report, "database")["status"], "down", "{report}");
    assert_eq!(
        check(&report, "signing_key")["status"],
        "up",
        "the other checks are still reported: {report}"
    );
}
both_backends!(
    without_the_database_the_control_plane_is_unavailable,
    database_down
);
