//! The phone-verify use cases: `register` sends a security code and returns
//! a session token; `verify` checks phone + code + token together.
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
    otp::{Channel, CheckError, IssueError, IssueRequest, LookupKey, OtpCode, OtpEngine, OtpPolicy, Purpose},
    phone::{PhoneInputError, PhonePolicy},
    ports::{DeliveryError, StoreError, TokenIssuer, UserStore},
    token::{IssuedToken, TokenError},
    user::{PhoneVerification, UserId},
};

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
    #[error("phone_number is required")]
    MissingPhone,
    #[error(transparent)]
    InvalidPhone(PhoneInputError),
    /// A rate limit, the SMS budget or the destination rules refused it.
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Token(TokenError),
}

impl From<IssueError> for RegisterError {
    fn from(error: IssueError) -> Self {
        match error {
            IssueError::Refused(refusal) => Self::Refused(refusal),
            IssueError::Store(error) => Self::Store(error),
        }
    }
}

/// The three fields a verification needs; `None` when not sent. `Debug`
/// hides the code and the token.
#[derive(Clone, Copy, Default)]
pub struct VerifyRequest<'a> {
    pub phone_number: Option<&'a str>,
    pub security_code: Option<&'a str>,
    pub session_token: Option<&'a str>,
}

impl fmt::Debug for VerifyRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("phone_number", &self.phone_number)
            .field("security_code", &self.security_code.map(|_| "[redacted]"))
            .field("session_token", &self.session_token.map(|_| "[redacted]"))
            .finish()
    }
}

/// Why a verification failed.
#[derive(Debug, thiserror::Error)]
pub enum PhoneVerifyError {
    /// The named fields are missing or blank.
    #[error("missing fields: {0:?}")]
    MissingFields(Vec<&'static str>),
    #[error(transparent)]
    InvalidPhone(PhoneInputError),
    /// Wrong code, or a token that does not match the phone or any live
    /// challenge: one answer for all.
    #[error("Security code is not valid")]
    InvalidCode,
    #[error("Security code has expired")]
    Expired,
    #[error("Too many failed verification attempts. Please request a new code.")]
    TooManyAttempts,
    /// The client checked too many codes (per-IP limit).
    #[error(transparent)]
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

    /// `register`: sends a fresh code (replacing any earlier one) and
    /// returns the session token to verify it with.
    pub async fn register(&self, phone_number: Option<&str>, client: &Client) -> Result<IssuedToken, RegisterError> {
        let input = phone_number
            .filter(|p| !p.trim().is_empty())
            .ok_or(RegisterError::MissingPhone)?;
        let phone = self.settings.phones.parse(input).map_err(RegisterError::InvalidPhone)?;
        let user = self.users.find_by_phone(&phone).await?;
        let nonce = self.otp.random_bytes(NONCE_BYTES);
        let lookup = LookupKey::from_bytes(nonce.clone());
        let issued = self
            .otp
            .issue(
                IssueRequest {
                    purpose: Purpose::PhoneVerify,
                    phone: &phone,
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
                &phone,
                &URL_SAFE_NO_PAD.encode(&nonce),
                self.otp.clock().now(),
                issued.expires_at,
            )
            .map_err(RegisterError::Token)?;
        tracing::info!("security code queued");
        Ok(token)
    }

    /// `verify`: the code must match the challenge the token names, for the
    /// phone the token names.
    pub async fn verify(&self, request: VerifyRequest<'_>, client: &Client) -> Result<VerifiedPhone, PhoneVerifyError> {
        fn present(value: Option<&str>) -> Option<&str> {
            value.filter(|v| !v.trim().is_empty())
        }
        let (phone_number, code, token) = match (
            present(request.phone_number),
            present(request.security_code),
            present(request.session_token),
        ) {
            (Some(phone), Some(code), Some(token)) => (phone, code, token),
            (phone, code, token) => {
                let missing = [
                    ("phone_number", phone.is_none()),
                    ("security_code", code.is_none()),
                    ("session_token", token.is_none()),
                ];
                return Err(PhoneVerifyError::MissingFields(
                    missing.iter().filter(|(_, m)| *m).map(|(name, _)| *name).collect(),
                ));
            }
        };
        let phone = self
            .settings
            .phones
            .parse(phone_number)
            .map_err(PhoneVerifyError::InvalidPhone)?;
        let now = self.otp.clock().now();
        let session = match self.tokens.verify_phone_session(token, now) {
            Ok(session) => session,
            Err(TokenError::Expired) => return Err(PhoneVerifyError::Expired),
            Err(_) => return Err(PhoneVerifyError::InvalidCode),
        };
        if session.phone != phone.as_str() {
            return Err(PhoneVerifyError::InvalidCode);
        }
        let nonce = URL_SAFE_NO_PAD
            .decode(&session.nonce)
            .map_err(|_| PhoneVerifyError::InvalidCode)?;
        let code = OtpCode::parse(code, self.settings.policy.length).ok_or(PhoneVerifyError::InvalidCode)?;
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
        let (user, created) = match checked {
            Ok(verified) => verified,
            Err(CheckError::Refused(refusal)) => return Err(PhoneVerifyError::Refused(refusal)),
            Err(CheckError::Expired) => return Err(PhoneVerifyError::Expired),
            Err(CheckError::Exhausted) => return Err(PhoneVerifyError::TooManyAttempts),
            Err(CheckError::Store(error)) => return Err(error.into()),
            Err(CheckError::Provider(error)) => return Err(PhoneVerifyError::Provider(error)),
            Err(CheckError::NotFound | CheckError::WrongCode { .. } | CheckError::Closed | CheckError::Locked) => {
                return Err(PhoneVerifyError::InvalidCode);
            }
        };
        tracing::info!(user_id = user.id.get(), created, "phone verified");
        Ok(VerifiedPhone {
            user_id: user.id,
            created,
        })
    }
}

#[cfg(test)]
mod tests;
