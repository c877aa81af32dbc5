//! What a client registers for the browser flows: where the authorization endpoint may send the
//! browser back (`redirect_uris`) and how the client authenticates at the token endpoint.
//!
//! The authorization endpoint redirects only to a URI registered here, compared as an exact
//! string (RFC 9700 §4.1.3: pattern matching made open redirectors), with one exception RFC 8252
//! §7.3 requires for native apps: a loopback `http` URI matches on any port, because the app
//! picks a free one at run time. So a registered URI must be unambiguous: absolute, without a
//! fragment (RFC 6749 §3.1.2), without user information or wildcards, `https` — or `http` on a
//! loopback IP literal (RFC 8252 §7.3; `localhost` is not one, §8.3), or a private-use scheme
//! in reverse-domain form for native apps (RFC 8252 §7.1, e.g. `com.example.app:/callback`).

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Most redirect URIs one client may register.
pub const MAX_REDIRECT_URIS: usize = 10;
/// Longest redirect URI accepted.
pub const MAX_REDIRECT_URI_LENGTH: usize = 2_000;

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// Its secret in HTTP Basic (the default; the body is accepted too, RFC 6749 §2.3.1).
    #[default]
    ClientSecretBasic,
    /// Its secret in the form body (HTTP Basic accepted too).
    ClientSecretPost,
    /// A public client (an SPA, a native app) with no secret: it names itself with `client_id`,
    /// may use only the authorization code (always with PKCE) and refresh grants, and its
    /// refresh tokens rotate.
    None,
}

impl AuthMethod {
    /// Every method, in the order metadata lists them.
    pub const ALL: [AuthMethod; 3] = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::None,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::None => "none",
        }
    }

    /// The method named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|method| method.as_str() == name)
    }

    /// Whether the client has no secret.
    pub fn is_public(self) -> bool {
        self == AuthMethod::None
    }
}

/// What a client's ID tokens are signed with (`id_token_signed_response_alg`, OpenID Connect
/// Dynamic Client Registration §2).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
pub enum IdTokenAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, which every relying party verifies (the default).
    #[default]
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl IdTokenAlg {
    /// Every algorithm, in the order metadata lists them.
    pub const ALL: [IdTokenAlg; 3] = [IdTokenAlg::RS256, IdTokenAlg::ES256, IdTokenAlg::EdDSA];

    /// The signature algorithm.
    pub fn algorithm(self) -> portcullis_authz::jwk::Algorithm {
        use portcullis_authz::jwk::Algorithm;
        match self {
            IdTokenAlg::RS256 => Algorithm::Rs256,
            IdTokenAlg::ES256 => Algorithm::Es256,
            IdTokenAlg::EdDSA => Algorithm::EdDsa,
        }
    }

    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        self.algorithm().as_str()
    }

    /// The algorithm named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == name)
    }
}

/// Why a redirect URI cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    /// Too many URIs.
    #[error("at most {MAX_REDIRECT_URIS} redirect URIs")]
    TooMany,
    /// The URI is not one the authorization endpoint may redirect to.
    #[error("redirect URI `{uri}`: {reason}")]
    Refused {
        /// The URI (cut to 100 characters).
        uri: String,
        /// Why.
        reason: &'static str,
    },
}

/// The URIs to register, each checked; duplicates are dropped, the order kept.
pub fn check(uris: &[String]) -> Result<Vec<String>, RedirectError> {
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(RedirectError::TooMany);
    }
    let mut checked: Vec<String> = Vec::with_capacity(uris.len());
    for uri in uris {
        check_one(uri).map_err(|reason| RedirectError::Refused {
            uri: uri.chars().take(100).collect(),
            reason,
        })?;
        if !checked.contains(uri) {
            checked.push(uri.clone());
        }
    }
    Ok(checked)
}

fn check_one(uri: &str) -> Result<(), &'static str> {
    if uri.len() > MAX_REDIRECT_URI_LENGTH {
        return Err("too long");
    }
    if uri.contains('#') {
        return Err("a fragment is not allowed");
    }
    if uri.contains('*') {
        return Err("wildcards are not allowed");
    }
    if uri
        .chars()
        .any(|c| c.is_ascii_whitespace() || c.is_control())
    {
        return Err("spaces and control characters are not allowed");
    }
    let url = url::Url::parse(uri).map_err(|_| "not an absolute URI")?;
    // The parser normalises (case, dot segments, default ports): only a URI that is already in
    // normal form is exact, so that what is registered is what is compared.
    if url.as_str() != uri && url.as_str() != format!("{uri}/") {
        return Err(
            "not in normal form (lower-case scheme and host, no dot segments or default port)",
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("user information is not allowed");
    }
    // The authorization response adds these (RFC 6749 §4.1.2, RFC 9207): one already in the
    // URI would be sent twice, and a client might read the wrong one.
    if url
        .query_pairs()
        .any(|(name, _)| RESPONSE_PARAMETERS.contains(&name.as_ref()))
    {
        return Err("the query may not hold code, state, iss, error or error_description");
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if loopback(&url) => Ok(()),
        "http" => Err("http only on a loopback IP literal (127.0.0.1 or [::1])"),
        scheme if scheme.contains('.') && !url.has_host() => Ok(()),
        _ => Err("https, loopback http, or a private-use scheme in reverse-domain form"),
    }
}

