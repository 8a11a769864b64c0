//! Delivery receipts: what providers say, after accepting a message, of
//! whether it reached the handset.

use async_trait::async_trait;

use super::{StoreError, outbox::Envelope};
use crate::time::Timestamp;

/// A provider's own id for a message it accepted (Twilio's `SM…` sid,
/// Vonage's `message-id`, the generic provider's `id`), which its delivery
/// receipts name. Not a secret, but not shown to clients either.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProviderMessageId(String);

impl ProviderMessageId {
    /// The provider's id as it gave it; `None` for an empty or absurdly
    /// long one (over 128 bytes), which no receipt could match usefully.
    pub fn new(id: impl Into<String>) -> Option<Self> {
        let id = id.into();
        (!id.is_empty() && id.len() <= 128).then_some(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a receipt says of a message, in the words common to the vendors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiptStatus {
    /// The provider holds the message and has not passed it on yet.
    Queued,
    /// The provider passed the message to the carrier.
    Sent,
    /// The carrier says the handset received it.
    Delivered,
    /// The carrier could not deliver it (switched off, unknown subscriber,
    /// filtered): another route may.
    Undelivered,
    /// The provider could not send it at all.
    Failed,
}

impl ReceiptStatus {
    /// The status as stored and counted: `queued`, `sent`, `delivered`,
    /// `undelivered` or `failed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
        }
    }

    /// Whether the status is the last word on the message: a later
    /// `queued` or `sent` (receipts may arrive out of order) does not
    /// replace it.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Undelivered | Self::Failed)
    }

    /// Whether the message did not and will not arrive.
    pub const fn is_non_delivery(self) -> bool {
        matches!(self, Self::Undelivered | Self::Failed)
    }
}

/// One delivery receipt, verified and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The configured name of the provider that sent it (`twilio`, …).
    pub provider: &'static str,
    pub message_id: ProviderMessageId,
    pub status: ReceiptStatus,
    /// The provider's error code (Twilio `30003`, Vonage `err-code`), never
    /// its free text; `None` when the receipt has none.
    pub error_code: Option<String>,
}

/// A receipt request as it reached the service, with what the vendors'
/// signature schemes sign.
#[derive(Debug, Clone, Copy)]
pub struct ReceiptRequest<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// The URL the provider requested, as it knows it: the configured
    /// public URL (`server.public_url`) with the request's path and query.
    pub url: &'a str,
    /// The query string, without `?` (empty when none).
    pub query: &'a str,
    /// The request's headers, names in lower case.
    pub headers: &'a [(String, String)],
    /// The raw body.
    pub body: &'a [u8],
}

impl ReceiptRequest<'_> {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Why a receipt request was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptRejected {
    /// The signature is missing, wrong or stale: the request may not come
    /// from the provider, so nothing of it is believed.
    #[error("the receipt's signature is missing or wrong")]
    BadSignature,
    /// The signature holds but the receipt cannot be read (a field
    /// missing, a status the vendor does not document); the text says
    /// which, without echoing the request.
    #[error("the receipt cannot be read: {0}")]
    Malformed(String),
}

/// Verifies and reads one vendor's delivery receipts, by the vendor's own
/// signature scheme and format.
pub trait ReceiptReader: Send + Sync {
    /// The receipt `request` carries. [`ReceiptRejected::BadSignature`]
    /// whenever the vendor's signature does not verify (including when
    /// the request has none and the vendor signs), before anything of the
    /// request is read.
    fn read(&self, request: &ReceiptRequest<'_>) -> Result<Receipt, ReceiptRejected>;
}

/// The message a receipt was recorded on.
#[derive(Debug)]
pub struct ReceiptedMessage {
    /// The outbox row.
    pub id: i64,
    /// The message, while the outbox still holds it (until it is delivered
    /// or expires): needed to send it again through another provider.
    pub envelope: Option<Envelope>,
    /// After this the code is useless.
    pub not_after: Timestamp,
    /// Whether it was already sent again after a non-delivery (at most
    /// once).
    pub resent: bool,
    /// Whether the challenge whose code it carries is still live (or the
    /// message carries no challenge's code).
    pub live: bool,
}

/// Where receipts are recorded.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ReceiptStore: Send + Sync {
    /// Records `receipt` on the message its provider sent with its id, at
    /// `now`, unless the message already has a final status and this one
    /// is not (receipts arrive out of order); a delivered message's
    /// payload is dropped. `None` when no message has that provider and
    /// id (an unknown or forged id, or a message since resent through
    /// another provider).
    async fn record_receipt(&self, receipt: &Receipt, now: Timestamp) -> Result<Option<ReceiptedMessage>, StoreError>;

    /// Queues message `id` again, due at `now`, to go through a provider
    /// of its route other than `avoid`, carrying `envelope` (the same
    /// code, or the same code by another channel). Only if it was sent
    /// through `avoid`, has not been resent before, has not expired and
    /// its challenge is live; returns whether it was queued.
    async fn resend_avoiding(
        &self,
        id: i64,
        avoid: &str,
        envelope: &Envelope,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Queues WhatsApp message `id`, sent through `sent_through`, again,
    /// due at `now`, as `sms`: the same code by SMS, through any provider
    /// of the SMS route. Only if it is still a WhatsApp message sent
    /// through `sent_through`, has not expired and its challenge is live;
    /// returns whether it was queued.
    async fn resend_by_sms(
        &self,
        id: i64,
        sent_through: &str,
        sms: &Envelope,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
}
