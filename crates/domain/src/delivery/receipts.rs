//! Delivery receipts: recording what providers say of the messages they
//! accepted, and sending a code again through another provider when its
//! receipt says it did not arrive.
//!
//! A provider's acceptance is not delivery: carriers drop texts (a filtered
//! route, an unreachable handset) and say so only later, in a receipt.
//! While the code still works, the same message goes once more through the
//! next provider of its route: a second, independent path to the handset.
//! Only once, so that a number that cannot receive texts costs two sends,
//! not a loop.

use std::{fmt, sync::Arc};

use super::Messenger;
use crate::{
    abuse::calling_code,
    outbox::Envelope,
    ports::{Clock, Metrics, NoMetrics, Receipt, ReceiptStore, ReceiptedMessage, StoreError},
};

/// What recording a receipt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// No message has the receipt's provider and id (an unknown or forged
    /// id, a message since resent elsewhere), or it was older news than
    /// what is recorded: nothing changed. The provider is answered as for
    /// any other receipt, so the answer tells a forger nothing.
    Unknown,
    /// The status was recorded.
    Recorded,
    /// The status was recorded and, since it says the message did not
    /// arrive, the message was queued again for another provider.
    Resent,
}

impl ReceiptOutcome {
    /// The outcome's name for metrics: `unknown`, `recorded` or `resent`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Recorded => "recorded",
            Self::Resent => "resent",
        }
    }
}

/// Records delivery receipts.
#[derive(Clone)]
pub struct Receipts {
    store: Arc<dyn ReceiptStore>,
    messenger: Messenger,
    clock: Arc<dyn Clock>,
    metrics: Arc<dyn Metrics>,
}

impl fmt::Debug for Receipts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receipts").finish_non_exhaustive()
    }
}

impl Receipts {
    /// Receipts recorded in `store`, resending through `messenger`'s routes
    /// (the dispatchers' routes: the same settings on every instance).
    pub fn new(store: Arc<dyn ReceiptStore>, messenger: Messenger, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            messenger,
            clock,
            metrics: Arc::new(NoMetrics),
        }
    }

    /// The same, counting deliveries in `metrics`.
    pub fn with_metrics(self, metrics: Arc<dyn Metrics>) -> Self {
        Self { metrics, ..self }
    }

    /// Records `receipt`, a verified receipt from its provider, and queues
    /// its message again for another provider if it says the message did
    /// not arrive, the code still works and the route has another
    /// provider.
    pub async fn record(&self, receipt: &Receipt) -> Result<ReceiptOutcome, StoreError> {
        let now = self.clock.now();
        let Some(message) = self.store.record_receipt(receipt, now).await? else {
            return Ok(ReceiptOutcome::Unknown);
        };
        let provider = receipt.provider;
        let code = message
            .envelope
            .as_ref()
            .and_then(Envelope::recipient)
            .map_or("unknown", calling_code);
        if receipt.status == crate::ports::ReceiptStatus::Delivered {
            self.metrics.code_delivered(provider, code);
        }
        if !receipt.status.is_non_delivery() {
            return Ok(ReceiptOutcome::Recorded);
        }
        tracing::warn!(
            id = message.id,
            provider,
            status = receipt.status.as_str(),
            provider_error = receipt.error_code.as_deref().unwrap_or(""),
            calling_code = code,
            "a provider says a message it accepted did not arrive"
        );
        self.resend(receipt, message, now).await
    }

    async fn resend(
        &self,
        receipt: &Receipt,
        message: ReceiptedMessage,
        now: crate::time::Timestamp,
    ) -> Result<ReceiptOutcome, StoreError> {
        let provider = receipt.provider;
        let ReceiptedMessage {
            id,
            envelope,
            not_after,
            resent,
            live,
        } = message;
        let Some(envelope) = envelope else {
            return Ok(ReceiptOutcome::Recorded);
        };
        if resent || !live || now >= not_after {
            // Sent twice already, or its code no longer works.
            return Ok(ReceiptOutcome::Recorded);
        }
        if let Some(sms) = Messenger::sms_instead(&envelope) {
            // WhatsApp could not reach the number (Twilio says so later, in
            // the receipt): the same code goes by SMS, through any provider
            // of the SMS route.
            if self.store.resend_by_sms(id, provider, &sms, now).await? {
                tracing::warn!(
                    id,
                    provider,
                    "WhatsApp cannot reach the number; sending the same code by SMS"
                );
                self.metrics.channel_fallback("whatsapp", "sms");
                return Ok(ReceiptOutcome::Resent);
            }
            return Ok(ReceiptOutcome::Recorded);
        }
        if !self.messenger.has_provider_besides(&envelope, provider) {
            tracing::info!(id, provider, "no other provider on the message's route; not resent");
            return Ok(ReceiptOutcome::Recorded);
        }
        if self.store.resend_avoiding(id, provider, &envelope, now).await? {
            tracing::warn!(
                id,
                from = provider,
                "the message goes again through another provider of its route"
            );
            Ok(ReceiptOutcome::Resent)
        } else {
            Ok(ReceiptOutcome::Recorded)
        }
    }
}

#[cfg(test)]
mod tests;
