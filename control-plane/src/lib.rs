//! The Portcullis control plane: identities, OAuth 2.0 token issuance, signing keys, the policy
//! store, the bundle every edge filter follows, and the audit log.

pub mod audit;
pub mod bundle;
pub mod cli;
pub mod http;
pub mod identity;
pub mod infra;
pub mod keys;
pub mod oauth;
pub mod policy;
pub mod server;
pub mod service;
pub mod state;

pub use http::app;

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
