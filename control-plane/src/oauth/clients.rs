//! OAuth clients: generated secrets (256 bits) stored as keyed hashes, compared in constant
//! time, rotated with an overlap window.

use crate::identity::users::User;
use crate::keys::secrets::{
    constant_time_eq, random_id, random_secret, HashPurpose, MasterKey, SecretError,
};
use crate::oauth::grant::GrantType;
use crate::oauth::registration::{self, AuthMethod, IdTokenAlg};
use serde::Serialize;
use sqlx::{Any, AnyPool, Row as _, Transaction};

/// A client as the API shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Client {
    /// Client id (`sub` is `client:<id>` for its own tokens).
    pub client_id: String,
    /// Display name.
    pub name: String,
    /// Scopes it may be granted.
    pub scopes: Vec<String>,
    /// Grants it may use.
    pub grant_types: Vec<GrantType>,
    /// Roles, as with scopes: its own tokens carry them, and a user's token issued to it carries
    /// only those of the user's roles that are in this list.
    pub roles: Vec<String>,
    /// Tenant: its own tokens carry it, and only this tenant's administrators manage it.
    pub tenant: Option<String>,
    /// Where the authorization endpoint may send the browser back (exact match).
    pub redirect_uris: Vec<String>,
    /// How it authenticates at the token endpoint (`none`: a public client).
    pub token_endpoint_auth_method: AuthMethod,
    /// What its ID tokens are signed with.
    pub id_token_signed_response_alg: IdTokenAlg,
    /// Where logout may send the browser back (exact match).
    pub post_logout_redirect_uris: Vec<String>,
    /// Whether it is disabled.
    pub disabled: bool,
    /// Created, epoch seconds.
    pub created_at: i64,
    /// Until when the previous secret still works, if rotated recently.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires: Option<i64>,
}

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// Randomness failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A scope is malformed.
    #[error(transparent)]
    Scope(#[from] crate::oauth::scopes::ScopeError),
    /// A scope has a name OpenID Connect gives its own meaning.
    #[error("scope `{0}` is OpenID Connect's (it asks for claims, not access) and cannot be a client's access scope")]
    Reserved(String),
    /// The name is empty or too long.
    #[error("name must be 1 to 200 characters")]
    Name,
    /// A role or the tenant is malformed.
    #[error(transparent)]
    Invalid(#[from] crate::identity::users::UserError),
    /// A redirect URI cannot be registered.
    #[error(transparent)]
    Redirect(#[from] registration::RedirectError),
    /// The grants do not fit the client's kind.
    #[error("{0}")]
    Grants(&'static str),
    /// No such client.
    #[error("client not found")]
    NotFound,
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Client, sqlx::Error> {
    let disabled: i64 = row.try_get("disabled")?;
    let scopes: String = row.try_get("scopes")?;
    let grants: String = row.try_get("grant_types")?;
    let roles: String = row.try_get("roles")?;
    let redirect_uris: String = row.try_get("redirect_uris")?;
    let method: String = row.try_get("token_endpoint_auth_method")?;
    let id_token_alg: String = row.try_get("id_token_signed_response_alg")?;
    let post_logout: String = row.try_get("post_logout_redirect_uris")?;
    Ok(Client {
        client_id: row.try_get("id")?,
        name: row.try_get("name")?,
        scopes: crate::infra::db::words(&scopes),
        // A name this release does not know grants nothing.
        grant_types: grants
            .split_whitespace()
            .filter_map(GrantType::from_name)
            .collect(),
        roles: crate::infra::db::words(&roles),
        tenant: row.try_get("tenant")?,
        redirect_uris: crate::infra::db::words(&redirect_uris),
        // A method this release does not know authenticates nobody without a secret.
        token_endpoint_auth_method: AuthMethod::from_name(&method).unwrap_or_default(),
        id_token_signed_response_alg: IdTokenAlg::from_name(&id_token_alg).unwrap_or_default(),
        post_logout_redirect_uris: crate::infra::db::words(&post_logout),
        disabled: disabled != 0,
        created_at: row.try_get("created_at")?,
        previous_secret_expires: row.try_get("previous_secret_expires")?,
    })
}

impl Client {
    /// Whether a user of `tenant` may sign in through this client: a tenant's client serves
    /// only that tenant's users (a global one serves everyone).
    pub fn admits(&self, tenant: Option<&str>) -> bool {
        self.tenant.is_none() || self.tenant.as_deref() == tenant
    }

    /// The scopes `user` may hold through this client: the client's that the user has, where
    /// every user has [`crate::oauth::audience::SELF_SCOPE`] (the client decides whether it passes).
    pub fn scopes_for(&self, user: &User) -> Vec<String> {
        self.scopes
            .iter()
            .filter(|s| *s == crate::oauth::audience::SELF_SCOPE || user.scopes.contains(s))
            .cloned()
            .collect()
    }

    /// Its scopes, roles and tenant, as the authority check reads them.
    pub fn grants(&self) -> crate::identity::authority::Grants<'_> {
        crate::identity::authority::Grants {
            scopes: &self.scopes,
            roles: &self.roles,
            tenant: self.tenant.as_deref(),
        }
    }

    /// The roles `user` may hold through this client: the user's that the client has too.
    pub fn roles_for(&self, user: &User) -> Vec<String> {
        crate::oauth::scopes::narrow(Some(&user.roles), &self.roles)
    }
}

const COLUMNS: &str = "id, name, scopes, grant_types, roles, tenant, redirect_uris, \
     token_endpoint_auth_method, id_token_signed_response_alg, post_logout_redirect_uris, \
     disabled, created_at, previous_secret_expires";

/// The grants a client of `method` may hold: a public client has no secret to prove itself
/// with, so only the browser grant (whose PKCE binds the code to the app that asked) and
/// refreshing what it gave; and the authorization code grant needs somewhere to return to.
fn check_grants(
    grants: &[GrantType],
    method: AuthMethod,
    redirect_uris: &[String],
) -> Result<(), ClientError> {
    if method.is_public()
        && grants
            .iter()
            .any(|g| !matches!(g, GrantType::AuthorizationCode | GrantType::RefreshToken))
    {
        return Err(ClientError::Grants(
            "a public client (token_endpoint_auth_method none) may use only authorization_code and refresh_token",
        ));
    }
    if grants.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        return Err(ClientError::Grants(
            "authorization_code needs at least one redirect URI",
        ));
    }
    Ok(())
}

/// The access scopes of `text`: OpenID Connect's own names (`openid`, `profile`, `email`,
/// `offline_access`) are refused, since an authorization request's scopes of those names ask for
/// claims and never reach an access token.
fn access_scopes(text: &str) -> Result<Vec<String>, ClientError> {
    let scopes = crate::oauth::scopes::parse(text)?;
    match scopes
        .iter()
        .find(|s| crate::oauth::id_token::OPENID_SCOPES.contains(&s.as_str()))
    {
        Some(reserved) => Err(ClientError::Reserved(reserved.clone())),
        None => Ok(scopes),
    }
}

/// The stored form of a grant list.
fn grant_words(grants: &[GrantType]) -> String {
    grants
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A new client.
#[derive(Debug, Clone, Default)]
pub struct NewClient<'a> {
    /// Display name.
    pub name: &'a str,
    /// Scopes it may be granted (space separated).
    pub scopes: &'a str,
    /// Grants it may use.
    pub grants: &'a [GrantType],
    /// Roles (its own, and those a user's token issued to it may carry).
    pub roles: &'a [String],
    /// Tenant.
    pub tenant: Option<&'a str>,
    /// Redirect URIs.
    pub redirect_uris: &'a [String],
    /// How it authenticates at the token endpoint.
    pub auth_method: AuthMethod,
    /// What its ID tokens are signed with.
    pub id_token_alg: IdTokenAlg,
    /// Where logout may send the browser back.
    pub post_logout_redirect_uris: &'a [String],
}

/// Creates a client; returns it with its secret, which is shown only this once.
pub async fn create(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    new: &NewClient<'_>,
) -> Result<(Client, String), ClientError> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ClientError::Name);
    }
    let scopes = access_scopes(new.scopes)?;
    let grants = new.grants.to_vec();
    let roles = crate::identity::users::check_roles(new.roles)?;
    let tenant = crate::identity::users::check_tenant(new.tenant)?;
    let redirect_uris = registration::check(new.redirect_uris)?;
    let post_logout_redirect_uris = registration::check(new.post_logout_redirect_uris)?;
    check_grants(&grants, new.auth_method, &redirect_uris)?;
    let id = random_id()?;
    let secret = random_secret("pcs_")?;
    let now = crate::now();
    sqlx::query(
        "INSERT INTO clients (id, name, secret_hash, previous_secret_hash, previous_secret_expires, scopes, grant_types, roles, tenant, redirect_uris, token_endpoint_auth_method, id_token_signed_response_alg, post_logout_redirect_uris, disabled, created_at) \
         VALUES ($1, $2, $3, NULL, NULL, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12)",
    )
    .bind(&id)
    .bind(name)
    .bind(master.keyed_hash(HashPurpose::ClientSecret, &secret))
    .bind(crate::oauth::scopes::join(&scopes))
    .bind(grant_words(&grants))
    .bind(roles)
    .bind(tenant.clone())
    .bind(redirect_uris.join(" "))
    .bind(new.auth_method.as_str())
    .bind(new.id_token_alg.as_str())
    .bind(post_logout_redirect_uris.join(" "))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok((
        Client {
            client_id: id,
            name: name.to_owned(),
            scopes,
            grant_types: grants,
            roles: new.roles.to_vec(),
            tenant,
            redirect_uris,
            token_endpoint_auth_method: new.auth_method,
            id_token_signed_response_alg: new.id_token_alg,
            post_logout_redirect_uris,
            disabled: false,
            created_at: now,
            previous_secret_expires: None,
        },
        secret,
    ))
}

