//! Hashing and screening passwords.

use async_trait::async_trait;

use super::StoreError;
use crate::account::{Password, PasswordHash};

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing thread is busy and the queue is full: refused at once
    /// rather than queued without bound, so a flood cannot starve real
    /// sign-ins. The client may try again in a moment.
    #[error("password hashing is saturated")]
    Busy,
    #[error(transparent)]
    Failed(#[from] StoreError),
}

/// Hashes and checks passwords. Hashing is slow on purpose, so
/// implementations must not run it on the async runtime's threads, and
/// must bound the work waiting for it ([`HashError::Busy`]).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError>;

    /// Whether `password` matches `hash`. With no hash (unknown user, or a
    /// user without a password) it still does the same work against a dummy
    /// hash and returns false, so the two cases cannot be told apart by time.
    async fn verify(&self, password: &Password, hash: Option<PasswordHash>) -> Result<bool, HashError>;
}

/// Screens new passwords against the ones attackers try first.
pub trait PasswordScreen: Send + Sync {
    /// Whether `password` is among the most common passwords (or a trivial
    /// variant of one, or of `context`: the account's email and names), so
    /// that it must not be chosen. Pure computation, no I/O.
    fn is_common(&self, password: &Password, context: &[&str]) -> bool;
}

/// A screen that lets every password through, for tools and unit tests
/// that do not exercise the screen; the service wires a real one.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPasswordScreen;

impl PasswordScreen for NoPasswordScreen {
    fn is_common(&self, _: &Password, _: &[&str]) -> bool {
        false
    }
}
