//! The outbox: every text, call and email is written here in the same
//! transaction as the challenge or reset it belongs to, and delivered from
//! here by the dispatcher.

use std::time::Duration;

use async_trait::async_trait;

use secrecy::SecretString;

use super::{OutgoingCall, OutgoingMail, OutgoingSms, ProviderMessageId, StoreError};
use crate::{otp::code::Channel, phone::PhoneNumber, time::Timestamp};

/// What to hand to which provider.
#[derive(Debug)]
pub enum Envelope {
    /// A text message with our own code in it.
    Sms(OutgoingSms),
    /// A call reading our own code aloud.
    Call(OutgoingCall),
    /// A WhatsApp message with our own code in it: the text an SMS would
    /// carry, to the number's WhatsApp account.
    WhatsApp(OutgoingSms),
    /// Ask a provider that makes its own codes (Twilio Verify) to send one.
    Hosted {
        to: PhoneNumber,
        channel: Channel,
        locale: String,
        /// The text (or spoken text) with phonegate's own code for the
        /// same challenge, to send through a local-code provider when the
        /// hosted one cannot start; `None` when no route has one.
        fallback: Option<SecretString>,
    },
    /// An email (password reset instructions).
    Mail(OutgoingMail),
}

impl Envelope {
    /// The number a text, call or hosted verification goes to; `None` for
    /// mail.
    pub const fn recipient(&self) -> Option<&PhoneNumber> {
        match self {
            Self::Sms(OutgoingSms { to, .. })
            | Self::WhatsApp(OutgoingSms { to, .. })
            | Self::Call(OutgoingCall { to, .. })
            | Self::Hosted { to, .. } => Some(to),
            Self::Mail(_) => None,
        }
    }

    /// A short name for logs and metrics, and the outbox's `kind` column:
    /// `sms`, `call`, `whatsapp`, `hosted_sms`, `hosted_call`,
    /// `hosted_whatsapp` or `mail`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Sms(_) => "sms",
            Self::Call(_) => "call",
            Self::WhatsApp(_) => "whatsapp",
            Self::Hosted {
                channel: Channel::Sms, ..
            } => "hosted_sms",
            Self::Hosted {
                channel: Channel::Call, ..
            } => "hosted_call",
            Self::Hosted {
                channel: Channel::WhatsApp,
                ..
            } => "hosted_whatsapp",
            Self::Mail(_) => "mail",
        }
    }
}

/// A message to write to the outbox.
#[derive(Debug)]
pub struct OutboxMessage {
    pub envelope: Envelope,
    /// What the message is for (`pin_auth`, `password_reset`, …), for logs.
    pub purpose: &'static str,
    pub created_at: Timestamp,
    /// After this the message is useless (its code or link has expired) and
    /// is dropped instead of delivered.
    pub not_after: Timestamp,
}

/// What a write that may send something puts into the outbox.
#[derive(Debug)]
pub enum Outgoing {
    /// A message to deliver.
    Message(OutboxMessage),
    /// A message composed and written like a real one but never delivered,
    /// for a request about an unknown number or email, so that it does
    /// exactly the same work as one about a known number and cannot be told
    /// apart by its timing. Its code or link works nowhere.
    Decoy(OutboxMessage),
    /// Nothing at all (test numbers receive nothing).
    Nothing,
}

/// A message claimed for delivery. The claim is a lease: until it ends no
/// other dispatcher takes the message, and only the holder of `lease` can
/// record how delivery went.
#[derive(Debug)]
pub struct ClaimedMessage {
    pub id: i64,
    pub lease: i64,
    /// Delivery attempts so far, this one included.
    pub attempts: u32,
    pub message: OutboxMessage,
    /// The provider not to send it through: it was sent there before and
    /// a receipt said it did not arrive ([`super::ReceiptStore::resend_avoiding`]).
    pub avoid: Option<String>,
}

