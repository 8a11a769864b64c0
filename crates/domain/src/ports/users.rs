//! Users: finding them, their profiles, and creating them when a phone is
//! verified.

use async_trait::async_trait;

use super::{StoreError, challenges::NewChallenge, outbox::Outgoing};
use crate::{
    otp::code::ChallengeId,
    phone::PhoneNumber,
    time::Timestamp,
    user::{NewUser, PhoneVerification, User, UserId, UserProfile},
};

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// Another user already has this phone number.
    #[error("the phone number already belongs to a user")]
    PhoneTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads and creates users.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UserStore: Send + Sync {
    /// The user whose phone number is `phone`, if any.
    async fn find_by_phone(&self, phone: &PhoneNumber) -> Result<Option<User>, StoreError>;

    /// The user `id` with addresses and permissions, or `None` if there is no
    /// such user. An implementation may serve it from a short-lived cache:
    /// it then reflects its own writes at once, and writes made elsewhere
    /// (another instance) within the cache's lifetime.
    async fn profile(&self, id: UserId) -> Result<Option<UserProfile>, StoreError>;

    /// For a signup of a number with no user: stores `challenge` (live
    /// challenges with the same purpose and phone are superseded), with
    /// `outgoing` in the outbox and `signup`'s names and address kept
    /// pending with the challenge, in one transaction. No user is created:
    /// [`UserStore::consume_verifying`] creates it with these fields once
    /// the challenge's code is verified. A superseded challenge's pending
    /// fields are never used.
    async fn store_signup(
        &self,
        signup: NewUser,
        challenge: NewChallenge,
        outgoing: Outgoing,
    ) -> Result<ChallengeId, StoreError>;

    /// In one transaction: consumes `challenge` if it is still live, and
    /// writes what its verification means: the user of
    /// `verification.phone` marked verified (created if there is none, with
    /// the challenge's pending signup fields if it has any) and
    /// `verification.access_code` for that user. Returns the user and
    /// whether it was created; `None`, having written nothing, when the
    /// challenge was no longer live (consumed by a concurrent check, or
    /// superseded, or a decoy: see [`PhoneVerification::requires_signup`]).
    /// If a write fails nothing is written and the challenge stays live, so
    /// the same code can be tried again.
    async fn consume_verifying(
        &self,
        challenge: ChallengeId,
        verification: PhoneVerification,
    ) -> Result<Option<(User, bool)>, StoreError>;

    /// The user whose phone is `phone`, created if there is none, with the
    /// phone marked verified at `now` (if it was not already). Returns the
    /// user and whether it was created. Safe under concurrency: two callers
    /// for one new phone get the same user.
    async fn upsert_verified_phone(&self, phone: &PhoneNumber, now: Timestamp) -> Result<(User, bool), StoreError>;
}
