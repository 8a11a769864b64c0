//! Password reset by email: requesting the email, and choosing a new
//! password with the token it carries.

use secrecy::SecretString;

use super::{NewPasswordReset, ResetOutcome, TokenAuth, credentials::ResetToken};
use crate::{
    abuse::{Client, Refusal},
    account::{Email, NewPassword, Password, PasswordError},
    otp::IssueError,
    outbox::{Envelope, OutboxMessage, Outgoing},
    ports::{HashError, OutgoingMail, StoreError},
    user::UserId,
};

/// Why a reset email was not queued.
#[derive(Debug, thiserror::Error)]
pub enum ResetRequestError {
    /// A per-IP or per-email limit refused it.
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new password chosen with a reset token.
#[derive(Debug, Clone)]
pub struct PasswordReset {
    pub token: ResetToken,
    pub password: ProposedPassword,
}

/// The new password as the edge read it, flaws included.
///
/// The edge parses it, but the use case judges it only once the per-IP
/// token-check limit has admitted the attempt: a throttled client is told
/// to wait whatever it sent, and every attempt counts against the limit,
/// as in the service whose clients this surface serves. A missing token,
/// by contrast, is refused at the edge before the limit.
#[derive(Debug, Clone)]
pub enum ProposedPassword {
    /// Within the rules, and confirmed when a confirmation was sent.
    Acceptable(NewPassword),
    /// Blank, too short or too long.
    Invalid(PasswordError),
    /// Within the rules, but the confirmation differs.
    Unconfirmed,
}

/// Why a reset was not completed.
#[derive(Debug, thiserror::Error)]
pub enum CompleteResetError {
    /// No reset has this token, or it was used or superseded.
    #[error("no unused reset has this token")]
    UnknownToken,
    #[error("the reset token has expired")]
    Expired,
    /// The new password is blank, too short or too long.
    #[error("the new password is not acceptable: {0}")]
    InvalidPassword(PasswordError),
    /// The confirmation differs from the new password.
    #[error("the password confirmation does not match")]
    ConfirmationMismatch,
    /// The new password is among the ones attackers try first.
    #[error("the new password is too common")]
    CommonPassword,
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
    pub async fn request_password_reset(&self, email: &Email, client: &Client) -> Result<(), ResetRequestError> {
        self.otp.admit_mail(email, client).await.map_err(|error| match error {
            IssueError::Refused(refusal) => ResetRequestError::Refused(refusal),
            IssueError::Store(error) => ResetRequestError::Store(error),
        })?;
        let now = self.now();
        let account = self.ports.accounts.find_by_email(email).await?;
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
                to: email.clone(),
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
        reset: &PasswordReset,
        client: &Client,
    ) -> Result<UserId, CompleteResetError> {
        self.guard
            .admit_token_check(client, self.now())
            .await
            .map_err(CompleteResetError::Refused)?;
        let password = match &reset.password {
            ProposedPassword::Acceptable(password) => password.as_password(),
            ProposedPassword::Invalid(error) => return Err(CompleteResetError::InvalidPassword(*error)),
            ProposedPassword::Unconfirmed => return Err(CompleteResetError::ConfirmationMismatch),
        };
        let token_hash = self.token_hash("password_reset", reset.token.expose());
        let outcome = match self.ports.accounts.find_password_reset(&token_hash, self.now()).await? {
            ResetOutcome::Done(_) => {
                if self.is_common_password(password, &[]) {
                    return Err(CompleteResetError::CommonPassword);
                }
                let hash = self.ports.passwords.hash(password).await.map_err(|error| match error {
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
            ResetOutcome::NotFound | ResetOutcome::AlreadyUsed => Err(CompleteResetError::UnknownToken),
            ResetOutcome::Expired => Err(CompleteResetError::Expired),
        }
    }

    /// Whether a new password is among the most common ones (or a
    /// variant of `context`, e.g. the account's email).
    pub(super) fn is_common_password(&self, password: &Password, context: &[Option<&str>]) -> bool {
        let context: Vec<&str> = context.iter().flatten().copied().collect();
        self.ports.screen.is_common(password, &context)
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
