//! The tokens surface's use cases, one module per use case: email +
//! password sign-in with opaque per-device tokens and sign-out
//! ([`sign_in`]), password reset by email ([`password_reset`]), phone
//! confirmation for a signed-in user ([`phone_confirmation`]) and token
//! introspection for servers ([`introspection`]). The [`admin`] module
//! holds the use cases behind the CLI (create, list and revoke
//! applications; create and find users and revoke their tokens).
//!
//! This module holds what they share: the service, its ports and settings,
//! the record types the stores read and write, and session lookup. The
//! values the use cases take are built by parsing ([`credentials`]); their
//! errors name causes, and each surface words them for its clients.
//!
//! Opaque tokens are 16 random bytes (22 characters of base64url), stored
//! only as keyed hashes. An unknown email and a wrong password answer the
//! same, after the same work (a password check against a dummy hash).

use std::{fmt, sync::Arc, time::Duration};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::{
    abuse::sign_in::SignInGuard,
    delivery::Messenger,
    otp::{CodeLength, OtpEngine, OtpPolicy, SecretHash},
    outbox::OutboxStore,
    phone::PhonePolicy,
    ports::{
        AccessCodeStore, AccountStore, ApplicationStore, PasswordHasher, PasswordScreen, SessionStore, StoreError,
        TokenIssuer, UserStore,
    },
    time::Timestamp,
    user::UserId,
};

pub mod admin;
pub mod credentials;
pub mod introspection;
pub mod password_reset;
pub mod phone_confirmation;
pub mod sign_in;

pub use admin::{AdminError, NewUser, TokenAdmin, UserLookup};
pub use credentials::{
    AppId, ApplicationName, ApplicationToken, Blank, DeviceToken, DeviceTokenError, IntrospectedToken, PushToken,
    ResetToken, SessionToken, SignInEmail, SignInPassword, UnknownMobileOs,
};
pub use introspection::{AuthorizedApplication, IntrospectError, Introspection};
pub use password_reset::{CompleteResetError, PasswordReset, ProposedPassword, ResetRequestError};
pub use phone_confirmation::{ConfirmPhoneError, SendPhoneCodeError};
pub use sign_in::{SignInError, SignInRequest, SignedIn};

/// Bytes of randomness in opaque tokens (session, application, reset).
const TOKEN_BYTES: usize = 16;

pub use crate::ports::{
    accounts::{Account, NewAccount, NewPasswordReset, ResetOutcome},
    sessions::{MobileOs, NewSession, SessionDevice, SessionRecord},
};

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

/// Why a session token was refused, or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum Unauthorized {
    #[error("no session has this token")]
    UnknownToken,
    #[error("the session was revoked")]
    Revoked,
    #[error("the session has expired")]
    Expired,
    /// Sign-out named another user than the token's.
    #[error("the session belongs to another user")]
    OtherUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A session whose token was checked just now: what the use cases of a
/// signed-in user take. Only [`TokenAuth::authenticate`] makes one.
#[derive(Debug, Clone)]
pub struct Authenticated {
    session: SessionRecord,
}

impl Authenticated {
    pub fn user_id(&self) -> UserId {
        self.session.user_id
    }
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
    /// Sign-in and token-check limits and the lockout policy.
    guard: SignInGuard,
}

impl fmt::Debug for TokenAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAuth")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
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

    /// How the surfaces read phone numbers (`phone.default_region`, the
    /// allowed prefixes): the edge parses with it before a use case runs.
    pub fn phones(&self) -> &PhonePolicy {
        &self.settings.phones
    }

    /// The length of the codes texted to confirm a phone.
    pub fn phone_code_length(&self) -> CodeLength {
        self.settings.phone_policy.length
    }

    /// Checks a user's session token: the first step of every use case of
    /// a signed-in user.
    pub async fn authenticate(&self, token: &SessionToken) -> Result<Authenticated, Unauthorized> {
        let session = self.live_session(token.expose()).await?;
        Ok(Authenticated { session })
    }

    /// The session a token text names, if it is valid now.
    async fn live_session(&self, token: &str) -> Result<SessionRecord, Unauthorized> {
        let session = self
            .ports
            .sessions
            .find_session(&self.token_hash("session_token", token))
            .await?
            .ok_or(Unauthorized::UnknownToken)?;
        if session.revoked {
            return Err(Unauthorized::Revoked);
        }
        if self.now() >= session.expires_at {
            return Err(Unauthorized::Expired);
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests;
