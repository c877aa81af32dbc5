//! RFC 9068 access-token claims, read with strict types and checked against the bundle's rules.

use crate::json::UniqueObject;
use serde_json::Value;

/// Latest accepted `NumericDate` (9999-12-31T23:59:59Z); anything larger is nonsense, not a date.
pub const MAX_NUMERIC_DATE: i64 = 253_402_300_799;
/// Longest accepted identifier claim (`sub` id, `client_id`, `jti`, `sid`, `tenant`, role, scope).
pub const MAX_ID_LEN: usize = 256;

/// Who the token speaks for. `sub` is `user:<id>` or `client:<id>`, so the two namespaces cannot
/// collide (RFC 9700 §4.15).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A person, `User::"<id>"` in Cedar.
    User(String),
    /// A service acting for itself, `Client::"<id>"` in Cedar.
    Client(String),
}

impl Subject {
    /// Parses a `sub` claim.
    pub fn parse(sub: &str) -> Option<Self> {
        let (kind, id) = sub.split_once(':')?;
        if !is_clean_id(id) {
            return None;
        }
        match kind {
            "user" => Some(Subject::User(id.to_owned())),
            "client" => Some(Subject::Client(id.to_owned())),
            _ => None,
        }
    }

    /// The id without its namespace.
    pub fn id(&self) -> &str {
        match self {
            Subject::User(id) | Subject::Client(id) => id,
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::User(id) => write!(f, "user:{id}"),
            Subject::Client(id) => write!(f, "client:{id}"),
        }
    }
}

/// The verified claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: Subject,
    /// Audiences.
    pub aud: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Not-before, seconds since the epoch.
    pub nbf: Option<i64>,
    /// Issued-at, seconds since the epoch.
    pub iat: i64,
    /// Token id.
    pub jti: String,
    /// OAuth client the token was issued to.
    pub client_id: String,
    /// Session (refresh-token family); absent for `client_credentials`.
    pub sid: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Roles of the subject.
    pub roles: Vec<String>,
    /// Tenant of the subject.
    pub tenant: Option<String>,
    /// Authentication methods (e.g. `pwd`, `otp`).
    pub amr: Vec<String>,
}

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRules {
    /// The only accepted `iss`, compared exactly.
    pub issuer: String,
    /// `aud` must contain at least one of these.
    pub audiences: Vec<String>,
    /// Allowed clock skew in seconds.
    pub leeway: i64,
    /// Longest accepted `exp - iat`, in seconds.
    pub max_lifetime: i64,
}

/// Why the claims were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    /// A required claim is absent.
    #[error("claim `{0}` is missing")]
    Missing(&'static str),
    /// A claim has the wrong JSON type, is empty, too long, or holds control characters.
    #[error("claim `{0}` is malformed")]
    Malformed(&'static str),
    /// `exp` is in the past beyond the leeway.
    #[error("token has expired")]
    Expired,
    /// `nbf` or `iat` is in the future beyond the leeway.
    #[error("token is not yet valid")]
    NotYetValid,
    /// `exp - iat` exceeds the maximum lifetime.
    #[error("token lifetime exceeds the maximum")]
    LifetimeTooLong,
    /// `iss` is not the trusted issuer.
    #[error("issuer mismatch")]
    WrongIssuer,
    /// `aud` holds none of our audiences.
    #[error("audience mismatch")]
    WrongAudience,
}

impl AccessClaims {
    /// Reads the claims from a payload object, enforcing types; does not check times or issuer.
    pub fn from_object(object: &UniqueObject) -> Result<Self, ClaimsError> {
        let sub = required_str(object, "sub")?;
        Ok(AccessClaims {
            iss: required_str(object, "iss")?.to_owned(),
            sub: Subject::parse(sub).ok_or(ClaimsError::Malformed("sub"))?,
            aud: audiences(object)?,
            exp: numeric_date(object, "exp")?.ok_or(ClaimsError::Missing("exp"))?,
            nbf: numeric_date(object, "nbf")?,
            iat: numeric_date(object, "iat")?.ok_or(ClaimsError::Missing("iat"))?,
            jti: clean_id(object, "jti")?.ok_or(ClaimsError::Missing("jti"))?,
            client_id: clean_id(object, "client_id")?.ok_or(ClaimsError::Missing("client_id"))?,
            sid: clean_id(object, "sid")?,
            scopes: scopes(object)?,
            roles: id_list(object, "roles")?,
            tenant: clean_id(object, "tenant")?,
            amr: id_list(object, "amr")?,
        })
    }

    /// Checks issuer, audience and times against `rules` at `now` (seconds since the epoch).
    pub fn check(&self, rules: &ClaimRules, now: i64) -> Result<(), ClaimsError> {
        if self.iss != rules.issuer {
            return Err(ClaimsError::WrongIssuer);
        }
        if !self.aud.iter().any(|a| rules.audiences.contains(a)) {
            return Err(ClaimsError::WrongAudience);
        }
        self.check_times(rules, now)
    }

    /// Checks only `exp`, `nbf`, `iat` and the lifetime; cached tokens re-run this on every use.
    pub fn check_times(&self, rules: &ClaimRules, now: i64) -> Result<(), ClaimsError> {
        if now > self.exp.saturating_add(rules.leeway) {
            return Err(ClaimsError::Expired);
        }
        let earliest = self.nbf.unwrap_or(self.iat).max(self.iat);
        if earliest > now.saturating_add(rules.leeway) {
            return Err(ClaimsError::NotYetValid);
        }
        if self.exp.saturating_sub(self.iat) > rules.max_lifetime {
            return Err(ClaimsError::LifetimeTooLong);
        }
        Ok(())
    }
}

fn required_str<'a>(object: &'a UniqueObject, name: &'static str) -> Result<&'a str, ClaimsError> {
    match object.get(name) {
        None => Err(ClaimsError::Missing(name)),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(ClaimsError::Malformed(name)),
    }
}

/// A `NumericDate` must be a JSON integer in `0..=MAX_NUMERIC_DATE`: strings, floats, `null`,
/// booleans and negative or absurd values are all refused (CVE-2026-25537).
fn numeric_date(object: &UniqueObject, name: &'static str) -> Result<Option<i64>, ClaimsError> {
    match object.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|v| (0..=MAX_NUMERIC_DATE).contains(v))
            .map(Some)
            .ok_or(ClaimsError::Malformed(name)),
        Some(_) => Err(ClaimsError::Malformed(name)),
    }
}

