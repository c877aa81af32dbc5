//! Login throttling that bounds guessing per account, whatever the number of addresses, without
//! letting an attacker lock the real user out.
//!
//! The rules, each against one way of guessing:
//! - **Per account** (a botnet, one guess per address): every attempt from an address that has
//!   not signed in to the account before takes a token from the account's bucket (10 at once,
//!   then one per 40 s, a GCRA); a failure keeps it, a success gives it back. So at most 100
//!   failures per hour reach the password check, and a new address waits at most 40 s.
//! - **Known addresses** (the real user): an address group that signed in to the account in the
//!   last 30 days is not charged to the bucket, so an attack on the account does not keep its
//!   owner out. Its own failures still back off.
//! - **Per (account, address)**: after 5 failures, 2 s, 4 s, 8 s … up to 5 min between attempts.
//! - **Per address** (one host trying many accounts): 300 failures per hour.
//! - **One-time codes**: 5 wrong codes per account per 15 minutes, then none is accepted until
//!   the window ends. Only someone who knows the password gets that far, so this is a hard cap.
//! - **Concurrent attempts** for one account queue (up to 3 s) instead of racing the counters.
//!
//! IPv6 addresses are grouped by /64 (one host usually holds a whole /64); IPv4 addresses count
//! alone. With `REDIS_URL` the counters are shared by every replica and change in single Lua
//! calls; they are also kept in this process, which decides while Redis is unreachable
//! (fallback, never fail-open).

use crate::infra::redis::{Redis, RedisError};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Failures per (account, address) before backoff starts.
const FREE_FAILURES: u32 = 5;
/// Longest backoff per (account, address), seconds.
const MAX_BACKOFF: i64 = 300;
/// Failures an address group may make per hour across all accounts.
const PER_IP_PER_HOUR: u32 = 300;
/// Attempts from new addresses an account takes at once.
const ACCOUNT_BURST: i64 = 10;
/// Seconds per further attempt from new addresses.
const ACCOUNT_EMISSION: i64 = 40;
/// Failures per account per hour from addresses that never signed in to it.
pub const PER_ACCOUNT_PER_HOUR: u32 = 100;
const _: () = assert!(ACCOUNT_BURST + HOUR / ACCOUNT_EMISSION <= PER_ACCOUNT_PER_HOUR as i64);
/// Wrong one-time codes per account per [`OTP_WINDOW`].
pub const OTP_FAILURES: u32 = 5;
const OTP_WINDOW: i64 = 15 * 60;
/// How long an address group stays known after a sign-in.
const KNOWN_FOR: i64 = 30 * 24 * 3600;
/// How long an attempt waits for another attempt on the same account.
const QUEUE_WAIT: Duration = Duration::from_secs(3);
const HOUR: i64 = 3600;
/// Entries kept in memory before stale ones are pruned.
const PRUNE_ABOVE: usize = 100_000;

/// A fixed window of failures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Window {
    started: i64,
    failures: u32,
}

impl Window {
    fn live(&self, now: i64, length: i64) -> bool {
        self.failures > 0 && now - self.started < length
    }

    fn add(&mut self, now: i64, length: i64) {
        if !self.live(now, length) {
            *self = Window {
                started: now,
                failures: 0,
            };
        }
        self.failures = self.failures.saturating_add(1);
    }
}

/// What the per-address rules need to know about one attempt.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    /// Failures of this (account, address) pair and when the last one happened.
    pair: Option<(u32, i64)>,
    ip: Window,
    /// Whether the address signed in to the account recently.
    known: bool,
}

/// The per-address rules: `Err(retry_after_seconds)` when the attempt must wait.
fn decide(counts: &Counts, now: i64) -> Result<(), i64> {
    if let Some((failures, last)) = counts.pair {
        if failures >= FREE_FAILURES {
            // 2 s, 4 s, 8 s, … capped. Times have second resolution, so the first step is 2 s
            // to be sure it is at least one whole second.
            let backoff = (2i64 << (failures - FREE_FAILURES).min(16)).min(MAX_BACKOFF);
            if now < last + backoff {
                return Err(last + backoff - now);
            }
        }
    }
    if counts.ip.live(now, HOUR) && counts.ip.failures >= PER_IP_PER_HOUR {
        return Err(counts.ip.started + HOUR - now);
    }
    Ok(())
}

