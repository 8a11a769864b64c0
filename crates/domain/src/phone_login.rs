//! The phone-login use cases: `phone_login` sends a PIN by SMS or voice call,
//! bound to the device that asked; `check_pin` exchanges phone + device +
//! PIN for an opaque access code; `check_access_code` lets a backend
//! validate one.
//!
//! The PIN lives 5 minutes by default. The access code is 16 random bytes in
//! hex (32 characters), stored only as a keyed hash. A number with no user
//! gets one when its first PIN is checked, so a person who signed up on
//! another surface is the same user here ("RETURNING_PHONE").

use std::{fmt, sync::Arc, time::Duration};

use crate::{
    abuse::{Client, Refusal, sign_in::SignInGuard},
    delivery::Messenger,
    otp::{
        Channel, CheckError, IssueError, IssueRequest, LookupKey, OtpCode, OtpEngine, OtpPolicy, Purpose, SecretHash,
    },
    phone::{PhoneNumber, PhonePolicy},
    ports::{AccessCodeStore, DeliveryError, StoreError, UserStore},
    time::Timestamp,
    user::{PhoneVerification, UserId},
};

pub use crate::{
    ports::access_codes::{AccessCodeRecord, NewAccessCode},
    user::PendingAccessCode,
};

/// Bytes of randomness in an access code (hex: 32 characters).
const ACCESS_CODE_BYTES: usize = 16;
/// The longest device id accepted.
const MAX_DEVICE_ID: usize = 255;

#[derive(Debug, Clone)]
pub struct PhoneLoginSettings {
    pub phones: PhonePolicy,
    pub policy: OtpPolicy,
    /// How long an access code stays valid.
    pub access_code_ttl: Duration,
}

/// Whether the number already had a user when its PIN was requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStatus {
    NewPhone,
    ReturningPhone,
}

