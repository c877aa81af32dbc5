//! The filter's configuration: the JSON in Envoy's `plugin_config.configuration`.

use crate::bundle_signature::PinnedKeys;
use crate::jwk::{Jwk, JwkError};
use serde::{Deserialize, Serialize};

/// The largest clock-skew leeway an edge may be configured with. An edge accepts a token up to
/// its leeway past `exp`, so revocation entries must outlive their tokens by this much.
pub const MAX_LEEWAY_SECONDS: i64 = 300;

/// Filter configuration. Unknown fields are refused so a typo never silently weakens a setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Envoy cluster that reaches the control plane.
    pub cluster: String,
    /// `:authority` sent with bundle requests.
    #[serde(default = "defaults::authority")]
    pub authority: String,
    /// Path of the bundle endpoint.
    #[serde(default = "defaults::bundle_path")]
    pub bundle_path: String,
    /// Bearer credential the filter presents to the control plane.
    #[serde(default)]
    pub credential: String,
    /// Instead of `credential`: the environment variable that holds it, so the secret stays out
    /// of the Envoy configuration (listed in `vm_config.environment_variables.host_env_keys`).
    #[serde(default)]
    pub credential_env: Option<String>,
    /// The control plane's bundle-signing public keys, as Ed25519 JWKs (what `portcullis keys
    /// bundle-public` prints): a bundle is applied only if one of them signed it. At least one
    /// is required; pinning the active and the next key lets the control plane rotate without an
    /// edge restart. See [`crate::bundle_signature`].
    #[serde(default)]
    pub bundle_signing_keys: Vec<Jwk>,
    /// Instead of `bundle_signing_keys`: the environment variable that holds them, as the JWKS
    /// `portcullis keys bundle-public` prints (or a JSON array of JWKs). Envoy passes a variable
    /// to the filter only when `vm_config.environment_variables.host_env_keys` lists it.
    #[serde(default)]
    pub bundle_signing_keys_env: Option<String>,
    /// Minimum time between two bundle requests, in milliseconds.
    #[serde(default = "defaults::refresh_interval_ms")]
    pub refresh_interval_ms: u64,
    /// Long-poll duration asked of the control plane (`?wait=`); 0 turns long-polling off.
    #[serde(default = "defaults::long_poll_seconds")]
    pub long_poll_seconds: u64,
    /// Timeout of a bundle request beyond the long-poll duration, in milliseconds.
    #[serde(default = "defaults::request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// A bundle not confirmed by the control plane for this long is stale: requests then fail
    /// closed with 503 unless their path is in `fail_open_paths`.
    #[serde(default = "defaults::staleness_limit_seconds")]
    pub staleness_limit_seconds: u64,
    /// Paths that pass without a decision when no fresh bundle exists. See [`PathPattern`].
    #[serde(default)]
    pub fail_open_paths: Vec<String>,
    /// Paths that always pass without authentication (health checks). See [`PathPattern`].
    #[serde(default)]
    pub bypass_paths: Vec<String>,
    /// Clock skew accepted on `exp`, `nbf` and `iat`, in seconds (at most 300).
    #[serde(default = "defaults::leeway_seconds")]
    pub leeway_seconds: i64,
    /// Longest accepted token lifetime (`exp - iat`), in seconds.
    #[serde(default = "defaults::max_token_lifetime_seconds")]
    pub max_token_lifetime_seconds: i64,
    /// Longest accepted token, in bytes.
    #[serde(default = "defaults::max_token_bytes")]
    pub max_token_bytes: usize,
    /// Prefix of the identity headers: stripped from every request, then set on allowed ones.
    #[serde(default = "defaults::header_prefix")]
    pub header_prefix: String,
    /// The identity headers an allowed request carries upstream, each named by its suffix
    /// (all five by default). Every client-sent header with the prefix is stripped whatever
    /// this holds; each header listed costs Envoy a header write per allowed request.
    #[serde(default = "defaults::identity_headers")]
    pub identity_headers: Vec<IdentityHeader>,
    /// Which decisions go to filter state `wasm.portcullis_decision` for access logs.
    #[serde(default)]
    pub decision_record: DecisionRecord,
    /// What a `;` parameter in a path segment (`/items;v=2/7`) makes of the request: refused
    /// (the default) or stripped. See [`PathParameters`].
    #[serde(default)]
    pub path_parameters: PathParameters,
    /// Whether the client's `Authorization` header goes upstream with an allowed request. Off by
    /// default, as with Envoy's `jwt_authn`: upstreams get the identity headers, not a credential
    /// they could replay elsewhere. On for upstreams that verify the token themselves.
    #[serde(default)]
    pub forward_token: bool,
    /// Verified tokens remembered per worker.
    #[serde(default = "defaults::token_cache_size")]
    pub token_cache_size: usize,
    /// Decisions remembered per worker.
    #[serde(default = "defaults::decision_cache_size")]
    pub decision_cache_size: usize,
    /// An unknown `kid` triggers at most one extra bundle refresh per this many seconds.
    #[serde(default = "defaults::unknown_kid_refresh_seconds")]
    pub unknown_kid_refresh_seconds: u64,
    /// Evaluate only the policies whose heads may match a request (see `authz::slice`). Turning
    /// it off evaluates every policy; decisions are the same either way, so this exists for
    /// benchmarks and as an escape hatch.
    #[serde(default = "defaults::policy_slicing")]
    pub policy_slicing: bool,
}

