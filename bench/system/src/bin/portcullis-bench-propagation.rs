//! `cargo xtask bench propagation [--trials N] [--back-to-back] [--smoke]`: how long a change at
//! the control plane takes to decide requests at Envoy.
//!
//! The whole system (control plane on SQLite, Envoy with the release filter, echo upstream).
//! Each trial makes one change and then polls Envoy every 2 ms until the first request is decided
//! by it: a token revocation (200 → 401) and a policy push (a `forbid` on one path added, 200 →
//! 403, then taken out again; a forbid wins over whatever the other policies permit, so the
//! scenario does not depend on them). Prints p50, p99 and max as a Markdown table for
//! BENCHMARKS.md. `--smoke`: two trials back to back.

use portcullis_tests::control_plane::sqlite_url;
use portcullis_tests::http::get;
use portcullis_tests::stack::Stack;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The path the pushed `forbid` names: one the base policies allow and no case of the stored
/// test corpus covers (the push would be refused otherwise).
const PUSHED_PATH: &str = "/api/items/bench-propagation";

async fn until_status(port: u16, path: &str, token: &str, status: u16) -> Duration {
    let started = Instant::now();
    loop {
        if get(port, path, Some(token)).await.status == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no change after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn summary(name: &str, mut samples: Vec<Duration>) -> String {
    samples.sort();
    let pick = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    format!(
        "| {name} | {} | {:.0} ms | {:.0} ms | {:.0} ms |",
        samples.len(),
        pick(0.5).as_secs_f64() * 1e3,
        pick(0.99).as_secs_f64() * 1e3,
        pick(1.0).as_secs_f64() * 1e3
    )
}

#[tokio::main]
async fn main() {
    let smoke = portcullis_tests::smoke();
    let trials: usize = std::env::args()
        .skip_while(|a| a != "--trials")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(if smoke { 2 } else { 20 });
    // Changes spaced by a second, as in real use (the edge's long-poll is then waiting); with
    // `--back-to-back` each change follows the previous one at once, which measures the worst
    // case: the edge is between two polls.
    let spacing = if smoke || std::env::args().any(|a| a == "--back-to-back") {
        Duration::ZERO
    } else {
        Duration::from_secs(1)
    };
    let s = Stack::start(&sqlite_url("bench-propagation")).await;
    let port = s.envoy.port;
    let service = s
        .plane
        .create_client(
            "svc",
            "api:items:read api:reports:read",
            &["client_credentials"],
        )
        .await;
    let admin_client = s
        .plane
        .create_client("ops", "admin:policies", &["client_credentials"])
        .await;
    let admin = s.plane.admin_token(&admin_client).await;

    let mut revocations = Vec::new();
    for _ in 0..trials {
        let token = s.plane.client_token(&service, None).await;
        until_status(port, "/api/items", &token, 200).await;
        tokio::time::sleep(spacing).await;
        assert_eq!(s.plane.revoke(&service, &token).await.status, 200);
        revocations.push(until_status(port, "/api/items", &token, 401).await);
    }

    let base: Value = s
        .plane
        .admin("GET", "/admin/v1/policies", &admin, None)
        .await
        .json();
    let base_policies = base["policies"].as_str().unwrap_or_default().to_owned();
    let with_forbid = format!(
        "{base_policies}\n@id(\"bench-forbid\")\nforbid (principal, action, resource)\nwhen {{ resource.path == \"{PUSHED_PATH}\" }};\n"
    );
    let token = s.plane.client_token(&service, None).await;
    until_status(port, PUSHED_PATH, &token, 200).await;
    let mut pushes = Vec::new();
    for trial in 0..trials {
        let (policies, expect) = if trial % 2 == 0 {
            (&with_forbid, 403)
        } else {
            (&base_policies, 200)
        };
        let body =
            json!({"schema": base["schema"], "policies": policies, "entities": base["entities"]});
        tokio::time::sleep(spacing).await;
        let reply = s
            .plane
            .admin("PUT", "/admin/v1/policies", &admin, Some(&body))
            .await;
        assert_eq!(
            reply.status,
            200,
            "policy push refused: {}",
            String::from_utf8_lossy(&reply.body)
        );
        pushes.push(until_status(port, PUSHED_PATH, &token, expect).await);
    }
    let mode = if spacing.is_zero() {
        "back to back"
    } else {
        "1 s apart"
    };
    println!(
        "\n| change ({mode}) → first request decided by it at Envoy | trials | p50 | p99 | max |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "{}",
        summary("token revocation (`POST /oauth2/revoke`)", revocations)
    );
    println!(
        "{}",
        summary("policy push (`PUT /admin/v1/policies`)", pushes)
    );
}
