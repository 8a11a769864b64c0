//! Texts and WhatsApp messages of the outbox through the generic provider:
//! one request each, under the `id` its receipts name.

use phonegate_domain::ports::{DeliveryError, MessageRef, OutgoingSms, ProviderMessageId};
use secrecy::ExposeSecret as _;

use super::{HttpProvider, Operation, queued_id};

impl HttpProvider {
    /// Delivers `message`, the outbox message `queued`, as `operation` (a
    /// text or a WhatsApp message), under the `id` its receipts name.
    pub(super) async fn deliver_queued_text(
        &self,
        operation: Operation,
        message: &OutgoingSms,
        queued: MessageRef,
    ) -> Result<Option<ProviderMessageId>, DeliveryError> {
        let id = queued_id(queued);
        self.deliver(
            operation,
            message.to.as_str(),
            message.body.expose_secret(),
            &id,
            queued.purpose,
        )
        .await?;
        Ok(ProviderMessageId::new(id))
    }
}
