//! Audit rows staged in the transaction of the change they record, and chained by the
//! group-commit writer ([`crate::audit::batch`]) shortly after.
//!
//! The rule: a change and its audit row commit together, always. Chaining a row inside the
//! change's own transaction keeps the chain head locked until that commit returns, so every
//! such change waits for the previous one's commit: about a thousand per second on a disk that
//! takes a millisecond to flush, whatever the cores. A staged row commits with its change
//! (durable, so the caller may answer) without touching the head; [`drain`] then moves staged
//! rows into the chain and out of the outbox in one transaction, in the order they were
//! staged, many per commit. A row is never in both places and never in neither.

use crate::audit::{Event, Origin};
use crate::keys::secrets::{random_id, MasterKey, SecretError};
use sqlx::{Any, AnyPool, Row as _, Transaction};

/// Most staged rows chained in one transaction.
const MAX_DRAIN: i64 = 256;

/// Why a row could not be staged.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// No randomness for the row's id.
    #[error(transparent)]
    Random(#[from] SecretError),
}

/// Stages `event` inside `tx`: it commits with `tx`, and is chained by the next [`drain`].
pub async fn stage(
    tx: &mut Transaction<'static, Any>,
    origin: &Origin,
    event: &Event<'_>,
) -> Result<(), StageError> {
    sqlx::query(
        "INSERT INTO audit_outbox (id, queued_at, actor, action, target, outcome, client_ip, request_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(random_id()?)
    .bind(crate::now())
    .bind(event.actor)
    .bind(event.action.as_str())
    .bind(event.target)
    .bind(event.outcome)
    .bind(&origin.client_ip)
    .bind(&origin.request_id)
    .bind(event.detail.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A staged row, owned.
struct Staged {
    queued_at: i64,
    id: String,
    origin: Origin,
    actor: String,
    action: crate::audit::action::Action,
    target: String,
    outcome: String,
    detail: serde_json::Value,
}

/// Chains every staged row, oldest first, up to [`MAX_DRAIN`] per transaction; returns how many
/// were chained. Concurrent drains (other replicas) never chain a row twice: each takes its rows
/// by deleting them, and a row another drain deleted first is not returned. A row whose action
/// this release does not know (staged by a newer replica) is left for one that does.
pub async fn drain(pool: &AnyPool, master: &MasterKey) -> Result<usize, sqlx::Error> {
    let known: Vec<String> = crate::audit::action::Action::ALL
        .iter()
        .map(|a| format!("'{}'", a.as_str()))
        .collect();
    let take = format!(
        "DELETE FROM audit_outbox WHERE id IN \
         (SELECT id FROM audit_outbox WHERE action IN ({}) ORDER BY queued_at, id LIMIT $1) \
         RETURNING id, queued_at, actor, action, target, outcome, client_ip, request_id, detail",
        known.join(", ")
    );
    let mut chained = 0;
    loop {
        let mut tx = pool.begin().await?;
        let rows = sqlx::query(&take)
            .bind(MAX_DRAIN)
            .fetch_all(&mut *tx)
            .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(chained);
        }
        let mut staged = Vec::with_capacity(rows.len());
        for row in &rows {
            let action: String = row.try_get("action")?;
            let Some(action) = crate::audit::action::Action::from_name(&action) else {
                continue;
            };
            let detail: String = row.try_get("detail")?;
            staged.push(Staged {
                queued_at: row.try_get("queued_at")?,
                id: row.try_get("id")?,
                origin: Origin {
                    client_ip: row.try_get("client_ip")?,
                    request_id: row.try_get("request_id")?,
                },
                actor: row.try_get("actor")?,
                action,
                target: row.try_get("target")?,
                outcome: row.try_get("outcome")?,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
            });
        }
        staged.sort_by(|a, b| (a.queued_at, &a.id).cmp(&(b.queued_at, &b.id)));
        let events: Vec<Event<'_>> = staged
            .iter()
            .map(|s| Event {
                actor: &s.actor,
                action: s.action,
                target: &s.target,
                outcome: &s.outcome,
                detail: s.detail.clone(),
            })
            .collect();
        let pairs: Vec<(&Origin, &Event<'_>)> = staged
            .iter()
            .zip(&events)
            .map(|(s, event)| (&s.origin, event))
            .collect();
        crate::audit::append_many(&mut tx, master, &pairs).await?;
        tx.commit().await?;
        chained += staged.len();
    }
}
