//! Counting events per key in sliding windows: the port behind every rate
//! limit and SMS budget.
//!
//! The domain decides *what* is limited (sends per phone, per client IP, the
//! global SMS budget); a [`RateLimiter`] adapter only counts. The in-memory
//! adapter serves one instance; the Redis adapter lets several instances
//! share the counts.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;
use crate::time::Timestamp;

/// At most `limit` events per sliding `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateRule {
    pub limit: u32,
    pub window: Duration,
}

impl RateRule {
    pub const fn new(limit: u32, window: Duration) -> Self {
        Self { limit, window }
    }
}

/// What a limiter says of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// The event was recorded.
    Allowed,
    /// The limit is reached; nothing was recorded. Another event fits after
    /// `retry_after` (when the oldest event in the window leaves it, unless
    /// the rule's limit was lowered since the events were recorded).
    Limited { retry_after: Duration },
}

/// One key and the rule it is counted under, as part of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateKey {
    pub key: String,
    pub rule: RateRule,
}

impl RateKey {
    pub fn new(key: impl Into<String>, rule: RateRule) -> Self {
        Self { key: key.into(), rule }
    }
}

/// What a limiter says of a batch of events that go together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchDecision {
    /// One event was recorded for every key of the batch.
    Allowed,
    /// The key at `index` (the first of the batch, in its order, whose
    /// limit is reached) refuses; nothing was recorded for any key.
    /// `retry_after` is that key's, as [`RateDecision::Limited`] has it.
    Limited { index: usize, retry_after: Duration },
}

/// Counts events per key in sliding windows.
///
/// Contract, for every adapter:
/// - `acquire` records one event for `key` at `now` if fewer than
///   `rule.limit` events were recorded for `key` in the window
///   `(now - rule.window, now]`, and answers [`RateDecision::Allowed`];
///   otherwise it records nothing and answers [`RateDecision::Limited`] with
///   the time until enough events have left the window for one more to fit
///   (at least 1 ms). Under an unchanged rule that is when the oldest event
///   leaves; if the key holds more than `limit` events because the limit was
///   lowered, it is when the one at index `count - limit` (oldest first)
///   leaves; under a limit of 0 it is the window.
/// - It is atomic: of N concurrent calls for one key at limit L, exactly
///   min(N, L) are allowed, across every process sharing the backend.
/// - A rule with `limit` 0 allows nothing; keys are opaque text chosen by the
///   domain (a phone number or email appears in them only as a keyed hash,
///   never in clear, and never a secret).
/// - Time is the `now` passed in, never the adapter's own clock; instances
///   sharing a backend need synchronised clocks.
/// - Memory is bounded: keys whose window has passed are forgotten.
/// - A backend failure is a [`StoreError`]; the caller decides whether to
///   fail open or closed.
/// - `acquire_all` is `acquire` over several distinct keys at once, all or
///   nothing: if every key would be allowed, one event is recorded for each
///   and it answers [`BatchDecision::Allowed`]; otherwise it records nothing
///   at all and answers [`BatchDecision::Limited`] naming the first key, in
///   the batch's order, that refuses. It is atomic like `acquire` (no other
///   call sees some of the batch's events without the others). An empty
///   batch is allowed. Keys within one batch must be distinct.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RateLimiter: Send + Sync {
    async fn acquire(&self, key: &str, rule: RateRule, now: Timestamp) -> Result<RateDecision, StoreError>;

    /// Records one event for every key of `batch`, or none at all (see the
    /// contract above). The domain uses it so that a send refused by one
    /// limit spends nothing of the others and creates no keys.
    async fn acquire_all(&self, batch: &[RateKey], now: Timestamp) -> Result<BatchDecision, StoreError>;
    /// What `acquire` would answer for `key` under `rule` at `now`, without
    /// recording anything: [`RateDecision::Allowed`] if one more event
    /// fits, otherwise [`RateDecision::Limited`] with the same
    /// `retry_after` that `acquire` would give. It changes no count (an
    /// adapter may still forget events that have left every window), so a
    /// caller can ask whether a key is at its limit as often as it likes.
    /// It is one atomic read; a backend failure is a [`StoreError`].
    ///
    /// Every adapter overrides it. The default answers a [`StoreError`], so
    /// a caller that relies on it fails closed with a test double that
    /// does not implement it.
    async fn peek(&self, key: &str, rule: RateRule, now: Timestamp) -> Result<RateDecision, StoreError> {
        let _ = (key, rule, now);
        Err(StoreError::new("peek", "this rate limiter cannot peek"))
    }

    /// Forgets every event recorded for `key`, as if it had never been
    /// used (the next `acquire` or `peek` counts from zero). Forgetting a
    /// key that holds nothing succeeds. It is atomic with respect to
    /// `acquire` on the same key; a backend failure is a [`StoreError`].
    ///
    /// Every adapter overrides it; the default answers a [`StoreError`].
    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        let _ = key;
        Err(StoreError::new("reset", "this rate limiter cannot reset a key"))
    }
}
