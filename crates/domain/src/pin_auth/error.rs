//! One error per pin-auth operation, each variant named by its cause.
//! `Display` is for logs; the surface words each cause for its clients.

use crate::{
    abuse::Refusal,
    otp::IssueError,
    ports::{DeliveryError, StoreError},
    token::TokenError,
};

/// Why a pin could not be sent (`send_pin`, `signup`).
#[derive(Debug, thiserror::Error)]
pub enum SendPinError {
    /// A rate limit, the SMS budget or the destination rules refused it.
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<IssueError> for SendPinError {
    fn from(error: IssueError) -> Self {
        match error {
            IssueError::Refused(refusal) => Self::Refused(refusal),
            IssueError::Store(error) => Self::Store(error),
        }
    }
}

/// Why a pin was not accepted (`verify`).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Wrong pin, unknown or superseded key, a pin already used, a decoy's
    /// key, or a number locked after too many wrong pins: one cause for the
    /// client, so a guesser learns nothing.
    #[error("the pin is wrong or its key finds no live challenge")]
    WrongPin,
    #[error("the pin's challenge has expired")]
    Expired,
    /// The challenge has had its most wrong pins and is dead.
    #[error("the pin's challenge has no attempts left")]
    AttemptsExhausted,
    /// The client checked too many pins (per-IP limit).
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the session token could not be issued: {0}")]
    Token(TokenError),
    #[error("the verification provider failed: {0}")]
    Provider(DeliveryError),
}

/// Why a bearer token was not accepted, or its user not found
/// (`authenticate`, `current_user_profile`, `register_device`).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token does not verify: malformed, badly signed, expired or not
    /// yet valid (the cause is carried for the log).
    #[error("the bearer token was refused: {0}")]
    TokenRefused(TokenError),
    /// A correctly signed token names a user this database does not have
    /// (a database restored from an older backup, or reset under the same
    /// secret).
    #[error("the bearer token's user does not exist")]
    UnknownUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a device could not be registered (`register_device`).
#[derive(Debug, thiserror::Error)]
pub enum RegisterDeviceError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
