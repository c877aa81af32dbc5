//! The audit log: append-only, written in the same transaction as the change it records, each
//! row chained to the previous one by an HMAC-SHA256 under a key derived from the master key.
//! The key is never stored, so someone who can write the database but does not hold the master
//! key cannot rewrite a row and recompute the chain after it.
//!
//! What a chain alone cannot show is a dropped tail (delete the newest rows and point the head at
//! the last one left) or a history rewritten by someone who does hold the key. For those the head
//! is checkpointed: a [`Checkpoint`] (sequence, hash, time) signed with an Ed25519 key derived
//! from the master key, written to the service log and, as an `audit.checkpoint` row, to the event
//! stream, both outside the database. `portcullis audit verify --checkpoint` compares the chain
//! with one. Rows never hold secrets; callers pass identifiers only.
//!
//! A row's client address is personal data that an erasure must be able to remove, yet a chained
//! row cannot change. So the chain covers the address's pseudonym (a keyed hash, stored beside
//! it), not the address: [`erase_addresses`] blanks the addresses of one principal's rows and
//! the chain still verifies, while an address changed to another one no longer matches its
//! pseudonym and breaks verification, and so does a blanked address on a row about anyone whose
//! erasure (`user.deleted`) the chain does not record. Rows written before pseudonyms existed
//! (an empty pseudonym) are chained over the address itself and keep it.
//!
//! [`action`] names what the log records, [`batch`] groups the rows of hot paths into one
//! transaction, and [`relay`] publishes the events to Redis.

pub mod action;
pub mod batch;
pub mod relay;

use crate::audit::action::Action;
use crate::keys::secrets::{hex, MasterKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Any, AnyPool, Row as _, Transaction};
use std::collections::HashSet;

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
    /// What happened.
    pub action: Action,
    /// What it happened to.
    pub target: &'a str,
    /// `success` or `failure`.
    pub outcome: &'a str,
    /// Non-secret details (JSON).
    pub detail: serde_json::Value,
}

/// A stored audit row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
    /// Client IP (empty once erased).
    pub client_ip: String,
    /// The client IP's keyed pseudonym, which the chain covers (empty on rows older than it).
    pub client_ip_pseudonym: String,
    /// Request id.
    pub request_id: String,
    /// Details (JSON text).
    pub detail: String,
    /// Hash of the previous row.
    pub prev_hash: String,
    /// Hash of this row.
    pub hash: String,
}

/// The fields a row's hash covers, each length-prefixed so that no two rows share an input.
fn chain_input(prev: &str, record: &Record) -> Vec<u8> {
    let address = if record.client_ip_pseudonym.is_empty() {
        record.client_ip.clone()
    } else {
        format!("pseudonym:{}", record.client_ip_pseudonym)
    };
    let mut input = Vec::new();
    for field in [
        prev,
        &record.seq.to_string(),
        &record.at.to_string(),
        &record.actor,
        &record.action,
        &record.target,
        &record.outcome,
        &address,
        &record.request_id,
        &record.detail,
    ] {
        input.extend_from_slice(&(field.len() as u64).to_be_bytes());
        input.extend_from_slice(field.as_bytes());
    }
    input
}

fn chain_hash(key: &[u8; 32], prev: &str, record: &Record) -> String {
    let mut mac = <Hmac<Sha256>>::new_from_slice(key).expect("HMAC takes any key size");
    mac.update(&chain_input(prev, record));
    hex(&mac.finalize().into_bytes())
}

/// The unkeyed SHA-256 chain of stores created before the chain was keyed ([`rekey`]).
fn legacy_chain_hash(prev: &str, record: &Record) -> String {
    hex(&Sha256::digest(chain_input(prev, record)))
}

/// Appends `event` inside `tx`. Taking the chain head is an `UPDATE`, so concurrent writers
/// queue on its row lock and the chain stays linear.
pub async fn append(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    origin: &Origin,
    event: &Event<'_>,
) -> Result<i64, sqlx::Error> {
    let seqs = append_many(tx, master, &[(origin, event)]).await?;
    seqs.first().copied().ok_or(sqlx::Error::RowNotFound)
}

