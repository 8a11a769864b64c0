//! What keeps the service itself running: readiness and housekeeping.

use async_trait::async_trait;

use super::StoreError;
use crate::time::Timestamp;

/// Whether the service's own dependencies answer (for `/readyz`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Readiness: Send + Sync {
    async fn check(&self) -> Result<(), StoreError>;
}

/// How many rows one purge deleted, per table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PurgeReport {
    pub challenges: u64,
    pub session_tokens: u64,
    pub access_codes: u64,
    pub password_resets: u64,
    pub outbox: u64,
}

impl PurgeReport {
    pub fn total(&self) -> u64 {
        self.challenges + self.session_tokens + self.access_codes + self.password_resets + self.outbox
    }
}

/// Deletes what can never be used again, so tables stay bounded.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Housekeeping: Send + Sync {
    /// Deletes challenges, session tokens, access codes and password resets
    /// that expired before `cutoff` (or were revoked before it), and outbox
    /// rows that were sent, failed, dropped or written as decoys before
    /// `cutoff`, plus pending ones whose message expired before it. Works in
    /// bounded batches so no long lock is held; safe to run on several
    /// instances at once.
    async fn purge(&self, cutoff: Timestamp) -> Result<PurgeReport, StoreError>;

    /// Drops the sealed payloads of sent texts whose code expired before
    /// `now`: they were kept so that a receipt saying a text did not
    /// arrive could have it sent again, which an expired code is not worth.
    /// Returns how many it dropped.
    async fn forget_expired_payloads(&self, now: Timestamp) -> Result<u64, StoreError>;
}
