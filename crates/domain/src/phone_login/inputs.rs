//! The validated inputs of the phone-login use cases, each built by a
//! parsing function at the edge.

use std::fmt;

/// The longest device id accepted, in bytes.
pub const MAX_DEVICE_ID_BYTES: usize = 255;
/// Bytes of randomness in an access code; its text is twice as many hex
/// digits.
pub(super) const ACCESS_CODE_BYTES: usize = 16;

/// The id a device names itself by: not blank, at most
/// [`MAX_DEVICE_ID_BYTES`] bytes, no control characters, white space around
/// it trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceId(String);

/// Why a text is not a device id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeviceIdError {
    #[error("no device id was given")]
    Blank,
    #[error("the device id is longer than {MAX_DEVICE_ID_BYTES} bytes")]
    TooLong,
    #[error("the device id contains a control character")]
    ControlCharacter,
}

impl DeviceId {
    pub fn parse(input: &str) -> Result<Self, DeviceIdError> {
        let device = input.trim();
        if device.is_empty() {
            return Err(DeviceIdError::Blank);
        }
        if device.len() > MAX_DEVICE_ID_BYTES {
            return Err(DeviceIdError::TooLong);
        }
        if device.chars().any(char::is_control) {
            return Err(DeviceIdError::ControlCharacter);
        }
        Ok(Self(device.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which device an access code must have been issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequiredDevice {
    /// Any: the backend named none.
    Any,
    Device(DeviceId),
    /// A device id that no access code can have (too long, or with control
    /// characters). It reaches the use case rather than being answered at
    /// the edge because the code is looked up (and the per-IP limit
    /// applied) first: a backend is answered as for any other device's
    /// code.
    Unmatchable,
}

impl RequiredDevice {
    /// Reads an optional device id; absent or blank is [`RequiredDevice::Any`].
    pub fn parse(input: Option<&str>) -> Self {
        match input.map(DeviceId::parse) {
            None | Some(Err(DeviceIdError::Blank)) => Self::Any,
            Some(Ok(device)) => Self::Device(device),
            Some(Err(DeviceIdError::TooLong | DeviceIdError::ControlCharacter)) => Self::Unmatchable,
        }
    }

    pub(super) fn admits(&self, device_id: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Device(device) => device.as_str() == device_id,
            Self::Unmatchable => false,
        }
    }
}

/// An access code's text: 32 hex digits, kept in lower case. `Debug` hides
/// it: it is a bearer credential.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessCode(String);

impl AccessCode {
    /// Reads 32 hex digits in either case, white space around them trimmed.
    pub fn parse(input: &str) -> Option<Self> {
        let code = input.trim();
        (code.len() == ACCESS_CODE_BYTES * 2 && code.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(code.to_ascii_lowercase()))
    }

    /// A code from the CSPRNG's bytes.
    pub(super) fn from_bytes(bytes: &[u8]) -> Self {
        Self(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The code, to hash it or to write it into a response, and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessCode([redacted])")
    }
}

/// An access code as a backend sent it.
///
/// A malformed one is not refused at the edge: every check counts against
/// the per-IP limit before the code is judged, so that a client over the
/// limit is told so whatever it sends. So the parse result is passed in as
/// it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmittedAccessCode {
    WellFormed(AccessCode),
    /// Not 32 hex digits; it can never match.
    Malformed,
}

impl SubmittedAccessCode {
    pub fn parse(input: &str) -> Self {
        AccessCode::parse(input).map_or(Self::Malformed, Self::WellFormed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_are_trimmed_bounded_and_printable() {
        assert_eq!(DeviceId::parse(" abcde ").unwrap().as_str(), "abcde");
        assert_eq!(DeviceId::parse(" \t").unwrap_err(), DeviceIdError::Blank);
        assert!(DeviceId::parse(&"d".repeat(MAX_DEVICE_ID_BYTES)).is_ok());
        assert_eq!(
            DeviceId::parse(&"d".repeat(MAX_DEVICE_ID_BYTES + 1)).unwrap_err(),
            DeviceIdError::TooLong
        );
        assert_eq!(DeviceId::parse("a\u{7}b").unwrap_err(), DeviceIdError::ControlCharacter);
    }

    #[test]
    fn a_required_device_is_any_when_blank_and_unmatchable_when_invalid() {
        assert_eq!(RequiredDevice::parse(None), RequiredDevice::Any);
        assert_eq!(RequiredDevice::parse(Some("  ")), RequiredDevice::Any);
        let device = RequiredDevice::parse(Some("abcde"));
        assert!(device.admits("abcde") && !device.admits("other"));
        let unmatchable = RequiredDevice::parse(Some(&"d".repeat(300)));
        assert_eq!(unmatchable, RequiredDevice::Unmatchable);
        assert!(!unmatchable.admits(&"d".repeat(300)));
    }

    #[test]
    fn access_codes_are_32_hex_digits_in_lower_case() {
        let code = AccessCode::parse(" DD3DC3146DF82C5A2B1C54EB4648939F ").unwrap();
        assert_eq!(code.expose(), "dd3dc3146df82c5a2b1c54eb4648939f");
        assert_eq!(format!("{code:?}"), "AccessCode([redacted])");
        for malformed in ["", "ab", &"g".repeat(32), &"a".repeat(33)] {
            assert_eq!(SubmittedAccessCode::parse(malformed), SubmittedAccessCode::Malformed);
        }
        assert_eq!(AccessCode::from_bytes(&[0, 255]).expose(), "00ff");
    }
}
