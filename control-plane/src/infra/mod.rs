//! What the control plane runs on: the configuration, the database, Redis, TLS, metrics and a
//! token-bucket rate limiter.

pub mod config;
pub mod db;
pub mod metrics;
pub mod rate;
pub mod redis;
pub mod tls;
