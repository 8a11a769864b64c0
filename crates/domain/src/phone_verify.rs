//! The phone-verify use cases: `register` sends a security code and returns
//! a session token; `verify` checks phone + code + token together.
//!
//! The use cases take inputs that the edge has already parsed: a
//! [`PhoneNumber`], a [`SessionToken`] and a [`SubmittedCode`]. A missing
//! field is the edge's to answer.
//!
//! The session token is a signed JWT naming the E.164 phone and a random
//! nonce that finds the challenge; it never carries the code and expires
//! with the challenge. A verified phone is a user: the first verification of
//! a number creates its user, so the person is the same user on every
//! surface.

use std::{fmt, sync::Arc};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::{
    abuse::{Client, Refusal},
    delivery::Messenger,
    otp::{Channel, CheckError, CodeLength, IssueError, IssueRequest, LookupKey, OtpEngine, OtpPolicy, Purpose},
    phone::{PhoneNumber, PhonePolicy},
    ports::{DeliveryError, StoreError, TokenIssuer, UserStore},
    token::{IssuedToken, TokenError},
    user::{PhoneVerification, UserId},
};

mod inputs;

pub use inputs::{SessionToken, SessionTokenError, SubmittedCode};

/// Bytes of randomness in a session's nonce.
const NONCE_BYTES: usize = 16;

#[derive(Debug, Clone)]
pub struct PhoneVerifySettings {
    pub phones: PhonePolicy,
    pub policy: OtpPolicy,
}

/// Why a code could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// A rate limit, the SMS budget or the destination rules refused it.
    #[error("the send was refused: {0}")]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the session token could not be signed: {0}")]
    SessionToken(TokenError),
}

impl From<IssueError> for RegisterError {
    fn from(error: IssueError) -> Self {
        match error {
            IssueError::Refused(refusal) => Self::Refused(refusal),
            IssueError::Store(error) => Self::Store(error),
        }
    }
}

/// What a verification checks, each part validated at the edge.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// The number the client says the code was sent to.
    pub phone: PhoneNumber,
    pub code: SubmittedCode,
    pub session_token: SessionToken,
}

/// Why a verification failed. Clients learn less than this: the surface
/// answers every cause that a guesser could use (the token, the phone, the
/// code, the challenge's state) alike.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the session token does not verify as a phone-verify session")]
    SessionRefused,
    #[error("the session token has expired")]
    SessionExpired,
    #[error("the session token names another phone number")]
    SessionForAnotherPhone,
    #[error("the code does not have the configured number of digits")]
    MalformedCode,
    #[error("the code is wrong")]
    WrongCode,
    /// The challenge was used, or a newer code replaced it.
    #[error("no live challenge matches the session")]
    NoLiveChallenge,
    /// The number had too many wrong codes: the code was not compared.
    #[error("the phone number is locked after too many wrong codes")]
    Locked,
    #[error("the code has expired")]
    CodeExpired,
    #[error("every attempt at the code was used")]
    AttemptsExhausted,
    /// The client checked too many codes (per-IP limit).
    #[error("the check was refused: {0}")]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the verification provider failed: {0}")]
    Provider(DeliveryError),
}

/// A verified phone and its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedPhone {
    pub user_id: UserId,
    /// Whether this verification created the user.
    pub created: bool,
}

pub struct PhoneVerify {
    users: Arc<dyn UserStore>,
    messenger: Messenger,
    tokens: Arc<dyn TokenIssuer>,
    otp: OtpEngine,
    settings: PhoneVerifySettings,
}

impl fmt::Debug for PhoneVerify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhoneVerify")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl PhoneVerify {
    pub fn new(
        users: Arc<dyn UserStore>,
        messenger: Messenger,
        tokens: Arc<dyn TokenIssuer>,
        otp: OtpEngine,
        settings: PhoneVerifySettings,
    ) -> Self {
        Self {
            users,
            messenger,
            tokens,
            otp,
            settings,
        }
    }

    /// How this surface reads phone numbers, for the edge to build a
    /// [`PhoneNumber`] with.
    pub fn phones(&self) -> &PhonePolicy {
        &self.settings.phones
    }

    /// How many digits a security code has, for the edge to read one with
    /// [`SubmittedCode::parse`].
    pub fn code_length(&self) -> CodeLength {
        self.settings.policy.length
    }

    /// `register`: sends a fresh code (replacing any earlier one) and
    /// returns the session token to verify it with.
    pub async fn register(&self, phone: &PhoneNumber, client: &Client) -> Result<IssuedToken, RegisterError> {
        let user = self.users.find_by_phone(phone).await?;
        let nonce = self.otp.random_bytes(NONCE_BYTES);
        let lookup = LookupKey::from_bytes(nonce.clone());
        let issued = self
            .otp
            .issue(
                IssueRequest {
                    purpose: Purpose::PhoneVerify,
                    phone,
                    user_id: user.map(|u| u.id),
                    channel: Channel::Sms,
                    device_binding: None,
                    lookup: &lookup,
                    policy: &self.settings.policy,
                    client,
                },
                &self.messenger,
            )
            .await?;
        let token = self
            .tokens
            .issue_phone_session(
                phone,
                &URL_SAFE_NO_PAD.encode(&nonce),
                self.otp.clock().now(),
                issued.expires_at,
            )
            .map_err(RegisterError::SessionToken)?;
        tracing::info!("security code queued");
        Ok(token)
    }

    /// `verify`: the code must match the challenge the token names, for the
    /// phone the token names. The token is judged before the code.
    pub async fn verify(&self, request: VerifyRequest, client: &Client) -> Result<VerifiedPhone, VerifyError> {
        let VerifyRequest {
            phone,
            code,
            session_token,
        } = request;
        let now = self.otp.clock().now();
        let session = match self.tokens.verify_phone_session(session_token.expose(), now) {
            Ok(session) => session,
            Err(TokenError::Expired) => return Err(VerifyError::SessionExpired),
            Err(_) => return Err(VerifyError::SessionRefused),
        };
        if session.phone != phone.as_str() {
            return Err(VerifyError::SessionForAnotherPhone);
        }
        let nonce = URL_SAFE_NO_PAD
            .decode(&session.nonce)
            .map_err(|_| VerifyError::SessionRefused)?;
        let SubmittedCode::WellFormed(code) = code else {
            return Err(VerifyError::MalformedCode);
        };
        // The code is consumed in the transaction that writes the user: a
        // failed write leaves the code usable for a retry.
        let verification = PhoneVerification {
            phone,
            verified_at: now,
            access_code: None,
            requires_signup: false,
        };
        let users = &self.users;
        let checked = self
            .otp
            .check_then(
                Purpose::PhoneVerify,
                &LookupKey::from_bytes(nonce),
                &code,
                None,
                client,
                |challenge| users.consume_verifying(challenge.id, verification),
            )
            .await;
        let (user, created) = checked.map_err(|error| match error {
            CheckError::Refused(refusal) => VerifyError::Refused(refusal),
            CheckError::Expired => VerifyError::CodeExpired,
            CheckError::Exhausted => VerifyError::AttemptsExhausted,
            CheckError::Store(error) => error.into(),
            CheckError::Provider(error) => VerifyError::Provider(error),
            CheckError::WrongCode { .. } => VerifyError::WrongCode,
            CheckError::NotFound | CheckError::Closed => VerifyError::NoLiveChallenge,
            CheckError::Locked => VerifyError::Locked,
        })?;
        tracing::info!(user_id = user.id.get(), created, "phone verified");
        Ok(VerifiedPhone {
            user_id: user.id,
            created,
        })
    }
}

#[cfg(test)]
mod tests;
