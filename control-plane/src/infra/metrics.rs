//! Prometheus metrics kept in atomics: tokens issued by grant, login failures, lockouts and
//! token endpoint latency, policy compilations.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Latency bucket upper bounds, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// The grants counted separately: every [`crate::oauth::grant::GrantType`] (a test holds the
/// two lists together).
pub const GRANTS: [&str; 4] = [
    "authorization_code",
    "client_credentials",
    "password",
    "refresh_token",
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum{{{labels}}} {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Service counters.
#[derive(Debug, Default)]
pub struct Metrics {
    tokens_issued: [AtomicU64; GRANTS.len()],
    token_latency: [Histogram; GRANTS.len()],
    login_failures: AtomicU64,
    throttled: AtomicU64,
    refresh_reuse: AtomicU64,
    policy_compilations: AtomicU64,
}

fn grant_index(grant: &str) -> Option<usize> {
    GRANTS.iter().position(|g| *g == grant)
}

impl Metrics {
    /// Counts a token issued for `grant` and how long the request took.
    pub fn token_issued(&self, grant: &str, elapsed: Duration) {
        if let Some(i) = grant_index(grant) {
            self.tokens_issued[i].fetch_add(1, Ordering::Relaxed);
            self.token_latency[i].observe(elapsed);
        }
    }

    /// Counts a failed login.
    pub fn login_failed(&self) {
        self.login_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a login refused by the throttle.
    pub fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a detected refresh-token reuse.
    pub fn refresh_reuse(&self) {
        self.refresh_reuse.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a compilation of the policy set in force (a new policy version, not a revocation).
    pub fn policy_compiled(&self) {
        self.policy_compilations.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, bundle_version: i64) -> String {
        let mut out = String::new();
        out.push_str("# TYPE portcullis_tokens_issued_total counter\n");
        for (grant, count) in GRANTS.iter().zip(&self.tokens_issued) {
            let _ = writeln!(
                out,
                "portcullis_tokens_issued_total{{grant=\"{grant}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        out.push_str("# TYPE portcullis_token_request_seconds histogram\n");
        for (grant, histogram) in GRANTS.iter().zip(&self.token_latency) {
            histogram.render(
                &mut out,
                "portcullis_token_request_seconds",
                &format!("grant=\"{grant}\""),
            );
        }
        for (name, value) in [
            ("portcullis_login_failures_total", &self.login_failures),
            ("portcullis_login_throttled_total", &self.throttled),
            ("portcullis_refresh_reuse_total", &self.refresh_reuse),
            (
                "portcullis_policy_compilations_total",
                &self.policy_compilations,
            ),
        ] {
            let _ = writeln!(
                out,
                "# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# TYPE portcullis_bundle_version gauge\nportcullis_bundle_version {bundle_version}"
        );
        out
    }
}

#[cfg(test)]
mod grant_tests {
    use super::GRANTS;
    use crate::oauth::grant::GrantType;

    #[test]
    fn every_grant_type_is_counted() {
        for grant in GrantType::ALL {
            assert!(
                GRANTS.contains(&grant.as_str()),
                "{} has no counter",
                grant.as_str()
            );
        }
        assert_eq!(GRANTS.len(), GrantType::ALL.len());
    }
}