/// One client, through the pool or inside a transaction.
pub async fn get<'e, E>(executor: E, id: &str) -> Result<Option<Client>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    sqlx::query(&format!("SELECT {COLUMNS} FROM clients WHERE id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Clients in id order after `after`; with `tenant`, only that tenant's.
pub async fn list(
    pool: &AnyPool,
    tenant: Option<&str>,
    after: &str,
    limit: i64,
) -> Result<Vec<Client>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM clients WHERE ($1 = '' OR tenant = $1) AND id > $2 ORDER BY id LIMIT $3"
    ))
    .bind(tenant.unwrap_or(""))
    .bind(after)
    .bind(limit.clamp(1, 1000))
    .fetch_all(pool)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// The enabled client whose current (or still overlapping previous) secret is `secret`.
pub async fn authenticate(
    pool: &AnyPool,
    master: &MasterKey,
    id: &str,
    secret: &str,
) -> Result<Option<Client>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS}, secret_hash, previous_secret_hash FROM clients WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let presented = master.keyed_hash(HashPurpose::ClientSecret, secret);
    let Some(row) = row else {
        return Ok(None);
    };
    let client = from_row(&row)?;
    let current: String = row.try_get("secret_hash")?;
    let previous: Option<String> = row.try_get("previous_secret_hash")?;
    let previous_ok = previous.is_some_and(|p| constant_time_eq(&p, &presented))
        && client
            .previous_secret_expires
            .is_some_and(|t| t > crate::now());
    let ok = constant_time_eq(&current, &presented) || previous_ok;
    Ok((ok && !client.disabled).then_some(client))
}

