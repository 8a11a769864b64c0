//! The tokens surface's use cases, one module per use case: email +
//! password sign-in with opaque per-device tokens and sign-out
//! ([`sign_in`]), password reset by email ([`password_reset`]), phone
//! confirmation for a signed-in user ([`phone_confirmation`]) and token
//! introspection for servers ([`introspection`]). The [`admin`] module
//! holds the use cases behind the CLI (create, list and revoke
//! applications; create and find users and revoke their tokens).
//!
//! This module holds what they share: the service, its ports and settings,
//! the record types the stores read and write, and session lookup.
//!
//! Opaque tokens are 16 random bytes (22 characters of base64url), stored
//! only as keyed hashes. An unknown email and a wrong password answer the
//! same, after the same work (a password check against a dummy hash).

use std::{fmt, sync::Arc, time::Duration};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::{
    abuse::sign_in::SignInGuard,
    account::{Email, PasswordHash},
    delivery::Messenger,
    otp::{OtpEngine, OtpPolicy, SecretHash},
    outbox::OutboxStore,
    phone::{PhoneNumber, PhonePolicy},
    ports::{
        AccessCodeStore, AccountStore, ApplicationStore, PasswordHasher, PasswordScreen, SessionStore, StoreError,
        TokenIssuer, UserStore,
    },
    time::Timestamp,
    user::{User, UserId},
};

pub mod admin;
pub mod introspection;
pub mod password_reset;
pub mod phone_confirmation;
pub mod sign_in;

pub use admin::{AdminError, UserLookup};
pub use introspection::{IntrospectError, Introspection};
pub use password_reset::{CompleteResetError, ResetRequestError};
pub use phone_confirmation::PhoneVerificationError;
pub use sign_in::{SignInError, SignInRequest, SignedIn};

/// Bytes of randomness in opaque tokens (session, application, reset).
const TOKEN_BYTES: usize = 16;

/// A user with what signing in by password needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: User,
    pub password_hash: Option<PasswordHash>,
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: Email,
    pub password_hash: PasswordHash,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<PhoneNumber>,
    pub created_at: Timestamp,
}

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

/// A password reset to store.
#[derive(Debug, Clone)]
pub struct NewPasswordReset {
    pub user_id: UserId,
    pub token_hash: SecretHash,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// How completing a reset went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetOutcome {
    Done(UserId),
    NotFound,
    Expired,
    AlreadyUsed,
}

/// An opaque token text (session, application or reset). Redacted in `Debug`.
pub struct OpaqueToken(String);

impl OpaqueToken {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueToken([redacted])")
    }
}

#[derive(Debug, Clone)]
pub struct TokenAuthSettings {
    pub phones: PhonePolicy,
    /// The code policy of `send_phone_verification`.
    pub phone_policy: OtpPolicy,
    pub session_ttl: Duration,
    pub reset_ttl: Duration,
    /// The link in reset emails; `{token}` is replaced by the reset token.
    pub reset_url_template: String,
    pub app_name: String,
}

/// Why a request that needs a signed-in user was refused.
#[derive(Debug, thiserror::Error)]
pub enum Unauthorized {
    #[error("Invalid or missing auth_token.")]
    Token,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The ports the tokens surface needs.
#[derive(Clone)]
pub struct TokenAuthPorts {
    pub users: Arc<dyn UserStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub applications: Arc<dyn ApplicationStore>,
    pub access_codes: Arc<dyn AccessCodeStore>,
    pub passwords: Arc<dyn PasswordHasher>,
    /// Refuses common passwords wherever a new password is chosen.
    pub screen: Arc<dyn PasswordScreen>,
    pub tokens: Arc<dyn TokenIssuer>,
    /// Where reset emails are queued for unknown emails (a decoy row).
    pub outbox: Arc<dyn OutboxStore>,
    pub messenger: Messenger,
}

impl fmt::Debug for TokenAuthPorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAuthPorts").finish_non_exhaustive()
    }
}

pub struct TokenAuth {
    ports: TokenAuthPorts,
    otp: OtpEngine,
    settings: TokenAuthSettings,
    /// Sign-in limits and the lockout policy (`passwords` module).
    guard: SignInGuard,
}

impl fmt::Debug for TokenAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAuth")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn present(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

impl TokenAuth {
    pub fn new(ports: TokenAuthPorts, otp: OtpEngine, settings: TokenAuthSettings) -> Self {
        Self {
            ports,
            otp,
            settings,
            guard: SignInGuard::default(),
        }
    }

    /// Applies `guard`'s sign-in and token-check limits and its lockout
    /// policy (without one: no limits, the default lockout).
    #[must_use]
    pub fn with_sign_in_guard(mut self, guard: SignInGuard) -> Self {
        self.guard = guard;
        self
    }

    fn now(&self) -> Timestamp {
        self.otp.clock().now()
    }

    /// A fresh opaque token and the hash to store for it.
    fn new_token(&self, kind: &str) -> (OpaqueToken, SecretHash) {
        let text = URL_SAFE_NO_PAD.encode(self.otp.random_bytes(TOKEN_BYTES));
        let hash = self.token_hash(kind, &text);
        (OpaqueToken(text), hash)
    }

    fn token_hash(&self, kind: &str, text: &str) -> SecretHash {
        self.otp.hasher().token_hash(kind, text.as_bytes())
    }

    /// The user a session token belongs to, if it is valid now.
    async fn session(&self, auth_token: Option<&str>) -> Result<SessionRecord, Unauthorized> {
        let token = present(auth_token).ok_or(Unauthorized::Token)?;
        let session = self
            .ports
            .sessions
            .find_session(&self.token_hash("session_token", token))
            .await?
            .ok_or(Unauthorized::Token)?;
        if session.revoked || self.now() >= session.expires_at {
            return Err(Unauthorized::Token);
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests;
