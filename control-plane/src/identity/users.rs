//! People: argon2id password hashes, roles, scopes, tenant, optional TOTP, disable and erase.

use serde::{Deserialize, Serialize};
use sqlx::{Any, AnyPool, Row as _, Transaction};

/// A user as the API shows it (never the password hash or TOTP secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    /// User id (`sub` is `user:<id>`).
    pub user_id: String,
    /// Login name.
    pub username: String,
    /// E-mail, if known.
    pub email: Option<String>,
    /// Roles (Cedar `Role` parents).
    pub roles: Vec<String>,
    /// Scopes the user may be granted.
    pub scopes: Vec<String>,
    /// Tenant.
    pub tenant: Option<String>,
    /// Whether a second factor is enrolled.
    pub totp_enabled: bool,
    /// Whether the account is disabled.
    pub disabled: bool,
    /// Created, epoch seconds.
    pub created_at: i64,
    /// Last change, epoch seconds.
    pub updated_at: i64,
}

impl User {
    /// Its scopes, roles and tenant, as the authority check reads them.
    pub fn grants(&self) -> crate::identity::authority::Grants<'_> {
        crate::identity::authority::Grants {
            scopes: &self.scopes,
            roles: &self.roles,
            tenant: self.tenant.as_deref(),
        }
    }
}

/// What the login path needs besides the public record.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The user.
    pub user: User,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Sealed TOTP secret.
    pub totp_secret: Option<String>,
    /// Last accepted TOTP step.
    pub totp_last_step: Option<i64>,
}

/// Fields an administrator may change.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New roles.
    #[schema(schema_with = optional_roles_schema)]
    pub roles: Option<Vec<String>>,
    /// New scopes: a list (or one space-separated string).
    #[serde(
        default,
        deserialize_with = "crate::oauth::scopes::from_optional_list_or_text"
    )]
    #[schema(schema_with = crate::oauth::scopes::optional_request_schema)]
    pub scopes: Option<String>,
    /// New tenant: ASCII letters, digits or `. _ -` (up to 64); empty clears it.
    #[schema(pattern = r"^[A-Za-z0-9._-]{0,64}$")]
    pub tenant: Option<String>,
    /// New e-mail.
    pub email: Option<String>,
}

/// Why a user operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// A field is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The username is taken.
    #[error("username is taken")]
    Taken,
    /// No such user.
    #[error("user not found")]
    NotFound,
}

const COLUMNS: &str =
    "id, username, email, roles, scopes, tenant, totp_secret, disabled, created_at, updated_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<User, sqlx::Error> {
    let roles: String = row.try_get("roles")?;
    let scopes: String = row.try_get("scopes")?;
    let totp: Option<String> = row.try_get("totp_secret")?;
    let disabled: i64 = row.try_get("disabled")?;
    Ok(User {
        user_id: row.try_get("id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        roles: crate::infra::db::words(&roles),
        scopes: crate::infra::db::words(&scopes),
        tenant: row.try_get("tenant")?,
        totp_enabled: totp.is_some(),
        disabled: disabled != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Checks a username: 1–64 characters of letters, digits and `._-@`.
pub fn check_username(username: &str) -> Result<(), UserError> {
    let ok = !username.is_empty()
        && username.chars().count() <= 64
        && username
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(UserError::Invalid(
            "username must be 1 to 64 letters, digits or . _ - @".into(),
        ))
    }
}

/// The schema of a role list in a request: what [`check_roles`] accepts.
pub fn roles_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
    Schema::Array(
        ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^[A-Za-z0-9._:-]{1,64}$")),
            )
            .build(),
    )
}

/// [`roles_schema`] for an optional field, where `null` keeps the roles as they are.
pub fn optional_roles_schema() -> utoipa::openapi::schema::Schema {
    crate::oauth::scopes::nullable(roles_schema())
}

