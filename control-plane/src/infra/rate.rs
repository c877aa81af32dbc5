//! Rate limits as a GCRA (generic cell rate algorithm): a bucket of `burst` tokens refilled one
//! per `emission`, kept as one number per key, the theoretical arrival time. It is the rule of the
//! login throttle's account bucket and of per-client limits such as revocation (each revocation
//! changes the bundle every edge follows, so one client must not be able to flood it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Takes a token at `now` from a bucket whose theoretical arrival time is `tat`: the new `tat`,
/// or `Err(wait)` until a token is free. Units are the caller's (seconds, milliseconds).
pub fn take(tat: i64, now: i64, emission: i64, burst: i64) -> Result<i64, i64> {
    let tolerance = (burst - 1) * emission;
    let tat = tat.max(now);
    if tat - now > tolerance {
        return Err(tat - now - tolerance);
    }
    Ok(tat + emission)
}

/// Keys above which stale entries are pruned.
const PRUNE_ABOVE: usize = 10_000;

/// A per-key limit kept in this process.
#[derive(Debug)]
pub struct Limiter {
    burst: i64,
    emission_ms: i64,
    started: Instant,
    buckets: Mutex<HashMap<String, i64>>,
}

impl Limiter {
    /// `burst` at once, then `per_second` a second.
    pub fn new(burst: u32, per_second: u32) -> Self {
        Limiter {
            burst: i64::from(burst.max(1)),
            emission_ms: 1000 / i64::from(per_second.max(1)),
            started: Instant::now(),
            buckets: Mutex::default(),
        }
    }

    /// Takes a token for `key`, or `Err(retry_after_seconds)` (at least 1).
    pub fn check(&self, key: &str) -> Result<(), i64> {
        let now = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let Ok(mut buckets) = self.buckets.lock() else {
            return Err(1);
        };
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, tat| *tat > now);
        }
        let tat = buckets.get(key).copied().unwrap_or(now);
        match take(tat, now, self.emission_ms, self.burst) {
            Ok(tat) => {
                buckets.insert(key.to_owned(), tat);
                Ok(())
            }
            Err(wait_ms) => Err((wait_ms + 999) / 1000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_one_per_emission() {
        let mut tat = 0;
        for _ in 0..3 {
            tat = take(tat, 100, 10, 3).expect("within the burst");
        }
        assert_eq!(take(tat, 100, 10, 3), Err(10));
        assert!(take(tat, 110, 10, 3).is_ok(), "one token refilled");
    }

    #[test]
    fn a_limiter_keeps_keys_apart() {
        let limiter = Limiter::new(2, 1);
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        assert_eq!(limiter.check("a"), Err(1));
        assert!(limiter.check("b").is_ok(), "another key has its own bucket");
    }
}