/// Appends several events inside `tx` with one turn on the chain head: the head reserves the
/// sequence numbers, the hashes are chained here, and the rows go in one `INSERT`.
pub async fn append_many(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
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
            action: event.action.as_str().to_owned(),
            target: event.target.to_owned(),
            outcome: event.outcome.to_owned(),
            client_ip: origin.client_ip.clone(),
            // A row without an address has nothing to erase: it is chained over the empty text.
            client_ip_pseudonym: if origin.client_ip.is_empty() {
                String::new()
            } else {
                master.address_pseudonym(&origin.client_ip)
            },
            request_id: origin.request_id.clone(),
            detail: event.detail.to_string(),
            prev_hash: prev.clone(),
            hash: String::new(),
        };
        record.hash = chain_hash(master.audit_chain_key(), &prev, &record);
        prev = record.hash.clone();
        records.push(record);
    }
    let placeholders: Vec<String> = (0..records.len())
        .map(|row| {
            let cells: Vec<String> = (1..=12).map(|col| format!("${}", row * 12 + col)).collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO audit_log (seq, at, actor, action, target, outcome, client_ip, client_ip_pseudonym, request_id, detail, prev_hash, hash) VALUES {}",
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
            .bind(record.client_ip_pseudonym.clone())
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
    master: &MasterKey,
    origin: &Origin,
    event: &Event<'_>,
) -> Result<i64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let seq = append(&mut tx, master, origin, event).await?;
    tx.commit().await?;
    Ok(seq)
}

/// Filters for listing the log.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Exact actor.
    pub actor: Option<String>,
    /// Exact action.
    pub action: Option<String>,
    /// Exact target.
    pub target: Option<String>,
    /// Rows whose actor or target is this (everything about one principal).
    pub subject: Option<String>,
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
        client_ip_pseudonym: row.try_get("client_ip_pseudonym")?,
        request_id: row.try_get("request_id")?,
        detail: row.try_get("detail")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

const COLUMNS: &str = "seq, at, actor, action, target, outcome, client_ip, client_ip_pseudonym, \
     request_id, detail, prev_hash, hash";

/// Lists rows matching `filter`, oldest first.
pub async fn list(pool: &AnyPool, filter: &Filter) -> Result<Vec<Record>, sqlx::Error> {
    // Unset filters bind values that match everything, so one statement serves all shapes.
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_log \
         WHERE ($1 = '' OR actor = $1) AND ($2 = '' OR action = $2) AND ($3 = '' OR target = $3) \
         AND at >= $4 AND at < $5 AND seq > $6 AND ($8 = '' OR actor = $8 OR target = $8) \
         ORDER BY seq LIMIT $7"
    ))
    .bind(filter.actor.clone().unwrap_or_default())
    .bind(filter.action.clone().unwrap_or_default())
    .bind(filter.target.clone().unwrap_or_default())
    .bind(filter.since.unwrap_or(i64::MIN))
    .bind(filter.until.unwrap_or(i64::MAX))
    .bind(filter.after.unwrap_or(0))
    .bind(filter.limit.unwrap_or(100).clamp(1, 1000))
    .bind(filter.subject.clone().unwrap_or_default())
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
    /// The chain ends before a checkpoint's row: its tail was dropped.
    #[error("the audit log ends at row {head}, but a checkpoint vouches for row {checkpoint}")]
    TailDropped {
        /// The checkpoint's sequence number.
        checkpoint: i64,
        /// The head's.
        head: i64,
    },
    /// The row a checkpoint vouches for has another hash now: history was rewritten.
    #[error("audit row {0} differs from the checkpoint that vouches for it")]
    Rewritten(i64),
    /// The checkpoint does not parse or its signature does not verify.
    #[error("not a valid audit checkpoint: {0}")]
    BadCheckpoint(&'static str),
    /// The chain predates keying and must be keyed once by the operator.
    #[error(
        "the audit chain is not keyed yet: run `portcullis audit rekey` once (after upgrading)"
    )]
    Unkeyed,
    /// `audit rekey` on a chain that is keyed already.
    #[error("the audit chain is keyed already")]
    AlreadyKeyed,
    /// Rows exist past the head (the head was moved back).
    #[error("audit rows exist beyond the head at {0}")]
    BeyondHead(i64),
    /// The database failed.
    #[error("database: {0}")]
    Db(String),
}

