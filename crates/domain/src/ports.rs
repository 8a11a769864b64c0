//! The ports: every way the use cases reach outside the domain.
//!
//! Each trait is shaped around what a use case needs, not around tables.
//! Stores that must write several rows at once take them in one call, so the
//! adapter can write them in one transaction; no transaction handle ever
//! crosses a port. Adapters translate library errors into the error types
//! declared here.

use async_trait::async_trait;
use secrecy::SecretString;

use crate::{
    abuse::sign_in::LockoutPolicy,
    account::{Email, Password, PasswordHash},
    application::{Application, ApplicationListing, NewApplication, Revocation},
    device::{PushHandle, PushPlatform},
    otp::{AttemptOutcome, ChallengeId, Channel, NewChallenge, OtpCode, SecretHash},
    outbox::Outgoing,
    phone::PhoneNumber,
    phone_login::{AccessCodeRecord, NewAccessCode},
    time::Timestamp,
    token::{AccessClaims, IssuedToken, PhoneSession, PublicJwk, TokenError},
    token_auth::{Account, NewAccount, NewPasswordReset, NewSession, ResetOutcome, SessionRecord},
    user::{NewUser, PhoneVerification, User, UserId, UserProfile},
};

/// A store could not do what was asked because it is unreachable or failed.
/// The message is for logs and never contains a secret; clients only ever
/// see a generic 5xx.
#[derive(Debug, thiserror::Error)]
#[error("store unavailable: {0}")]
pub struct StoreError(pub String);

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// Another user already has this phone number.
    #[error("the phone number already belongs to a user")]
    PhoneTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an account could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("the email already belongs to a user")]
    EmailTaken,
    #[error("the phone number already belongs to another user")]
    PhoneTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Email + password accounts, password resets and verified phones of
/// signed-in users.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// The user with `email`, with their password hash (if they have one).
    async fn find_by_email(&self, email: &Email) -> Result<Option<Account>, StoreError>;

    /// Creates a user with email, password hash, names and optional phone.
    async fn create_account(&self, account: NewAccount) -> Result<UserId, AccountError>;

    /// Makes `phone` the verified phone of `user`. A phone belongs to one
    /// user: if another user has it, nothing changes and `PhoneTaken` is
    /// returned.
    async fn set_verified_phone(&self, user: UserId, phone: &PhoneNumber, now: Timestamp) -> Result<(), AccountError>;

    /// Stores a password reset (its token only as a hash) and, in the same
    /// transaction, its email in the outbox, and marks every earlier unused
    /// reset of the user used: only the newest link works.
    async fn create_password_reset(&self, reset: NewPasswordReset, mail: Outgoing) -> Result<(), StoreError>;

    /// What completing the reset with `token_hash` at `now` would find,
    /// changing nothing: `Done` names the user of a usable reset. Read
    /// before the new password is hashed, so a guessed token costs no hash.
    async fn find_password_reset(&self, token_hash: &SecretHash, now: Timestamp) -> Result<ResetOutcome, StoreError>;

    /// In one transaction, if the reset with `token_hash` is unused and
    /// unexpired at `now`: marks it used, sets `new_password`, clears the
    /// user's failed sign-ins and lock, and revokes every session token and
    /// every phone-login access code of its user.
    async fn complete_password_reset(
        &self,
        token_hash: &SecretHash,
        new_password: &PasswordHash,
        now: Timestamp,
    ) -> Result<ResetOutcome, StoreError>;

    /// Records how a password check for `email` went, in one statement
    /// whatever the outcome (so the time it takes tells nothing), on an
    /// account that is not locked at `now`:
    /// - `password_matched`: its failed sign-ins and lock are cleared and its
    ///   user returned: the sign-in may go on;
    /// - otherwise its consecutive failures grow by one, atomically, and it
    ///   is locked until `now` + `lockout.lock_for(failures)` when that is
    ///   some. Failures while it is locked do not count.
    ///
    /// Returns `None` (changing nothing) when there is no such account or
    /// it is locked at `now`, whether the password matched or not.
    async fn settle_sign_in(
        &self,
        email: &Email,
        password_matched: bool,
        now: Timestamp,
        lockout: &LockoutPolicy,
    ) -> Result<Option<UserId>, StoreError>;
}

