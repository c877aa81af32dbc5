//! Cedar: the entity model, request building and evaluation.
//!
//! The model (mirrored by `policies/schema.cedarschema`):
//! - principal `User::"<id>"` or `Client::"<id>"`, a member of `Role::"<r>"` for each token role
//!   (roles may themselves sit in a role hierarchy shipped in the bundle's entities);
//! - action `Action::"<HTTP METHOD>"`, grouped by the schema into `Action::"read"`/`"write"`;
//! - resource `Endpoint::"<normalised path>"` with `path`, `host`, `service` and optional
//!   `tenant` attributes (see [`crate::endpoint`]);
//! - context `scopes`, `api_scopes` (`{service, permission}` records), `roles`, `amr` (sets),
//!   `client_id`, optional `tenant` and `source_ip`, and `now` (seconds since the epoch).
//!
//! Any evaluation error denies: Cedar skips policies that error, so an erroring `forbid` must
//! never be allowed to open access.

use crate::claims::{AccessClaims, Subject};
use crate::context::ClaimContext;
use crate::endpoint;
use crate::entity_store::EntityStore;
use crate::evaluation::{self, Authorization};
use crate::slice::SlicedPolicies;
use cedar_policy::{
    Authorizer, Context, Entities, EntityId, EntityTypeName, EntityUid, Policy, PolicyId,
    PolicySet, Request, Schema, ValidationMode, Validator,
};
use cedar_policy_core::ast::{self, ExprKind, Var};
use std::borrow::Cow;
use std::collections::HashSet;
use std::str::FromStr as _;

/// Why a policy bundle part was refused. Messages carry Cedar's own diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The schema does not parse.
    #[error("schema: {0}")]
    Schema(String),
    /// The policies do not parse.
    #[error("policies: {0}")]
    Parse(String),
    /// Templates are not supported in bundles.
    #[error("policies: templates are not supported")]
    Templates,
    /// Two policies carry the same `@id`.
    #[error("policies: duplicate policy id `{0}`")]
    DuplicateId(String),
    /// The policies do not validate against the schema.
    #[error("policies do not validate against the schema: {0}")]
    Validation(String),
    /// The entities do not parse or do not conform to the schema.
    #[error("entities: {0}")]
    Entities(String),
}

/// The request attributes Cedar sees besides the token.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// HTTP method, upper case (`GET`).
    pub method: &'a str,
    /// Normalised path.
    pub path: &'a str,
    /// Host without port, lower case.
    pub host: &'a str,
    /// Client address, if known.
    pub source_ip: Option<&'a str>,
    /// Seconds since the epoch.
    pub now: i64,
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is allowed.
    pub allowed: bool,
    /// Ids of the policies that decided (the permits that allowed, or the forbids that denied).
    pub policy_ids: Vec<String>,
    /// Evaluation or request-building errors; any error denies.
    pub errors: Vec<String>,
    /// When `@shadow` policies exist: whether the request would be allowed if they were
    /// enforced. Shadow policies are evaluated and reported, never enforced.
    pub shadow_allowed: Option<bool>,
}

/// A policy set validated against its schema, with the base entities and the schema's actions.
#[derive(Debug, Clone)]
pub struct PolicyEngine {
    policies: PolicySet,
    /// Enforced and `@shadow` policies together, when any policy is a shadow.
    with_shadow: Option<PolicySet>,
    sliced: SlicedPolicies,
    sliced_with_shadow: Option<SlicedPolicies>,
    types: Types,
    shadow_count: usize,
    entities: EntityStore,
    actions: HashSet<EntityUid>,
    policy_count: usize,
    reads_now: bool,
    reads_source_ip: bool,
}

