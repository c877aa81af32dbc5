//! Which audience a token is for (RFC 8707 resource indicators) and which scopes go with it.
//!
//! The control plane is its own audience (`PORTCULLIS_CONTROL_PLANE_AUDIENCE`, the issuer by
//! default) and the edge has its own (`PORTCULLIS_AUDIENCES`). A token is for exactly one of
//! the two: the admin API and `/v1/me` accept only control-plane tokens, the edge only edge
//! tokens. So a token an upstream service received cannot be replayed against the control plane,
//! and an administrator's token opens nothing at the edge.
//!
//! Every scope belongs to one side: `admin:*` and [`SELF_SCOPE`] to the control plane, all
//! others to the edge; a token carries only its side's scopes. A client names the side with
//! `resource` (the control-plane audience or one edge audience); without it, a grant that has
//! any edge scope is for the edge (all edge audiences, as before there were two sides), and one
//! with only control-plane scopes is for the control plane. A client may ask only for a side it
//! holds a scope of.
//!
//! A refresh token is bound to the audiences of the grant that opened its session (RFC 8707
//! §2.2: the refreshed token may be for those resources only). Without `resource` a refresh
//! gets a token for all of them; with one outside them it is refused.

use crate::infra::config::Config;

/// The scope that lets a user's token manage that user's own account (`/v1/me`). Every user
/// has it; a client must hold it for its tokens to carry it.
pub const SELF_SCOPE: &str = "self";

/// The side a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The control plane's own API.
    ControlPlane,
    /// The services behind the edge.
    Edge,
}

/// What a token may be verified for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Only control-plane tokens (admin API, `/v1/me`).
    ControlPlane,
    /// Only edge tokens (`/v1/authorize` answers as the edge would).
    Edge,
    /// Either (introspection, userinfo, revocation: they describe a token, they grant nothing).
    Any,
}

/// Why a `resource` cannot be granted (RFC 8707 §2: `invalid_target`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not an audience this server issues tokens for.
    #[error("resource `{0}` is not an audience this server issues tokens for")]
    Unknown(String),
    /// The client holds no scope for that audience.
    #[error("this client holds no scope for resource `{0}`")]
    NotAllowed(String),
    /// A refresh asked for an audience its grant was not for.
    #[error("resource `{0}` was not granted to this refresh token")]
    NotGranted(String),
}

/// The side `scope` belongs to.
pub fn side_of(scope: &str) -> Side {
    if scope == SELF_SCOPE || scope.starts_with("admin:") {
        Side::ControlPlane
    } else {
        Side::Edge
    }
}

/// A token's audiences and the scopes it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The `aud` claim.
    pub audiences: Vec<String>,
    /// The granted scopes of that side only.
    pub scopes: Vec<String>,
}

/// The audience and scopes for a grant of `scopes` (already narrowed to the client and user)
/// when the client asked for `resource`; `held` is what the client holds, which decides whether
/// it may ask for a side at all.
pub fn target(
    config: &Config,
    resource: Option<&str>,
    held: &[String],
    scopes: Vec<String>,
) -> Result<Target, TargetError> {
    let (side, audiences) = match resource {
        Some(r) if r == config.control_plane_audience => (Side::ControlPlane, vec![r.to_owned()]),
        Some(r) if config.audiences.iter().any(|a| a == r) => (Side::Edge, vec![r.to_owned()]),
        Some(r) => return Err(TargetError::Unknown(r.chars().take(128).collect())),
        None => {
            let side =
                if scopes.iter().all(|s| side_of(s) == Side::ControlPlane) && !scopes.is_empty() {
                    Side::ControlPlane
                } else {
                    Side::Edge
                };
            (side, audiences_of(config, side))
        }
    };
    if let Some(r) = resource {
        // Asking for a side needs a scope there; an edge token without scopes stays possible
        // for a client that holds no scope at all (its identity is what the edge judges).
        let holds = held.iter().any(|s| side_of(s) == side)
            || (side == Side::Edge && !held.iter().any(|s| side_of(s) == Side::ControlPlane));
        if !holds {
            return Err(TargetError::NotAllowed(r.chars().take(128).collect()));
        }
    }
    let scopes = scopes.into_iter().filter(|s| side_of(s) == side).collect();
    Ok(Target { audiences, scopes })
}

