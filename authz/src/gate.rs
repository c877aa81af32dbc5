//! The whole per-request pipeline with its caches, host-independent so it is tested natively and
//! run unchanged inside the filter.

use crate::bearer::{self, BearerError};
use crate::bundle::Snapshot;
use crate::cache::FifoCache;
use crate::claims::{AccessClaims, ClaimRules};
use crate::config::{PathParameters, PluginConfig};
use crate::jws::{self, TokenError};
use crate::path::{self, PathError};
use crate::policy::{Decision, HttpRequest, PreparedPrincipal};
use crate::revocation::Revoked;
use std::fmt::Write as _;
use std::sync::Arc;

/// What the host tells the gate about a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestInput<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path` as received (with query).
    pub path: &'a str,
    /// `:authority`.
    pub authority: &'a str,
    /// Every `Authorization` header value.
    pub authorization: &'a [&'a [u8]],
    /// Client address without port, if known.
    pub source_ip: Option<&'a str>,
    /// Seconds since the epoch.
    pub now: i64,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// The path is malformed or ambiguous.
    BadPath(PathError),
    /// No usable bearer token.
    Bearer(BearerError),
    /// The token failed verification.
    Token(TokenError),
    /// The token is revoked.
    Revoked(Revoked),
    /// Cedar denied.
    Forbidden,
    /// Cedar could not evaluate (bad request shape, policy error): denied.
    PolicyError,
}

impl DenyReason {
    /// HTTP status.
    pub fn status(&self) -> u32 {
        match self {
            DenyReason::BadPath(_)
            | DenyReason::Bearer(BearerError::MultipleHeaders | BearerError::QueryToken) => 400,
            DenyReason::Bearer(_) | DenyReason::Token(_) | DenyReason::Revoked(_) => 401,
            DenyReason::Forbidden | DenyReason::PolicyError => 403,
        }
    }

    /// The RFC 6750 `error` code, if any.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            DenyReason::BadPath(_) | DenyReason::Bearer(BearerError::Missing) => None,
            DenyReason::Bearer(BearerError::MultipleHeaders | BearerError::QueryToken) => {
                Some("invalid_request")
            }
            DenyReason::Bearer(BearerError::Malformed)
            | DenyReason::Token(_)
            | DenyReason::Revoked(_) => Some("invalid_token"),
            DenyReason::Forbidden | DenyReason::PolicyError => Some("insufficient_scope"),
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3), if the response carries one.
    pub fn challenge(&self) -> Option<String> {
        if matches!(self, DenyReason::BadPath(_)) {
            return None;
        }
        Some(match self.error_code() {
            Some(code) => format!("Bearer realm=\"portcullis\", error=\"{code}\""),
            None => "Bearer realm=\"portcullis\"".to_owned(),
        })
    }

    /// Short stable name for metrics and logs.
    pub fn metric_name(&self) -> &'static str {
        match self {
            DenyReason::BadPath(_) => "bad_path",
            DenyReason::Bearer(BearerError::Missing) => "missing_token",
            DenyReason::Bearer(BearerError::Malformed) => "malformed_header",
            DenyReason::Bearer(BearerError::MultipleHeaders | BearerError::QueryToken) => {
                "invalid_request"
            }
            DenyReason::Token(_) => "invalid_token",
            DenyReason::Revoked(_) => "revoked",
            DenyReason::Forbidden => "forbidden",
            DenyReason::PolicyError => "policy_error",
        }
    }

    /// Detail for logs (never secrets).
    pub fn detail(&self) -> String {
        match self {
            DenyReason::BadPath(e) => e.to_string(),
            DenyReason::Bearer(e) => e.to_string(),
            DenyReason::Token(e) => format!("{} ({})", e, e.reason()),
            DenyReason::Revoked(r) => format!("{r:?} revoked"),
            DenyReason::Forbidden => "no permit matched or a forbid matched".to_owned(),
            DenyReason::PolicyError => "policy evaluation error".to_owned(),
        }
    }
}

/// An allowed request.
#[derive(Debug, Clone)]
pub struct Allowed {
    /// The verified claims.
    pub claims: Arc<AccessClaims>,
    /// The decision (policy ids that allowed).
    pub decision: Arc<Decision>,
    /// The normalised request target, when it differs from the received `:path`.
    pub rewritten_path: Option<String>,
    /// Whether the token came from the verified-token cache.
    pub token_cache_hit: bool,
    /// Whether the decision came from the decision cache.
    pub decision_cache_hit: bool,
}

/// A refused request.
#[derive(Debug, Clone)]
pub struct Denied {
    /// Why.
    pub reason: DenyReason,
    /// Deciding policies or errors, when Cedar decided.
    pub decision: Option<Arc<Decision>>,
}

/// What the gate decided.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The request may go upstream.
    Allow(Allowed),
    /// The request gets [`DenyReason::status`].
    Deny(Denied),
}

/// One worker's decision state: the current snapshot and the caches that belong to it.
#[derive(Debug)]
pub struct Gate {
    snapshot: Arc<Snapshot>,
    rules: ClaimRules,
    max_token_bytes: usize,
    tokens: FifoCache<Box<str>, Arc<Verified>>,
    decisions: FifoCache<String, Arc<Decision>>,
    policy_slicing: bool,
    /// Numbers verified tokens, so a decision is keyed by a number instead of the whole token.
    next_serial: u64,
}

