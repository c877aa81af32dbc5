//! A browser's sign-in session (single sign-on): after one sign-in on the login page, the
//! authorization endpoint gives codes to other clients without asking again while the session
//! lives. The browser holds only a random cookie value; the row holds its keyed hash, who signed
//! in, how and when.
//!
//! A session ends at its absolute lifetime (`PORTCULLIS_SESSION_MAX`), after its idle lifetime
//! without use (`PORTCULLIS_SESSION_IDLE`), or when ended (logout, the user disabled, a password
//! change, the session cap). Every sign-in makes a new session with a new cookie value (the old
//! one, if the browser sent it, is ended), so a value planted before the sign-in is worthless
//! after it (no session fixation). Refresh-token sessions opened through a browser session name
//! it: ending the browser session ends them and revokes their access tokens at the edge.

use crate::keys::secrets::{random_id, random_secret, HashPurpose, MasterKey, SecretError};
use sqlx::{Any, Row as _, Transaction};

/// A live browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserSession {
    /// Its id (the id_token's `sid`).
    pub id: String,
    /// The user.
    pub user_id: String,
    /// How the user signed in, space separated.
    pub amr: String,
    /// When, epoch seconds.
    pub auth_time: i64,
}

/// Lifetimes a session is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Seconds without use.
    pub idle: i64,
    /// Seconds since sign-in.
    pub max: i64,
}

/// Why a session could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum BrowserSessionError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// Randomness failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// Opens a session for a sign-in that just happened; returns it and the cookie value. `previous`
/// (the cookie the browser sent, if any) is ended.
pub async fn open(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    user_id: &str,
    amr: &str,
    limits: Limits,
    previous: Option<&str>,
) -> Result<(BrowserSession, String), BrowserSessionError> {
    let now = crate::now();
    if let Some(previous) = previous {
        sqlx::query(
            "UPDATE browser_sessions SET ended_at = $1 WHERE cookie_hash = $2 AND ended_at IS NULL",
        )
        .bind(now)
        .bind(master.keyed_hash(HashPurpose::BrowserSession, previous))
        .execute(&mut **tx)
        .await?;
    }
    let id = random_id()?;
    let cookie = random_secret("pcb_")?;
    sqlx::query(
        "INSERT INTO browser_sessions (id, cookie_hash, user_id, amr, auth_time, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $5, $6)",
    )
    .bind(&id)
    .bind(master.keyed_hash(HashPurpose::BrowserSession, &cookie))
    .bind(user_id)
    .bind(amr)
    .bind(now)
    .bind(now + limits.max)
    .execute(&mut **tx)
    .await?;
    Ok((
        BrowserSession {
            id,
            user_id: user_id.to_owned(),
            amr: amr.to_owned(),
            auth_time: now,
        },
        cookie,
    ))
}

/// The live session of `cookie`, its use recorded (which restarts the idle time).
pub async fn resume(
    pool: &sqlx::AnyPool,
    master: &MasterKey,
    cookie: &str,
    limits: Limits,
) -> Result<Option<BrowserSession>, sqlx::Error> {
    let now = crate::now();
    let hash = master.keyed_hash(HashPurpose::BrowserSession, cookie);
    let touched = sqlx::query(
        "UPDATE browser_sessions SET last_seen_at = $1 \
         WHERE cookie_hash = $2 AND ended_at IS NULL AND expires_at > $1 AND last_seen_at > $3",
    )
    .bind(now)
    .bind(&hash)
    .bind(now - limits.idle)
    .execute(pool)
    .await?
    .rows_affected();
    if touched == 0 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT id, user_id, amr, auth_time FROM browser_sessions WHERE cookie_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(BrowserSession {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            amr: row.try_get("amr")?,
            auth_time: row.try_get("auth_time")?,
        })
    })
    .transpose()
}

/// The live session of `cookie` (its id and user), not touched.
pub async fn of_cookie(
    pool: &sqlx::AnyPool,
    master: &MasterKey,
    cookie: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, user_id FROM browser_sessions \
         WHERE cookie_hash = $1 AND ended_at IS NULL AND expires_at > $2",
    )
    .bind(master.keyed_hash(HashPurpose::BrowserSession, cookie))
    .bind(crate::now())
    .fetch_optional(pool)
    .await?;
    row.map(|row| Ok((row.try_get("id")?, row.try_get("user_id")?)))
        .transpose()
}

/// Ends the session `id`; returns whether it was live.
pub async fn end(tx: &mut Transaction<'static, Any>, id: &str) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE browser_sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
            .bind(crate::now())
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Ends the live session of `cookie`; returns its id and user, if it was live.
pub async fn end_by_cookie(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    cookie: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE browser_sessions SET ended_at = $1 WHERE cookie_hash = $2 AND ended_at IS NULL \
         RETURNING id, user_id",
    )
    .bind(crate::now())
    .bind(master.keyed_hash(HashPurpose::BrowserSession, cookie))
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|row| Ok((row.try_get("id")?, row.try_get("user_id")?)))
        .transpose()
}

/// Ends the session `id` if it is `user_id`'s; returns whether it was live.
pub async fn end_of_user(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    user_id: &str,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE browser_sessions SET ended_at = $1 WHERE id = $2 AND user_id = $3 AND ended_at IS NULL",
    )
    .bind(crate::now())
    .bind(id)
    .bind(user_id)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1)
}

/// Whether the session `id` has not ended (by logout, disable, password change or the cap) and
/// is within its absolute lifetime: a code from a sign-in that has ended since opens nothing.
/// A no-op `UPDATE` rather than a `SELECT`, so that the row stays locked until `tx` ends: a
/// logout committing meanwhile waits, and then ends the session this transaction opens too.
pub async fn standing(tx: &mut Transaction<'static, Any>, id: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE browser_sessions SET id = id WHERE id = $1 AND ended_at IS NULL AND expires_at > $2",
    )
    .bind(id)
    .bind(crate::now())
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1)
}

/// Ends every live session of a user; returns how many.
pub async fn end_for_user(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE browser_sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL",
    )
    .bind(crate::now())
    .bind(user_id)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Ends the oldest live sessions of a user beyond `max`; returns how many.
pub async fn cap(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
    max: usize,
) -> Result<u64, sqlx::Error> {
    let now = crate::now();
    let live: Vec<String> = sqlx::query(
        "SELECT id FROM browser_sessions WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2 \
         ORDER BY auth_time DESC, id DESC",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|row| row.try_get("id"))
    .collect::<Result<_, _>>()?;
    let mut ended = 0;
    for id in live.iter().skip(max) {
        ended += u64::from(end(tx, id).await?);
    }
    Ok(ended)
}

/// Deletes sessions ended or expired more than a day ago; returns how many.
pub async fn prune(pool: &sqlx::AnyPool) -> Result<u64, sqlx::Error> {
    let before = crate::now() - 86_400;
    Ok(sqlx::query(
        "DELETE FROM browser_sessions WHERE expires_at <= $1 OR (ended_at IS NOT NULL AND ended_at <= $1)",
    )
    .bind(before)
    .execute(pool)
    .await?
    .rows_affected())
}
