//! WhatsApp through the generic provider: the same signed request as a
//! text, with `"channel": "whatsapp"`; the receiver answers
//! `{"error":"not_on_channel"}` for a number that is not on WhatsApp.

use async_trait::async_trait;
use phonegate_domain::ports::{DeliveryError, MessageRef, OutgoingSms, ProviderMessageId, WhatsAppSender};

use super::{HttpProvider, Operation};

#[async_trait]
impl WhatsAppSender for HttpProvider {
    /// The message's `id` is the one its receipts name.
    async fn send_whatsapp(
        &self,
        message: &OutgoingSms,
        queued: MessageRef,
    ) -> Result<Option<ProviderMessageId>, DeliveryError> {
        self.deliver_queued_text(Operation::SendWhatsApp, message, queued).await
    }
}
