//! Codes and the values that describe a challenge: the code itself, its
//! length and policy, what it is for and how it travels.

use std::{fmt, time::Duration};

/// A one-time code: ASCII digits only. Its `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(pub(super) String);

impl OtpCode {
    /// Accepts a code of exactly `length` ASCII digits (white space around it
    /// is ignored, as users paste codes with spaces).
    pub fn parse(input: &str, length: CodeLength) -> Option<Self> {
        let input = input.trim();
        (input.len() == length.get() && input.bytes().all(|b| b.is_ascii_digit())).then(|| Self(input.to_owned()))
    }

    /// The digits, to be put into a message for the user and nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode([redacted])")
    }
}

/// How many digits a code has: 4 to 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeLength(pub(super) usize);

impl CodeLength {
    pub const fn new(length: usize) -> Option<Self> {
        if length >= 4 && length <= 10 {
            Some(Self(length))
        } else {
            None
        }
    }

    pub const fn get(self) -> usize {
        self.0
    }
}

/// The code policy of one surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtpPolicy {
    pub length: CodeLength,
    /// How long a code stays valid after it is issued.
    pub ttl: Duration,
    /// How many checks a challenge allows, right or wrong, before it is dead.
    pub max_attempts: u32,
}

/// What a challenge is for. Part of every lookup hash, so a key issued for
/// one purpose can never find a challenge of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// pin-auth `send_pin` / `signup`, checked by `verify`.
    PinAuth,
    /// phone-verify `register`, checked by `verify`.
    PhoneVerify,
    /// phone-login `phone_login`, checked by `check_pin`.
    PhoneLogin,
    /// tokens `send_phone_verification`, checked by `verify_phone`.
    PhoneConfirm,
}

impl Purpose {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PinAuth => "pin_auth",
            Self::PhoneVerify => "phone_verify",
            Self::PhoneLogin => "phone_login",
            Self::PhoneConfirm => "phone_confirm",
        }
    }
}

/// How the code reaches the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Sms,
    Call,
    /// A WhatsApp message with the text of an SMS. Use cases ask for
    /// [`Channel::Sms`]; the messenger sends a surface's texts this way
    /// when its settings say so (`otp.<surface>.channel = "whatsapp"`).
    WhatsApp,
}

impl Channel {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Call => "call",
            Self::WhatsApp => "whatsapp",
        }
    }
}

/// Id of a stored challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChallengeId(i64);

impl ChallengeId {
    pub const fn new(id: i64) -> Self {
        Self(id)
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}
