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
    abuse::Client,
    delivery::Messenger,
    device::{PushHandle, PushPlatform},
    otp::{Channel, CheckError, IssueRequest, LookupKey, OtpCode, OtpEngine, Purpose},
    phone::PhoneNumber,
    ports::{DeviceStore, TokenIssuer, UserStore},
    token::IssuedToken,
    user::{PhoneVerification, UserId, UserProfile},
};

mod error;
mod inputs;

pub use error::{AuthError, RegisterDeviceError, SendPinError, VerifyError};
use inputs::AUTH_KEY_BYTES;
pub use inputs::{
    BearerToken, MAX_TEXT_CHARS, OtpAuthKey, OtpAuthKeyError, PinAuthSettings, PinError, ProfileText, SignedIn, Signup,
    SignupAddress, TooLong,
};

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
        let key = OtpAuthKey::encode(self.otp.random_bytes(AUTH_KEY_BYTES));
        let lookup = key.lookup();
        (key, lookup)
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
    pub async fn send_pin(&self, phone: &PhoneNumber, client: &Client) -> Result<OtpAuthKey, SendPinError> {
        match self.users.find_by_phone(phone).await? {
            Some(user) => self.challenge_user(phone, user.id, client).await,
            None => {
                let (key, lookup) = self.new_key();
                self.otp
                    .issue_decoy(self.issue_request(phone, None, &lookup, client), &self.messenger)
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
    ///
    /// The fields were bounded when the signup was parsed, for known and
    /// unknown mobiles alike: refusing only new users' long names would
    /// tell an attacker which mobiles have accounts.
    pub async fn signup(&self, signup: Signup, client: &Client) -> Result<OtpAuthKey, SendPinError> {
        let phone = signup.phone.clone();
        if let Some(user) = self.users.find_by_phone(&phone).await? {
            return self.challenge_user(&phone, user.id, client).await;
        }
        let (key, lookup) = self.new_key();
        let (challenge, outgoing, _issued) = self
            .otp
            .issue_unstored(self.issue_request(&phone, None, &lookup, client), &self.messenger)
            .await?;
        self.users
            .store_signup(signup.into_new_user(), challenge, outgoing)
            .await?;
        tracing::info!("signup pending until its pin is verified; pin queued");
        Ok(key)
    }

    /// `verify`: exchanges a key and pin for a JWT and the user's profile.
    ///
    /// Both were parsed at the edge: a key that is not 16 bytes of base64 or
    /// a pin of the wrong shape cannot match any challenge, and is refused
    /// there without spending an attempt.
    pub async fn verify(&self, key: &OtpAuthKey, pin: &OtpCode, client: &Client) -> Result<Session, VerifyError> {
        let lookup = key.lookup();
        // The pin proves the client holds the challenge's number: in the
        // transaction that consumes it, the number's user is marked verified,
        // or created with the signup's pending fields (a decoy has no code
        // and never gets here).
        let now = self.otp.clock().now();
        let users = &self.users;
        let checked = self
            .otp
            .check_then(Purpose::PinAuth, &lookup, pin, None, client, |challenge| {
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
            Err(CheckError::Exhausted) => return Err(VerifyError::AttemptsExhausted),
            Err(CheckError::Store(error)) => return Err(error.into()),
            Err(CheckError::Provider(error)) => return Err(VerifyError::Provider(error)),
            Err(CheckError::NotFound | CheckError::WrongCode { .. } | CheckError::Closed | CheckError::Locked) => {
                return Err(VerifyError::WrongPin);
            }
        };
        let user_id = user.id;
        let profile = self.users.profile(user_id).await?.ok_or(VerifyError::WrongPin)?;
        let token = self.tokens.issue(user_id, now).map_err(VerifyError::Token)?;
        tracing::info!(user_id = user_id.get(), created, "pin verified; token issued");
        Ok(Session { token, profile })
    }

    /// Verifies a bearer token and says whom it was issued to. The user may
    /// no longer exist; the use cases that take [`SignedIn`] check.
    pub fn authenticate(&self, bearer: &BearerToken) -> Result<SignedIn, AuthError> {
        self.tokens
            .verify(bearer.expose(), self.otp.clock().now())
            .map(|claims| SignedIn(claims.user_id))
            .map_err(AuthError::TokenRefused)
    }

    /// `current_user_profile` for the holder of a verified token.
    pub async fn current_user_profile(&self, signed_in: SignedIn) -> Result<UserProfile, AuthError> {
        self.users
            .profile(signed_in.user_id())
            .await?
            .ok_or(AuthError::UnknownUser)
    }

    /// `register_device`: records a push registration for the token's user.
    pub async fn register_device(
        &self,
        signed_in: SignedIn,
        handle: &PushHandle,
        platform: PushPlatform,
    ) -> Result<(), RegisterDeviceError> {
        let user_id = signed_in.user_id();
        // A correctly signed token can name a user this database does not
        // have. That is a refused token, as for the profile, not a store
        // failure when the device row's foreign key is refused.
        if self.users.profile(user_id).await?.is_none() {
            return Err(AuthError::UnknownUser.into());
        }
        self.devices
            .register_push(user_id, platform, handle, self.otp.clock().now())
            .await?;
        tracing::info!(user_id = user_id.get(), platform = %platform, "push registration recorded");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
