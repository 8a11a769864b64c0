//! Signing in with email and password, and signing out.

use super::{
    Authenticated, MobileOs, NewSession, OpaqueToken, SessionDevice, TokenAuth, Unauthorized,
    credentials::{AppId, DeviceToken, PushToken, SignInEmail, SignInPassword},
};
use crate::{
    abuse::{Client, Refusal},
    ports::{HashError, StoreError},
    user::{User, UserId},
};

/// A sign-in, its values parsed. `Debug` hides the password.
#[derive(Debug, Clone)]
pub struct SignInRequest {
    pub email: SignInEmail,
    pub password: SignInPassword,
    /// The device the token is issued to; without one, the token is not
    /// tied to a device.
    pub device_token: Option<DeviceToken>,
    /// Kept only with a device token.
    pub mobile_os: Option<MobileOs>,
    /// The application the user signs in through, if any.
    pub app_id: Option<AppId>,
}

/// Why a sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// No account has this email, the password is wrong, or the account
    /// is locked: one variant, so that nothing downstream can tell them
    /// apart (the log line of a locked account is written here).
    #[error("the email and password match no unlocked account")]
    InvalidCredentials,
    #[error("no application has this app_id")]
    UnknownApplication,
    /// The per-IP or per-email sign-in limit refused it.
    #[error(transparent)]
    Refused(Refusal),
    /// Every password-hashing thread is busy and the queue is full.
    #[error("password hashing is saturated")]
    HasherBusy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A successful sign-in.
#[derive(Debug)]
pub struct SignedIn {
    pub token: OpaqueToken,
    pub user: User,
}

impl TokenAuth {
    /// `POST /api/v1/tokens`: email + password for a per-device token.
    ///
    /// Every try passes the per-IP and per-email limits, then does the same
    /// work whatever the email and the password: one account lookup, one
    /// password check (against a dummy hash for an unknown email) and one
    /// statement that records the outcome on the account. A locked account
    /// refuses even the right password, with the answer and the work of a
    /// wrong one, so neither the lock nor the password shows through it.
    pub async fn sign_in(&self, request: SignInRequest, client: &Client) -> Result<SignedIn, SignInError> {
        self.guard
            .admit_sign_in(client, request.email.as_str(), self.now())
            .await
            .map_err(SignInError::Refused)?;
        let application = match &request.app_id {
            None => None,
            Some(app_id) => Some(
                self.ports
                    .applications
                    .find_application(app_id.as_str())
                    .await?
                    .ok_or(SignInError::UnknownApplication)?,
            ),
        };
        // A malformed email or an over-long password can match no account,
        // but they still take the same path, for the same time.
        let email = match request.email {
            SignInEmail::Valid(email) => Some(email),
            SignInEmail::Malformed(_) => None,
        };
        let account = match &email {
            Some(email) => self.ports.accounts.find_by_email(email).await?,
            None => None,
        };
        let matches = match &request.password {
            SignInPassword::Valid(password) => {
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
            SignInPassword::TooLong => false,
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
                device: request.device_token.map(|device_token| SessionDevice {
                    device_token: device_token.into_string(),
                    mobile_os: request.mobile_os,
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

    /// `DELETE /api/v1/tokens/:user_id`: revokes the token at once and removes
    /// the push token. A token of another user cannot sign this user out.
    pub async fn sign_out(
        &self,
        session: &Authenticated,
        user_id: UserId,
        push_token: Option<PushToken>,
    ) -> Result<(), Unauthorized> {
        if session.user_id() != user_id {
            tracing::warn!(
                user_id = user_id.get(),
                "sign-out refused: the token belongs to another user"
            );
            return Err(Unauthorized::OtherUser);
        }
        self.ports
            .sessions
            .end_session(session.session.id, push_token.map(PushToken::into_string), self.now())
            .await?;
        tracing::info!(user_id = user_id.get(), "signed out");
        Ok(())
    }
}
