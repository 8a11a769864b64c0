//! Registered applications (the tokens surface's `app_id`s).

use async_trait::async_trait;

use super::StoreError;
use crate::{
    application::{Application, ApplicationListing, NewApplication, Revocation},
    otp::secret::SecretHash,
    time::Timestamp,
};

/// Registered applications.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ApplicationStore: Send + Sync {
    async fn create_application(&self, application: NewApplication) -> Result<Application, StoreError>;

    /// The application with `app_id`, unless revoked.
    async fn find_application(&self, app_id: &str) -> Result<Option<Application>, StoreError>;

    /// The application whose server `auth_token` hashes to `token_hash`,
    /// unless revoked.
    async fn find_application_by_token(&self, token_hash: &SecretHash) -> Result<Option<Application>, StoreError>;

    /// Every application, revoked ones too, oldest first (admin).
    async fn list_applications(&self) -> Result<Vec<ApplicationListing>, StoreError>;

    /// In one transaction: marks the application `app_id` revoked at `now`
    /// (its `auth_token` stops authenticating and its `app_id` stops
    /// accepting sign-ins) and revokes the live session tokens issued
    /// through it.
    async fn revoke_application(&self, app_id: &str, now: Timestamp) -> Result<Revocation, StoreError>;
}