/// The account bucket ([`crate::infra::rate::take`] in seconds): the new `tat` when a token may be
/// taken now, else `Err(retry_after_seconds)`.
fn take_token(tat: i64, now: i64) -> Result<i64, i64> {
    crate::infra::rate::take(tat, now, ACCOUNT_EMISSION, ACCOUNT_BURST)
}

/// The same rule as [`take_token`], atomically in Redis. KEYS: bucket; ARGV: now, emission,
/// tolerance. Returns 0 when taken, else the seconds to wait.
const TAKE_TOKEN: &str = r"
local now = tonumber(ARGV[1])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
local wait = tat - now - tonumber(ARGV[3])
if wait > 0 then return wait end
redis.call('SET', KEYS[1], tat + tonumber(ARGV[2]), 'EX', tat + tonumber(ARGV[2]) - now + 1)
return 0
";

/// A failure. KEYS: pair, address; ARGV: now.
const FAILED: &str = r"
redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'last', ARGV[1])
redis.call('EXPIRE', KEYS[1], 3600)
if redis.call('INCR', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], 3600) end
";

/// A success. KEYS: pair, known, bucket; ARGV: known-for seconds, emission (0: no refund).
const SUCCEEDED: &str = r"
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[3]))
if tat and tonumber(ARGV[2]) > 0 then
  local ttl = redis.call('TTL', KEYS[3])
  if ttl > 0 then redis.call('SET', KEYS[3], tat - tonumber(ARGV[2]), 'EX', ttl) end
end
";

/// A wrong one-time code. KEYS: counter; ARGV: window seconds.
const OTP_FAILED: &str = r"
if redis.call('INCR', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
";

#[derive(Debug, Default)]
struct Local {
    pairs: HashMap<(String, String), (u32, i64)>,
    ips: HashMap<String, Window>,
    buckets: HashMap<String, i64>,
    known: HashMap<(String, String), i64>,
    otp: HashMap<String, Window>,
}

impl Local {
    fn prune(&mut self, now: i64) {
        let size = self.pairs.len() + self.ips.len() + self.buckets.len() + self.known.len();
        if size + self.otp.len() > PRUNE_ABOVE {
            self.pairs.retain(|_, (_, last)| now - *last < HOUR);
            self.ips.retain(|_, w| w.live(now, HOUR));
            self.buckets.retain(|_, tat| *tat > now);
            self.known.retain(|_, at| now - *at < KNOWN_FOR);
            self.otp.retain(|_, w| w.live(now, OTP_WINDOW));
        }
    }
}

/// Shared throttle state.
#[derive(Debug, Default)]
pub struct Throttle {
    local: Mutex<Local>,
    redis: Option<Redis>,
    queues: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The address group an address is counted under: IPv4 alone, IPv6 by /64.
pub fn address_group(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_owned(),
    }
}

fn account_key(account: &str) -> String {
    let digest = Sha256::digest(account.as_bytes());
    crate::keys::secrets::hex(&digest[..16])
}

/// Redis keys of one attempt.
#[derive(Debug)]
struct Keys {
    pair: String,
    ip: String,
    bucket: String,
    known: String,
    otp: String,
}

impl Keys {
    fn new(account: &str, group: &str) -> Self {
        let account = account_key(account);
        Keys {
            pair: format!("portcullis:throttle:pair:{account}:{group}"),
            ip: format!("portcullis:throttle:ip:{group}"),
            bucket: format!("portcullis:throttle:account:{account}"),
            known: format!("portcullis:throttle:known:{account}:{group}"),
            otp: format!("portcullis:throttle:otp:{account}"),
        }
    }
}

/// One login attempt in progress for an account: it holds the account's queue until dropped,
/// and records the outcome.
#[derive(Debug)]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    account: String,
    group: String,
    /// Whether a token was taken from the account bucket (given back on success).
    charged: bool,
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// Its Redis keys, made once (with Redis only).
    keys: Option<Keys>,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        drop(self.turn.take());
        if let Ok(mut queues) = self.throttle.queues.lock() {
            // Nobody else waits or holds the account's turn: forget it.
            if queues
                .get(&self.account)
                .is_some_and(|q| Arc::strong_count(q) == 1)
            {
                queues.remove(&self.account);
            }
        }
    }
}

