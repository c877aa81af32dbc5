//! Sessions (refresh-token families) and revocations. A refresh token is opaque (256 bits),
//! stored as a keyed hash, used once: rotation marks it used in the same statement that checks
//! it, so of two concurrent refreshes exactly one wins.

use crate::keys::secrets::{random_id, random_secret, HashPurpose, MasterKey, SecretError};
use serde::Serialize;
use sqlx::{Any, AnyPool, Row as _, Transaction};

/// A session as listed to its user or an administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Session {
    /// Session id (`sid` in access tokens).
    pub session_id: String,
    /// The user.
    pub user_id: String,
    /// The client it was opened through.
    pub client_id: String,
    /// Granted scopes.
    pub scope: String,
    /// Authentication methods (space separated).
    pub amr: String,
    /// The audiences its grant was for (space separated; empty for sessions older than the
    /// binding): refreshed access tokens are for these only.
    pub audience: String,
    /// Opened, epoch seconds.
    pub created_at: i64,
    /// Absolute expiry, epoch seconds.
    pub expires_at: i64,
}

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// Randomness failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// What a sign-in grants a new session.
#[derive(Debug, Clone, Copy)]
pub struct Opening<'a> {
    /// The user.
    pub user_id: &'a str,
    /// The client signed in through.
    pub client_id: &'a str,
    /// Granted scopes (space separated).
    pub scope: &'a str,
    /// Authentication methods (space separated).
    pub amr: &'a str,
    /// The grant's audiences (space separated).
    pub audience: &'a str,
    /// Seconds until the session ends, however often it is refreshed.
    pub lifetime: i64,
    /// The browser sign-in it was opened through, if any: ending that ends this one.
    pub browser_session_id: Option<&'a str>,
    /// The OpenID scopes granted (space separated; empty outside OpenID Connect): which claims
    /// userinfo answers with.
    pub openid_scope: &'a str,
}

/// Opens a session and returns it with its first refresh token.
pub async fn open(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    opening: &Opening<'_>,
) -> Result<(Session, String), SessionError> {
    let now = crate::now();
    let session = Session {
        session_id: random_id()?,
        user_id: opening.user_id.to_owned(),
        client_id: opening.client_id.to_owned(),
        scope: opening.scope.to_owned(),
        amr: opening.amr.to_owned(),
        audience: opening.audience.to_owned(),
        created_at: now,
        expires_at: now + opening.lifetime,
    };
    sqlx::query(
        "INSERT INTO sessions (id, user_id, client_id, scope, amr, audience, created_at, expires_at, revoked_at, browser_session_id, openid_scope) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10)",
    )
    .bind(&session.session_id)
    .bind(&session.user_id)
    .bind(&session.client_id)
    .bind(&session.scope)
    .bind(&session.amr)
    .bind(&session.audience)
    .bind(now)
    .bind(session.expires_at)
    .bind(opening.browser_session_id.map(str::to_owned))
    .bind(opening.openid_scope)
    .execute(&mut **tx)
    .await?;
    let refresh = new_refresh_token(tx, master, &session.session_id).await?;
    Ok((session, refresh))
}

async fn new_refresh_token(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    session_id: &str,
) -> Result<String, SessionError> {
    let token = random_secret("pcr_")?;
    sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, created_at, used_at) VALUES ($1, $2, $3, NULL)")
        .bind(master.keyed_hash(HashPurpose::RefreshToken, &token))
        .bind(session_id)
        .bind(crate::now())
        .execute(&mut **tx)
        .await?;
    Ok(token)
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// Rotated: the session and the new refresh token.
    Rotated(Session, String),
    /// Unknown token, or its session is revoked or expired.
    Invalid,
    /// Issued to another client.
    WrongClient,
    /// Already used, within the grace window, and its successor not yet used: an identical
    /// retry (the client lost the answer), given the same successor again.
    Retried(Session, String),
    /// Already used, after the grace window: the whole family is now revoked.
    ReuseDetected(Session),
}

