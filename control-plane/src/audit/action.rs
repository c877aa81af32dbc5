//! Every audit action as a type: a misspelt action does not compile, and the names stored in the
//! audit log (and published as events) are listed in one place.

/// What an audit row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The first administrator was created (`portcullis bootstrap`).
    AdminBootstrapped,
    /// A signed checkpoint of the chain head.
    AuditCheckpoint,
    /// A chain written before keying was keyed.
    AuditRekeyed,
    /// The bundle-signing key rotated.
    BundleKeyRotated,
    /// A client was created.
    ClientCreated,
    /// A client's secret was rotated.
    ClientSecretRotated,
    /// A client was changed (scopes, grants, roles, tenant, disabled).
    ClientUpdated,
    /// A token-signing key was created.
    KeyCreated,
    /// A token-signing key was retired.
    KeyRetired,
    /// The token-signing keys rotated.
    KeyRotated,
    /// A sign-in failed.
    LoginFailed,
    /// A sign-in succeeded.
    LoginSucceeded,
    /// A browser sign-in was ended by logout, with the sessions opened through it.
    LoggedOut,
    /// TOTP enrolment was confirmed.
    MfaEnrolled,
    /// TOTP enrolment began.
    MfaEnrolmentStarted,
    /// A right password came with a missing, wrong or capped one-time code.
    MfaFailed,
    /// TOTP was removed.
    MfaRemoved,
    /// A password was changed.
    PasswordChanged,
    /// A stored policy version was made active.
    PolicyActivated,
    /// A policy version was stored and activated.
    PolicyPublished,
    /// A session was ended.
    SessionRevoked,
    /// A token was issued.
    TokenIssued,
    /// A refresh was retried within the grace window.
    TokenRefreshRetried,
    /// A refresh token was rotated.
    TokenRefreshed,
    /// A used refresh token was presented again; its family was revoked.
    TokenReuseDetected,
    /// A token was revoked.
    TokenRevoked,
    /// A user was created.
    UserCreated,
    /// A user was deleted and erased.
    UserDeleted,
    /// A user was disabled.
    UserDisabled,
    /// A user was enabled.
    UserEnabled,
    /// A user was changed.
    UserUpdated,
}

impl Action {
    /// The name stored in the audit log and published with events.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::AdminBootstrapped => "admin.bootstrapped",
            Action::AuditCheckpoint => "audit.checkpoint",
            Action::AuditRekeyed => "audit.rekeyed",
            Action::BundleKeyRotated => "bundle_key.rotated",
            Action::ClientCreated => "client.created",
            Action::ClientSecretRotated => "client.secret_rotated",
            Action::ClientUpdated => "client.updated",
            Action::KeyCreated => "key.created",
            Action::KeyRetired => "key.retired",
            Action::KeyRotated => "key.rotated",
            Action::LoginFailed => "login.failed",
            Action::LoginSucceeded => "login.succeeded",
            Action::LoggedOut => "logout.succeeded",
            Action::MfaEnrolled => "mfa.enrolled",
            Action::MfaEnrolmentStarted => "mfa.enrolment_started",
            Action::MfaFailed => "mfa.failed",
            Action::MfaRemoved => "mfa.removed",
            Action::PasswordChanged => "password.changed",
            Action::PolicyActivated => "policy.activated",
            Action::PolicyPublished => "policy.published",
            Action::SessionRevoked => "session.revoked",
            Action::TokenIssued => "token.issued",
            Action::TokenRefreshRetried => "token.refresh_retried",
            Action::TokenRefreshed => "token.refreshed",
            Action::TokenReuseDetected => "token.reuse_detected",
            Action::TokenRevoked => "token.revoked",
            Action::UserCreated => "user.created",
            Action::UserDeleted => "user.deleted",
            Action::UserDisabled => "user.disabled",
            Action::UserEnabled => "user.enabled",
            Action::UserUpdated => "user.updated",
        }
    }

    /// The action stored under `name`, if any.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// Whether rows of this action are also published on the event stream.
    pub const fn is_event(self) -> bool {
        !matches!(
            self,
            Action::AdminBootstrapped
                | Action::AuditRekeyed
                | Action::BundleKeyRotated
                | Action::KeyCreated
                | Action::KeyRetired
                | Action::TokenIssued
                | Action::TokenRefreshRetried
                | Action::TokenRefreshed
        )
    }

    /// Every action.
    pub const ALL: [Action; 31] = [
        Action::AdminBootstrapped,
        Action::AuditCheckpoint,
        Action::AuditRekeyed,
        Action::BundleKeyRotated,
        Action::ClientCreated,
        Action::ClientSecretRotated,
        Action::ClientUpdated,
        Action::KeyCreated,
        Action::KeyRetired,
        Action::KeyRotated,
        Action::LoginFailed,
        Action::LoginSucceeded,
        Action::LoggedOut,
        Action::MfaEnrolled,
        Action::MfaEnrolmentStarted,
        Action::MfaFailed,
        Action::MfaRemoved,
        Action::PasswordChanged,
        Action::PolicyActivated,
        Action::PolicyPublished,
        Action::SessionRevoked,
        Action::TokenIssued,
        Action::TokenRefreshRetried,
        Action::TokenRefreshed,
        Action::TokenReuseDetected,
        Action::TokenRevoked,
        Action::UserCreated,
        Action::UserDeleted,
        Action::UserDisabled,
        Action::UserEnabled,
        Action::UserUpdated,
    ];
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Action;

    #[test]
    fn the_events_are_the_actions_published_before_actions_were_typed() {
        let published: Vec<&str> = Action::ALL
            .iter()
            .filter(|a| a.is_event())
            .map(|a| a.as_str())
            .collect();
        assert_eq!(published.len(), 23, "{published:?}");
        for name in [
            "logout.succeeded",
            "user.deleted",
            "mfa.enrolment_started",
            "audit.checkpoint",
            "policy.activated",
        ] {
            assert!(published.contains(&name), "{name} is published");
        }
        for name in ["token.issued", "token.refreshed", "key.created"] {
            assert!(!published.contains(&name), "{name} is not published");
        }
    }

    #[test]
    fn every_action_has_its_own_name() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
    }
}