impl PolicyEngine {
    /// Parses the schema, policies and entities and validates the policies against the schema
    /// (strict mode). Policies are renamed after their `@id` annotation when they have one.
    pub fn new(
        schema: &str,
        policies: &str,
        entities: &serde_json::Value,
    ) -> Result<Self, PolicyError> {
        let (schema, _warnings) =
            Schema::from_cedarschema_str(schema).map_err(|e| PolicyError::Schema(e.to_string()))?;
        let parsed =
            PolicySet::from_str(policies).map_err(|e| PolicyError::Parse(diagnostics(&e)))?;
        if parsed.templates().next().is_some() {
            return Err(PolicyError::Templates);
        }
        let mut named = PolicySet::new();
        let mut shadows = Vec::new();
        for policy in parsed.policies() {
            let policy = named_by_id(policy);
            if policy.annotation("shadow").is_some() {
                shadows.push(policy.clone());
            }
            let id = policy.id().to_string();
            named
                .add(policy)
                .map_err(|_| PolicyError::DuplicateId(id))?;
        }
        let validation = Validator::new(schema.clone()).validate(&named, ValidationMode::Strict);
        if !validation.validation_passed() {
            let messages: Vec<String> = validation
                .validation_errors()
                .map(|e| e.to_string())
                .collect();
            return Err(PolicyError::Validation(messages.join("; ")));
        }
        // Shadows included: they are evaluated on every request and their verdict is cached too.
        let reads = ContextReads::of(&named);
        let entities = if entities.is_null() {
            serde_json::Value::Array(Vec::new())
        } else {
            entities.clone()
        };
        let entities = EntityStore::new(
            Entities::from_json_value(entities, Some(&schema))
                .map_err(|e| PolicyError::Entities(e.to_string()))?,
        );
        // Everything was validated together; now the shadows leave the enforced set.
        let shadow_count = shadows.len();
        let with_shadow = if shadows.is_empty() {
            None
        } else {
            let mut enforced = PolicySet::new();
            for policy in named.policies() {
                if policy.annotation("shadow").is_none() {
                    enforced
                        .add(policy.clone())
                        .map_err(|_| PolicyError::DuplicateId(policy.id().to_string()))?;
                }
            }
            Some(std::mem::replace(&mut named, enforced))
        };
        let types = Types::new()?;
        let principal_types = [types.user.clone(), types.client.clone()];
        let sliced = SlicedPolicies::new(&named, &schema, &principal_types);
        let sliced_with_shadow = with_shadow
            .as_ref()
            .map(|all| SlicedPolicies::new(all, &schema, &principal_types));
        Ok(PolicyEngine {
            actions: schema.actions().cloned().collect(),
            sliced,
            sliced_with_shadow,
            types,
            with_shadow,
            shadow_count,
            policy_count: named.policies().count(),
            reads_now: reads.now,
            reads_source_ip: reads.source_ip,
            policies: named,
            entities,
        })
    }

    /// Number of enforced policies.
    pub fn policy_count(&self) -> usize {
        self.policy_count
    }

    /// Number of `@shadow` policies (evaluated and reported, never enforced).
    pub fn shadow_count(&self) -> usize {
        self.shadow_count
    }

    /// Whether some policy may read `context.now`, which makes decisions uncacheable.
    pub fn reads_now(&self) -> bool {
        self.reads_now
    }

    /// Whether some policy may read `context.source_ip`, which must then key the decision cache.
    pub fn reads_source_ip(&self) -> bool {
        self.reads_source_ip
    }

    /// Evaluates the request for the verified `claims`, considering only the policies whose heads
    /// may match it (see [`crate::slice`]).
    pub fn decide(&self, claims: &AccessClaims, request: &HttpRequest<'_>) -> Decision {
        match self.prepare(claims) {
            Ok(principal) => self.evaluate(&principal, request, true),
            Err(error) => error_decision(error),
        }
    }

    /// Evaluates the request against every policy, without slicing: the reference [`decide`]
    /// must agree with (tests prove it on the corpus), and the baseline for benchmarks.
    ///
    /// [`decide`]: PolicyEngine::decide
    pub fn decide_unsliced(&self, claims: &AccessClaims, request: &HttpRequest<'_>) -> Decision {
        match self.prepare(claims) {
            Ok(principal) => self.evaluate(&principal, request, false),
            Err(error) => error_decision(error),
        }
    }

    /// [`decide`](PolicyEngine::decide) for a token prepared with
    /// [`prepare`](PolicyEngine::prepare); `sliced: false` evaluates every policy.
    pub fn decide_prepared(
        &self,
        principal: &PreparedPrincipal,
        request: &HttpRequest<'_>,
        sliced: bool,
    ) -> Decision {
        self.evaluate(principal, request, sliced)
    }