fn session_from_row(row: &sqlx::any::AnyRow) -> Result<Session, sqlx::Error> {
    Ok(Session {
        session_id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        client_id: row.try_get("client_id")?,
        scope: row.try_get("scope")?,
        amr: row.try_get("amr")?,
        audience: row.try_get("audience")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

/// Rotates `token` for `client_id`. Reuse after `grace` seconds revokes the family (the caller
/// adds the `sid` revocation for access tokens in the same transaction).
pub async fn rotate(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    token: &str,
    client_id: &str,
    grace: i64,
) -> Result<Refresh, SessionError> {
    let now = crate::now();
    let hash = master.keyed_hash(HashPurpose::RefreshToken, token);
    let row = sqlx::query(
        "SELECT s.id, s.user_id, s.client_id, s.scope, s.amr, s.audience, s.created_at, s.expires_at, s.revoked_at, r.used_at \
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(Refresh::Invalid);
    };
    let session = session_from_row(&row)?;
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    if session.client_id != client_id {
        return Ok(Refresh::WrongClient);
    }
    if revoked_at.is_some() || session.expires_at <= now {
        return Ok(Refresh::Invalid);
    }
    let claimed = sqlx::query(
        "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
    )
    .bind(now)
    .bind(&hash)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let context = format!("refresh-successor:{}", session.session_id);
    if claimed == 1 {
        // Older tokens' successors are used by now: nobody may be handed them again, and a live
        // token sealed in the database is one more thing a dump could give away.
        sqlx::query(
            "UPDATE refresh_tokens SET successor = NULL WHERE session_id = $1 AND successor IS NOT NULL",
        )
        .bind(&session.session_id)
        .execute(&mut **tx)
        .await?;
        let next = new_refresh_token(tx, master, &session.session_id).await?;
        sqlx::query("UPDATE refresh_tokens SET successor = $1 WHERE token_hash = $2")
            .bind(master.seal(&context, next.as_bytes())?)
            .bind(&hash)
            .execute(&mut **tx)
            .await?;
        return Ok(Refresh::Rotated(session, next));
    }
    let used = sqlx::query("SELECT used_at, successor FROM refresh_tokens WHERE token_hash = $1")
        .bind(&hash)
        .fetch_one(&mut **tx)
        .await?;
    let used_at: Option<i64> = used.try_get(0)?;
    let successor: Option<String> = used.try_get(1)?;
    if let (Some(at), Some(sealed)) = (used_at, successor) {
        if now - at <= grace {
            let next = String::from_utf8(master.open(&context, &sealed)?)
                .map_err(|_| SecretError::Unseal)?;
            // Only while the successor is unused: once it was presented, whoever presents its
            // predecessor again is not the client that lost an answer.
            let unused: Option<String> = sqlx::query_scalar(
                "SELECT session_id FROM refresh_tokens WHERE token_hash = $1 AND used_at IS NULL",
            )
            .bind(master.keyed_hash(HashPurpose::RefreshToken, &next))
            .fetch_optional(&mut **tx)
            .await?;
            if unused.is_some() {
                return Ok(Refresh::Retried(session, next));
            }
        }
    }
    revoke(tx, &session.session_id).await?;
    Ok(Refresh::ReuseDetected(session))
}

/// Marks a session revoked; returns whether it was live.
pub async fn revoke(
    tx: &mut Transaction<'static, Any>,
    session_id: &str,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(crate::now())
            .bind(session_id)
            .execute(&mut **tx)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Ends every live session whose `column` (`user_id`, `client_id` or `browser_session_id`) is `value`, except `keep`,
/// and revokes their access tokens for as long as one can live; returns how many ended. Two
/// statements whatever the number of sessions.
async fn end_where(
    tx: &mut Transaction<'static, Any>,
    column: &'static str,
    value: &str,
    keep: Option<&str>,
    longest_access: i64,
) -> Result<usize, sqlx::Error> {
    let now = crate::now();
    let ended = sqlx::query(&format!(
        "UPDATE sessions SET revoked_at = $1 WHERE {column} = $2 AND revoked_at IS NULL AND id <> $3"
    ))
    .bind(now)
    .bind(value)
    .bind(keep.unwrap_or(""))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if ended > 0 {
        // Sessions ended by an earlier call in the same second already have their entry.
        sqlx::query(&format!(
            "INSERT INTO revocations (id, sid, exp, created_at) \
             SELECT 'sid:' || id || ':' || $1, id, $2, $1 FROM sessions \
             WHERE {column} = $3 AND revoked_at = $1 AND id <> $4 \
             ON CONFLICT (id) DO NOTHING"
        ))
        .bind(now)
        .bind(now + longest_access)
        .bind(value)
        .bind(keep.unwrap_or(""))
        .execute(&mut **tx)
        .await?;
    }
    Ok(usize::try_from(ended).unwrap_or(usize::MAX))
}

/// Ends every live session of a user but `keep` (the caller's own), revoking their access
/// tokens, and every browser sign-in of the user; the caller bumps the bundle version.
pub async fn end_others(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
    keep: Option<&str>,
    longest_access: i64,
) -> Result<usize, sqlx::Error> {
    // A browser sign-in would open new sessions without the credentials just changed.
    crate::identity::browser_sessions::end_for_user(tx, user_id).await?;
    end_where(tx, "user_id", user_id, keep, longest_access).await
}

/// Ends a user's oldest live sessions so that `max` remain, `opened` (the one just opened)
/// always among them; returns how many ended (the caller bumps the bundle version when any did).
pub async fn cap(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
    opened: &str,
    max: usize,
    longest_access: i64,
) -> Result<usize, sqlx::Error> {
    let others: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM sessions WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL AND expires_at > $3 \
         ORDER BY created_at DESC, id DESC",
    )
    .bind(user_id)
    .bind(opened)
    .bind(crate::now())
    .fetch_all(&mut **tx)
    .await?;
    let beyond = others.get(max.saturating_sub(1)..).unwrap_or_default();
    for sid in beyond {
        revoke(tx, sid).await?;
        revocations::session(tx, sid, longest_access).await?;
    }
    Ok(beyond.len())
}

/// Ends every session of a user (browser sign-ins too) and revokes all their access tokens
/// (sessions' and any other issued before now); the caller bumps the bundle version.
pub async fn end_for_user(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
    longest_access: i64,
) -> Result<usize, sqlx::Error> {
    crate::identity::browser_sessions::end_for_user(tx, user_id).await?;
    let ended = end_where(tx, "user_id", user_id, None, longest_access).await?;
    revocations::subject(tx, &format!("user:{user_id}"), longest_access).await?;
    Ok(ended)
}

/// Ends every user session opened through a client; the caller bumps the bundle version.
pub async fn end_for_client(
    tx: &mut Transaction<'static, Any>,
    client_id: &str,
    longest_access: i64,
) -> Result<usize, sqlx::Error> {
    end_where(tx, "client_id", client_id, None, longest_access).await
}

/// Ends every session opened through the browser sign-in `browser_session_id` and revokes their
/// access tokens; the caller bumps the bundle version.
pub async fn end_for_browser_session(
    tx: &mut Transaction<'static, Any>,
    browser_session_id: &str,
    longest_access: i64,
) -> Result<usize, sqlx::Error> {
    end_where(
        tx,
        "browser_session_id",
        browser_session_id,
        None,
        longest_access,
    )
    .await
}

/// Every session of a user, live or ended, oldest first (for a data export).
pub async fn all_of_user(pool: &AnyPool, user_id: &str) -> Result<Vec<Session>, sqlx::Error> {
    sqlx::query(
        "SELECT id, user_id, client_id, scope, amr, audience, created_at, expires_at FROM sessions \
         WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(session_from_row)
    .collect()
}

/// Deletes a user's session rows and their refresh tokens (erasure); the revocation entries
/// that keep their access tokens out at the edge are not personal data and stay until expiry.
pub async fn erase_for_user(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1)",
    )
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM browser_sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// Forgets the successors of tokens used more than `grace` seconds ago (their retry window has
/// passed); returns how many.
pub async fn forget_successors(pool: &AnyPool, grace: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE refresh_tokens SET successor = NULL WHERE successor IS NOT NULL AND used_at < $1",
    )
    .bind(crate::now() - grace)
    .execute(pool)
    .await?
    .rows_affected())
}

/// The session a refresh token belongs to, if the token is live.
pub async fn by_refresh_token(
    pool: &AnyPool,
    master: &MasterKey,
    token: &str,
) -> Result<Option<Session>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT s.id, s.user_id, s.client_id, s.scope, s.amr, s.audience, s.created_at, s.expires_at FROM refresh_tokens r \
         JOIN sessions s ON s.id = r.session_id \
         WHERE r.token_hash = $1 AND r.used_at IS NULL AND s.revoked_at IS NULL AND s.expires_at > $2",
    )
    .bind(master.keyed_hash(HashPurpose::RefreshToken, token))
    .bind(crate::now())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(session_from_row).transpose()
}

