//! The control plane authorizes its own admin API with Cedar: `policies/admin-api.cedar`, compiled
//! in with the schema, evaluated by the same engine as the edge. The active (user-edited) policy
//! set is deliberately not used here, so a bad push can neither lock administrators out nor let
//! anyone else in.

use portcullis_authz::claims::AccessClaims;
use portcullis_authz::policy::{Decision, HttpRequest, PolicyEngine, PolicyError};
use std::sync::OnceLock;

/// The admin API policies, as shipped in `policies/admin-api.cedar`.
pub const POLICIES: &str = include_str!("../../../policies/admin-api.cedar");
/// The schema they are validated against.
pub const SCHEMA: &str = include_str!("../../../policies/schema.cedarschema");

/// The compiled admin policies (built once; an error here is a build defect and fails closed).
pub fn engine() -> Result<&'static PolicyEngine, &'static PolicyError> {
    static ENGINE: OnceLock<Result<PolicyEngine, PolicyError>> = OnceLock::new();
    ENGINE
        .get_or_init(|| PolicyEngine::new(SCHEMA, POLICIES, &serde_json::Value::Null))
        .as_ref()
}

/// Whether the admin policies allow `claims` to call `method path`. Paths the edge would refuse
/// to normalise are denied.
pub fn decide(claims: &AccessClaims, method: &str, path: &str, now: i64) -> Decision {
    let denied = |error: String| Decision {
        allowed: false,
        policy_ids: Vec::new(),
        errors: vec![error],
        shadow_allowed: None,
    };
    let engine = match engine() {
        Ok(engine) => engine,
        Err(error) => return denied(error.to_string()),
    };
    let Ok(normalized) = portcullis_authz::path::normalize(path) else {
        return denied("path refused by normalisation".into());
    };
    engine.decide(
        claims,
        &HttpRequest {
            method,
            path: &normalized.path,
            host: "",
            source_ip: None,
            now,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_authz::claims::Subject;

    fn claims(scope: &str) -> AccessClaims {
        AccessClaims {
            iss: "test".into(),
            sub: Subject::User("ops".into()),
            aud: vec!["test".into()],
            exp: 100,
            nbf: None,
            iat: 0,
            jti: "j".into(),
            client_id: "c".into(),
            sid: None,
            scopes: scope.split_whitespace().map(str::to_owned).collect(),
            roles: Vec::new(),
            tenant: None,
            amr: Vec::new(),
        }
    }

    #[test]
    fn the_shipped_admin_policies_compile() {
        assert!(engine().is_ok(), "{:?}", engine().err());
    }

    #[test]
    fn each_area_needs_its_scope_or_admin_full() {
        let allowed =
            |scope: &str, method: &str, path: &str| decide(&claims(scope), method, path, 0).allowed;
        assert!(allowed("admin:users", "POST", "/admin/v1/users"));
        assert!(allowed("admin:users", "DELETE", "/admin/v1/sessions/3"));
        assert!(allowed("admin:full", "POST", "/admin/v1/keys/rotate"));
        assert!(allowed("admin:audit", "GET", "/admin/v1/audit"));
        assert!(!allowed("admin:audit", "DELETE", "/admin/v1/audit"));
        assert!(!allowed("admin:clients", "GET", "/admin/v1/users"));
        assert!(!allowed("api:system:admin", "GET", "/admin/v1/users"));
        assert!(!allowed("admin:users", "GET", "/admin/v1/users/../keys"));
        assert!(!allowed("", "GET", "/admin/v1/policies"));
    }
}
