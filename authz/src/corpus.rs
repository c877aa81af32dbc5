//! Policy test cases as authors write them in `policies/tests/ALLOW/*.json` and
//! `policies/tests/DENY/*.json`: the token's claims and the HTTP request, exactly what the edge
//! sees. Evaluating a case goes through the same path normalisation and request building as the
//! filter, so a passing corpus tests the mapping from HTTP to Cedar as well as the policies.

use crate::claims::{AccessClaims, Subject};
use crate::policy::{Decision, HttpRequest, PolicyEngine};
use serde::{Deserialize, Serialize};

/// The token part of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseToken {
    /// `user:<id>` or `client:<id>`.
    pub sub: String,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
    /// Roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Authentication methods.
    #[serde(default)]
    pub amr: Vec<String>,
    /// Tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Client id (defaults to `corpus`).
    #[serde(default = "default_client")]
    pub client_id: String,
}

fn default_client() -> String {
    "corpus".into()
}

fn default_host() -> String {
    "api.test".into()
}

/// One test case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows.
    pub description: String,
    /// The caller's token.
    pub token: CaseToken,
    /// HTTP method.
    pub method: String,
    /// Path as the client sends it (normalised like the filter does).
    pub path: String,
    /// Host (defaults to `api.test`).
    #[serde(default = "default_host")]
    pub host: String,
    /// Client address.
    #[serde(default)]
    pub source_ip: Option<String>,
}

impl Case {
    /// The verified claims this case stands for.
    pub fn claims(&self, now: i64) -> Result<AccessClaims, String> {
        let sub = Subject::parse(&self.token.sub)
            .ok_or_else(|| format!("sub `{}` must be user:<id> or client:<id>", self.token.sub))?;
        Ok(AccessClaims {
            iss: "corpus".into(),
            sub,
            aud: vec!["corpus".into()],
            exp: now + 60,
            nbf: None,
            iat: now,
            jti: "corpus".into(),
            client_id: self.token.client_id.clone(),
            sid: None,
            scopes: self
                .token
                .scope
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            roles: self.token.roles.clone(),
            tenant: self.token.tenant.clone(),
            amr: self.token.amr.clone(),
        })
    }

    /// Evaluates the case the way the filter would (a path the filter refuses is a deny).
    pub fn evaluate(&self, engine: &PolicyEngine, now: i64) -> Result<Decision, String> {
        let claims = self.claims(now)?;
        let Ok(path) = crate::path::normalize(&self.path) else {
            return Ok(Decision {
                allowed: false,
                policy_ids: Vec::new(),
                errors: vec!["path refused by normalisation".into()],
                shadow_allowed: None,
            });
        };
        let request = HttpRequest {
            method: &self.method,
            path: &path.path,
            host: &self.host,
            source_ip: self.source_ip.as_deref(),
            now,
        };
        Ok(engine.decide(&claims, &request))
    }
}
