//! The in-memory rate limiter: one process's sliding-window logs.

use std::{
    collections::{HashMap, VecDeque, hash_map::RandomState},
    fmt,
    hash::BuildHasher as _,
    sync::{Mutex, MutexGuard, PoisonError},
};

use async_trait::async_trait;
use phonegate_domain::{
    StoreError,
    rate_limit::{RateDecision, RateLimiter, RateRule},
    time::Timestamp,
};

use super::{retry_after, window_millis};

/// How many independently locked parts the map is split into, so that calls
/// for different keys rarely wait for each other.
const SHARDS: usize = 16;

/// The default bound on keys held at once (about 150 MB at worst).
const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// A shard sweeps at least once per this many calls (or per as many calls
/// as it holds keys, if that is more, which keeps the sweep's cost per call
/// constant), so stale keys go even when the map does not grow.
const SWEEP_EVERY_CALLS: usize = 4096;

/// A shard also sweeps whenever it has doubled since its last sweep, but
/// never below this size: sweeping a handful of keys is not worth it.
const MIN_SWEEP_LEN: usize = 64;

/// Counts events per key in sliding windows, in this process's memory.
///
/// Each key has a log of the timestamps of the events it allowed, kept in
/// order, and holds at most `limit` of them within the window. Calls lock
/// one of 16 shards (a `std::sync::Mutex`, never held across an `.await`:
/// the whole decision is synchronous) chosen by a randomly seeded hash of
/// the key, so counts are exact under any concurrency within the process.
///
/// Memory is bounded in two ways:
/// - Keys whose newest event has left their window are forgotten by an
///   amortised sweep (when a shard has doubled since its last sweep, and
///   periodically), and a key's old events are dropped whenever it is used.
/// - At most `max_keys` keys are held at once (1,000,000 unless built with
///   [`with_max_keys`](Self::with_max_keys); each of the 16 shards holds up
///   to a 16th of it). When a shard is full even after a sweep, `acquire`
///   for a *new* key in it answers a [`StoreError`] (keys already held work
///   as usual), and the caller chooses to fail open or closed, as with any
///   backend failure. A flood of distinct keys (say, spoofed client
///   addresses) therefore costs bounded memory and cannot evict the counts
///   of keys in use.
///
/// It counts for one process only: with several instances, use
/// [`RedisRateLimiter`](super::RedisRateLimiter).
pub struct InMemoryRateLimiter {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    max_keys_per_shard: usize,
}

#[derive(Default)]
struct Shard {
    logs: HashMap<String, Log>,
    calls_since_sweep: usize,
    sweep_at_len: usize,
}

/// One key's allowed events, oldest first, and the window of the rule it
/// was last used with (which the sweep needs to tell when it is stale).
struct Log {
    events: VecDeque<i64>,
    window: i64,
}

impl Default for InMemoryRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for InMemoryRateLimiter {
    // The keys may hold phone numbers: only sizes are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryRateLimiter")
            .field("shards", &self.shards.len())
            .field("max_keys", &(self.max_keys_per_shard * self.shards.len()))
            .field("key_count", &self.key_count())
            .finish()
    }
}

impl InMemoryRateLimiter {
    /// A limiter holding at most 1,000,000 keys at once.
    pub fn new() -> Self {
        Self::with_max_keys(DEFAULT_MAX_KEYS)
    }

    /// A limiter holding at most `max_keys` keys at once (rounded up to a
    /// multiple of 16, the number of shards, each holding a 16th).
    pub fn with_max_keys(max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            max_keys_per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    /// How many keys are held now, stale ones not yet swept included.
    pub fn key_count(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).logs.len()).sum()
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        // The remainder is below SHARDS, so the cast back cannot truncate.
        let index = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        lock(&self.shards[index])
    }
}

/// Locks a shard. A poisoned lock is taken over: no code panics between
/// changes that must go together, so the map is consistent either way, and
/// one panic must not disable rate limiting for good.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shard {
    /// Forgets the keys whose newest event has left its window, when the
    /// shard has doubled since the last sweep or enough calls have passed.
    fn maybe_sweep(&mut self, now: i64) {
        self.calls_since_sweep += 1;
        if self.logs.len() >= self.sweep_at_len.max(MIN_SWEEP_LEN)
            || self.calls_since_sweep >= SWEEP_EVERY_CALLS.max(self.logs.len())
        {
            self.sweep(now);
        }
    }

    fn sweep(&mut self, now: i64) {
        self.logs.retain(|_, log| log.is_live(now));
        self.calls_since_sweep = 0;
        self.sweep_at_len = self.logs.len().saturating_mul(2);
    }
}

