//! The operations on users and their sessions (see [`crate::service`]): each one checks the
//! actor's authority over its target, changes the store, ends sessions and moves the bundle where
//! the change must reach the edge, and audits itself in the same transaction.

use crate::audit::action::Action;
use crate::audit::{self, Record};
use crate::identity::authority::Grants;
use crate::identity::sessions::{self, revocations, Session};
use crate::identity::users::{self, NewUser, User, UserPatch};
use crate::oauth::clients::{self, Client, NewClient};
use crate::oauth::grant::GrantType;
use crate::service::{scope_list, Context, ServiceError};
use serde_json::json;
use sqlx::{Any, Transaction};

/// The scopes of the client `bootstrap` creates for the first administrator.
const ADMIN_CLIENT_SCOPES: &str =
    "admin:full admin:users admin:clients admin:keys admin:audit admin:policies self";

/// A user to create.
#[derive(Debug, Clone, Default)]
pub struct UserSpec {
    /// Username.
    pub username: String,
    /// Password, checked against the password policy.
    pub password: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Roles.
    pub roles: Vec<String>,
    /// Scopes, space separated.
    pub scopes: String,
    /// Tenant; `None` (or empty) gives the creating actor's own.
    pub tenant: Option<String>,
}

/// A user's data: the record, every session (live or ended) and a page of the audit rows whose
/// actor or target is the user.
#[derive(Debug, Clone)]
pub struct Export {
    /// The user.
    pub user: User,
    /// Every session.
    pub sessions: Vec<Session>,
    /// Audit rows after the asked sequence number.
    pub audit: Vec<Record>,
    /// Set while more rows follow: the `after` of the next page.
    pub next_after: Option<i64>,
}

/// A page of users, and the `after` of the next page when it is full.
#[derive(Debug, Clone)]
pub struct UserPage {
    /// The users, by id.
    pub users: Vec<User>,
    /// Set when the page is full.
    pub next_after: Option<String>,
}

/// The user `id`, locked until `tx` ends, if the actor may act on it: one outside the actor's
/// tenant does not exist for it ([`ServiceError::NotFound`]), one with more power than the actor
/// holds is refused.
async fn managed_user(
    ctx: &Context<'_>,
    tx: &mut Transaction<'static, Any>,
    id: &str,
) -> Result<User, ServiceError> {
    users::lock(tx, id).await?;
    let user = users::get(&mut **tx, id)
        .await?
        .filter(|u| ctx.sees(u.tenant.as_deref()))
        .ok_or(ServiceError::NotFound)?;
    ctx.covers(&user.grants())?;
    Ok(user)
}

/// Creates a user the actor may grant to.
pub async fn create_user(ctx: &Context<'_>, spec: UserSpec) -> Result<User, ServiceError> {
    let tenant = ctx.new_tenant(spec.tenant.as_deref());
    ctx.covers(&Grants {
        scopes: &scope_list(&spec.scopes)?,
        roles: &spec.roles,
        tenant: tenant.as_deref(),
    })?;
    crate::identity::passwords::check_policy(&spec.password)
        .map_err(|e| ServiceError::Invalid(e.to_string()))?;
    users::check_username(&spec.username)?;
    let hash = ctx.hasher.hash(&spec.password).await?;
    let mut tx = ctx.begin().await?;
    let user = users::create(
        &mut tx,
        &NewUser {
            username: spec.username,
            password_hash: hash,
            email: spec.email,
            roles: spec.roles,
            scopes: spec.scopes,
            tenant,
        },
    )
    .await?;
    let target = format!("user:{}", user.user_id);
    ctx.commit(tx, Action::UserCreated, &target, json!({}))
        .await?;
    Ok(user)
}