/// The enabled public client `id` (one that has no secret, `token_endpoint_auth_method`
/// `none`): such a client names itself with `client_id` alone.
pub async fn public(pool: &AnyPool, id: &str) -> Result<Option<Client>, sqlx::Error> {
    Ok(get(pool, id)
        .await?
        .filter(|c| c.token_endpoint_auth_method.is_public() && !c.disabled))
}

/// Issues a new secret; the current one keeps working for `overlap` seconds.
pub async fn rotate_secret(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    id: &str,
    overlap: i64,
) -> Result<String, ClientError> {
    let secret = random_secret("pcs_")?;
    let changed = sqlx::query(
        "UPDATE clients SET previous_secret_hash = secret_hash, previous_secret_expires = $1, secret_hash = $2 WHERE id = $3",
    )
    .bind(crate::now() + overlap)
    .bind(master.keyed_hash(HashPurpose::ClientSecret, &secret))
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(ClientError::NotFound);
    }
    Ok(secret)
}

/// Changes to a client; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct ClientPatch<'a> {
    /// New scopes (space separated).
    pub scopes: Option<&'a str>,
    /// New grants.
    pub grants: Option<&'a [GrantType]>,
    /// New roles.
    pub roles: Option<&'a [String]>,
    /// New tenant (empty clears it).
    pub tenant: Option<&'a str>,
    /// New redirect URIs.
    pub redirect_uris: Option<&'a [String]>,
    /// New post-logout redirect URIs.
    pub post_logout_redirect_uris: Option<&'a [String]>,
    /// Disabled or enabled.
    pub disabled: Option<bool>,
}

