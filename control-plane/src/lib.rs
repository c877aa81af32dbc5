//! The Portcullis control plane: identities, OAuth 2.0 token issuance, signing keys, the policy
//! store, the bundle every edge filter follows, and the audit log.

pub mod admin_policy;
pub mod audience;
pub mod audit;
pub mod audit_action;
pub mod audit_batch;
pub mod authority;
pub mod bundle;
pub mod bundle_keys;
pub mod cli;
pub mod clients;
pub mod config;
pub mod db;
pub mod diagnostics;
pub mod events;
pub mod fanout;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod passwords;
pub mod policies;
pub mod rate;
pub mod redis;
pub mod scopes;
pub mod secrets;
pub mod server;
pub mod sessions;
pub mod state;
pub mod throttle;
pub mod tls;
pub mod tokens;
pub mod totp;
pub mod users;

pub use http::app;

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
