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
//!
//! Each staged row carries an HMAC under the audit chain's key, checked before it is chained: the
//! outbox is a table anyone with database access can write, and without the check such a writer
//! (who cannot forge a chained row) could have the service chain rows of their own making.

use crate::audit::{Event, Origin};
use crate::keys::secrets::{constant_time_eq, hex, random_id, MasterKey, SecretError};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
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

/// The HMAC of a staged row's columns, in their order, each length-prefixed.
fn row_mac(master: &MasterKey, columns: &[&str]) -> String {
    let mut mac =
        <Hmac<Sha256>>::new_from_slice(master.audit_chain_key()).expect("HMAC takes any key size");
    mac.update(b"portcullis audit outbox v1");
    for column in columns {
        mac.update(&(column.len() as u64).to_be_bytes());
        mac.update(column.as_bytes());
    }
    hex(&mac.finalize().into_bytes())
}

/// Stages `event` inside `tx`: it commits with `tx`, and is chained by the next [`drain`].
pub async fn stage(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    origin: &Origin,
    event: &Event<'_>,
) -> Result<(), StageError> {
    let id = random_id()?;
    let queued_at = crate::now();
    let queued = queued_at.to_string();
    let detail = event.detail.to_string();
    let columns = [
        id.as_str(),
        queued.as_str(),
        event.actor,
        event.action.as_str(),
        event.target,
        event.outcome,
        origin.client_ip.as_str(),
        origin.request_id.as_str(),
        detail.as_str(),
    ];
    let mac = row_mac(master, &columns);
    sqlx::query(
        "INSERT INTO audit_outbox (id, queued_at, actor, action, target, outcome, client_ip, request_id, detail, mac) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&id)
    .bind(queued_at)
    .bind(event.actor)
    .bind(event.action.as_str())
    .bind(event.target)
    .bind(event.outcome)
    .bind(&origin.client_ip)
    .bind(&origin.request_id)
    .bind(&detail)
    .bind(mac)
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
         RETURNING id, queued_at, actor, action, target, outcome, client_ip, request_id, detail, mac",
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
            let text = |name: &str| row.try_get::<String, _>(name);
            let queued_at: i64 = row.try_get("queued_at")?;
            let queued = queued_at.to_string();
            let (id, action, detail) = (text("id")?, text("action")?, text("detail")?);
            let (actor, target, outcome) = (text("actor")?, text("target")?, text("outcome")?);
            let (client_ip, request_id) = (text("client_ip")?, text("request_id")?);
            let columns = [
                id.as_str(),
                queued.as_str(),
                actor.as_str(),
                action.as_str(),
                target.as_str(),
                outcome.as_str(),
                client_ip.as_str(),
                request_id.as_str(),
                detail.as_str(),
            ];
            if !constant_time_eq(&row_mac(master, &columns), &text("mac")?) {
                tracing::error!(row = %id, "a staged audit row without the service's MAC was dropped");
                continue;
            }
            let Some(action) = crate::audit::action::Action::from_name(&action) else {
                continue;
            };
            staged.push(Staged {
                queued_at,
                id,
                origin: Origin {
                    client_ip,
                    request_id,
                },
                actor,
                action,
                target,
                outcome,
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
