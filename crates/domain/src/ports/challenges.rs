//! OTP challenges as the engine stores them.

use async_trait::async_trait;

use super::{StoreError, outbox::Outgoing};
use crate::{
    otp::{
        code::{ChallengeId, Channel, Purpose},
        secret::SecretHash,
    },
    phone::PhoneNumber,
    time::Timestamp,
    user::UserId,
};

/// A challenge to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChallenge {
    pub purpose: Purpose,
    pub phone: PhoneNumber,
    /// The user the code signs in; `None` for a decoy challenge (see
    /// [`crate::otp::OtpEngine::issue_decoy`]) or a number with no user yet.
    pub user_id: Option<UserId>,
    pub channel: Channel,
    /// A device the code is bound to (phone-login's `device_id`).
    pub device_binding: Option<String>,
    pub lookup_hash: SecretHash,
    pub code_hash: SecretHash,
    pub max_attempts: u32,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// The destination prefix (digits) the code is sent to, counted by the
    /// pumping guard and `phonegate stats`; `None` when nothing is sent (a
    /// decoy, a test number). Stores write it only with a message that is
    /// really queued.
    pub sent_prefix: Option<String>,
}

/// A live challenge on which one attempt has just been spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeAttempt {
    pub id: ChallengeId,
    pub phone: PhoneNumber,
    pub user_id: Option<UserId>,
    pub device_binding: Option<String>,
    pub code_hash: SecretHash,
    /// Attempts spent so far, this one included.
    pub attempts: u32,
    pub max_attempts: u32,
    pub expires_at: Timestamp,
    /// Whether a provider made the code (its message asked Twilio Verify
    /// to send one), so only that provider can check it; `None` for a
    /// challenge written before this was recorded, checked by the checking
    /// instance's own mode.
    pub hosted: Option<bool>,
    /// The provider that last tried the challenge's message (for the
    /// conversion metrics); `None` when none has yet.
    pub provider: Option<String>,
}

/// The outcome of trying to spend an attempt on a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// An attempt was spent; compare the code now.
    Spent(ChallengeAttempt),
    /// No challenge has this lookup hash.
    NotFound,
    /// The challenge expired.
    Expired,
    /// Every attempt was already spent.
    Exhausted,
    /// The challenge was consumed by a correct code, or superseded by a
    /// newer one.
    Closed,
}

/// Keeps OTP challenges. The contract that makes codes safe lives here:
/// attempts are spent and codes consumed by conditional writes, so two
/// concurrent callers can never both succeed.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ChallengeStore: Send + Sync {
    /// Stores `challenge` and, in the same transaction, closes every live
    /// challenge with the same purpose and phone, or with the same lookup
    /// hash (a new code invalidates the old one), and writes `outgoing` to
    /// the outbox: the challenge and its message exist together or not at
    /// all.
    async fn replace_live(&self, challenge: NewChallenge, outgoing: Outgoing) -> Result<ChallengeId, StoreError>;

    /// Atomically spends one attempt on the challenge with `lookup_hash` if
    /// it is live, unexpired at `now` and has attempts left, and returns it
    /// with its code hash; otherwise says why not, spending nothing.
    async fn spend_attempt(&self, lookup_hash: &SecretHash, now: Timestamp) -> Result<AttemptOutcome, StoreError>;

    /// Marks the challenge consumed if it is still live. Returns `false` if
    /// it was not (another check consumed it first, or it was superseded).
    async fn consume(&self, id: ChallengeId, now: Timestamp) -> Result<bool, StoreError>;
}