/// Opaque session tokens of the tokens surface, with the devices they were
/// issued to.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// In one transaction: records the device (if any), revokes the earlier
    /// tokens of that device, and stores the new token's hash.
    async fn create_session(&self, session: NewSession) -> Result<(), StoreError>;

    /// The session token with `token_hash`, revoked or not.
    async fn find_session(&self, token_hash: &SecretHash) -> Result<Option<SessionRecord>, StoreError>;

    /// In one transaction: revokes the session `id` and removes the user's
    /// push registration `push_token`, if given.
    async fn end_session(&self, id: i64, push_token: Option<String>, now: Timestamp) -> Result<(), StoreError>;

    /// In one transaction: revokes every live session token and every
    /// phone-login access code of `user` (admin). JWTs are not stored and
    /// stay valid until they expire.
    async fn revoke_user_tokens(&self, user: UserId, now: Timestamp) -> Result<RevokedTokens, StoreError>;
}

/// What revoking a user's tokens did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RevokedTokens {
    pub session_tokens: u64,
    pub access_codes: u64,
}

/// Registered applications.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ApplicationStore: Send + Sync {
    async fn create_application(&self, application: NewApplication) -> Result<Application, StoreError>;

    /// The application with `app_id`, unless revoked.
    async fn find_application(&self, app_id: &str) -> Result<Option<Application>, StoreError>;

    /// The application whose server `auth_token` hashes to `token_hash`,
    /// unless revoked.
    async fn find_application_by_token(&self, token_hash: &SecretHash) -> Result<Option<Application>, StoreError>;

    /// Every application, revoked ones too, oldest first (admin).
    async fn list_applications(&self) -> Result<Vec<ApplicationListing>, StoreError>;

    /// In one transaction: marks the application `app_id` revoked at `now`
    /// (its `auth_token` stops authenticating and its `app_id` stops
    /// accepting sign-ins) and revokes the live session tokens issued
    /// through it.
    async fn revoke_application(&self, app_id: &str, now: Timestamp) -> Result<Revocation, StoreError>;
}

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing thread is busy and the queue is full: refused at once
    /// rather than queued without bound, so a flood cannot starve real
    /// sign-ins. The client may try again in a moment.
    #[error("password hashing is saturated")]
    Busy,
    #[error(transparent)]
    Failed(#[from] StoreError),
}

/// Hashes and checks passwords. Hashing is slow on purpose, so
/// implementations must not run it on the async runtime's threads, and
/// must bound the work waiting for it ([`HashError::Busy`]).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError>;

    /// Whether `password` matches `hash`. With no hash (unknown user, or a
    /// user without a password) it still does the same work against a dummy
    /// hash and returns false, so the two cases cannot be told apart by time.
    async fn verify(&self, password: &Password, hash: Option<PasswordHash>) -> Result<bool, HashError>;
}

/// Screens new passwords against the ones attackers try first.
pub trait PasswordScreen: Send + Sync {
    /// Whether `password` is among the most common passwords (or a trivial
    /// variant of one, or of `context`: the account's email and names), so
    /// that it must not be chosen. Pure computation, no I/O.
    fn is_common(&self, password: &Password, context: &[&str]) -> bool;
}

/// A screen that lets every password through, for tools and unit tests
/// that do not exercise the screen; the service wires a real one.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPasswordScreen;

impl PasswordScreen for NoPasswordScreen {
    fn is_common(&self, _: &Password, _: &[&str]) -> bool {
        false
    }
}

/// An email to send. The bodies may contain a secret link, so they are secret.
#[derive(Debug)]
pub struct OutgoingMail {
    pub to: Email,
    pub subject: String,
    pub text_body: SecretString,
    pub html_body: SecretString,
}

/// Sends email.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Hands `mail` to the mail server. Implementations must not log bodies.
    async fn send(&self, mail: &OutgoingMail) -> Result<(), DeliveryError>;
}

