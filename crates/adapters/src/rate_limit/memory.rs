//! The in-memory rate limiter: one process's sliding-window logs.

use std::{
    collections::{VecDeque, hash_map::RandomState},
    fmt,
    hash::BuildHasher as _,
    sync::{Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use async_trait::async_trait;
use hashlink::LinkedHashMap;
use phonegate_domain::{
    StoreError,
    rate_limit::{BatchDecision, RateDecision, RateKey, RateLimiter, RateRule},
    time::Timestamp,
};

use super::{retry_after, window_millis};

/// How many independently locked parts the map is split into, so that calls
/// for different keys rarely wait for each other.
const SHARDS: usize = 16;

/// A limiter for fewer keys than this many per shard has one shard: a
/// small map gains nothing from sharding, and its bound and its order of
/// eviction are then exact over all keys.
const MIN_KEYS_PER_SHARD: usize = 1024;

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
/// the shards of their keys (a `std::sync::Mutex` each, never held across
/// an `.await`: the whole decision is synchronous; a batch locks its shards
/// in index order, so batches never wait for each other in a cycle), chosen
/// by a randomly seeded hash of the key, so counts are exact under any
/// concurrency within the process.
///
/// Memory is bounded in two ways:
/// - Keys whose newest event has left their window are forgotten by an
///   amortised sweep (when a shard has doubled since its last sweep, and
///   periodically), and a key's old events are dropped whenever it is used.
/// - At most `max_keys` keys are held at once (1,000,000 unless built with
///   [`with_max_keys`](Self::with_max_keys); with 16,384 keys or more, each
///   of the 16 shards holds a 16th of it, below that one shard holds all).
///   A new key for a full shard makes room: first by forgetting the keys
///   whose windows have passed (a sweep, at most once per eighth of the
///   shard's size in calls, so a flood of new keys costs a bounded amount
///   of work per call), then by forgetting the least recently used key.
///   A flood of distinct keys (say, spoofed client addresses) therefore
///   costs bounded memory and never makes the limiter refuse service; what
///   it can cost is the counts of the keys left unused the longest, which
///   is why the send guard creates per-phone keys only for admitted sends.
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
    /// The logs, least recently used first.
    logs: LinkedHashMap<String, Log>,
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
    // The keys may hold hashes of phone numbers: only sizes are shown.
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

    /// A limiter holding at most `max_keys` keys at once (with 16 shards,
    /// rounded up to a multiple of 16).
    pub fn with_max_keys(max_keys: usize) -> Self {
        let shards = if max_keys >= MIN_KEYS_PER_SHARD * SHARDS {
            SHARDS
        } else {
            1
        };
        Self {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            max_keys_per_shard: max_keys.div_ceil(shards).max(1),
        }
    }

    /// How many keys are held now, stale ones not yet swept included.
    pub fn key_count(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).logs.len()).sum()
    }

    fn shard_index(&self, key: &str) -> usize {
        // The remainder is below the number of shards, so the cast back
        // cannot truncate.
        (self.hasher.hash_one(key) % self.shards.len() as u64) as usize
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

    /// Whether `key` refuses another event at `now` under `limit` and
    /// `window`, and if so for how long. A held key becomes the most
    /// recently used, refused or not: keys in use are the ones to keep.
    fn refusal(&mut self, key: &str, limit: usize, window: i64, now: i64) -> Option<Duration> {
        match self.logs.to_back(key) {
            Some(log) => {
                log.window = window;
                log.prune(now);
                log.refusal(limit, now)
            }
            None => (limit == 0).then(|| retry_after(window)),
        }
    }

    /// Records an event for `key`, which [`refusal`](Self::refusal) has just
    /// allowed, making room for it if it is new and the shard is full.
    fn record(&mut self, key: &str, window: i64, now: i64, max_keys: usize) {
        if let Some(log) = self.logs.get_mut(key) {
            log.record(now);
            return;
        }
        if self.logs.len() >= max_keys && self.calls_since_sweep >= self.logs.len() / 8 {
            self.sweep(now);
        }
        while self.logs.len() >= max_keys {
            self.logs.pop_front();
        }
        let mut log = Log {
            events: VecDeque::new(),
            window,
        };
        log.record(now);
        self.logs.insert(key.to_owned(), log);
    }

    /// Forgets `key` if a refusal left its log empty (only a limit of 0
    /// refuses an empty log), so refused new keys leave nothing behind.
    fn forget_if_empty(&mut self, key: &str) {
        if self.logs.get(key).is_some_and(|log| log.events.is_empty()) {
            self.logs.remove(key);
        }
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

    /// `None` if fewer than `limit` events are in the window (the log must
    /// have been pruned at `now`), else how long until another fits.
    fn refusal(&self, limit: usize, now: i64) -> Option<Duration> {
        let count = self.events.len();
        if count < limit {
            return None;
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
        Some(retry_after(retry_millis))
    }

    /// Records an event at `now`.
    fn record(&mut self, now: i64) {
        // Calls may arrive slightly out of order (their `now` is read
        // before the lock is taken), so the event goes where it belongs
        // to keep the log sorted: almost always at the end.
        let at = self.events.partition_point(|&event| event <= now);
        self.events.insert(at, now);
    }
}

#[async_trait]
impl RateLimiter for InMemoryRateLimiter {
    async fn acquire(&self, key: &str, rule: RateRule, now: Timestamp) -> Result<RateDecision, StoreError> {
        let now = now.unix_millis();
        let window = window_millis(rule.window);
        // A `u32` always fits a `usize` on the 32- and 64-bit targets we build for.
        let limit = rule.limit as usize;
        let mut shard = lock(&self.shards[self.shard_index(key)]);
        shard.maybe_sweep(now);
        match shard.refusal(key, limit, window, now) {
            Some(retry_after) => {
                shard.forget_if_empty(key);
                Ok(RateDecision::Limited { retry_after })
            }
            None => {
                shard.record(key, window, now, self.max_keys_per_shard);
                Ok(RateDecision::Allowed)
            }
        }
    }

    async fn acquire_all(&self, batch: &[RateKey], now: Timestamp) -> Result<BatchDecision, StoreError> {
        let now = now.unix_millis();
        let indices: Vec<usize> = batch.iter().map(|item| self.shard_index(&item.key)).collect();
        let mut order = indices.clone();
        order.sort_unstable();
        order.dedup();
        // Shards are locked in ascending order, so two batches sharing
        // shards never each hold one the other waits for.
        let mut shards: Vec<MutexGuard<'_, Shard>> = order.iter().map(|&index| lock(&self.shards[index])).collect();
        for shard in &mut shards {
            shard.maybe_sweep(now);
        }
        // `order` holds every index of `indices`, so the search finds it.
        let slot = |index: usize| order.binary_search(&index).unwrap_or_default();
        for (position, item) in batch.iter().enumerate() {
            let shard = &mut shards[slot(indices[position])];
            let refusal = shard.refusal(
                &item.key,
                item.rule.limit as usize,
                window_millis(item.rule.window),
                now,
            );
            if let Some(retry_after) = refusal {
                for (item, &index) in batch.iter().zip(&indices).take(position + 1) {
                    shards[slot(index)].forget_if_empty(&item.key);
                }
                return Ok(BatchDecision::Limited {
                    index: position,
                    retry_after,
                });
            }
        }
        for (item, &index) in batch.iter().zip(&indices) {
            let window = window_millis(item.rule.window);
            shards[slot(index)].record(&item.key, window, now, self.max_keys_per_shard);
        }
        Ok(BatchDecision::Allowed)
    }

    /// Decides as `acquire` would over the events within `rule`'s window,
    /// changing nothing, not even the key's stored window.
    async fn peek(&self, key: &str, rule: RateRule, now: Timestamp) -> Result<RateDecision, StoreError> {
        let now = now.unix_millis();
        let window = window_millis(rule.window);
        let limit = rule.limit as usize;
        let shard = lock(&self.shards[self.shard_index(key)]);
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
        lock(&self.shards[self.shard_index(key)]).logs.remove(key);
        Ok(())
    }
}