/// Checks a role list; returns it as stored (space separated).
pub fn check_roles(roles: &[String]) -> Result<String, UserError> {
    for role in roles {
        let ok = !role.is_empty()
            && role.len() <= 64
            && role
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
        if !ok {
            return Err(UserError::Invalid(format!(
                "role `{}` must be 1 to 64 ASCII letters, digits or . _ - :",
                role.chars().take(64).collect::<String>()
            )));
        }
    }
    Ok(roles.join(" "))
}

/// Checks a tenant; empty means none.
pub fn check_tenant(tenant: Option<&str>) -> Result<Option<String>, UserError> {
    match tenant {
        None | Some("") => Ok(None),
        Some(t)
            if t.len() <= 64
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) =>
        {
            Ok(Some(t.to_owned()))
        }
        Some(_) => Err(UserError::Invalid(
            "tenant must be 1 to 64 ASCII letters, digits or . _ -".into(),
        )),
    }
}

/// A new user.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// argon2id hash of the password (hash before calling).
    pub password_hash: String,
    /// E-mail.
    pub email: Option<String>,
    /// Roles.
    pub roles: Vec<String>,
    /// Scopes (space separated).
    pub scopes: String,
    /// Tenant.
    pub tenant: Option<String>,
}

/// Creates a user.
pub async fn create(tx: &mut Transaction<'static, Any>, new: &NewUser) -> Result<User, UserError> {
    check_username(&new.username)?;
    let roles = check_roles(&new.roles)?;
    let scopes =
        crate::oauth::scopes::parse(&new.scopes).map_err(|e| UserError::Invalid(e.to_string()))?;
    let tenant = check_tenant(new.tenant.as_deref())?;
    let taken = sqlx::query("SELECT id FROM users WHERE username = $1")
        .bind(&new.username)
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    if taken {
        return Err(UserError::Taken);
    }
    let id = crate::keys::secrets::random_id().map_err(|e| UserError::Invalid(e.to_string()))?;
    let now = crate::now();
    sqlx::query(
        "INSERT INTO users (id, username, email, password_hash, roles, scopes, tenant, totp_secret, totp_pending, totp_last_step, disabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, NULL, 0, $8, $8)",
    )
    .bind(&id)
    .bind(&new.username)
    .bind(new.email.clone())
    .bind(&new.password_hash)
    .bind(&roles)
    .bind(crate::oauth::scopes::join(&scopes))
    .bind(tenant.clone())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(User {
        user_id: id,
        username: new.username.clone(),
        email: new.email.clone(),
        roles: new.roles.clone(),
        scopes,
        tenant,
        totp_enabled: false,
        disabled: false,
        created_at: now,
        updated_at: now,
    })
}

/// One user by id, through the pool or inside a transaction.
pub async fn get<'e, E>(executor: E, id: &str) -> Result<Option<User>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// The login record for `username`.
pub async fn credentials(
    pool: &AnyPool,
    username: &str,
) -> Result<Option<Credentials>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS}, password_hash, totp_last_step FROM users WHERE username = $1"
    ))
    .bind(username)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Credentials {
        user: from_row(&row)?,
        password_hash: row.try_get("password_hash")?,
        totp_secret: row.try_get("totp_secret")?,
        totp_last_step: row.try_get("totp_last_step")?,
    }))
}

/// Users in id order after `after`, optionally only usernames starting with `prefix`; with
/// `tenant`, only that tenant's.
pub async fn list(
    pool: &AnyPool,
    tenant: Option<&str>,
    prefix: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<User>, sqlx::Error> {
    let pattern = format!(
        "{}%",
        prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM users WHERE username LIKE $1 ESCAPE '\\' AND id > $2 \
         AND ($4 = '' OR tenant = $4) ORDER BY id LIMIT $3"
    ))
    .bind(pattern)
    .bind(after)
    .bind(limit.clamp(1, 1000))
    .bind(tenant.unwrap_or(""))
    .fetch_all(pool)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Applies `patch`.
pub async fn update(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    patch: &UserPatch,
) -> Result<(), UserError> {
    let roles = patch.roles.as_deref().map(check_roles).transpose()?;
    let scopes = patch
        .scopes
        .as_deref()
        .map(crate::oauth::scopes::parse)
        .transpose()
        .map_err(|e| UserError::Invalid(e.to_string()))?
        .map(|s| crate::oauth::scopes::join(&s));
    let tenant_given = patch.tenant.is_some();
    let tenant = check_tenant(patch.tenant.as_deref())?;
    let changed = sqlx::query(
        "UPDATE users SET roles = COALESCE($1, roles), scopes = COALESCE($2, scopes), \
         tenant = CASE WHEN $3 = 1 THEN $4 ELSE tenant END, email = COALESCE($5, email), updated_at = $6 WHERE id = $7",
    )
    .bind(roles)
    .bind(scopes)
    .bind(i64::from(tenant_given))
    .bind(tenant)
    .bind(patch.email.clone())
    .bind(crate::now())
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(UserError::NotFound);
    }
    Ok(())
}

