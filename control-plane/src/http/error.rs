//! The one place errors become HTTP responses: RFC 6749 §5.2 JSON for OAuth endpoints, RFC 6750
//! challenges for bearer-protected ones, and a small JSON problem body elsewhere. Internal
//! details go to the log, never to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// RFC 6749 §5.2 / RFC 7009 / RFC 6750 error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthCode {
    /// Malformed request.
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// Bad credentials, refresh token or grant.
    InvalidGrant,
    /// The client may not use this grant.
    UnauthorizedClient,
    /// Unknown grant type.
    UnsupportedGrantType,
    /// Requested scope not allowed.
    InvalidScope,
    /// Requested resource (audience) not allowed (RFC 8707 §2).
    InvalidTarget,
    /// Bearer token missing or invalid (RFC 6750).
    InvalidToken,
    /// Bearer token lacks the scope (RFC 6750).
    InsufficientScope,
    /// Throttled or overloaded.
    TemporarilyUnavailable,
}

impl OAuthCode {
    fn as_str(self) -> &'static str {
        match self {
            OAuthCode::InvalidRequest => "invalid_request",
            OAuthCode::InvalidClient => "invalid_client",
            OAuthCode::InvalidGrant => "invalid_grant",
            OAuthCode::UnauthorizedClient => "unauthorized_client",
            OAuthCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthCode::InvalidScope => "invalid_scope",
            OAuthCode::InvalidTarget => "invalid_target",
            OAuthCode::InvalidToken => "invalid_token",
            OAuthCode::InsufficientScope => "insufficient_scope",
            OAuthCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// The body of every error response: an RFC 6749 §5.2 code and a description without secrets.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error code (`invalid_request`, `invalid_token`, `not_found`, …).
    pub error: String,
    /// What went wrong.
    pub error_description: String,
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An OAuth error with a human-readable description (never secrets).
    #[error("{code:?}: {description}")]
    OAuth {
        /// The code.
        code: OAuthCode,
        /// Why.
        description: String,
        /// Client authentication was attempted with HTTP Basic (401 needs a Basic challenge).
        basic: bool,
        /// Seconds to wait, for throttled requests.
        retry_after: Option<i64>,
    },
    /// Bad input outside OAuth endpoints.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Not found.
    #[error("not found")]
    NotFound,
    /// Conflicts with existing state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store is unreachable or overloaded.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or unexpected failure; logged, reported generically.
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    /// An OAuth error.
    pub fn oauth(code: OAuthCode, description: impl Into<String>) -> Self {
        ApiError::OAuth {
            code,
            description: description.into(),
            basic: false,
            retry_after: None,
        }
    }

    /// `invalid_client`, with a Basic challenge when the client used Basic.
    pub fn invalid_client(basic: bool) -> Self {
        ApiError::OAuth {
            code: OAuthCode::InvalidClient,
            description: "client authentication failed".into(),
            basic,
            retry_after: None,
        }
    }

    /// 429 for a client making requests faster than its limit.
    pub fn slow_down(retry_after: i64) -> Self {
        ApiError::OAuth {
            code: OAuthCode::TemporarilyUnavailable,
            description: "too many requests from this client; try again later".into(),
            basic: false,
            retry_after: Some(retry_after.max(1)),
        }
    }

    /// 429 for a login that must wait.
    pub fn throttled(retry_after: i64) -> Self {
        ApiError::OAuth {
            code: OAuthCode::TemporarilyUnavailable,
            description: "too many failed attempts; try again later".into(),
            basic: false,
            retry_after: Some(retry_after.max(1)),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                ApiError::Unavailable("database unavailable".into())
            }
            _ => ApiError::Internal(format!("database: {error}")),
        }
    }
}

fn oauth_status(code: OAuthCode) -> StatusCode {
    match code {
        OAuthCode::InvalidClient | OAuthCode::InvalidToken => StatusCode::UNAUTHORIZED,
        OAuthCode::InsufficientScope => StatusCode::FORBIDDEN,
        OAuthCode::TemporarilyUnavailable => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// `description` within RFC 6749 §5.2's character set for `error_description` (printable ASCII
/// without `"` and `\`): a description may quote request input (e.g. a repeated parameter's
/// name), and a client must be able to parse it; anything else becomes `?`.
fn oauth_description(description: &str) -> String {
    description
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '?',
        })
        .collect()
}

