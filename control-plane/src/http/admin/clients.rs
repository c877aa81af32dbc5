//! `/admin/v1/clients`: create, list, read, change and rotate the secret of OAuth clients.

use crate::http::error::ApiError;
use crate::http::extractors::AdminCall;
use crate::http::json::{JsonBody, PathParam, QueryParams};
use crate::oauth::clients::Client;
use crate::oauth::grant::GrantType;
use crate::oauth::registration::{AuthMethod, IdTokenAlg};
use crate::oauth::service::TokenStats;
use crate::oauth::service::{self, ClientChanges, ClientSpec};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// Paging parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    after: Option<String>,
    /// Page size, default 100, taken into 1 to 1000.
    limit: Option<i64>,
}

/// A new client and its secret, shown only in this response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedClient {
    /// The client.
    pub client: Client,
    /// Its id (also in `client`).
    pub client_id: String,
    /// Its secret; a public client has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// A page of clients.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientList {
    /// The clients, by id.
    pub clients: Vec<Client>,
}

/// A client and its token statistics.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientWithStats {
    /// The client.
    pub client: Client,
    /// From the audit log.
    pub stats: TokenStats,
}

/// A client after a change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientBody {
    /// The client.
    pub client: Client,
}

/// A client's new secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedSecretBody {
    /// The client.
    pub client_id: String,
    /// The new secret, shown only in this response.
    pub client_secret: String,
    /// When the previous secret stops working, epoch seconds.
    pub previous_secret_expires: i64,
}

/// A new client.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    #[serde(default, deserialize_with = "crate::oauth::scopes::from_list_or_text")]
    #[schema(schema_with = crate::oauth::scopes::request_schema)]
    scopes: String,
    #[serde(default = "default_grants")]
    grant_types: Vec<GrantType>,
    #[serde(default)]
    #[schema(schema_with = crate::identity::users::roles_schema)]
    roles: Vec<String>,
    /// ASCII letters, digits or `. _ -` (up to 64); empty or absent: the creator's own.
    #[schema(pattern = r"^[A-Za-z0-9._-]{0,64}$")]
    tenant: Option<String>,
    /// Where the authorization endpoint may send the browser back: https, loopback http (any
    /// port matches, RFC 8252) or a reverse-domain private-use scheme; exact, in normal form, no
    /// fragment or wildcard. Required with `authorization_code`.
    #[serde(default)]
    #[schema(max_items = 10)]
    redirect_uris: Vec<String>,
    /// `none` makes a public client (an SPA or a native app, no secret): it may use only
    /// `authorization_code` and `refresh_token`.
    #[serde(default)]
    token_endpoint_auth_method: AuthMethod,
    /// What its ID tokens are signed with (`RS256` if absent).
    #[serde(default)]
    id_token_signed_response_alg: IdTokenAlg,
    /// Where RP-Initiated Logout may send the browser back (exact match; checked as redirect
    /// URIs are).
    #[serde(default)]
    #[schema(max_items = 10)]
    post_logout_redirect_uris: Vec<String>,
}

fn default_grants() -> Vec<GrantType> {
    vec![GrantType::ClientCredentials]
}

/// `POST /admin/v1/clients`: the secret is in this response only.
#[utoipa::path(
    post,
    path = "/admin/v1/clients",
    tag = "clients",
    security(("bearer" = ["admin:clients"])),
    request_body = CreateClient,
    responses((status = 201, description = "Created", body = CreatedClient), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn create_client(
    call: AdminCall,
    JsonBody(body): JsonBody<CreateClient>,
) -> Result<Response, ApiError> {
    let spec = ClientSpec {
        name: body.name,
        scopes: body.scopes,
        grant_types: body.grant_types,
        roles: body.roles,
        tenant: body.tenant,
        redirect_uris: body.redirect_uris,
        auth_method: body.token_endpoint_auth_method,
        id_token_alg: body.id_token_signed_response_alg,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
    };
    let (client, secret) = service::create_client(&call.ctx(), &spec).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedClient {
            client_id: client.client_id.clone(),
            client,
            client_secret: secret,
        }),
    )
        .into_response())
}

