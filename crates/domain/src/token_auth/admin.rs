//! The admin use cases behind the CLI: create, list and revoke
//! applications; create and find users and revoke their tokens.
//!
//! [`TokenAdmin`] is a view of the [`TokenAuth`] service, over the same
//! ports, that only the CLI (and tests) use: no HTTP route reaches it.

use super::{
    NewAccount, OpaqueToken, TokenAuth,
    credentials::{AppId, ApplicationName},
};
use crate::{
    account::{Email, NewPassword},
    application::{Application, ApplicationListing, NewApplication, Revocation},
    phone::PhoneNumber,
    ports::{AccountError, HashError, RevokedTokens, StoreError},
    user::{User, UserId},
};

/// The admin use cases' errors.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The new password is among the ones attackers try first, or a
    /// variant of the user's email or name.
    #[error("the password is too common or too close to the user's email or name")]
    CommonPassword,
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("password hashing is saturated; try again")]
    HasherBusy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<HashError> for AdminError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy => Self::HasherBusy,
            HashError::Failed(error) => Self::Store(error),
        }
    }
}

/// How the admin CLI names a user.
#[derive(Debug, Clone)]
pub enum UserLookup {
    Id(UserId),
    Email(Email),
    /// Read by [`TokenAuth::phones`], as the surfaces read phones.
    Phone(PhoneNumber),
}

/// An email + password user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub password: NewPassword,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<PhoneNumber>,
}

/// The admin use cases, over the ports of a [`TokenAuth`].
#[derive(Debug, Clone, Copy)]
pub struct TokenAdmin<'a> {
    auth: &'a TokenAuth,
}

impl TokenAuth {
    /// The admin use cases behind the CLI.
    pub fn admin(&self) -> TokenAdmin<'_> {
        TokenAdmin { auth: self }
    }
}

impl TokenAdmin<'_> {
    /// Registers an application; returns it with its server `auth_token`,
    /// which is shown this once and stored only as a hash.
    pub async fn create_application(&self, name: &ApplicationName) -> Result<(Application, OpaqueToken), AdminError> {
        let auth = self.auth;
        let app_id: String = auth.otp.random_bytes(8).iter().map(|b| format!("{b:02x}")).collect();
        let (token, token_hash) = auth.new_token("application_token");
        let application = auth
            .ports
            .applications
            .create_application(NewApplication {
                app_id,
                name: name.as_str().to_owned(),
                auth_token_hash: token_hash,
                created_at: auth.now(),
            })
            .await?;
        Ok((application, token))
    }

    /// Creates an email + password user.
    pub async fn create_user(&self, user: NewUser) -> Result<UserId, AdminError> {
        let auth = self.auth;
        let NewUser {
            email,
            password,
            first_name,
            last_name,
            phone,
        } = user;
        if auth.is_common_password(
            password.as_password(),
            &[Some(email.as_str()), first_name.as_deref(), last_name.as_deref()],
        ) {
            return Err(AdminError::CommonPassword);
        }
        let password_hash = auth.ports.passwords.hash(password.as_password()).await?;
        let user = auth
            .ports
            .accounts
            .create_account(NewAccount {
                email,
                password_hash,
                first_name,
                last_name,
                phone,
                created_at: auth.now(),
            })
            .await?;
        Ok(user)
    }

    /// Every application, revoked ones too.
    pub async fn list_applications(&self) -> Result<Vec<ApplicationListing>, AdminError> {
        Ok(self.auth.ports.applications.list_applications().await?)
    }

    /// Revokes the application `app_id`: its `auth_token` no longer
    /// authenticates, its `app_id` no longer signs users in, and the session
    /// tokens issued through it stop working, all at once.
    pub async fn revoke_application(&self, app_id: &AppId) -> Result<Revocation, AdminError> {
        let auth = self.auth;
        let revocation = auth
            .ports
            .applications
            .revoke_application(app_id.as_str(), auth.now())
            .await?;
        if let Revocation::Revoked { session_tokens } = revocation {
            tracing::info!(app_id = app_id.as_str(), session_tokens, "application revoked");
        }
        Ok(revocation)
    }

    /// The user `lookup` names, if any.
    pub async fn find_user(&self, lookup: &UserLookup) -> Result<Option<User>, AdminError> {
        let ports = &self.auth.ports;
        Ok(match lookup {
            UserLookup::Id(id) => ports.users.profile(*id).await?.map(|profile| profile.user),
            UserLookup::Email(email) => ports.accounts.find_by_email(email).await?.map(|account| account.user),
            UserLookup::Phone(phone) => ports.users.find_by_phone(phone).await?,
        })
    }

    /// Revokes every session token and access code of the user `lookup`
    /// names (JWTs are not stored: they stay valid until they expire,
    /// `auth.jwt_ttl_seconds` at most). `None` if there is no such user.
    pub async fn revoke_user_tokens(&self, lookup: &UserLookup) -> Result<Option<(User, RevokedTokens)>, AdminError> {
        let Some(user) = self.find_user(lookup).await? else {
            return Ok(None);
        };
        let revoked = self
            .auth
            .ports
            .sessions
            .revoke_user_tokens(user.id, self.auth.now())
            .await?;
        tracing::info!(
            user_id = user.id.get(),
            session_tokens = revoked.session_tokens,
            access_codes = revoked.access_codes,
            "user tokens revoked"
        );
        Ok(Some((user, revoked)))
    }
}
