//! Shared service state: the database, configuration, master key, password hasher, metrics,
//! login throttle and the published bundle.

use crate::audit::batch::AuditBatcher;
use crate::bundle::{assemble, AssembleError, Published};
use crate::identity::passwords::Hasher;
use crate::identity::throttle::Throttle;
use crate::infra::config::Config;
use crate::infra::db::Db;
use crate::infra::metrics::Metrics;
use crate::infra::redis::Redis;
use crate::keys::secrets::MasterKey;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex};

/// Revocations a client may make at once, per replica.
pub const REVOKE_BURST: u32 = 100;
/// Revocations a client may make per second after the burst, per replica.
pub const REVOKE_PER_SECOND: u32 = 20;

/// Everything a request handler needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    config: Config,
    master: MasterKey,
    hasher: Hasher,
    metrics: Metrics,
    throttle: Throttle,
    revocations: crate::infra::rate::Limiter,
    redis: Option<Redis>,
    audit: AuditBatcher,
    published: watch::Sender<Arc<Published>>,
    republish_lock: Mutex<()>,
}

impl AppState {
    /// Builds the state and publishes the current bundle.
    pub async fn new(db: Db, config: Config, master: MasterKey) -> Result<Self, AssembleError> {
        let published = assemble(&db.pool, &config, &master, None).await?;
        let metrics = Metrics::default();
        if published.served.is_some() {
            metrics.policy_compiled();
        }
        let concurrency = std::thread::available_parallelism().map_or(2, |n| n.get());
        let hasher = Hasher::new(concurrency).map_err(|e| AssembleError::Invalid(e.to_string()))?;
        let (sender, _) = watch::channel(Arc::new(published));
        let redis = config
            .redis_url
            .as_deref()
            .map(|url| Redis::open(url, config.redis_ca.as_deref()))
            .transpose()
            .map_err(|e| AssembleError::Invalid(e.to_string()))?;
        let throttle = Throttle::new(redis.clone());
        let audit = AuditBatcher::spawn(db.pool.clone(), master.clone());
        Ok(AppState {
            inner: Arc::new(Inner {
                db,
                config,
                master,
                hasher,
                metrics,
                throttle,
                revocations: crate::infra::rate::Limiter::new(REVOKE_BURST, REVOKE_PER_SECOND),
                redis,
                audit,
                published: sender,
                republish_lock: Mutex::new(()),
            }),
        })
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The master key.
    pub fn master(&self) -> &MasterKey {
        &self.inner.master
    }

    /// The password hasher.
    pub fn hasher(&self) -> &Hasher {
        &self.inner.hasher
    }

    /// Service metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Group-committed audit writes for events that record no other change.
    pub fn audit(&self) -> &AuditBatcher {
        &self.inner.audit
    }

    /// Login throttle.
    pub fn throttle(&self) -> &Throttle {
        &self.inner.throttle
    }

    /// Revocations per client (each one changes the bundle every edge follows).
    pub fn revocation_limit(&self) -> &crate::infra::rate::Limiter {
        &self.inner.revocations
    }

    /// Redis, when configured.
    pub fn redis(&self) -> Option<&Redis> {
        self.inner.redis.as_ref()
    }

    /// The bundle state in force on this node.
    pub fn published(&self) -> Arc<Published> {
        self.inner.published.borrow().clone()
    }

    /// A receiver that wakes when a newer bundle is published.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.inner.published.subscribe()
    }

    /// Re-reads the bundle after a change this node committed and tells the other replicas
    /// (through Redis, when configured) so their long-polls wake too.
    pub async fn republish(&self) -> Result<(), AssembleError> {
        if self.refresh().await? {
            if let Some(redis) = &self.inner.redis {
                crate::bundle::fanout::announce(redis, self.published().version);
            }
        }
        Ok(())
    }

    /// Re-reads the bundle if its version in the database moved (a change made here or by
    /// another replica); whether a newer bundle was published.
    pub async fn refresh(&self) -> Result<bool, AssembleError> {
        let _guard = self.inner.republish_lock.lock().await;
        let version = crate::bundle::current_version(&self.inner.db.pool).await?;
        if version <= self.published().version {
            return Ok(false);
        }
        let before = self.published();
        let published = assemble(
            &self.inner.db.pool,
            &self.inner.config,
            &self.inner.master,
            Some(&before),
        )
        .await?;
        if published.version > before.version {
            if published.compiled_after(&before) {
                self.inner.metrics.policy_compiled();
            }
            self.inner.published.send_replace(Arc::new(published));
            return Ok(true);
        }
        Ok(false)
    }

    /// Follows changes made by other replicas until the process ends.
    pub fn spawn_follower(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Err(error) = state.refresh().await {
                    tracing::warn!(%error, "bundle refresh failed; keeping the last one");
                }
            }
        })
    }
}