fn problem(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = match &self {
            ApiError::OAuth {
                code,
                description,
                basic,
                retry_after,
            } => {
                let description = oauth_description(description);
                let mut response = problem(oauth_status(*code), code.as_str(), &description);
                let headers = response.headers_mut();
                let challenge = match code {
                    OAuthCode::InvalidClient if *basic => {
                        Some("Basic realm=\"portcullis\"".to_owned())
                    }
                    OAuthCode::InvalidToken | OAuthCode::InsufficientScope => Some(format!(
                        "Bearer realm=\"portcullis\", error=\"{}\"",
                        code.as_str()
                    )),
                    _ => None,
                };
                if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
                if let Some(seconds) = retry_after {
                    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                        headers.insert(header::RETRY_AFTER, value);
                    }
                }
                response
            }
            ApiError::BadRequest(message) => {
                problem(StatusCode::BAD_REQUEST, "invalid_request", message)
            }
            ApiError::NotFound => problem(StatusCode::NOT_FOUND, "not_found", "no such resource"),
            ApiError::Conflict(message) => problem(StatusCode::CONFLICT, "conflict", message),
            ApiError::Unavailable(message) => {
                tracing::warn!(%message, "request failed: unavailable");
                problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the service is temporarily unavailable",
                )
            }
            ApiError::Internal(message) => {
                tracing::error!(%message, "request failed");
                problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal error",
                )
            }
        };
        // RFC 6749 §5.1/5.2: token responses must not be cached.
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

macro_rules! from_store_error {
    ($($ty:ty),*) => {$(
        impl From<$ty> for ApiError {
            fn from(error: $ty) -> Self {
                error.into_api()
            }
        }
    )*};
}

/// Conversion of store errors; kept here so every mapping is in this file.
trait IntoApi {
    fn into_api(self) -> ApiError;
}

impl IntoApi for crate::identity::users::UserError {
    fn into_api(self) -> ApiError {
        use crate::identity::users::UserError;
        match self {
            UserError::Db(e) => e.into(),
            UserError::Invalid(m) => ApiError::BadRequest(m),
            UserError::Taken => ApiError::Conflict("username is taken".into()),
            UserError::NotFound => ApiError::NotFound,
        }
    }
}

