//! Providers that deliver messages: text, voice, email, and hosted
//! verification (a provider that makes and checks codes itself).

use async_trait::async_trait;
use secrecy::SecretString;

use super::receipts::ProviderMessageId;
use crate::{
    account::Email,
    otp::code::{Channel, OtpCode},
    phone::PhoneNumber,
};

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
#[derive(Debug, Clone, thiserror::Error)]
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
    /// The number has no account on the message's channel: it is not a
    /// WhatsApp user (Twilio 63003, 63024). Final for that channel, as no
    /// provider can reach an account that does not exist, but a text to
    /// the same number may arrive: the dispatcher sends the same code by
    /// SMS instead.
    #[error("the number cannot be reached on this channel")]
    NotOnChannel,
}

impl DeliveryError {
    /// A short, fixed name for metrics: `invalid_number`, `rejected`,
    /// `rate_limited`, `misconfigured`, `unavailable` or `not_on_channel`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::InvalidNumber => "invalid_number",
            Self::Rejected(_) => "rejected",
            Self::RateLimited { .. } => "rate_limited",
            Self::Misconfigured(_) => "misconfigured",
            Self::Unavailable(_) => "unavailable",
            Self::NotOnChannel => "not_on_channel",
        }
    }
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

/// Which outbox message a delivery is: the same on every attempt and every
/// provider of a route, so a provider that passes it on (the generic HTTP
/// provider's `id` and `purpose`) lets its receiver drop duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRef {
    /// The outbox row's id.
    pub id: i64,
    /// What the message is for (`pin_auth`, `password_reset`, …).
    pub purpose: &'static str,
}

/// Who a text says it comes from, as a route or a provider's settings name
/// it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Sender {
    /// A phone number in E.164 (`+15005550006`).
    Number(String),
    /// An alphanumeric sender ID (`Acme`, at most 11 letters, digits and
    /// spaces), for countries that allow one.
    Alphanumeric(String),
    /// A Twilio Messaging Service (`MG…`), which picks the number itself.
    /// Only the Twilio provider can send through one.
    MessagingService(String),
}

impl Sender {
    /// The sender as written in settings: a number starting with `+`, a
    /// Messaging Service SID starting with `MG`, or an alphanumeric sender
    /// ID (1 to 11 ASCII letters, digits and spaces, at least one letter).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(digits) = text.strip_prefix('+') {
            if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(Self::Number(text.to_owned()));
            }
            return Err(format!("{text:?} is not a number in E.164 (+ and 8 to 15 digits)"));
        }
        if text.len() == 34 && text.starts_with("MG") && text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(Self::MessagingService(text.to_owned()));
        }
        let allowed = text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ');
        if (1..=11).contains(&text.len()) && allowed && text.bytes().any(|b| b.is_ascii_alphabetic()) {
            return Ok(Self::Alphanumeric(text.to_owned()));
        }
        Err(format!(
            "{text:?} is neither a number (+…), a Messaging Service SID (MG…) nor an alphanumeric sender ID (1 to 11 letters, digits and spaces)"
        ))
    }

    /// The sender as providers write it in a `from` field.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Number(text) | Self::Alphanumeric(text) | Self::MessagingService(text) => text,
        }
    }
}

/// Sends text messages.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SmsSender: Send + Sync {
    /// Hands `message` to the provider. Implementations must not log the body.
    async fn send_sms(&self, message: &OutgoingSms) -> Result<(), DeliveryError>;

    /// Hands `message`, the outbox message `queued`, to the provider, and
    /// returns the provider's id for it when its delivery receipts will
    /// name one. The dispatcher calls this; providers that have no use for
    /// `queued` and send no receipts keep the default, which is
    /// [`SmsSender::send_sms`] with no id.
    async fn send_queued_sms(
        &self,
        message: &OutgoingSms,
        queued: MessageRef,
    ) -> Result<Option<ProviderMessageId>, DeliveryError> {
        let _ = queued;
        self.send_sms(message).await.map(|()| None)
    }
}

/// Sends WhatsApp messages: the text of an SMS, to the number's WhatsApp
/// account, from the deployment's WhatsApp sender.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WhatsAppSender: Send + Sync {
    /// Hands `message`, the outbox message `queued`, to the provider as a
    /// WhatsApp message, and returns the provider's id for it when its
    /// delivery receipts will name one. A number with no WhatsApp account
    /// is [`DeliveryError::NotOnChannel`]. Implementations must not log
    /// the body.
    async fn send_whatsapp(
        &self,
        message: &OutgoingSms,
        queued: MessageRef,
    ) -> Result<Option<ProviderMessageId>, DeliveryError>;
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

    /// Places `call`, the outbox message `queued`. The dispatcher calls
    /// this; providers that have no use for `queued` keep the default,
    /// which is [`VoiceCaller::call`].
    async fn place_queued_call(&self, call: &OutgoingCall, queued: MessageRef) -> Result<(), DeliveryError> {
        let _ = queued;
        self.call(call).await
    }
}
