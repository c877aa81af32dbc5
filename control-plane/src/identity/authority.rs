//! Which principals an administrator may grant to and act on: the escalation rule of Kubernetes
//! RBAC, applied to scopes, roles and tenants.
//!
//! A partial administrator may **grant** (on create or update) only scopes and roles it holds
//! itself, and may **act on** a user or client (change it, rotate its secret, disable, enable,
//! delete or export it, end its sessions) only when that principal's scopes and roles are within
//! its own. Without this an `admin:clients` token could rotate the secret of the `admin:full`
//! client and sign in as it, or an `admin:users` token could hand a user `api:system:admin`.
//! Holding `admin:full` exempts from the subset rule.
//!
//! A tenant is a boundary, not a power: an administrator whose token carries a tenant sees and
//! manages only principals of that tenant and can neither create one elsewhere nor move one out,
//! whatever its scopes (`admin:full` included).
//!
//! What an administrator holds is what its principal holds now, through the client it signed in
//! with: a user's scopes and roles that the client also has, or a client's own. Its token cannot
//! be the measure, because a control-plane token carries only control-plane scopes (see
//! [`crate::oauth::audience`]), and a demotion takes effect at the next request, not at the token's
//! expiry. `admin:full` counts only while the token and the record both carry it. The admin-API
//! Cedar policy (`policies/admin-api.cedar`) decides from the token which area it may call and
//! keeps tenant tokens out of the installation-wide areas (keys, policies, audit); this check
//! decides which principals within an area, because only the control plane knows a target's
//! stored grants.

use portcullis_authz::claims::{AccessClaims, Subject};
use sqlx::AnyPool;

/// The scope that exempts from the subset rule (never from a tenant).
pub const FULL: &str = "admin:full";

/// What an acting administrator holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    full: bool,
    scopes: Vec<String>,
    roles: Vec<String>,
    tenant: Option<String>,
}

/// The scopes, roles and tenant of a principal, as stored or as about to be stored.
#[derive(Debug, Clone, Copy)]
pub struct Grants<'a> {
    /// Scopes it has (a user) or may be granted (a client's allow-list).
    pub scopes: &'a [String],
    /// Roles it has (a user) or may carry into tokens (a client's allow-list).
    pub roles: &'a [String],
    /// Its tenant.
    pub tenant: Option<&'a str>,
}

/// Why an administrator may not grant or act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The principal has (or would get) a scope the administrator does not hold.
    #[error("the caller does not hold scope `{0}`, so it can neither grant it nor manage a principal that has it")]
    Scope(String),
    /// The principal has (or would get) a role the administrator does not hold.
    #[error("the caller does not hold role `{0}`, so it can neither grant it nor manage a principal that has it")]
    Role(String),
    /// The principal is (or would be) outside the administrator's tenant.
    #[error("the caller manages only principals of its own tenant")]
    Tenant,
}

impl Authority {
    /// What the principal behind the verified `claims` holds now; `None` when it no longer
    /// exists or is disabled (its token then opens nothing).
    pub async fn held_by(
        pool: &AnyPool,
        claims: &AccessClaims,
    ) -> Result<Option<Self>, sqlx::Error> {
        let Some(client) = crate::oauth::clients::get(pool, &claims.client_id)
            .await?
            .filter(|c| !c.disabled)
        else {
            return Ok(None);
        };
        let (scopes, roles, tenant) = match &claims.sub {
            Subject::Client(id) if *id == client.client_id => {
                (client.scopes, client.roles, client.tenant)
            }
            Subject::Client(_) => return Ok(None),
            Subject::User(id) => {
                let Some(user) = crate::identity::users::get(pool, id)
                    .await?
                    .filter(|u| !u.disabled && client.admits(u.tenant.as_deref()))
                else {
                    return Ok(None);
                };
                (
                    client.scopes_for(&user),
                    client.roles_for(&user),
                    user.tenant,
                )
            }
        };
        let full = claims.scopes.iter().any(|s| s == FULL) && scopes.iter().any(|s| s == FULL);
        Ok(Some(Authority {
            full,
            scopes,
            roles,
            tenant,
        }))
    }

