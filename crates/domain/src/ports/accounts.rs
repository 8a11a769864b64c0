//! Email + password accounts: sign-in lockout, password resets and the
//! phone a signed-in user verified.

use std::time::Duration;

use async_trait::async_trait;

use super::{StoreError, outbox::Outgoing};
use crate::{
    account::{Email, PasswordHash},
    otp::secret::SecretHash,
    phone::PhoneNumber,
    time::Timestamp,
    user::{User, UserId},
};

/// A user with what signing in by password needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: User,
    pub password_hash: Option<PasswordHash>,
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: Email,
    pub password_hash: PasswordHash,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<PhoneNumber>,
    pub created_at: Timestamp,
}

/// A password reset to store.
#[derive(Debug, Clone)]
pub struct NewPasswordReset {
    pub user_id: UserId,
    pub token_hash: SecretHash,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// How completing a reset went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetOutcome {
    Done(UserId),
    NotFound,
    Expired,
    AlreadyUsed,
}

/// When an account locks, and for how long. After `after_failures`
/// consecutive failed sign-ins the account is locked for `base`; each
/// further failure once a lock has ended doubles the lock, up to `max`. A
/// successful sign-in (or a completed password reset) starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Consecutive failures that lock the account; 0 never locks.
    pub after_failures: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for LockoutPolicy {
    /// 5 failures lock for a minute, then 2, 4, … minutes, at most an hour.
    fn default() -> Self {
        Self {
            after_failures: 5,
            base: Duration::from_secs(60),
            max: Duration::from_secs(3600),
        }
    }
}

impl LockoutPolicy {
    /// How long the account locks once it has `failures` consecutive
    /// failures (`None`: not yet).
    pub fn lock_for(&self, failures: u32) -> Option<Duration> {
        if self.after_failures == 0 || failures < self.after_failures {
            return None;
        }
        let doublings = (failures - self.after_failures).min(31);
        let lock = self.base.saturating_mul(1u32 << doublings);
        Some(lock.min(self.max))
    }

    /// The lock of each failure count from the first that locks up to the
    /// first whose lock is `max`: past the last entry every lock is `max`.
    /// Adapters turn it into one conditional update.
    pub fn steps(&self) -> Vec<(u32, Duration)> {
        let mut steps = Vec::new();
        if self.after_failures == 0 {
            return steps;
        }
        let mut failures = self.after_failures;
        while let Some(lock) = self.lock_for(failures) {
            steps.push((failures, lock));
            if lock >= self.max || steps.len() >= 32 {
                break;
            }
            failures += 1;
        }
        steps
    }
}

/// Why an account could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("the email already belongs to a user")]
    EmailTaken,
    #[error("the phone number already belongs to another user")]
    PhoneTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Email + password accounts, password resets and verified phones of
/// signed-in users.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// The user with `email`, with their password hash (if they have one).
    async fn find_by_email(&self, email: &Email) -> Result<Option<Account>, StoreError>;

    /// Creates a user with email, password hash, names and optional phone.
    async fn create_account(&self, account: NewAccount) -> Result<UserId, AccountError>;

    /// Makes `phone` the verified phone of `user`. A phone belongs to one
    /// user: if another user has it, nothing changes and `PhoneTaken` is
    /// returned.
    async fn set_verified_phone(&self, user: UserId, phone: &PhoneNumber, now: Timestamp) -> Result<(), AccountError>;

    /// Stores a password reset (its token only as a hash) and, in the same
    /// transaction, its email in the outbox, and marks every earlier unused
    /// reset of the user used: only the newest link works.
    async fn create_password_reset(&self, reset: NewPasswordReset, mail: Outgoing) -> Result<(), StoreError>;

    /// What completing the reset with `token_hash` at `now` would find,
    /// changing nothing: `Done` names the user of a usable reset. Read
    /// before the new password is hashed, so a guessed token costs no hash.
    async fn find_password_reset(&self, token_hash: &SecretHash, now: Timestamp) -> Result<ResetOutcome, StoreError>;

    /// In one transaction, if the reset with `token_hash` is unused and
    /// unexpired at `now`: marks it used, sets `new_password`, clears the
    /// user's failed sign-ins and lock, and revokes every session token and
    /// every phone-login access code of its user.
    async fn complete_password_reset(
        &self,
        token_hash: &SecretHash,
        new_password: &PasswordHash,
        now: Timestamp,
    ) -> Result<ResetOutcome, StoreError>;

    /// Records how a password check for `email` went, in one statement
    /// whatever the outcome (so the time it takes tells nothing), on an
    /// account that is not locked at `now`:
    /// - `password_matched`: its failed sign-ins and lock are cleared and its
    ///   user returned: the sign-in may go on;
    /// - otherwise its consecutive failures grow by one, atomically, and it
    ///   is locked until `now` + `lockout.lock_for(failures)` when that is
    ///   some. Failures while it is locked do not count.
    ///
    /// Returns `None` (changing nothing) when there is no such account or
    /// it is locked at `now`, whether the password matched or not.
    async fn settle_sign_in(
        &self,
        email: &Email,
        password_matched: bool,
        now: Timestamp,
        lockout: &LockoutPolicy,
    ) -> Result<Option<UserId>, StoreError>;
}
