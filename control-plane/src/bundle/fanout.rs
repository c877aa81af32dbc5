//! Bundle changes fan out between replicas through Redis pub/sub: the replica that commits a
//! change publishes the new bundle version on [`CHANNEL`], and every replica's listener re-reads
//! the bundle at once, waking its edges' long-polls. Redis only carries the wake-up; the bundle
//! itself always comes from the database, and a periodic database poll (the follower) catches
//! anything missed while Redis is away.

use crate::infra::redis::{Redis, RedisError};
use crate::state::AppState;
use futures_util::StreamExt as _;
use std::time::Duration;

/// The pub/sub channel carrying bundle versions.
pub const CHANNEL: &str = "portcullis:bundle";

/// Publishes `version` in the background over the shared connection; a failure only delays
/// other replicas until their next database poll.
pub fn announce(redis: &Redis, version: i64) {
    let redis = redis.clone();
    tokio::spawn(async move {
        let published: Result<i64, RedisError> = redis
            .run(|mut c| async move {
                redis::cmd("PUBLISH")
                    .arg(CHANNEL)
                    .arg(version)
                    .query_async(&mut c)
                    .await
            })
            .await;
        if let Err(error) = published {
            tracing::debug!(%error, "bundle change not announced; replicas will poll");
        }
    });
}

/// Listens on [`CHANNEL`] until the process ends, reconnecting after failures.
pub fn spawn_listener(state: AppState, redis: Redis) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(error) = listen(&state, &redis).await {
                tracing::debug!(%error, "bundle fan-out listener reconnecting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

async fn listen(state: &AppState, redis: &Redis) -> Result<(), RedisError> {
    let mut pubsub = redis.pubsub().await?;
    pubsub.subscribe(CHANNEL).await?;
    // Anything published while this listener was away is picked up now.
    let _ = state.refresh().await;
    let mut messages = pubsub.on_message();
    while messages.next().await.is_some() {
        if let Err(error) = state.refresh().await {
            tracing::warn!(%error, "bundle refresh failed; keeping the last one");
        }
    }
    Err(std::io::Error::from(std::io::ErrorKind::ConnectionAborted).into())
}
