//! Confirming a phone number for a signed-in user: a texted code makes
//! the phone the user's verified phone.

use super::{TokenAuth, Unauthorized, present};
use crate::{
    abuse::{Client, Refusal},
    otp::{Channel, CheckError, IssueError, IssueRequest, LookupKey, OtpCode, Purpose},
    phone::PhoneInputError,
    ports::{AccountError, DeliveryError, StoreError},
    user::UserId,
};

#[derive(Debug, thiserror::Error)]
pub enum PhoneVerificationError {
    #[error(transparent)]
    Unauthorized(#[from] Unauthorized),
    #[error("Phone can't be blank.")]
    MissingPhone,
    #[error("Phone is invalid.")]
    InvalidPhone,
    #[error("Phone number is already taken.")]
    PhoneTaken,
    #[error("Token can't be blank.")]
    MissingCode,
    #[error("Verification code is invalid.")]
    InvalidCode,
    #[error("Verification code has expired.")]
    Expired,
    #[error("Too many failed attempts. Please request a new code.")]
    TooManyAttempts,
    /// A rate limit, the SMS budget or the destination rules refused it.
    #[error(transparent)]
    Refused(Refusal),
    /// The provider that checks codes (Twilio Verify) could not answer.
    #[error(transparent)]
    Delivery(DeliveryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TokenAuth {
    /// The phone-confirmation challenge of a user is found by the user.
    fn confirm_lookup(user: UserId) -> LookupKey {
        LookupKey::from_bytes(user.get().to_be_bytes().to_vec())
    }

    /// `POST /api/v1/settings/send_phone_verification`.
    pub async fn send_phone_verification(
        &self,
        auth_token: Option<&str>,
        phone: Option<&str>,
        client: &Client,
    ) -> Result<(), PhoneVerificationError> {
        let session = self.session(auth_token).await?;
        let input = present(phone).ok_or(PhoneVerificationError::MissingPhone)?;
        let phone = self.settings.phones.parse(input).map_err(|error| match error {
            PhoneInputError::Blank => PhoneVerificationError::MissingPhone,
            PhoneInputError::Invalid | PhoneInputError::NotAllowed => PhoneVerificationError::InvalidPhone,
        })?;
        if let Some(owner) = self.ports.users.find_by_phone(&phone).await?
            && owner.id != session.user_id
        {
            return Err(PhoneVerificationError::PhoneTaken);
        }
        let lookup = Self::confirm_lookup(session.user_id);
        self.otp
            .issue(
                IssueRequest {
                    purpose: Purpose::PhoneConfirm,
                    phone: &phone,
                    user_id: Some(session.user_id),
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
                IssueError::Refused(refusal) => PhoneVerificationError::Refused(refusal),
                IssueError::Store(error) => PhoneVerificationError::Store(error),
            })?;
        tracing::info!(user_id = session.user_id.get(), "phone verification code queued");
        Ok(())
    }

    /// `POST /api/v1/settings/verify_phone`: the code makes the phone the
    /// user's verified phone.
    pub async fn verify_phone(
        &self,
        auth_token: Option<&str>,
        code: Option<&str>,
        client: &Client,
    ) -> Result<(), PhoneVerificationError> {
        let session = self.session(auth_token).await?;
        let code = present(code).ok_or(PhoneVerificationError::MissingCode)?;
        let code =
            OtpCode::parse(code, self.settings.phone_policy.length).ok_or(PhoneVerificationError::InvalidCode)?;
        let verified = match self
            .otp
            .check(
                Purpose::PhoneConfirm,
                &Self::confirm_lookup(session.user_id),
                &code,
                None,
                client,
            )
            .await
        {
            Ok(verified) => verified,
            Err(CheckError::Refused(refusal)) => return Err(PhoneVerificationError::Refused(refusal)),
            Err(CheckError::Expired) => return Err(PhoneVerificationError::Expired),
            Err(CheckError::Exhausted) => return Err(PhoneVerificationError::TooManyAttempts),
            Err(CheckError::Store(error)) => return Err(error.into()),
            Err(CheckError::Provider(error)) => return Err(PhoneVerificationError::Delivery(error)),
            Err(CheckError::NotFound | CheckError::WrongCode { .. } | CheckError::Closed | CheckError::Locked) => {
                return Err(PhoneVerificationError::InvalidCode);
            }
        };
        match self
            .ports
            .accounts
            .set_verified_phone(session.user_id, &verified.phone, self.now())
            .await
        {
            Ok(()) => {}
            Err(AccountError::PhoneTaken | AccountError::EmailTaken) => return Err(PhoneVerificationError::PhoneTaken),
            Err(AccountError::Store(error)) => return Err(error.into()),
        }
        tracing::info!(user_id = session.user_id.get(), "phone confirmed");
        Ok(())
    }
}
