//! Security events on a Redis stream (`portcullis:events`), relayed from the audit log.
//!
//! The audit row is committed in the same transaction as the change it records, so the audit log
//! is the outbox: the relay reads rows after its cursor, `XADD`s the event-worthy ones with the
//! explicit id `<seq>-1`, and advances the cursor. While Redis is down nothing advances and
//! nothing is lost; when it returns, the backlog is delivered in order. Two replicas relaying at
//! once cannot duplicate an event: Redis refuses an id that is not greater than the last one.

use crate::redis::{Connection, RedisError};
use sqlx::{AnyPool, Row as _};
use std::time::Duration;

/// The stream key.
pub const STREAM: &str = "portcullis:events";

/// Audit actions that are also published as events.
pub const EVENT_ACTIONS: &[&str] = &[
    "user.created",
    "user.updated",
    "user.disabled",
    "user.enabled",
    "user.deleted",
    "login.succeeded",
    "login.failed",
    "mfa.failed",
    "mfa.enrolled",
    "mfa.removed",
    "password.changed",
    "token.revoked",
    "token.reuse_detected",
    "session.revoked",
    "client.created",
    "client.updated",
    "client.secret_rotated",
    "key.rotated",
    "policy.published",
    "policy.activated",
];

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
pub async fn relay_once(pool: &AnyPool, redis: &mut Connection) -> Result<usize, RelayError> {
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
        if EVENT_ACTIONS.contains(&action.as_str()) {
            let at: i64 = row.try_get(1)?;
            let actor: String = row.try_get(2)?;
            let target: String = row.try_get(4)?;
            let outcome: String = row.try_get(5)?;
            let id = format!("{seq}-1");
            let (seq_text, at_text) = (seq.to_string(), at.to_string());
            let result = redis
                .command(&[
                    "XADD",
                    STREAM,
                    &id,
                    "type",
                    &action,
                    "actor",
                    &actor,
                    "target",
                    &target,
                    "outcome",
                    &outcome,
                    "at",
                    &at_text,
                    "audit_seq",
                    &seq_text,
                ])
                .await;
            match result {
                Ok(_) => added += 1,
                // Already delivered (by us before a crash, or by another replica).
                Err(RedisError::Server(message)) if message.contains("equal or smaller") => {}
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

/// Relays forever, reconnecting with backoff while Redis is away.
pub fn spawn_relay(pool: AnyPool, url: String, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut connection: Option<Connection> = None;
        let mut backoff = every;
        loop {
            if connection.is_none() {
                match Connection::open(&url).await {
                    Ok(c) => {
                        connection = Some(c);
                        backoff = every;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "event relay: redis unavailable; events wait in the audit log");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue;
                    }
                }
            }
            if let Some(redis) = connection.as_mut() {
                match relay_once(&pool, redis).await {
                    Ok(_) => {}
                    Err(RelayError::Redis(error)) => {
                        tracing::warn!(%error, "event relay: redis failed; reconnecting");
                        connection = None;
                    }
                    Err(RelayError::Db(error)) => {
                        tracing::warn!(%error, "event relay: database failed")
                    }
                }
            }
            tokio::time::sleep(every).await;
        }
    })
}
