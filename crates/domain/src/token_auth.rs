//! The tokens surface's use cases: email + password sign-in with opaque
//! per-device tokens, sign-out, password reset by email, phone verification
//! for a signed-in user, and token introspection for servers. Also the
//! admin use cases behind the CLI (create, list and revoke applications;
//! create and find users and revoke their tokens).
//!
//! Opaque tokens are 16 random bytes (22 characters of base64url), stored
//! only as keyed hashes. An unknown email and a wrong password answer the
//! same, after the same work (a password check against a dummy hash).

use std::{fmt, sync::Arc, time::Duration};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use secrecy::SecretString;

use crate::{
    abuse::{Client, Refusal, sign_in::SignInGuard},
    account::{Email, EmailError, Password, PasswordError},
    application::{Application, ApplicationListing, NewApplication, Revocation},
    delivery::Messenger,
    otp::{
        Channel, CheckError, IssueError, IssueRequest, LookupKey, OtpCode, OtpEngine, OtpPolicy, Purpose, SecretHash,
    },
    outbox::{Envelope, OutboxMessage, OutboxStore, Outgoing},
    phone::{PhoneInputError, PhonePolicy},
    ports::{
        AccessCodeStore, AccountError, AccountStore, ApplicationStore, DeliveryError, HashError, OutgoingMail,
        PasswordHasher, PasswordScreen, RevokedTokens, SessionStore, StoreError, TokenIssuer, UserStore,
    },
    time::Timestamp,
    user::{User, UserId},
};

pub use crate::ports::{
    accounts::{Account, NewAccount, NewPasswordReset, ResetOutcome},
    sessions::{MobileOs, NewSession, SessionDevice, SessionRecord},
};

/// Bytes of randomness in opaque tokens (session, application, reset).
const TOKEN_BYTES: usize = 16;

/// An opaque token text (session, application or reset). Redacted in `Debug`.
pub struct OpaqueToken(String);

impl OpaqueToken {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueToken([redacted])")
    }
}

#[derive(Debug, Clone)]
pub struct TokenAuthSettings {
    pub phones: PhonePolicy,
    /// The code policy of `send_phone_verification`.
    pub phone_policy: OtpPolicy,
    pub session_ttl: Duration,
    pub reset_ttl: Duration,
    /// The link in reset emails; `{token}` is replaced by the reset token.
    pub reset_url_template: String,
    pub app_name: String,
}

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

/// Why a request that needs a signed-in user was refused.
#[derive(Debug, thiserror::Error)]
pub enum Unauthorized {
    #[error("Invalid or missing auth_token.")]
    Token,
    #[error(transparent)]
    Store(#[from] StoreError),
}

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

/// What a token stands for (RFC 7662).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introspection {
    Inactive,
    Active {
        user_id: UserId,
        /// `opaque`, `jwt` or `access_code`.
        token_type: &'static str,
        issued_at: Option<Timestamp>,
        expires_at: Timestamp,
        /// The app_id the token was issued through, if any.
        client_id: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum IntrospectError {
    #[error("Invalid or missing application auth_token.")]
    Unauthorized,
    #[error("token is required.")]
    MissingToken,
    /// The per-IP token-check limit refused it.
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

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

/// The ports the tokens surface needs.
#[derive(Clone)]
pub struct TokenAuthPorts {
    pub users: Arc<dyn UserStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub applications: Arc<dyn ApplicationStore>,
    pub access_codes: Arc<dyn AccessCodeStore>,
    pub passwords: Arc<dyn PasswordHasher>,
    /// Refuses common passwords wherever a new password is chosen.
    pub screen: Arc<dyn PasswordScreen>,
    pub tokens: Arc<dyn TokenIssuer>,
    /// Where reset emails are queued for unknown emails (a decoy row).
    pub outbox: Arc<dyn OutboxStore>,
    pub messenger: Messenger,
}

impl fmt::Debug for TokenAuthPorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAuthPorts").finish_non_exhaustive()
    }
}

pub struct TokenAuth {
    ports: TokenAuthPorts,
    otp: OtpEngine,
    settings: TokenAuthSettings,
    /// Sign-in limits and the lockout policy (`passwords` module).
    guard: SignInGuard,
}

impl fmt::Debug for TokenAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAuth")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn present(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

impl TokenAuth {
    pub fn new(ports: TokenAuthPorts, otp: OtpEngine, settings: TokenAuthSettings) -> Self {
        Self {
            ports,
            otp,
            settings,
            guard: SignInGuard::default(),
        }
    }