    /// Builds the token's half of every Cedar request once: the principal in its roles added to
    /// the bundle's entities, and the context (whole, when no policy reads `now` or
    /// `source_ip`). Valid for this engine only.
    pub fn prepare(&self, claims: &AccessClaims) -> Result<PreparedPrincipal, String> {
        let uid = match &claims.sub {
            Subject::User(id) => self.types.uid(&self.types.user, id),
            Subject::Client(id) => self.types.uid(&self.types.client, id),
        };
        let roles = claims
            .roles
            .iter()
            .map(|r| self.types.uid(&self.types.role, r))
            .collect::<HashSet<_>>();
        let entities = self.entities.add(&uid, roles, Vec::new())?;
        let claim_context = ClaimContext::new(claims);
        // No policy reads `now` or `source_ip`, so their values cannot change a decision.
        let context =
            (!self.reads_now && !self.reads_source_ip).then(|| claim_context.with_request(0, None));
        Ok(PreparedPrincipal {
            uid,
            entities,
            claim_context,
            context,
        })
    }

    fn evaluate(
        &self,
        principal: &PreparedPrincipal,
        request: &HttpRequest<'_>,
        sliced: bool,
    ) -> Decision {
        let (cedar_request, entities) = match self.build(principal, request) {
            Ok(built) => built,
            Err(error) => return error_decision(error),
        };
        let enforced = select(&cedar_request, &self.policies, Some(&self.sliced), sliced);
        let decision = authorize(&cedar_request, &enforced, entities.entities(), sliced);
        let shadow_allowed = self.with_shadow.as_ref().map(|all| {
            let all = select(
                &cedar_request,
                all,
                self.sliced_with_shadow.as_ref(),
                sliced,
            );
            let shadow = authorize(&cedar_request, &all, entities.entities(), sliced);
            shadow.errors.is_empty() && shadow.allowed
        });
        Decision {
            allowed: decision.errors.is_empty() && decision.allowed,
            policy_ids: decision.reasons,
            errors: decision.errors,
            shadow_allowed,
        }
    }

    /// The request's half: action, the endpoint entity and (when needed) the context.
    fn build(
        &self,
        principal: &PreparedPrincipal,
        request: &HttpRequest<'_>,
    ) -> Result<(Request, EntityStore), String> {
        let action = self.types.uid(&self.types.action, request.method);
        // The request is built by this code from verified claims, so it is checked against the
        // schema once, here, instead of by Cedar on every request (which costs more than the
        // evaluation itself): only the action comes from the client.
        if !self.actions.contains(&action) {
            return Err(format!("action `{}` is not in the schema", request.method));
        }
        let resource = self.types.uid(&self.types.endpoint, request.path);
        let mut attributes = vec![
            ("path", request.path.to_owned()),
            ("host", request.host.to_owned()),
            ("service", endpoint::service(request.path).to_owned()),
        ];
        if let Some(tenant) = endpoint::tenant(request.path) {
            attributes.push(("tenant", tenant.to_owned()));
        }
        let entities = principal
            .entities
            .add(&resource, HashSet::new(), attributes)?;
        let context = match &principal.context {
            Some(context) => context.clone(),
            None => principal
                .claim_context
                .with_request(request.now, request.source_ip),
        };
        let cedar_request = Request::new(principal.uid.clone(), action, resource, context, None)
            .map_err(|e| e.to_string())?;
        Ok((cedar_request, entities))
    }
}

/// The token's half of every Cedar request, built once per verified token by
/// [`PolicyEngine::prepare`] (the gate keeps it next to the verified claims).
#[derive(Debug, Clone)]
pub struct PreparedPrincipal {
    uid: EntityUid,
    /// The bundle's entities plus the principal in its roles.
    entities: EntityStore,
    /// The token's context entries (everything but `now` and `source_ip`).
    claim_context: ClaimContext,
    /// The whole context, when no policy reads `now` or `source_ip`.
    context: Option<Context>,
}

/// The entity type names of the model, parsed once.
#[derive(Debug, Clone)]
struct Types {
    user: EntityTypeName,
    client: EntityTypeName,
    role: EntityTypeName,
    endpoint: EntityTypeName,
    action: EntityTypeName,
}

impl Types {
    fn new() -> Result<Self, PolicyError> {
        Ok(Types {
            user: type_name("User")?,
            client: type_name("Client")?,
            role: type_name("Role")?,
            endpoint: type_name("Endpoint")?,
            action: type_name("Action")?,
        })
    }

