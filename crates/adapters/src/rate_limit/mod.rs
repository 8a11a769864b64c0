//! Rate limiters: sliding-window event logs per key, behind the domain's
//! [`RateLimiter`](phonegate_domain::rate_limit::RateLimiter) port.
//!
//! - [`InMemoryRateLimiter`]: one process's counts in a sharded map; exact,
//!   with bounded memory. Right for a single instance.
//! - [`RedisRateLimiter`]: the same semantics in Redis (one Lua script per
//!   call, so each decision is atomic), for several instances that must share
//!   their counts.
//!
//! Both keep a log of the timestamps of the events they allowed, rather than
//! a counter per fixed window, so a limit holds over *every* window of the
//! rule's length and a burst at a window boundary cannot double it. Both
//! use the `now` they are given (the domain's clock), never a clock of their
//! own, so tests can drive time by hand and every instance agrees on what
//! "now" means as long as their clocks are synchronised.

mod memory;
mod redis;

use std::time::Duration;

pub use self::{
    memory::InMemoryRateLimiter,
    redis::{DEFAULT_REDIS_TIMEOUT, RedisRateLimiter},
};

/// The longest window either adapter counts, in milliseconds (about 35,000
/// years). Longer windows are clamped to it: no real rule comes near it, and
/// it keeps every timestamp sum exact in Lua's doubles and within Redis's
/// expiry range.
const MAX_WINDOW_MILLIS: i64 = 1 << 50;

/// `window` in whole milliseconds, clamped to [`MAX_WINDOW_MILLIS`].
fn window_millis(window: Duration) -> i64 {
    i64::try_from(window.as_millis()).map_or(MAX_WINDOW_MILLIS, |millis| millis.min(MAX_WINDOW_MILLIS))
}

/// A wait in milliseconds as the `retry_after` of a refusal: at least 1 ms,
/// so a caller that sleeps for it never spins.
fn retry_after(millis: i64) -> Duration {
    Duration::from_millis(u64::try_from(millis.max(1)).unwrap_or(1))
}