/// Identifier claims become Cedar entity ids and upstream header values, so they must be short
/// and printable.
pub(crate) fn is_clean_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_ID_LEN
        && !value.chars().any(|c| c.is_control())
        && value.trim() == value
}

fn clean_id(object: &UniqueObject, name: &'static str) -> Result<Option<String>, ClaimsError> {
    match object.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if is_clean_id(s) => Ok(Some(s.clone())),
        Some(_) => Err(ClaimsError::Malformed(name)),
    }
}

fn id_list(object: &UniqueObject, name: &'static str) -> Result<Vec<String>, ClaimsError> {
    match object.get(name) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) if items.len() <= 64 => items
            .iter()
            .map(|item| match item {
                Value::String(s) if is_clean_id(s) && !s.contains(' ') => Ok(s.clone()),
                _ => Err(ClaimsError::Malformed(name)),
            })
            .collect(),
        Some(_) => Err(ClaimsError::Malformed(name)),
    }
}

fn scopes(object: &UniqueObject) -> Result<Vec<String>, ClaimsError> {
    match object.get("scope") {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => {
            let scopes: Vec<String> = s
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if scopes.len() > 64 || scopes.iter().any(|s| !is_clean_id(s)) {
                return Err(ClaimsError::Malformed("scope"));
            }
            Ok(scopes)
        }
        Some(_) => Err(ClaimsError::Malformed("scope")),
    }
}