/// Sets the disabled flag.
pub async fn set_disabled(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    disabled: bool,
) -> Result<(), UserError> {
    let changed = sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(disabled))
        .bind(crate::now())
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if changed == 0 {
        return Err(UserError::NotFound);
    }
    Ok(())
}

/// Claims TOTP step `step` for the user: only a step later than the last accepted one is
/// claimed, in one conditional `UPDATE`, so each code passes once even under races. Whether it
/// was claimed.
pub async fn claim_totp_step<'e>(
    executor: impl sqlx::Executor<'e, Database = Any>,
    id: &str,
    step: i64,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
    )
    .bind(step)
    .bind(id)
    .execute(executor)
    .await?
    .rows_affected()
        == 1)
}

/// Replaces the password hash.
pub async fn set_password_hash(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(crate::now())
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Replaces the password hash with a stronger one of the same password (a rehash at login), only
/// if the hash is still `old`: a password changed meanwhile is kept.
pub async fn rehash_password(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    old: &str,
    new: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3")
        .bind(new)
        .bind(id)
        .bind(old)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Whether the user exists and is enabled, read inside `tx` (a login checks again just before it
/// opens the session, in case the account was disabled meanwhile).
pub async fn is_enabled(tx: &mut Transaction<'static, Any>, id: &str) -> Result<bool, sqlx::Error> {
    let disabled: Option<i64> = sqlx::query_scalar("SELECT disabled FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(disabled == Some(0))
}

/// Stores a sealed TOTP secret as pending: it becomes the second factor once a code confirms it.
pub async fn set_pending_totp(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    sealed: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET totp_pending = $1 WHERE id = $2")
        .bind(sealed)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The sealed pending TOTP secret, if an enrolment is in progress.
pub async fn pending_totp(pool: &AnyPool, id: &str) -> Result<Option<String>, sqlx::Error> {
    Ok(
        sqlx::query_scalar::<_, Option<String>>("SELECT totp_pending FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?
            .flatten(),
    )
}

/// Makes the pending TOTP secret the second factor, `step` the last one used.
pub async fn confirm_totp(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    step: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = $1 WHERE id = $2")
        .bind(step)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Removes the second factor (and any enrolment in progress).
pub async fn remove_totp(tx: &mut Transaction<'static, Any>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Erases the user's row (name, e-mail, hashes); audit rows keep only the random id.
pub async fn delete(tx: &mut Transaction<'static, Any>, id: &str) -> Result<(), UserError> {
    let changed = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if changed == 0 {
        return Err(UserError::NotFound);
    }
    Ok(())
}

/// Whether any user exists (bootstrap runs only on an empty store).
pub async fn any_exist(pool: &AnyPool) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("SELECT id FROM users LIMIT 1")
        .fetch_optional(pool)
        .await?
        .is_some())
}

/// Locks the user `id` until `tx` ends, so that the user an administrator's authority was
/// checked against is the one changed: without it, another administrator could promote it
/// between the check and the change. A no-op `UPDATE` is the portable row lock (`FOR UPDATE` on
/// Postgres; SQLite takes its write lock). A missing row locks nothing.
pub async fn lock(tx: &mut Transaction<'static, Any>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET id = id WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