impl Gate {
    /// A gate deciding with `snapshot` under `config`'s limits.
    pub fn new(snapshot: Arc<Snapshot>, config: &PluginConfig) -> Self {
        Gate {
            rules: snapshot.claim_rules(config.leeway_seconds, config.max_token_lifetime_seconds),
            snapshot,
            max_token_bytes: config.max_token_bytes,
            tokens: FifoCache::new(config.token_cache_size),
            decisions: FifoCache::new(config.decision_cache_size),
            policy_slicing: config.policy_slicing,
            next_serial: 0,
        }
    }

    /// The snapshot in force.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    /// Normalises the path (see [`path::normalize_with`]) before anything else is decided.
    pub fn normalize_path(
        raw: &str,
        parameters: PathParameters,
    ) -> Result<path::NormalizedPath, DenyReason> {
        path::normalize_with(raw, parameters).map_err(DenyReason::BadPath)
    }

    /// Decides `input`; `target` is the normalised path from [`Gate::normalize_path`].
    pub fn decide(&mut self, input: &RequestInput<'_>, target: &path::NormalizedPath) -> Outcome {
        let deny = |reason| {
            Outcome::Deny(Denied {
                reason,
                decision: None,
            })
        };
        let token = match bearer::extract(input.authorization, target.query.as_deref()) {
            Ok(token) => token,
            Err(e) => return deny(DenyReason::Bearer(e)),
        };
        let (verified, token_cache_hit) = match self.verify(token, input.now) {
            Ok(found) => found,
            Err(e) => return deny(DenyReason::Token(e)),
        };
        let claims = Arc::clone(&verified.claims);
        if let Err(revoked) = self.snapshot.revocations.check(&claims) {
            return deny(DenyReason::Revoked(revoked));
        }
        let host = host_of(input.authority);
        let request = HttpRequest {
            method: input.method,
            path: &target.path,
            host: &host,
            source_ip: input.source_ip,
            now: input.now,
        };
        let (decision, decision_cache_hit) = self.evaluate(&verified, &request);
        if !decision.allowed {
            let reason = if decision.errors.is_empty() {
                DenyReason::Forbidden
            } else {
                DenyReason::PolicyError
            };
            return Outcome::Deny(Denied {
                reason,
                decision: Some(decision),
            });
        }
        let rewritten_path =
            (!target.is_request_target(input.path)).then(|| target.request_target());
        Outcome::Allow(Allowed {
            claims,
            decision,
            rewritten_path,
            token_cache_hit,
            decision_cache_hit,
        })
    }

    fn verify(&mut self, token: &str, now: i64) -> Result<(Arc<Verified>, bool), TokenError> {
        if let Some(verified) = self.tokens.get(token) {
            verified.claims.check_times(&self.rules, now)?;
            return Ok((Arc::clone(verified), true));
        }
        let claims = Arc::new(jws::verify(
            token,
            &self.snapshot.keys,
            &self.rules,
            now,
            self.max_token_bytes,
        )?);
        let principal = self.snapshot.engine.prepare(&claims);
        self.next_serial += 1;
        let verified = Arc::new(Verified {
            claims,
            principal,
            serial: self.next_serial,
        });
        self.tokens.insert(token.into(), Arc::clone(&verified));
        Ok((verified, false))
    }

    fn evaluate(
        &mut self,
        verified: &Verified,
        request: &HttpRequest<'_>,
    ) -> (Arc<Decision>, bool) {
        let engine = &self.snapshot.engine;
        let decide = |request: &HttpRequest<'_>| match &verified.principal {
            Ok(principal) => engine.decide_prepared(principal, request, self.policy_slicing),
            Err(error) => Decision {
                allowed: false,
                policy_ids: Vec::new(),
                errors: vec![error.clone()],
                shadow_allowed: None,
            },
        };
        if engine.reads_now() || !self.decisions.enabled() {
            return (Arc::new(decide(request)), false);
        }
        let source = if engine.reads_source_ip() {
            request.source_ip.unwrap_or("-")
        } else {
            ""
        };
        let mut key = String::with_capacity(
            request.method.len() + request.host.len() + request.path.len() + source.len() + 24,
        );
        for part in [request.method, request.host, request.path, source] {
            key.push_str(part);
            key.push('\n');
        }
        // `write!` on the key itself: no intermediate string for the serial.
        let _ = write!(key, "{}", verified.serial);
        if let Some(decision) = self.decisions.get(&key) {
            return (Arc::clone(decision), true);
        }
        let decision = Arc::new(decide(request));
        self.decisions.insert(key, Arc::clone(&decision));
        (decision, false)
    }
}

/// A verified token as the gate caches it: the claims and the token's half of every Cedar
/// request, both valid for the snapshot the gate was built with.
#[derive(Debug)]
struct Verified {
    claims: Arc<AccessClaims>,
    principal: Result<PreparedPrincipal, String>,
    /// Unique among the tokens this gate verified (a gate lives as long as its snapshot).
    serial: u64,
}

/// The host part of an authority, lower-cased, without port.
pub fn host_of(authority: &str) -> String {
    let host = if authority.starts_with('[') {
        authority
            .split_once(']')
            .map(|(h, _)| format!("{h}]"))
            .unwrap_or_else(|| authority.to_owned())
    } else {
        authority.split(':').next().unwrap_or_default().to_owned()
    };
    host.to_ascii_lowercase()
}
