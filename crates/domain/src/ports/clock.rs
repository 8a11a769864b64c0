//! Time and randomness, as ports so tests can drive them.

use crate::time::Timestamp;

/// The current time. A port so tests can drive expiry without sleeping.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// Cryptographically secure randomness, for codes, keys and tokens.
/// Implementations must be a CSPRNG.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait RandomSource: Send + Sync {
    fn fill(&self, dest: &mut [u8]);
}