/// The request errors this API reports with its own codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParameterError {
    #[error("missing parameter {0}")]
    Missing(&'static str),
    #[error("invalid parameter {0}")]
    Invalid(&'static str),
    #[error("the phone number is not valid")]
    InvalidPhone,
}

/// Why a PIN could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum PhoneLoginError {
    #[error(transparent)]
    Parameter(#[from] ParameterError),
    /// A rate limit, the SMS budget or the destination rules refused it.
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<IssueError> for PhoneLoginError {
    fn from(error: IssueError) -> Self {
        match error {
            IssueError::Refused(refusal) => Self::Refused(refusal),
            IssueError::Store(error) => Self::Store(error),
        }
    }
}

/// Why a PIN was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CheckPinError {
    #[error(transparent)]
    Parameter(#[from] ParameterError),
    /// Wrong PIN, another device, no PIN requested, or already used.
    #[error("invalid PIN")]
    InvalidPin,
    /// Expired, or every attempt spent: either way a new PIN is needed.
    #[error("the PIN has expired")]
    PinExpired,
    /// The client checked too many PINs (per-IP limit).
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the verification provider failed: {0}")]
    Provider(DeliveryError),
}

/// Why an access code is not valid.
#[derive(Debug, thiserror::Error)]
pub enum AccessCodeError {
    #[error(transparent)]
    Parameter(#[from] ParameterError),
    #[error("invalid access code")]
    Invalid,
    #[error("expired access code")]
    Expired,
    /// The per-IP token-check limit refused it.
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A fresh access code. Redacted in `Debug`.
pub struct AccessGrant {
    access_code: String,
    pub user_id: UserId,
    pub expires_at: Timestamp,
}

impl AccessGrant {
    /// The access code, for the response body and nothing else.
    pub fn expose(&self) -> &str {
        &self.access_code
    }
}

impl fmt::Debug for AccessGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessGrant")
            .field("access_code", &"[redacted]")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What a valid access code stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessCodeInfo {
    pub user_id: UserId,
    pub phone: Option<PhoneNumber>,
    pub expires_at: Timestamp,
}

pub struct PhoneLogin {
    users: Arc<dyn UserStore>,
    access_codes: Arc<dyn AccessCodeStore>,
    messenger: Messenger,
    otp: OtpEngine,
    settings: PhoneLoginSettings,
    /// The per-IP limit of access-code checks.
    guard: SignInGuard,
}

impl fmt::Debug for PhoneLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhoneLogin")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn required<'a>(value: Option<&'a str>, name: &'static str) -> Result<&'a str, ParameterError> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(ParameterError::Missing(name))
}

fn device_id(value: Option<&str>) -> Result<&str, ParameterError> {
    let device = required(value, "device_id")?;
    if device.len() > MAX_DEVICE_ID || device.chars().any(char::is_control) {
        return Err(ParameterError::Invalid("device_id"));
    }
    Ok(device)
}

impl PhoneLogin {
    pub fn new(
        users: Arc<dyn UserStore>,
        access_codes: Arc<dyn AccessCodeStore>,
        messenger: Messenger,
        otp: OtpEngine,
        settings: PhoneLoginSettings,
    ) -> Self {
        Self {
            users,
            access_codes,
            messenger,
            otp,
            settings,
            guard: SignInGuard::default(),
        }
    }

    /// Applies `guard`'s per-IP token-check limit to access-code checks.
    #[must_use]
    pub fn with_sign_in_guard(mut self, guard: SignInGuard) -> Self {
        self.guard = guard;
        self
    }

    fn phone(&self, value: Option<&str>) -> Result<PhoneNumber, ParameterError> {
        let input = required(value, "phone_number")?;
        self.settings
            .phones
            .parse(input)
            .map_err(|_| ParameterError::InvalidPhone)
    }

    fn access_code_hash(&self, code: &str) -> SecretHash {
        self.otp.hasher().token_hash("access_code", code.as_bytes())
    }

    /// `phone_login`: sends a PIN for `device_id` by SMS, or by a call when
    /// `call_verify` is `T`.
    pub async fn phone_login(
        &self,
        phone_number: Option<&str>,
        device: Option<&str>,
        call_verify: Option<&str>,
        client: &Client,
    ) -> Result<LoginStatus, PhoneLoginError> {
        let phone = self.phone(phone_number)?;
        let device = device_id(device)?;
        let channel = match call_verify.map(str::trim) {
            None | Some("" | "F") => Channel::Sms,
            Some("T") => Channel::Call,
            Some(_) => return Err(ParameterError::Invalid("call_verify").into()),
        };
        let user = self.users.find_by_phone(&phone).await?;
        // The phone is the lookup key: one live PIN per number, and a new
        // request replaces the old PIN whichever device asked.
        let lookup = LookupKey::from_bytes(phone.as_str().as_bytes().to_vec());
        self.otp
            .issue(
                IssueRequest {
                    purpose: Purpose::PhoneLogin,
                    phone: &phone,
                    user_id: user.as_ref().map(|u| u.id),
                    channel,
                    device_binding: Some(device.to_owned()),
                    lookup: &lookup,
                    policy: &self.settings.policy,
                    client,
                },
                &self.messenger,
            )
            .await?;
        tracing::info!(channel = channel.as_str(), "login PIN queued");
        Ok(if user.is_some() {
            LoginStatus::ReturningPhone
        } else {
            LoginStatus::NewPhone
        })
    }

    /// `check_pin`: the PIN must match, for the same phone and device, within
    /// its lifetime.
    pub async fn check_pin(
        &self,
        phone_number: Option<&str>,
        device: Option<&str>,
        verify_pin: Option<&str>,
        client: &Client,
    ) -> Result<AccessGrant, CheckPinError> {
        let phone = self.phone(phone_number)?;
        let device = device_id(device)?;
        let pin = required(verify_pin, "verify_pin")?;
        let pin = OtpCode::parse(pin, self.settings.policy.length).ok_or(CheckPinError::InvalidPin)?;
        let lookup = LookupKey::from_bytes(phone.as_str().as_bytes().to_vec());
        let now = self.otp.clock().now();
        let access_code: String = self
            .otp
            .random_bytes(ACCESS_CODE_BYTES)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let expires_at = now.plus(self.settings.access_code_ttl);
        let verification = PhoneVerification {
            phone: phone.clone(),
            verified_at: now,
            access_code: Some(PendingAccessCode {
                code_hash: self.access_code_hash(&access_code),
                device_id: device.to_owned(),
                expires_at,
            }),
            requires_signup: false,
        };
        // The PIN is consumed in the transaction that writes the user and
        // the access code: a failed write leaves the PIN usable for a retry.
        let users = &self.users;
        let checked = self
            .otp
            .check_then(Purpose::PhoneLogin, &lookup, &pin, Some(device), client, |challenge| {
                users.consume_verifying(challenge.id, verification)
            })
            .await;
        let (user, created) = match checked {
            Ok(verified) => verified,
            Err(CheckError::Refused(refusal)) => return Err(CheckPinError::Refused(refusal)),
            Err(CheckError::Expired | CheckError::Exhausted) => {
                return Err(CheckPinError::PinExpired);
            }
            Err(CheckError::Store(error)) => return Err(error.into()),
            Err(CheckError::Provider(error)) => return Err(CheckPinError::Provider(error)),
            Err(CheckError::NotFound | CheckError::WrongCode { .. } | CheckError::Closed | CheckError::Locked) => {
                return Err(CheckPinError::InvalidPin);
            }
        };
        tracing::info!(user_id = user.id.get(), created, "PIN checked; access code issued");
        Ok(AccessGrant {
            access_code,
            user_id: user.id,
            expires_at,
        })
    }

    /// `check_access_code`: whether `access_code` is valid now (and, when
    /// `device_id` is given, was issued to that device).
    pub async fn check_access_code(
        &self,
        access_code: Option<&str>,
        device: Option<&str>,
        client: &Client,
    ) -> Result<AccessCodeInfo, AccessCodeError> {
        let code = required(access_code, "access_code")?;
        self.guard
            .admit_token_check(client, self.otp.clock().now())
            .await
            .map_err(AccessCodeError::Refused)?;
        if code.len() != ACCESS_CODE_BYTES * 2 || !code.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AccessCodeError::Invalid);
        }
        let record = self
            .access_codes
            .find_access_code(&self.access_code_hash(&code.to_ascii_lowercase()))
            .await?
            .ok_or(AccessCodeError::Invalid)?;
        let device = device.map(str::trim).filter(|d| !d.is_empty());
        if record.revoked || device.is_some_and(|device| device != record.device_id) {
            return Err(AccessCodeError::Invalid);
        }
        if self.otp.clock().now() >= record.expires_at {
            return Err(AccessCodeError::Expired);
        }
        Ok(AccessCodeInfo {
            user_id: record.user_id,
            phone: record.phone,
            expires_at: record.expires_at,
        })
    }
}

#[cfg(test)]
mod tests;
