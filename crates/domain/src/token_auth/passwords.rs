//! The use cases that check or choose a password: sign-in (with its limits
//! and the account lockout) and completing a password reset.

use super::{
    CompleteResetError, MobileOs, NewSession, ResetOutcome, SessionDevice, SignInError, SignInRequest, SignedIn,
    TokenAuth, present,
};
use crate::{
    abuse::Client,
    account::{Email, Password, PasswordError},
    ports::HashError,
    user::UserId,
};

impl TokenAuth {
    /// `POST /api/v1/tokens`: email + password for a per-device token.
    ///
    /// Every try passes the per-IP and per-email limits, then does the same
    /// work whatever the email and the password: one account lookup, one
    /// password check (against a dummy hash for an unknown email) and one
    /// statement that records the outcome on the account. A locked account
    /// refuses even the right password, with the answer and the work of a
    /// wrong one, so neither the lock nor the password shows through it.
    pub async fn sign_in(&self, request: SignInRequest<'_>, client: &Client) -> Result<SignedIn, SignInError> {
        let (Some(email), Some(password)) = (present(request.email), request.password.filter(|p| !p.is_empty())) else {
            return Err(SignInError::MissingCredentials);
        };
        let mobile_os = match present(request.mobile_os).map(str::to_ascii_lowercase).as_deref() {
            None => None,
            Some("android") => Some(MobileOs::Android),
            Some("ios") => Some(MobileOs::Ios),
            Some(_) => return Err(SignInError::InvalidMobileOs),
        };
        let device_token = present(request.device_token);
        if device_token.is_some_and(|token| token.len() > 255) {
            return Err(SignInError::InvalidDeviceToken);
        }
        self.guard
            .admit_sign_in(client, email, self.now())
            .await
            .map_err(SignInError::Refused)?;
        let application = match present(request.app_id) {
            None => None,
            Some(app_id) => Some(
                self.ports
                    .applications
                    .find_application(app_id)
                    .await?
                    .ok_or(SignInError::UnknownApplication)?,
            ),
        };
        // A malformed email or an over-long password can match no account,
        // but they still take the same path, for the same time.
        let email = Email::parse(email).ok();
        let account = match &email {
            Some(email) => self.ports.accounts.find_by_email(email).await?,
            None => None,
        };
        let password = Password::presented(password).ok();
        let matches = match &password {
            Some(password) => {
                let hash = account.as_ref().and_then(|a| a.password_hash.clone());
                self.ports
                    .passwords
                    .verify(password, hash)
                    .await
                    .map_err(|error| match error {
                        HashError::Busy => SignInError::HasherBusy,
                        HashError::Failed(error) => SignInError::Store(error),
                    })?
            }
            None => false,
        };
        let settled = match &email {
            Some(email) => {
                self.ports
                    .accounts
                    .settle_sign_in(email, matches && account.is_some(), self.now(), self.guard.lockout())
                    .await?
            }
            None => None,
        };
        let account = match account {
            Some(account) if matches && settled == Some(account.user.id) => account,
            Some(account) if matches => {
                tracing::info!(
                    user_id = account.user.id.get(),
                    "sign-in refused: the account is locked"
                );
                return Err(SignInError::InvalidCredentials);
            }
            _ => return Err(SignInError::InvalidCredentials),
        };
        let (token, token_hash) = self.new_token("session_token");
        let now = self.now();
        self.ports
            .sessions
            .create_session(NewSession {
                user_id: account.user.id,
                application_id: application.as_ref().map(|a| a.id),
                device: device_token.map(|device_token| SessionDevice {
                    device_token: device_token.to_owned(),
                    mobile_os,
                }),
                token_hash,
                created_at: now,
                expires_at: now.plus(self.settings.session_ttl),
            })
            .await?;
        tracing::info!(user_id = account.user.id.get(), "signed in with email and password");
        Ok(SignedIn {
            token,
            user: account.user,
        })
    }

    /// `PUT /api/v1/tokens/reset`: sets a new password with a reset token
    /// (single use, within its lifetime), and revokes every session token
    /// and phone-login access code of the user.
    ///
    /// The token is looked up before the new password is screened and
    /// hashed, so a guessed token costs a lookup, never a hash.
    pub async fn complete_password_reset(
        &self,
        reset_token: Option<&str>,
        password: Option<&str>,
        confirmation: Option<&str>,
        client: &Client,
    ) -> Result<UserId, CompleteResetError> {
        let token = present(reset_token).ok_or(CompleteResetError::MissingToken)?;
        self.guard
            .admit_token_check(client, self.now())
            .await
            .map_err(CompleteResetError::Refused)?;
        let password =
            Password::new_password(password.unwrap_or_default()).map_err(CompleteResetError::InvalidPassword)?;
        if confirmation.is_some_and(|confirmation| confirmation != password.expose()) {
            return Err(CompleteResetError::ConfirmationMismatch);
        }
        let token_hash = self.token_hash("password_reset", token);
        let outcome = match self.ports.accounts.find_password_reset(&token_hash, self.now()).await? {
            ResetOutcome::Done(_) => {
                self.screen_new_password(&password, &[])
                    .map_err(CompleteResetError::InvalidPassword)?;
                let hash = self
                    .ports
                    .passwords
                    .hash(&password)
                    .await
                    .map_err(|error| match error {
                        HashError::Busy => CompleteResetError::HasherBusy,
                        HashError::Failed(error) => CompleteResetError::Store(error),
                    })?;
                // Checked again, atomically, with the change: the reset may
                // have been used or superseded meanwhile.
                self.ports
                    .accounts
                    .complete_password_reset(&token_hash, &hash, self.now())
                    .await?
            }
            other => other,
        };
        match outcome {
            ResetOutcome::Done(user) => {
                tracing::info!(
                    user_id = user.get(),
                    "password reset; sessions and access codes revoked"
                );
                Ok(user)
            }
            ResetOutcome::NotFound | ResetOutcome::AlreadyUsed => Err(CompleteResetError::InvalidToken),
            ResetOutcome::Expired => Err(CompleteResetError::Expired),
        }
    }

    /// Refuses a new password that is among the most common ones (or a
    /// variant of `context`, e.g. the account's email).
    pub(super) fn screen_new_password(
        &self,
        password: &Password,
        context: &[Option<&str>],
    ) -> Result<(), PasswordError> {
        let context: Vec<&str> = context.iter().flatten().copied().collect();
        if self.ports.screen.is_common(password, &context) {
            return Err(PasswordError::TooCommon);
        }
        Ok(())
    }
}