fn warn(error: &RedisError) {
    tracing::warn!(%error, "login throttle: redis unavailable, using local counters");
}

impl Throttle {
    /// A throttle sharing its counters through `redis` (local only with `None`).
    pub fn new(redis: Option<Redis>) -> Self {
        Throttle {
            redis,
            ..Throttle::default()
        }
    }

    /// Checks every rule, takes a token from the account's bucket for an address new to the
    /// account, then waits for the account's turn: the attempt to record the outcome on, or
    /// `Err(retry_after_seconds)`. Refusals are answered before the queue, so a flood of refused
    /// attempts cannot hold it against the owner.
    pub async fn start(&self, account: &str, ip: &str, now: i64) -> Result<Attempt<'_>, i64> {
        let group = address_group(ip);
        let mut attempt = Attempt {
            throttle: self,
            keys: self.redis.as_ref().map(|_| Keys::new(account, &group)),
            account: account.to_owned(),
            group,
            charged: false,
            turn: None,
        };
        let counts = self.counts(&attempt, now).await;
        decide(&counts, now)?;
        if !counts.known {
            self.take_token(&attempt, now).await?;
            attempt.charged = true;
        }
        let queue = {
            let mut queues = self.queues.lock().map_err(|_| 1i64)?;
            queues.entry(account.to_owned()).or_default().clone()
        };
        let turn = tokio::time::timeout(QUEUE_WAIT, queue.lock_owned())
            .await
            .map_err(|_| 1i64)?;
        attempt.turn = Some(turn);
        // An attempt from the same address may have failed while this one waited.
        decide(&self.counts(&attempt, now).await, now)?;
        Ok(attempt)
    }

    /// What this process and, when reachable, Redis know, the stricter of the two: a Redis
    /// that answers reads but refuses writes (a read-only replica, out of memory) would report
    /// no failures at all.
    async fn counts(&self, attempt: &Attempt<'_>, now: i64) -> Counts {
        let local = self.local_counts(attempt, now);
        let (Some(redis), Some(keys)) = (&self.redis, &attempt.keys) else {
            return local;
        };
        match shared_counts(redis, keys, now).await {
            Ok(shared) => stricter(local, shared, now),
            Err(error) => {
                warn(&error);
                local
            }
        }
    }

    fn local_counts(&self, attempt: &Attempt<'_>, now: i64) -> Counts {
        let Ok(local) = self.local.lock() else {
            return Counts::default();
        };
        let pair_key = (attempt.account.clone(), attempt.group.clone());
        Counts {
            pair: local.pairs.get(&pair_key).copied(),
            ip: local.ips.get(&attempt.group).copied().unwrap_or_default(),
            known: local
                .known
                .get(&pair_key)
                .is_some_and(|at| now - at < KNOWN_FOR),
        }
    }

    async fn take_token(&self, attempt: &Attempt<'_>, now: i64) -> Result<(), i64> {
        let local = {
            let Ok(mut local) = self.local.lock() else {
                return Err(1);
            };
            let tat = local.buckets.get(&attempt.account).copied().unwrap_or(now);
            let taken = take_token(tat, now);
            if let Ok(tat) = taken {
                local.buckets.insert(attempt.account.clone(), tat);
            }
            taken
        };
        if let (Some(redis), Some(keys)) = (&self.redis, &attempt.keys) {
            let shared: Result<i64, RedisError> = invoke(
                redis,
                &SCRIPTS.take_token,
                &[&keys.bucket],
                &[
                    now,
                    ACCOUNT_EMISSION,
                    (ACCOUNT_BURST - 1) * ACCOUNT_EMISSION,
                ],
            )
            .await;
            match shared {
                // Either refusing refuses: this process's count is part of the shared one.
                Ok(0) => return local.map(drop),
                Ok(wait) => return Err(wait),
                Err(error) => warn(&error),
            }
        }
        local.map(drop)
    }
}