fn db(error: sqlx::Error) -> ChainError {
    ChainError::Db(error.to_string())
}

/// Walks the chain up to the head read at the start (rows appended meanwhile are left for the
/// next run), checking each row with `hash`; returns the head's sequence number and hash.
async fn walk(
    pool: &AnyPool,
    hash: impl Fn(&str, &Record) -> String,
    address_matches: impl Fn(&Record) -> bool,
) -> Result<(i64, String), ChainError> {
    // Read before the head: an append moves both in one transaction, so a newest row above the
    // head read after it means the head was moved back.
    let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM audit_log")
        .fetch_one(pool)
        .await
        .map_err(db)?;
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(pool)
        .await
        .map_err(db)?;
    let head_seq: i64 = head.try_get(0).map_err(db)?;
    let head_hash: String = head.try_get(1).map_err(db)?;
    if newest.is_some_and(|newest| newest > head_seq) {
        return Err(ChainError::BeyondHead(head_seq));
    }
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
            if record.prev_hash != prev
                || hash(&prev, &record) != record.hash
                || !address_matches(&record)
            {
                return Err(ChainError::Broken(record.seq));
            }
            prev = record.hash;
            expected += 1;
        }
    }
    if expected - 1 != head_seq || head_hash != prev {
        return Err(ChainError::Head);
    }
    Ok((head_seq, head_hash))
}

/// Verifies the keyed chain up to the head; returns the number of rows verified.
pub async fn verify(pool: &AnyPool, master: &MasterKey) -> Result<i64, ChainError> {
    let key = master.audit_chain_key();
    let erased = erased_subjects(pool).await?;
    walk(
        pool,
        |prev, record| chain_hash(key, prev, record),
        |record| address_matches(master, &erased, record),
    )
    .await
    .map(|(seq, _)| seq)
}

/// The principals whose erasure the chain records (`user.deleted`): only their rows may have
/// lost their address.
async fn erased_subjects(pool: &AnyPool) -> Result<HashSet<String>, ChainError> {
    let targets: Vec<String> = sqlx::query_scalar("SELECT target FROM audit_log WHERE action = $1")
        .bind(Action::UserDeleted.as_str())
        .fetch_all(pool)
        .await
        .map_err(db)?;
    Ok(targets.into_iter().collect())
}

/// Whether a row's address is its pseudonym's, from before pseudonyms, or erased — and erased
/// only on a row about a principal whose erasure the chain records, so whoever may blank the
/// column (the insert-only role) cannot wipe the address of any other row unnoticed.
fn address_matches(master: &MasterKey, erased: &HashSet<String>, record: &Record) -> bool {
    if record.client_ip_pseudonym.is_empty() {
        return true;
    }
    if record.client_ip.is_empty() {
        return erased.contains(&record.actor) || erased.contains(&record.target);
    }
    master.address_pseudonym(&record.client_ip) == record.client_ip_pseudonym
}