    /// Applies `guard`'s sign-in and token-check limits and its lockout
    /// policy (without one: no limits, the default lockout).
    #[must_use]
    pub fn with_sign_in_guard(mut self, guard: SignInGuard) -> Self {
        self.guard = guard;
        self
    }

    fn now(&self) -> Timestamp {
        self.otp.clock().now()
    }

    /// A fresh opaque token and the hash to store for it.
    fn new_token(&self, kind: &str) -> (OpaqueToken, SecretHash) {
        let text = URL_SAFE_NO_PAD.encode(self.otp.random_bytes(TOKEN_BYTES));
        let hash = self.token_hash(kind, &text);
        (OpaqueToken(text), hash)
    }

    fn token_hash(&self, kind: &str, text: &str) -> SecretHash {
        self.otp.hasher().token_hash(kind, text.as_bytes())
    }

    /// The user a session token belongs to, if it is valid now.
    async fn session(&self, auth_token: Option<&str>) -> Result<SessionRecord, Unauthorized> {
        let token = present(auth_token).ok_or(Unauthorized::Token)?;
        let session = self
            .ports
            .sessions
            .find_session(&self.token_hash("session_token", token))
            .await?
            .ok_or(Unauthorized::Token)?;
        if session.revoked || self.now() >= session.expires_at {
            return Err(Unauthorized::Token);
        }
        Ok(session)
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

    /// `POST /api/v1/tokens/introspect`: an application asks what a token is.
    pub async fn introspect(
        &self,
        app_token: Option<&str>,
        token: Option<&str>,
        client: &Client,
    ) -> Result<Introspection, IntrospectError> {
        self.guard
            .admit_token_check(client, self.now())
            .await
            .map_err(IntrospectError::Refused)?;
        let app_token = present(app_token).ok_or(IntrospectError::Unauthorized)?;
        self.ports
            .applications
            .find_application_by_token(&self.token_hash("application_token", app_token))
            .await?
            .ok_or(IntrospectError::Unauthorized)?;
        let token = present(token).ok_or(IntrospectError::MissingToken)?;
        let now = self.now();
        // A JWT has two dots; an access code is 32 hex characters; anything
        // else can only be a session token.
        if token.matches('.').count() == 2 {
            return Ok(match self.ports.tokens.verify(token, now) {
                Ok(claims) => Introspection::Active {
                    user_id: claims.user_id,
                    token_type: "jwt",
                    issued_at: Some(claims.issued_at),
                    expires_at: claims.expires_at,
                    client_id: None,
                },
                Err(_) => Introspection::Inactive,
            });
        }
        if token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hash = self
                .otp
                .hasher()
                .token_hash("access_code", token.to_ascii_lowercase().as_bytes());
            return Ok(match self.ports.access_codes.find_access_code(&hash).await? {
                Some(code) if !code.revoked && now < code.expires_at => Introspection::Active {
                    user_id: code.user_id,
                    token_type: "access_code",
                    issued_at: None,
                    expires_at: code.expires_at,
                    client_id: None,
                },
                _ => Introspection::Inactive,
            });
        }
        Ok(match self.session(Some(token)).await {
            Ok(session) => Introspection::Active {
                user_id: session.user_id,
                token_type: "opaque",
                issued_at: Some(session.created_at),
                expires_at: session.expires_at,
                client_id: session.application_id,
            },
            Err(Unauthorized::Token) => Introspection::Inactive,
            Err(Unauthorized::Store(error)) => return Err(error.into()),
        })
    }

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

/// How the admin CLI names a user.
#[derive(Debug, Clone, Copy)]
pub enum UserLookup<'a> {
    Id(UserId),
    Email(&'a str),
    /// Any human format, read in `phone.default_region`.
    Phone(&'a str),
}

/// Escapes text for HTML bodies.
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

mod passwords;
#[cfg(test)]
mod tests;