fn audiences(object: &UniqueObject) -> Result<Vec<String>, ClaimsError> {
    let aud = match object.get("aud") {
        None => return Err(ClaimsError::Missing("aud")),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.len() <= 32 => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or(ClaimsError::Malformed("aud"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ClaimsError::Malformed("aud")),
    };
    if aud.is_empty() || aud.iter().any(String::is_empty) {
        return Err(ClaimsError::Malformed("aud"));
    }
    Ok(aud)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn rules() -> ClaimRules {
        ClaimRules {
            issuer: "https://id.example".into(),
            audiences: vec!["api".into()],
            leeway: 60,
            max_lifetime: 86_400,
        }
    }

    fn base() -> Value {
        json!({
            "iss": "https://id.example", "sub": "user:42", "aud": ["api", "other"],
            "exp": NOW + 900, "iat": NOW, "jti": "t1", "client_id": "web",
            "scope": "api:a:read api:b:write", "roles": ["viewer"], "amr": ["pwd"]
        })
    }

    fn parse(value: &Value) -> Result<AccessClaims, ClaimsError> {
        AccessClaims::from_object(&UniqueObject::parse(value.to_string().as_bytes()).unwrap())
    }

    fn with(name: &str, value: Value) -> Value {
        let mut claims = base();
        claims[name] = value;
        claims
    }

    fn without(name: &str) -> Value {
        let mut claims = base();
        claims.as_object_mut().unwrap().remove(name);
        claims
    }

    #[test]
    fn reads_a_complete_token() {
        let claims = parse(&base()).unwrap();
        assert_eq!(claims.sub, Subject::User("42".into()));
        assert_eq!(claims.scopes, ["api:a:read", "api:b:write"]);
        assert_eq!(claims.check(&rules(), NOW), Ok(()));
    }

    #[test]
    fn numeric_dates_must_be_integers_in_range() {
        for bad in [
            json!("1800000900"),
            Value::Null,
            json!(1.8e9),
            json!(-1),
            json!(1e300),
            json!(true),
            json!([NOW]),
            json!(MAX_NUMERIC_DATE + 1),
            json!(u64::MAX),
        ] {
            for name in ["exp", "iat", "nbf"] {
                assert_eq!(
                    parse(&with(name, bad.clone())),
                    Err(ClaimsError::Malformed(name)),
                    "{name}={bad}"
                );
            }
        }
    }

    #[test]
    fn required_claims_are_required() {
        for name in ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"] {
            assert_eq!(
                parse(&without(name)),
                Err(ClaimsError::Missing(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn subjects_are_namespaced_and_non_empty() {
        for bad in ["", "42", "user:", "admin:1", "user: 1", "user:a\nb"] {
            assert_eq!(
                parse(&with("sub", json!(bad))),
                Err(ClaimsError::Malformed("sub")),
                "{bad:?}"
            );
        }
        let client = parse(&with("sub", json!("client:svc"))).unwrap();
        assert_eq!(client.sub, Subject::Client("svc".into()));
    }

    #[test]
    fn issuer_and_audience_must_match() {
        for iss in ["https://id.example/", "HTTPS://ID.EXAMPLE", "https://evil"] {
            let claims = parse(&with("iss", json!(iss))).unwrap();
            assert_eq!(
                claims.check(&rules(), NOW),
                Err(ClaimsError::WrongIssuer),
                "{iss}"
            );
        }
        let other = parse(&with("aud", json!(["other"]))).unwrap();
        assert_eq!(other.check(&rules(), NOW), Err(ClaimsError::WrongAudience));
        assert_eq!(
            parse(&with("aud", json!([]))),
            Err(ClaimsError::Malformed("aud"))
        );
        assert_eq!(
            parse(&with("aud", json!(""))),
            Err(ClaimsError::Malformed("aud"))
        );
        let single = parse(&with("aud", json!("api"))).unwrap();
        assert_eq!(single.check(&rules(), NOW), Ok(()));
    }

    #[test]
    fn times_respect_the_leeway() {
        let claims = parse(&base()).unwrap();
        assert_eq!(claims.check(&rules(), NOW + 900 + 60), Ok(()));
        assert_eq!(
            claims.check(&rules(), NOW + 900 + 61),
            Err(ClaimsError::Expired)
        );
        assert_eq!(claims.check(&rules(), NOW - 60), Ok(()));
        assert_eq!(
            claims.check(&rules(), NOW - 61),
            Err(ClaimsError::NotYetValid)
        );
        let future_nbf = parse(&with("nbf", json!(NOW + 600))).unwrap();
        assert_eq!(
            future_nbf.check(&rules(), NOW),
            Err(ClaimsError::NotYetValid)
        );
        let long = parse(&with("exp", json!(NOW + 86_401))).unwrap();
        assert_eq!(long.check(&rules(), NOW), Err(ClaimsError::LifetimeTooLong));
    }

    #[test]
    fn list_claims_hold_only_clean_strings() {
        assert_eq!(
            parse(&with("roles", json!("admin"))),
            Err(ClaimsError::Malformed("roles"))
        );
        assert_eq!(
            parse(&with("roles", json!([1]))),
            Err(ClaimsError::Malformed("roles"))
        );
        assert_eq!(
            parse(&with("scope", json!(["a"]))),
            Err(ClaimsError::Malformed("scope"))
        );
        assert_eq!(
            parse(&with("tenant", json!(""))),
            Err(ClaimsError::Malformed("tenant"))
        );
        assert_eq!(
            parse(&with("tenant", json!("a\r\nx-evil: 1"))),
            Err(ClaimsError::Malformed("tenant"))
        );
    }
}
