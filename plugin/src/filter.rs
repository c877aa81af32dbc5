//! The per-request filter: strip spoofed identity, decide, then forward or answer.

use crate::host;
use crate::root::Worker;
use portcullis_authz::config::IdentityHeader;
use portcullis_authz::gate::{Allowed, DenyReason, Gate, Outcome, RequestInput};
use portcullis_authz::jws::TokenError;
use portcullis_authz::policy::Decision;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, Bytes, LogLevel};
use std::cell::RefCell;
use std::rc::Rc;

/// Name of the filter-state entry (`wasm.portcullis_decision`) that access logs can print.
pub const DECISION_PROPERTY: &str = "portcullis_decision";

/// One request's filter context.
#[derive(Debug)]
pub struct PortcullisFilter {
    worker: Rc<RefCell<Worker>>,
}

impl PortcullisFilter {
    /// A filter bound to its worker's state.
    pub fn new(worker: Rc<RefCell<Worker>>) -> Self {
        PortcullisFilter { worker }
    }

    fn handle(&mut self) -> Action {
        let now_ms = host::now_ms();
        let mut worker = self.worker.borrow_mut();
        let headers = host::request_headers();
        strip_identity_headers(&headers, &worker.config.header_prefix);

        let pseudo = |name: &str| header_str(&headers, name).unwrap_or_default();
        let (method, raw_path, authority) =
            (pseudo(":method"), pseudo(":path"), pseudo(":authority"));
        let target = match Gate::normalize_path(raw_path, worker.config.path_parameters) {
            Ok(target) => target,
            Err(reason) => return deny(&mut worker, &reason, None, ""),
        };
        if worker.config.is_bypass(&target.path) {
            worker.metrics.count("bypassed");
            rewrite_path(raw_path, &target.request_target());
            return Action::Continue;
        }
        if worker.is_stale(now_ms) {
            if worker.config.is_fail_open(&target.path) {
                worker.metrics.count("fail_open");
                if worker.config.decision_record.denied() {
                    host::set_property(DECISION_PROPERTY, b"fail_open");
                }
                // A route that is normally judged sends the same upstream either way.
                withhold_token(worker.config.forward_token);
                rewrite_path(raw_path, &target.request_target());
                return Action::Continue;
            }
            worker.metrics.count("denied.unavailable");
            if worker.config.decision_record.denied() {
                host::set_property(DECISION_PROPERTY, b"deny reason=unavailable");
            }
            host::send_response(
                503,
                vec![
                    ("content-type", "application/json"),
                    ("retry-after", "5"),
                    ("cache-control", "no-store"),
                ],
                br#"{"error":"temporarily_unavailable"}"#,
            );
            return Action::Pause;
        }

        let authorization: Vec<&[u8]> = headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("authorization"))
            .map(|(_, value)| value.as_slice())
            .collect();
        // `source.address` is a property lookup in Envoy: only pay for it when a policy reads it.
        let reads_source_ip = worker
            .gate
            .as_ref()
            .is_some_and(|gate| gate.snapshot().engine.reads_source_ip());
        let source_ip = if reads_source_ip { source_ip() } else { None };
        let input = RequestInput {
            method,
            path: raw_path,
            authority,
            authorization: &authorization,
            source_ip: source_ip.as_deref(),
            now: i64::try_from(now_ms / 1_000).unwrap_or(i64::MAX),
        };
        let Some(gate) = worker.gate.as_mut() else {
            return deny(&mut worker, &DenyReason::PolicyError, None, "");
        };
        match gate.decide(&input, &target) {
            Outcome::Allow(allowed) => allow(&mut worker, &allowed),
            Outcome::Deny(denied) => {
                if denied.reason == DenyReason::Token(TokenError::UnknownKey) {
                    worker.refresh_wanted = true;
                }
                let policies = denied
                    .decision
                    .as_ref()
                    .map(|d| d.policy_ids.join(","))
                    .unwrap_or_default();
                let mut shadow = String::new();
                if let Some(decision) = &denied.decision {
                    record_shadow(&mut worker, &mut shadow, decision);
                }
                deny(&mut worker, &denied.reason, Some(&policies), &shadow)
            }
        }
    }
}

impl Context for PortcullisFilter {}

// Envoy calls only the callbacks the module exports, and `cargo xtask` keeps only those listed in
// `xtask/src/callbacks.rs`: overriding another `HttpContext` callback means adding it there.
impl HttpContext for PortcullisFilter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.handle()
    }
}

/// Lets an allowed request through with the configured identity headers, without the token
/// (unless `forward_token`), with the normalised path, the access-log record and the counters.
/// Envoy routes it by the headers as left here (it picks the route again after a wasm filter
/// changes request headers; `tests/tests/edge.rs` pins that).
fn allow(worker: &mut Worker, allowed: &Allowed) -> Action {
    let claims = &allowed.claims;
    let recorded = worker.config.decision_record.allowed();
    let sub = if recorded
        || worker
            .config
            .identity_headers
            .contains(&IdentityHeader::Sub)
    {
        claims.sub.to_string()
    } else {
        String::new()
    };
    let mut identity = IdentityHeaders::new(&worker.config.header_prefix);
    for &header in &worker.config.identity_headers {
        let suffix = header.suffix();
        match header {
            IdentityHeader::Sub => identity.add(suffix, [sub.as_str()], ""),
            IdentityHeader::ClientId => identity.add(suffix, [claims.client_id.as_str()], ""),
            IdentityHeader::Scopes => {
                identity.add(suffix, claims.scopes.iter().map(String::as_str), " ")
            }
            IdentityHeader::Roles => {
                identity.add(suffix, claims.roles.iter().map(String::as_str), ",")
            }
            IdentityHeader::Tenant => {
                if let Some(tenant) = &claims.tenant {
                    identity.add(suffix, [tenant.as_str()], "");
                }
            }
        }
    }
    withhold_token(worker.config.forward_token);
    if let Some(path) = &allowed.rewritten_path {
        host::set_request_header(":path", Some(path));
    }
    let mut record = String::new();
    if recorded {
        record.reserve(64);
        record.push_str("allow sub=");
        record.push_str(&sub);
        record.push_str(" policies=");
        push_joined(
            &mut record,
            allowed.decision.policy_ids.iter().map(String::as_str),
            ",",
        );
    }
    record_shadow(worker, &mut record, &allowed.decision);
    if recorded {
        host::set_property(DECISION_PROPERTY, record.as_bytes());
    }
    worker.metrics.count("allowed");
    worker.metrics.count(if allowed.token_cache_hit {
        "token_cache.hit"
    } else {
        "token_cache.miss"
    });
    worker.metrics.count(if allowed.decision_cache_hit {
        "decision_cache.hit"
    } else {
        "decision_cache.miss"
    });
    Action::Continue
}

