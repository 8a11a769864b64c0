//! Devices' push registrations.

use async_trait::async_trait;

use super::StoreError;
use crate::{
    device::{PushHandle, PushPlatform},
    time::Timestamp,
    user::UserId,
};

/// Keeps devices' push registrations.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Records that `user` receives pushes at `handle` on `platform`. A
    /// handle belongs to one user at a time: registering it again (for the
    /// same or another user) moves it rather than duplicating it.
    async fn register_push(
        &self,
        user: UserId,
        platform: PushPlatform,
        handle: &PushHandle,
        now: Timestamp,
    ) -> Result<(), StoreError>;
}
