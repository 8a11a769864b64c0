//! The phone-login use cases: `phone_login` sends a PIN by SMS or voice call,
//! bound to the device that asked; `check_pin` exchanges phone + device +
//! PIN for an opaque access code; `check_access_code` lets a backend
//! validate one.
//!
//! The use cases take inputs that the edge has already parsed (a
//! [`PhoneNumber`], a [`DeviceId`], the PIN as an [`OtpCode`], a
//! [`SubmittedAccessCode`]); a missing parameter is the edge's to answer.
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
        Channel, CheckError, CodeLength, IssueError, IssueRequest, LookupKey, OtpCode, OtpEngine, OtpPolicy, Purpose,
        SecretHash,
    },
    phone::{PhoneNumber, PhonePolicy},
    ports::{AccessCodeStore, DeliveryError, StoreError, UserStore},
    time::Timestamp,
    user::{PhoneVerification, UserId},
};

mod inputs;

use inputs::ACCESS_CODE_BYTES;
pub use inputs::{AccessCode, DeviceId, DeviceIdError, MAX_DEVICE_ID_BYTES, RequiredDevice, SubmittedAccessCode};

pub use crate::{
    ports::access_codes::{AccessCodeRecord, NewAccessCode},
    user::PendingAccessCode,
};

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

/// A PIN request: where to send it, for which device, and how.
#[derive(Debug, Clone)]
pub struct PinRequest {
    pub phone: PhoneNumber,
    pub device: DeviceId,
    /// [`Channel::Call`] reads the PIN aloud.
    pub channel: Channel,
}

/// A PIN to exchange for an access code.
#[derive(Debug, Clone)]
pub struct PinCheck {
    pub phone: PhoneNumber,
    /// It must be the device of the PIN request.
    pub device: DeviceId,
    pub pin: OtpCode,
}

/// Why a PIN could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum PhoneLoginError {
    /// A rate limit, the SMS budget or the destination rules refused it.
    #[error("the send was refused: {0}")]
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

/// Why a PIN was not accepted. Clients learn less than this: the surface
/// answers the causes a guesser could use alike.
#[derive(Debug, thiserror::Error)]
pub enum CheckPinError {
    /// A wrong PIN, or the right one from another device.
    #[error("the PIN does not match for this device")]
    WrongPin,
    /// No PIN was requested, it was used, or a newer one replaced it.
    #[error("no live PIN for this phone number")]
    NoLivePin,
    /// The number had too many wrong PINs: the PIN was not compared.
    #[error("the phone number is locked after too many wrong PINs")]
    Locked,
    #[error("the PIN has expired")]
    PinExpired,
    #[error("every attempt at the PIN was used")]
    AttemptsExhausted,
    /// The client checked too many PINs (per-IP limit).
    #[error("the check was refused: {0}")]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the verification provider failed: {0}")]
    Provider(DeliveryError),
}

/// Why an access code is not valid. Clients learn less than this: every
/// cause but expiry is answered alike.
#[derive(Debug, thiserror::Error)]
pub enum AccessCodeError {
    #[error("the access code is not 32 hex digits")]
    Malformed,
    #[error("no access code has this hash")]
    Unknown,
    #[error("the access code was revoked")]
    Revoked,
    #[error("the access code was issued to another device")]
    OtherDevice,
    #[error("the access code has expired")]
    Expired,
    /// The per-IP token-check limit refused it.
    #[error("the check was refused: {0}")]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A fresh access code. Redacted in `Debug`.
pub struct AccessGrant {
    access_code: AccessCode,
    pub user_id: UserId,
    pub expires_at: Timestamp,
}

impl AccessGrant {
    /// The access code, for the response body and nothing else.
    pub fn expose(&self) -> &str {
        self.access_code.expose()
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

    /// How this surface reads phone numbers, for the edge to build a
    /// [`PhoneNumber`] with.
    pub fn phones(&self) -> &PhonePolicy {
        &self.settings.phones
    }

    /// How many digits a PIN has, for the edge to read one with
    /// [`OtpCode::parse`].
    pub fn pin_length(&self) -> CodeLength {
        self.settings.policy.length
    }

    fn access_code_hash(&self, code: &AccessCode) -> SecretHash {
        self.otp.hasher().token_hash("access_code", code.expose().as_bytes())
    }

    /// `phone_login`: sends a PIN for the request's device by its channel.
    pub async fn phone_login(&self, request: PinRequest, client: &Client) -> Result<LoginStatus, PhoneLoginError> {
        let PinRequest { phone, device, channel } = request;
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
                    device_binding: Some(device.as_str().to_owned()),
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
    pub async fn check_pin(&self, check: PinCheck, client: &Client) -> Result<AccessGrant, CheckPinError> {
        let PinCheck { phone, device, pin } = check;
        let lookup = LookupKey::from_bytes(phone.as_str().as_bytes().to_vec());
        let now = self.otp.clock().now();
        let access_code = AccessCode::from_bytes(&self.otp.random_bytes(ACCESS_CODE_BYTES));
        let expires_at = now.plus(self.settings.access_code_ttl);
        let verification = PhoneVerification {
            phone,
            verified_at: now,
            access_code: Some(PendingAccessCode {
                code_hash: self.access_code_hash(&access_code),
                device_id: device.as_str().to_owned(),
                expires_at,
            }),
            requires_signup: false,
        };
        // The PIN is consumed in the transaction that writes the user and
        // the access code: a failed write leaves the PIN usable for a retry.
        let users = &self.users;
        let checked = self
            .otp
            .check_then(
                Purpose::PhoneLogin,
                &lookup,
                &pin,
                Some(device.as_str()),
                client,
                |challenge| users.consume_verifying(challenge.id, verification),
            )
            .await;
        let (user, created) = checked.map_err(|error| match error {
            CheckError::Refused(refusal) => CheckPinError::Refused(refusal),
            CheckError::Expired => CheckPinError::PinExpired,
            CheckError::Exhausted => CheckPinError::AttemptsExhausted,
            CheckError::Store(error) => error.into(),
            CheckError::Provider(error) => CheckPinError::Provider(error),
            CheckError::WrongCode { .. } => CheckPinError::WrongPin,
            CheckError::NotFound | CheckError::Closed => CheckPinError::NoLivePin,
            CheckError::Locked => CheckPinError::Locked,
        })?;
        tracing::info!(user_id = user.id.get(), created, "PIN checked; access code issued");
        Ok(AccessGrant {
            access_code,
            user_id: user.id,
            expires_at,
        })
    }

    /// `check_access_code`: whether `code` is valid now and was issued to
    /// `device`. Every check counts against the per-IP limit first, a
    /// malformed code included.
    pub async fn check_access_code(
        &self,
        code: SubmittedAccessCode,
        device: &RequiredDevice,
        client: &Client,
    ) -> Result<AccessCodeInfo, AccessCodeError> {
        self.guard
            .admit_token_check(client, self.otp.clock().now())
            .await
            .map_err(AccessCodeError::Refused)?;
        let SubmittedAccessCode::WellFormed(code) = code else {
            return Err(AccessCodeError::Malformed);
        };
        let record = self
            .access_codes
            .find_access_code(&self.access_code_hash(&code))
            .await?
            .ok_or(AccessCodeError::Unknown)?;
        if record.revoked {
            return Err(AccessCodeError::Revoked);
        }
        if !device.admits(&record.device_id) {
            return Err(AccessCodeError::OtherDevice);
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