impl IntoApi for crate::oauth::clients::ClientError {
    fn into_api(self) -> ApiError {
        use crate::oauth::clients::ClientError;
        match self {
            ClientError::Db(e) => e.into(),
            ClientError::Secret(e) => ApiError::Internal(e.to_string()),
            ClientError::NotFound => ApiError::NotFound,
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

impl IntoApi for crate::identity::sessions::SessionError {
    fn into_api(self) -> ApiError {
        match self {
            crate::identity::sessions::SessionError::Db(e) => e.into(),
            crate::identity::sessions::SessionError::Secret(e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl IntoApi for crate::keys::signing::KeyError {
    fn into_api(self) -> ApiError {
        match self {
            crate::keys::signing::KeyError::Db(e) => e.into(),
            error @ crate::keys::signing::KeyError::NotYetPublished { .. } => {
                ApiError::Conflict(error.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoApi for crate::policy::set::PolicyStoreError {
    fn into_api(self) -> ApiError {
        use crate::policy::set::PolicyStoreError;
        match self {
            PolicyStoreError::Db(e) => e.into(),
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

impl IntoApi for crate::bundle::AssembleError {
    fn into_api(self) -> ApiError {
        match self {
            crate::bundle::AssembleError::Db(e) => e.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoApi for crate::identity::login::LoginError {
    fn into_api(self) -> ApiError {
        use crate::identity::login::LoginError;
        match self {
            error @ LoginError::Refused => {
                ApiError::oauth(OAuthCode::InvalidGrant, error.to_string())
            }
            LoginError::Throttled(retry_after) => ApiError::throttled(retry_after),
            LoginError::Db(e) => e.into(),
            LoginError::Hash(e) => e.into(),
            LoginError::Secret(e) => e.into(),
            LoginError::Audit(e) => e.into(),
        }
    }
}

impl IntoApi for crate::oauth::codes::CodeError {
    fn into_api(self) -> ApiError {
        match self {
            crate::oauth::codes::CodeError::Db(e) => e.into(),
            crate::oauth::codes::CodeError::Secret(e) => e.into(),
        }
    }
}

impl IntoApi for crate::keys::secrets::SecretError {
    fn into_api(self) -> ApiError {
        ApiError::Internal(self.to_string())
    }
}

impl IntoApi for portcullis_authz::bearer::BearerError {
    fn into_api(self) -> ApiError {
        use portcullis_authz::bearer::BearerError;
        match self {
            BearerError::Missing => {
                ApiError::oauth(OAuthCode::InvalidToken, "a bearer token is required")
            }
            BearerError::Malformed => {
                ApiError::oauth(OAuthCode::InvalidToken, "the bearer token is malformed")
            }
            BearerError::MultipleHeaders => ApiError::oauth(
                OAuthCode::InvalidRequest,
                "send exactly one Authorization header",
            ),
            BearerError::QueryToken => ApiError::oauth(
                OAuthCode::InvalidRequest,
                "access tokens go in the Authorization header, never in the query string",
            ),
        }
    }
}

impl IntoApi for crate::oauth::tokens::IssueError {
    fn into_api(self) -> ApiError {
        ApiError::Internal(self.to_string())
    }
}

impl IntoApi for crate::audit::batch::BatchError {
    fn into_api(self) -> ApiError {
        ApiError::Unavailable(self.to_string())
    }
}

impl IntoApi for crate::identity::passwords::HashError {
    fn into_api(self) -> ApiError {
        ApiError::Unavailable(self.to_string())
    }
}

impl IntoApi for crate::oauth::audience::TargetError {
    fn into_api(self) -> ApiError {
        ApiError::oauth(OAuthCode::InvalidTarget, self.to_string())
    }
}

impl IntoApi for crate::identity::authority::Refusal {
    fn into_api(self) -> ApiError {
        ApiError::oauth(OAuthCode::InsufficientScope, self.to_string())
    }
}

impl IntoApi for crate::service::ServiceError {
    fn into_api(self) -> ApiError {
        use crate::service::ServiceError;
        match self {
            ServiceError::NotFound => ApiError::NotFound,
            ServiceError::Invalid(message) => ApiError::BadRequest(message),
            ServiceError::Conflict(message) => ApiError::Conflict(message),
            ServiceError::Refused(e) => e.into(),
            ServiceError::User(e) => e.into(),
            ServiceError::Client(e) => e.into(),
            ServiceError::Session(e) => e.into(),
            ServiceError::Key(e) => e.into(),
            ServiceError::Policy(e) => e.into(),
            ServiceError::Hash(e) => e.into(),
            ServiceError::Publish(e) => e.into(),
            ServiceError::Db(e) => e.into(),
        }
    }
}

from_store_error!(
    crate::service::ServiceError,
    crate::identity::login::LoginError,
    crate::oauth::codes::CodeError,
    crate::oauth::audience::TargetError,
    crate::identity::authority::Refusal,
    crate::identity::users::UserError,
    crate::oauth::clients::ClientError,
    crate::identity::sessions::SessionError,
    crate::keys::signing::KeyError,
    crate::policy::set::PolicyStoreError,
    crate::bundle::AssembleError,
    crate::keys::secrets::SecretError,
    crate::oauth::tokens::IssueError,
    portcullis_authz::bearer::BearerError,
    crate::identity::passwords::HashError,
    crate::audit::batch::BatchError
);

#[cfg(test)]
mod tests {
    use super::oauth_description;

    #[test]
    fn oauth_descriptions_keep_to_the_rfc_6749_character_set() {
        assert_eq!(
            oauth_description("parameter `a` is repeated"),
            "parameter `a` is repeated"
        );
        let cleaned = oauth_description("parameter `a\"b\\c\nd\u{7f}é\t` is repeated");
        assert_eq!(cleaned, "parameter `a?b?c?d???` is repeated");
        assert!(cleaned
            .bytes()
            .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)));
    }
}
