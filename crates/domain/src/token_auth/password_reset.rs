//! Password reset by email: requesting the email, and choosing a new
//! password with the token it carries.

use secrecy::SecretString;

use super::{NewPasswordReset, ResetOutcome, TokenAuth, present};
use crate::{
    abuse::{Client, Refusal},
    account::{Email, EmailError, Password, PasswordError},
    otp::IssueError,
    outbox::{Envelope, OutboxMessage, Outgoing},
    ports::{HashError, OutgoingMail, StoreError},
    user::UserId,
};

#[derive(Debug, thiserror::Error)]
pub enum ResetRequestError {
    #[error(transparent)]
    InvalidEmail(EmailError),
    /// A per-IP or per-email limit refused it.
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum CompleteResetError {
    #[error("reset_token is required.")]
    MissingToken,
    #[error("Reset token is invalid or has already been used.")]
    InvalidToken,
    #[error("Reset token has expired.")]
    Expired,
    #[error(transparent)]
    InvalidPassword(PasswordError),
    #[error("Password confirmation doesn't match Password.")]
    ConfirmationMismatch,
    /// The per-IP token-check limit refused it.
    #[error(transparent)]
    Refused(Refusal),
    /// Every password-hashing thread is busy and the queue is full.
    #[error("password hashing is saturated")]
    HasherBusy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TokenAuth {
    /// `POST /api/v1/tokens/reset`: emails reset instructions if the email
    /// has an account. The caller answers the same either way.
    pub async fn request_password_reset(&self, email: Option<&str>, client: &Client) -> Result<(), ResetRequestError> {
        let email = Email::parse(email.unwrap_or_default()).map_err(ResetRequestError::InvalidEmail)?;
        self.otp.admit_mail(&email, client).await.map_err(|error| match error {
            IssueError::Refused(refusal) => ResetRequestError::Refused(refusal),
            IssueError::Store(error) => ResetRequestError::Store(error),
        })?;
        let now = self.now();
        let account = self.ports.accounts.find_by_email(&email).await?;
        // The email is composed either way, so that an unknown email costs
        // the same work (and time) as a known one.
        let (token, token_hash) = self.new_token("password_reset");
        let expires_at = now.plus(self.settings.reset_ttl);
        let link = self.settings.reset_url_template.replace("{token}", token.expose());
        let minutes = self.settings.reset_ttl.as_secs() / 60;
        let app = &self.settings.app_name;
        let text = format!(
            "Someone asked to reset the password of your {app} account.\n\n\
             To choose a new password, open this link within {minutes} minutes:\n\n{link}\n\n\
             If it was not you, ignore this email; your password stays as it is.\n"
        );
        let html = format!(
            "<p>Someone asked to reset the password of your {app} account.</p>\
             <p>To choose a new password, open this link within {minutes} minutes:</p>\
             <p><a href=\"{link}\">Reset your password</a></p>\
             <p>If it was not you, ignore this email; your password stays as it is.</p>",
            app = html_escape(app),
            link = html_escape(&link),
        );
        let message = OutboxMessage {
            envelope: Envelope::Mail(OutgoingMail {
                to: email,
                subject: format!("Reset your {app} password"),
                text_body: SecretString::from(text),
                html_body: SecretString::from(html),
            }),
            purpose: "password_reset",
            created_at: now,
            not_after: expires_at,
        };
        let Some(account) = account else {
            // Written, never sent: its link works nowhere.
            self.ports.outbox.enqueue_decoy(message, now).await?;
            tracing::info!("password reset requested for an unknown email; nothing sent");
            return Ok(());
        };
        let reset = NewPasswordReset {
            user_id: account.user.id,
            token_hash,
            created_at: now,
            expires_at,
        };
        self.ports
            .accounts
            .create_password_reset(reset, Outgoing::Message(message))
            .await?;
        tracing::info!(user_id = account.user.id.get(), "password reset email queued");
        Ok(())
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

/// Escapes text for HTML bodies.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