/// Reads and creates users.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UserStore: Send + Sync {
    /// The user whose phone number is `phone`, if any.
    async fn find_by_phone(&self, phone: &PhoneNumber) -> Result<Option<User>, StoreError>;

    /// The user `id` with addresses and permissions, or `None` if there is no
    /// such user. An implementation may serve it from a short-lived cache:
    /// it then reflects its own writes at once, and writes made elsewhere
    /// (another instance) within the cache's lifetime.
    async fn profile(&self, id: UserId) -> Result<Option<UserProfile>, StoreError>;

    /// For a signup of a number with no user: stores `challenge` (live
    /// challenges with the same purpose and phone are superseded), with
    /// `outgoing` in the outbox and `signup`'s names and address kept
    /// pending with the challenge, in one transaction. No user is created:
    /// [`UserStore::consume_verifying`] creates it with these fields once
    /// the challenge's code is verified. A superseded challenge's pending
    /// fields are never used.
    async fn store_signup(
        &self,
        signup: NewUser,
        challenge: NewChallenge,
        outgoing: Outgoing,
    ) -> Result<ChallengeId, StoreError>;

    /// In one transaction: consumes `challenge` if it is still live, and
    /// writes what its verification means: the user of
    /// `verification.phone` marked verified (created if there is none, with
    /// the challenge's pending signup fields if it has any) and
    /// `verification.access_code` for that user. Returns the user and
    /// whether it was created; `None`, having written nothing, when the
    /// challenge was no longer live (consumed by a concurrent check, or
    /// superseded, or a decoy: see [`PhoneVerification::requires_signup`]).
    /// If a write fails nothing is written and the challenge stays live, so
    /// the same code can be tried again.
    async fn consume_verifying(
        &self,
        challenge: ChallengeId,
        verification: PhoneVerification,
    ) -> Result<Option<(User, bool)>, StoreError>;

    /// The user whose phone is `phone`, created if there is none, with the
    /// phone marked verified at `now` (if it was not already). Returns the
    /// user and whether it was created. Safe under concurrency: two callers
    /// for one new phone get the same user.
    async fn upsert_verified_phone(&self, phone: &PhoneNumber, now: Timestamp) -> Result<(User, bool), StoreError>;
}

/// Keeps OTP challenges. The contract that makes codes safe lives here:
/// attempts are spent and codes consumed by conditional writes, so two
/// concurrent callers can never both succeed.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ChallengeStore: Send + Sync {
    /// Stores `challenge` and, in the same transaction, closes every live
    /// challenge with the same purpose and phone, or with the same lookup
    /// hash (a new code invalidates the old one), and writes `outgoing` to
    /// the outbox: the challenge and its message exist together or not at
    /// all.
    async fn replace_live(&self, challenge: NewChallenge, outgoing: Outgoing) -> Result<ChallengeId, StoreError>;

    /// Atomically spends one attempt on the challenge with `lookup_hash` if
    /// it is live, unexpired at `now` and has attempts left, and returns it
    /// with its code hash; otherwise says why not, spending nothing.
    async fn spend_attempt(&self, lookup_hash: &SecretHash, now: Timestamp) -> Result<AttemptOutcome, StoreError>;

    /// Marks the challenge consumed if it is still live. Returns `false` if
    /// it was not (another check consumed it first, or it was superseded).
    async fn consume(&self, id: ChallengeId, now: Timestamp) -> Result<bool, StoreError>;
}

/// Keeps devices' push registrations.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Records that `user` receives pushes at `handle` on `platform`. A
    /// handle belongs to one user at a time: registering it again (for the
    /// same or another user) moves it rather than duplicating it.
    async fn register_push(
        &self,
        user: UserId,
        platform: PushPlatform,
        handle: &PushHandle,
        now: Timestamp,
    ) -> Result<(), StoreError>;
}

/// A text message to send. The body contains a code, so it is a secret.
#[derive(Debug)]
pub struct OutgoingSms {
    pub to: PhoneNumber,
    pub body: SecretString,
}

/// Why a message could not be delivered to the provider. Messages are for
/// logs and the outbox's `last_error`: they never contain a code, a token,
/// a credential, the recipient or the message's text, and adapters put in
/// them only a provider's code and status, never its free text (which may
/// echo the recipient).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The provider says the number cannot receive messages (Twilio 21211,
    /// 21614, 60200).
    #[error("the provider rejected the number")]
    InvalidNumber,
    /// The provider refused this message for good for another reason: the
    /// recipient opted out (Twilio 21610), the account may not send to the
    /// number's region (21408), or the mail server answered a permanent
    /// (5xx) error. No retry can succeed, so the message fails at once.
    /// The text names the provider and its code only (`twilio 21610`,
    /// `smtp 550`).
    #[error("the provider refused the message for good ({0})")]
    Rejected(String),
    /// The provider is rate-limiting us or this number (Twilio 20429, 60203,
    /// 60212); try again after `retry_after` if known.
    #[error("the provider is rate-limiting requests")]
    RateLimited { retry_after: Option<std::time::Duration> },
    /// Credentials or settings are wrong (Twilio 20003): no retry helps.
    #[error("the provider refused our credentials or settings: {0}")]
    Misconfigured(String),
    /// The provider is unreachable, failing or timing out, after retries.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

