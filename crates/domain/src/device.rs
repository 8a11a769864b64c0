//! Devices and their push registrations.

use std::fmt;

/// A push notification platform, named as the pin-auth clients name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushPlatform {
    /// Firebase Cloud Messaging.
    Fcm,
    /// Google Cloud Messaging, FCM's predecessor; Android clients still send it.
    Gcm,
    /// Apple Push Notification service.
    Aps,
}

/// Why a platform name is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushPlatformError {
    #[error("Platform can't be blank")]
    Blank,
    #[error("Platform must be one of fcm, gcm, aps")]
    Unknown,
}

impl PushPlatform {
    pub fn parse(input: &str) -> Result<Self, PushPlatformError> {
        match input.trim() {
            "" => Err(PushPlatformError::Blank),
            "fcm" => Ok(Self::Fcm),
            "gcm" => Ok(Self::Gcm),
            "aps" => Ok(Self::Aps),
            _ => Err(PushPlatformError::Unknown),
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Fcm => "fcm",
            Self::Gcm => "gcm",
            Self::Aps => "aps",
        }
    }
}

impl fmt::Display for PushPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A push registration id (FCM token, APNs device token). Not a credential,
/// but personal data, so it is kept out of `Debug` output all the same.
#[derive(Clone, PartialEq, Eq)]
pub struct PushHandle(String);

/// Why a push handle is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushHandleError {
    #[error("Handle can't be blank")]
    Blank,
    #[error("Handle is too long (maximum is 4096 characters)")]
    TooLong,
}

impl PushHandle {
    pub fn parse(input: &str) -> Result<Self, PushHandleError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(PushHandleError::Blank);
        }
        if input.len() > 4096 {
            return Err(PushHandleError::TooLong);
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PushHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PushHandle(..)")
    }
}