impl Log {
    /// Whether an event is still within the window (`(now - window, now]`).
    fn is_live(&self, now: i64) -> bool {
        self.events
            .back()
            .is_some_and(|&newest| newest > now.saturating_sub(self.window))
    }

    /// Drops the events that have left the window.
    fn prune(&mut self, now: i64) {
        let horizon = now.saturating_sub(self.window);
        while self.events.front().is_some_and(|&oldest| oldest <= horizon) {
            self.events.pop_front();
        }
    }

    /// Records an event at `now` if fewer than `limit` are in the window;
    /// the log must have been pruned at `now`.
    fn acquire(&mut self, limit: usize, now: i64) -> RateDecision {
        let count = self.events.len();
        if count < limit {
            // Calls may arrive slightly out of order (their `now` is read
            // before the lock is taken), so the event goes where it belongs
            // to keep the log sorted: almost always at the end.
            let at = self.events.partition_point(|&event| event <= now);
            self.events.insert(at, now);
            return RateDecision::Allowed;
        }
        // Another event fits once `count - limit + 1` events have left the
        // window, that is when the one at index `count - limit` leaves (the
        // oldest, unless the rule's limit was lowered). Under a limit of 0
        // nothing ever fits; the window is as good an answer as any.
        let retry_millis = match limit {
            0 => self.window,
            _ => self.events[count - limit]
                .saturating_add(self.window)
                .saturating_sub(now),
        };
        RateDecision::Limited {
            retry_after: retry_after(retry_millis),
        }
    }
}

#[async_trait]
impl RateLimiter for InMemoryRateLimiter {
    async fn acquire(&self, key: &str, rule: RateRule, now: Timestamp) -> Result<RateDecision, StoreError> {
        let now = now.unix_millis();
        let window = window_millis(rule.window);
        // A `u32` always fits a `usize` on the 32- and 64-bit targets we build for.
        let limit = rule.limit as usize;
        let mut shard = self.shard(key);
        shard.maybe_sweep(now);

        if let Some(log) = shard.logs.get_mut(key) {
            log.window = window;
            log.prune(now);
            let decision = log.acquire(limit, now);
            if log.events.is_empty() {
                // Only a refusal under a limit of 0 leaves an empty log.
                shard.logs.remove(key);
            }
            return Ok(decision);
        }

        let mut log = Log {
            events: VecDeque::new(),
            window,
        };
        let decision = log.acquire(limit, now);
        if decision == RateDecision::Allowed {
            if shard.logs.len() >= self.max_keys_per_shard {
                shard.sweep(now);
            }
            if shard.logs.len() >= self.max_keys_per_shard {
                return Err(StoreError(format!(
                    "the in-memory rate limiter holds its maximum of {} keys (per shard) within their windows",
                    self.max_keys_per_shard
                )));
            }
            shard.logs.insert(key.to_owned(), log);
        }
        Ok(decision)
    }

    /// Decides as `acquire` would over the events within `rule`'s window,
    /// changing nothing, not even the key's stored window.
    async fn peek(&self, key: &str, rule: RateRule, now: Timestamp) -> Result<RateDecision, StoreError> {
        let now = now.unix_millis();
        let window = window_millis(rule.window);
        let limit = rule.limit as usize;
        let shard = self.shard(key);
        let Some(log) = shard.logs.get(key) else {
            return Ok(if limit > 0 {
                RateDecision::Allowed
            } else {
                RateDecision::Limited {
                    retry_after: retry_after(window),
                }
            });
        };
        // The log is sorted, so the events within the window are a suffix.
        let horizon = now.saturating_sub(window);
        let first_live = log.events.partition_point(|&event| event <= horizon);
        let count = log.events.len() - first_live;
        if count < limit {
            return Ok(RateDecision::Allowed);
        }
        let retry_millis = match limit {
            0 => window,
            _ => log.events[first_live + count - limit]
                .saturating_add(window)
                .saturating_sub(now),
        };
        Ok(RateDecision::Limited {
            retry_after: retry_after(retry_millis),
        })
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.shard(key).logs.remove(key);
        Ok(())
    }
}