impl DeliveryError {
    /// A short, fixed name for metrics: `invalid_number`, `rejected`,
    /// `rate_limited`, `misconfigured` or `unavailable`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::InvalidNumber => "invalid_number",
            Self::Rejected(_) => "rejected",
            Self::RateLimited { .. } => "rate_limited",
            Self::Misconfigured(_) => "misconfigured",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

/// Counts what the use cases, the dispatcher and the provider clients do,
/// for `/metrics`. Every label is a fixed name chosen by the caller (a
/// purpose, a channel, an outcome, a provider's numeric error code), never
/// user input or a secret, so the number of series stays bounded. Calls are
/// cheap, synchronous and cannot fail.
pub trait Metrics: Send + Sync + std::fmt::Debug {
    /// One delivery attempt of an outbox message ended. `purpose` is the
    /// message's (`pin_auth`, `password_reset`, …), `kind` its envelope's
    /// ([`crate::outbox::Envelope::kind`]) and `outcome` the
    /// [`crate::outbox::DeliveryOutcome::state`]-like `sent`, `retry`,
    /// `failed` or `dropped`.
    fn delivery(&self, purpose: &'static str, kind: &'static str, outcome: &'static str);

    /// A code check ended: `outcome` is `verified`, `wrong_code`,
    /// `not_found`, `expired`, `exhausted`, `closed`, `refused`, `locked`
    /// (the number is locked out: the code was not compared) or `error`.
    fn code_check(&self, purpose: &'static str, outcome: &'static str);

    /// A call to a provider (`operation` is `send_sms`, `call`,
    /// `verify_start`, `verify_check` or `send_mail`) took `elapsed` and
    /// ended with `outcome`: `ok` or a [`DeliveryError::kind`].
    fn provider_call(
        &self,
        provider: &'static str,
        operation: &'static str,
        elapsed: std::time::Duration,
        outcome: &'static str,
    );

    /// A provider answered an error with its own code (Twilio's `21211`,
    /// `20003`, …, or `none` when its answer had none).
    fn provider_error_code(&self, provider: &'static str, operation: &'static str, code: &str);

    /// A phone number was locked out of code checks and sends after too
    /// many wrong codes; `purpose` is the surface of the check that locked
    /// it. Components that do not report it need not implement it.
    fn phone_locked(&self, purpose: &'static str) {
        let _ = purpose;
    }
}

/// Metrics that go nowhere: the default of every component that counts, so
/// unit tests and tools need not wire a registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn delivery(&self, _: &'static str, _: &'static str, _: &'static str) {}

    fn code_check(&self, _: &'static str, _: &'static str) {}

    fn provider_call(&self, _: &'static str, _: &'static str, _: std::time::Duration, _: &'static str) {}

    fn provider_error_code(&self, _: &'static str, _: &'static str, _: &str) {}
}

/// What a provider that checks codes itself says of a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostedCheck {
    /// The code is right (Twilio Verify status `approved`).
    Approved,
    /// The code is wrong (status `pending`).
    Rejected,
    /// No verification is pending for the number: expired, used up or
    /// never started (Twilio 404 / 20404).
    NotFound,
}

/// A provider that generates, delivers and checks codes itself (Twilio
/// Verify). phonegate still records each challenge (attempts, expiry, single
/// use); only the code lives at the provider.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait HostedVerification: Send + Sync {
    /// Asks the provider to send a new code to `to` by `channel`, in `locale`
    /// (e.g. `en`).
    async fn start(&self, to: &PhoneNumber, channel: Channel, locale: &str) -> Result<(), DeliveryError>;

    /// Asks the provider whether `code` is the code it sent to `to`.
    async fn check(&self, to: &PhoneNumber, code: &OtpCode) -> Result<HostedCheck, DeliveryError>;
}