/// The OpenID scopes the session `session_id` was granted (`None`: no such session).
pub async fn openid_scope(pool: &AnyPool, session_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT openid_scope FROM sessions WHERE id = $1")
        .bind(session_id)
        .fetch_optional(pool)
        .await
}

/// Live sessions of a user, or of everyone when `user_id` is `None`; with `tenant`, only
/// sessions of that tenant's users.
pub async fn live(
    pool: &AnyPool,
    user_id: Option<&str>,
    tenant: Option<&str>,
) -> Result<Vec<Session>, sqlx::Error> {
    sqlx::query(
        "SELECT id, user_id, client_id, scope, amr, audience, created_at, expires_at FROM sessions \
         WHERE ($1 = '' OR user_id = $1) AND revoked_at IS NULL AND expires_at > $2 \
         AND ($3 = '' OR user_id IN (SELECT id FROM users WHERE tenant = $3)) ORDER BY created_at, id LIMIT 1000",
    )
    .bind(user_id.unwrap_or(""))
    .bind(crate::now())
    .bind(tenant.unwrap_or(""))
    .fetch_all(pool)
    .await?
    .iter()
    .map(session_from_row)
    .collect()
}

/// The user a session belongs to, if the session exists.
pub async fn owner(
    tx: &mut Transaction<'static, Any>,
    session_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM sessions WHERE id = $1")
        .bind(session_id)
        .fetch_optional(&mut **tx)
        .await
}

