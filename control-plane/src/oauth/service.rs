//! The operations on OAuth clients (see [`crate::service`]): each one checks the actor's
//! authority over the client, changes the store, and audits itself in the same transaction; a
//! disabled client's tokens stop at the edge.

use crate::audit::action::Action;
use crate::identity::authority::Grants;
use crate::identity::sessions::{self, revocations};
use crate::oauth::clients::{self, Client, ClientPatch, NewClient};
use crate::oauth::grant::GrantType;
use crate::oauth::registration::{AuthMethod, IdTokenAlg};
use crate::service::{scope_list, Context, ServiceError};
use serde_json::json;
use sqlx::{Any, Transaction};

/// A client to create.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    /// Display name.
    pub name: String,
    /// Scopes it may be granted, space separated.
    pub scopes: String,
    /// Grant types it may use.
    pub grant_types: Vec<GrantType>,
    /// Roles.
    pub roles: Vec<String>,
    /// Tenant; `None` (or empty) gives the creating actor's own.
    pub tenant: Option<String>,
    /// Redirect URIs (for the authorization code grant).
    pub redirect_uris: Vec<String>,
    /// How it authenticates at the token endpoint.
    pub auth_method: AuthMethod,
    /// What its ID tokens are signed with.
    pub id_token_alg: IdTokenAlg,
    /// Where logout may send the browser back.
    pub post_logout_redirect_uris: Vec<String>,
}

/// Changes to a client; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    /// Scopes, space separated.
    pub scopes: Option<String>,
    /// Grant types.
    pub grant_types: Option<Vec<GrantType>>,
    /// Roles.
    pub roles: Option<Vec<String>>,
    /// Tenant (empty clears it).
    pub tenant: Option<String>,
    /// Redirect URIs.
    pub redirect_uris: Option<Vec<String>>,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Disabled or enabled.
    pub disabled: Option<bool>,
}

/// How many tokens a client was issued, from the audit log.
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
pub struct TokenStats {
    /// Tokens issued.
    pub tokens_issued: i64,
    /// When the last one was, epoch seconds.
    pub last_issued_at: Option<i64>,
}

/// A new client secret.
#[derive(Debug, Clone)]
pub struct RotatedSecret {
    /// The secret, shown only this once.
    pub secret: String,
    /// When the previous secret stops working, epoch seconds.
    pub previous_expires: i64,
}

/// The client `id`, locked until `tx` ends, if the actor may act on it (as users are).
async fn managed_client(
    ctx: &Context<'_>,
    tx: &mut Transaction<'static, Any>,
    id: &str,
) -> Result<Client, ServiceError> {
    clients::lock(tx, id).await?;
    let client = clients::get(&mut **tx, id)
        .await?
        .filter(|c| ctx.sees(c.tenant.as_deref()))
        .ok_or(ServiceError::NotFound)?;
    ctx.covers(&client.grants())?;
    Ok(client)
}

/// Creates a client the actor may grant to; returns it with its secret, shown only this once
/// (`None` for a public client, which has none).
pub async fn create_client(
    ctx: &Context<'_>,
    spec: &ClientSpec,
) -> Result<(Client, Option<String>), ServiceError> {
    let tenant = ctx.new_tenant(spec.tenant.as_deref());
    ctx.covers(&Grants {
        scopes: &scope_list(&spec.scopes)?,
        roles: &spec.roles,
        tenant: tenant.as_deref(),
    })?;
    let mut tx = ctx.begin().await?;
    let (client, secret) = clients::create(
        &mut tx,
        ctx.master,
        &NewClient {
            name: &spec.name,
            scopes: &spec.scopes,
            grants: &spec.grant_types,
            roles: &spec.roles,
            tenant: tenant.as_deref(),
            redirect_uris: &spec.redirect_uris,
            auth_method: spec.auth_method,
            id_token_alg: spec.id_token_alg,
            post_logout_redirect_uris: &spec.post_logout_redirect_uris,
        },
    )
    .await?;
    let keys_created = id_token_keys_for(ctx, &mut tx, &client).await?;
    let target = format!("client:{}", client.client_id);
    let detail = json!({
            "scopes": client.scopes,
            "roles": client.roles,
            "grant_types": client.grant_types,
            "redirect_uris": client.redirect_uris,
            "token_endpoint_auth_method": client.token_endpoint_auth_method,
            "id_token_signed_response_alg": client.id_token_signed_response_alg,
            "post_logout_redirect_uris": client.post_logout_redirect_uris,
    });
    if keys_created {
        ctx.commit_and_publish(tx, Action::ClientCreated, &target, detail)
            .await?;
    } else {
        ctx.commit(tx, Action::ClientCreated, &target, detail)
            .await?;
    }
    let public = client.token_endpoint_auth_method.is_public();
    Ok((client, (!public).then_some(secret)))
}

