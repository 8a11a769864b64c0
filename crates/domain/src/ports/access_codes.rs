//! Phone-login's access codes, stored only as keyed hashes.

use async_trait::async_trait;

use super::StoreError;
use crate::{otp::secret::SecretHash, phone::PhoneNumber, time::Timestamp, user::UserId};

/// An access code to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccessCode {
    pub user_id: UserId,
    pub code_hash: SecretHash,
    pub device_id: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A stored access code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessCodeRecord {
    pub user_id: UserId,
    pub phone: Option<PhoneNumber>,
    pub device_id: String,
    pub expires_at: Timestamp,
    pub revoked: bool,
}

/// Keeps phone-login's access codes, stored only as keyed hashes.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AccessCodeStore: Send + Sync {
    async fn insert_access_code(&self, code: NewAccessCode) -> Result<(), StoreError>;

    /// The access code whose hash is `code_hash`, expired or not.
    async fn find_access_code(&self, code_hash: &SecretHash) -> Result<Option<AccessCodeRecord>, StoreError>;
}