/// The users the actor sees whose username starts with `prefix`, after the id `after`; at most
/// `limit` (1 to 1000, default 100).
pub async fn list_users(
    ctx: &Context<'_>,
    prefix: &str,
    after: &str,
    limit: Option<i64>,
) -> Result<UserPage, ServiceError> {
    let limit = limit.unwrap_or(100).clamp(1, 1000);
    let found = users::list(
        ctx.store,
        ctx.actor.authority.tenant(),
        prefix,
        after,
        limit,
    )
    .await?;
    let next_after = (found.len() as i64 == limit)
        .then(|| found.last().map(|u| u.user_id.clone()))
        .flatten();
    Ok(UserPage {
        users: found,
        next_after,
    })
}

/// The user `id`, if the actor sees it.
pub async fn get_user(ctx: &Context<'_>, id: &str) -> Result<User, ServiceError> {
    users::get(ctx.store, id)
        .await?
        .filter(|u| ctx.sees(u.tenant.as_deref()))
        .ok_or(ServiceError::NotFound)
}

/// Changes roles, scopes, tenant or e-mail of a user the actor manages, to values it may grant.
pub async fn update_user(
    ctx: &Context<'_>,
    id: &str,
    patch: &UserPatch,
) -> Result<User, ServiceError> {
    let mut tx = ctx.begin().await?;
    let current = managed_user(ctx, &mut tx, id).await?;
    ctx.covers_change(
        &current.grants(),
        patch.scopes.as_deref(),
        patch.roles.as_deref(),
        patch.tenant.as_deref(),
    )?;
    users::update(&mut tx, id, patch).await?;
    let fields: Vec<&str> = [
        patch.roles.as_ref().map(|_| "roles"),
        patch.scopes.as_ref().map(|_| "scopes"),
        patch.tenant.as_ref().map(|_| "tenant"),
        patch.email.as_ref().map(|_| "email"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let target = format!("user:{id}");
    ctx.commit(tx, Action::UserUpdated, &target, json!({"fields": fields}))
        .await?;
    users::get(ctx.store, id)
        .await?
        .ok_or(ServiceError::NotFound)
}

/// Ends every session of a user, revokes their outstanding access tokens and moves the bundle.
async fn end_all_sessions(
    ctx: &Context<'_>,
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
) -> Result<usize, ServiceError> {
    let ended = sessions::end_for_user(tx, user_id, ctx.config.lifetimes.longest_access()).await?;
    crate::bundle::bump(tx).await?;
    Ok(ended)
}

/// Disables a user: the account and every session end now. Returns how many sessions ended.
pub async fn disable_user(ctx: &Context<'_>, id: &str) -> Result<usize, ServiceError> {
    let mut tx = ctx.begin().await?;
    managed_user(ctx, &mut tx, id).await?;
    users::set_disabled(&mut tx, id, true).await?;
    let ended = end_all_sessions(ctx, &mut tx, id).await?;
    let target = format!("user:{id}");
    ctx.commit_and_publish(
        tx,
        Action::UserDisabled,
        &target,
        json!({"sessions_ended": ended}),
    )
    .await?;
    Ok(ended)
}

/// Enables a disabled user again.
pub async fn enable_user(ctx: &Context<'_>, id: &str) -> Result<(), ServiceError> {
    let mut tx = ctx.begin().await?;
    managed_user(ctx, &mut tx, id).await?;
    users::set_disabled(&mut tx, id, false).await?;
    let target = format!("user:{id}");
    ctx.commit(tx, Action::UserEnabled, &target, json!({}))
        .await
}

/// Erases a user's personal data: the user, the sessions, and the client addresses of the user's
/// audit rows; the audit keeps the random id and the addresses' pseudonyms.
pub async fn delete_user(ctx: &Context<'_>, id: &str) -> Result<(), ServiceError> {
    let mut tx = ctx.begin().await?;
    managed_user(ctx, &mut tx, id).await?;
    end_all_sessions(ctx, &mut tx, id).await?;
    sessions::erase_for_user(&mut tx, id).await?;
    users::delete(&mut tx, id).await?;
    let target = format!("user:{id}");
    let addresses_erased = audit::erase_addresses(&mut tx, &target).await?;
    ctx.commit_and_publish(
        tx,
        Action::UserDeleted,
        &target,
        json!({"addresses_erased": addresses_erased}),
    )
    .await
}

/// A user's data for a data-subject request, its audit rows paged by `after` (at most `limit`,
/// 1 to 1000, default 1000).
pub async fn export_user(
    ctx: &Context<'_>,
    id: &str,
    after: Option<i64>,
    limit: Option<i64>,
) -> Result<Export, ServiceError> {
    let mut tx = ctx.begin().await?;
    let user = managed_user(ctx, &mut tx, id).await?;
    tx.commit().await?;
    let sessions = sessions::all_of_user(ctx.store, id).await?;
    let limit = limit.unwrap_or(1000).clamp(1, 1000);
    let audit = audit::list(
        ctx.store,
        &audit::Filter {
            subject: Some(format!("user:{id}")),
            after,
            limit: Some(limit),
            ..audit::Filter::default()
        },
    )
    .await?;
    let next_after = (audit.len() as i64 == limit)
        .then(|| audit.last().map(|e| e.seq))
        .flatten();
    Ok(Export {
        user,
        sessions,
        audit,
        next_after,
    })
}

/// The live sessions the actor sees, of one user or all.
pub async fn list_sessions(
    ctx: &Context<'_>,
    user_id: Option<&str>,
) -> Result<Vec<Session>, ServiceError> {
    Ok(sessions::live(ctx.store, user_id, ctx.actor.authority.tenant()).await?)
}

/// Ends the session `id` of a user the actor manages; its tokens stop at the edge.
pub async fn revoke_session(ctx: &Context<'_>, id: &str) -> Result<(), ServiceError> {
    let mut tx = ctx.begin().await?;
    let owner = sessions::owner(&mut tx, id)
        .await?
        .ok_or(ServiceError::NotFound)?;
    managed_user(ctx, &mut tx, &owner).await?;
    if !sessions::revoke(&mut tx, id).await? {
        return Err(ServiceError::NotFound);
    }
    revocations::session(&mut tx, id, ctx.config.lifetimes.longest_access()).await?;
    crate::bundle::bump(&mut tx).await?;
    ctx.commit_and_publish(
        tx,
        Action::SessionRevoked,
        &format!("session:{id}"),
        json!({}),
    )
    .await
}

/// Creates the first administrator (`admin:full`) and the `portcullis-admin` client it signs in
/// with; only on a store without users. Returns them with the client's secret.
pub async fn bootstrap(
    ctx: &Context<'_>,
    username: String,
    password: &str,
) -> Result<(User, Client, String), ServiceError> {
    if users::any_exist(ctx.store).await? {
        return Err(ServiceError::Conflict(
            "bootstrap runs only on an empty store; use the admin API".into(),
        ));
    }
    crate::identity::passwords::check_policy(password)
        .map_err(|e| ServiceError::Invalid(e.to_string()))?;
    users::check_username(&username)?;
    let hash = ctx.hasher.hash(password).await?;
    let mut tx = ctx.begin().await?;
    let user = users::create(
        &mut tx,
        &NewUser {
            username,
            password_hash: hash,
            roles: vec!["admin".into()],
            scopes: "admin:full".into(),
            ..NewUser::default()
        },
    )
    .await?;
    let (client, secret) = clients::create(
        &mut tx,
        ctx.master,
        &NewClient {
            name: "portcullis-admin",
            scopes: ADMIN_CLIENT_SCOPES,
            grants: &[GrantType::Password, GrantType::RefreshToken],
            roles: &["admin".into()],
            tenant: None,
            ..NewClient::default()
        },
    )
    .await?;
    let target = format!("user:{}", user.user_id);
    ctx.commit(tx, Action::AdminBootstrapped, &target, json!({}))
        .await?;
    Ok((user, client, secret))
}
