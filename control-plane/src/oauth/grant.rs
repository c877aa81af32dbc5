//! The OAuth 2.0 grant types a client may be allowed (RFC 6749 §4): a type, so that a misspelt
//! grant does not compile and the token endpoint's dispatch is exhaustive.

use serde::{Deserialize, Serialize};

/// A grant type, named on the wire as RFC 6749 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// `authorization_code` (§4.1) with PKCE (RFC 7636): a person signs in through a browser.
    AuthorizationCode,
    /// `client_credentials` (§4.4): a client acting for itself.
    ClientCredentials,
    /// `password` (§4.3), with a TOTP code when the user has one.
    Password,
    /// `refresh_token` (§6).
    RefreshToken,
}

impl GrantType {
    /// Every grant type, in the order metadata lists them.
    pub const ALL: [GrantType; 4] = [
        GrantType::AuthorizationCode,
        GrantType::ClientCredentials,
        GrantType::Password,
        GrantType::RefreshToken,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::Password => "password",
            GrantType::RefreshToken => "refresh_token",
        }
    }

    /// The grant type named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|grant| grant.as_str() == name)
    }
}

impl std::fmt::Display for GrantType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::GrantType;

    #[test]
    fn every_grant_type_reads_back_from_its_wire_name() {
        for grant in GrantType::ALL {
            assert_eq!(GrantType::from_name(grant.as_str()), Some(grant));
            let json = serde_json::to_value(grant).unwrap();
            assert_eq!(json, grant.as_str(), "serde and as_str agree");
        }
        assert_eq!(GrantType::from_name("implicit"), None);
        assert_eq!(GrantType::from_name("Password"), None);
    }
}
