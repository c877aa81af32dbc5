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