    /// Everything, in every tenant: the operator at the command line, who holds the store and
    /// the master key and so holds everything already.
    pub fn installation() -> Self {
        Authority {
            full: true,
            scopes: Vec::new(),
            roles: Vec::new(),
            tenant: None,
        }
    }

    /// Whether the administrator holds `scope` now (the admin gate narrows the token's scopes to
    /// these before Cedar decides the area).
    pub fn holds(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// The tenant the administrator is confined to, if any.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// Whether a principal of `tenant` is visible at all (outside the tenant it does not exist).
    pub fn sees(&self, tenant: Option<&str>) -> bool {
        self.tenant.is_none() || self.tenant.as_deref() == tenant
    }

    /// Whether the administrator may act on a principal with `grants`, or give a principal
    /// `grants`: the one check behind every admin change to a user or client.
    pub fn covers(&self, grants: &Grants<'_>) -> Result<(), Refusal> {
        if !self.sees(grants.tenant) {
            return Err(Refusal::Tenant);
        }
        if self.full {
            return Ok(());
        }
        if let Some(scope) = grants.scopes.iter().find(|s| !self.scopes.contains(s)) {
            return Err(Refusal::Scope(scope.clone()));
        }
        if let Some(role) = grants.roles.iter().find(|r| !self.roles.contains(r)) {
            return Err(Refusal::Role(role.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    fn authority(scopes: &str, roles: &str, tenant: Option<&str>) -> Authority {
        Authority {
            full: words(scopes).iter().any(|s| s == FULL),
            scopes: words(scopes),
            roles: words(roles),
            tenant: tenant.map(str::to_owned),
        }
    }

    fn check(
        by: &Authority,
        scopes: &str,
        roles: &str,
        tenant: Option<&str>,
    ) -> Result<(), Refusal> {
        by.covers(&Grants {
            scopes: &words(scopes),
            roles: &words(roles),
            tenant,
        })
    }

    #[test]
    fn a_partial_administrator_covers_only_subsets_of_what_it_holds() {
        let by = authority("admin:users api:items:read", "sre", None);
        assert_eq!(check(&by, "api:items:read", "sre", None), Ok(()));
        assert_eq!(
            check(&by, "", "", Some("acme")),
            Ok(()),
            "an untenanted admin sees every tenant"
        );
        assert_eq!(
            check(&by, "api:items:read admin:full", "", None),
            Err(Refusal::Scope("admin:full".into()))
        );
        assert_eq!(
            check(&by, "api:system:admin", "", None),
            Err(Refusal::Scope("api:system:admin".into()))
        );
        assert_eq!(
            check(&by, "", "sre ops", None),
            Err(Refusal::Role("ops".into()))
        );
    }

    #[test]
    fn admin_full_is_exempt_from_the_subset_rule_but_not_from_its_tenant() {
        let full = authority("admin:full", "", None);
        assert_eq!(
            check(&full, "admin:full api:system:admin", "ops", None),
            Ok(())
        );
        let tenant_full = authority("admin:full", "", Some("acme"));
        assert_eq!(check(&tenant_full, "anything", "ops", Some("acme")), Ok(()));
        assert_eq!(
            check(&tenant_full, "", "", Some("globex")),
            Err(Refusal::Tenant)
        );
        assert_eq!(
            check(&tenant_full, "", "", None),
            Err(Refusal::Tenant),
            "a tenant administrator cannot create or manage tenantless principals"
        );
    }

    #[test]
    fn a_tenant_administrator_sees_only_its_tenant() {
        let by = authority("admin:users", "", Some("acme"));
        assert!(by.sees(Some("acme")));
        assert!(!by.sees(Some("globex")));
        assert!(!by.sees(None));
    }
}
