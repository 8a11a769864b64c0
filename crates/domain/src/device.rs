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

/// Why a platform name is not accepted. `Display` is for logs; each
/// surface words the cause for its clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushPlatformError {
    #[error("the push platform is blank")]
    Blank,
    #[error("the push platform is none of fcm, gcm and aps")]
    Unknown,
}

impl PushPlatform {
    /// Every platform, in the order clients are told about them.
    pub const ALL: [Self; 3] = [Self::Fcm, Self::Gcm, Self::Aps];

    /// Reads a platform name (white space around it ignored).
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

/// Why a push handle is not accepted. `Display` is for logs; each surface
/// words the cause for its clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushHandleError {
    #[error("the push handle is blank")]
    Blank,
    #[error("the push handle is longer than {MAX_HANDLE_BYTES} bytes")]
    TooLong,
}

/// The longest push handle accepted, in bytes of UTF-8 once trimmed. Real
/// handles (FCM registration tokens, APNs device tokens) are ASCII and far
/// shorter; the bound keeps a client from storing arbitrary data.
pub const MAX_HANDLE_BYTES: usize = 4096;

impl PushHandle {
    /// Reads a handle (white space around it ignored).
    pub fn parse(input: &str) -> Result<Self, PushHandleError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(PushHandleError::Blank);
        }
        if input.len() > MAX_HANDLE_BYTES {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_are_read_by_name() {
        assert_eq!(PushPlatform::parse(" fcm "), Ok(PushPlatform::Fcm));
        assert_eq!(PushPlatform::parse("gcm"), Ok(PushPlatform::Gcm));
        assert_eq!(PushPlatform::parse("aps"), Ok(PushPlatform::Aps));
        assert_eq!(PushPlatform::parse(" "), Err(PushPlatformError::Blank));
        assert_eq!(PushPlatform::parse("windows"), Err(PushPlatformError::Unknown));
    }

    #[test]
    fn handles_are_trimmed_and_bounded_in_bytes() {
        assert_eq!(
            PushHandle::parse(" reg-id ").map(|h| h.as_str().to_owned()),
            Ok("reg-id".to_owned())
        );
        assert_eq!(PushHandle::parse(" \t").err(), Some(PushHandleError::Blank));
        assert!(PushHandle::parse(&"a".repeat(MAX_HANDLE_BYTES)).is_ok());
        assert_eq!(
            PushHandle::parse(&"é".repeat(MAX_HANDLE_BYTES / 2 + 1)).err(),
            Some(PushHandleError::TooLong)
        );
    }

    #[test]
    fn handles_are_kept_out_of_debug_output() {
        let handle = PushHandle::parse("reg-id").expect("a handle");
        assert!(!format!("{handle:?}").contains("reg-id"));
    }
}
