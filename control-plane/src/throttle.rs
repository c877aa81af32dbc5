//! Login throttling that slows guessing without letting an attacker lock a user out.
//!
//! Failures are counted per (account, client IP) pair and per client IP. A pair backs off
//! exponentially after a few failures; an IP is capped across accounts. The account-wide cap
//! (100 failures per hour) applies only to addresses that have already failed for that account,
//! so an address with no failures — the real user on their own network — can always try.
//!
//! With `REDIS_URL` the counters are shared by every replica; they are also kept in this process,
//! which is what decides while Redis is unreachable (fallback, never fail-open).

use crate::redis::{Connection, RedisError, Reply};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// Failures per pair before backoff starts.
const FREE_FAILURES: u32 = 5;
/// Longest backoff, seconds.
const MAX_BACKOFF: i64 = 300;
/// Failures an IP may make per hour across all accounts.
const PER_IP_PER_HOUR: u32 = 300;
/// Failures per account per hour from addresses that have failed before.
pub const PER_ACCOUNT_PER_HOUR: u32 = 100;
const HOUR: i64 = 3600;

/// A fixed one-hour window of failures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Window {
    started: i64,
    failures: u32,
}

impl Window {
    fn current(&mut self, now: i64) -> &mut Self {
        if now - self.started >= HOUR {
            *self = Window {
                started: now,
                failures: 0,
            };
        }
        self
    }
}

/// What the decision needs to know about one attempt.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    /// Failures of this (account, IP) pair and when the last one happened.
    pair: Option<(u32, i64)>,
    ip: Window,
    account: Window,
}

/// `Err(retry_after_seconds)` when the attempt must wait.
fn decide(counts: &Counts, now: i64) -> Result<(), i64> {
    let pair_failures = match counts.pair {
        Some((failures, last)) => {
            if failures >= FREE_FAILURES {
                // 2 s, 4 s, 8 s, … capped. Times have second resolution, so the first step is 2 s
                // to be sure it is at least one whole second.
                let backoff = (2i64 << (failures - FREE_FAILURES).min(16)).min(MAX_BACKOFF);
                if now < last + backoff {
                    return Err(last + backoff - now);
                }
            }
            failures
        }
        None => 0,
    };
    let live = |w: Window| now - w.started < HOUR;
    if live(counts.ip) && counts.ip.failures >= PER_IP_PER_HOUR {
        return Err(counts.ip.started + HOUR - now);
    }
    if pair_failures > 0 && live(counts.account) && counts.account.failures >= PER_ACCOUNT_PER_HOUR
    {
        return Err(counts.account.started + HOUR - now);
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Local {
    pairs: HashMap<(String, String), (u32, i64)>,
    ips: HashMap<String, Window>,
    accounts: HashMap<String, Window>,
}

/// Shared throttle state.
#[derive(Debug, Default)]
pub struct Throttle {
    local: Mutex<Local>,
    redis: Option<Shared>,
    in_flight: Mutex<std::collections::HashSet<String>>,
}

/// Entries kept in memory before stale ones are pruned.
const PRUNE_ABOVE: usize = 100_000;

/// One login attempt in progress for an account; dropping it ends the attempt.
#[derive(Debug)]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    account: String,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.throttle.in_flight.lock() {
            in_flight.remove(&self.account);
        }
    }
}

#[derive(Debug)]
struct Shared {
    url: String,
    connection: tokio::sync::Mutex<Option<Connection>>,
}

fn account_key(account: &str) -> String {
    let digest = Sha256::digest(account.as_bytes());
    crate::secrets::hex(&digest[..16])
}

fn integer(reply: &Reply) -> Option<i64> {
    match reply {
        Reply::Integer(n) => Some(*n),
        Reply::Bulk(Some(bytes)) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        _ => None,
    }
}

impl Shared {
    async fn with<T>(
        &self,
        run: impl AsyncFnOnce(&mut Connection) -> Result<T, RedisError>,
    ) -> Result<T, RedisError> {
        let mut guard = self.connection.lock().await;
        if guard.is_none() {
            *guard = Some(Connection::open(&self.url).await?);
        }
        let Some(connection) = guard.as_mut() else {
            return Err(RedisError::Protocol);
        };
        let result = run(connection).await;
        if result.is_err() {
            *guard = None;
        }
        result
    }

