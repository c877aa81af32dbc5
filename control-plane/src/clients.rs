//! OAuth clients: generated secrets (256 bits) stored as keyed hashes, compared in constant
//! time, rotated with an overlap window.

use crate::secrets::{
    constant_time_eq, random_id, random_secret, HashPurpose, MasterKey, SecretError,
};
use serde::Serialize;
use sqlx::{Any, AnyPool, Row as _, Transaction};

/// Grants a client may be allowed.
pub const GRANT_TYPES: [&str; 3] = ["client_credentials", "password", "refresh_token"];

/// A client as the API shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Client {
    /// Client id (`sub` is `client:<id>` for its own tokens).
    pub client_id: String,
    /// Display name.
    pub name: String,
    /// Scopes it may be granted.
    pub scopes: Vec<String>,
    /// Grants it may use.
    pub grant_types: Vec<String>,
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
    /// A grant type is not supported.
    #[error("unsupported grant type `{0}`")]
    Grant(String),
    /// A scope is malformed.
    #[error(transparent)]
    Scope(#[from] crate::scopes::ScopeError),
    /// The name is empty or too long.
    #[error("name must be 1 to 200 characters")]
    Name,
    /// No such client.
    #[error("client not found")]
    NotFound,
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Client, sqlx::Error> {
    let disabled: i64 = row.try_get("disabled")?;
    let scopes: String = row.try_get("scopes")?;
    let grants: String = row.try_get("grant_types")?;
    Ok(Client {
        client_id: row.try_get("id")?,
        name: row.try_get("name")?,
        scopes: crate::db::words(&scopes),
        grant_types: crate::db::words(&grants),
        disabled: disabled != 0,
        created_at: row.try_get("created_at")?,
        previous_secret_expires: row.try_get("previous_secret_expires")?,
    })
}

const COLUMNS: &str =
    "id, name, scopes, grant_types, disabled, created_at, previous_secret_expires";

/// Checks a grant list.
pub fn parse_grants(grants: &[String]) -> Result<Vec<String>, ClientError> {
    for grant in grants {
        if !GRANT_TYPES.contains(&grant.as_str()) {
            return Err(ClientError::Grant(grant.chars().take(64).collect()));
        }
    }
    Ok(grants.to_vec())
}

/// Creates a client; returns it with its secret, which is shown only this once.
pub async fn create(
    tx: &mut Transaction<'static, Any>,
    master: &MasterKey,
    name: &str,
    scopes: &str,
    grants: &[String],
) -> Result<(Client, String), ClientError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ClientError::Name);
    }
    let scopes = crate::scopes::parse(scopes)?;
    let grants = parse_grants(grants)?;
    let id = random_id()?;
    let secret = random_secret("pcs_")?;
    let now = crate::now();
    sqlx::query(
        "INSERT INTO clients (id, name, secret_hash, previous_secret_hash, previous_secret_expires, scopes, grant_types, disabled, created_at) \
         VALUES ($1, $2, $3, NULL, NULL, $4, $5, 0, $6)",
    )
    .bind(&id)
    .bind(name)
    .bind(master.keyed_hash(HashPurpose::ClientSecret, &secret))
    .bind(crate::scopes::join(&scopes))
    .bind(grants.join(" "))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok((
        Client {
            client_id: id,
            name: name.to_owned(),
            scopes,
            grant_types: grants,
            disabled: false,
            created_at: now,
            previous_secret_expires: None,
        },
        secret,
    ))
}

/// One client.
pub async fn get(pool: &AnyPool, id: &str) -> Result<Option<Client>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM clients WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Clients in id order after `after`.
pub async fn list(pool: &AnyPool, after: &str, limit: i64) -> Result<Vec<Client>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM clients WHERE id > $1 ORDER BY id LIMIT $2"
    ))
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

/// Replaces the scopes and/or grants and/or disabled flag.
pub async fn update(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    scopes: Option<&str>,
    grants: Option<&[String]>,
    disabled: Option<bool>,
) -> Result<(), ClientError> {
    let scopes = scopes.map(crate::scopes::parse).transpose()?;
    let grants = grants.map(parse_grants).transpose()?;
    let changed = sqlx::query(
        "UPDATE clients SET scopes = COALESCE($1, scopes), grant_types = COALESCE($2, grant_types), disabled = COALESCE($3, disabled) WHERE id = $4",
    )
    .bind(scopes.map(|s| crate::scopes::join(&s)))
    .bind(grants.map(|g| g.join(" ")))
    .bind(disabled.map(i64::from))
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(ClientError::NotFound);
    }
    Ok(())
}
