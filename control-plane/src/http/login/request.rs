//! The authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, OpenID Connect Core §3.1.2.1),
//! checked in the order §4.1.2.1 prescribes: until the client and its redirect URI are known
//! good, an error is shown on a page of our own and never redirected (a redirect to an
//! unchecked URI would make this server an open redirector); after that, errors go back to the
//! client's redirect URI with `error`, `state` and `iss` (RFC 9207).
//!
//! The login form carries the same parameters back, and they are checked again in full there:
//! nothing the browser returns is trusted because this server wrote it.

use crate::oauth::clients::{self, Client};
use crate::oauth::codes::is_s256_challenge;
use crate::oauth::grant::GrantType;
use crate::oauth::registration;
use crate::state::AppState;
use std::collections::HashMap;

/// The parameters the login form carries from the authorization request to its POST.
pub const CARRIED: [&str; 10] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "resource",
    "max_age",
];

/// Longest value of any authorization request parameter.
const MAX_PARAMETER: usize = 2_048;

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct Authorization {
    /// The client.
    pub client: Client,
    /// Where to send the browser back (registered, exactly as presented).
    pub redirect_uri: String,
    /// `state`, returned as given.
    pub state: Option<String>,
    /// Requested access scopes (`None`: all the client may have).
    pub scopes: Option<Vec<String>>,
    /// Requested OpenID scopes (`openid`, `profile`, `email`, `offline_access`).
    pub openid_scopes: Vec<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// OpenID Connect `nonce`.
    pub nonce: Option<String>,
    /// RFC 8707 `resource`.
    pub resource: Option<String>,
    /// `login_hint`: prefills the username.
    pub login_hint: Option<String>,
    /// `prompt=none`: the client asks not to show a login page.
    pub prompt_none: bool,
    /// `prompt=login`: the client asks for a new sign-in even with a live session.
    pub prompt_login: bool,
    /// `max_age`: a sign-in older than this many seconds must be repeated.
    pub max_age: Option<i64>,
    /// The parameters to carry in the login form.
    pub carried: Vec<(&'static str, String)>,
}

/// Why an authorization request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Shown on our page: the client or the redirect URI is not known good.
    Page(String),
    /// Sent back to the client's redirect URI (RFC 6749 §4.1.2.1).
    Redirect {
        /// The registered redirect URI.
        redirect_uri: String,
        /// The `error` code.
        error: &'static str,
        /// `error_description`.
        description: String,
        /// `state`, as received.
        state: Option<String>,
    },
}

/// Query or form parameters, each at most once (RFC 6749 §3.1); `Err` names a repeated one.
pub fn parameters(encoded: &[u8]) -> Result<HashMap<String, String>, String> {
    let mut params = HashMap::new();
    for (name, value) in form_urlencoded::parse(encoded) {
        if params.insert(name.to_string(), value.to_string()).is_some() {
            return Err(name.chars().take(64).collect());
        }
    }
    Ok(params)
}

