//! The pin-auth use cases: `send_pin`, `signup`, `verify`,
//! `current_user_profile` and `register_device`.
//!
//! A client sends a mobile number and gets an `otp_auth_key`; if the number
//! belongs to a user, a 4-digit pin goes out by SMS. The client sends the key
//! and the pin back and gets a JWT. An unknown number gets a random key of
//! the same shape and nothing is sent; the request does the same store work
//! as for a known number (a decoy challenge), so neither the body nor the
//! timing tells an attacker whether the number has an account.

use std::{fmt, sync::Arc};

use crate::{
    abuse::{Client, Refusal},
    delivery::Messenger,
    device::{PushHandle, PushHandleError, PushPlatform, PushPlatformError},
    otp::{Channel, CheckError, IssueError, IssueRequest, LookupKey, OtpCode, OtpEngine, OtpPolicy, Purpose},
    phone::{MobileError, MobileRule, PhoneNumber},
    ports::{DeliveryError, DeviceStore, StoreError, TokenIssuer, UserStore},
    token::{IssuedToken, TokenError},
    user::{NewAddress, NewUser, PhoneVerification, UserId, UserProfile},
};
use base64::{Engine as _, engine::general_purpose::STANDARD};

/// The longest name or address field accepted at signup, in characters.
pub const MAX_TEXT_CHARS: usize = 255;

/// Bytes of randomness in an `otp_auth_key` (base64: 24 characters).
const AUTH_KEY_BYTES: usize = 16;

/// The key a client sends back with the pin. It cycles with every new pin.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpAuthKey(String);

impl OtpAuthKey {
    fn encode(bytes: &[u8]) -> Self {
        Self(STANDARD.encode(bytes))
    }

    /// Decodes a key a client sent; `None` if it cannot be one of ours.
    fn decode(input: &str) -> Option<LookupKey> {
        let bytes = STANDARD.decode(input.trim()).ok()?;
        (bytes.len() == AUTH_KEY_BYTES).then(|| LookupKey::from_bytes(bytes))
    }

    /// The key text, for the response body and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtpAuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpAuthKey([redacted])")
    }
}

/// The settings of the pin-auth surface.
#[derive(Debug, Clone)]
pub struct PinAuthSettings {
    pub mobile_rule: MobileRule,
    pub policy: OtpPolicy,
}

/// A signup as the client sends it.
#[derive(Debug, Clone, Default)]
pub struct SignupRequest {
    pub mobile: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub address: Option<NewAddress>,
}

