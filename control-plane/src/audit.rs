//! The audit log: append-only, hash-chained, written in the same transaction as the change it
//! records. Rows never hold secrets; callers pass identifiers only.

use crate::secrets::hex;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Any, AnyPool, Row as _, Transaction};

/// Where a request came from, for audit rows.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// Client IP address.
    pub client_ip: String,
    /// Request id (from `x-request-id` or generated).
    pub request_id: String,
}

/// One security event.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// Who acted (`user:<id>`, `client:<id>`, `cli`, `anonymous`).
    pub actor: &'a str,
    /// What happened (`login.succeeded`, `token.issued`, `user.created`, …).
    pub action: &'a str,
    /// What it happened to.
    pub target: &'a str,
    /// `success` or `failure`.
    pub outcome: &'a str,
    /// Non-secret details (JSON).
    pub detail: serde_json::Value,
}

/// A stored audit row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Seconds since the epoch.
    pub at: i64,
    /// Actor.
    pub actor: String,
    /// Action.
    pub action: String,
    /// Target.
    pub target: String,
    /// Outcome.
    pub outcome: String,
    /// Client IP.
    pub client_ip: String,
    /// Request id.
    pub request_id: String,
    /// Details (JSON text).
    pub detail: String,
    /// Hash of the previous row.
    pub prev_hash: String,
    /// Hash of this row.
    pub hash: String,
}

fn chain_hash(prev: &str, record: &Record) -> String {
    let mut hasher = Sha256::new();
    for field in [
        prev,
        &record.seq.to_string(),
        &record.at.to_string(),
        &record.actor,
        &record.action,
        &record.target,
        &record.outcome,
        &record.client_ip,
        &record.request_id,
        &record.detail,
    ] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hex(&hasher.finalize())
}

/// Appends `event` inside `tx`. Taking the chain head is an `UPDATE`, so concurrent writers
/// queue on its row lock and the chain stays linear.
pub async fn append(
    tx: &mut Transaction<'static, Any>,
    origin: &Origin,
    event: &Event<'_>,
) -> Result<i64, sqlx::Error> {
    let seqs = append_many(tx, &[(origin, event)]).await?;
    seqs.first().copied().ok_or(sqlx::Error::RowNotFound)
}

