//! Group commit for audit events that record no other change (tokens issued by
//! `client_credentials`, failed logins): callers wait until their row is committed, but many
//! rows share one transaction and one turn on the chain head. Under load this is what keeps the
//! hash chain from serialising the token endpoint on one commit per token.

use crate::audit::{self, Event, Origin};
use crate::keys::secrets::MasterKey;
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

/// Most events committed together.
const MAX_BATCH: usize = 256;

/// An event owned for the trip to the writer.
#[derive(Debug)]
struct Pending {
    origin: Origin,
    actor: String,
    action: crate::audit::action::Action,
    target: String,
    outcome: String,
    detail: serde_json::Value,
    done: oneshot::Sender<Result<i64, String>>,
}

/// Why an event could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The database refused the batch.
    #[error("audit write failed: {0}")]
    Db(String),
    /// The writer is gone (shutting down).
    #[error("audit writer stopped")]
    Stopped,
}

/// Handle to the writer task.
#[derive(Debug, Clone)]
pub struct AuditBatcher {
    queue: mpsc::Sender<Pending>,
}

impl AuditBatcher {
    /// Starts the writer on `pool`, chaining rows under `master`.
    pub fn spawn(pool: AnyPool, master: MasterKey) -> Self {
        let (queue, mut receiver) = mpsc::channel::<Pending>(4096);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
                match write(&pool, &master, &batch).await {
                    Ok(seqs) => {
                        for (pending, seq) in batch.drain(..).zip(seqs) {
                            let _ = pending.done.send(Ok(seq));
                        }
                    }
                    Err(error) => {
                        for pending in batch.drain(..) {
                            let _ = pending.done.send(Err(error.clone()));
                        }
                    }
                }
            }
        });
        AuditBatcher { queue }
    }

    /// Records `event` and returns its sequence number once it is committed.
    pub async fn record(&self, origin: &Origin, event: &Event<'_>) -> Result<i64, BatchError> {
        let (done, wait) = oneshot::channel();
        self.queue
            .send(Pending {
                origin: origin.clone(),
                actor: event.actor.to_owned(),
                action: event.action,
                target: event.target.to_owned(),
                outcome: event.outcome.to_owned(),
                detail: event.detail.clone(),
                done,
            })
            .await
            .map_err(|_| BatchError::Stopped)?;
        wait.await
            .map_err(|_| BatchError::Stopped)?
            .map_err(BatchError::Db)
    }
}

async fn write(pool: &AnyPool, master: &MasterKey, batch: &[Pending]) -> Result<Vec<i64>, String> {
    let events: Vec<Event<'_>> = batch
        .iter()
        .map(|pending| Event {
            actor: &pending.actor,
            action: pending.action,
            target: &pending.target,
            outcome: &pending.outcome,
            detail: pending.detail.clone(),
        })
        .collect();
    let pairs: Vec<(&Origin, &Event<'_>)> = batch
        .iter()
        .zip(&events)
        .map(|(pending, event)| (&pending.origin, event))
        .collect();
    let run = async {
        let mut tx = pool.begin().await?;
        let seqs = audit::append_many(&mut tx, master, &pairs).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(seqs)
    };
    run.await.map_err(|e| e.to_string())
}
