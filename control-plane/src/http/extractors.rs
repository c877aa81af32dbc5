//! Reading requests: the caller's origin for audit rows, the verified administrator of an admin
//! request, OAuth form bodies (RFC 6749: form encoded, no repeated parameters), client
//! authentication (Basic or body, never both) and bearer tokens.

use super::error::{ApiError, OAuthCode};
use crate::audit::Origin;
use crate::oauth::clients::Client;
use crate::oauth::grant::GrantType;
use crate::service::{Actor, Context};
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

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

/// The client's address: the peer's, unless the peer is a trusted proxy, in which case
/// `X-Forwarded-For` is read from the right, past every trusted hop, to the first address no
/// trusted proxy vouches for (the left part of the header is whatever the client sent). An
/// entry that does not parse stops the walk at the hop that added it. IPv4-mapped IPv6
/// addresses (a dual-stack listener's view of IPv4 peers) count as IPv4, and a hop written
/// with a port counts without it.
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    for hop in forwarded_for.rev() {
        let Some(ip) = hop_address(hop.trim()) else {
            return client;
        };
        client = ip.to_canonical();
        if !is_trusted(&client) {
            return client;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:80`.
fn hop_address(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

impl FromRequestParts<AppState> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let client_ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| {
                let hops = parts
                    .headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .collect::<Vec<_>>();
                client_address(c.0.ip(), hops.into_iter(), &state.config().trusted_proxies)
                    .to_string()
            })
            .unwrap_or_else(|| "unknown".into());
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
            .map(str::to_owned)
            .or_else(|| crate::keys::secrets::random_id().ok())
            .unwrap_or_default();
        Ok(Origin {
            client_ip,
            request_id,
        })
    }
}

/// An admin request as the service layer takes it: the administrator the admin gate verified
/// (once per request), where the request came from, and the state.
#[derive(Debug, Clone)]
pub struct AdminCall {
    state: AppState,
    actor: Actor,
    origin: Origin,
}

impl AdminCall {
    /// The context the request's operations run in.
    pub fn ctx(&self) -> Context<'_> {
        Context::served(&self.state, &self.actor, &self.origin)
    }

    /// The service state.
    pub fn state(&self) -> &AppState {
        &self.state
    }
}

impl FromRequestParts<AppState> for AdminCall {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let actor = parts
            .extensions
            .get::<Actor>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("admin route outside the admin gate".into()))?;
        let Ok(origin) = Origin::from_request_parts(parts, state).await;
        Ok(AdminCall {
            state: state.clone(),
            actor,
            origin,
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
        // RFC 6749 §2.3.1 lets a client repeat its id in the body; a different one is ambiguous.
        (Some((id, _)), (Some(body_id), None)) if body_id != id => Err(ApiError::oauth(
            OAuthCode::InvalidRequest,
            "client_id in the body differs from the one in the Authorization header",
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
    crate::oauth::clients::authenticate(
        &state.db().pool,
        state.master(),
        &presented.id,
        &presented.secret,
    )
    .await?
    .ok_or_else(|| ApiError::invalid_client(presented.basic))
}

/// Authenticates the client of a token request: as [`authenticate_client`], or, for the grants
/// a public client may use (`authorization_code`, `refresh_token`) and when no secret is
/// presented at all, a public client named by `client_id` (RFC 6749 §2.3, §3.2.1).
pub async fn authenticate_token_client(
    state: &AppState,
    form: &OAuthForm,
    grant: Option<GrantType>,
) -> Result<Client, ApiError> {
    let public_grant = matches!(
        grant,
        Some(GrantType::AuthorizationCode | GrantType::RefreshToken)
    );
    authenticate_public_or_client(state, form, public_grant).await
}

/// The client of a request a public client may make by its `client_id` alone when
/// `public_allowed` (the code and refresh grants; revoking its own tokens, RFC 7009 §2.1); any
/// other client, or a request with a secret, authenticates as [`authenticate_client`] says.
pub async fn authenticate_public_or_client(
    state: &AppState,
    form: &OAuthForm,
    public_allowed: bool,
) -> Result<Client, ApiError> {
    let no_secret = presented(form)?.is_none();
    match form.get("client_id") {
        Some(id) if public_allowed && no_secret && id.len() <= 128 => {
            crate::oauth::clients::public(&state.db().pool, id)
                .await?
                .ok_or_else(|| ApiError::invalid_client(false))
        }
        _ => authenticate_client(state, form).await,
    }
}

/// The request's bearer token by the README's one rule (`portcullis_authz::bearer`, the same
/// code as the filter): a single `Authorization: Bearer` header, never a query-string token.
pub fn bearer<'a>(
    headers: &'a HeaderMap,
    query: Option<&str>,
) -> Result<&'a str, portcullis_authz::bearer::BearerError> {
    let values: Vec<&[u8]> = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .map(|value| value.as_bytes())
        .collect();
    portcullis_authz::bearer::extract(&values, query)
}

/// The bearer token of a request, extracted by [`bearer`]; refused as RFC 6750 §3.1 says.
#[derive(Debug, Clone)]
pub struct Bearer(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        bearer(&parts.headers, parts.uri.query())
            .map(|token| Bearer(token.to_owned()))
            .map_err(ApiError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::client_address;
    use std::net::IpAddr;

    fn client(peer: &str, header: &str, trusted: &[&str]) -> IpAddr {
        let trusted: Vec<ipnet::IpNet> = trusted.iter().map(|c| c.parse().unwrap()).collect();
        client_address(peer.parse().unwrap(), header.split(','), &trusted)
    }

    #[test]
    fn forwarded_for_is_ignored_from_an_untrusted_peer() {
        assert_eq!(
            client("203.0.113.9", "198.51.100.1", &["10.0.0.0/8"]),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client("10.0.0.5", "198.51.100.1", &[]),
            "10.0.0.5".parse::<IpAddr>().unwrap(),
            "nothing is trusted by default"
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client_it_saw() {
        assert_eq!(
            client("10.0.0.5", "198.51.100.1", &["10.0.0.0/8"]),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn what_the_client_wrote_left_of_the_trusted_hops_is_not_believed() {
        // The client sent "X-Forwarded-For: 1.2.3.4"; the proxy appended the address it saw.
        assert_eq!(
            client("10.0.0.5", "1.2.3.4, 198.51.100.1", &["10.0.0.0/8"]),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        // Two trusted hops: the walk passes both.
        assert_eq!(
            client(
                "10.0.0.5",
                "1.2.3.4, 198.51.100.1, 10.0.0.7",
                &["10.0.0.0/8"]
            ),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn mapped_addresses_and_ports_are_normalised() {
        let mapped = client_address(
            "::ffff:10.0.0.5".parse().unwrap(),
            "198.51.100.1:4711".split(','),
            &["10.0.0.0/8".parse().unwrap()],
        );
        assert_eq!(
            mapped,
            "198.51.100.1".parse::<IpAddr>().unwrap(),
            "a dual-stack listener's IPv4 proxy is trusted, and the hop's port dropped"
        );
        assert_eq!(
            client("10.0.0.5", "[2001:db8::7]:443", &["10.0.0.0/8"]),
            "2001:db8::7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn a_garbled_entry_stops_at_the_hop_that_added_it() {
        assert_eq!(
            client("10.0.0.5", "1.2.3.4, not-an-ip", &["10.0.0.0/8"]),
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
    }
}
