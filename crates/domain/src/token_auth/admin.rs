//! The admin use cases behind the CLI: create, list and revoke
//! applications; create and find users and revoke their tokens.

use super::{NewAccount, OpaqueToken, TokenAuth};
use crate::{
    account::{Email, EmailError, Password, PasswordError},
    application::{Application, ApplicationListing, NewApplication, Revocation},
    ports::{AccountError, HashError, RevokedTokens, StoreError},
    user::{User, UserId},
};

/// The admin use cases' errors.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    InvalidEmail(#[from] EmailError),
    #[error(transparent)]
    InvalidPassword(#[from] PasswordError),
    #[error("the phone number is not valid")]
    InvalidPhone,
    #[error("the name can't be blank")]
    BlankName,
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
#[derive(Debug, Clone, Copy)]
pub enum UserLookup<'a> {
    Id(UserId),
    Email(&'a str),
    /// Any human format, read in `phone.default_region`.
    Phone(&'a str),
}

impl TokenAuth {

    /// Admin: registers an application; returns it with its server
    /// `auth_token`, which is shown this once and stored only as a hash.
    pub async fn create_application(&self, name: &str) -> Result<(Application, OpaqueToken), AdminError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(AdminError::BlankName);
        }
        let app_id: String = self.otp.random_bytes(8).iter().map(|b| format!("{b:02x}")).collect();
        let (token, token_hash) = self.new_token("application_token");
        let application = self
            .ports
            .applications
            .create_application(NewApplication {
                app_id,
                name: name.to_owned(),
                auth_token_hash: token_hash,
                created_at: self.now(),
            })
            .await?;
        Ok((application, token))
    }

    /// Admin: creates an email + password user.
    pub async fn create_user(
        &self,
        email: &str,
        password: &str,
        first_name: Option<String>,
        last_name: Option<String>,
        phone: Option<&str>,
    ) -> Result<UserId, AdminError> {
        let email = Email::parse(email)?;
        let password = Password::new_password(password)?;
        self.screen_new_password(
            &password,
            &[Some(email.as_str()), first_name.as_deref(), last_name.as_deref()],
        )?;
        let phone = match phone {
            Some(phone) => Some(
                self.settings
                    .phones
                    .parse(phone)
                    .map_err(|_| AdminError::InvalidPhone)?,
            ),
            None => None,
        };
        let password_hash = self.ports.passwords.hash(&password).await?;
        let user = self
            .ports
            .accounts
            .create_account(NewAccount {
                email,
                password_hash,
                first_name,
                last_name,
                phone,
                created_at: self.now(),
            })
            .await?;
        Ok(user)
    }

    /// Admin: every application, revoked ones too.
    pub async fn list_applications(&self) -> Result<Vec<ApplicationListing>, AdminError> {
        Ok(self.ports.applications.list_applications().await?)
    }

    /// Admin: revokes the application `app_id`: its `auth_token` no longer
    /// authenticates, its `app_id` no longer signs users in, and the session
    /// tokens issued through it stop working, all at once.
    pub async fn revoke_application(&self, app_id: &str) -> Result<Revocation, AdminError> {
        let revocation = self
            .ports
            .applications
            .revoke_application(app_id.trim(), self.now())
            .await?;
        if let Revocation::Revoked { session_tokens } = revocation {
            tracing::info!(app_id = app_id.trim(), session_tokens, "application revoked");
        }
        Ok(revocation)
    }

    /// Admin: the user `lookup` names, if any. Emails and phone numbers are
    /// read as sign-in and the surfaces read them (a phone in any human
    /// format, in `phone.default_region`).
    pub async fn find_user(&self, lookup: UserLookup<'_>) -> Result<Option<User>, AdminError> {
        Ok(match lookup {
            UserLookup::Id(id) => self.ports.users.profile(id).await?.map(|profile| profile.user),
            UserLookup::Email(email) => self
                .ports
                .accounts
                .find_by_email(&Email::parse(email)?)
                .await?
                .map(|account| account.user),
            UserLookup::Phone(phone) => {
                let phone = self
                    .settings
                    .phones
                    .parse(phone)
                    .map_err(|_| AdminError::InvalidPhone)?;
                self.ports.users.find_by_phone(&phone).await?
            }
        })
    }

    /// Admin: revokes every session token and access code of the user
    /// `lookup` names (JWTs are not stored: they stay valid until they
    /// expire, `auth.jwt_ttl_seconds` at most). `None` if there is no such
    /// user.
    pub async fn revoke_user_tokens(
        &self,
        lookup: UserLookup<'_>,
    ) -> Result<Option<(User, RevokedTokens)>, AdminError> {
        let Some(user) = self.find_user(lookup).await? else {
            return Ok(None);
        };
        let revoked = self.ports.sessions.revoke_user_tokens(user.id, self.now()).await?;
        tracing::info!(
            user_id = user.id.get(),
            session_tokens = revoked.session_tokens,
            access_codes = revoked.access_codes,
            "user tokens revoked"
        );
        Ok(Some((user, revoked)))
    }
}