mod defaults {
    pub fn authority() -> String {
        "portcullis-control-plane".into()
    }
    pub fn bundle_path() -> String {
        "/plugin/v1/bundle".into()
    }
    pub fn refresh_interval_ms() -> u64 {
        1_000
    }
    pub fn long_poll_seconds() -> u64 {
        20
    }
    pub fn request_timeout_ms() -> u64 {
        5_000
    }
    pub fn staleness_limit_seconds() -> u64 {
        3_600
    }
    pub fn leeway_seconds() -> i64 {
        60
    }
    pub fn max_token_lifetime_seconds() -> i64 {
        86_400
    }
    pub fn max_token_bytes() -> usize {
        crate::jws::DEFAULT_MAX_TOKEN_BYTES
    }
    pub fn header_prefix() -> String {
        "x-portcullis-".into()
    }
    pub fn identity_headers() -> Vec<super::IdentityHeader> {
        super::IdentityHeader::ALL.to_vec()
    }
    pub fn token_cache_size() -> usize {
        4_096
    }
    pub fn decision_cache_size() -> usize {
        8_192
    }
    pub fn unknown_kid_refresh_seconds() -> u64 {
        10
    }
    pub fn policy_slicing() -> bool {
        true
    }
}

/// An identity header, by the suffix it takes after `header_prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityHeader {
    /// `sub`: the token's subject (`user:<id>` or `client:<id>`).
    Sub,
    /// `client-id`: the OAuth client the token was issued to.
    ClientId,
    /// `scopes`: the token's scopes, space-separated.
    Scopes,
    /// `roles`: the subject's roles, comma-separated.
    Roles,
    /// `tenant`: the subject's tenant; absent when the token has none.
    Tenant,
}

impl IdentityHeader {
    /// Every identity header, in the order the filter adds them.
    pub const ALL: [IdentityHeader; 5] = [
        IdentityHeader::Sub,
        IdentityHeader::ClientId,
        IdentityHeader::Scopes,
        IdentityHeader::Roles,
        IdentityHeader::Tenant,
    ];

    /// The header name after the prefix.
    pub fn suffix(self) -> &'static str {
        match self {
            IdentityHeader::Sub => "sub",
            IdentityHeader::ClientId => "client-id",
            IdentityHeader::Scopes => "scopes",
            IdentityHeader::Roles => "roles",
            IdentityHeader::Tenant => "tenant",
        }
    }
}

/// Which decisions are written to filter state for access logs. Every denial's reason is
/// counted in metrics whatever this says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionRecord {
    /// Every decision (the default).
    #[default]
    All,
    /// Denials and fail-open passes only: allowed requests skip a hostcall, and access logs can
    /// still print their identity from the request headers `identity_headers` lists.
    Denied,
    /// None (`"none"`).
    #[serde(rename = "none")]
    Off,
}

