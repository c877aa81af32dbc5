//! The token endpoint's `authorization_code` grant (RFC 6749 §4.1.3, RFC 7636 §4.6): the code
//! the login page sent to the client's redirect URI becomes a session and its tokens.
//!
//! Every mismatch is the same `invalid_grant`, and the code is used up by the attempt whatever
//! its outcome: a code presented by another client, with another redirect URI, with a wrong
//! PKCE verifier or after its minute is over never works again. A code presented a second
//! time ends the session its first exchange opened and revokes that session's access tokens at
//! the edge: whoever holds the code besides the client may hold those tokens too.
//!
//! A code whose request asked for `openid` gives an ID token too ([`crate::oauth::id_token`]).

use super::error::{ApiError, OAuthCode};
use super::extractors::OAuthForm;
use super::oauth::{open_session, SessionGrant};
use crate::audit::action::Action;
use crate::audit::{self, Event, Origin};
use crate::identity::browser_sessions;
use crate::identity::sessions::{self, revocations};
use crate::identity::users;
use crate::keys::id_token;
use crate::oauth::clients::Client;
use crate::oauth::codes::{self, pkce_matches, Redeemed};
use crate::oauth::id_token::IdTokenClaims;
use crate::oauth::tokens::TokenKey;
use crate::state::AppState;
use serde_json::{json, Value};

fn invalid_grant() -> ApiError {
    ApiError::oauth(
        OAuthCode::InvalidGrant,
        "the code is invalid, expired, used, or was issued for another client, redirect URI or verifier",
    )
}

/// Exchanges a code for tokens.
pub async fn exchange(
    state: &AppState,
    origin: &Origin,
    form: &OAuthForm,
    client: &Client,
) -> Result<Value, ApiError> {
    let code = form.require("code")?;
    let verifier = form.require("code_verifier")?;
    let redirect_uri = form.require("redirect_uri")?;
    // Before the code is used up: a key that cannot be had leaves the code for a retry.
    let id_token_key = id_token_key(state, client).await?;
    let mut tx = state.db().pool.begin().await?;
    let (issued, expires_at, hash) = match codes::redeem(&mut tx, state.master(), code).await? {
        Redeemed::Fresh {
            issued,
            expires_at,
            hash,
        } => (issued, expires_at, hash),
        Redeemed::Unknown => return Err(invalid_grant()),
        Redeemed::Replayed {
            session_id,
            user_id,
            client_id,
        } => {
            if let Some(sid) = &session_id {
                sessions::revoke(&mut tx, sid).await?;
                revocations::session(&mut tx, sid, state.config().lifetimes.longest_access())
                    .await?;
                crate::bundle::bump(&mut tx).await?;
            }
            let subject = format!("user:{user_id}");
            audit::append(
                &mut tx,
                state.master(),
                origin,
                &Event {
                    actor: &format!("client:{}", client.client_id),
                    action: Action::TokenReuseDetected,
                    target: &subject,
                    outcome: "failure",
                    detail: json!({"grant": "authorization_code", "code_client_id": client_id, "sid": session_id, "session_ended": session_id.is_some()}),
                },
            )
            .await?;
            tx.commit().await?;
            if session_id.is_some() {
                state.republish().await?;
            }
            return Err(invalid_grant());
        }
    };
    let mut bound = issued.client_id == client.client_id
        && issued.redirect_uri == redirect_uri
        && expires_at > crate::now()
        && pkce_matches(&issued.code_challenge, verifier);
    if let (true, Some(sign_in)) = (bound, &issued.browser_session_id) {
        bound = browser_sessions::standing(&mut tx, sign_in).await?;
    }
    let user = users::get(&mut *tx, &issued.user_id).await?;
    let Some(user) = user.filter(|u| bound && !u.disabled && client.admits(u.tenant.as_deref()))
    else {
        // The code stays used.
        tx.commit().await?;
        return Err(invalid_grant());
    };
    // Scopes taken from the user or the client since the sign-in are not granted.
    let held = client.scopes_for(&user);
    let scopes: Vec<String> = crate::oauth::scopes::parse(&issued.scope)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| held.contains(s))
        .collect();
    let audiences = crate::infra::db::words(&issued.audience);
    let amr = crate::infra::db::words(&issued.amr);
    let opened = open_session(
        state,
        &mut tx,
        client,
        &user,
        &SessionGrant {
            audiences: &audiences,
            scopes: &scopes,
            amr: &amr,
            browser_session_id: issued.browser_session_id.as_deref(),
            openid_scope: &issued.openid_scope,
        },
    )
    .await?;
    codes::opened(&mut tx, &hash, &opened.session_id).await?;
    let subject = format!("user:{}", user.user_id);
    audit::append(
        &mut tx,
        state.master(),
        origin,
        &Event {
            actor: &format!("client:{}", client.client_id),
            action: Action::TokenIssued,
            target: &subject,
            outcome: "success",
            detail: json!({"grant": "authorization_code", "sid": opened.session_id, "jti": opened.jti, "scope": crate::oauth::scopes::join(&scopes), "sessions_ended": opened.capped}),
        },
    )
    .await?;
    tx.commit().await?;
    let opened = if crate::infra::db::words(&issued.openid_scope)
        .iter()
        .any(|s| s == "openid")
    {
        let id_token = crate::oauth::id_token::sign(
            &id_token_key,
            &IdTokenClaims {
                issuer: &state.config().issuer,
                user_id: &user.user_id,
                client_id: &client.client_id,
                nonce: issued.nonce.as_deref(),
                auth_time: issued.auth_time,
                amr: &amr,
                sid: issued.browser_session_id.as_deref(),
                access_token: &opened.access_token,
                ttl: state.config().lifetimes.access,
            },
        )?;
        opened.with_id_token(id_token)
    } else {
        opened
    };
    opened.answer(state).await
}

/// The key that signs `client`'s ID tokens, as published; created now if the client was
/// registered before its algorithm had keys (its registration creates them otherwise), which
/// moves the bundle version so that every replica publishes it.
async fn id_token_key(state: &AppState, client: &Client) -> Result<TokenKey, ApiError> {
    let alg = client.id_token_signed_response_alg.algorithm();
    if let Some(key) = state.published().id_tokens.signer(alg) {
        return Ok(key.clone());
    }
    let mut tx = state.db().pool.begin().await?;
    crate::bundle::bump(&mut tx).await?;
    id_token::ensure(&mut tx, state.master(), alg).await?;
    tx.commit().await?;
    state.republish().await?;
    state
        .published()
        .id_tokens
        .signer(alg)
        .cloned()
        .ok_or_else(|| ApiError::Unavailable("no ID token signing key".into()))
}
