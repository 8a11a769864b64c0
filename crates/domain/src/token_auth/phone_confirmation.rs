//! Confirming a phone number for a signed-in user: a texted code makes
//! the phone the user's verified phone.

use super::{Authenticated, TokenAuth};
use crate::{
    abuse::{Client, Refusal},
    otp::{Channel, CheckError, IssueError, IssueRequest, LookupKey, OtpCode, Purpose},
    phone::PhoneNumber,
    ports::{AccountError, DeliveryError, StoreError},
    user::UserId,
};

/// Why no confirmation code was sent.
#[derive(Debug, thiserror::Error)]
pub enum SendPhoneCodeError {
    /// Another user has this phone.
    #[error("the phone is another user's")]
    PhoneTaken,
    /// A rate limit, the SMS budget or the destination rules refused it.
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a phone was not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmPhoneError {
    /// No open challenge, a wrong code, or a challenge closed or locked:
    /// one variant, as the client is told the same.
    #[error("the code matches no open challenge")]
    WrongCode,
    #[error("the code has expired")]
    Expired,
    /// The challenge's wrong tries are used up.
    #[error("the challenge has no tries left")]
    Exhausted,
    /// Another user confirmed this phone meanwhile.
    #[error("the phone is another user's")]
    PhoneTaken,
    /// A rate limit refused the check.
    #[error(transparent)]
    Refused(Refusal),
    /// The provider that checks codes (Twilio Verify) could not answer.
    #[error(transparent)]
    Provider(DeliveryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TokenAuth {
    /// The phone-confirmation challenge of a user is found by the user.
    fn confirm_lookup(user: UserId) -> LookupKey {
        LookupKey::from_bytes(user.get().to_be_bytes().to_vec())
    }

    /// `POST /api/v1/settings/send_phone_verification`.
    /// The phone is read by [`TokenAuth::phones`].
    pub async fn send_phone_verification(
        &self,
        session: &Authenticated,
        phone: &PhoneNumber,
        client: &Client,
    ) -> Result<(), SendPhoneCodeError> {
        let user_id = session.user_id();
        if let Some(owner) = self.ports.users.find_by_phone(phone).await?
            && owner.id != user_id
        {
            return Err(SendPhoneCodeError::PhoneTaken);
        }
        let lookup = Self::confirm_lookup(user_id);
        self.otp
            .issue(
                IssueRequest {
                    purpose: Purpose::PhoneConfirm,
                    phone,
                    user_id: Some(user_id),
                    channel: Channel::Sms,
                    device_binding: None,
                    lookup: &lookup,
                    policy: &self.settings.phone_policy,
                    client,
                },
                &self.ports.messenger,
            )
            .await
            .map_err(|error| match error {
                IssueError::Refused(refusal) => SendPhoneCodeError::Refused(refusal),
                IssueError::Store(error) => SendPhoneCodeError::Store(error),
            })?;
        tracing::info!(user_id = user_id.get(), "phone verification code queued");
        Ok(())
    }

    /// `POST /api/v1/settings/verify_phone`: the code makes the phone the
    /// user's verified phone. The code is read with
    /// [`TokenAuth::phone_code_length`].
    pub async fn verify_phone(
        &self,
        session: &Authenticated,
        code: &OtpCode,
        client: &Client,
    ) -> Result<(), ConfirmPhoneError> {
        let user_id = session.user_id();
        let verified = match self
            .otp
            .check(
                Purpose::PhoneConfirm,
                &Self::confirm_lookup(user_id),
                code,
                None,
                client,
            )
            .await
        {
            Ok(verified) => verified,
            Err(CheckError::Refused(refusal)) => return Err(ConfirmPhoneError::Refused(refusal)),
            Err(CheckError::Expired) => return Err(ConfirmPhoneError::Expired),
            Err(CheckError::Exhausted) => return Err(ConfirmPhoneError::Exhausted),
            Err(CheckError::Store(error)) => return Err(error.into()),
            Err(CheckError::Provider(error)) => return Err(ConfirmPhoneError::Provider(error)),
            Err(CheckError::NotFound | CheckError::WrongCode { .. } | CheckError::Closed | CheckError::Locked) => {
                return Err(ConfirmPhoneError::WrongCode);
            }
        };
        match self
            .ports
            .accounts
            .set_verified_phone(user_id, &verified.phone, self.now())
            .await
        {
            Ok(()) => {}
            Err(AccountError::PhoneTaken | AccountError::EmailTaken) => return Err(ConfirmPhoneError::PhoneTaken),
            Err(AccountError::Store(error)) => return Err(error.into()),
        }
        tracing::info!(user_id = user_id.get(), "phone confirmed");
        Ok(())
    }
}