/// Revocation entries written alongside changes; the bundle carries them until `exp`.
pub mod revocations {
    use sqlx::{Any, Transaction};

    async fn insert(
        tx: &mut Transaction<'static, Any>,
        jti: Option<&str>,
        sid: Option<&str>,
        sub: Option<(&str, i64)>,
        exp: i64,
    ) -> Result<(), sqlx::Error> {
        let id =
            crate::keys::secrets::random_id().map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        sqlx::query(
            "INSERT INTO revocations (id, jti, sid, sub, sub_before, exp, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(jti.map(str::to_owned))
        .bind(sid.map(str::to_owned))
        .bind(sub.map(|(s, _)| s.to_owned()))
        .bind(sub.map(|(_, before)| before))
        .bind(exp)
        .bind(crate::now())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Revokes one access token until it expires.
    pub async fn token(
        tx: &mut Transaction<'static, Any>,
        jti: &str,
        exp: i64,
    ) -> Result<(), sqlx::Error> {
        insert(tx, Some(jti), None, None, exp).await
    }

    /// Revokes every access token of a session, for as long as one can live.
    pub async fn session(
        tx: &mut Transaction<'static, Any>,
        sid: &str,
        longest_access: i64,
    ) -> Result<(), sqlx::Error> {
        insert(tx, None, Some(sid), None, crate::now() + longest_access).await
    }

    /// Revokes every access token of `sub` issued before now.
    pub async fn subject(
        tx: &mut Transaction<'static, Any>,
        sub: &str,
        longest_access: i64,
    ) -> Result<(), sqlx::Error> {
        let now = crate::now();
        // `iat` has second resolution: tokens issued in this very second are covered too.
        insert(tx, None, None, Some((sub, now + 1)), now + longest_access).await
    }

    /// Deletes entries whose tokens have all expired beyond any edge leeway; returns how many.
    pub async fn prune(pool: &sqlx::AnyPool) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query("DELETE FROM revocations WHERE exp <= $1")
            .bind(crate::now() - portcullis_authz::config::MAX_LEEWAY_SECONDS)
            .execute(pool)
            .await?
            .rows_affected())
    }
}
