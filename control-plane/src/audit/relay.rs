//! Security events on a Redis stream (`portcullis:events`), relayed from the audit log.
//!
//! The audit row is committed in the same transaction as the change it records, so the audit log
//! is the outbox: the relay reads rows after its cursor, `XADD`s the event-worthy ones with the
//! explicit id `<seq>-1`, and advances the cursor. While Redis is down nothing advances and
//! nothing is lost; when it returns, the backlog is delivered in order. Two replicas relaying at
//! once cannot duplicate an event: Redis refuses an id that is not greater than the last one.

use crate::infra::redis::{Redis, RedisError};
use redis::aio::ConnectionManager;
use sqlx::{AnyPool, Row as _};
use std::time::Duration;

/// The stream key.
pub const STREAM: &str = "portcullis:events";

/// Why a relay pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// Redis failed (reconnect and retry).
    #[error(transparent)]
    Redis(#[from] RedisError),
}

/// Delivers everything after the cursor; returns how many events were added.
pub async fn relay_once(
    pool: &AnyPool,
    connection: &mut ConnectionManager,
) -> Result<usize, RelayError> {
    let cursor: i64 = sqlx::query_scalar("SELECT seq FROM relay_cursor WHERE id = 1")
        .fetch_one(pool)
        .await?;
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, target, outcome FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT 500",
    )
    .bind(cursor)
    .fetch_all(pool)
    .await?;
    let mut added = 0;
    let mut last = cursor;
    for row in &rows {
        let seq: i64 = row.try_get(0)?;
        let action: String = row.try_get(3)?;
        if crate::audit::action::Action::from_name(&action).is_some_and(|a| a.is_event()) {
            let at: i64 = row.try_get(1)?;
            let actor: String = row.try_get(2)?;
            let target: String = row.try_get(4)?;
            let outcome: String = row.try_get(5)?;
            let result: Result<String, RedisError> = redis::cmd("XADD")
                .arg(STREAM)
                .arg(format!("{seq}-1"))
                .arg(&[
                    ("type", action.as_str()),
                    ("actor", &actor),
                    ("target", &target),
                    ("outcome", &outcome),
                    ("at", &at.to_string()),
                    ("audit_seq", &seq.to_string()),
                ])
                .query_async(connection)
                .await;
            match result {
                Ok(_) => added += 1,
                // Already delivered (by us before a crash, or by another replica).
                Err(error)
                    if error
                        .detail()
                        .is_some_and(|d| d.contains("equal or smaller")) => {}
                Err(error) => {
                    advance(pool, cursor, last).await?;
                    return Err(error.into());
                }
            }
        }
        last = seq;
    }
    advance(pool, cursor, last).await?;
    Ok(added)
}

async fn advance(pool: &AnyPool, from: i64, to: i64) -> Result<(), sqlx::Error> {
    if to > from {
        sqlx::query("UPDATE relay_cursor SET seq = $1 WHERE id = 1 AND seq < $1")
            .bind(to)
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// Relays forever; while Redis is away each pass fails, and the next one retries with backoff.
pub fn spawn_relay(pool: AnyPool, redis: Redis, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut connection = redis.connection();
        let mut backoff = every;
        loop {
            match relay_once(&pool, &mut connection).await {
                Ok(_) => backoff = every,
                Err(RelayError::Redis(error)) => {
                    tracing::warn!(%error, "event relay: redis unavailable; events wait in the audit log");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Err(RelayError::Db(error)) => {
                    tracing::warn!(%error, "event relay: database failed")
                }
            }
            tokio::time::sleep(every).await;
        }
    })
}