/// The target of a refresh of a session whose grant was for `bound` (space separated). A
/// session older than the binding (`bound` empty) is bound to the side its scopes imply, as a
/// grant of them without `resource` would be; audiences removed from the configuration since the
/// sign-in are not granted again.
pub fn refreshed(
    config: &Config,
    resource: Option<&str>,
    bound: &str,
    held: &[String],
    scopes: Vec<String>,
) -> Result<Target, TargetError> {
    let bound: Vec<String> = if bound.trim().is_empty() {
        target(config, None, held, scopes.clone())?.audiences
    } else {
        let known = accepted(config, Accept::Any);
        bound
            .split_whitespace()
            .filter(|b| known.iter().any(|k| k == b))
            .map(str::to_owned)
            .collect()
    };
    let Some(first) = bound.first() else {
        return Err(TargetError::NotGranted(
            resource.unwrap_or_default().chars().take(128).collect(),
        ));
    };
    match resource {
        Some(r) if !bound.iter().any(|b| b == r) => {
            Err(TargetError::NotGranted(r.chars().take(128).collect()))
        }
        Some(r) => target(config, Some(r), held, scopes),
        None => {
            let mut whole = target(config, Some(first), held, scopes)?;
            whole.audiences = bound;
            Ok(whole)
        }
    }
}

/// Every audience of `side`.
pub fn audiences_of(config: &Config, side: Side) -> Vec<String> {
    match side {
        Side::ControlPlane => vec![config.control_plane_audience.clone()],
        Side::Edge => config.audiences.clone(),
    }
}

/// The audiences a verifier for `accept` takes.
pub fn accepted(config: &Config, accept: Accept) -> Vec<String> {
    match accept {
        Accept::ControlPlane => audiences_of(config, Side::ControlPlane),
        Accept::Edge => audiences_of(config, Side::Edge),
        Accept::Any => {
            let mut all = audiences_of(config, Side::Edge);
            all.push(config.control_plane_audience.clone());
            all
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_lookup(|name| match name {
            "PORTCULLIS_ISSUER" => Some("https://id.example".into()),
            "PORTCULLIS_AUDIENCES" => Some("edge-a edge-b".into()),
            _ => None,
        })
        .unwrap()
    }

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn scopes_belong_to_one_side() {
        assert_eq!(side_of("admin:users"), Side::ControlPlane);
        assert_eq!(side_of("self"), Side::ControlPlane);
        assert_eq!(side_of("api:items:read"), Side::Edge);
        assert_eq!(side_of("selfish"), Side::Edge);
        assert_eq!(side_of("administrator"), Side::Edge);
    }

    #[test]
    fn without_a_resource_any_edge_scope_makes_an_edge_token_without_control_plane_scopes() {
        let c = config();
        let held = words("admin:users api:items:read");
        let mixed = target(&c, None, &held, words("admin:users api:items:read")).unwrap();
        assert_eq!(mixed.audiences, words("edge-a edge-b"));
        assert_eq!(mixed.scopes, words("api:items:read"));
        let admin = target(&c, None, &held, words("admin:users")).unwrap();
        assert_eq!(admin.audiences, words("https://id.example"));
        assert_eq!(admin.scopes, words("admin:users"));
        let empty = target(&c, None, &[], Vec::new()).unwrap();
        assert_eq!(
            empty.audiences,
            words("edge-a edge-b"),
            "no scopes: an edge token"
        );
    }

    #[test]
    fn a_resource_picks_one_audience_and_its_scopes() {
        let c = config();
        let held = words("admin:users api:items:read");
        let cp = target(&c, Some("https://id.example"), &held, held.clone()).unwrap();
        assert_eq!(cp.audiences, words("https://id.example"));
        assert_eq!(cp.scopes, words("admin:users"));
        let edge = target(&c, Some("edge-b"), &held, held.clone()).unwrap();
        assert_eq!(edge.audiences, words("edge-b"));
        assert_eq!(edge.scopes, words("api:items:read"));
        assert_eq!(
            target(&c, Some("https://elsewhere.example"), &held, held.clone()),
            Err(TargetError::Unknown("https://elsewhere.example".into()))
        );
        let edge_only = words("api:items:read");
        assert_eq!(
            target(
                &c,
                Some("https://id.example"),
                &edge_only,
                edge_only.clone()
            ),
            Err(TargetError::NotAllowed("https://id.example".into())),
            "a client without control-plane scopes cannot ask for a control-plane token"
        );
        let admin_only = words("admin:full");
        assert_eq!(
            target(&c, Some("edge-a"), &admin_only, admin_only.clone()),
            Err(TargetError::NotAllowed("edge-a".into())),
            "an admin-only client cannot ask for an edge token"
        );
    }

    #[test]
    fn verifiers_accept_their_side() {
        let c = config();
        assert_eq!(
            accepted(&c, Accept::ControlPlane),
            words("https://id.example")
        );
        assert_eq!(accepted(&c, Accept::Edge), words("edge-a edge-b"));
        assert_eq!(
            accepted(&c, Accept::Any),
            words("edge-a edge-b https://id.example")
        );
    }
}