impl DecisionRecord {
    /// Whether an allowed request's decision is recorded.
    pub fn allowed(self) -> bool {
        self == DecisionRecord::All
    }

    /// Whether a denial (or a fail-open pass) is recorded.
    pub fn denied(self) -> bool {
        self != DecisionRecord::Off
    }
}

/// What the filter does with a path segment that carries a `;` parameter (`/items;v=2/7`).
/// Servlet containers such as Tomcat and Spring drop such parameters before routing, so
/// `/api/items/..;/admin` is `/api/admin` to them while a plain dot-segment rule sees an ordinary
/// segment `..;` under `/api/items`. An encoded `%3B` is refused either way (see [`crate::path`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathParameters {
    /// Refuse the request with 400 `invalid_request` (the default).
    #[default]
    Reject,
    /// Remove every parameter from each segment before dot segments are resolved and Cedar
    /// judges the path; the upstream is sent that stripped path and never sees the parameters.
    /// For clients that add parameters (`;jsessionid=…`) the upstream does not need.
    Strip,
}

/// An invalid configuration value, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The JSON does not parse or has unknown fields.
    #[error("invalid plugin configuration: {0}")]
    Json(String),
    /// A pinned bundle-signing key is not a usable Ed25519 public key.
    #[error("invalid plugin configuration: `bundle_signing_keys`: {0}")]
    Pin(JwkError),
    /// A field holds a value outside its allowed range.
    #[error("invalid plugin configuration: `{field}` {problem}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
}

impl PluginConfig {
    /// Parses and validates the configuration bytes (no environment: `*_env` fields fail).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::from_json_with_env(bytes, |_| None)
    }

    /// Parses the configuration bytes, fills `credential` and `bundle_signing_keys` from the
    /// variables `credential_env` and `bundle_signing_keys_env` name (read through `env`), and
    /// validates the result.
    pub fn from_json_with_env(
        bytes: &[u8],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config: PluginConfig =
            serde_json::from_slice(bytes).map_err(|e| ConfigError::Json(e.to_string()))?;
        config.read_env(env)?;
        config.validate()?;
        Ok(config)
    }

    fn read_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let invalid = |field, problem| Err(ConfigError::Invalid { field, problem });
        let unset = "names a variable that is not set (list it in vm_config.environment_variables.host_env_keys)";
        let value = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if let Some(name) = &self.credential_env {
            if !self.credential.is_empty() {
                return invalid("credential_env", "and `credential` exclude each other");
            }
            match value(name) {
                Some(credential) => self.credential = credential.trim().to_owned(),
                None => return invalid("credential_env", unset),
            }
        }
        if let Some(name) = &self.bundle_signing_keys_env {
            if !self.bundle_signing_keys.is_empty() {
                return invalid(
                    "bundle_signing_keys_env",
                    "and `bundle_signing_keys` exclude each other",
                );
            }
            let Some(text) = value(name) else {
                return invalid("bundle_signing_keys_env", unset);
            };
            let keys = serde_json::from_str::<crate::jwk::Jwks>(&text)
                .map(|jwks| jwks.keys)
                .or_else(|_| serde_json::from_str::<Vec<Jwk>>(&text));
            match keys {
                Ok(keys) => self.bundle_signing_keys = keys,
                Err(_) => {
                    return invalid(
                        "bundle_signing_keys_env",
                        "names a variable that holds no JWKS or JSON array of JWKs",
                    )
                }
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, problem| Err(ConfigError::Invalid { field, problem });
        if self.cluster.is_empty() {
            return invalid("cluster", "must not be empty");
        }
        if self.credential.is_empty() {
            return invalid("credential", "must not be empty");
        }
        if self.bundle_signing_keys.is_empty() {
            return invalid(
                "bundle_signing_keys",
                "must pin at least one key (`portcullis keys bundle-public` prints them)",
            );
        }
        self.pinned_keys()?;
        if !self.bundle_path.starts_with('/') {
            return invalid("bundle_path", "must start with `/`");
        }
        if self.refresh_interval_ms < 100 {
            return invalid("refresh_interval_ms", "must be at least 100");
        }
        if self.staleness_limit_seconds == 0 {
            return invalid("staleness_limit_seconds", "must be positive");
        }
        if !(0..=MAX_LEEWAY_SECONDS).contains(&self.leeway_seconds) {
            return invalid("leeway_seconds", "must be between 0 and 300");
        }
        if self.max_token_lifetime_seconds <= 0 {
            return invalid("max_token_lifetime_seconds", "must be positive");
        }
        if !(256..=64 * 1024).contains(&self.max_token_bytes) {
            return invalid("max_token_bytes", "must be between 256 and 65536");
        }
        let prefix_ok = self.header_prefix.len() >= 3
            && self.header_prefix.ends_with('-')
            && self
                .header_prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-');
        if !prefix_ok {
            return invalid(
                "header_prefix",
                "must be lowercase letters and `-`, ending in `-`",
            );
        }
        let listed = &self.identity_headers;
        let repeated =
            |(i, header): (usize, &IdentityHeader)| listed.iter().take(i).any(|h| h == header);
        if listed.iter().enumerate().any(repeated) {
            return invalid("identity_headers", "entries must be distinct");
        }
        for (field, paths) in [
            ("bypass_paths", &self.bypass_paths),
            ("fail_open_paths", &self.fail_open_paths),
        ] {
            if paths.iter().any(|p| PathPattern::parse(p).is_none()) {
                return invalid(field, "entries must start with `/`");
            }
        }
        Ok(())
    }

    /// The pinned bundle-signing keys, ready to verify.
    pub fn pinned_keys(&self) -> Result<PinnedKeys, ConfigError> {
        PinnedKeys::from_jwks(&self.bundle_signing_keys).map_err(ConfigError::Pin)
    }

    /// Whether `path` (normalised) is a bypass route.
    pub fn is_bypass(&self, path: &str) -> bool {
        matches_any(&self.bypass_paths, path)
    }

    /// Whether `path` (normalised) may pass when no fresh bundle exists.
    pub fn is_fail_open(&self, path: &str) -> bool {
        matches_any(&self.fail_open_paths, path)
    }
}