    async fn window(
        connection: &mut Connection,
        key: &str,
        now: i64,
    ) -> Result<Window, RedisError> {
        let failures = integer(&connection.command(&["GET", key]).await?).unwrap_or(0);
        let ttl = integer(&connection.command(&["TTL", key]).await?).unwrap_or(-2);
        Ok(if failures > 0 && ttl > 0 {
            Window {
                started: now - (HOUR - ttl),
                failures: u32::try_from(failures).unwrap_or(u32::MAX),
            }
        } else {
            Window::default()
        })
    }

    async fn counts(&self, account: &str, ip: &str, now: i64) -> Result<Counts, RedisError> {
        let account = account_key(account);
        self.with(async |c| {
            let pair_key = format!("portcullis:throttle:pair:{account}:{ip}");
            let pair = match c.command(&["HMGET", &pair_key, "failures", "last"]).await? {
                Reply::Array(Some(values)) if values.len() == 2 => {
                    match (integer(&values[0]), integer(&values[1])) {
                        (Some(f), Some(last)) => Some((u32::try_from(f).unwrap_or(u32::MAX), last)),
                        _ => None,
                    }
                }
                _ => None,
            };
            Ok(Counts {
                pair,
                ip: Self::window(c, &format!("portcullis:throttle:ip:{ip}"), now).await?,
                account: Self::window(c, &format!("portcullis:throttle:account:{account}"), now)
                    .await?,
            })
        })
        .await
    }

