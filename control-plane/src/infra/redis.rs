//! Redis, through the `redis` crate: one [`Redis`] handle per process, shared by the login
//! throttle, the event relay and the bundle fan-out.
//!
//! Commands go through one multiplexed [`ConnectionManager`], which reconnects by itself after
//! Redis goes away; it is created lazily, so a control plane starts (and decides from local
//! state) while Redis is down. Credentials come from the URL (`redis://user:password@host`,
//! sent with `AUTH`), `rediss://` speaks TLS (rustls with the system's roots, or the CA in
//! `PORTCULLIS_REDIS_CA`). Pub/sub needs a connection of its own, opened by [`Redis::pubsub`].

use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::{Client, IntoConnectionInfo as _, TlsCertificates};
use std::path::Path;
use std::time::Duration;

pub use redis::RedisError;

/// How long one command or one connection attempt may take before it counts as a failure
/// (and the caller falls back to what it can decide alone).
const TIMEOUT: Duration = Duration::from_secs(2);

/// Why a Redis configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    /// The URL does not parse (the message never repeats the URL, which may hold a password).
    #[error("REDIS_URL is not a redis:// or rediss:// URL: {0}")]
    Url(String),
    /// The CA file cannot be read.
    #[error("PORTCULLIS_REDIS_CA cannot be read: {0}")]
    Ca(std::io::Error),
}

/// A Redis server this process shares state through.
#[derive(Clone)]
pub struct Redis {
    client: Client,
    manager: ConnectionManager,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection info holds the password.
        f.write_str("Redis { .. }")
    }
}

/// Checks `url` (and the CA file) without connecting.
pub fn validate(url: &str, ca: Option<&Path>) -> Result<(), RedisSetupError> {
    client(url, ca).map(drop)
}

fn client(url: &str, ca: Option<&Path>) -> Result<Client, RedisSetupError> {
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(RedisSetupError::Url(
            "the scheme must be redis or rediss".into(),
        ));
    }
    let malformed = |e: RedisError| RedisSetupError::Url(format!("{:?}", e.kind()));
    if url.starts_with("rediss://") {
        // rustls needs one process-wide crypto provider; another part may have installed it.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    match ca {
        Some(path) => {
            let root_cert = std::fs::read(path).map_err(RedisSetupError::Ca)?;
            let info = url.into_connection_info().map_err(malformed)?;
            Client::build_with_tls(
                info,
                TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            )
            .map_err(malformed)
        }
        None => Client::open(url).map_err(malformed),
    }
}

impl Redis {
    /// A handle for `url`; connects on first use. Must be called inside the Tokio runtime.
    pub fn open(url: &str, ca: Option<&Path>) -> Result<Self, RedisSetupError> {
        let client = client(url, ca)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| RedisSetupError::Url(format!("{:?}", e.kind())))?;
        Ok(Redis { client, manager })
    }

    /// The shared, self-reconnecting connection (cheap to clone).
    pub fn connection(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// Runs `op` on the shared connection, once more if the connection turned out to be broken
    /// (Redis restarted since the last command): the manager reconnects, and the first command
    /// after an outage need not be lost. A timeout is not retried: the command may have run, and
    /// a caller waiting twice as long helps nobody.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, RedisError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        match op(self.connection()).await {
            Err(error)
                if error.is_connection_dropped()
                    || (error.is_io_error() && !error.is_timeout()) =>
            {
                op(self.connection()).await
            }
            other => other,
        }
    }

    /// A dedicated connection for subscribing.
    pub async fn pubsub(&self) -> Result<PubSub, RedisError> {
        tokio::time::timeout(TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(|_| RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_redis_urls_are_accepted() {
        assert!(validate("redis://127.0.0.1:6379/2", None).is_ok());
        assert!(validate("redis://:secret@127.0.0.1", None).is_ok());
        assert!(validate("rediss://redis.internal:6380", None).is_ok());
        assert!(validate("http://127.0.0.1", None).is_err());
        assert!(validate("redis://127.0.0.1/not-a-db", None).is_err());
    }

    #[test]
    fn a_bad_url_error_does_not_repeat_the_password() {
        let error = validate("redis://:hunter2@127.0.0.1/x", None).unwrap_err();
        assert!(
            !error.to_string().contains("hunter2"),
            "the error shows the password: {error}"
        );
    }

    #[test]
    fn an_unreadable_ca_file_is_refused() {
        let error = validate(
            "rediss://127.0.0.1",
            Some(Path::new("/nonexistent/portcullis-ca.pem")),
        )
        .unwrap_err();
        assert!(matches!(error, RedisSetupError::Ca(_)), "{error}");
    }
}