/// Applies `patch` to `current` (the client as it is, read in `tx`).
pub async fn update(
    tx: &mut Transaction<'static, Any>,
    current: &Client,
    patch: &ClientPatch<'_>,
) -> Result<(), ClientError> {
    let id = current.client_id.as_str();
    let redirect_uris = patch.redirect_uris.map(registration::check).transpose()?;
    let post_logout = patch
        .post_logout_redirect_uris
        .map(registration::check)
        .transpose()?;
    check_grants(
        patch.grants.unwrap_or(&current.grant_types),
        current.token_endpoint_auth_method,
        redirect_uris.as_deref().unwrap_or(&current.redirect_uris),
    )?;
    let scopes = patch.scopes.map(access_scopes).transpose()?;
    let grants = patch.grants.map(grant_words);
    let roles = patch
        .roles
        .map(crate::identity::users::check_roles)
        .transpose()?;
    let tenant = crate::identity::users::check_tenant(patch.tenant)?;
    let changed = sqlx::query(
        "UPDATE clients SET scopes = COALESCE($1, scopes), grant_types = COALESCE($2, grant_types), \
         roles = COALESCE($3, roles), tenant = CASE WHEN $4 = 1 THEN $5 ELSE tenant END, \
         disabled = COALESCE($6, disabled), redirect_uris = COALESCE($7, redirect_uris), \
         post_logout_redirect_uris = COALESCE($8, post_logout_redirect_uris) WHERE id = $9",
    )
    .bind(scopes.map(|s| crate::oauth::scopes::join(&s)))
    .bind(grants)
    .bind(roles)
    .bind(i64::from(patch.tenant.is_some()))
    .bind(tenant)
    .bind(patch.disabled.map(i64::from))
    .bind(redirect_uris.map(|uris| uris.join(" ")))
    .bind(post_logout.map(|uris| uris.join(" ")))
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(ClientError::NotFound);
    }
    Ok(())
}

/// Whether `origin` (`scheme://host[:port]`, as a browser sends it) is the origin of a redirect
/// URI an enabled client registered: where that client's scripts run.
pub async fn is_registered_origin(pool: &AnyPool, origin: &str) -> Result<bool, sqlx::Error> {
    // LIKE only narrows the rows (its `_` matches any character); the origin is compared exactly.
    let candidates: Vec<String> = sqlx::query_scalar(
        "SELECT redirect_uris FROM clients WHERE disabled = 0 AND redirect_uris LIKE $1",
    )
    .bind(format!("%{}%", origin.replace('%', "")))
    .fetch_all(pool)
    .await?;
    Ok(candidates
        .iter()
        .flat_map(|uris| uris.split_whitespace())
        .filter_map(|uri| url::Url::parse(uri).ok())
        .any(|uri| uri.origin().is_tuple() && uri.origin().ascii_serialization() == origin))
}

/// The ID-token algorithms of the enabled clients that may use the authorization code grant.
pub async fn id_token_algorithms_in_use<'e, E>(
    executor: E,
) -> Result<Vec<portcullis_authz::jwk::Algorithm>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT id_token_signed_response_alg FROM clients \
         WHERE disabled = 0 AND grant_types LIKE '%authorization_code%'",
    )
    .fetch_all(executor)
    .await?;
    Ok(names
        .iter()
        .filter_map(|name| IdTokenAlg::from_name(name))
        .map(IdTokenAlg::algorithm)
        .collect())
}

/// Locks the client `id` until `tx` ends, so that the client an administrator's authority was
/// checked against is the one changed: without it, another administrator could promote it
/// between the check and the change. A no-op `UPDATE` is the portable row lock (`FOR UPDATE` on
/// Postgres; SQLite takes its write lock). A missing row locks nothing.
pub async fn lock(tx: &mut Transaction<'static, Any>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE clients SET id = id WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