    fn uid(&self, type_name: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new(id))
    }
}

fn error_decision(error: String) -> Decision {
    Decision {
        allowed: false,
        policy_ids: Vec::new(),
        errors: vec![error],
        shadow_allowed: None,
    }
}

/// `policy` renamed after its `@id` annotation when it has one: how bundle policies are named,
/// in decisions and in diagnostics.
pub fn named_by_id(policy: &Policy) -> Policy {
    match policy.annotation("id") {
        Some(id) => policy.new_id(PolicyId::new(id)),
        None => policy.clone(),
    }
}

/// Cedar's decision: through [`evaluation::authorize`] on a sliced set, through Cedar's own
/// `Authorizer` when every policy is evaluated (the reference the slicing tests compare with).
/// Reasons come sorted, so the access-log record reads the same on both paths.
fn authorize(
    request: &Request,
    policies: &PolicySet,
    entities: &Entities,
    sliced: bool,
) -> Authorization {
    let mut authorization = if sliced {
        evaluation::authorize(request, policies, entities)
    } else {
        let response = Authorizer::new().is_authorized(request, policies, entities);
        Authorization {
            allowed: response.decision() == cedar_policy::Decision::Allow,
            reasons: response
                .diagnostics()
                .reason()
                .map(|id| id.to_string())
                .collect(),
            errors: response
                .diagnostics()
                .errors()
                .map(|e| e.to_string())
                .collect(),
        }
    };
    authorization.reasons.sort_unstable();
    authorization
}

/// The slice of `all` that may match `request`, or `all` when slicing is off.
fn select<'a>(
    request: &Request,
    all: &'a PolicySet,
    slices: Option<&'a SlicedPolicies>,
    sliced: bool,
) -> Cow<'a, PolicySet> {
    match (
        slices,
        request.principal(),
        request.action(),
        request.resource(),
    ) {
        (Some(slices), Some(principal), Some(action), Some(resource)) if sliced => {
            slices.for_request(principal, action, resource)
        }
        _ => Cow::Borrowed(all),
    }
}

fn type_name(name: &str) -> Result<EntityTypeName, PolicyError> {
    EntityTypeName::from_str(name).map_err(|e| PolicyError::Schema(e.to_string()))
}

/// The request-dependent context attributes some policy may read: `now` makes decisions
/// uncacheable, `source_ip` must key them. (Every other context attribute comes from the token,
/// which keys every cached decision anyway.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ContextReads {
    now: bool,
    source_ip: bool,
}

impl ContextReads {
    /// Everything.
    const ALL: ContextReads = ContextReads {
        now: true,
        source_ip: true,
    };

    /// What the policies' conditions may read, decided on Cedar's AST rather than the text, so an
    /// escaped name (`context["\u{6e}ow"]`) or a comment cannot mislead it. `context.a`,
    /// `context["a"]`, `context has a` and `context has a.b` read `a`; any other use of `context`
    /// (compared, in a record or set, an `if` branch, a function argument) counts as reading
    /// everything. Wrongly saying "reads" only costs caching; the reverse never happens.
    fn of(policies: &PolicySet) -> Self {
        let mut reads = ContextReads::default();
        for policy in AsRef::<ast::PolicySet>::as_ref(policies).policies() {
            // The whole condition, head included: exactly what the evaluator interprets.
            let condition = policy.condition();
            let (mut uses, mut named) = (0_usize, 0_usize);
            for expr in condition.subexpressions() {
                match expr.expr_kind() {
                    ExprKind::Var(Var::Context) => uses += 1,
                    ExprKind::GetAttr { expr, attr } | ExprKind::HasAttr { expr, attr }
                        if is_context(expr) =>
                    {
                        named += 1;
                        reads.note(attr);
                    }
                    ExprKind::ExtHasAttr { expr, attrs } if is_context(expr) => {
                        named += 1;
                        reads.note(attrs.first());
                    }
                    _ => {}
                }
            }
            // Each `context` has one parent: one not under a named attribute is used whole.
            if uses > named {
                return ContextReads::ALL;
            }
        }
        reads
    }

