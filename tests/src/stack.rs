//! The whole system for end-to-end tests: a real control plane, a real Envoy running the release
//! filter that follows it, and an echo upstream.

use crate::control_plane::{ControlPlane, BUNDLE_CREDENTIAL};
use crate::echo::EchoUpstream;
use crate::envoy::{plugin_config, Envoy, EnvoyOptions};
use crate::http::get;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a change may take to reach the edge in tests (the goal is about a second).
pub const PROPAGATION: Duration = Duration::from_secs(5);

/// Control plane, Envoy and upstream.
#[derive(Debug)]
pub struct Stack {
    /// The upstream.
    pub upstream: EchoUpstream,
    /// The control plane Envoy fetches its bundle from.
    pub plane: ControlPlane,
    /// Envoy with the filter.
    pub envoy: Envoy,
}

impl Stack {
    /// Starts a control plane over `database_url`, then Envoy following it.
    pub async fn start(database_url: &str) -> Self {
        Self::around(ControlPlane::start(database_url)).await
    }

    /// Starts Envoy (and an upstream) following `plane`, and waits for its first bundle.
    pub async fn around(plane: ControlPlane) -> Self {
        Self::around_with(plane, None).await
    }

    /// Like [`Stack::around`], with Envoy reaching `plane` over TLS when `tls` (the CA it trusts,
    /// the name it expects) is given.
    pub async fn around_with(plane: ControlPlane, tls: Option<(PathBuf, String)>) -> Self {
        let upstream = EchoUpstream::start().await;
        let options = EnvoyOptions {
            plugin_config: plugin_config(json!({
                "credential": BUNDLE_CREDENTIAL,
                "bundle_signing_keys": plane.bundle_pins().await,
                "refresh_interval_ms": 200,
                "long_poll_seconds": 5,
            })),
            control_plane_tls: tls,
            ..EnvoyOptions::default()
        };
        let envoy = Envoy::start(&options, upstream.port, plane.port);
        await_first_bundle(&envoy).await;
        Stack {
            upstream,
            plane,
            envoy,
        }
    }
}

/// Waits until `envoy`'s filter has applied its first bundle (a request without a token is
/// refused with 401 rather than failing closed with 503).
pub async fn await_first_bundle(envoy: &Envoy) {
    let started = Instant::now();
    while get(envoy.port, "/api/items", None).await.status != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the filter never loaded the control plane's bundle:\n{}",
            envoy.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `GET path` through `port` with `token` until it answers `status`; returns how long
/// that took.
pub async fn status_within(
    port: u16,
    path: &str,
    token: &str,
    status: u16,
    timeout: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if get(port, path, Some(token)).await.status == status {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}
