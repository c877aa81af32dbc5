//! What Cedar learns from the path and the scopes besides their raw text, so policies can speak
//! about services, tenants and scope patterns without string operations Cedar does not have.
//!
//! - `Endpoint.service`: the segment after `/api/` (`/api/ontologies/7` → `ontologies`), or the
//!   first segment for other paths (`/ops/x` → `ops`); empty for `/`.
//! - `Endpoint.tenant`: the segment after the first `tenants` segment
//!   (`/api/projects/tenants/acme/1` → `acme`); absent when the path names no tenant.
//! - `context.api_scopes`: every scope of the form `api:<service>:<permission>` as a record
//!   `{service, permission}`, so "any `api:*:read` scope for this service" is
//!   `context.api_scopes.contains({service: resource.service, permission: "read"})`.
//!
//! All three are pure functions of the normalised path and the verified scopes, which both key
//! the decision cache, so cached decisions stay correct.

/// The service an (already normalised) path belongs to.
pub fn service(path: &str) -> &str {
    let mut segments = segments(path);
    match segments.next() {
        Some("api") => segments.next().unwrap_or(""),
        Some(first) => first,
        None => "",
    }
}

/// The tenant an (already normalised) path names, if any.
pub fn tenant(path: &str) -> Option<&str> {
    let mut segments = segments(path);
    segments.find(|segment| *segment == "tenants")?;
    segments.next()
}

/// `(service, permission)` when `scope` is exactly `api:<service>:<permission>` with both parts
/// non-empty.
pub fn api_scope(scope: &str) -> Option<(&str, &str)> {
    let rest = scope.strip_prefix("api:")?;
    let (service, permission) = rest.split_once(':')?;
    if service.is_empty() || permission.is_empty() || permission.contains(':') {
        return None;
    }
    Some((service, permission))
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|segment| !segment.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_is_the_segment_after_api_or_the_first() {
        assert_eq!(service("/api/ontologies/7"), "ontologies");
        assert_eq!(service("/api/ontologies"), "ontologies");
        assert_eq!(service("/api"), "");
        assert_eq!(service("/ops/dashboard"), "ops");
        assert_eq!(service("/"), "");
        assert_eq!(service(""), "");
    }

    #[test]
    fn tenant_follows_the_first_tenants_segment() {
        assert_eq!(tenant("/api/projects/tenants/acme/1"), Some("acme"));
        assert_eq!(tenant("/tenants/globex"), Some("globex"));
        assert_eq!(tenant("/tenants"), None);
        assert_eq!(tenant("/tenants/"), None);
        assert_eq!(tenant("/api/items/1"), None);
        assert_eq!(tenant("/tenants/a/tenants/b"), Some("a"));
    }

    #[test]
    fn api_scopes_need_exactly_three_non_empty_parts() {
        assert_eq!(
            api_scope("api:ontologies:read"),
            Some(("ontologies", "read"))
        );
        assert_eq!(api_scope("api:system:admin"), Some(("system", "admin")));
        assert_eq!(api_scope("api::read"), None);
        assert_eq!(api_scope("api:items:"), None);
        assert_eq!(api_scope("api:items"), None);
        assert_eq!(api_scope("api:a:b:c"), None);
        assert_eq!(api_scope("admin:users"), None);
        assert_eq!(api_scope("openid"), None);
    }
}
