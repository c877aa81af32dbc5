//! `cargo xtask up`: Envoy with the Portcullis filter in front of a demo upstream, fed by a demo
//! bundle source (the repository's `policies/` and a demo signing key), until Ctrl-C.

use portcullis_tests::bundle_server::BundleServer;
use portcullis_tests::echo::EchoUpstream;
use portcullis_tests::envoy::{plugin_config, Envoy, EnvoyOptions};
use portcullis_tests::tokens::{bundle, claims, key, token};
use serde_json::json;

#[tokio::main]
async fn main() {
    let upstream = EchoUpstream::start_on(8081).await;
    let server = BundleServer::start(&bundle(1, &[&key()]), 8080);
    let options = EnvoyOptions {
        plugin_config: plugin_config(json!({"refresh_interval_ms": 1000, "long_poll_seconds": 20})),
        ..EnvoyOptions::default()
    };
    let envoy = Envoy::start_on(&options, 10000, 9901, upstream.port, server.port);
    let reader = token(&claims("api:items:read"));
    let admin = token(&claims("api:system:admin"));
    println!(
        r#"
Portcullis demo is up (Ctrl-C stops everything):
  Envoy with the filter   http://127.0.0.1:10000   (admin http://127.0.0.1:9901)
  demo bundle source      http://127.0.0.1:8080/plugin/v1/bundle   (policies from policies/)
  demo upstream (echo)    http://127.0.0.1:8081
  Envoy config and logs   {dir}

Try it:
  curl -i http://127.0.0.1:10000/api/items                      # 401: no token
  READ={reader}
  curl -i -H "Authorization: Bearer $READ" http://127.0.0.1:10000/api/items     # 200, identity headers echoed
  curl -i -H "Authorization: Bearer $READ" -X POST http://127.0.0.1:10000/api/items   # 403: no write scope
  curl -i -H "Authorization: Bearer $READ" http://127.0.0.1:10000/admin/users   # 403: admin area
  ADMIN={admin}
  curl -i -H "Authorization: Bearer $ADMIN" http://127.0.0.1:10000/admin/users  # 200
  curl -s http://127.0.0.1:9901/stats | grep portcullis                          # filter metrics
(demo tokens expire in 15 minutes; restart to mint new ones)
"#,
        dir = envoy.dir.display()
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .unwrap_or_else(|e| panic!("signal handler: {e}"));
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    println!("stopping");
    drop(envoy);
    drop(server);
    drop(upstream);
}
