//! Portcullis proxy-wasm filter: thin glue between Envoy and [`portcullis_authz`].
//!
//! - [`root`] owns the configuration and keeps the bundle fresh in the background.
//! - [`shared`] is how workers share one fetch: a lease and the last good bundle in Envoy's
//!   shared data, so the control plane sees one poller per Envoy, not one per worker.
//! - [`schedule`] decides when to fetch next (pure logic: backoff with jitter).
//! - [`filter`] runs the per-request pipeline and talks HTTP.
//! - [`host`] wraps the hostcalls the filter uses so none of them can trap.
//! - [`metrics`] defines counters and gauges lazily.
//!
//! Nothing here may panic: a panic traps the VM and takes the filter down with it.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod filter;
pub mod host;
pub mod metrics;
pub mod root;
pub mod schedule;
pub mod shared;

// The entry point Envoy calls when the module loads.
mod entry {
    use crate::{host, root};

    proxy_wasm::main! {{
        proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
        std::panic::set_hook(Box::new(|info| {
            host::log(proxy_wasm::types::LogLevel::Critical, &format!("portcullis: panic: {info}"));
        }));
        proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
            Box::new(root::PortcullisRoot::default())
        });
    }}
}