    fn note(&mut self, attribute: &str) {
        match attribute {
            "now" => self.now = true,
            "source_ip" => self.source_ip = true,
            _ => {}
        }
    }
}

fn is_context(expr: &ast::Expr) -> bool {
    matches!(expr.expr_kind(), ExprKind::Var(Var::Context))
}

fn diagnostics(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(policies: &str) -> ContextReads {
        ContextReads::of(&PolicySet::from_str(policies).unwrap())
    }

    const NONE: ContextReads = ContextReads {
        now: false,
        source_ip: false,
    };
    const NOW: ContextReads = ContextReads {
        now: true,
        source_ip: false,
    };
    const SOURCE_IP: ContextReads = ContextReads {
        now: false,
        source_ip: true,
    };

    fn permit_when(condition: &str) -> String {
        format!("permit (principal, action, resource) when {{ {condition} }};")
    }

    #[test]
    fn an_attribute_read_is_found_however_it_is_spelled() {
        for (condition, expected) in [
            ("context.now > 5", NOW),
            (r#"context["now"] > 5"#, NOW),
            (r#"context["\u{6e}ow"] > 5"#, NOW),
            ("context has now", NOW),
            (r#"context has "\u{6e}ow""#, NOW),
            ("context has now.x", NOW),
            ("context has source_ip", SOURCE_IP),
            (r#"context["source_\u{69}p"] == "10.0.0.1""#, SOURCE_IP),
            (
                "context.source_ip like \"10.*\" && context.now < 9",
                ContextReads::ALL,
            ),
            ("!(if true then context.now > 1 else false)", NOW),
        ] {
            assert_eq!(reads(&permit_when(condition)), expected, "{condition}");
        }
        let unless = "permit (principal, action, resource) unless { context.now > 5 };";
        assert_eq!(reads(unless), NOW, "an unless condition is read too");
    }

    #[test]
    fn the_word_now_elsewhere_reads_nothing() {
        for condition in [
            r#"context.client_id == "now""#,
            "principal.now > 5",
            "resource.source_ip == principal.now",
            r#"context.scopes.contains("now")"#,
            "context has nowhere",
            "context.record.now > 1",
            "context has record.now",
            r#"resource.path like "*now*""#,
        ] {
            assert_eq!(reads(&permit_when(condition)), NONE, "{condition}");
        }
        let commented = "// now and source_ip, in a comment\n@id(\"now\")\npermit (principal, action, resource);";
        assert_eq!(reads(commented), NONE);
    }

    #[test]
    fn the_context_used_whole_counts_as_reading_everything() {
        for condition in [
            "context == {}",
            "{ c: context }.c.now > 1",
            "[context].contains(principal)",
            "(if true then context else context).now > 1",
            "context has x && context == context",
            r#"ip(context.source_ip).isInRange(ip("10.0.0.0/8")) || context != {}"#,
        ] {
            assert_eq!(
                reads(&permit_when(condition)),
                ContextReads::ALL,
                "{condition}"
            );
        }
    }

    #[test]
    fn one_reading_policy_among_many_is_enough() {
        let policies = format!(
            "{}\n{}\n{}",
            permit_when("context.client_id == \"web\""),
            "forbid (principal, action, resource) when { context[\"\\u{6e}ow\"] > 5 };",
            permit_when("principal.now > 1"),
        );
        assert_eq!(reads(&policies), NOW, "{policies}");
    }

    #[test]
    fn the_engine_reports_reads_of_the_validated_policies() {
        let schema = include_str!("../../policies/schema.cedarschema");
        let entities = serde_json::Value::Null;
        let engine = |policies: &str| PolicyEngine::new(schema, policies, &entities).unwrap();
        let escaped = engine(
            r#"@id("late") forbid (principal, action, resource) when { context["\u{6e}ow"] > 1800000000 };"#,
        );
        assert!(escaped.reads_now() && !escaped.reads_source_ip());
        let has = engine(
            r#"@id("addr") @shadow permit (principal, action, resource) when { context has source_ip };"#,
        );
        assert!(has.reads_source_ip() && !has.reads_now(), "a shadow counts");
        let literal = engine(
            r#"@id("now") permit (principal, action, resource) when { context.client_id == "now" };"#,
        );
        assert!(!literal.reads_now() && !literal.reads_source_ip());
    }
}
