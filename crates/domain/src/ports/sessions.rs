//! Opaque session tokens of the tokens surface and the devices they were
//! issued to.

use async_trait::async_trait;

use super::StoreError;
use crate::{otp::secret::SecretHash, time::Timestamp, user::UserId};

/// The device a session token is issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDevice {
    pub device_token: String,
    pub mobile_os: Option<MobileOs>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MobileOs {
    Android,
    Ios,
}

impl MobileOs {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Android => "android",
            Self::Ios => "ios",
        }
    }
}

/// A session token to store.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub user_id: UserId,
    pub application_id: Option<i64>,
    pub device: Option<SessionDevice>,
    pub token_hash: SecretHash,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A stored session token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: i64,
    pub user_id: UserId,
    pub application_id: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked: bool,
}

/// Opaque session tokens of the tokens surface, with the devices they were
/// issued to.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// In one transaction: records the device (if any), revokes the earlier
    /// tokens of that device, and stores the new token's hash.
    async fn create_session(&self, session: NewSession) -> Result<(), StoreError>;

    /// The session token with `token_hash`, revoked or not.
    async fn find_session(&self, token_hash: &SecretHash) -> Result<Option<SessionRecord>, StoreError>;

    /// In one transaction: revokes the session `id` and removes the user's
    /// push registration `push_token`, if given.
    async fn end_session(&self, id: i64, push_token: Option<String>, now: Timestamp) -> Result<(), StoreError>;

    /// In one transaction: revokes every live session token and every
    /// phone-login access code of `user` (admin). JWTs are not stored and
    /// stay valid until they expire.
    async fn revoke_user_tokens(&self, user: UserId, now: Timestamp) -> Result<RevokedTokens, StoreError>;
}

/// What revoking a user's tokens did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RevokedTokens {
    pub session_tokens: u64,
    pub access_codes: u64,
}