/// The stricter of two views of one attempt: more failures, and known if either saw a sign-in.
fn stricter(a: Counts, b: Counts, now: i64) -> Counts {
    let pair = match (a.pair, b.pair) {
        (Some((fa, la)), Some((fb, lb))) => Some((fa.max(fb), la.max(lb))),
        (one, other) => one.or(other),
    };
    let live = |w: &Window| if w.live(now, HOUR) { w.failures } else { 0 };
    let ip = if live(&a.ip) >= live(&b.ip) {
        a.ip
    } else {
        b.ip
    };
    Counts {
        pair,
        ip,
        known: a.known || b.known,
    }
}

/// The Lua scripts, hashed once (`EVALSHA`, falling back to `EVAL` after a Redis restart).
struct Scripts {
    take_token: redis::Script,
    failed: redis::Script,
    succeeded: redis::Script,
    otp_failed: redis::Script,
}

static SCRIPTS: std::sync::LazyLock<Scripts> = std::sync::LazyLock::new(|| Scripts {
    take_token: redis::Script::new(TAKE_TOKEN),
    failed: redis::Script::new(FAILED),
    succeeded: redis::Script::new(SUCCEEDED),
    otp_failed: redis::Script::new(OTP_FAILED),
});

async fn invoke<T: redis::FromRedisValue>(
    redis: &Redis,
    script: &'static redis::Script,
    keys: &[&str],
    args: &[i64],
) -> Result<T, RedisError> {
    redis
        .run(|mut c| {
            let mut call = script.prepare_invoke();
            for key in keys {
                call.key(*key);
            }
            for arg in args {
                call.arg(*arg);
            }
            async move { call.invoke_async(&mut c).await }
        })
        .await
}

/// Pair failures and last failure, address failures and window TTL, known address.
type Read = ((Option<u32>, Option<i64>), Option<u32>, i64, bool);

async fn shared_counts(redis: &Redis, keys: &Keys, now: i64) -> Result<Counts, RedisError> {
    let ((failures, last), ip_failures, ip_ttl, known): Read = redis
        .run(|mut c| {
            let read = redis::pipe()
                .hmget(&keys.pair, &["failures", "last"])
                .get(&keys.ip)
                .ttl(&keys.ip)
                .exists(&keys.known)
                .clone();
            async move { read.query_async(&mut c).await }
        })
        .await?;
    let ip = match ip_failures {
        Some(failures) if ip_ttl > 0 => Window {
            started: now - (HOUR - ip_ttl),
            failures,
        },
        _ => Window::default(),
    };
    Ok(Counts {
        pair: failures.zip(last),
        ip,
        known,
    })
}

