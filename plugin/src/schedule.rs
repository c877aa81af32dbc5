//! When the next bundle request may start. Pure arithmetic, tested natively.

/// Longest pause between failed attempts, in milliseconds.
pub const MAX_BACKOFF_MS: u64 = 30_000;
/// First pause after a failure, in milliseconds.
pub const BASE_BACKOFF_MS: u64 = 500;

/// Pause after `failures` consecutive failures: exponential, capped, with the upper half
/// randomised by `seed` so a fleet of Envoys does not retry in lockstep.
pub fn backoff_ms(failures: u32, seed: u32) -> u64 {
    let exponent = failures.saturating_sub(1).min(16);
    let ceiling = BASE_BACKOFF_MS
        .saturating_mul(1u64 << exponent)
        .min(MAX_BACKOFF_MS);
    let half = ceiling / 2;
    half + u64::from(seed) % (half + 1)
}

/// When the next request may start after one that started at `started_ms` succeeded at
/// `now_ms`. A long poll that waited has already paced itself; a control plane that answers at
/// once is polled no more often than `refresh_interval_ms`.
pub fn next_after_success(started_ms: u64, now_ms: u64, refresh_interval_ms: u64) -> u64 {
    started_ms.saturating_add(refresh_interval_ms).max(now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!((250..=500).contains(&backoff_ms(1, 12345)));
        assert!((500..=1000).contains(&backoff_ms(2, 12345)));
        for failures in [10, 100, u32::MAX] {
            let pause = backoff_ms(failures, u32::MAX);
            assert!(
                (MAX_BACKOFF_MS / 2..=MAX_BACKOFF_MS).contains(&pause),
                "{failures}: {pause}"
            );
        }
    }

    #[test]
    fn jitter_spreads_retries() {
        let pauses: std::collections::HashSet<u64> =
            (0..50).map(|seed| backoff_ms(5, seed * 7919)).collect();
        assert!(pauses.len() > 10);
    }

    #[test]
    fn quick_answers_wait_for_the_interval_and_long_polls_do_not() {
        assert_eq!(next_after_success(1_000, 1_010, 1_000), 2_000);
        assert_eq!(next_after_success(1_000, 21_000, 1_000), 21_000);
    }
}