/// Erases the client addresses of every row whose actor or target is `subject` (a principal's
/// erasure); their pseudonyms stay, so the chain verifies and rows from one address still
/// correlate. Returns the rows erased.
pub async fn erase_addresses(
    tx: &mut Transaction<'static, Any>,
    subject: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE audit_log SET client_ip = '' WHERE (actor = $1 OR target = $1) \
         AND client_ip_pseudonym <> '' AND client_ip <> ''",
    )
    .bind(subject)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Refuses to go on with a chain that is not keyed, unless it is empty (a new store, which is
/// marked keyed here). Keying an old chain is a deliberate, one-time operator step
/// ([`rekey`]): done automatically, anyone who can write the database could rewrite the rows,
/// recompute the unkeyed chain, clear the flag, and have the next start bless the forgery.
pub async fn ensure_keyed(pool: &AnyPool) -> Result<(), ChainError> {
    let head = sqlx::query("SELECT seq, keyed FROM audit_head WHERE id = 1")
        .fetch_one(pool)
        .await
        .map_err(db)?;
    let (seq, keyed): (i64, i64) = (head.try_get(0).map_err(db)?, head.try_get(1).map_err(db)?);
    if keyed == 1 {
        return Ok(());
    }
    if seq > 0 {
        return Err(ChainError::Unkeyed);
    }
    sqlx::query("UPDATE audit_head SET keyed = 1 WHERE id = 1 AND seq = 0")
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(())
}

/// `portcullis audit rekey`: keys a chain written before the chain was keyed. The unkeyed chain
/// must verify first; every row is then re-hashed under the master key in one transaction and an
/// `audit.rekeyed` row records the old head. Refused when the chain is keyed already or holds a
/// checkpoint (only chains written by this version have those). Returns the rows re-hashed.
pub async fn rekey(pool: &AnyPool, master: &MasterKey) -> Result<i64, ChainError> {
    let keyed: i64 = sqlx::query_scalar("SELECT keyed FROM audit_head WHERE id = 1")
        .fetch_one(pool)
        .await
        .map_err(db)?;
    let checkpoints: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM audit_log WHERE action = $1 LIMIT 1")
            .bind(Action::AuditCheckpoint.as_str())
            .fetch_optional(pool)
            .await
            .map_err(db)?;
    if keyed == 1 || checkpoints.is_some() {
        return Err(ChainError::AlreadyKeyed);
    }
    let erased = erased_subjects(pool).await?;
    let (head_seq, old_head) = walk(pool, legacy_chain_hash, |record| {
        address_matches(master, &erased, record)
    })
    .await?;
    let mut tx = pool.begin().await.map_err(db)?;
    let key = master.audit_chain_key();
    let mut prev = "0".repeat(64);
    let mut next = 1;
    while next <= head_seq {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT 1000"
        ))
        .bind(next)
        .bind(head_seq)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        for row in &rows {
            let record = row_to_record(row).map_err(db)?;
            let hash = chain_hash(key, &prev, &record);
            sqlx::query("UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE seq = $3")
                .bind(&prev)
                .bind(&hash)
                .bind(record.seq)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            prev = hash;
            next = record.seq + 1;
        }
    }
    sqlx::query("UPDATE audit_head SET hash = $1, keyed = 1 WHERE id = 1 AND seq = $2")
        .bind(&prev)
        .bind(head_seq)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    append(
        &mut tx,
        master,
        &Origin::default(),
        &Event {
            actor: "cli",
            action: Action::AuditRekeyed,
            target: "audit-log",
            outcome: "success",
            detail: serde_json::json!({"rows": head_seq, "unkeyed_head": old_head}),
        },
    )
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(head_seq)
}

/// A signed statement that the chain's row `seq` had hash `hash` at time `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The head's sequence number.
    pub seq: i64,
    /// The head row's hash.
    pub hash: String,
    /// When the checkpoint was taken (epoch seconds).
    pub at: i64,
}

/// What a checkpoint's text starts with.
const CHECKPOINT_PREFIX: &str = "pcc1";

impl Checkpoint {
    fn message(&self) -> String {
        format!("{CHECKPOINT_PREFIX}.{}.{}.{}", self.seq, self.hash, self.at)
    }

