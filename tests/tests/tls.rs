//! The filter following a real control plane over TLS: a CA generated for the test, the control
//! plane serving its certificate (`PORTCULLIS_TLS_CERT`/`KEY`), Envoy's cluster checking it
//! (`envoy/control-plane-tls.yaml`).

use portcullis_tests::control_plane::{sqlite_url, ControlPlane, MASTER_KEY};
use portcullis_tests::echo::EchoUpstream;
use portcullis_tests::envoy::{plugin_config, Envoy, EnvoyOptions};
use portcullis_tests::http::get;
use portcullis_tests::stack::Stack;
use portcullis_tests::tls::{TestCa, SERVER_NAME};
use serde_json::json;
use std::time::Duration;

/// Whether `check` holds within five seconds.
async fn within_5s(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_follows_the_control_plane_over_tls() {
    let ca = TestCa::generate("follow");
    let plane = ControlPlane::start_tls(&sqlite_url("tls"), &ca);
    assert!(
        portcullis_tests::envoy::admin_get(plane.port, "/readyz").is_none(),
        "the TLS listener answered plain HTTP"
    );
    let s = Stack::around_with(plane, Some((ca.ca.clone(), SERVER_NAME.to_owned()))).await;
    let port = s.envoy.port;
    let token = s.plane.signed_edge_token("api:items:read").await;
    assert_eq!(
        get(port, "/api/items/7", Some(&token)).await.status,
        200,
        "a token of the control plane's key is refused:\n{}",
        s.envoy.log()
    );
    // A change at the control plane (a bundle-key rotation, made in the store as `portcullis keys
    // rotate-bundle` does) reaches Envoy over the same TLS connection.
    let before = s.envoy.stat("wasmcustom.portcullis.bundle.version");
    let db = portcullis_control_plane::infra::db::connect(&s.plane.database_url)
        .await
        .unwrap();
    let master =
        portcullis_control_plane::keys::secrets::MasterKey::from_base64(MASTER_KEY).unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    portcullis_control_plane::keys::bundle::rotate(&mut tx, &master, 0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let moved = within_5s(|| s.envoy.stat("wasmcustom.portcullis.bundle.version") > before).await;
    assert!(
        moved,
        "a new bundle never reached Envoy over TLS:\n{}",
        s.envoy.log()
    );
    assert_eq!(get(port, "/api/items/7", Some(&token)).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_refuses_a_control_plane_whose_certificate_another_ca_signed() {
    let (served, trusted) = (TestCa::generate("served"), TestCa::generate("trusted"));
    let plane = ControlPlane::start_tls(&sqlite_url("tls-wrong-ca"), &served);
    let upstream = EchoUpstream::start().await;
    let options = EnvoyOptions {
        plugin_config: plugin_config(json!({
            "credential": portcullis_tests::control_plane::BUNDLE_CREDENTIAL,
            "bundle_signing_keys": plane.bundle_pins().await,
        })),
        control_plane_tls: Some((trusted.ca.clone(), SERVER_NAME.to_owned())),
        ..EnvoyOptions::default()
    };
    let envoy = Envoy::start(&options, upstream.port, plane.port);
    let failed = within_5s(|| {
        envoy
            .stat("wasmcustom.portcullis.bundle.fetch_failed")
            .is_some_and(|n| n >= 1)
    })
    .await;
    assert!(
        failed,
        "a fetch through an untrusted certificate did not fail:\n{}",
        envoy.log()
    );
    assert_eq!(
        get(envoy.port, "/api/items", None).await.status,
        503,
        "the filter took a bundle over a connection it cannot trust"
    );
}

/// Runs `portcullis policy push` of the shipped policies to `url` with a token that is not valid,
/// trusting `ca` when given; its exit status and standard error.
fn push_over(url: &str, ca: Option<&std::path::Path>) -> (bool, String) {
    let binary = std::env::var_os("PORTCULLIS_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| portcullis_tests::repo_root().join("target/debug/portcullis"));
    let policies = portcullis_tests::repo_root().join("policies");
    let mut command = std::process::Command::new(&binary);
    command
        .args(["policy", "push", "--dir"])
        .arg(&policies)
        .args(["--url", url])
        .env_clear()
        .env("PORTCULLIS_TOKEN", "not-a-token");
    if let Some(ca) = ca {
        command.arg("--ca").arg(ca);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_push_reaches_a_control_plane_over_https_that_its_ca_vouches_for() {
    let ca = TestCa::generate("push");
    let plane = ControlPlane::start_tls(&sqlite_url("tls-push"), &ca);
    let url = format!("https://localhost:{}", plane.port);
    let (pushed, err) = push_over(&url, Some(&ca.ca));
    assert!(
        !pushed && err.contains("refused the push (401)"),
        "with the CA the push reaches the server, which refuses the token: {err}"
    );
    let (pushed, err) = push_over(&url, None);
    assert!(
        !pushed && !err.contains("refused the push") && err.contains(&url),
        "without the CA the connection itself is refused: {err}"
    );
}
