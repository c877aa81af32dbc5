//! Reading requests: the caller's origin for audit rows, OAuth form bodies (RFC 6749: form
//! encoded, no repeated parameters), client authentication (Basic or body, never both) and
//! bearer tokens.

use super::error::{ApiError, OAuthCode};
use crate::audit::Origin;
use crate::clients::Client;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::collections::HashMap;
use std::net::SocketAddr;

/// The scope that lets a resource server introspect tokens issued to other clients.
pub const INTROSPECT_SCOPE: &str = "introspect";
/// The scope that lets a service ask `/v1/authorize` about tokens issued to other clients.
pub const AUTHORIZE_SCOPE: &str = "authorize";

/// The one access rule of the endpoints that examine a token for their caller (introspection,
/// `/v1/authorize`): a client may examine tokens issued to it, and others' only with the
/// endpoint's dedicated `scope` (RFC 7662 §4). Anything else is answered as for an unknown token.
pub fn may_examine(caller: &Client, token_client_id: &str, scope: &str) -> bool {
    token_client_id == caller.client_id || caller.scopes.iter().any(|s| s == scope)
}

/// Largest form body accepted, in bytes.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let client_ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
            .map(str::to_owned)
            .or_else(|| crate::secrets::random_id().ok())
            .unwrap_or_default();
        Ok(Origin {
            client_ip,
            request_id,
        })
    }
}

/// A parsed `application/x-www-form-urlencoded` body with the request headers.
#[derive(Debug, Clone)]
pub struct OAuthForm {
    /// Parameters; each appears once.
    pub params: HashMap<String, String>,
    /// Request headers (for client authentication).
    pub headers: HeaderMap,
}

impl OAuthForm {
    /// A parameter, treating empty as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A required parameter.
    pub fn require(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| {
            ApiError::oauth(
                OAuthCode::InvalidRequest,
                format!("missing parameter `{name}`"),
            )
        })
    }
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(ApiError::oauth(
                OAuthCode::InvalidRequest,
                "body must be application/x-www-form-urlencoded",
            ));
        }
        let headers = request.headers().clone();
        let body = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|_| {
                ApiError::oauth(
                    OAuthCode::InvalidRequest,
                    format!("body must be at most {MAX_FORM_BYTES} bytes"),
                )
            })?;
        let mut params = HashMap::new();
        for (name, value) in form_urlencoded::parse(&body) {
            if params.insert(name.to_string(), value.to_string()).is_some() {
                return Err(ApiError::oauth(
                    OAuthCode::InvalidRequest,
                    format!(
                        "parameter `{}` is repeated",
                        name.chars().take(64).collect::<String>()
                    ),
                ));
            }
        }
        Ok(OAuthForm { params, headers })
    }
}

/// Credentials a client presented.
#[derive(Debug)]
struct Presented {
    id: String,
    secret: String,
    basic: bool,
}

fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || ApiError::invalid_client(true);
    let text = value.to_str().map_err(|_| bad())?;
    let Some((scheme, encoded)) = text.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

fn presented(form: &OAuthForm) -> Result<Option<Presented>, ApiError> {
    let basic = basic_credentials(&form.headers)?;
    let body = (form.get("client_id"), form.get("client_secret"));
    match (basic, body) {
        (Some(_), (_, Some(_))) => Err(ApiError::oauth(
            OAuthCode::InvalidRequest,
            "use one client authentication method, not two",
        )),
        (Some((id, secret)), _) => Ok(Some(Presented {
            id,
            secret,
            basic: true,
        })),
        (None, (Some(id), Some(secret))) => Ok(Some(Presented {
            id: id.to_owned(),
            secret: secret.to_owned(),
            basic: false,
        })),
        (None, _) => Ok(None),
    }
}

/// Authenticates the client of an OAuth request (client_secret_basic or client_secret_post).
pub async fn authenticate_client(state: &AppState, form: &OAuthForm) -> Result<Client, ApiError> {
    let Some(presented) = presented(form)? else {
        return Err(ApiError::invalid_client(false));
    };
    if presented.id.len() > 128 || presented.secret.len() > 256 {
        return Err(ApiError::invalid_client(presented.basic));
    }
    crate::clients::authenticate(
        &state.db().pool,
        state.master(),
        &presented.id,
        &presented.secret,
    )
    .await?
    .ok_or_else(|| ApiError::invalid_client(presented.basic))
}

/// The bearer token of a request (RFC 6750 §2.1), if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