/// Makes sure the keys exist that sign `client`'s ID tokens, if it can sign users in through the
/// browser: they are published before its first sign-in, so a relying party that fetched the
/// JWKS at start finds the key of its first ID token there. New keys move the bundle version,
/// so that every replica republishes them; returns whether there were any.
async fn id_token_keys_for(
    ctx: &Context<'_>,
    tx: &mut Transaction<'static, Any>,
    client: &Client,
) -> Result<bool, ServiceError> {
    if !client.grant_types.contains(&GrantType::AuthorizationCode) {
        return Ok(false);
    }
    let alg = client.id_token_signed_response_alg.algorithm();
    let created = crate::keys::id_token::ensure(tx, ctx.master, alg).await?;
    if created {
        crate::bundle::bump(tx).await?;
    }
    Ok(created)
}

/// The clients the actor sees, by id after `after`, at most `limit` (default 100).
pub async fn list_clients(
    ctx: &Context<'_>,
    after: &str,
    limit: Option<i64>,
) -> Result<Vec<Client>, ServiceError> {
    Ok(clients::list(
        ctx.store,
        ctx.actor.authority.tenant(),
        after,
        limit.unwrap_or(100),
    )
    .await?)
}

/// The client `id`, if the actor sees it, and its token statistics.
pub async fn get_client(ctx: &Context<'_>, id: &str) -> Result<(Client, TokenStats), ServiceError> {
    let client = clients::get(ctx.store, id)
        .await?
        .filter(|c| ctx.sees(c.tenant.as_deref()))
        .ok_or(ServiceError::NotFound)?;
    let (tokens_issued, last_issued_at) =
        crate::audit::tokens_issued(ctx.store, &format!("client:{id}")).await?;
    Ok((
        client,
        TokenStats {
            tokens_issued,
            last_issued_at,
        },
    ))
}

/// Changes a client the actor manages, to values it may grant. Disabling one ends its tokens at
/// the edge: its own (`client:<id>`) and those of every user session opened through it.
pub async fn update_client(
    ctx: &Context<'_>,
    id: &str,
    changes: &ClientChanges,
) -> Result<Client, ServiceError> {
    let mut tx = ctx.begin().await?;
    let current = managed_client(ctx, &mut tx, id).await?;
    ctx.covers_change(
        &current.grants(),
        changes.scopes.as_deref(),
        changes.roles.as_deref(),
        changes.tenant.as_deref(),
    )?;
    clients::update(
        &mut tx,
        &current,
        &ClientPatch {
            scopes: changes.scopes.as_deref(),
            grants: changes.grant_types.as_deref(),
            roles: changes.roles.as_deref(),
            tenant: changes.tenant.as_deref(),
            redirect_uris: changes.redirect_uris.as_deref(),
            post_logout_redirect_uris: changes.post_logout_redirect_uris.as_deref(),
            disabled: changes.disabled,
        },
    )
    .await?;
    let keys_created = match clients::get(&mut *tx, id).await? {
        Some(changed) => id_token_keys_for(ctx, &mut tx, &changed).await?,
        None => false,
    };
    let target = format!("client:{id}");
    let detail = json!({
        "scopes": changes.scopes,
        "grant_types": changes.grant_types,
        "roles": changes.roles,
        "tenant_changed": changes.tenant.is_some(),
        "redirect_uris": changes.redirect_uris,
        "post_logout_redirect_uris": changes.post_logout_redirect_uris,
        "disabled": changes.disabled,
    });
    if changes.disabled == Some(true) {
        let longest = ctx.config.lifetimes.longest_access();
        revocations::subject(&mut tx, &target, longest).await?;
        sessions::end_for_client(&mut tx, id, longest).await?;
        crate::bundle::bump(&mut tx).await?;
        ctx.commit_and_publish(tx, Action::ClientUpdated, &target, detail)
            .await?;
    } else if keys_created {
        ctx.commit_and_publish(tx, Action::ClientUpdated, &target, detail)
            .await?;
    } else {
        ctx.commit(tx, Action::ClientUpdated, &target, detail)
            .await?;
    }
    clients::get(ctx.store, id)
        .await?
        .ok_or(ServiceError::NotFound)
}

/// A new secret for a client the actor manages; the old one works for the overlap window.
pub async fn rotate_client_secret(
    ctx: &Context<'_>,
    id: &str,
) -> Result<RotatedSecret, ServiceError> {
    let overlap = ctx.config.lifetimes.secret_overlap;
    let mut tx = ctx.begin().await?;
    if managed_client(ctx, &mut tx, id)
        .await?
        .token_endpoint_auth_method
        .is_public()
    {
        return Err(ServiceError::Conflict(
            "a public client has no secret".into(),
        ));
    }
    let secret = clients::rotate_secret(&mut tx, ctx.master, id, overlap).await?;
    ctx.commit(
        tx,
        Action::ClientSecretRotated,
        &format!("client:{id}"),
        json!({"overlap_seconds": overlap}),
    )
    .await?;
    Ok(RotatedSecret {
        secret,
        previous_expires: crate::now() + overlap,
    })
}