/// Sends text messages.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SmsSender: Send + Sync {
    /// Hands `message` to the provider. Implementations must not log the body.
    async fn send_sms(&self, message: &OutgoingSms) -> Result<(), DeliveryError>;
}

/// A voice call that reads a code aloud. The text contains the code.
#[derive(Debug)]
pub struct OutgoingCall {
    pub to: PhoneNumber,
    pub spoken_text: SecretString,
}

/// Places voice calls that read a code aloud.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait VoiceCaller: Send + Sync {
    /// Asks the provider to call `call.to` and speak the text. Implementations
    /// must not log the text.
    async fn call(&self, call: &OutgoingCall) -> Result<(), DeliveryError>;
}

/// Keeps phone-login's access codes, stored only as keyed hashes.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AccessCodeStore: Send + Sync {
    async fn insert_access_code(&self, code: NewAccessCode) -> Result<(), StoreError>;

    /// The access code whose hash is `code_hash`, expired or not.
    async fn find_access_code(&self, code_hash: &SecretHash) -> Result<Option<AccessCodeRecord>, StoreError>;
}

/// The current time. A port so tests can drive expiry without sleeping.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// Cryptographically secure randomness, for codes, keys and tokens.
/// Implementations must be a CSPRNG.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait RandomSource: Send + Sync {
    fn fill(&self, dest: &mut [u8]);
}

/// Signs and verifies access tokens (JWTs). Synchronous: signing is pure
/// computation with a key held in memory.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait TokenIssuer: Send + Sync {
    /// Signs a token for `user`, issued at `now`.
    fn issue(&self, user: UserId, now: Timestamp) -> Result<IssuedToken, TokenError>;

    /// Verifies `token` at `now`: signature first, then algorithm, issuer,
    /// expiry and not-before. Never trusts a key named by the token itself.
    fn verify(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenError>;

    /// Signs phone-verify's session token: it names the phone and the
    /// challenge's nonce (never the code) and expires with the challenge. It
    /// is not an access token and is refused as one.
    fn issue_phone_session(
        &self,
        phone: &PhoneNumber,
        nonce: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<IssuedToken, TokenError>;

    /// Verifies a session token from [`TokenIssuer::issue_phone_session`].
    fn verify_phone_session(&self, token: &str, now: Timestamp) -> Result<PhoneSession, TokenError>;

    /// The public keys that verify this issuer's tokens: the current signing
    /// key and every previous key still accepted, when they are asymmetric
    /// (RS256, EdDSA). Shared-secret keys are never listed, so an issuer
    /// with HS256 keys only returns an empty list. Published as a JWKS.
    fn public_keys(&self) -> Vec<PublicJwk>;
}

/// Whether the service's own dependencies answer (for `/readyz`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Readiness: Send + Sync {
    async fn check(&self) -> Result<(), StoreError>;
}

/// How many rows one purge deleted, per table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PurgeReport {
    pub challenges: u64,
    pub session_tokens: u64,
    pub access_codes: u64,
    pub password_resets: u64,
    pub outbox: u64,
}

impl PurgeReport {
    pub fn total(&self) -> u64 {
        self.challenges + self.session_tokens + self.access_codes + self.password_resets + self.outbox
    }
}

/// Deletes what can never be used again, so tables stay bounded.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Housekeeping: Send + Sync {
    /// Deletes challenges, session tokens, access codes and password resets
    /// that expired before `cutoff` (or were revoked before it), and outbox
    /// rows that were sent, failed, dropped or written as decoys before
    /// `cutoff`, plus pending ones whose message expired before it. Works in
    /// bounded batches so no long lock is held; safe to run on several
    /// instances at once.
    async fn purge(&self, cutoff: Timestamp) -> Result<PurgeReport, StoreError>;
}

/// Which phone numbers have been proved, with a code, by whoever holds
/// them: the send guard keeps part of each SMS budget for them, so a flood
/// of sends to new numbers cannot lock returning users out.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait VerifiedPhones: Send + Sync {
    /// Whether a user holds `phone` and has verified it with a code at least
    /// once (phone-verify's verify, phone-login's check_pin, the tokens
    /// surface's verify_phone, pin-auth's verify). One indexed lookup.
    async fn has_verified(&self, phone: &PhoneNumber) -> Result<bool, StoreError>;
}
