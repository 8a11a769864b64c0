//! WhatsApp through the generic provider: the same signed request as a
//! text, with `"channel": "whatsapp"`; the receiver answers
//! `{"error":"not_on_channel"}` for a number that is not on WhatsApp.

use async_trait::async_trait;
use phonegate_domain::ports::{DeliveryError, MessageRef, OutgoingSms, ProviderMessageId, WhatsAppSender};
use secrecy::ExposeSecret as _;

use super::{HttpProvider, Operation, queued_id};

#[async_trait]
impl WhatsAppSender for HttpProvider {
    /// The message's `id` is the one its receipts name.
    async fn send_whatsapp(
        &self,
        message: &OutgoingSms,
        queued: MessageRef,
    ) -> Result<Option<ProviderMessageId>, DeliveryError> {
        let id = queued_id(queued);
        self.deliver(
            Operation::SendWhatsApp,
            message.to.as_str(),
            message.body.expose_secret(),
            &id,
            queued.purpose,
        )
        .await?;
        Ok(ProviderMessageId::new(id))
    }
}
