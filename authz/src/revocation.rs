//! Revoked tokens, sessions and subjects, as carried in the bundle.

use crate::claims::AccessClaims;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// One bundle entry. Exactly one of `jti`, `sid` or `sub` (with `before`) is set; `exp` is when
/// the last token it covers expires. The control plane keeps the entry for
/// [`MAX_LEEWAY_SECONDS`](crate::config::MAX_LEEWAY_SECONDS) longer: an edge accepts a token up to
/// its leeway past `exp`, and a revoked token must not come back to life in that window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationEntry {
    /// A single revoked token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// A revoked session: every token carrying this `sid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// A subject (`user:<id>` / `client:<id>`) whose tokens issued before `before` are revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// With `sub`: tokens with `iat` earlier than this are revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// Expiry of the entry, seconds since the epoch.
    pub exp: i64,
}

/// A bundle entry that is not exactly one of the three shapes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("revocation entry {index} must set exactly one of `jti`, `sid` or `sub` with `before`")]
pub struct RevocationError {
    index: usize,
}

/// Why a token is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// Its `jti` is on the list.
    Token,
    /// Its session is revoked.
    Session,
    /// Its subject was revoked after it was issued.
    Subject,
}

/// Lookup sets built from the entries.
#[derive(Debug, Clone, Default)]
pub struct Revocations {
    jti: HashSet<String>,
    sid: HashSet<String>,
    sub_before: HashMap<String, i64>,
}

impl Revocations {
    /// Indexes `entries`, refusing malformed ones.
    pub fn from_entries(entries: &[RevocationEntry]) -> Result<Self, RevocationError> {
        let mut revocations = Revocations::default();
        for (index, entry) in entries.iter().enumerate() {
            match (&entry.jti, &entry.sid, &entry.sub, entry.before) {
                (Some(jti), None, None, None) => {
                    revocations.jti.insert(jti.clone());
                }
                (None, Some(sid), None, None) => {
                    revocations.sid.insert(sid.clone());
                }
                (None, None, Some(sub), Some(before)) => {
                    let slot = revocations.sub_before.entry(sub.clone()).or_insert(before);
                    *slot = (*slot).max(before);
                }
                _ => return Err(RevocationError { index }),
            }
        }
        Ok(revocations)
    }

    /// Whether `claims` are revoked.
    pub fn check(&self, claims: &AccessClaims) -> Result<(), Revoked> {
        if self.jti.contains(&claims.jti) {
            return Err(Revoked::Token);
        }
        if claims
            .sid
            .as_ref()
            .is_some_and(|sid| self.sid.contains(sid))
        {
            return Err(Revoked::Session);
        }
        if self
            .sub_before
            .get(&claims.sub.to_string())
            .is_some_and(|before| claims.iat < *before)
        {
            return Err(Revoked::Subject);
        }
        Ok(())
    }

    /// Number of indexed entries.
    pub fn len(&self) -> usize {
        self.jti.len() + self.sid.len() + self.sub_before.len()
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Subject;

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "i".into(),
            sub: Subject::User("42".into()),
            aud: vec!["a".into()],
            exp: 2_000,
            nbf: None,
            iat: 1_000,
            jti: "t1".into(),
            client_id: "web".into(),
            sid: Some("s1".into()),
            scopes: vec![],
            roles: vec![],
            tenant: None,
            amr: vec![],
        }
    }

    fn entry(
        jti: Option<&str>,
        sid: Option<&str>,
        sub: Option<&str>,
        before: Option<i64>,
    ) -> RevocationEntry {
        RevocationEntry {
            jti: jti.map(Into::into),
            sid: sid.map(Into::into),
            sub: sub.map(Into::into),
            before,
            exp: 2_000,
        }
    }

    #[test]
    fn each_kind_revokes_its_tokens() {
        let cases = [
            (entry(Some("t1"), None, None, None), Err(Revoked::Token)),
            (entry(None, Some("s1"), None, None), Err(Revoked::Session)),
            (
                entry(None, None, Some("user:42"), Some(1_001)),
                Err(Revoked::Subject),
            ),
            (entry(None, None, Some("user:42"), Some(1_000)), Ok(())),
            (entry(None, None, Some("client:42"), Some(5_000)), Ok(())),
            (entry(Some("t2"), None, None, None), Ok(())),
        ];
        for (entry, expected) in cases {
            let revocations = Revocations::from_entries(std::slice::from_ref(&entry)).unwrap();
            assert_eq!(revocations.check(&claims()), expected, "{entry:?}");
        }
    }

    #[test]
    fn malformed_entries_are_refused() {
        for bad in [
            entry(None, None, None, None),
            entry(Some("t"), Some("s"), None, None),
            entry(None, None, Some("user:1"), None),
            entry(Some("t"), None, None, Some(1)),
        ] {
            assert_eq!(
                Revocations::from_entries(&[bad]).unwrap_err(),
                RevocationError { index: 0 }
            );
        }
    }
}
