//! The values the tokens use cases take, each built by parsing: the
//! opaque tokens a client presents, application ids and names, device and
//! push tokens, the mobile OS, and what sign-in was offered as an email
//! and a password.
//!
//! Parsing trims white space and refuses blank text, so a use case never
//! sees a missing value; the edge decides what a missing field answers.

use std::fmt;

use super::MobileOs;
use crate::account::{Email, EmailError, Password, PasswordError};

/// The text was empty or only white space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the value is blank")]
pub struct Blank;

/// Trimmed, non-blank text, or [`Blank`].
fn non_blank(input: &str) -> Result<&str, Blank> {
    let input = input.trim();
    if input.is_empty() { Err(Blank) } else { Ok(input) }
}

/// Declares a secret token text as presented by a client: trimmed,
/// non-blank, redacted in `Debug`.
macro_rules! presented_token {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn parse(input: &str) -> Result<Self, Blank> {
                non_blank(input).map(|text| Self(text.to_owned()))
            }

            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

presented_token!(
    /// A user's session token (`auth_token` of a signed-in user).
    SessionToken
);
presented_token!(
    /// An application's server `auth_token`.
    ApplicationToken
);
presented_token!(
    /// The token of a password-reset email.
    ResetToken
);
presented_token!(
    /// A token an application asks about: a session token, a JWT or an
    /// access code, not yet known which.
    IntrospectedToken
);

/// An application's public id (`app_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppId(String);

impl AppId {
    pub fn parse(input: &str) -> Result<Self, Blank> {
        non_blank(input).map(|text| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An application's display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationName(String);

impl ApplicationName {
    pub fn parse(input: &str) -> Result<Self, Blank> {
        non_blank(input).map(|text| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The longest device token stored with a session, in bytes.
pub const DEVICE_TOKEN_MAX_BYTES: usize = 255;

/// A device's unique id (e.g. an iOS UDID) a session is issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceToken(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeviceTokenError {
    #[error("the device token is blank")]
    Blank,
    #[error("the device token is longer than {DEVICE_TOKEN_MAX_BYTES} bytes")]
    TooLong,
}

impl DeviceToken {
    pub fn parse(input: &str) -> Result<Self, DeviceTokenError> {
        let text = non_blank(input).map_err(|Blank| DeviceTokenError::Blank)?;
        if text.len() > DEVICE_TOKEN_MAX_BYTES {
            return Err(DeviceTokenError::TooLong);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A push token (APNs) to forget at sign-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushToken(String);

impl PushToken {
    pub fn parse(input: &str) -> Result<Self, Blank> {
        non_blank(input).map(|text| Self(text.to_owned()))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Neither `android` nor `ios`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the mobile OS is neither android nor ios")]
pub struct UnknownMobileOs;

impl MobileOs {
    /// `android` or `ios`, in any case, white space around it ignored.
    pub fn parse(input: &str) -> Result<Self, UnknownMobileOs> {
        match input.trim().to_ascii_lowercase().as_str() {
            "android" => Ok(Self::Android),
            "ios" => Ok(Self::Ios),
            _ => Err(UnknownMobileOs),
        }
    }
}

/// The email a sign-in offers. A malformed one matches no account, but it
/// is carried rather than refused: sign-in must answer it with the same
/// words, after the same work, as a wrong password (see
/// [`TokenAuth::sign_in`](super::TokenAuth::sign_in)), so that an answer
/// never tells which emails have accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInEmail {
    Valid(Email),
    /// The trimmed text, which the per-email limit still counts.
    Malformed(String),
}

impl SignInEmail {
    pub fn parse(input: &str) -> Result<Self, Blank> {
        match Email::parse(input) {
            Ok(email) => Ok(Self::Valid(email)),
            Err(EmailError::Blank) => Err(Blank),
            Err(EmailError::Invalid) => Ok(Self::Malformed(input.trim().to_owned())),
        }
    }

    /// The text the per-email limit counts.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Valid(email) => email.as_str(),
            Self::Malformed(text) => text,
        }
    }
}

/// The password a sign-in offers. One over the length bound matches no
/// account (it is never hashed), but like a malformed email it is carried,
/// so that it costs what a wrong password costs.
#[derive(Debug, Clone)]
pub enum SignInPassword {
    Valid(Password),
    TooLong,
}

impl SignInPassword {
    /// Refuses only an empty password; white space is a password.
    pub fn parse(input: &str) -> Result<Self, Blank> {
        match Password::presented(input) {
            Ok(password) => Ok(Self::Valid(password)),
            Err(PasswordError::Blank) => Err(Blank),
            Err(PasswordError::TooLong | PasswordError::TooShort) => Ok(Self::TooLong),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_trimmed_non_blank_and_redacted() {
        assert_eq!(SessionToken::parse("  "), Err(Blank));
        let token = SessionToken::parse(" abc ").unwrap();
        assert_eq!(token.expose(), "abc");
        assert_eq!(format!("{token:?}"), "SessionToken([redacted])");
    }

    #[test]
    fn device_tokens_and_mobile_os_have_their_rules() {
        assert_eq!(DeviceToken::parse(&"d".repeat(256)), Err(DeviceTokenError::TooLong));
        assert!(DeviceToken::parse(&"d".repeat(255)).is_ok());
        assert_eq!(DeviceToken::parse(" "), Err(DeviceTokenError::Blank));
        assert_eq!(MobileOs::parse(" IOS "), Ok(MobileOs::Ios));
        assert_eq!(MobileOs::parse("windows"), Err(UnknownMobileOs));
    }

    #[test]
    fn sign_in_carries_malformed_emails_and_over_long_passwords() {
        assert_eq!(SignInEmail::parse(" "), Err(Blank));
        assert_eq!(
            SignInEmail::parse(" not-an-email "),
            Ok(SignInEmail::Malformed("not-an-email".into()))
        );
        assert_eq!(SignInEmail::parse("A@B.com").unwrap().as_str(), "a@b.com");
        assert!(matches!(SignInPassword::parse(""), Err(Blank)));
        assert!(matches!(SignInPassword::parse(" "), Ok(SignInPassword::Valid(_))));
        assert!(matches!(
            SignInPassword::parse(&"x".repeat(2000)),
            Ok(SignInPassword::TooLong)
        ));
    }
}