/// Counts what `@shadow` policies would have changed (`shadow.would_allow`,
/// `shadow.would_deny`, `shadow.same`) and notes it in the access-log record.
fn record_shadow(worker: &mut Worker, record: &mut String, decision: &Decision) {
    let Some(shadow) = decision.shadow_allowed else {
        return;
    };
    let metric = match (decision.allowed, shadow) {
        (false, true) => "shadow.would_allow",
        (true, false) => "shadow.would_deny",
        _ => "shadow.same",
    };
    worker.metrics.count(metric);
    record.push_str(if shadow {
        " shadow=allow"
    } else {
        " shadow=deny"
    });
}

/// Answers a refused request with the RFC 6750 challenge and a generic body; the precise reason
/// goes only to metrics, the filter-state record and the debug log.
fn deny(worker: &mut Worker, reason: &DenyReason, policies: Option<&str>, shadow: &str) -> Action {
    worker
        .metrics
        .count_dynamic(format!("denied.{}", reason.metric_name()));
    if let DenyReason::Token(e) = reason {
        worker
            .metrics
            .count_dynamic(format!("invalid_token.{}", e.reason()));
    }
    let mut record = format!("deny reason={}", reason.metric_name());
    if let DenyReason::Token(e) = reason {
        record.push_str(&format!(" detail={}", e.reason()));
    }
    if let Some(policies) = policies.filter(|p| !p.is_empty()) {
        record.push_str(&format!(" policies={policies}"));
    }
    record.push_str(shadow);
    if worker.config.decision_record.denied() {
        host::set_property(DECISION_PROPERTY, record.as_bytes());
    }
    host::log(
        LogLevel::Debug,
        &format!("portcullis: {record}: {}", reason.detail()),
    );
    let challenge = reason.challenge();
    let mut headers = vec![
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
    ];
    if let Some(challenge) = &challenge {
        headers.push(("www-authenticate", challenge));
    }
    let body = match reason.error_code() {
        Some(code) => format!("{{\"error\":\"{code}\"}}"),
        None if reason.status() == 400 => "{\"error\":\"invalid_request\"}".to_owned(),
        None => "{\"error\":\"unauthorized\"}".to_owned(),
    };
    host::send_response(reason.status(), headers, body.as_bytes());
    Action::Pause
}

fn header_str<'a>(headers: &'a [(String, Bytes)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

/// Removes every client-sent header with the identity prefix: only this filter may set them.
fn strip_identity_headers(headers: &[(String, Bytes)], prefix: &str) {
    for (name, _) in headers {
        if name.len() >= prefix.len()
            && name
                .get(..prefix.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        {
            host::set_request_header(name, None);
        }
    }
}

/// Adds the identity headers of an allowed request, reusing one buffer for their names and one
/// for their values: this runs on every allowed request, cached or not.
struct IdentityHeaders {
    name: String,
    prefix_len: usize,
    value: String,
}

impl IdentityHeaders {
    fn new(prefix: &str) -> Self {
        let mut name = String::with_capacity(prefix.len() + 16);
        name.push_str(prefix);
        IdentityHeaders {
            name,
            prefix_len: prefix.len(),
            value: String::with_capacity(128),
        }
    }

    /// Adds (rather than replaces: every header with the prefix was stripped) `prefix + suffix`
    /// with `parts` joined by `separator`.
    fn add<'a>(&mut self, suffix: &str, parts: impl IntoIterator<Item = &'a str>, separator: &str) {
        self.name.truncate(self.prefix_len);
        self.name.push_str(suffix);
        self.value.clear();
        push_joined(&mut self.value, parts, separator);
        host::add_request_header(&self.name, &self.value);
    }
}

fn push_joined<'a>(out: &mut String, parts: impl IntoIterator<Item = &'a str>, separator: &str) {
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        out.push_str(part);
    }
}

/// Removes the client's `Authorization` header unless `forward_token` keeps it: the upstream
/// learns who is calling from the identity headers and gets no credential it could replay.
fn withhold_token(forward_token: bool) {
    if !forward_token {
        host::set_request_header("authorization", None);
    }
}

fn rewrite_path(received: &str, normalized: &str) {
    if received != normalized {
        host::set_request_header(":path", Some(normalized));
    }
}

/// The client address without its port, from Envoy's `source.address` attribute.
fn source_ip() -> Option<String> {
    let address = String::from_utf8(host::property(vec!["source", "address"])?).ok()?;
    let ip = match address.rsplit_once(':') {
        Some((ip, _port)) if !ip.is_empty() => {
            ip.trim_start_matches('[').trim_end_matches(']').to_owned()
        }
        _ => address,
    };
    Some(ip)
}