/// The provider a message went through last, and the provider's id for
/// it, as [`OutboxStore::finish`] records them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Via {
    /// The configured name of the provider tried last; `None` when none
    /// was tried, or the message was mail.
    pub provider: Option<&'static str>,
    /// The id that provider gave the message it accepted, which its
    /// delivery receipts name.
    pub message_id: Option<ProviderMessageId>,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The provider accepted the message.
    Sent,
    /// Try again at `at`; `error` says what went wrong (no secret in it).
    Retry { at: Timestamp, error: String },
    /// The provider refused the message for good (e.g. the number cannot
    /// receive texts).
    Failed { error: String },
    /// The message expired before it could be delivered.
    Dropped { error: String },
}

impl DeliveryOutcome {
    pub const fn state(&self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Retry { .. } => "pending",
            Self::Failed { .. } => "failed",
            Self::Dropped { .. } => "dropped",
        }
    }
}

/// How much is waiting in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    /// Messages not yet delivered, failed or dropped.
    pub pending: u64,
    /// How long the oldest of them has waited.
    pub oldest_age: Option<Duration>,
}

/// How much of one kind is waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindBacklog {
    /// An [`Envelope::kind`].
    pub kind: String,
    pub backlog: Backlog,
}

/// The outbox as the dispatcher sees it. Messages are written by the stores
/// that write challenges and resets, in the same transaction.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Writes `decoy` (never delivered) and a stand-in row in one
    /// transaction: as much store work as a password reset with its email,
    /// for a reset requested for an unknown email.
    async fn enqueue_decoy(&self, decoy: OutboxMessage, now: Timestamp) -> Result<(), StoreError>;

    /// Claims up to `limit` pending messages of the `kinds` the caller can
    /// deliver ([`Envelope::kind`]) that are due at `now` and not leased by
    /// anyone (or whose lease ended), oldest first, leasing them until
    /// `now + lease` and counting one attempt on each. Expired messages
    /// (past `not_after`) are claimed whatever their kind, so that someone
    /// drops them. Concurrent callers, in this or other processes, never
    /// claim the same message while its lease runs.
    async fn claim_due(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
        kinds: &[&'static str],
    ) -> Result<Vec<ClaimedMessage>, StoreError>;

    /// Extends the claim on `id` under `lease` to `until`, right before an
    /// attempt. Returns `false` if the lease was lost (it ended and someone
    /// else claimed the message): the caller must then not send it.
    async fn extend_lease(&self, id: i64, lease: i64, until: Timestamp) -> Result<bool, StoreError>;

    /// The message `id`, claimed under `lease`, asked a provider to make a
    /// code (a Verify start) and that provider failed: it becomes
    /// `envelope`, a text or call carrying phonegate's own code for the
    /// same challenge, and the challenge is marked as holding phonegate's
    /// code, both in one transaction, so whichever instance checks it
    /// compares it locally. Returns `false`, changing nothing, if the
    /// lease was lost.
    async fn reissue_locally(&self, id: i64, lease: i64, envelope: &Envelope) -> Result<bool, StoreError>;

    /// The message `id`, claimed under `lease`, could not reach the number
    /// on its channel (not a WhatsApp user): it becomes `envelope`, the
    /// same code by another channel (an SMS, or a Verify start by SMS), in
    /// one statement, so a retry sends it that way. The challenge is left
    /// as it is: whoever made its code still checks it. Returns `false`,
    /// changing nothing, if the lease was lost.
    async fn switch_channel(&self, id: i64, lease: i64, envelope: &Envelope) -> Result<bool, StoreError>;

    /// Records how the attempt on `id` under `lease` ended, and `via`
    /// which provider (and under which of its ids). A text sent under a
    /// provider's id keeps its sealed payload until it is delivered or
    /// expires, so that a receipt saying it did not arrive can have it
    /// sent again; every other finished message drops its payload. Does
    /// nothing if the lease was lost (it ended and someone else claimed
    /// the message).
    async fn finish(
        &self,
        id: i64,
        lease: i64,
        outcome: DeliveryOutcome,
        via: Via,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// How many messages wait, and for how long the oldest has.
    async fn backlog(&self, now: Timestamp) -> Result<Backlog, StoreError>;

    /// How many messages of each kind wait, and for how long the oldest of
    /// each has: a kind no instance can deliver shows here.
    async fn backlog_by_kind(&self, now: Timestamp) -> Result<Vec<KindBacklog>, StoreError>;
}