impl Attempt<'_> {
    /// Records a failed attempt (a wrong password, or a wrong or missing one-time code).
    pub async fn failed(&self, now: i64) {
        let throttle = self.throttle;
        if let Ok(mut local) = throttle.local.lock() {
            let entry = local
                .pairs
                .entry((self.account.clone(), self.group.clone()))
                .or_insert((0, now));
            *entry = (entry.0.saturating_add(1), now);
            local
                .ips
                .entry(self.group.clone())
                .or_default()
                .add(now, HOUR);
            local.prune(now);
        }
        if let (Some(redis), Some(keys)) = (&throttle.redis, &self.keys) {
            let shared: Result<(), RedisError> =
                invoke(redis, &SCRIPTS.failed, &[&keys.pair, &keys.ip], &[now]).await;
            if let Err(error) = shared {
                tracing::warn!(%error, "login throttle: could not share a failure");
            }
        }
    }

    /// Records a successful sign-in: the pair's failures are forgotten, the address becomes
    /// known to the account, and the bucket token is given back.
    pub async fn succeeded(&self, now: i64) {
        let throttle = self.throttle;
        let pair_key = (self.account.clone(), self.group.clone());
        if let Ok(mut local) = throttle.local.lock() {
            local.pairs.remove(&pair_key);
            if self.charged {
                if let Some(tat) = local.buckets.get_mut(&self.account) {
                    *tat -= ACCOUNT_EMISSION;
                }
            }
            local.known.insert(pair_key, now);
        }
        if let (Some(redis), Some(keys)) = (&throttle.redis, &self.keys) {
            let refund = if self.charged { ACCOUNT_EMISSION } else { 0 };
            let shared: Result<(), RedisError> = invoke(
                redis,
                &SCRIPTS.succeeded,
                &[&keys.pair, &keys.known, &keys.bucket],
                &[KNOWN_FOR, refund],
            )
            .await;
            if let Err(error) = shared {
                tracing::warn!(%error, "login throttle: could not share a success");
            }
        }
    }

    /// Whether a one-time code may be checked now (fewer than [`OTP_FAILURES`] wrong codes for
    /// this account in the window).
    pub async fn otp_allowed(&self, now: i64) -> bool {
        let local = self.throttle.local.lock().is_ok_and(|local| {
            local
                .otp
                .get(&self.account)
                .is_none_or(|w| !w.live(now, OTP_WINDOW) || w.failures < OTP_FAILURES)
        });
        if let (Some(redis), Some(keys)) = (&self.throttle.redis, &self.keys) {
            let shared: Result<Option<u32>, RedisError> = redis
                .run(|mut c| {
                    let get = redis::cmd("GET").arg(&keys.otp).clone();
                    async move { get.query_async(&mut c).await }
                })
                .await;
            match shared {
                Ok(failures) => return local && failures.unwrap_or(0) < OTP_FAILURES,
                Err(error) => warn(&error),
            }
        }
        local
    }

    /// Records a wrong or missing one-time code (on top of [`Attempt::failed`]).
    pub async fn otp_failed(&self, now: i64) {
        if let Ok(mut local) = self.throttle.local.lock() {
            local
                .otp
                .entry(self.account.clone())
                .or_default()
                .add(now, OTP_WINDOW);
        }
        if let (Some(redis), Some(keys)) = (&self.throttle.redis, &self.keys) {
            let shared: Result<(), RedisError> =
                invoke(redis, &SCRIPTS.otp_failed, &[&keys.otp], &[OTP_WINDOW]).await;
            if let Err(error) = shared {
                tracing::warn!(%error, "login throttle: could not share a one-time-code failure");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fail(throttle: &Throttle, account: &str, ip: &str, now: i64) -> Result<(), i64> {
        let attempt = throttle.start(account, ip, now).await?;
        attempt.failed(now).await;
        Ok(())
    }

    #[tokio::test]
    async fn a_pair_backs_off_after_free_failures() {
        let throttle = Throttle::default();
        for _ in 0..FREE_FAILURES {
            assert!(fail(&throttle, "alice", "10.0.0.1", 1000).await.is_ok());
        }
        assert_eq!(fail(&throttle, "alice", "10.0.0.1", 1000).await, Err(2));
        assert_eq!(fail(&throttle, "alice", "10.0.0.1", 1001).await, Err(1));
        // Each further failure doubles the wait.
        assert!(fail(&throttle, "alice", "10.0.0.1", 1002).await.is_ok());
        assert_eq!(fail(&throttle, "alice", "10.0.0.1", 1002).await, Err(4));
    }

    #[tokio::test]
    async fn attempts_for_one_account_wait_their_turn() {
        let throttle = Throttle::default();
        let first = throttle.start("alice", "10.0.0.1", 1000).await.unwrap();
        let started = std::time::Instant::now();
        let (second, ()) = tokio::join!(throttle.start("alice", "10.0.0.2", 1000), async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(first);
        });
        assert!(second.is_ok(), "the second attempt was refused, not queued");
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(
            throttle.start("bob", "10.0.0.1", 1000).await.is_ok(),
            "another account does not wait"
        );
    }

    #[tokio::test]
    async fn a_botnet_gets_at_most_the_hourly_bound_of_guesses_per_account() {
        let throttle = Throttle::default();
        let mut evaluated = 0;
        // One guess per second for an hour, each from a fresh address.
        for second in 0..HOUR {
            let ip = format!(
                "10.{}.{}.{}",
                second / 65536,
                (second / 256) % 256,
                second % 256
            );
            if fail(&throttle, "alice", &ip, 1000 + second).await.is_ok() {
                evaluated += 1;
            }
        }
        assert!(
            evaluated <= PER_ACCOUNT_PER_HOUR,
            "{evaluated} guesses evaluated in one hour"
        );
        assert!(evaluated >= 90, "the bucket refills: {evaluated}");
    }

    #[tokio::test]
    async fn the_real_user_passes_from_a_known_address_during_an_attack() {
        let throttle = Throttle::default();
        throttle
            .start("alice", "192.168.1.20", 900)
            .await
            .unwrap()
            .succeeded(900)
            .await;
        for i in 0..50u32 {
            let _ = fail(&throttle, "alice", &format!("10.1.0.{i}"), 1000).await;
        }
        assert!(
            fail(&throttle, "alice", "10.1.0.99", 1000).await.is_err(),
            "the bucket is empty for new addresses"
        );
        assert!(
            throttle.start("alice", "192.168.1.20", 1000).await.is_ok(),
            "the known address is refused"
        );
        let wait = fail(&throttle, "alice", "172.16.0.1", 1000)
            .await
            .unwrap_err();
        assert!(
            wait <= ACCOUNT_EMISSION * 2,
            "a new address waits a bounded time, not {wait} s"
        );
    }

    #[tokio::test]
    async fn refused_attempts_do_not_wait_in_the_queue() {
        let throttle = Throttle::default();
        throttle
            .start("alice", "192.168.1.20", 900)
            .await
            .unwrap()
            .succeeded(900)
            .await;
        for i in 0..ACCOUNT_BURST {
            let _ = fail(&throttle, "alice", &format!("10.5.0.{i}"), 1000).await;
        }
        let owner = throttle.start("alice", "192.168.1.20", 1000).await.unwrap();
        let started = std::time::Instant::now();
        for i in 0..20 {
            assert!(throttle
                .start("alice", &format!("10.6.0.{i}"), 1000)
                .await
                .is_err());
        }
        assert!(
            started.elapsed() < QUEUE_WAIT / 4,
            "refusals waited for the owner's turn: {:?}",
            started.elapsed()
        );
        drop(owner);
    }

    #[tokio::test]
    async fn a_success_gives_the_token_back() {
        let throttle = Throttle::default();
        for i in 0..30u32 {
            let attempt = throttle
                .start("alice", &format!("10.2.0.{i}"), 1000)
                .await
                .unwrap_or_else(|wait| panic!("attempt {i} refused for {wait} s"));
            attempt.succeeded(1000).await;
        }
    }

    #[tokio::test]
    async fn one_time_codes_are_capped_per_account() {
        let throttle = Throttle::default();
        for i in 0..OTP_FAILURES {
            let attempt = throttle
                .start("alice", &format!("10.3.0.{i}"), 1000)
                .await
                .unwrap();
            assert!(attempt.otp_allowed(1000).await);
            attempt.failed(1000).await;
            attempt.otp_failed(1000).await;
        }
        let attempt = throttle.start("alice", "10.3.1.1", 1000).await.unwrap();
        assert!(!attempt.otp_allowed(1000).await, "a sixth code is checked");
        assert!(
            attempt.otp_allowed(1000 + OTP_WINDOW).await,
            "the cap lifts when the window ends"
        );
    }

    #[test]
    fn ipv6_addresses_count_by_64() {
        assert_eq!(
            address_group("2001:db8:1:2:aaaa::1"),
            address_group("2001:db8:1:2:bbbb:cccc:dddd:eeee")
        );
        assert_ne!(
            address_group("2001:db8:1:2::1"),
            address_group("2001:db8:1:3::1")
        );
        assert_eq!(address_group("::ffff:10.0.0.1"), "10.0.0.1");
        assert_ne!(address_group("10.0.0.1"), address_group("10.0.0.2"));
    }

    #[tokio::test]
    async fn one_address_is_capped_across_accounts() {
        let throttle = Throttle::default();
        for i in 0..PER_IP_PER_HOUR {
            let _ = fail(&throttle, &format!("user{i}"), "10.4.0.1", 1000).await;
        }
        assert!(fail(&throttle, "someone-else", "10.4.0.1", 1000)
            .await
            .is_err());
        assert!(fail(&throttle, "someone-else", "10.4.0.2", 1000)
            .await
            .is_ok());
    }
}