    /// `pcc1.<seq>.<hash>.<at>.<Ed25519 signature, base64url>`.
    pub fn sign(&self, master: &MasterKey) -> String {
        let message = self.message();
        let signature = master.audit_checkpoint_key().sign_bytes(message.as_bytes());
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// Parses `text` and checks its signature against the checkpoint key of `master`.
    pub fn verified(text: &str, master: &MasterKey) -> Result<Self, ChainError> {
        let (message, signature) = text
            .trim()
            .rsplit_once('.')
            .ok_or(ChainError::BadCheckpoint("no signature"))?;
        let mut parts = message.split('.');
        let (Some(CHECKPOINT_PREFIX), Some(seq), Some(hash), Some(at), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(ChainError::BadCheckpoint(
                "not pcc1.<seq>.<hash>.<at>.<signature>",
            ));
        };
        let checkpoint = Checkpoint {
            seq: seq
                .parse()
                .map_err(|_| ChainError::BadCheckpoint("bad sequence"))?,
            hash: hash.to_owned(),
            at: at
                .parse()
                .map_err(|_| ChainError::BadCheckpoint("bad time"))?,
        };
        let public = master.audit_checkpoint_key().public_jwk();
        let public: [u8; 32] = public
            .x
            .as_deref()
            .and_then(|x| URL_SAFE_NO_PAD.decode(x).ok())
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(ChainError::BadCheckpoint("no checkpoint key"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| ChainError::BadCheckpoint("signature is not base64url"))?;
        let verifies = portcullis_authz::ed25519::VerifyingKey::from_bytes(public)
            .is_some_and(|key| key.verify(message.as_bytes(), &signature));
        if !verifies {
            return Err(ChainError::BadCheckpoint("the signature does not verify"));
        }
        Ok(checkpoint)
    }
}

/// A checkpoint of the current head.
pub async fn checkpoint(pool: &AnyPool) -> Result<Checkpoint, ChainError> {
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(pool)
        .await
        .map_err(db)?;
    Ok(Checkpoint {
        seq: head.try_get(0).map_err(db)?,
        hash: head.try_get(1).map_err(db)?,
        at: crate::now(),
    })
}

/// Verifies the chain and that it still holds `checkpoint`'s row unchanged; returns the number
/// of rows verified.
pub async fn verify_against(
    pool: &AnyPool,
    master: &MasterKey,
    checkpoint: &Checkpoint,
) -> Result<i64, ChainError> {
    let head = verify(pool, master).await?;
    if head < checkpoint.seq {
        return Err(ChainError::TailDropped {
            checkpoint: checkpoint.seq,
            head,
        });
    }
    if checkpoint.seq == 0 {
        return Ok(head);
    }
    let hash: Option<String> = sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = $1")
        .bind(checkpoint.seq)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    if hash.as_deref() != Some(checkpoint.hash.as_str()) {
        return Err(ChainError::Rewritten(checkpoint.seq));
    }
    Ok(head)
}

/// Checkpoints the head if it moved past `last` (the sequence of the previous checkpoint row):
/// logs the signed checkpoint and appends it as an `audit.checkpoint` row, so it also leaves
/// through the event stream. Returns that row's sequence number, the next call's `last`.
pub async fn checkpoint_if_moved(
    pool: &AnyPool,
    master: &MasterKey,
    last: i64,
) -> Result<i64, ChainError> {
    let head = checkpoint(pool).await?;
    if head.seq <= last {
        return Ok(last);
    }
    // Another replica's checkpoint is the newest row: nothing happened since.
    let newest: Option<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE seq = $1")
        .bind(head.seq)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    if newest.as_deref() == Some(Action::AuditCheckpoint.as_str()) {
        return Ok(head.seq);
    }
    let signed = head.sign(master);
    tracing::info!(checkpoint = %signed, "audit checkpoint");
    let origin = Origin::default();
    append_alone(
        pool,
        master,
        &origin,
        &Event {
            actor: "portcullis",
            action: Action::AuditCheckpoint,
            target: &signed,
            outcome: "success",
            detail: serde_json::json!({"seq": head.seq}),
        },
    )
    .await
    .map_err(db)
}

/// How many tokens `actor` (`client:<id>`) was issued, and when the last one was (epoch seconds).
pub async fn tokens_issued(pool: &AnyPool, actor: &str) -> Result<(i64, Option<i64>), sqlx::Error> {
    let row =
        sqlx::query("SELECT COUNT(*), MAX(at) FROM audit_log WHERE actor = $1 AND action = $2")
            .bind(actor)
            .bind(Action::TokenIssued.as_str())
            .fetch_one(pool)
            .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}