/// Appends several events inside `tx` with one turn on the chain head: the head reserves the
/// sequence numbers, the hashes are chained here, and the rows go in one `INSERT`.
pub async fn append_many(
    tx: &mut Transaction<'static, Any>,
    events: &[(&Origin, &Event<'_>)],
) -> Result<Vec<i64>, sqlx::Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let count = events.len() as i64;
    let head = sqlx::query("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
        .bind(count)
        .fetch_one(&mut **tx)
        .await?;
    let last: i64 = head.try_get(0)?;
    let mut prev: String = head.try_get(1)?;
    let at = crate::now();
    let mut records = Vec::with_capacity(events.len());
    for (offset, (origin, event)) in events.iter().enumerate() {
        let mut record = Record {
            seq: last - count + 1 + offset as i64,
            at,
            actor: event.actor.to_owned(),
            action: event.action.to_owned(),
            target: event.target.to_owned(),
            outcome: event.outcome.to_owned(),
            client_ip: origin.client_ip.clone(),
            request_id: origin.request_id.clone(),
            detail: event.detail.to_string(),
            prev_hash: prev.clone(),
            hash: String::new(),
        };
        record.hash = chain_hash(&prev, &record);
        prev = record.hash.clone();
        records.push(record);
    }
    let placeholders: Vec<String> = (0..records.len())
        .map(|row| {
            let cells: Vec<String> = (1..=11).map(|col| format!("${}", row * 11 + col)).collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO audit_log (seq, at, actor, action, target, outcome, client_ip, request_id, detail, prev_hash, hash) VALUES {}",
        placeholders.join(", ")
    );
    let mut insert = sqlx::query(&sql);
    for record in &records {
        insert = insert
            .bind(record.seq)
            .bind(record.at)
            .bind(record.actor.clone())
            .bind(record.action.clone())
            .bind(record.target.clone())
            .bind(record.outcome.clone())
            .bind(record.client_ip.clone())
            .bind(record.request_id.clone())
            .bind(record.detail.clone())
            .bind(record.prev_hash.clone())
            .bind(record.hash.clone());
    }
    insert.execute(&mut **tx).await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(&mut **tx)
        .await?;
    Ok(records.iter().map(|r| r.seq).collect())
}

/// Appends one event in its own transaction (for events that record no other change, such as a
/// failed login).
pub async fn append_alone(
    pool: &AnyPool,
    origin: &Origin,
    event: &Event<'_>,
) -> Result<i64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let seq = append(&mut tx, origin, event).await?;
    tx.commit().await?;
    Ok(seq)
}

/// Filters for listing the log.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Filter {
    /// Exact actor.
    pub actor: Option<String>,
    /// Exact action.
    pub action: Option<String>,
    /// Exact target.
    pub target: Option<String>,
    /// Events at or after (epoch seconds).
    pub since: Option<i64>,
    /// Events before (epoch seconds).
    pub until: Option<i64>,
    /// Rows after this sequence number (paging cursor).
    pub after: Option<i64>,
    /// Page size (default 100, max 1000).
    pub limit: Option<i64>,
}

fn row_to_record(row: &sqlx::any::AnyRow) -> Result<Record, sqlx::Error> {
    Ok(Record {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        outcome: row.try_get("outcome")?,
        client_ip: row.try_get("client_ip")?,
        request_id: row.try_get("request_id")?,
        detail: row.try_get("detail")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

const COLUMNS: &str =
    "seq, at, actor, action, target, outcome, client_ip, request_id, detail, prev_hash, hash";

/// Lists rows matching `filter`, oldest first.
pub async fn list(pool: &AnyPool, filter: &Filter) -> Result<Vec<Record>, sqlx::Error> {
    // Unset filters bind values that match everything, so one statement serves all shapes.
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_log \
         WHERE ($1 = '' OR actor = $1) AND ($2 = '' OR action = $2) AND ($3 = '' OR target = $3) \
         AND at >= $4 AND at < $5 AND seq > $6 ORDER BY seq LIMIT $7"
    ))
    .bind(filter.actor.clone().unwrap_or_default())
    .bind(filter.action.clone().unwrap_or_default())
    .bind(filter.target.clone().unwrap_or_default())
    .bind(filter.since.unwrap_or(i64::MIN))
    .bind(filter.until.unwrap_or(i64::MAX))
    .bind(filter.after.unwrap_or(0))
    .bind(filter.limit.unwrap_or(100).clamp(1, 1000))
    .fetch_all(pool)
    .await?;
    rows.iter().map(row_to_record).collect()
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// A row's hash does not match its content or predecessor.
    #[error("audit row {0} does not match its hash chain")]
    Broken(i64),
    /// Sequence numbers skip (a row was deleted).
    #[error("audit row {0} is missing")]
    Missing(i64),
    /// The head does not point at the last row (rows were dropped from the end).
    #[error("audit head does not match the last row")]
    Head,
    /// The database failed.
    #[error("database: {0}")]
    Db(String),
}

/// Walks the chain up to the head read at the start (rows appended meanwhile are left for the
/// next run); returns the number of rows verified.
pub async fn verify(pool: &AnyPool) -> Result<i64, ChainError> {
    let db = |e: sqlx::Error| ChainError::Db(e.to_string());
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(pool)
        .await
        .map_err(db)?;
    let head_seq: i64 = head.try_get(0).map_err(db)?;
    let head_hash: String = head.try_get(1).map_err(db)?;
    let mut prev = "0".repeat(64);
    let mut expected = 1;
    while expected <= head_seq {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT 1000"
        ))
        .bind(expected)
        .bind(head_seq)
        .fetch_all(pool)
        .await
        .map_err(db)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let record = row_to_record(row).map_err(db)?;
            if record.seq != expected {
                return Err(ChainError::Missing(expected));
            }
            if record.prev_hash != prev || chain_hash(&prev, &record) != record.hash {
                return Err(ChainError::Broken(record.seq));
            }
            prev = record.hash;
            expected += 1;
        }
    }
    if expected - 1 != head_seq || head_hash != prev {
        return Err(ChainError::Head);
    }
    Ok(head_seq)
}
