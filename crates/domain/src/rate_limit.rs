//! Counting events per key in sliding windows: the port behind every rate
//! limit and SMS budget. The port and its values live in
//! [`crate::ports::rate_limit`]; this module keeps their old paths.

#[cfg(any(test, feature = "mocks"))]
pub use crate::ports::rate_limit::MockRateLimiter;
pub use crate::ports::rate_limit::{BatchDecision, RateDecision, RateKey, RateLimiter, RateRule};