/// Why a pin could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendPinError {
    #[error(transparent)]
    InvalidMobile(#[from] MobileError),
    /// A free-text field over [`MAX_TEXT_CHARS`]; the name is the client's
    /// ("First name").
    #[error("{0} is too long (maximum is 255 characters)")]
    TooLong(&'static str),
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

/// Why a pin was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("Otp auth key can't be blank")]
    MissingKey,
    #[error("Pin can't be blank")]
    MissingPin,
    /// Wrong pin, unknown or superseded key, or a pin already used: one
    /// answer for all, so a guesser learns nothing.
    #[error("Invalid pin")]
    InvalidPin,
    #[error("Pin has expired")]
    Expired,
    #[error("Too many failed attempts. Please request a new pin.")]
    TooManyAttempts,
    /// The client checked too many pins (per-IP limit).
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Token(TokenError),
    #[error("the verification provider failed: {0}")]
    Provider(DeliveryError),
}

/// Why a bearer token was not accepted, or the user not found.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a device could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterDeviceError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    InvalidHandle(#[from] PushHandleError),
    #[error(transparent)]
    InvalidPlatform(#[from] PushPlatformError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A successful verify: the token and the user it was issued for.
#[derive(Debug)]
pub struct Session {
    pub token: IssuedToken,
    pub profile: UserProfile,
}

/// The pin-auth use cases over their ports.
pub struct PinAuth {
    users: Arc<dyn UserStore>,
    devices: Arc<dyn DeviceStore>,
    messenger: Messenger,
    tokens: Arc<dyn TokenIssuer>,
    otp: OtpEngine,
    settings: PinAuthSettings,
}

impl fmt::Debug for PinAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinAuth")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl PinAuth {
    pub fn new(
        users: Arc<dyn UserStore>,
        devices: Arc<dyn DeviceStore>,
        messenger: Messenger,
        tokens: Arc<dyn TokenIssuer>,
        otp: OtpEngine,
        settings: PinAuthSettings,
    ) -> Self {
        Self {
            users,
            devices,
            messenger,
            tokens,
            otp,
            settings,
        }
    }

    pub fn settings(&self) -> &PinAuthSettings {
        &self.settings
    }

    fn new_key(&self) -> (OtpAuthKey, LookupKey) {
        let bytes = self.otp.random_bytes(AUTH_KEY_BYTES);
        (OtpAuthKey::encode(&bytes), LookupKey::from_bytes(bytes))
    }

    fn issue_request<'a>(
        &'a self,
        phone: &'a PhoneNumber,
        user_id: Option<UserId>,
        lookup: &'a LookupKey,
        client: &'a Client,
    ) -> IssueRequest<'a> {
        IssueRequest {
            purpose: Purpose::PinAuth,
            phone,
            user_id,
            channel: Channel::Sms,
            device_binding: None,
            lookup,
            policy: &self.settings.policy,
            client,
        }
    }

    /// Issues a pin to an existing user and queues it.
    async fn challenge_user(
        &self,
        phone: &PhoneNumber,
        user: UserId,
        client: &Client,
    ) -> Result<OtpAuthKey, SendPinError> {
        let (key, lookup) = self.new_key();
        self.otp
            .issue(self.issue_request(phone, Some(user), &lookup, client), &self.messenger)
            .await?;
        tracing::info!(user_id = user.get(), "pin queued");
        Ok(key)
    }

    /// `send_pin`: a pin for a known mobile, a decoy for an unknown one.
    pub async fn send_pin(&self, mobile: &str, client: &Client) -> Result<OtpAuthKey, SendPinError> {
        let phone = self.settings.mobile_rule.parse(mobile)?;
        match self.users.find_by_phone(&phone).await? {
            Some(user) => self.challenge_user(&phone, user.id, client).await,
            None => {
                let (key, lookup) = self.new_key();
                self.otp
                    .issue_decoy(self.issue_request(&phone, None, &lookup, client), &self.messenger)
                    .await?;
                tracing::info!("pin requested for a number with no user; nothing sent");
                Ok(key)
            }
        }
    }

    /// `signup`: sends a pin either way. If the mobile has a user, the other
    /// fields are ignored. If not, they are kept pending with the pin's
    /// challenge and the user is created with them only when that pin is
    /// verified: a signup by someone who does not hold the number never
    /// shows its names to the number's owner, and holds the number nowhere.
    pub async fn signup(&self, request: SignupRequest, client: &Client) -> Result<OtpAuthKey, SendPinError> {
        let phone = self.settings.mobile_rule.parse(&request.mobile)?;
        // Checked before the lookup, for known and unknown mobiles alike:
        // refusing only new users' long names would tell an attacker which
        // mobiles have accounts.
        let address = request.address.as_ref();
        let fields = [
            ("First name", request.first_name.as_deref()),
            ("Last name", request.last_name.as_deref()),
            ("Street", address.and_then(|a| a.street.as_deref())),
            ("Flat", address.and_then(|a| a.flat.as_deref())),
            ("Building", address.and_then(|a| a.building.as_deref())),
            ("Address type", address.and_then(|a| a.address_type.as_deref())),
        ];
        if let Some((name, _)) = fields
            .iter()
            .find(|(_, value)| value.is_some_and(|v| v.chars().count() > MAX_TEXT_CHARS))
        {
            return Err(SendPinError::TooLong(name));
        }
        if let Some(user) = self.users.find_by_phone(&phone).await? {
            return self.challenge_user(&phone, user.id, client).await;
        }
        let (key, lookup) = self.new_key();
        let (challenge, outgoing, _issued) = self
            .otp
            .issue_unstored(self.issue_request(&phone, None, &lookup, client), &self.messenger)
            .await?;
        let signup = NewUser {
            phone: phone.clone(),
            first_name: request.first_name,
            last_name: request.last_name,
            address: request.address,
        };
        self.users.store_signup(signup, challenge, outgoing).await?;
        tracing::info!("signup pending until its pin is verified; pin queued");
        Ok(key)
    }

    /// `verify`: exchanges a key and pin for a JWT and the user's profile.
    pub async fn verify(&self, otp_auth_key: &str, pin: &str, client: &Client) -> Result<Session, VerifyError> {
        if otp_auth_key.trim().is_empty() {
            return Err(VerifyError::MissingKey);
        }
        if pin.trim().is_empty() {
            return Err(VerifyError::MissingPin);
        }
        // Malformed input cannot match any challenge; it spends no attempt.
        let lookup = OtpAuthKey::decode(otp_auth_key).ok_or(VerifyError::InvalidPin)?;
        let code = OtpCode::parse(pin, self.settings.policy.length).ok_or(VerifyError::InvalidPin)?;
        // The pin proves the client holds the challenge's number: in the
        // transaction that consumes it, the number's user is marked verified,
        // or created with the signup's pending fields (a decoy has no code
        // and never gets here).
        let now = self.otp.clock().now();
        let users = &self.users;
        let checked = self
            .otp
            .check_then(Purpose::PinAuth, &lookup, &code, None, client, |challenge| {
                users.consume_verifying(
                    challenge.id,
                    PhoneVerification {
                        phone: challenge.phone,
                        verified_at: now,
                        access_code: None,
                        // A challenge for no user is a signup's, or a decoy
                        // (which never matches, but never yields a session
                        // even if it did).
                        requires_signup: challenge.user_id.is_none(),
                    },
                )
            })
            .await;
        let (user, created) = match checked {
            Ok(verified) => verified,
            Err(CheckError::Refused(refusal)) => return Err(VerifyError::Refused(refusal)),
            Err(CheckError::Expired) => return Err(VerifyError::Expired),
            Err(CheckError::Exhausted) => return Err(VerifyError::TooManyAttempts),
            Err(CheckError::Store(error)) => return Err(error.into()),
            Err(CheckError::Provider(error)) => return Err(VerifyError::Provider(error)),
            Err(CheckError::NotFound | CheckError::WrongCode { .. } | CheckError::Closed | CheckError::Locked) => {
                return Err(VerifyError::InvalidPin);
            }
        };
        let user_id = user.id;
        let profile = self.users.profile(user_id).await?.ok_or(VerifyError::InvalidPin)?;
        let token = self.tokens.issue(user_id, now).map_err(VerifyError::Token)?;
        tracing::info!(user_id = user_id.get(), created, "pin verified; token issued");
        Ok(Session { token, profile })
    }

    /// Verifies a bearer token and returns whom it was issued to.
    fn authenticate(&self, bearer: Option<&str>) -> Result<UserId, AuthError> {
        let token = bearer
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::Unauthorized("no bearer token"))?;
        match self.tokens.verify(token, self.otp.clock().now()) {
            Ok(claims) => Ok(claims.user_id),
            Err(TokenError::Expired) => Err(AuthError::Unauthorized("token expired")),
            Err(TokenError::NotYetValid) => Err(AuthError::Unauthorized("token not yet valid")),
            Err(_) => Err(AuthError::Unauthorized("token invalid")),
        }
    }

    /// `current_user_profile` for the holder of `bearer`.
    pub async fn current_user_profile(&self, bearer: Option<&str>) -> Result<UserProfile, AuthError> {
        let user_id = self.authenticate(bearer)?;
        self.users
            .profile(user_id)
            .await?
            .ok_or(AuthError::Unauthorized("user no longer exists"))
    }

    /// `register_device`: records a push registration for the token's user.
    pub async fn register_device(
        &self,
        bearer: Option<&str>,
        handle: &str,
        platform: &str,
    ) -> Result<(), RegisterDeviceError> {
        let user_id = self.authenticate(bearer)?;
        let handle = PushHandle::parse(handle)?;
        let platform = PushPlatform::parse(platform)?;
        // A correctly signed token can name a user this database does not
        // have (a database restored from an older backup, or reset under the
        // same secret). That is a refused token, as for the profile, not a
        // store failure when the device row's foreign key is refused.
        if self.users.profile(user_id).await?.is_none() {
            return Err(AuthError::Unauthorized("user no longer exists").into());
        }
        self.devices
            .register_push(user_id, platform, &handle, self.otp.clock().now())
            .await?;
        tracing::info!(user_id = user_id.get(), platform = %platform, "push registration recorded");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
