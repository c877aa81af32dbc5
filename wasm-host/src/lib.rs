//! A small proxy-wasm 0.2 host on wasmtime that loads the built Portcullis filter and drives it
//! the way Envoy does — without Envoy, with a clock that moves only when told to, and with every
//! dispatched HTTP call left for the test to answer.
//!
//! - [`host`] drives the guest's exports (contexts, configure, ticks, requests, call responses).
//! - [`hostcalls`] and [`wasi`] implement the guest's imports.
//! - [`state`] is the data behind them; [`memory`] moves bytes in and out of the guest;
//!   [`abi`] holds the ABI's constants and map encoding.
//!
//! A trap in the guest is always an `Err`, and the host refuses further calls after one.

pub mod abi;
pub mod host;
pub mod hostcalls;
pub mod memory;
pub mod state;
pub mod wasi;

pub use host::{Host, Outcome, START_MS};
pub use state::{Call, LocalResponse};

use std::path::PathBuf;

/// The built filter: `$PORTCULLIS_WASM`, or the workspace's release `wasm32-wasip1` artifact.
///
/// # Panics
/// If the file does not exist, with the command that builds it.
pub fn wasm_path() -> PathBuf {
    let path = std::env::var_os("PORTCULLIS_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/wasm32-wasip1/release/portcullis_plugin.wasm")
        });
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --release --target wasm32-wasip1 -p portcullis-plugin` (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// Loads the built filter (see [`wasm_path`]).
///
/// # Panics
/// If the filter is missing or does not instantiate.
pub fn load_filter() -> Host {
    let path = wasm_path();
    Host::load(&path).unwrap_or_else(|e| panic!("cannot load {}: {e:?}", path.display()))
}
