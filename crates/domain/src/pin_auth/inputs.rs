//! The validated inputs of the pin-auth use cases, each built once at the
//! edge by a parsing function, so that a use case never sees a blank or
//! malformed value.

use std::fmt;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use secrecy::{ExposeSecret, SecretString};

use crate::{
    otp::{LookupKey, OtpCode, OtpPolicy},
    phone::{MobileRule, PhoneNumber},
    user::{NewAddress, NewUser, UserId},
};

/// The longest name or address field accepted at signup, in characters.
pub const MAX_TEXT_CHARS: usize = 255;

/// Bytes of randomness in an `otp_auth_key` (base64: 24 characters).
pub(super) const AUTH_KEY_BYTES: usize = 16;

/// The settings of the pin-auth surface.
#[derive(Debug, Clone)]
pub struct PinAuthSettings {
    pub mobile_rule: MobileRule,
    pub policy: OtpPolicy,
}

impl PinAuthSettings {
    /// Reads a pin as a client sent it: the policy's count of digits,
    /// white space around them ignored.
    pub fn parse_pin(&self, input: &str) -> Result<OtpCode, PinError> {
        if input.trim().is_empty() {
            return Err(PinError::Blank);
        }
        OtpCode::parse(input, self.policy.length).ok_or(PinError::Malformed)
    }
}

/// Why a pin as sent cannot be a pin of this surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("the pin is blank")]
    Blank,
    #[error("the pin is not the policy's count of digits")]
    Malformed,
}

/// The key a client sends back with the pin: 16 random bytes in standard
/// base64. It cycles with every new pin, and finds the pin's challenge.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpAuthKey {
    text: String,
    /// The [`AUTH_KEY_BYTES`] random bytes the text encodes.
    bytes: Vec<u8>,
}

/// Why a key as sent cannot be one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OtpAuthKeyError {
    #[error("the otp_auth_key is blank")]
    Blank,
    #[error("the otp_auth_key is not 16 bytes in base64")]
    Malformed,
}

impl OtpAuthKey {
    pub(super) fn encode(bytes: Vec<u8>) -> Self {
        Self {
            text: STANDARD.encode(&bytes),
            bytes,
        }
    }

    /// Reads a key a client sent (white space around it ignored). A key
    /// that is not 16 bytes of base64 was never issued, so it is refused
    /// here, without a store call: that tells a client nothing about any
    /// user, because keys are random and not tied to a number it chose.
    pub fn parse(input: &str) -> Result<Self, OtpAuthKeyError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(OtpAuthKeyError::Blank);
        }
        match STANDARD.decode(input) {
            Ok(bytes) if bytes.len() == AUTH_KEY_BYTES => Ok(Self::encode(bytes)),
            _ => Err(OtpAuthKeyError::Malformed),
        }
    }

    /// The lookup key of the challenge this key finds.
    pub(super) fn lookup(&self) -> LookupKey {
        LookupKey::from_bytes(self.bytes.clone())
    }

    /// The key text, for the response body and nothing else.
    pub fn expose(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for OtpAuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpAuthKey([redacted])")
    }
}

/// A bearer token as the client presented it, not yet verified. A
/// credential: `Debug` hides it.
#[derive(Clone)]
pub struct BearerToken(SecretString);

impl BearerToken {
    /// The token, white space around it ignored; `None` when blank.
    pub fn parse(input: &str) -> Option<Self> {
        let input = input.trim();
        (!input.is_empty()).then(|| Self(SecretString::from(input)))
    }

    pub(super) fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

/// The user a verified bearer token was issued to. Only
/// [`super::PinAuth::authenticate`] makes one, so a use case that takes it
/// runs for a token that was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedIn(pub(super) UserId);

impl SignedIn {
    pub fn user_id(self) -> UserId {
        self.0
    }
}

/// A name or address field of a signup: at most [`MAX_TEXT_CHARS`]
/// characters, kept as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileText(String);

/// The text is over [`MAX_TEXT_CHARS`] characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the text is longer than {MAX_TEXT_CHARS} characters")]
pub struct TooLong;

impl ProfileText {
    pub fn parse(input: String) -> Result<Self, TooLong> {
        if input.chars().count() > MAX_TEXT_CHARS {
            return Err(TooLong);
        }
        Ok(Self(input))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn into_inner(self) -> String {
        self.0
    }
}

/// A signup's address, its fields bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignupAddress {
    pub street: Option<ProfileText>,
    pub flat: Option<ProfileText>,
    pub building: Option<ProfileText>,
    pub district_id: Option<i64>,
    pub address_type: Option<ProfileText>,
}

/// A signup: the mobile, already checked against the mobile rule, and the
/// user's names and address.
#[derive(Debug, Clone)]
pub struct Signup {
    pub phone: PhoneNumber,
    pub first_name: Option<ProfileText>,
    pub last_name: Option<ProfileText>,
    pub address: Option<SignupAddress>,
}

impl Signup {
    /// A signup of `phone` with no names and no address.
    pub fn of(phone: PhoneNumber) -> Self {
        Self {
            phone,
            first_name: None,
            last_name: None,
            address: None,
        }
    }

    /// The user this signup becomes once its pin is verified.
    pub(super) fn into_new_user(self) -> NewUser {
        let text = |field: Option<ProfileText>| field.map(ProfileText::into_inner);
        NewUser {
            phone: self.phone,
            first_name: text(self.first_name),
            last_name: text(self.last_name),
            address: self.address.map(|address| NewAddress {
                street: text(address.street),
                flat: text(address.flat),
                building: text(address.building),
                district_id: address.district_id,
                address_type: text(address.address_type),
            }),
        }
    }
}