/// The parameters an authorization response carries.
const RESPONSE_PARAMETERS: [&str; 6] = [
    "code",
    "state",
    "iss",
    "error",
    "error_description",
    "error_uri",
];

/// Whether `uri` returns to an app on the user's device (loopback `http` or a private-use
/// scheme, RFC 8252 §7): any other app on that device may claim it, so a request naming it does
/// not prove which app asked (RFC 8252 §8.6).
pub fn is_native(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|url| match url.scheme() {
        "https" => false,
        "http" => loopback(&url),
        _ => true,
    })
}

fn loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        _ => false,
    }
}

/// Whether `presented` is one of `registered`: the same string, or, for a loopback `http` URI,
/// the same but for the port (RFC 8252 §7.3).
pub fn matches(registered: &[String], presented: &str) -> bool {
    if registered.iter().any(|uri| uri == presented) {
        return true;
    }
    let Ok(presented_url) = url::Url::parse(presented) else {
        return false;
    };
    if presented_url.scheme() != "http" || !loopback(&presented_url) {
        return false;
    }
    let without_port = |url: &url::Url| {
        let mut url = url.clone();
        let _ = url.set_port(None);
        url.to_string()
    };
    let presented_bare = without_port(&presented_url);
    registered.iter().any(|uri| {
        url::Url::parse(uri).is_ok_and(|url| {
            url.scheme() == "http" && loopback(&url) && without_port(&url) == presented_bare
        })
    }) && presented_url.as_str() == presented
}

#[cfg(test)]
mod tests {
    use super::{check, matches};

    fn one(uri: &str) -> Result<Vec<String>, super::RedirectError> {
        check(&[uri.to_owned()])
    }

    #[test]
    fn web_loopback_and_native_uris_are_registered() {
        for uri in [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?tenant=a",
            "http://127.0.0.1/callback",
            "http://[::1]:8080/callback",
            "com.example.app:/oauth2redirect",
        ] {
            assert_eq!(
                one(uri).map_err(|e| e.to_string()),
                Ok(vec![uri.to_owned()])
            );
        }
    }

    #[test]
    fn ambiguous_or_unsafe_uris_are_refused() {
        for uri in [
            "https://app.example.com/cb#frag",
            "https://*.example.com/cb",
            "http://app.example.com/cb",
            "http://localhost/cb",
            "https://user:pw@app.example.com/cb",
            "https://app.example.com/cb?code=planted",
            "https://app.example.com/cb?a=1&iss=https%3A%2F%2Fevil.example",
            "/relative/cb",
            "javascript:alert(1)",
            "HTTPS://app.example.com/cb",
            "https://APP.example.com/cb",
            "https://app.example.com/a/../cb",
            "https://app.example.com:443/cb",
            "https://app.example.com/c b",
        ] {
            assert!(one(uri).is_err(), "{uri} must be refused");
        }
        assert!(check(&vec!["https://a.example/cb".to_owned(); 11]).is_err());
    }

    #[test]
    fn only_the_exact_uri_matches_except_a_loopback_port() {
        let registered = vec![
            "https://app.example.com/callback".to_owned(),
            "http://127.0.0.1/native".to_owned(),
        ];
        assert!(matches(&registered, "https://app.example.com/callback"));
        for other in [
            "https://app.example.com/callback/",
            "https://app.example.com/callback/extra",
            "https://app.example.com/callback?x=1",
            "https://APP.example.com/callback",
            "https://app.example.com:8443/callback",
            "https://app.example.com/Callback",
            "http://127.0.0.1/native/extra",
            "http://127.0.0.2:5000/native",
        ] {
            assert!(!matches(&registered, other), "{other} must not match");
        }
        assert!(matches(&registered, "http://127.0.0.1:51234/native"));
        assert!(matches(&registered, "http://127.0.0.1/native"));
    }
}
