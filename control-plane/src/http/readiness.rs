//! `GET /readyz`: what the control plane depends on, each with its status and how long it took
//! to answer, so an operator sees what is wrong rather than only that something is.
//!
//! The answer is 503 only when the control plane cannot do its job: the database does not
//! answer (nothing can be read or written) or no key signs tokens. A Redis that does not answer
//! (replicas then throttle and fan out alone) or a store without a policy set (the admin API is
//! how one gets pushed) is reported as `degraded` with 200, so a load balancer keeps sending
//! the requests that still work.

use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use std::time::{Duration, Instant};

/// How long one dependency may take to answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One dependency's state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Check {
    /// `up`, `down` or `missing`.
    pub status: &'static str,
    /// How long the check took, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// What failed, without secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The policy version in force on this node, for the policy check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

impl Check {
    fn up(latency: Option<Duration>) -> Self {
        Check {
            status: "up",
            latency_ms: latency.map(|l| l.as_secs_f64() * 1e3),
            error: None,
            version: None,
        }
    }

    fn failed(status: &'static str, latency: Option<Duration>, error: &str) -> Self {
        Check {
            status,
            error: Some(error.to_owned()),
            ..Check::up(latency)
        }
    }
}

/// The readiness report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready`, `degraded` (serving, something optional is wrong) or `unavailable`.
    pub status: &'static str,
    /// Each dependency.
    pub checks: Checks,
}

/// The dependencies checked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Checks {
    /// The database.
    pub database: Check,
    /// The key that signs tokens.
    pub signing_key: Check,
    /// The policy set in the published bundle.
    pub policies: Check,
    /// Redis, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<Check>,
}

async fn database(state: &AppState) -> Check {
    let started = Instant::now();
    match tokio::time::timeout(CHECK_TIMEOUT, crate::infra::db::ping(state.db())).await {
        Ok(true) => Check::up(Some(started.elapsed())),
        Ok(false) => Check::failed("down", Some(started.elapsed()), "query failed"),
        Err(_) => Check::failed("down", Some(started.elapsed()), "timed out"),
    }
}

async fn redis(redis: &crate::infra::redis::Redis) -> Check {
    let started = Instant::now();
    let ping =
        redis.run(|mut c| async move { ::redis::cmd("PING").query_async::<String>(&mut c).await });
    match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
        Ok(Ok(_)) => Check::up(Some(started.elapsed())),
        Ok(Err(error)) => Check::failed("down", Some(started.elapsed()), error.category()),
        Err(_) => Check::failed("down", Some(started.elapsed()), "timed out"),
    }
}

/// `GET /readyz`.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses((status = 200, description = "Ready or degraded", body = Readiness), (status = 503, description = "Unavailable", body = Readiness))
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let published = state.published();
    let database = database(&state).await;
    let signing_key = if published.signer.is_some() {
        Check::up(None)
    } else {
        Check::failed("missing", None, "no active signing key")
    };
    let policies = match &published.served {
        Some(served) => Check {
            version: Some(served.policy_version),
            ..Check::up(None)
        },
        None => Check::failed("missing", None, "no policy set is active"),
    };
    let redis = match state.redis() {
        Some(handle) => Some(redis(handle).await),
        None => None,
    };
    let unavailable = database.status != "up" || signing_key.status != "up";
    let degraded = policies.status != "up" || redis.as_ref().is_some_and(|r| r.status != "up");
    let (code, status) = if unavailable {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    } else if degraded {
        (StatusCode::OK, "degraded")
    } else {
        (StatusCode::OK, "ready")
    };
    let checks = Checks {
        database,
        signing_key,
        policies,
        redis,
    };
    (code, Json(Readiness { status, checks }))
}