    async fn failed(&self, account: &str, ip: &str, now: i64) -> Result<(), RedisError> {
        let account = account_key(account);
        self.with(async |c| {
            let pair_key = format!("portcullis:throttle:pair:{account}:{ip}");
            c.command(&["HINCRBY", &pair_key, "failures", "1"]).await?;
            c.command(&["HSET", &pair_key, "last", &now.to_string()])
                .await?;
            c.command(&["EXPIRE", &pair_key, "3600"]).await?;
            for key in [
                format!("portcullis:throttle:ip:{ip}"),
                format!("portcullis:throttle:account:{account}"),
            ] {
                if integer(&c.command(&["INCR", &key]).await?) == Some(1) {
                    c.command(&["EXPIRE", &key, "3600"]).await?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn succeeded(&self, account: &str, ip: &str) -> Result<(), RedisError> {
        let account = account_key(account);
        self.with(async |c| {
            c.command(&["DEL", &format!("portcullis:throttle:pair:{account}:{ip}")])
                .await
                .map(|_| ())
        })
        .await
    }
}

impl Throttle {
    /// A throttle sharing its counters through Redis at `url` (local only with `None`).
    pub fn new(redis_url: Option<String>) -> Self {
        Throttle {
            local: Mutex::default(),
            in_flight: Mutex::default(),
            redis: redis_url.map(|url| Shared {
                url,
                connection: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// Starts an attempt for `account`, or `None` while another is in progress: the check and
    /// the recording of a failure are separated by the password hash, and parallel guesses
    /// would otherwise all pass the check before any failure is counted.
    pub fn begin(&self, account: &str) -> Option<Attempt<'_>> {
        let mut in_flight = self.in_flight.lock().ok()?;
        if !in_flight.insert(account.to_owned()) {
            return None;
        }
        Some(Attempt {
            throttle: self,
            account: account.to_owned(),
        })
    }

    /// Starts an attempt and checks the counters: the attempt to hold until the outcome is
    /// recorded, or `Err(retry_after_seconds)`.
    pub async fn start(&self, account: &str, ip: &str, now: i64) -> Result<Attempt<'_>, i64> {
        let attempt = self.begin(account).ok_or(1)?;
        self.check(account, ip, now).await?;
        Ok(attempt)
    }

    fn local_counts(&self, account: &str, ip: &str, now: i64) -> Counts {
        let Ok(mut local) = self.local.lock() else {
            return Counts::default();
        };
        let pair = local
            .pairs
            .get(&(account.to_owned(), ip.to_owned()))
            .copied();
        let ip = local
            .ips
            .get_mut(ip)
            .map(|w| *w.current(now))
            .unwrap_or_default();
        let account = local
            .accounts
            .get_mut(account)
            .map(|w| *w.current(now))
            .unwrap_or_default();
        Counts { pair, ip, account }
    }

    /// `Err(retry_after_seconds)` when this attempt must wait.
    pub async fn check(&self, account: &str, ip: &str, now: i64) -> Result<(), i64> {
        if let Some(shared) = &self.redis {
            match shared.counts(account, ip, now).await {
                Ok(counts) => return decide(&counts, now),
                Err(error) => {
                    tracing::warn!(%error, "login throttle: redis unavailable, using local counters")
                }
            }
        }
        decide(&self.local_counts(account, ip, now), now)
    }

    /// Records a failed attempt.
    pub async fn failed(&self, account: &str, ip: &str, now: i64) {
        if let Ok(mut local) = self.local.lock() {
            let entry = local
                .pairs
                .entry((account.to_owned(), ip.to_owned()))
                .or_insert((0, now));
            *entry = (entry.0.saturating_add(1), now);
            local
                .ips
                .entry(ip.to_owned())
                .or_default()
                .current(now)
                .failures += 1;
            local
                .accounts
                .entry(account.to_owned())
                .or_default()
                .current(now)
                .failures += 1;
            if local.pairs.len() + local.ips.len() + local.accounts.len() > PRUNE_ABOVE {
                local.pairs.retain(|_, (_, last)| now - *last < HOUR);
                local.ips.retain(|_, w| now - w.started < HOUR);
                local.accounts.retain(|_, w| now - w.started < HOUR);
            }
        }
        if let Some(shared) = &self.redis {
            if let Err(error) = shared.failed(account, ip, now).await {
                tracing::warn!(%error, "login throttle: could not share a failure");
            }
        }
    }

    /// Clears the pair after a successful login.
    pub async fn succeeded(&self, account: &str, ip: &str) {
        if let Ok(mut local) = self.local.lock() {
            local.pairs.remove(&(account.to_owned(), ip.to_owned()));
        }
        if let Some(shared) = &self.redis {
            let _ = shared.succeeded(account, ip).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pair_backs_off_after_free_failures() {
        let throttle = Throttle::default();
        for _ in 0..FREE_FAILURES {
            assert!(throttle.check("alice", "10.0.0.1", 1000).await.is_ok());
            throttle.failed("alice", "10.0.0.1", 1000).await;
        }
        assert_eq!(throttle.check("alice", "10.0.0.1", 1000).await, Err(2));
        assert_eq!(throttle.check("alice", "10.0.0.1", 1001).await, Err(1));
        assert!(throttle.check("alice", "10.0.0.1", 1002).await.is_ok());
        // Each further failure doubles the wait.
        throttle.failed("alice", "10.0.0.1", 1002).await;
        assert_eq!(throttle.check("alice", "10.0.0.1", 1002).await, Err(4));
    }

    #[test]
    fn one_attempt_per_account_at_a_time() {
        let throttle = Throttle::default();
        let first = throttle.begin("alice");
        assert!(first.is_some());
        assert!(throttle.begin("alice").is_none());
        assert!(throttle.begin("bob").is_some());
        drop(first);
        assert!(throttle.begin("alice").is_some());
    }

    #[tokio::test]
    async fn an_attacker_cannot_lock_out_the_real_user() {
        let throttle = Throttle::default();
        for i in 0..200u32 {
            let ip = format!("10.1.{}.{}", i / 250, i % 250);
            throttle.failed("alice", &ip, 1000).await;
        }
        // Attackers' addresses are capped…
        assert!(throttle.check("alice", "10.1.0.7", 1000).await.is_err());
        // …the user's own address, with no failures, is not.
        assert!(throttle.check("alice", "192.168.1.20", 1000).await.is_ok());
        // The cap lifts after an hour.
        assert!(throttle
            .check("alice", "10.1.0.7", 1000 + HOUR)
            .await
            .is_ok());
    }
}
