//! Login throttling that slows guessing without letting an attacker lock a user out.
//!
//! Failures are counted per (account, client IP) pair and per client IP. A pair backs off
//! exponentially after a few failures; an IP is capped across accounts. The account-wide cap
//! (100 failures per hour) applies only to addresses that have already failed for that account,
//! so an address with no failures — the real user on their own network — can always try.
//! Counters live in this process (a restart forgets them).

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

#[derive(Debug, Clone, Copy, Default)]
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

#[derive(Debug, Default)]
struct Counters {
    pairs: HashMap<(String, String), (u32, i64)>,
    ips: HashMap<String, Window>,
    accounts: HashMap<String, Window>,
}

/// Shared throttle state.
#[derive(Debug, Default)]
pub struct Throttle {
    counters: Mutex<Counters>,
}

impl Throttle {
    /// `Err(retry_after_seconds)` when this attempt must wait.
    pub fn check(&self, account: &str, ip: &str, now: i64) -> Result<(), i64> {
        let Ok(mut counters) = self.counters.lock() else {
            return Ok(());
        };
        let pair = (account.to_owned(), ip.to_owned());
        let pair_failures = match counters.pairs.get(&pair) {
            Some(&(failures, last)) => {
                if failures >= FREE_FAILURES {
                    let backoff = (1i64 << (failures - FREE_FAILURES).min(16)).min(MAX_BACKOFF);
                    if now < last + backoff {
                        return Err(last + backoff - now);
                    }
                }
                failures
            }
            None => 0,
        };
        if let Some(window) = counters.ips.get_mut(ip) {
            let window = window.current(now);
            if window.failures >= PER_IP_PER_HOUR {
                return Err(window.started + HOUR - now);
            }
        }
        if pair_failures > 0 {
            if let Some(window) = counters.accounts.get_mut(account) {
                let window = window.current(now);
                if window.failures >= PER_ACCOUNT_PER_HOUR {
                    return Err(window.started + HOUR - now);
                }
            }
        }
        Ok(())
    }

    /// Records a failed attempt.
    pub fn failed(&self, account: &str, ip: &str, now: i64) {
        let Ok(mut counters) = self.counters.lock() else {
            return;
        };
        let entry = counters
            .pairs
            .entry((account.to_owned(), ip.to_owned()))
            .or_insert((0, now));
        *entry = (entry.0.saturating_add(1), now);
        counters
            .ips
            .entry(ip.to_owned())
            .or_default()
            .current(now)
            .failures += 1;
        counters
            .accounts
            .entry(account.to_owned())
            .or_default()
            .current(now)
            .failures += 1;
    }

    /// Clears the pair after a successful login.
    pub fn succeeded(&self, account: &str, ip: &str) {
        if let Ok(mut counters) = self.counters.lock() {
            counters.pairs.remove(&(account.to_owned(), ip.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_backs_off_after_free_failures() {
        let throttle = Throttle::default();
        for _ in 0..FREE_FAILURES {
            assert!(throttle.check("alice", "10.0.0.1", 1000).is_ok());
            throttle.failed("alice", "10.0.0.1", 1000);
        }
        assert_eq!(throttle.check("alice", "10.0.0.1", 1000), Err(1));
        assert!(throttle.check("alice", "10.0.0.1", 1001).is_ok());
    }

    #[test]
    fn an_attacker_cannot_lock_out_the_real_user() {
        let throttle = Throttle::default();
        for i in 0..200u32 {
            let ip = format!("10.1.{}.{}", i / 250, i % 250);
            throttle.failed("alice", &ip, 1000);
        }
        // Attackers' addresses are capped…
        assert!(throttle.check("alice", "10.1.0.7", 1000).is_err());
        // …the user's own address, with no failures, is not.
        assert!(throttle.check("alice", "192.168.1.20", 1000).is_ok());
        // The cap lifts after an hour.
        assert!(throttle.check("alice", "10.1.0.7", 1000 + HOUR).is_ok());
    }
}