/// `GET /admin/v1/clients`: a tenant's administrators list that tenant's clients.
#[utoipa::path(
    get,
    path = "/admin/v1/clients",
    tag = "clients",
    security(("bearer" = ["admin:clients"])),
    params(Page),
    responses((status = 200, description = "`clients`", body = ClientList), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn list_clients(
    call: AdminCall,
    QueryParams(page): QueryParams<Page>,
) -> Result<Json<ClientList>, ApiError> {
    let found =
        service::list_clients(&call.ctx(), page.after.as_deref().unwrap_or(""), page.limit).await?;
    Ok(Json(ClientList { clients: found }))
}

/// `GET /admin/v1/clients/{id}`: the client and its token statistics (from the audit log).
#[utoipa::path(
    get,
    path = "/admin/v1/clients/{id}",
    tag = "clients",
    security(("bearer" = ["admin:clients"])),
    params(("id" = String, Path, description = "Client id")),
    responses((status = 200, description = "`client` and `stats`", body = ClientWithStats), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn get_client(
    call: AdminCall,
    PathParam(id): PathParam<String>,
) -> Result<Json<ClientWithStats>, ApiError> {
    let (client, stats) = service::get_client(&call.ctx(), &id).await?;
    Ok(Json(ClientWithStats { client, stats }))
}

/// Changes to a client.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateClient {
    #[serde(
        default,
        deserialize_with = "crate::oauth::scopes::from_optional_list_or_text"
    )]
    #[schema(schema_with = crate::oauth::scopes::optional_request_schema)]
    scopes: Option<String>,
    grant_types: Option<Vec<GrantType>>,
    #[schema(schema_with = crate::identity::users::optional_roles_schema)]
    roles: Option<Vec<String>>,
    /// ASCII letters, digits or `. _ -` (up to 64); empty clears it.
    #[schema(pattern = r"^[A-Za-z0-9._-]{0,64}$")]
    tenant: Option<String>,
    /// The whole new list, checked as at creation.
    #[schema(max_items = 10)]
    redirect_uris: Option<Vec<String>>,
    /// The whole new list, checked as at creation.
    #[schema(max_items = 10)]
    post_logout_redirect_uris: Option<Vec<String>>,
    disabled: Option<bool>,
}

/// `PATCH /admin/v1/clients/{id}`.
#[utoipa::path(
    patch,
    path = "/admin/v1/clients/{id}",
    tag = "clients",
    security(("bearer" = ["admin:clients"])),
    params(("id" = String, Path, description = "Client id")),
    request_body = UpdateClient,
    responses((status = 200, description = "`client`", body = ClientBody), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn update_client(
    call: AdminCall,
    PathParam(id): PathParam<String>,
    JsonBody(body): JsonBody<UpdateClient>,
) -> Result<Json<ClientBody>, ApiError> {
    let changes = ClientChanges {
        scopes: body.scopes,
        grant_types: body.grant_types,
        roles: body.roles,
        tenant: body.tenant,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        disabled: body.disabled,
    };
    let client = service::update_client(&call.ctx(), &id, &changes).await?;
    Ok(Json(ClientBody { client }))
}

/// `POST /admin/v1/clients/{id}/rotate-secret`: a new secret; the old one works for the
/// overlap window.
#[utoipa::path(
    post,
    path = "/admin/v1/clients/{id}/rotate-secret",
    tag = "clients",
    security(("bearer" = ["admin:clients"])),
    params(("id" = String, Path, description = "Client id")),
    responses((status = 200, description = "The new secret, shown once", body = RotatedSecretBody), (status = "default", description = "An error: `error` and `error_description` (RFC 6749 §5.2 shape)", body = crate::http::error::ErrorBody))
)]
pub async fn rotate_client_secret(
    call: AdminCall,
    PathParam(id): PathParam<String>,
) -> Result<Json<RotatedSecretBody>, ApiError> {
    let rotated = service::rotate_client_secret(&call.ctx(), &id).await?;
    Ok(Json(RotatedSecretBody {
        client_id: id,
        client_secret: rotated.secret,
        previous_secret_expires: rotated.previous_expires,
    }))
}
