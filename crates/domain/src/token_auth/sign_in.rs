//! Signing in with email and password, and signing out.

use std::fmt;

use super::{MobileOs, NewSession, OpaqueToken, SessionDevice, TokenAuth, Unauthorized, present};
use crate::{
    abuse::{Client, Refusal},
    account::{Email, Password},
    ports::{HashError, StoreError},
    user::{User, UserId},
};

/// A sign-in request as the client sends it. `Debug` hides the password.
#[derive(Clone, Default)]
pub struct SignInRequest<'a> {
    pub email: Option<&'a str>,
    pub password: Option<&'a str>,
    pub device_token: Option<&'a str>,
    pub mobile_os: Option<&'a str>,
    pub app_id: Option<&'a str>,
}

impl fmt::Debug for SignInRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignInRequest")
            .field("email", &self.email)
            .field("password", &self.password.map(|_| "[redacted]"))
            .field("device_token", &self.device_token)
            .field("mobile_os", &self.mobile_os)
            .field("app_id", &self.app_id)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("Email and password are required.")]
    MissingCredentials,
    #[error("Invalid email or password.")]
    InvalidCredentials,
    #[error("Unknown app_id.")]
    UnknownApplication,
    #[error("mobile_os must be android or ios.")]
    InvalidMobileOs,
    #[error("device_token is too long.")]
    InvalidDeviceToken,
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

    /// `DELETE /api/v1/tokens/:user_id`: revokes the token at once and removes
    /// the push token. A token of another user cannot sign this user out.
    pub async fn sign_out(
        &self,
        user_id: &str,
        auth_token: Option<&str>,
        apn_token: Option<&str>,
    ) -> Result<(), Unauthorized> {
        let session = self.session(auth_token).await?;
        let user_id: i64 = user_id.trim().parse().map_err(|_| Unauthorized::Token)?;
        if session.user_id != UserId::new(user_id) {
            tracing::warn!(user_id, "sign-out refused: the token belongs to another user");
            return Err(Unauthorized::Token);
        }
        self.ports
            .sessions
            .end_session(session.id, present(apn_token).map(str::to_owned), self.now())
            .await?;
        tracing::info!(user_id, "signed out");
        Ok(())
    }
}
