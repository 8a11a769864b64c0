//! How many codes were sent to a destination prefix, and how many of them
//! were verified: the pumping guard's counts and `phonegate stats`.

use async_trait::async_trait;

use super::StoreError;
use crate::time::Timestamp;

/// One destination prefix's counts, as [`ConversionStore::prefix_counts`]
/// reads them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefixCounts {
    /// Codes really sent to the prefix since `since` (challenges with a
    /// sent prefix: decoys and test numbers are not counted).
    pub sent: u64,
    /// Of those, the ones whose challenge was consumed by the right code.
    pub verified: u64,
    /// Codes really sent to the prefix since `recent_since`.
    pub recent: u64,
}

/// The conversion of one destination prefix through one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionRow {
    /// The sent prefix (digits, no `+`): the longest configured guard
    /// prefix of the numbers, or their calling code.
    pub prefix: String,
    /// The provider that last tried the code's message; `None` when no
    /// provider has tried it yet (or its row was purged).
    pub provider: Option<String>,
    pub sent: u64,
    /// Codes whose provider's receipt said they reached the number.
    pub delivered: u64,
    pub verified: u64,
}

/// Reads the conversion of codes sent, from the challenges themselves, so
/// every instance sharing a database sees the same counts.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ConversionStore: Send + Sync {
    /// The codes sent to `prefix` created at or after `since`, how many of
    /// them were verified, and how many were created at or after
    /// `recent_since`, in one statement (one consistent snapshot).
    async fn prefix_counts(
        &self,
        prefix: &str,
        since: Timestamp,
        recent_since: Timestamp,
    ) -> Result<PrefixCounts, StoreError>;

    /// Every prefix and provider that codes were sent to and through since
    /// `since`, with their sends, deliveries and verifications, ordered by
    /// prefix then provider (`None` first).
    async fn conversion(&self, since: Timestamp) -> Result<Vec<ConversionRow>, StoreError>;
}