/// A path rule: `/healthz` matches exactly that path; `/public/*` matches `/public/` and
/// everything below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathPattern<'a> {
    /// Exact match.
    Exact(&'a str),
    /// Prefix match (the pattern without its `*`).
    Prefix(&'a str),
}

impl<'a> PathPattern<'a> {
    /// Parses a pattern; `None` when it does not start with `/`.
    pub fn parse(pattern: &'a str) -> Option<Self> {
        if !pattern.starts_with('/') {
            return None;
        }
        Some(match pattern.strip_suffix('*') {
            Some(prefix) => PathPattern::Prefix(prefix),
            None => PathPattern::Exact(pattern),
        })
    }

    /// Whether `path` matches.
    pub fn matches(self, path: &str) -> bool {
        match self {
            PathPattern::Exact(exact) => path == exact,
            PathPattern::Prefix(prefix) => path.starts_with(prefix),
        }
    }
}

fn matches_any(patterns: &[String], path: &str) -> bool {
    patterns
        .iter()
        .filter_map(|p| PathPattern::parse(p))
        .any(|p| p.matches(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `json` with a bundle-signing key pinned (unless it pins its own or is no object).
    fn parse(json: &str) -> Result<PluginConfig, ConfigError> {
        let mut value: serde_json::Value = match serde_json::from_str(json) {
            Ok(value) => value,
            Err(_) => return PluginConfig::from_json(json.as_bytes()),
        };
        if let Some(object) = value.as_object_mut() {
            let pin = crate::issue::SigningKey::ed25519("b-1", [5; 32]).public_jwk();
            object
                .entry("bundle_signing_keys")
                .or_insert_with(|| serde_json::json!([pin]));
        }
        PluginConfig::from_json(value.to_string().as_bytes())
    }

    #[test]
    fn minimal_config_gets_safe_defaults() {
        let config = parse(r#"{"cluster":"cp","credential":"s"}"#).unwrap();
        assert_eq!(config.leeway_seconds, 60);
        assert_eq!(config.header_prefix, "x-portcullis-");
        assert!(config.fail_open_paths.is_empty());
        assert_eq!(config.identity_headers, IdentityHeader::ALL);
        assert_eq!(config.decision_record, DecisionRecord::All);
        assert_eq!(config.path_parameters, PathParameters::Reject);
        assert!(
            !config.forward_token,
            "the token must not go upstream by default"
        );
    }

    #[test]
    fn a_configuration_without_a_pinned_bundle_key_is_refused() {
        let error = PluginConfig::from_json(br#"{"cluster":"cp","credential":"s"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`bundle_signing_keys` must pin at least one key"),
            "an edge that would take any bundle must not start: {error}"
        );
        let pinned = parse(r#"{"cluster":"cp","credential":"s"}"#).unwrap();
        assert_eq!(pinned.pinned_keys().map(|k| k.len()), Ok(1));
    }

    #[test]
    fn the_credential_and_the_pins_can_come_from_the_environment() {
        let pin = crate::issue::SigningKey::ed25519("b-1", [5; 32]).public_jwk();
        let jwks = serde_json::json!({ "keys": [pin] }).to_string();
        let array = serde_json::json!([pin]).to_string();
        let env = |pins: String| {
            move |name: &str| match name {
                "CREDENTIAL" => Some("from-the-environment".to_owned()),
                "PINS" => Some(pins.clone()),
                "EMPTY" => Some(" ".to_owned()),
                _ => None,
            }
        };
        let from_env =
            br#"{"cluster":"cp","credential_env":"CREDENTIAL","bundle_signing_keys_env":"PINS"}"#;
        for pins in [jwks.clone(), array] {
            let config = PluginConfig::from_json_with_env(from_env, env(pins)).unwrap();
            assert_eq!(config.credential, "from-the-environment");
            assert_eq!(
                config.pinned_keys().map(|k| k.len()),
                Ok(1),
                "the variable's keys are pinned"
            );
        }
        let cases = [
            (
                r#"{"cluster":"cp","credential_env":"UNSET","bundle_signing_keys_env":"PINS"}"#,
                "`credential_env` names a variable that is not set",
            ),
            (
                r#"{"cluster":"cp","credential_env":"EMPTY","bundle_signing_keys_env":"PINS"}"#,
                "`credential_env` names a variable that is not set",
            ),
            (
                r#"{"cluster":"cp","credential":"s","credential_env":"CREDENTIAL","bundle_signing_keys_env":"PINS"}"#,
                "`credential_env` and `credential` exclude each other",
            ),
            (
                r#"{"cluster":"cp","credential":"s","bundle_signing_keys_env":"CREDENTIAL"}"#,
                "`bundle_signing_keys_env` names a variable that holds no JWKS",
            ),
            (
                r#"{"cluster":"cp","credential":"s","bundle_signing_keys_env":"UNSET"}"#,
                "`bundle_signing_keys_env` names a variable that is not set",
            ),
        ];
        for (json, expected) in cases {
            let error = PluginConfig::from_json_with_env(json.as_bytes(), env(jwks.clone()))
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{json}: {error}");
        }
        let both = r#"{"cluster":"cp","credential":"s","bundle_signing_keys_env":"PINS"}"#;
        let error = parse(both).unwrap_err().to_string();
        assert!(
            error
                .contains("`bundle_signing_keys_env` and `bundle_signing_keys` exclude each other"),
            "{error}"
        );
    }

    #[test]
    fn the_token_can_be_forwarded() {
        let config = parse(r#"{"cluster":"cp","credential":"s","forward_token":true}"#).unwrap();
        assert!(config.forward_token);
    }

    #[test]
    fn path_parameters_can_be_stripped() {
        let config =
            parse(r#"{"cluster":"cp","credential":"s","path_parameters":"strip"}"#).unwrap();
        assert_eq!(config.path_parameters, PathParameters::Strip);
        let reject = r#"{"cluster":"cp","credential":"s","path_parameters":"reject"}"#;
        let parsed = parse(reject).unwrap();
        assert_eq!(parsed.path_parameters, PathParameters::Reject);
    }

    #[test]
    fn identity_headers_and_the_decision_record_can_be_narrowed() {
        let config = parse(r#"{"cluster":"cp","credential":"s","identity_headers":["tenant","sub"],"decision_record":"denied"}"#,
        )
        .unwrap();
        assert_eq!(
            config.identity_headers,
            [IdentityHeader::Tenant, IdentityHeader::Sub]
        );
        assert!(!config.decision_record.allowed() && config.decision_record.denied());
        let off = DecisionRecord::Off;
        assert!(!off.allowed() && !off.denied());
        let parsed = parse(r#"{"cluster":"cp","credential":"s","decision_record":"none"}"#);
        assert_eq!(parsed.unwrap().decision_record, off);
        assert!(DecisionRecord::All.allowed() && DecisionRecord::All.denied());
        let suffixes: Vec<&str> = IdentityHeader::ALL.iter().map(|h| h.suffix()).collect();
        assert_eq!(suffixes, ["sub", "client-id", "scopes", "roles", "tenant"]);
    }

    #[test]
    fn rejects_unknown_fields_and_bad_values() {
        let cases = [
            (
                r#"{"cluster":"cp","credential":"s","fail_open":true}"#,
                "unknown field `fail_open`",
            ),
            (
                r#"{"cluster":"","credential":"s"}"#,
                "`cluster` must not be empty",
            ),
            (r#"{"cluster":"cp"}"#, "`credential` must not be empty"),
            (
                r#"{"cluster":"cp","credential":"s","leeway_seconds":3600}"#,
                "`leeway_seconds`",
            ),
            (
                r#"{"cluster":"cp","credential":"s","header_prefix":"X-"}"#,
                "`header_prefix`",
            ),
            (
                r#"{"cluster":"cp","credential":"s","bypass_paths":["healthz"]}"#,
                "`bypass_paths`",
            ),
            (
                r#"{"cluster":"cp","credential":"s","identity_headers":["sub","sub"]}"#,
                "`identity_headers` entries must be distinct",
            ),
            (
                r#"{"cluster":"cp","credential":"s","identity_headers":["email"]}"#,
                "unknown variant `email`",
            ),
            (
                r#"{"cluster":"cp","credential":"s","decision_record":"some"}"#,
                "unknown variant `some`",
            ),
            (
                r#"{"cluster":"cp","credential":"s","path_parameters":"keep"}"#,
                "unknown variant `keep`, expected `reject` or `strip`",
            ),
            (
                r#"{"cluster":"cp","credential":"s","forward_token":"yes"}"#,
                "invalid type: string \"yes\", expected a boolean",
            ),
            (
                r#"{"cluster":"cp","credential":"s","bundle_signing_keys":[]}"#,
                "`bundle_signing_keys` must pin at least one key",
            ),
            (
                r#"{"cluster":"cp","credential":"s","bundle_signing_keys":[{"kty":"OKP","crv":"Ed25519","kid":"b","x":"AAAA"}]}"#,
                "`bundle_signing_keys`: key `b` is malformed",
            ),
            (
                r#"{"cluster":"cp","credential":"s","bundle_signing_keys":[{"kty":"oct","kid":"h"}]}"#,
                "`bundle_signing_keys`: key `h` has an unsupported type",
            ),
            ("not json", "invalid plugin configuration"),
        ];
        for (json, expected) in cases {
            let err = parse(json).unwrap_err().to_string();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn path_patterns_are_exact_or_prefix() {
        let config =
            parse(r#"{"cluster":"cp","credential":"s","bypass_paths":["/healthz","/public/*"]}"#)
                .unwrap();
        assert!(config.is_bypass("/healthz"));
        assert!(!config.is_bypass("/healthz/x"));
        assert!(!config.is_bypass("/healthzz"));
        assert!(config.is_bypass("/public/a/b"));
        assert!(!config.is_bypass("/publicx"));
    }
}