/// Checks an authorization request.
pub async fn check(
    state: &AppState,
    params: &HashMap<String, String>,
) -> Result<Authorization, Refused> {
    let get = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let page = |message: &str| Refused::Page(message.to_owned());
    let client_id = get("client_id").ok_or_else(|| page("The request names no client."))?;
    let client = match clients::get(&state.db().pool, client_id).await {
        Ok(Some(client))
            if !client.disabled && client.grant_types.contains(&GrantType::AuthorizationCode) =>
        {
            client
        }
        Ok(_) => {
            return Err(page(
                "The application asking you to sign in is not known here.",
            ))
        }
        Err(_) => return Err(page("Sign-in is unavailable right now; please try again.")),
    };
    let redirect_uri = match get("redirect_uri") {
        Some(uri) if registration::matches(&client.redirect_uris, uri) => uri.to_owned(),
        Some(_) => {
            return Err(page(
                "The application asked to return to an address it has not registered.",
            ))
        }
        // RFC 6749 §3.1.2.3: it may be left out only when one is registered.
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Err(page("The request names no redirect URI.")),
    };
    let client_state = get("state").map(str::to_owned);
    let refuse = |error: &'static str, description: &str| Refused::Redirect {
        redirect_uri: redirect_uri.clone(),
        error,
        description: description.to_owned(),
        state: client_state.clone(),
    };
    if params.values().any(|v| v.len() > MAX_PARAMETER) {
        return Err(refuse("invalid_request", "a parameter is too long"));
    }
    match get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "response_type must be code",
            ))
        }
        None => {
            return Err(refuse(
                "invalid_request",
                "missing parameter `response_type`",
            ))
        }
    }
    let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (Some(challenge), Some("S256")) if is_s256_challenge(challenge) => challenge.to_owned(),
        (Some(_), Some("S256")) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge must be a base64url SHA-256 (43 characters)",
            ))
        }
        (Some(_), _) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not accepted)",
            ))
        }
        (None, _) => {
            return Err(refuse(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method S256",
            ))
        }
    };
    let requested = get("scope")
        .map(crate::oauth::scopes::parse)
        .transpose()
        .map_err(|e| refuse("invalid_scope", &e.to_string()))?;
    let (openid_scopes, scopes) = match requested {
        Some(requested) => {
            let (openid, access) = requested.into_iter().partition(|s| is_openid_scope(s));
            (openid, Some(access))
        }
        None => (Vec::new(), None),
    };
    if let Some(requested) = &scopes {
        if !requested.is_empty()
            && crate::oauth::scopes::narrow(Some(requested), &client.scopes).is_empty()
        {
            return Err(refuse(
                "invalid_scope",
                "none of the requested scopes may be granted to this client",
            ));
        }
    }
    let resource = get("resource").map(str::to_owned);
    if let Some(resource) = &resource {
        let config = state.config();
        if *resource != config.control_plane_audience && !config.audiences.contains(resource) {
            return Err(refuse("invalid_target", "unknown resource"));
        }
    }
    // OpenID Connect Core §3.1.2.1: a space-separated list; `none` stands alone. There is no
    // consent page (every client is registered by an administrator), so `consent` asks for
    // nothing more; `select_account` is a new sign-in.
    let prompts: Vec<&str> = get("prompt")
        .map(|p| p.split(' ').filter(|v| !v.is_empty()).collect())
        .unwrap_or_default();
    if prompts
        .iter()
        .any(|p| !matches!(*p, "none" | "login" | "consent" | "select_account"))
    {
        return Err(refuse(
            "invalid_request",
            "prompt may hold none, login, consent and select_account",
        ));
    }
    let prompt_none = prompts.contains(&"none");
    if prompt_none && prompts.len() > 1 {
        return Err(refuse(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }
    let prompt_login = prompts.contains(&"login") || prompts.contains(&"select_account");
    let max_age = match get("max_age").map(str::parse::<i64>) {
        None => None,
        Some(Ok(seconds)) if seconds >= 0 => Some(seconds),
        Some(_) => {
            return Err(refuse(
                "invalid_request",
                "max_age must be a non-negative number of seconds",
            ))
        }
    };
    let carried = CARRIED
        .iter()
        .filter_map(|name| get(name).map(|value| (*name, value.to_owned())))
        .collect();
    Ok(Authorization {
        redirect_uri,
        state: client_state,
        scopes,
        openid_scopes,
        code_challenge,
        nonce: get("nonce").map(str::to_owned),
        resource,
        login_hint: get("login_hint").map(|h| h.chars().take(256).collect()),
        prompt_none,
        prompt_login,
        max_age,
        carried,
        client,
    })
}

/// Whether `scope` is one of OpenID Connect's own (`openid`, `profile`, `email`,
/// `offline_access`), which ask for claims about the user, not for access.
pub fn is_openid_scope(scope: &str) -> bool {
    crate::oauth::id_token::OPENID_SCOPES.contains(&scope)
}

/// `redirect_uri` with `params` added to its query (`None` if it does not parse, which a
/// registered URI always does).
pub fn redirect_to(redirect_uri: &str, params: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(redirect_uri).ok()?;
    if !params.is_empty() {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    Some(url.to_string())
}
